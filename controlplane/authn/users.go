package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// Limits on users.
const (
	MaxNameLen        = 128
	MaxGroups         = 32
	MinPasswordLen    = 12
	MaxPasswordLen    = 72 // bcrypt uses no more
	DefaultUserBucket = "authn-users"
)

// User is an entry of the local user store.
type User struct {
	Name         string    `json:"name"`
	Groups       []string  `json:"groups,omitempty"`
	PasswordHash string    `json:"passwordHash"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// CheckName returns "" if s can name a user or a group: 1-128 characters of A-Z, a-z, 0-9 and
// ".@+_-", starting with a letter or digit.
func CheckName(s string) string {
	if s == "" {
		return "required"
	}
	if len(s) > MaxNameLen {
		return fmt.Sprintf("%d characters, at most %d", len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && strings.IndexByte(".@+_-", c) >= 0 {
			continue
		}
		return fmt.Sprintf("%q is not 1-%d of A-Z, a-z, 0-9 and \".@+_-\" starting with a letter or digit", s, MaxNameLen)
	}
	return ""
}

// CheckPassword returns "" if pw is acceptable as a new password: MinPasswordLen to
// MaxPasswordLen bytes of UTF-8.
func CheckPassword(pw string) string {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Sprintf("%d bytes, at least %d", len(pw), MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Sprintf("%d bytes, at most %d", len(pw), MaxPasswordLen)
	case !utf8.ValidString(pw):
		return "not valid UTF-8"
	}
	return ""
}

// Validate checks a user record.
func (u *User) Validate() error {
	if msg := CheckName(u.Name); msg != "" {
		return fmt.Errorf("%w: name: %s", ErrInvalid, msg)
	}
	if len(u.Groups) > MaxGroups {
		return fmt.Errorf("%w: groups: %d, at most %d", ErrInvalid, len(u.Groups), MaxGroups)
	}
	for i, g := range u.Groups {
		if msg := CheckName(g); msg != "" {
			return fmt.Errorf("%w: groups[%d]: %s", ErrInvalid, i, msg)
		}
	}
	if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
		return fmt.Errorf("%w: passwordHash: not a bcrypt hash", ErrInvalid)
	}
	return nil
}

// HashPassword checks pw (CheckPassword) and hashes it with bcrypt at cost (0 means
// bcrypt.DefaultCost).
func HashPassword(pw string, cost int) (string, error) {
	if msg := CheckPassword(pw); msg != "" {
		return "", fmt.Errorf("%w: password: %s", ErrInvalid, msg)
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("%w: password: %v", ErrInvalid, err)
	}
	return string(h), nil
}

// UserStore keeps users. Implementations are safe for concurrent use.
type UserStore interface {
	// Get returns the user name; ErrNotFound if there is none.
	Get(ctx context.Context, name string) (User, error)
	// Create adds u; ErrExists if the name is taken.
	Create(ctx context.Context, u User) error
	// Update replaces the user u.Name; ErrNotFound if there is none.
	Update(ctx context.Context, u User) error
	// Delete removes the user name; ErrNotFound if there is none.
	Delete(ctx context.Context, name string) error
	// List returns every user, by name.
	List(ctx context.Context) ([]User, error)
}

// KVUsers is a UserStore in a JetStream key-value bucket.
type KVUsers struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

var _ UserStore = (*KVUsers)(nil)

// OpenUsers opens (creating if needed) the user bucket (empty means DefaultUserBucket). now is
// the clock for CreatedAt and UpdatedAt; nil means time.Now.
func OpenUsers(ctx context.Context, js jetstream.JetStream, bucket string, now func() time.Time) (*KVUsers, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrConfig)
	}
	if bucket == "" {
		bucket = DefaultUserBucket
	}
	if now == nil {
		now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Description: "dsnscale users"})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, bucket, err)
	}
	return &KVUsers{kv: kv, now: now}, nil
}

// userKey is the bucket key of a user: names may hold characters keys may not.
func userKey(name string) string { return "u." + base64.RawURLEncoding.EncodeToString([]byte(name)) }

// Get implements UserStore.
func (s *KVUsers) Get(ctx context.Context, name string) (User, error) {
	u, _, err := s.get(ctx, name)
	return u, err
}

func (s *KVUsers) get(ctx context.Context, name string) (User, uint64, error) {
	if msg := CheckName(name); msg != "" {
		return User{}, 0, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	e, err := s.kv.Get(ctx, userKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return User{}, 0, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if err != nil {
		return User{}, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var u User
	if err := json.Unmarshal(e.Value(), &u); err != nil {
		return User{}, 0, fmt.Errorf("%w: user %q: stored record: %v", ErrUnavailable, name, err)
	}
	return u, e.Revision(), nil
}

// Create implements UserStore.
func (s *KVUsers) Create(ctx context.Context, u User) error {
	now := s.now().UTC()
	u.CreatedAt, u.UpdatedAt = now, now
	if err := u.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("authn: encoding user: %w", err)
	}
	if _, err := s.kv.Create(ctx, userKey(u.Name), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: user %q", ErrExists, u.Name)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Update implements UserStore. It keeps CreatedAt.
func (s *KVUsers) Update(ctx context.Context, u User) error {
	old, rev, err := s.get(ctx, u.Name)
	if err != nil {
		return err
	}
	u.CreatedAt, u.UpdatedAt = old.CreatedAt, s.now().UTC()
	if err := u.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("authn: encoding user: %w", err)
	}
	if _, err := s.kv.Update(ctx, userKey(u.Name), b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("%w: user %q changed meanwhile; read it again", ErrExists, u.Name)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Delete implements UserStore.
func (s *KVUsers) Delete(ctx context.Context, name string) error {
	if _, _, err := s.get(ctx, name); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, userKey(name)); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// List implements UserStore.
func (s *KVUsers) List(ctx context.Context) ([]User, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var out []User
	for key := range lister.Keys() {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		var u User
		if err := json.Unmarshal(e.Value(), &u); err != nil {
			return nil, fmt.Errorf("%w: stored user %s: %v", ErrUnavailable, key, err)
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
