package store

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// clusterTenant stands for the empty tenant of cluster-scoped objects in KV keys.
const clusterTenant = "_"

// maxTokenLen bounds one key token; names and tenants are DNS labels (63 bytes) and kinds are
// short words, so anything longer is a caller bug rather than an object.
const maxTokenLen = 253

// kvKey encodes key as the KV key "<kind>.<tenant or _>.<name>", or says why it cannot be one.
// Each part must be a single KV token, otherwise two distinct keys could collide or a key could
// spill into a wildcard.
func kvKey(key model.Key) (string, error) {
	if err := checkToken("kind", string(key.Kind)); err != nil {
		return "", fmt.Errorf("key %s: %w", key, err)
	}
	tenant := key.Tenant
	if tenant == clusterTenant {
		return "", fmt.Errorf("key %s: tenant %q is reserved: %w", key, clusterTenant, ErrInvalid)
	}
	if tenant == "" {
		tenant = clusterTenant
	} else if err := checkToken("tenant", tenant); err != nil {
		return "", fmt.Errorf("key %s: %w", key, err)
	}
	if err := checkToken("name", key.Name); err != nil {
		return "", fmt.Errorf("key %s: %w", key, err)
	}
	return string(key.Kind) + "." + tenant + "." + key.Name, nil
}

// checkToken accepts what a KV key token may hold, without the dot that separates tokens.
func checkToken(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty: %w", field, ErrInvalid)
	}
	if len(s) > maxTokenLen {
		return fmt.Errorf("%s is %d bytes long, at most %d: %w", field, len(s), maxTokenLen, ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '=' || c == '/':
		default:
			return fmt.Errorf("%s %q: character %q at offset %d is not allowed in a key: %w", field, s, c, i, ErrInvalid)
		}
	}
	return nil
}

// parseKVKey is the inverse of kvKey.
func parseKVKey(s string) (model.Key, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return model.Key{}, fmt.Errorf("KV key %q does not have three tokens: %w", s, ErrInvalid)
	}
	key := model.Key{Kind: model.Kind(parts[0]), Tenant: parts[1], Name: parts[2]}
	if key.Tenant == clusterTenant {
		key.Tenant = ""
	}
	enc, err := kvKey(key)
	if err != nil {
		return model.Key{}, err
	}
	if enc != s {
		return model.Key{}, fmt.Errorf("KV key %q is not canonical: %w", s, ErrInvalid)
	}
	return key, nil
}

// compareKeys orders keys by kind, tenant, then name: the order of List and of views.
func compareKeys(a, b model.Key) int {
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// encodeContinue makes the opaque continue token that resumes a list after key.
func encodeContinue(key model.Key) string {
	s, err := kvKey(key)
	if err != nil {
		// Stored keys were validated on the way in.
		panic(fmt.Sprintf("store: stored key %s is invalid: %v", key, err))
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeContinue reads a continue token of a list of kind.
func decodeContinue(token string, kind model.Kind) (model.Key, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return model.Key{}, fmt.Errorf("continue token %q: not a token from a previous page: %w", token, ErrInvalid)
	}
	key, err := parseKVKey(string(raw))
	if err != nil {
		return model.Key{}, fmt.Errorf("continue token %q: %w", token, err)
	}
	if key.Kind != kind {
		return model.Key{}, fmt.Errorf("continue token %q belongs to a list of %s, not %s: %w", token, key.Kind, kind, ErrInvalid)
	}
	return key, nil
}
