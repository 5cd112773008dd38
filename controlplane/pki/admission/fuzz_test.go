package admission

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseSecret checks that parsing never panics and that what parses formats back to itself.
func FuzzParseSecret(f *testing.F) {
	f.Add("dsnbt.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("dsnbt.0123456789abcdef.")
	f.Add("dsnbt...")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, key, err := ParseSecret(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidToken)
			return
		}
		require.Equal(t, s, formatSecret(id, key))
	})
}

// FuzzConsume presents arbitrary secrets to a real store holding one multi-use token: only its
// own secret may spend a use.
func FuzzConsume(f *testing.F) {
	e := newEnv(f)
	secret, _ := e.create(f, Spec{Tenant: "acme", Uses: MaxUses})
	parts := strings.Split(secret, ".")
	f.Add(secret)
	f.Add(parts[0] + "." + parts[1] + "." + strings.Repeat("A", 43))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(strings.ToUpper(secret))
	f.Fuzz(func(t *testing.T, s string) {
		_, err := e.tokens.Consume(context.Background(), s, "dsn-1", nil)
		if err == nil {
			require.Equal(t, secret, s)
		}
	})
}
