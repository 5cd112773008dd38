package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// claimsFor are well-formed claims for user, as Issue would write them at now.
func claimsFor(tk *Tokens, user string, now time.Time) tokenClaims {
	return tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tk.cfg.Issuer,
			Subject:   user,
			Audience:  jwt.ClaimStrings{tk.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        strings.Repeat("ab", 16),
		},
		IssuedNano: now.UnixNano(),
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestTokenAttacks is the table of attacks on bearer tokens: each must be refused with the
// expected error.
func TestTokenAttacks(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	tk := openTokens(t, startJS(t), clk)
	other := openTokens(t, startJS(t), clk) // another control plane's keys
	st := tk.currentKeys()
	now := clk.Now()

	good, _, err := tk.Issue(Principal{User: "alice", Groups: []string{"ops"}})
	require.NoError(t, err)
	p, err := tk.Verify(ctx, good)
	require.NoError(t, err)
	require.Equal(t, "alice", p.User)
	require.Equal(t, []string{"ops"}, p.Groups)

	parts := strings.Split(good, ".")
	require.Len(t, parts, 3)
	var goodClaims map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &goodClaims))
	escalated := map[string]any{}
	for k, v := range goodClaims {
		escalated[k] = v
	}
	escalated["sub"] = "admin"
	escalated["groups"] = []string{"admins"}

	fromOther, _, err := other.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	_, strangerKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub := st.verify[st.kid].pub

	wrongAud := claimsFor(tk, "alice", now)
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	wrongIss := claimsFor(tk, "alice", now)
	wrongIss.Issuer = "evil"
	noExp := claimsFor(tk, "alice", now)
	noExp.ExpiresAt = nil
	future := claimsFor(tk, "alice", now.Add(time.Hour))
	badSub := claimsFor(tk, "alice", now)
	badSub.Subject = "not a user"
	noJTI := claimsFor(tk, "alice", now)
	noJTI.ID = ""

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"no token", "", ErrUnauthenticated},
		{"garbage", "not.a.token", ErrInvalidToken},
		{"too long", strings.Repeat("a", MaxTokenLen+1), ErrInvalidToken},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT", "kid": st.kid}) + "." + parts[1] + ".", ErrInvalidToken},
		{"alg none, upper case", b64(map[string]string{"alg": "NONE", "typ": "JWT", "kid": st.kid}) + "." + parts[1] + ".", ErrInvalidToken},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, []byte(pub), st.kid, claimsFor(tk, "alice", now)), ErrInvalidToken},
		{"ES256 with another key", sign(t, jwt.SigningMethodES256, ecKey, st.kid, claimsFor(tk, "alice", now)), ErrInvalidToken},
		{"signed by another key under our kid", sign(t, jwt.SigningMethodEdDSA, strangerKey, st.kid, claimsFor(tk, "alice", now)), ErrInvalidToken},
		{"signed by another key, no kid", sign(t, jwt.SigningMethodEdDSA, strangerKey, "", claimsFor(tk, "alice", now)), ErrInvalidToken},
		{"issued by another control plane", fromOther, ErrInvalidToken},
		{"escalated claims, old signature", parts[0] + "." + b64(escalated) + "." + parts[2], ErrInvalidToken},
		{"signature cut off", parts[0] + "." + parts[1] + ".", ErrInvalidToken},
		{"wrong audience", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, wrongAud), ErrInvalidToken},
		{"wrong issuer", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, wrongIss), ErrInvalidToken},
		{"no expiry", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, noExp), ErrInvalidToken},
		{"issued in the future", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, future), ErrInvalidToken},
		{"malformed subject", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, badSub), ErrInvalidToken},
		{"no token id", sign(t, jwt.SigningMethodEdDSA, st.priv, st.kid, noJTI), ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tk.Verify(ctx, tt.token)
			t.Log(err)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, p)
		})
	}

	t.Run("expired token", func(t *testing.T) {
		tok, exp, err := tk.Issue(Principal{User: "alice"})
		require.NoError(t, err)
		clk.Add(exp.Sub(clk.Now()) + time.Second)
		defer clk.Add(-(exp.Sub(now) + time.Second))
		_, err = tk.Verify(ctx, tok)
		require.ErrorIs(t, err, ErrExpired)
	})
	t.Run("revoked token", func(t *testing.T) {
		tok, _, err := tk.Issue(Principal{User: "alice"})
		require.NoError(t, err)
		p, err := tk.Verify(ctx, tok)
		require.NoError(t, err)
		require.NoError(t, tk.Revoke(ctx, p))
		_, err = tk.Verify(ctx, tok)
		require.ErrorIs(t, err, ErrRevoked, "revocation takes effect at once")
		_, err = tk.Verify(ctx, good)
		require.NoError(t, err, "other tokens are not affected")
	})
}

func TestTokenTTLDefaultsToFifteenMinutes(t *testing.T) {
	clk := newClock()
	tk := openTokens(t, startJS(t), clk)
	_, exp, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	require.Equal(t, clk.Now().Add(15*time.Minute), exp)
}

func TestRevocationReachesEveryReplica(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	js := startJS(t)
	a := openTokens(t, js, clk)
	b := openTokens(t, js, clk) // a second replica on the same buckets

	tok, _, err := a.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	p, err := b.Verify(ctx, tok)
	require.NoError(t, err, "replicas share the signing keys")
	require.NoError(t, a.Revoke(ctx, p))
	require.Eventually(t, func() bool {
		_, err := b.Verify(ctx, tok)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond)

	// A replica started later loads the revocation before it verifies anything.
	c := openTokens(t, js, clk)
	_, err = c.Verify(ctx, tok)
	require.ErrorIs(t, err, ErrRevoked)
}

func TestRevokeUser(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	tk := openTokens(t, startJS(t), clk)
	t1, _, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	t2, _, err := tk.Issue(Principal{User: "bob"})
	require.NoError(t, err)
	require.NoError(t, tk.RevokeUser(ctx, "alice"))
	_, err = tk.Verify(ctx, t1)
	require.ErrorIs(t, err, ErrRevoked)
	_, err = tk.Verify(ctx, t2)
	require.NoError(t, err)
	clk.Add(time.Millisecond) // a new login right after the revocation works
	t3, _, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	_, err = tk.Verify(ctx, t3)
	require.NoError(t, err)
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	js := startJS(t)
	tk, err := OpenTokens(ctx, TokensConfig{JS: js, Clock: clk.Now, TTL: 10 * time.Minute, RotateEvery: time.Hour})
	require.NoError(t, err)
	defer tk.Close()
	replica := openTokens(t, js, clk)

	old, _, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	oldKid := tk.currentKeys().kid
	require.NoError(t, tk.RotateIfDue(ctx))
	require.Equal(t, oldKid, tk.currentKeys().kid, "not due yet")

	clk.Add(time.Hour)
	require.NoError(t, tk.RotateIfDue(ctx))
	newKid := tk.currentKeys().kid
	require.NotEqual(t, oldKid, newKid)
	fresh, _, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	hdr, _, err := jwt.NewParser().ParseUnverified(fresh, &tokenClaims{})
	require.NoError(t, err)
	require.Equal(t, newKid, hdr.Header["kid"])

	// The replica follows the rotation through the bucket.
	require.Eventually(t, func() bool { return replica.currentKeys().kid == newKid }, 5*time.Second, 5*time.Millisecond)
	_, err = replica.Verify(ctx, fresh)
	require.NoError(t, err)

	// A token signed with the old key stays good until it expires (here the clock moved past
	// it, so mint one with the retired key as it was just before the rotation).
	_, err = tk.Verify(ctx, old)
	require.ErrorIs(t, err, ErrExpired)
	st := tk.currentKeys()
	require.Contains(t, st.verify, oldKid, "the old key still verifies")
	clk.Add(10*time.Minute + tokenLeeway + time.Second)
	require.NoError(t, tk.Rotate(ctx))
	require.NotContains(t, tk.currentKeys().verify, oldKid, "a retired key is dropped once its tokens are dead")
}

func TestRetiredKeyStillVerifiesItsLiveTokens(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	tk := openTokens(t, startJS(t), clk)
	tok, _, err := tk.Issue(Principal{User: "alice"})
	require.NoError(t, err)
	require.NoError(t, tk.Rotate(ctx))
	clk.Add(time.Minute)
	_, err = tk.Verify(ctx, tok)
	require.NoError(t, err, "tokens signed before a rotation stay valid until they expire")
}

func TestTokensConfigValidate(t *testing.T) {
	require.ErrorIs(t, TokensConfig{}.Validate(), ErrConfig)
	js := startJS(t)
	require.ErrorIs(t, TokensConfig{JS: js, TTL: 48 * time.Hour}.Validate(), ErrConfig)
	require.ErrorIs(t, TokensConfig{JS: js, TTL: time.Millisecond}.Validate(), ErrConfig)
	require.ErrorIs(t, TokensConfig{JS: js, RotateEvery: -1}.Validate(), ErrConfig)
	require.NoError(t, TokensConfig{JS: js}.Validate())
}

// TestVerifiedTokenCache checks that a token verified once is still checked for expiry,
// revocation and a dropped signing key on every later request.
func TestVerifiedTokenCache(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	tk := openTokens(t, startJS(t), clk)

	tok, _, err := tk.Issue(Principal{User: "alice", Groups: []string{"ops"}})
	require.NoError(t, err)
	p1, err := tk.Verify(ctx, tok)
	require.NoError(t, err)
	p1.Groups[0] = "admins" // a caller changing its copy changes nothing for the next one
	p2, err := tk.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, []string{"ops"}, p2.Groups)

	require.NoError(t, tk.Revoke(ctx, p2))
	_, err = tk.Verify(ctx, tok)
	require.ErrorIs(t, err, ErrRevoked)

	tok2, _, err := tk.Issue(Principal{User: "bob"})
	require.NoError(t, err)
	_, err = tk.Verify(ctx, tok2)
	require.NoError(t, err)
	clk.Add(DefaultTokenTTL)
	_, err = tk.Verify(ctx, tok2)
	require.ErrorIs(t, err, ErrExpired, "a cached token expires on time")

	tok3, _, err := tk.Issue(Principal{User: "carol"})
	require.NoError(t, err)
	_, err = tk.Verify(ctx, tok3)
	require.NoError(t, err)
	// The key that signed tok3 is rotated out and, once past its retirement, dropped.
	require.NoError(t, tk.Rotate(ctx))
	clk.Add(DefaultTokenTTL - time.Second)
	_, err = tk.Verify(ctx, tok3)
	require.NoError(t, err)
	clk.Add(2 * time.Second)
	_, err = tk.Verify(ctx, tok3)
	require.Error(t, err)
}
