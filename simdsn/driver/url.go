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

// HostPorts extracts host:port from each URL of a comma-separated list of NATS URLs (the
// servers of a cluster, as nats.Connect takes them).
func HostPorts(list string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return nil, fmt.Errorf("driver: NATS URL list %q has an empty entry", list)
		}
		hp, err := HostPort(u)
		if err != nil {
			return nil, err
		}
		out = append(out, hp)
	}
	return out, nil
}
