package admission

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	clk    *fakeClock
	tokens *Store
	ca     *pki.CA
	adm    *Admitter
	ids    *Identities
	url    string // the bus's
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	clk := &fakeClock{t: time.Now().Truncate(time.Second)}
	tokens, err := OpenStore(context.Background(), js, "", clk.Now)
	require.NoError(t, err)
	ca, err := pki.OpenCA(t.TempDir(), clk.Now)
	require.NoError(t, err)
	adm, err := NewAdmitter(tokens, ca, time.Hour)
	require.NoError(t, err)
	ids, err := OpenIdentities(context.Background(), js, "")
	require.NoError(t, err)
	adm.RecordIdentities(ids)
	return &env{clk: clk, tokens: tokens, ca: ca, adm: adm, ids: ids, url: s.URL()}
}

func (e *env) create(t testing.TB, spec Spec) (string, Token) {
	t.Helper()
	secret, tok, err := e.tokens.Create(context.Background(), spec, "admin")
	require.NoError(t, err)
	return secret, tok
}

func csrFor(t testing.TB, id string) []byte {
	t.Helper()
	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSR(key, id)
	require.NoError(t, err)
	return csr
}

func TestSpecValidate(t *testing.T) {
	require.NoError(t, (&Spec{Tenant: "acme", Labels: map[string]string{"site": "par1"}, Uses: 10, TTLSeconds: 3600}).Validate())
	tests := []struct {
		name  string
		spec  Spec
		field string
	}{
		{"no tenant", Spec{}, "tenant"},
		{"bad tenant", Spec{Tenant: "Acme"}, "tenant"},
		{"bad label", Spec{Tenant: "acme", Labels: map[string]string{"": "x"}}, `labels[""]`},
		{"bad dsn", Spec{Tenant: "acme", DSN: "a.b"}, "dsn"},
		{"ttl too long", Spec{Tenant: "acme", TTLSeconds: int64(MaxTokenTTL/time.Second) + 1}, "ttlSeconds"},
		{"negative ttl", Spec{Tenant: "acme", TTLSeconds: -1}, "ttlSeconds"},
		{"too many uses", Spec{Tenant: "acme", Uses: MaxUses + 1}, "uses"},
		{"multi-use for one DSN", Spec{Tenant: "acme", DSN: "dsn-1", Uses: 2}, "uses"},
		{"control characters", Spec{Tenant: "acme", Description: "a\nb"}, "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			var fe *model.FieldErrors
			require.True(t, errors.As(err, &fe))
			require.Equal(t, tt.field, fe.Errors[0].Field)
		})
	}
}

func TestParseSecret(t *testing.T) {
	e := newEnv(t)
	secret, tok := e.create(t, Spec{Tenant: "acme"})
	require.True(t, strings.HasPrefix(secret, SecretPrefix+"."))
	id, key, err := ParseSecret(secret)
	require.NoError(t, err)
	require.Equal(t, tok.ID, id)
	require.Len(t, key, keyLen)
	for _, bad := range []string{"", "dsnbt", "dsnbt..", "x." + id + ".AAAA", "dsnbt." + strings.ToUpper(id) + "." + strings.Split(secret, ".")[2],
		"dsnbt." + id + ".short", "dsnbt." + id + "." + strings.Split(secret, ".")[2] + "A", secret + ".x", strings.Repeat("a", 300)} {
		_, _, err := ParseSecret(bad)
		require.ErrorIs(t, err, ErrInvalidToken, bad)
	}
}

func TestSingleUseTokenCannotBeReplayed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	secret, _ := e.create(t, Spec{Tenant: "acme"})
	tok, err := e.tokens.Consume(ctx, secret, "dsn-1", nil)
	require.NoError(t, err)
	require.Equal(t, 1, tok.Used)
	require.Equal(t, "dsn-1", tok.LastUsedBy)
	_, err = e.tokens.Consume(ctx, secret, "dsn-2", nil)
	require.ErrorIs(t, err, ErrExhausted)
	_, err = e.tokens.Consume(ctx, secret, "dsn-1", nil)
	require.ErrorIs(t, err, ErrExhausted, "not even by the DSN that used it")
}

func TestConcurrentUseSpendsEachUseOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// Concurrent uses of one token are written together: each must still see the count the
	// ones before it in its write left, and be granted only while uses remain.
	for _, uses := range []int{1, 3, 40} {
		secret, tok := e.create(t, Spec{Tenant: "acme", Uses: uses})
		tries := uses + 12
		var wg sync.WaitGroup
		type result struct {
			tok Token
			err error
		}
		results := make(chan result, tries)
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := e.tokens.Consume(ctx, secret, fmt.Sprintf("dsn-%d", i), nil)
				results <- result{got, err}
			}()
		}
		wg.Wait()
		close(results)
		counts := map[int]bool{}
		for r := range results {
			if r.err != nil {
				require.ErrorIs(t, r.err, ErrExhausted)
				continue
			}
			require.False(t, counts[r.tok.Used], "uses=%d: two grants saw the count %d", uses, r.tok.Used)
			counts[r.tok.Used] = true
		}
		require.Len(t, counts, uses, "uses=%d", uses)
		for n := 1; n <= uses; n++ {
			require.True(t, counts[n], "uses=%d: no grant saw the count %d", uses, n)
		}
		got, err := e.tokens.Get(ctx, tok.ID)
		require.NoError(t, err)
		require.Equal(t, uses, got.Used)
		require.Equal(t, StateExhausted, got.State(e.clk.Now()))
	}
}

func TestRefusedUseInABatchSpendsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	secret, tok := e.create(t, Spec{Tenant: "acme", Uses: 100})
	const tries = 30
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.tokens.Consume(ctx, secret, fmt.Sprintf("dsn-%d", i), func(Token) error {
				if i%3 == 0 {
					return ErrLabelConflict
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%3 == 0 {
			require.ErrorIs(t, err, ErrLabelConflict, "try %d", i)
		} else {
			require.NoError(t, err, "try %d", i)
		}
	}
	got, err := e.tokens.Get(ctx, tok.ID)
	require.NoError(t, err)
	require.Equal(t, tries-tries/3, got.Used)
}

func TestConsumeRefuses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	good, goodTok := e.create(t, Spec{Tenant: "acme", Uses: 100})
	parts := strings.Split(good, ".")
	other, _ := e.create(t, Spec{Tenant: "acme"})
	wrongKey := parts[0] + "." + parts[1] + "." + strings.Split(other, ".")[2]
	unknown := parts[0] + ".0123456789abcdef." + parts[2]
	forOne, _ := e.create(t, Spec{Tenant: "acme", DSN: "dsn-7"})
	revoked, revokedTok := e.create(t, Spec{Tenant: "acme"})
	_, err := e.tokens.Revoke(ctx, revokedTok.ID)
	require.NoError(t, err)
	short, _ := e.create(t, Spec{Tenant: "acme", TTLSeconds: 60})

	tests := []struct {
		name   string
		secret string
		dsn    string
		want   error
	}{
		{"wrong key for a real id", wrongKey, "dsn-1", ErrInvalidToken},
		{"unknown id", unknown, "dsn-1", ErrInvalidToken},
		{"garbage", "hello", "dsn-1", ErrInvalidToken},
		{"token for another DSN", forOne, "dsn-1", ErrNotForDSN},
		{"revoked", revoked, "dsn-1", ErrRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.tokens.Consume(ctx, tt.secret, tt.dsn, nil)
			require.ErrorIs(t, err, tt.want)
		})
	}
	got, err := e.tokens.Get(ctx, goodTok.ID)
	require.NoError(t, err)
	require.Zero(t, got.Used, "failed attempts spend nothing")
	_, err = e.tokens.Consume(ctx, forOne, "dsn-7", nil)
	require.NoError(t, err, "a token for one DSN works for it")

	e.clk.Add(61 * time.Second)
	_, err = e.tokens.Consume(ctx, short, "dsn-1", nil)
	require.ErrorIs(t, err, ErrExpired)
}

func TestAdmit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	secret, tok := e.create(t, Spec{Tenant: "acme", Labels: map[string]string{"site": "par1"}})

	// Attack: a CSR for someone else's identity. It is refused and spends nothing.
	_, err := e.adm.Admit(ctx, Request{Token: secret, DSN: "dsn-1", CSR: csrFor(t, "dsn-2")})
	require.ErrorIs(t, err, pki.ErrIdentity)
	_, err = e.adm.Admit(ctx, Request{Token: secret, DSN: "dsn-1", CSR: []byte("garbage")})
	require.ErrorIs(t, err, pki.ErrInvalidCSR)
	_, err = e.adm.Admit(ctx, Request{Token: secret, DSN: "dsn-1", Labels: map[string]string{"site": "lon1"}, CSR: csrFor(t, "dsn-1")})
	require.ErrorIs(t, err, ErrLabelConflict)
	_, err = e.adm.Admit(ctx, Request{Token: secret, DSN: "bad id!", CSR: csrFor(t, "dsn-1")})
	require.ErrorIs(t, err, ErrInvalid)
	got, err := e.tokens.Get(ctx, tok.ID)
	require.NoError(t, err)
	require.Zero(t, got.Used)

	g, err := e.adm.Admit(ctx, Request{Token: secret, DSN: "dsn-1", Labels: map[string]string{"rack": "r1"}, CSR: csrFor(t, "dsn-1")})
	require.NoError(t, err)
	require.Equal(t, "acme", g.Tenant)
	require.Equal(t, tok.ID, g.TokenID)
	require.Equal(t, map[string]string{"rack": "r1", "site": "par1"}, g.Labels)
	cert, err := pki.ParseCertificatePEM(g.Certificate)
	require.NoError(t, err)
	id, err := e.ca.Verify([]*x509.Certificate{cert})
	require.NoError(t, err)
	require.Equal(t, pki.Identity{Name: "dsn-1", Role: pki.RoleDSN, Tenant: "acme"}, id)
	require.Equal(t, e.clk.Now().Add(time.Hour).Unix(), g.NotAfter.Unix())
	rec, ok, err := e.ids.Get(ctx, "dsn-1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "acme", rec.Tenant)
	require.Equal(t, g.Labels, rec.Labels)

	// Attack: replaying the single-use token.
	_, err = e.adm.Admit(ctx, Request{Token: secret, DSN: "dsn-2", CSR: csrFor(t, "dsn-2")})
	require.ErrorIs(t, err, ErrExhausted)

	// Renewal: the DSN's own id only.
	renewed, err := e.adm.Renew(ctx, "dsn-1", csrFor(t, "dsn-1"))
	require.NoError(t, err)
	rcert, err := pki.ParseCertificatePEM(renewed)
	require.NoError(t, err)
	rid, err := pki.IdentityOf(rcert)
	require.NoError(t, err)
	require.Equal(t, "acme", rid.Tenant, "a renewed certificate keeps the admitted tenant")
	// Labels change through SetLabels only; a DSN with no record has none to change.
	rec, err = e.ids.SetLabels(ctx, "dsn-1", map[string]string{"site": "par1", "role": "web"})
	require.NoError(t, err)
	require.Equal(t, "acme", rec.Tenant)
	_, err = e.ids.SetLabels(ctx, "dsn-9", map[string]string{"site": "par1"})
	require.ErrorIs(t, err, ErrNoIdentity)
	_, err = e.adm.Renew(ctx, "dsn-1", csrFor(t, "dsn-2"))
	require.ErrorIs(t, err, pki.ErrIdentity)
}

func TestAnotherReplicasChangeIsSeen(t *testing.T) {
	ctx := context.Background()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	open := func() *Store {
		nc, err := nats.Connect(s.URL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		st, err := OpenStore(ctx, js, "", nil)
		require.NoError(t, err)
		return st
	}
	a, b := open(), open()
	secret, tok, err := a.Create(ctx, Spec{Tenant: "acme", Uses: 10}, "admin")
	require.NoError(t, err)
	_, err = a.Consume(ctx, secret, "dsn-1", nil)
	require.NoError(t, err)
	// b spends a use and then revokes the token: a, which wrote the record last, must not
	// write over either.
	got, err := b.Consume(ctx, secret, "dsn-2", nil)
	require.NoError(t, err)
	require.Equal(t, 2, got.Used)
	got, err = a.Consume(ctx, secret, "dsn-3", nil)
	require.NoError(t, err)
	require.Equal(t, 3, got.Used, "a counts b's use")
	_, err = b.Revoke(ctx, tok.ID)
	require.NoError(t, err)
	_, err = a.Consume(ctx, secret, "dsn-4", nil)
	require.ErrorIs(t, err, ErrRevoked)
	final, err := a.Get(ctx, tok.ID)
	require.NoError(t, err)
	require.Equal(t, 3, final.Used)
	require.NotNil(t, final.RevokedAt)
}
