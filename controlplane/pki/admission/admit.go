package admission

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// Admitter turns a bootstrap token and a CSR into a DSN identity.
type Admitter struct {
	tokens  *Store
	ca      *pki.CA
	certTTL time.Duration
	ids     *Identities // nil: admissions are not recorded
}

// RecordIdentities makes the Admitter record every admitted DSN's tenant and labels in ids
// before it hands out the certificate, and renew certificates with the recorded tenant. Call
// it before the Admitter is used.
func (a *Admitter) RecordIdentities(ids *Identities) { a.ids = ids }

// NewAdmitter returns an Admitter issuing certificates valid for certTTL (0 means
// pki.DefaultLeafTTL).
func NewAdmitter(tokens *Store, ca *pki.CA, certTTL time.Duration) (*Admitter, error) {
	if tokens == nil || ca == nil {
		return nil, fmt.Errorf("%w: tokens and CA are required", ErrInvalid)
	}
	if certTTL != 0 && (certTTL < pki.MinLeafTTL || certTTL > pki.MaxLeafTTL) {
		return nil, fmt.Errorf("%w: certificate TTL %s: want %s to %s", ErrInvalid, certTTL, pki.MinLeafTTL, pki.MaxLeafTTL)
	}
	return &Admitter{tokens: tokens, ca: ca, certTTL: certTTL}, nil
}

// Request is what a new DSN (or fleet gateway) presents.
type Request struct {
	Token  string
	DSN    string
	Labels map[string]string
	CSR    []byte
}

// Grant is what an admitted DSN is given.
type Grant struct {
	// Certificate is the DSN's identity in PEM, for the key of its CSR.
	Certificate []byte
	NotAfter    time.Time
	// Role is the identity's pki role: pki.RoleDSN, or pki.RoleGateway for a gateway token.
	Role string
	// TokenID, Tenant and Labels say what the token admitted: Labels are the DSN's own labels
	// with the token's added.
	TokenID string
	Tenant  string
	Labels  map[string]string
}

// Admit admits a DSN, or a fleet gateway when the token is a gateway token. The CSR is checked
// first (well formed, self-signed, asking for exactly the DSN's id), so that a bad one does not
// spend the token; then one use of the token is spent (refused if the DSN's labels contradict
// the token's, or if the CSR asks for another role than the token admits); then the
// certificate is signed.
func (a *Admitter) Admit(ctx context.Context, req Request) (Grant, error) {
	if msg := pki.CheckName(req.DSN); msg != "" {
		return Grant{}, fmt.Errorf("%w: dsn: %s", ErrInvalid, msg)
	}
	errs := &model.FieldErrors{}
	model.ValidateLabels(req.Labels, "labels", errs)
	if errs.Len() > 0 {
		return Grant{}, fmt.Errorf("%w: %w", ErrInvalid, errs)
	}
	csr, err := pki.ParseCSR(req.CSR)
	if err != nil {
		return Grant{}, err
	}
	// The CN is checked now; the role of the URI SAN (if any) once the token says which role
	// it admits.
	if csr.Subject.CommonName != req.DSN {
		return Grant{}, fmt.Errorf("%w: the CSR's common name is %q, want %q", pki.ErrIdentity, csr.Subject.CommonName, req.DSN)
	}
	var id pki.Identity
	tok, err := a.tokens.Consume(ctx, req.Token, req.DSN, func(t Token) error {
		id = pki.Identity{Name: req.DSN, Role: t.IdentityRole(), Tenant: t.Tenant}
		if err := pki.CheckCSRFor(csr, id); err != nil {
			return err
		}
		if id.Role == pki.RoleGateway && len(req.Labels) > 0 {
			return fmt.Errorf("%w: a gateway carries no labels", ErrLabelConflict)
		}
		for k, v := range t.Labels {
			if have, ok := req.Labels[k]; ok && have != v {
				return fmt.Errorf("%w: label %q is %q, the token says %q", ErrLabelConflict, k, have, v)
			}
		}
		return nil
	})
	if err != nil {
		return Grant{}, err
	}
	labels := maps.Clone(req.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, tok.Labels)
	certPEM, err := a.ca.SignRequestFor(csr, id, a.certTTL)
	if err != nil {
		return Grant{}, err
	}
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return Grant{}, err
	}
	// The record is written before the certificate is handed out, so that the DSN's first
	// Hello finds it.
	if a.ids != nil && id.Role == pki.RoleDSN {
		if err := a.ids.Put(ctx, Admitted{DSN: req.DSN, Tenant: tok.Tenant, Labels: labels, TokenID: tok.ID, AdmittedAt: cert.NotBefore.Add(pki.ClockSkew).UTC()}); err != nil {
			return Grant{}, err
		}
	}
	return Grant{Certificate: certPEM, NotAfter: cert.NotAfter, Role: id.Role, TokenID: tok.ID, Tenant: tok.Tenant, Labels: labels}, nil
}

// Renew signs a new certificate for a DSN that already has an identity. dsn must be the
// identity of the connection the request came on (for NATS, the id in the subject, which the
// server's per-identity permissions let only that DSN publish on); the CSR must ask for
// exactly it.
//
// The new certificate carries the tenant the DSN was admitted into, from its admission record.
func (a *Admitter) Renew(ctx context.Context, dsn string, csrPEM []byte) ([]byte, error) {
	id := pki.Identity{Name: dsn, Role: pki.RoleDSN}
	if a.ids != nil {
		rec, ok, err := a.ids.Get(ctx, dsn)
		if err != nil {
			return nil, err
		}
		if ok {
			id.Tenant = rec.Tenant
		}
	}
	return a.ca.SignCSRFor(csrPEM, id, a.certTTL)
}
