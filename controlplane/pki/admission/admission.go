// Package admission admits new DSNs: bootstrap tokens (created through the API, scoped to a
// tenant and labels, expiring, single- or multi-use, revocable) that let a DSN exchange a
// certificate signing request for its identity, and the renewal of identities.
//
// A token's secret is shown once, at creation; the store keeps only its SHA-256. Consuming a
// token is a compare-and-swap on its record in a JetStream key-value bucket, so a single-use
// token admits one DSN even when several present it at the same moment.
package admission

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// Defaults and limits.
const (
	DefaultBucket     = "dsn-bootstrap-tokens"
	DefaultTokenTTL   = 24 * time.Hour
	MaxTokenTTL       = 30 * 24 * time.Hour
	MaxUses           = 100000
	MaxDescriptionLen = 256
	// SecretPrefix starts every token secret, so that one is recognisable in a log or a leak scan.
	SecretPrefix = "dsnbt"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrInvalidToken marks a secret that is malformed, unknown or wrong; it never says which.
	ErrInvalidToken = errors.New("admission: invalid bootstrap token")
	// ErrExpired marks a token past its expiry.
	ErrExpired = errors.New("admission: bootstrap token expired")
	// ErrRevoked marks a revoked token.
	ErrRevoked = errors.New("admission: bootstrap token revoked")
	// ErrExhausted marks a token whose uses are all spent (a replayed single-use token).
	ErrExhausted = errors.New("admission: bootstrap token already used")
	// ErrNotForDSN marks a token that admits another DSN id.
	ErrNotForDSN = errors.New("admission: bootstrap token is for another DSN")
	// ErrLabelConflict marks a DSN whose labels contradict its token's.
	ErrLabelConflict = errors.New("admission: labels conflict with the bootstrap token's")
	// ErrNotFound marks a token id that does not exist.
	ErrNotFound = errors.New("admission: not found")
	// ErrInvalid marks a bad token spec or admission request; token specs also carry
	// *model.FieldErrors.
	ErrInvalid = errors.New("admission: invalid input")
	// ErrNoIdentity marks a DSN with no admission record.
	ErrNoIdentity = errors.New("admission: no admitted identity")
	// ErrUnavailable marks a store that did not answer.
	ErrUnavailable = errors.New("admission: store unavailable")
)

// Roles a token admits.
const (
	// RoleDSN admits DSNs (the default).
	RoleDSN = "dsn"
	// RoleGateway admits fleet gateways: identities that speak for many simulated DSNs over one
	// connection (a simulation-only trust level, see docs/PROTOCOL.md). Gateway tokens are
	// cluster-wide: they name no tenant and no labels.
	RoleGateway = "gateway"
)

// Spec is what a bootstrap token is created with.
type Spec struct {
	// Role is what the token admits: RoleDSN (empty means it) or RoleGateway.
	Role string `json:"role,omitempty"`
	// Tenant is the tenant admitted DSNs belong to. Required for DSN tokens; empty for gateway
	// tokens.
	Tenant string `json:"tenant,omitempty"`
	// Labels are given to every DSN admitted with the token.
	Labels map[string]string `json:"labels,omitempty"`
	// DSN, when set, is the only identity name (DSN id or gateway name) the token admits.
	DSN string `json:"dsn,omitempty"`
	// TTLSeconds is the token's lifetime; 0 means DefaultTokenTTL.
	TTLSeconds int64 `json:"ttlSeconds,omitempty"`
	// Uses is how many admissions the token allows; 0 means 1 (single use).
	Uses int `json:"uses,omitempty"`
	// Description is for operators.
	Description string `json:"description,omitempty"`
}

// Validate checks the spec; errors are a *model.FieldErrors (wrapped with ErrInvalid) naming
// the fields.
func (s *Spec) Validate() error {
	errs := &model.FieldErrors{}
	switch s.Role {
	case "", RoleDSN:
		if msg := model.CheckName(s.Tenant); msg != "" {
			errs.Add("tenant", msg)
		}
	case RoleGateway:
		if s.Tenant != "" {
			errs.Add("tenant", "a gateway token is cluster-wide: leave the tenant out")
		}
		if len(s.Labels) > 0 {
			errs.Add("labels", "a gateway token carries no labels")
		}
	default:
		errs.Add("role", fmt.Sprintf("%q: want %q (the default) or %q", s.Role, RoleDSN, RoleGateway))
	}
	model.ValidateLabels(s.Labels, "labels", errs)
	if s.DSN != "" {
		if msg := model.CheckDSNID(s.DSN); msg != "" {
			errs.Add("dsn", msg)
		}
	}
	if s.TTLSeconds < 0 || time.Duration(s.TTLSeconds)*time.Second > MaxTokenTTL {
		errs.Add("ttlSeconds", fmt.Sprintf("%d: want 0 (the default, %s) to %d", s.TTLSeconds, DefaultTokenTTL, int64(MaxTokenTTL/time.Second)))
	}
	if s.Uses < 0 || s.Uses > MaxUses {
		errs.Add("uses", fmt.Sprintf("%d: want 0 (single use) to %d", s.Uses, MaxUses))
	}
	if s.DSN != "" && s.Uses > 1 {
		errs.Add("uses", "a token for one DSN is single-use")
	}
	if len(s.Description) > MaxDescriptionLen || strings.ContainsFunc(s.Description, func(r rune) bool { return r < ' ' }) {
		errs.Add("description", fmt.Sprintf("at most %d bytes, no control characters", MaxDescriptionLen))
	}
	if errs.Len() > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errs)
	}
	return nil
}

// Token is a bootstrap token as the API shows it: everything but the secret.
type Token struct {
	ID          string            `json:"id"`
	Role        string            `json:"role"`
	Tenant      string            `json:"tenant,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	DSN         string            `json:"dsn,omitempty"`
	Description string            `json:"description,omitempty"`
	Uses        int               `json:"uses"`
	Used        int               `json:"used"`
	CreatedAt   time.Time         `json:"createdAt"`
	CreatedBy   string            `json:"createdBy,omitempty"`
	ExpiresAt   time.Time         `json:"expiresAt"`
	RevokedAt   *time.Time        `json:"revokedAt,omitempty"`
	LastUsedBy  string            `json:"lastUsedBy,omitempty"`
	LastUsedAt  *time.Time        `json:"lastUsedAt,omitempty"`
}

// Token states.
const (
	StateActive    = "active"
	StateExpired   = "expired"
	StateRevoked   = "revoked"
	StateExhausted = "exhausted"
)

// IdentityRole is the pki role of the identities the token admits.
func (t *Token) IdentityRole() string {
	if t.Role == RoleGateway {
		return pki.RoleGateway
	}
	return pki.RoleDSN
}

// State is the token's state at now.
func (t *Token) State(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return StateRevoked
	case !now.Before(t.ExpiresAt):
		return StateExpired
	case t.Used >= t.Uses:
		return StateExhausted
	}
	return StateActive
}

// The secret is "dsnbt.<id>.<key>": id is 16 hex digits, key 32 random bytes in unpadded
// base64url (43 characters).
const (
	idLen  = 16
	keyLen = 32
)

// ParseSecret splits a token secret into its id and key. Errors wrap ErrInvalidToken.
func ParseSecret(secret string) (id string, key []byte, err error) {
	if len(secret) > 256 {
		return "", nil, fmt.Errorf("%w: %d bytes", ErrInvalidToken, len(secret))
	}
	parts := strings.Split(secret, ".")
	if len(parts) != 3 || parts[0] != SecretPrefix {
		return "", nil, fmt.Errorf("%w: want %s.<id>.<key>", ErrInvalidToken, SecretPrefix)
	}
	id = parts[1]
	if len(id) != idLen || !isLowerHex(id) {
		return "", nil, fmt.Errorf("%w: the id is not %d lowercase hex digits", ErrInvalidToken, idLen)
	}
	key, err = base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(key) != keyLen {
		return "", nil, fmt.Errorf("%w: the key is not %d bytes of base64url", ErrInvalidToken, keyLen)
	}
	return id, key, nil
}

func formatSecret(id string, key []byte) string {
	return SecretPrefix + "." + id + "." + base64.RawURLEncoding.EncodeToString(key)
}

func hashKey(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
