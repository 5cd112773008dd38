package runner

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
)

// apiLink names the load generator's link to the API.
const apiLink = "api"

// harnessNetwork is the links the harness proxies, as network faults see them: the fleet's
// units' links to the bus, and the load generator's link to the API.
type harnessNetwork struct {
	fleet LinkedFleet     // nil when the fleet has no proxied links
	api   *netproxy.Proxy // nil when the load goes straight to the API
	// backends are the proxies before the control plane's backends, by path.
	backends map[string]*netproxy.Proxy
}

// Links implements faults.Network.
func (n *harnessNetwork) Links(path string) []faults.Link {
	switch {
	case path == faults.PathFleet && n.fleet != nil:
		return n.fleet.Links()
	case path == faults.PathAPI && n.api != nil:
		return []faults.Link{{Name: apiLink, Labels: map[string]string{"link": apiLink}}}
	case n.backends[path] != nil:
		return []faults.Link{{Name: path, Labels: map[string]string{"link": path}}}
	}
	return nil
}

// Proxy implements faults.Network.
func (n *harnessNetwork) Proxy(path, link string) (*netproxy.Proxy, error) {
	switch {
	case path == faults.PathFleet && n.fleet != nil:
		return n.fleet.UnitProxy(link)
	case path == faults.PathAPI && n.api != nil && link == apiLink:
		return n.api, nil
	case n.backends[path] != nil && link == path:
		return n.backends[path], nil
	}
	return nil, fmt.Errorf("%w: no proxied link %s on path %s", faults.ErrUnsupported, link, path)
}

// proxyBackend puts a proxy before the backend at rawURL and returns the URL that goes through
// it: the same URL with the proxy's address for its host.
func (n *harnessNetwork) proxyBackend(path, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("backend URL %q: want scheme://host:port/...", rawURL)
	}
	px, err := netproxy.Start(u.Host, nil)
	if err != nil {
		return "", err
	}
	n.backends[path] = px
	u.Host = px.Addr()
	return u.String(), nil
}

// startAPIProxy puts a proxy between the load generator and the API at apiURL and returns the
// URL the load generator uses instead.
func startAPIProxy(apiURL string, n *harnessNetwork) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("API URL %q: %v", apiURL, err)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host += ":" + port
	}
	px, err := netproxy.Start(host, nil)
	if err != nil {
		return "", err
	}
	n.api = px
	u.Host = px.Addr()
	return u.String(), nil
}

// close stops the API's and the backends' proxies; the fleet's go with the fleet. The control
// plane is stopped first: the backends' proxies carry its last writes.
// stillOpen names the API's and the backends' proxies that still accept connections.
func (n *harnessNetwork) stillOpen() []string {
	var open []string
	check := func(name string, px *netproxy.Proxy) {
		if px == nil {
			return
		}
		c, err := net.DialTimeout("tcp", px.Addr(), time.Second)
		if err != nil {
			return
		}
		_ = c.Close()
		open = append(open, fmt.Sprintf("proxy before the %s still accepts connections at %s", name, px.Addr()))
	}
	check(faults.PathAPI, n.api)
	for _, path := range sortedNames(n.backends) {
		check(path, n.backends[path])
	}
	return open
}

func (n *harnessNetwork) close() {
	if n.api != nil {
		n.api.Close()
	}
	for _, px := range n.backends {
		px.Close()
	}
}
