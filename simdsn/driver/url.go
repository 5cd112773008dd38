package driver

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// HostPort extracts host:port from a NATS URL (nats://host:port, or a bare host:port; the port
// defaults to 4222).
func HostPort(u string) (string, error) {
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("driver: NATS URL %q: %w", u, err)
	}
	if pu.Host == "" {
		return "", fmt.Errorf("driver: NATS URL %q has no host", u)
	}
	host := pu.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "4222")
	}
	return host, nil
}
