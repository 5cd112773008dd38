package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Roles of bootstrap tokens and identities.
const (
	RoleDSN     = "dsn"
	RoleGateway = "gateway"
)

// BootstrapTokenSpec is what a bootstrap token is created with (POST /api/v1/bootstraptokens).
type BootstrapTokenSpec struct {
	// Role is "dsn" (empty means it) or "gateway" (a fleet gateway: cluster-wide, no tenant).
	Role        string            `json:"role,omitempty"`
	Tenant      string            `json:"tenant,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	DSN         string            `json:"dsn,omitempty"`
	TTLSeconds  int64             `json:"ttlSeconds,omitempty"`
	Uses        int               `json:"uses,omitempty"`
	Description string            `json:"description,omitempty"`
}

// BootstrapToken is a token as the API shows it.
type BootstrapToken struct {
	ID        string            `json:"id"`
	Role      string            `json:"role"`
	Tenant    string            `json:"tenant,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	DSN       string            `json:"dsn,omitempty"`
	Uses      int               `json:"uses"`
	Used      int               `json:"used"`
	ExpiresAt time.Time         `json:"expiresAt"`
	State     string            `json:"state"`
}

// CreatedBootstrapToken is the answer to a creation: the secret (shown this once) and the token.
type CreatedBootstrapToken struct {
	Secret string         `json:"token"`
	Token  BootstrapToken `json:"bootstrapToken"`
}

// CreateBootstrapToken creates a bootstrap token.
func (c *Client) CreateBootstrapToken(ctx context.Context, spec BootstrapTokenSpec) (*CreatedBootstrapToken, error) {
	var out CreatedBootstrapToken
	if err := c.do(ctx, http.MethodPost, apiPrefix+"/bootstraptokens", nil, spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeBootstrapToken revokes a bootstrap token at once.
func (c *Client) RevokeBootstrapToken(ctx context.Context, id string) (*BootstrapToken, error) {
	var out BootstrapToken
	if err := c.do(ctx, http.MethodDelete, apiPrefix+"/bootstraptokens/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AdmitRequest is what a new DSN (or fleet gateway) presents to be given its identity.
type AdmitRequest struct {
	Token  string            `json:"token"`
	DSN    string            `json:"dsn"`
	Labels map[string]string `json:"labels,omitempty"`
	// CSR is a PEM certificate signing request for the DSN's own key.
	CSR string `json:"csr"`
}

// AdmitResponse is an identity: the certificate, the CA to trust the bus and the API with, and
// what the token admitted.
type AdmitResponse struct {
	Certificate string            `json:"certificate"`
	CA          string            `json:"ca"`
	NotAfter    time.Time         `json:"notAfter"`
	Role        string            `json:"role"`
	Tenant      string            `json:"tenant,omitempty"`
	Labels      map[string]string `json:"labels"`
}

// Admit exchanges a bootstrap token and a CSR for an identity (POST /api/v1/admission). It
// needs no login: the token is the credential.
func (c *Client) Admit(ctx context.Context, req AdmitRequest) (*AdmitResponse, error) {
	var out AdmitResponse
	if err := c.doAnonymous(ctx, http.MethodPost, apiPrefix+"/admission", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// doAnonymous is do without a token, for the public routes.
func (c *Client) doAnonymous(ctx context.Context, method, path string, body, out any) error {
	anon := *c
	anon.token, anon.login = "", nil
	return anon.do(ctx, method, path, nil, body, out)
}

// User is a user as the API shows it.
type User struct {
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	Disabled bool     `json:"disabled,omitempty"`
}

// UserSpec creates or replaces a user; on update an empty Password keeps the current one.
type UserSpec struct {
	Name     string   `json:"name"`
	Password string   `json:"password,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
}

// CreateUser creates a local user (admin only).
func (c *Client) CreateUser(ctx context.Context, u UserSpec) (*User, error) {
	var out User
	if err := c.do(ctx, http.MethodPost, apiPrefix+"/users", nil, u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rule grants verbs on kinds in tenants ("*" for every one).
type Rule struct {
	Verbs   []string `json:"verbs"`
	Kinds   []string `json:"kinds"`
	Tenants []string `json:"tenants"`
}

// Role is a named set of rules.
type Role struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Subject is a user or group a binding names (Kind "User" or "Group").
type Subject struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// RoleBinding gives a role to subjects.
type RoleBinding struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Subjects []Subject `json:"subjects"`
}

// PutRole creates or replaces a role (admin only).
func (c *Client) PutRole(ctx context.Context, r Role) error {
	return c.do(ctx, http.MethodPut, apiPrefix+"/roles/"+url.PathEscape(r.Name), nil, r, nil)
}

// PutRoleBinding creates or replaces a role binding (admin only).
func (c *Client) PutRoleBinding(ctx context.Context, b RoleBinding) error {
	return c.do(ctx, http.MethodPut, apiPrefix+"/rolebindings/"+url.PathEscape(b.Name), nil, b, nil)
}

// AuditRecord is one audited API call.
type AuditRecord struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	User    string    `json:"user,omitempty"`
	Source  string    `json:"source,omitempty"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Verb    string    `json:"verb,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	Tenant  string    `json:"tenant,omitempty"`
	Name    string    `json:"name,omitempty"`
	Status  int       `json:"status"`
	Verdict string    `json:"verdict"`
	Binding string    `json:"binding,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// AuditResult is what an audit search found.
type AuditResult struct {
	Items []AuditRecord `json:"items"`
	Total int           `json:"total"`
}

// Audit searches the audit trail (GET /api/v1/audit) with the query parameters user, kind,
// verb, tenant, verdict, from, to, text and limit.
func (c *Client) Audit(ctx context.Context, q url.Values) (*AuditResult, error) {
	var out AuditResult
	if err := c.do(ctx, http.MethodGet, apiPrefix+"/audit", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BootstrapTokens lists the bootstrap tokens the caller may see.
func (c *Client) BootstrapTokens(ctx context.Context) ([]BootstrapToken, error) {
	var out struct {
		Items []BootstrapToken `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, apiPrefix+"/bootstraptokens", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}
