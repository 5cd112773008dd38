package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// Token defaults and bounds.
const (
	DefaultTokenTTL         = 15 * time.Minute
	MaxTokenTTL             = 24 * time.Hour
	DefaultRotateEvery      = 24 * time.Hour
	DefaultKeyBucket        = "authn-keys"
	DefaultRevocationBucket = "authn-revocations"
	DefaultIssuer           = "dsnscale"
	DefaultAudience         = "dsnscale-api"
	// MaxTokenLen bounds a token; longer ones are refused before they are parsed.
	MaxTokenLen = 8 << 10
	// SigningAlgorithm is the only JWT algorithm accepted.
	SigningAlgorithm = "EdDSA"
	// tokenLeeway is how long a retired key keeps verifying after the last token it signed
	// expired, for clocks that differ a little between replicas.
	tokenLeeway = time.Minute
)

// TokensConfig configures token issue and verification.
type TokensConfig struct {
	// JS holds the key ring and revocations. Required.
	JS jetstream.JetStream
	// KeyBucket and RevocationBucket name the buckets; empty means the defaults.
	KeyBucket        string
	RevocationBucket string
	// TTL is the lifetime of a token; 0 means DefaultTokenTTL.
	TTL time.Duration
	// RotateEvery is the age at which the signing key is replaced; 0 means DefaultRotateEvery.
	RotateEvery time.Duration
	// CheckEvery is how often the background loop checks for rotation and prunes revocations;
	// 0 means a minute.
	CheckEvery time.Duration
	// Issuer and Audience are the iss and aud of tokens; empty means the defaults.
	Issuer   string
	Audience string
	// Clock reads the time; nil means time.Now.
	Clock func() time.Time
	// Logger logs rotations and watch failures; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c TokensConfig) Validate() error {
	switch {
	case c.JS == nil:
		return fmt.Errorf("%w: JS is required", ErrConfig)
	case c.TTL < 0 || c.TTL > MaxTokenTTL || c.TTL != 0 && c.TTL < time.Second:
		return fmt.Errorf("%w: TTL %s: want 1s to %s", ErrConfig, c.TTL, MaxTokenTTL)
	case c.RotateEvery < 0:
		return fmt.Errorf("%w: RotateEvery %s is negative", ErrConfig, c.RotateEvery)
	case c.CheckEvery < 0:
		return fmt.Errorf("%w: CheckEvery %s is negative", ErrConfig, c.CheckEvery)
	}
	return nil
}

// Tokens issues and verifies the API's JWTs (EdDSA, with a kid naming the signing key) and
// keeps their revocations. It watches the buckets, so that a rotation or revocation made by
// another replica applies here too. It is safe for concurrent use; Close stops it.
type Tokens struct {
	cfg    TokensConfig
	now    func() time.Time
	log    *slog.Logger
	keys   jetstream.KeyValue
	revs   jetstream.KeyValue
	parser *jwt.Parser

	mu           sync.RWMutex
	keyState     *keyState
	keysRev      uint64
	revokedJTI   map[string]time.Time // jti -> the token's expiry
	revokedUsers map[string]time.Time // user -> tokens issued up to then are revoked

	// verified remembers tokens whose signature and claims were checked, so that a client
	// sending the same token on every request pays for the signature once. Expiry, the signing
	// key's retirement and revocation are still checked on every request.
	cacheMu  sync.Mutex
	verified map[string]verifiedToken

	cancel context.CancelFunc
	done   chan struct{}
}

// tokenClaims are the claims of an API token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Groups []string `json:"groups,omitempty"`
	// IssuedNano is the issue time in nanoseconds; RevokeUser compares against it, since iat has
	// only seconds.
	IssuedNano int64 `json:"iatns"`
}

// revocation is a stored revocation entry.
type revocation struct {
	Expires time.Time `json:"expires,omitempty"` // jti entries
	At      time.Time `json:"at,omitempty"`      // user entries
}

// OpenTokens opens (creating if needed) the buckets and the key ring, loads the revocations and
// starts watching both.
func OpenTokens(ctx context.Context, cfg TokensConfig) (*Tokens, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.KeyBucket == "" {
		cfg.KeyBucket = DefaultKeyBucket
	}
	if cfg.RevocationBucket == "" {
		cfg.RevocationBucket = DefaultRevocationBucket
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTokenTTL
	}
	if cfg.RotateEvery == 0 {
		cfg.RotateEvery = DefaultRotateEvery
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = time.Minute
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	t := &Tokens{
		cfg:          cfg,
		now:          cfg.Clock,
		log:          cfg.Logger,
		revokedJTI:   map[string]time.Time{},
		revokedUsers: map[string]time.Time{},
		verified:     map[string]verifiedToken{},
		done:         make(chan struct{}),
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{SigningAlgorithm}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
		jwt.WithStrictDecoding(),
	)
	var err error
	t.keys, err = cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.KeyBucket, History: 1, Description: "dsnscale API token signing keys",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, cfg.KeyBucket, err)
	}
	// Every entry outlives the tokens it concerns by a margin, then expires by itself.
	t.revs, err = cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.RevocationBucket, History: 1, TTL: MaxTokenTTL + time.Hour, Description: "dsnscale API token revocations",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, cfg.RevocationBucket, err)
	}
	if err := t.loadOrCreateRing(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	keyW, err := t.keys.Watch(wctx, ringKeyName, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: watching %s: %v", ErrUnavailable, cfg.KeyBucket, err)
	}
	revW, err := t.revs.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: watching %s: %v", ErrUnavailable, cfg.RevocationBucket, err)
	}
	// The revocation watcher first delivers every stored entry, then nil: wait for that so that
	// no revoked token is accepted after OpenTokens returns.
	for loaded := false; !loaded; {
		select {
		case e, ok := <-revW.Updates():
			if !ok {
				cancel()
				return nil, fmt.Errorf("%w: revocation watch closed", ErrUnavailable)
			}
			if e == nil {
				loaded = true
				continue
			}
			t.applyRevocation(e)
		case <-ctx.Done():
			cancel()
			return nil, fmt.Errorf("%w: loading revocations: %v", ErrUnavailable, ctx.Err())
		}
	}
	go t.loop(wctx, keyW, revW)
	return t, nil
}

// Close stops watching.
func (t *Tokens) Close() {
	t.cancel()
	<-t.done
}

// TTL is the lifetime of the tokens issued.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

func (t *Tokens) loop(ctx context.Context, keyW, revW jetstream.KeyWatcher) {
	defer close(t.done)
	defer keyW.Stop()
	defer revW.Stop()
	tick := time.NewTicker(t.cfg.CheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-keyW.Updates():
			if !ok {
				if ctx.Err() == nil {
					t.log.Error("signing key watch closed; key rotations by other replicas are no longer seen")
				}
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := decodeRing(e.Value())
			if err != nil {
				t.log.Error("ignoring a malformed signing key ring", "err", err)
				continue
			}
			t.setKeys(st, e.Revision())
		case e, ok := <-revW.Updates():
			if !ok {
				if ctx.Err() == nil {
					t.log.Error("revocation watch closed; revocations by other replicas are no longer seen")
				}
				return
			}
			if e != nil {
				t.applyRevocation(e)
			}
		case <-tick.C:
			if err := t.RotateIfDue(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("signing key rotation failed", "err", err)
			}
			t.prune()
		}
	}
}

func (t *Tokens) applyRevocation(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	var r revocation
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.log.Error("ignoring a malformed revocation", "key", e.Key(), "err", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.HasPrefix(e.Key(), "jti."):
		t.revokedJTI[strings.TrimPrefix(e.Key(), "jti.")] = r.Expires
	case strings.HasPrefix(e.Key(), "user."):
		name, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(e.Key(), "user."))
		if err == nil && r.At.After(t.revokedUsers[string(name)]) {
			t.revokedUsers[string(name)] = r.At
		}
	}
}

// prune forgets revocations of tokens that have expired anyway.
func (t *Tokens) prune() {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, exp := range t.revokedJTI {
		if now.After(exp.Add(tokenLeeway)) {
			delete(t.revokedJTI, k)
		}
	}
	for k, at := range t.revokedUsers {
		if now.After(at.Add(MaxTokenTTL + tokenLeeway)) {
			delete(t.revokedUsers, k)
		}
	}
}

// Issue signs a token for p, valid for the configured TTL. It returns the token and its expiry.
func (t *Tokens) Issue(p Principal) (string, time.Time, error) {
	if msg := CheckName(p.User); msg != "" {
		return "", time.Time{}, fmt.Errorf("%w: user: %s", ErrInvalid, msg)
	}
	if len(p.Groups) > MaxGroups {
		return "", time.Time{}, fmt.Errorf("%w: groups: %d, at most %d", ErrInvalid, len(p.Groups), MaxGroups)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", time.Time{}, fmt.Errorf("authn: token id: %w", err)
	}
	st := t.currentKeys()
	now := t.now()
	exp := now.Add(t.cfg.TTL)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   p.User,
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(id),
		},
		Groups:     p.Groups,
		IssuedNano: now.UnixNano(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = st.kid
	s, err := tok.SignedString(st.priv)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: signing token: %w", err)
	}
	return s, exp.Truncate(time.Second), nil
}

// maxVerified bounds the cache of verified tokens; when it is full it starts afresh.
const maxVerified = 16384

// verifiedToken is a token whose signature and claims were checked.
type verifiedToken struct {
	claims tokenClaims
	kid    string
}

// Verify checks a token: size, algorithm (EdDSA only), a known signing key that has not
// retired, signature, issuer, audience, expiry, issue time, and revocation. It returns the
// principal the token names.
func (t *Tokens) Verify(_ context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, ErrUnauthenticated
	}
	if len(raw) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidToken, len(raw), MaxTokenLen)
	}
	t.cacheMu.Lock()
	v, hit := t.verified[raw]
	t.cacheMu.Unlock()
	if hit {
		if !t.now().Before(v.claims.ExpiresAt.Time) {
			t.cacheMu.Lock()
			delete(t.verified, raw)
			t.cacheMu.Unlock()
			return nil, fmt.Errorf("%w: token has expired", ErrExpired)
		}
		if _, err := t.keyByID(v.kid); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
	} else {
		var c tokenClaims
		tok, err := t.parser.ParseWithClaims(raw, &c, t.keyFor)
		if err != nil {
			if errors.Is(err, jwt.ErrTokenExpired) {
				return nil, fmt.Errorf("%w: %v", ErrExpired, err)
			}
			return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
		if CheckName(c.Subject) != "" || len(c.ID) != 32 || c.IssuedAt == nil || len(c.Groups) > MaxGroups {
			return nil, fmt.Errorf("%w: claims sub, jti, iat or groups are malformed", ErrInvalidToken)
		}
		kid, _ := tok.Header["kid"].(string)
		v = verifiedToken{claims: c, kid: kid}
		t.cacheMu.Lock()
		if len(t.verified) >= maxVerified {
			clear(t.verified)
		}
		t.verified[raw] = v
		t.cacheMu.Unlock()
	}
	c := &v.claims
	t.mu.RLock()
	_, jtiRevoked := t.revokedJTI[c.ID]
	userRevokedAt, userRevoked := t.revokedUsers[c.Subject]
	t.mu.RUnlock()
	if jtiRevoked {
		return nil, fmt.Errorf("%w: token %s", ErrRevoked, c.ID)
	}
	if userRevoked && c.IssuedNano <= userRevokedAt.UnixNano() {
		return nil, fmt.Errorf("%w: every token of %q issued before %s", ErrRevoked, c.Subject, userRevokedAt.UTC().Format(time.RFC3339))
	}
	return &Principal{
		User:      c.Subject,
		Groups:    append([]string(nil), c.Groups...),
		TokenID:   c.ID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}, nil
}

// keyFor is the parser's key function: the public key named by the token's kid, if it is in the
// ring and not retired.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	return t.keyByID(kid)
}

// keyByID returns the public key kid if it is in the ring and not retired.
func (t *Tokens) keyByID(kid string) (any, error) {
	st := t.currentKeys()
	k, ok := st.verify[kid]
	if !ok {
		return nil, fmt.Errorf("unknown signing key %q", kid)
	}
	if !k.retireAt.IsZero() && t.now().After(k.retireAt) {
		return nil, fmt.Errorf("signing key %q is retired", kid)
	}
	return k.pub, nil
}

// Revoke revokes the token p came from, at once here and, through the bucket, on every replica.
func (t *Tokens) Revoke(ctx context.Context, p *Principal) error {
	if p == nil || len(p.TokenID) != 32 {
		return fmt.Errorf("%w: the principal carries no token id", ErrInvalid)
	}
	if _, err := hex.DecodeString(p.TokenID); err != nil {
		return fmt.Errorf("%w: token id %q is not hex", ErrInvalid, p.TokenID)
	}
	exp := p.ExpiresAt
	if exp.IsZero() {
		exp = t.now().Add(MaxTokenTTL)
	}
	data, _ := json.Marshal(revocation{Expires: exp})
	if _, err := t.revs.Put(ctx, "jti."+p.TokenID, data); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	t.mu.Lock()
	t.revokedJTI[p.TokenID] = exp
	t.mu.Unlock()
	return nil
}

// RevokeUser revokes every token issued to user up to now (a password change, a removed user).
func (t *Tokens) RevokeUser(ctx context.Context, user string) error {
	if msg := CheckName(user); msg != "" {
		return fmt.Errorf("%w: user: %s", ErrInvalid, msg)
	}
	at := t.now()
	data, _ := json.Marshal(revocation{At: at})
	if _, err := t.revs.Put(ctx, "user."+base64.RawURLEncoding.EncodeToString([]byte(user)), data); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	t.mu.Lock()
	if at.After(t.revokedUsers[user]) {
		t.revokedUsers[user] = at
	}
	t.mu.Unlock()
	return nil
}
