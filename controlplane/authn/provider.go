package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// IdentityProvider checks a user's credentials. The local store is one (LocalProvider); an
// external directory is another.
type IdentityProvider interface {
	// Authenticate returns the principal for user if password is right, or an error wrapping
	// ErrBadCredentials (wrong user or password, disabled user) or ErrUnavailable.
	Authenticate(ctx context.Context, user, password string) (Principal, error)
}

// LocalProvider authenticates against a UserStore with bcrypt.
type LocalProvider struct {
	// Users is the store. Required.
	Users UserStore
	// Cost is the bcrypt cost of the dummy hash checked for unknown users; 0 means
	// bcrypt.DefaultCost. It should equal the cost passwords are hashed with.
	Cost int

	once  sync.Once
	dummy []byte
}

var _ IdentityProvider = (*LocalProvider)(nil)

// Authenticate implements IdentityProvider. A login for a user that does not exist costs the
// same bcrypt work as one with a wrong password, so that timing does not tell which users exist.
func (p *LocalProvider) Authenticate(ctx context.Context, user, password string) (Principal, error) {
	p.once.Do(func() {
		cost := p.Cost
		if cost == 0 {
			cost = bcrypt.DefaultCost
		}
		p.dummy, _ = bcrypt.GenerateFromPassword([]byte("dsnscale-dummy-password"), cost)
	})
	if len(password) > MaxPasswordLen || CheckName(user) != "" {
		_ = bcrypt.CompareHashAndPassword(p.dummy, []byte("x"))
		return Principal{}, ErrBadCredentials
	}
	u, err := p.Users.Get(ctx, user)
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(p.dummy, []byte(password))
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil || u.Disabled {
		return Principal{}, ErrBadCredentials
	}
	return Principal{User: u.Name, Groups: append([]string(nil), u.Groups...)}, nil
}

// Admin defaults.
const (
	DefaultAdminUser  = "admin"
	AdminGroup        = "admins"
	AdminPasswordFile = "admin-password"
)

// AdminConfig says how the first admin user is made.
type AdminConfig struct {
	// DataDir is where the generated password is written, as DataDir/admin-password (mode
	// 0600). Required unless PasswordFile is set.
	DataDir string
	// PasswordFile, when set, holds the admin's password (one line); nothing is written then.
	PasswordFile string
	// User is the admin's name; empty means DefaultAdminUser.
	User string
	// Cost is the bcrypt cost; 0 means bcrypt.DefaultCost.
	Cost int
}

// EnsureAdmin creates the admin user, in group AdminGroup, if it does not exist yet. Its
// password is read from PasswordFile or, without one, generated and written to
// DataDir/admin-password with mode 0600 before the user is created (so that it is never lost).
// An existing admin is left alone. It reports whether it created the user.
func EnsureAdmin(ctx context.Context, users UserStore, cfg AdminConfig) (bool, error) {
	if cfg.User == "" {
		cfg.User = DefaultAdminUser
	}
	if msg := CheckName(cfg.User); msg != "" {
		return false, fmt.Errorf("%w: admin user: %s", ErrConfig, msg)
	}
	if cfg.DataDir == "" && cfg.PasswordFile == "" {
		return false, fmt.Errorf("%w: DataDir or PasswordFile is required", ErrConfig)
	}
	_, err := users.Get(ctx, cfg.User)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	var password string
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return false, fmt.Errorf("%w: admin password file: %v", ErrConfig, err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if msg := CheckPassword(password); msg != "" {
			return false, fmt.Errorf("%w: admin password file %s: %s", ErrConfig, cfg.PasswordFile, msg)
		}
	} else {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return false, fmt.Errorf("authn: generating admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(raw)
		if err := writeSecretFile(filepath.Join(cfg.DataDir, AdminPasswordFile), []byte(password+"\n")); err != nil {
			return false, err
		}
	}
	hash, err := HashPassword(password, cfg.Cost)
	if err != nil {
		return false, err
	}
	if err := users.Create(ctx, User{Name: cfg.User, Groups: []string{AdminGroup}, PasswordHash: hash}); err != nil {
		if errors.Is(err, ErrExists) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// writeSecretFile writes data to path with mode 0600 through a temporary file and a rename.
func writeSecretFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("authn: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("authn: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("authn: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		return fmt.Errorf("authn: %s is not mode 0600 after writing: %v", path, err)
	}
	return nil
}
