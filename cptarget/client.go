package cptarget

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// maxAnswerBytes bounds an answer read by Get.
const maxAnswerBytes = 16 << 20

// clientAPI is the API over the northbound client, plus raw GETs for endpoints the client does
// not wrap (telemetry queries).
type clientAPI struct {
	c     *client.Client
	base  string
	token string
	http  *http.Client
	login bool // the client logs in with credentials: its token comes from c
}

func newClientAPI(baseURL, token string) *clientAPI {
	hc := &http.Client{Timeout: 30 * time.Second}
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	opts = append(opts, client.WithUserAgent("dsnscale-harness"))
	return &clientAPI{c: client.New(baseURL, hc, opts...), base: strings.TrimRight(baseURL, "/"), token: token, http: hc}
}

// newSecureClientAPI is the API of a control plane the harness started with its security on:
// trusting its CA, logged in as its first admin (and again when the token expires).
func newSecureClientAPI(baseURL string, caPEM []byte, user, password string) (*clientAPI, error) {
	hc, err := client.HTTPClient(caPEM, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c := client.New(baseURL, hc, client.WithCredentials(user, password), client.WithUserAgent("dsnscale-harness"))
	return &clientAPI{c: c, base: strings.TrimRight(baseURL, "/"), http: hc, login: true}, nil
}

func (a *clientAPI) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	token := a.token
	if a.login {
		if token, err = a.c.Token(ctx); err != nil {
			return 0, nil, err
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	return resp.StatusCode, body, err
}

func (a *clientAPI) Revision(ctx context.Context) (uint64, error) { return a.c.Revision(ctx) }

func (a *clientAPI) Create(ctx context.Context, obj *model.Object) (*model.Object, error) {
	return a.c.Create(ctx, obj)
}

func (a *clientAPI) Update(ctx context.Context, obj *model.Object) (*model.Object, error) {
	return a.c.Update(ctx, obj)
}

func (a *clientAPI) List(ctx context.Context, kind model.Kind, tenant string, selector map[string]string) ([]*model.Object, error) {
	return a.c.ListAll(ctx, kind, client.ListOptions{Tenant: tenant, Selector: selector}, 500)
}

// Ready reports whether the control plane answers its readiness check.
func (a *clientAPI) Ready(ctx context.Context) error { return a.c.Ready(ctx) }
