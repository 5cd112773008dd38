package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

const apiPrefix = "/api/v1"

// ErrBadRequest marks a call the client refuses to send: it could not name a valid URL.
var ErrBadRequest = errors.New("client: bad request")

// plural is the path segment of a kind's collection.
func plural(kind model.Kind) string {
	if kind == model.KindPolicy {
		return "policies"
	}
	return strings.ToLower(string(kind)) + "s"
}

// collectionPath is where objects of kind in tenant are listed and created; an empty tenant
// lists a namespaced kind across all tenants.
func collectionPath(kind model.Kind, tenant string) (string, error) {
	if kind == "" {
		return "", fmt.Errorf("%w: no kind", ErrBadRequest)
	}
	if !kind.Namespaced() || tenant == "" {
		return apiPrefix + "/" + plural(kind), nil
	}
	return apiPrefix + "/tenants/" + url.PathEscape(tenant) + "/" + plural(kind), nil
}

func itemPath(key model.Key) (string, error) {
	if key.Name == "" {
		return "", fmt.Errorf("%w: %s has no name", ErrBadRequest, key)
	}
	if key.Kind.Namespaced() && key.Tenant == "" {
		return "", fmt.Errorf("%w: %s has no tenant", ErrBadRequest, key)
	}
	coll, err := collectionPath(key.Kind, key.Tenant)
	if err != nil {
		return "", err
	}
	return coll + "/" + url.PathEscape(key.Name), nil
}

// WriteOption modifies a write.
type WriteOption func(url.Values)

// DryRun validates a write fully (relations included) and stores nothing.
func DryRun() WriteOption { return func(q url.Values) { q.Set("dryRun", "true") } }

// IfResourceVersion makes a Delete conditional: it fails with 409 unless the object is at rv.
// (Updates carry their condition in metadata.resourceVersion.)
func IfResourceVersion(rv string) WriteOption {
	return func(q url.Values) { q.Set("resourceVersion", rv) }
}

func writeQuery(opts []WriteOption) url.Values {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Create stores a new object and returns it as stored (resourceVersion set).
func (c *Client) Create(ctx context.Context, obj *model.Object, opts ...WriteOption) (*model.Object, error) {
	path, err := collectionPath(obj.Kind, obj.Metadata.Tenant)
	if err != nil {
		return nil, err
	}
	var out model.Object
	if err := c.do(ctx, http.MethodPost, path, writeQuery(opts), obj, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Update replaces an object. With metadata.resourceVersion set it is compare-and-swap: a stale
// version fails with 409 (IsConflict).
func (c *Client) Update(ctx context.Context, obj *model.Object, opts ...WriteOption) (*model.Object, error) {
	path, err := itemPath(obj.Key())
	if err != nil {
		return nil, err
	}
	var out model.Object
	if err := c.do(ctx, http.MethodPut, path, writeQuery(opts), obj, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns the object at key.
func (c *Client) Get(ctx context.Context, key model.Key) (*model.Object, error) {
	path, err := itemPath(key)
	if err != nil {
		return nil, err
	}
	var out model.Object
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delete removes the object at key and returns its last state.
func (c *Client) Delete(ctx context.Context, key model.Key, opts ...WriteOption) (*model.Object, error) {
	path, err := itemPath(key)
	if err != nil {
		return nil, err
	}
	var out model.Object
	if err := c.do(ctx, http.MethodDelete, path, writeQuery(opts), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOptions select and page a list.
type ListOptions struct {
	// Tenant restricts a list of networks or policies to one tenant; empty lists every tenant.
	Tenant string
	// Selector keeps objects whose labels carry every key/value.
	Selector map[string]string
	// Limit is the page size; 0 asks for everything.
	Limit int
	// Continue is the token of the previous page.
	Continue string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Continue != "" {
		q.Set("continue", o.Continue)
	}
	if len(o.Selector) > 0 {
		q.Set("labelSelector", FormatSelector(o.Selector))
	}
	return q
}

// FormatSelector renders a label selector as "k=v,k2=v2", keys sorted.
func FormatSelector(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sel[k]
	}
	return strings.Join(parts, ",")
}

// List is one page of a list.
type List struct {
	Kind  string
	Items []*model.Object
	// Revision is the store revision the page was read at (0 for DSN lists).
	Revision uint64
	// Continue fetches the next page; empty on the last.
	Continue string
}

type listBody struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Revision uint64 `json:"revision"`
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []*model.Object `json:"items"`
}

func (b listBody) list() *List {
	return &List{Kind: b.Kind, Items: b.Items, Revision: b.Metadata.Revision, Continue: b.Metadata.Continue}
}

// List returns one page of objects of kind (Tenant, Network or Policy).
func (c *Client) List(ctx context.Context, kind model.Kind, opts ListOptions) (*List, error) {
	if kind == model.KindDSN {
		return c.DSNs(ctx, opts)
	}
	path, err := collectionPath(kind, opts.Tenant)
	if err != nil {
		return nil, err
	}
	var body listBody
	if err := c.do(ctx, http.MethodGet, path, opts.query(), nil, &body); err != nil {
		return nil, err
	}
	return body.list(), nil
}

// ListAll follows continue tokens and returns every object of kind, pageSize at a time (0 for
// one unpaged request).
func (c *Client) ListAll(ctx context.Context, kind model.Kind, opts ListOptions, pageSize int) ([]*model.Object, error) {
	opts.Limit = pageSize
	var all []*model.Object
	for {
		page, err := c.List(ctx, kind, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Continue == "" {
			return all, nil
		}
		opts.Continue = page.Continue
	}
}

// Operation is one write of a transaction.
type Operation struct {
	// Op is "create", "update" or "delete".
	Op string `json:"op"`
	// Object is the object to write; a delete needs only kind, metadata.name, metadata.tenant
	// and optionally metadata.resourceVersion as a precondition.
	Object *model.Object `json:"object"`
}

// Operation kinds.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// TransactionResult is the answer to a transaction.
type TransactionResult struct {
	// Revision is the revision of the last operation (the current one for a dry run).
	Revision uint64      `json:"revision"`
	DryRun   bool        `json:"dryRun,omitempty"`
	Results  []Operation `json:"results"`
}

// Transaction commits ops all or nothing; the server validates them together, so relations may
// be satisfied within the batch. An error names the failing operation in its Field
// ("operations[2].object.spec.vlan").
func (c *Client) Transaction(ctx context.Context, ops []Operation, opts ...WriteOption) (*TransactionResult, error) {
	var out TransactionResult
	body := struct {
		Operations []Operation `json:"operations"`
	}{ops}
	if err := c.do(ctx, http.MethodPost, apiPrefix+"/transactions", writeQuery(opts), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DSN returns one DSN (spec model.DSNSpec, status model.DSNStatus).
func (c *Client) DSN(ctx context.Context, id string) (*model.Object, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty DSN id", ErrBadRequest)
	}
	var out model.Object
	if err := c.do(ctx, http.MethodGet, apiPrefix+"/dsns/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DSNs returns one page of DSNs (opts.Tenant is ignored).
func (c *Client) DSNs(ctx context.Context, opts ListOptions) (*List, error) {
	var body listBody
	if err := c.do(ctx, http.MethodGet, apiPrefix+"/dsns", opts.query(), nil, &body); err != nil {
		return nil, err
	}
	return body.list(), nil
}

// Decommission forgets a DSN (it is refused until admitted again) and returns it as it was.
func (c *Client) Decommission(ctx context.Context, id string, opts ...WriteOption) (*model.Object, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty DSN id", ErrBadRequest)
	}
	var out model.Object
	if err := c.do(ctx, http.MethodDelete, apiPrefix+"/dsns/"+url.PathEscape(id), writeQuery(opts), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Convergence reports how far the fleet is towards revision rev; 0 asks about the current one.
func (c *Client) Convergence(ctx context.Context, rev uint64) (model.Convergence, error) {
	q := url.Values{}
	if rev > 0 {
		q.Set("revision", strconv.FormatUint(rev, 10))
	}
	var out model.Convergence
	err := c.do(ctx, http.MethodGet, apiPrefix+"/convergence", q, nil, &out)
	return out, err
}

// Cluster describes the control plane's bus as the replica answering sees it: its NATS node and
// routes, the JetStream meta leader and peers, and which replica owns what.
func (c *Client) Cluster(ctx context.Context) (model.ClusterStatus, error) {
	var out model.ClusterStatus
	err := c.do(ctx, http.MethodGet, apiPrefix+"/cluster", nil, nil, &out)
	return out, err
}

// RevisionInfo is the store's current and compacted revisions.
type RevisionInfo struct {
	Revision          uint64 `json:"revision"`
	CompactedRevision uint64 `json:"compactedRevision"`
}

// Revision returns the revision of the last committed change.
func (c *Client) Revision(ctx context.Context) (uint64, error) {
	info, err := c.RevisionInfo(ctx)
	return info.Revision, err
}

// RevisionInfo returns the current revision and the compaction horizon.
func (c *Client) RevisionInfo(ctx context.Context) (RevisionInfo, error) {
	var out RevisionInfo
	err := c.do(ctx, http.MethodGet, apiPrefix+"/revision", nil, nil, &out)
	return out, err
}

// Healthy returns nil when the control plane process answers /healthz.
func (c *Client) Healthy(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready returns nil when the control plane answers /readyz with 200, else the reason.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// OpenAPI returns the API's OpenAPI 3 document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var raw jsonRaw
	if err := c.do(ctx, http.MethodGet, apiPrefix+"/openapi.json", nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// jsonRaw keeps a JSON answer as bytes.
type jsonRaw []byte

func (r *jsonRaw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// ObjectPath is the API path of the object at key, for callers that GET it themselves.
func ObjectPath(key model.Key) (string, error) { return itemPath(key) }
