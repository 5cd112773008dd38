package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ringKeyName is the bucket key holding the signing key ring.
const ringKeyName = "ring"

// ringKey is one signing key as stored.
type ringKey struct {
	ID     string `json:"kid"`
	Public []byte `json:"public"`
	// Seed is the private key's seed; only the current key keeps one.
	Seed      []byte    `json:"seed,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// RetireAt is when tokens signed with the key stop being accepted; zero for the current key.
	RetireAt time.Time `json:"retireAt,omitempty"`
}

// ring is the stored key ring; Keys[0] signs.
type ring struct {
	Keys []ringKey `json:"keys"`
}

// keyState is the ring as used in memory.
type keyState struct {
	kid       string
	priv      ed25519.PrivateKey
	createdAt time.Time
	verify    map[string]verifyKey
}

type verifyKey struct {
	pub      ed25519.PublicKey
	retireAt time.Time
}

func newRingKey(now time.Time) (ringKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return ringKey{}, fmt.Errorf("authn: generating signing key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return ringKey{}, fmt.Errorf("authn: key id: %w", err)
	}
	return ringKey{ID: hex.EncodeToString(id), Public: pub, Seed: priv.Seed(), CreatedAt: now}, nil
}

// decodeRing checks a stored ring and turns it into its in-memory form.
func decodeRing(data []byte) (*keyState, error) {
	var r ring
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: signing key ring: %v", ErrUnavailable, err)
	}
	if len(r.Keys) == 0 || len(r.Keys[0].Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: signing key ring has no current key", ErrUnavailable)
	}
	st := &keyState{verify: make(map[string]verifyKey, len(r.Keys))}
	for i, k := range r.Keys {
		if len(k.Public) != ed25519.PublicKeySize || k.ID == "" {
			return nil, fmt.Errorf("%w: signing key ring: keys[%d] is malformed", ErrUnavailable, i)
		}
		st.verify[k.ID] = verifyKey{pub: ed25519.PublicKey(k.Public), retireAt: k.RetireAt}
	}
	cur := r.Keys[0]
	st.kid, st.priv, st.createdAt = cur.ID, ed25519.NewKeyFromSeed(cur.Seed), cur.CreatedAt
	if !st.priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(cur.Public)) {
		return nil, fmt.Errorf("%w: signing key ring: the current key's seed and public key differ", ErrUnavailable)
	}
	return st, nil
}

// loadOrCreateRing returns the stored ring, creating one with a fresh key if there is none.
func (t *Tokens) loadOrCreateRing(ctx context.Context) error {
	for range 5 {
		e, err := t.keys.Get(ctx, ringKeyName)
		if err == nil {
			st, err := decodeRing(e.Value())
			if err != nil {
				return err
			}
			t.setKeys(st, e.Revision())
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		k, err := newRingKey(t.now())
		if err != nil {
			return err
		}
		data, err := json.Marshal(ring{Keys: []ringKey{k}})
		if err != nil {
			return fmt.Errorf("authn: encoding key ring: %w", err)
		}
		rev, err := t.keys.Create(ctx, ringKeyName, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // another replica made it first
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		st, err := decodeRing(data)
		if err != nil {
			return err
		}
		t.setKeys(st, rev)
		return nil
	}
	return fmt.Errorf("%w: the signing key ring kept changing", ErrUnavailable)
}

// Rotate makes a new signing key current. The previous key stops signing at once and keeps
// verifying until the tokens it signed have expired; keys past that are dropped.
func (t *Tokens) Rotate(ctx context.Context) error { return t.rotate(ctx, true) }

// RotateIfDue rotates when the current key is older than the configured RotateEvery.
func (t *Tokens) RotateIfDue(ctx context.Context) error { return t.rotate(ctx, false) }

func (t *Tokens) rotate(ctx context.Context, force bool) error {
	for range 5 {
		e, err := t.keys.Get(ctx, ringKeyName)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		var r ring
		if err := json.Unmarshal(e.Value(), &r); err != nil || len(r.Keys) == 0 {
			return fmt.Errorf("%w: signing key ring is malformed", ErrUnavailable)
		}
		now := t.now()
		if !force && now.Sub(r.Keys[0].CreatedAt) < t.cfg.RotateEvery {
			return nil
		}
		k, err := newRingKey(now)
		if err != nil {
			return err
		}
		next := ring{Keys: []ringKey{k}}
		for i, old := range r.Keys {
			if i == 0 {
				old.Seed = nil
				old.RetireAt = now.Add(t.cfg.TTL + tokenLeeway)
			}
			if now.Before(old.RetireAt) {
				next.Keys = append(next.Keys, old)
			}
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("authn: encoding key ring: %w", err)
		}
		rev, err := t.keys.Update(ctx, ringKeyName, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			force = false // someone else rotated: rotate again only if their key is due too
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		st, err := decodeRing(data)
		if err != nil {
			return err
		}
		t.setKeys(st, rev)
		t.log.Info("signing key rotated", "kid", st.kid)
		return nil
	}
	return fmt.Errorf("%w: the signing key ring kept changing", ErrUnavailable)
}

// setKeys installs st unless a newer ring is already in use.
func (t *Tokens) setKeys(st *keyState, rev uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rev >= t.keysRev {
		t.keysRev = rev
		t.keyState = st
	}
}

func (t *Tokens) currentKeys() *keyState {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.keyState
}
