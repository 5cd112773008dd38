package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	dc "github.com/ory/dockertest/v3/docker"
)

// apiVersion is the Engine API the driver speaks: Docker 19.03 and later. At 1.30 and above the
// engine does not look a service's image up in a registry, which is what lets a locally built
// image run without one.
const apiVersion = "v1.40"

// api calls the Swarm endpoints of the Engine API, which the client vendored by dockertest
// leaves out, over that client's own connection (socket, TCP, TLS).
type api struct {
	hc   *http.Client
	base string
}

func newAPI(c *dc.Client) (*api, error) {
	u, err := url.Parse(c.Endpoint())
	if err != nil {
		return nil, fmt.Errorf("swarm: engine endpoint %q: %w", c.Endpoint(), err)
	}
	base := "http://" + u.Host
	switch {
	case u.Scheme == "unix" || u.Scheme == "npipe":
		base = "http://unix.sock" // the transport dials the socket; the host is not used
	case c.TLSConfig != nil || u.Scheme == "https":
		base = "https://" + u.Host
	}
	return &api{hc: c.HTTPClient, base: base + "/" + apiVersion}, nil
}

// apiError is an error answer of the engine.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("engine answered %d: %s", e.Status, e.Message) }

func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// do sends in (JSON, if not nil) and decodes the answer into out (if not nil).
func (a *api) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct{ Message string }
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return &apiError{Status: resp.StatusCode, Message: m.Message}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// swarmInfo is this engine's place in a swarm.
func (a *api) swarmInfo(ctx context.Context) (swarm.Info, error) {
	var info struct{ Swarm swarm.Info }
	err := a.do(ctx, http.MethodGet, "/info", nil, &info)
	return info.Swarm, err
}

// networkID resolves a network name (the predefined "host") to its ID.
func (a *api) networkID(ctx context.Context, name string) (string, error) {
	var n struct{ ID string }
	if err := a.do(ctx, http.MethodGet, "/networks/"+url.PathEscape(name), nil, &n); err != nil {
		return "", err
	}
	return n.ID, nil
}

func (a *api) createService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	var r swarm.ServiceCreateResponse
	if err := a.do(ctx, http.MethodPost, "/services/create", spec, &r); err != nil {
		return "", err
	}
	return r.ID, nil
}

func (a *api) service(ctx context.Context, id string) (swarm.Service, error) {
	var s swarm.Service
	err := a.do(ctx, http.MethodGet, "/services/"+url.PathEscape(id), nil, &s)
	return s, err
}

// updateService replaces a service's spec; version is the one the spec was read at.
func (a *api) updateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error {
	path := "/services/" + url.PathEscape(id) + "/update?version=" + strconv.FormatUint(version, 10)
	return a.do(ctx, http.MethodPost, path, spec, nil)
}

func (a *api) removeService(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/services/"+url.PathEscape(id), nil, nil)
}

// tasks lists tasks that match filters (the engine's filter syntax: name to values).
func (a *api) tasks(ctx context.Context, filters map[string][]string) ([]swarm.Task, error) {
	f, err := json.Marshal(filters)
	if err != nil {
		return nil, err
	}
	var ts []swarm.Task
	err = a.do(ctx, http.MethodGet, "/tasks?filters="+url.QueryEscape(string(f)), nil, &ts)
	return ts, err
}

func (a *api) initSwarm(ctx context.Context, req swarm.InitRequest) error {
	return a.do(ctx, http.MethodPost, "/swarm/init", req, nil)
}

func (a *api) leaveSwarm(ctx context.Context) error {
	return a.do(ctx, http.MethodPost, "/swarm/leave?force=true", nil, nil)
}
