package rbac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the key-value bucket roles and bindings live in.
const DefaultBucket = "rbac"

const (
	rolePrefix    = "role."
	bindingPrefix = "binding."
)

// Store keeps roles and bindings in a JetStream key-value bucket (keys "role.<name>" and
// "binding.<name>", values JSON). It is safe for concurrent use.
type Store struct {
	kv jetstream.KeyValue
}

// OpenStore opens (creating if needed) the bucket; empty means DefaultBucket.
func OpenStore(ctx context.Context, js jetstream.JetStream, bucket string) (*Store, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrUnavailable)
	}
	if bucket == "" {
		bucket = DefaultBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Description: "dsnscale roles and role bindings"})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, bucket, err)
	}
	return &Store{kv: kv}, nil
}

// PutRole creates or replaces a role (not a built-in one). It reports whether it created it.
func (s *Store) PutRole(ctx context.Context, r Role) (bool, error) {
	if isBuiltInRole(r.Name) {
		return false, fmt.Errorf("%w: role %q cannot be changed", ErrBuiltIn, r.Name)
	}
	if err := r.Validate(); err != nil {
		return false, err
	}
	return s.put(ctx, rolePrefix+r.Name, r)
}

// CreateRole creates a role; ErrExists if one has its name.
func (s *Store) CreateRole(ctx context.Context, r Role) error {
	if isBuiltInRole(r.Name) {
		return fmt.Errorf("%w: role %q already exists", ErrExists, r.Name)
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return s.create(ctx, rolePrefix+r.Name, r)
}

// GetRole returns a role, built-in ones included.
func (s *Store) GetRole(ctx context.Context, name string) (Role, error) {
	for _, r := range BuiltInRoles() {
		if r.Name == name {
			return r, nil
		}
	}
	var r Role
	err := s.get(ctx, rolePrefix, name, &r)
	return r, err
}

// DeleteRole deletes a role (not a built-in one). Bindings that name it then grant nothing.
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	if isBuiltInRole(name) {
		return fmt.Errorf("%w: role %q cannot be deleted", ErrBuiltIn, name)
	}
	return s.delete(ctx, rolePrefix, name)
}

// ListRoles returns every role, built-in ones first, then by name.
func (s *Store) ListRoles(ctx context.Context) ([]Role, error) {
	roles, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return append(BuiltInRoles(), roles...), nil
}

// PutBinding creates or replaces a binding (not a built-in one). It reports whether it created
// it.
func (s *Store) PutBinding(ctx context.Context, b Binding) (bool, error) {
	if isBuiltInBinding(b.Name) {
		return false, fmt.Errorf("%w: binding %q cannot be changed", ErrBuiltIn, b.Name)
	}
	if err := b.Validate(); err != nil {
		return false, err
	}
	return s.put(ctx, bindingPrefix+b.Name, b)
}

// CreateBinding creates a binding; ErrExists if one has its name.
func (s *Store) CreateBinding(ctx context.Context, b Binding) error {
	if isBuiltInBinding(b.Name) {
		return fmt.Errorf("%w: binding %q already exists", ErrExists, b.Name)
	}
	if err := b.Validate(); err != nil {
		return err
	}
	return s.create(ctx, bindingPrefix+b.Name, b)
}

// GetBinding returns a binding, built-in ones included.
func (s *Store) GetBinding(ctx context.Context, name string) (Binding, error) {
	for _, b := range BuiltInBindings() {
		if b.Name == name {
			return b, nil
		}
	}
	var b Binding
	err := s.get(ctx, bindingPrefix, name, &b)
	return b, err
}

// DeleteBinding deletes a binding (not a built-in one).
func (s *Store) DeleteBinding(ctx context.Context, name string) error {
	if isBuiltInBinding(name) {
		return fmt.Errorf("%w: binding %q cannot be deleted", ErrBuiltIn, name)
	}
	return s.delete(ctx, bindingPrefix, name)
}

// ListBindings returns every binding, built-in ones first, then by name.
func (s *Store) ListBindings(ctx context.Context) ([]Binding, error) {
	_, bindings, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return append(BuiltInBindings(), bindings...), nil
}

func isBuiltInRole(name string) bool    { return name == AdminRole }
func isBuiltInBinding(name string) bool { return name == AdminBinding }

// validKeyName reports whether name can be part of a bucket key; names that cannot do not exist.
func validKeyName(name string) bool { return name != "" && !strings.ContainsAny(name, ".*> ") }

func notFound(prefix, name string) error {
	return fmt.Errorf("%w: %s %q", ErrNotFound, strings.TrimSuffix(prefix, "."), name)
}

func unavailable(err error) error { return fmt.Errorf("%w: %v", ErrUnavailable, err) }

func (s *Store) put(ctx context.Context, key string, v any) (bool, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("rbac: encoding: %w", err)
	}
	if _, err := s.kv.Create(ctx, key, data); err == nil {
		return true, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, unavailable(err)
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return false, unavailable(err)
	}
	return false, nil
}

func (s *Store) create(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("rbac: encoding: %w", err)
	}
	if _, err := s.kv.Create(ctx, key, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: %s", ErrExists, key)
		}
		return unavailable(err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, prefix, name string, v any) error {
	if !validKeyName(name) {
		return notFound(prefix, name)
	}
	e, err := s.kv.Get(ctx, prefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return notFound(prefix, name)
	}
	if err != nil {
		return unavailable(err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return fmt.Errorf("%w: stored %s: %v", ErrUnavailable, e.Key(), err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, prefix, name string) error {
	if !validKeyName(name) {
		return notFound(prefix, name)
	}
	if _, err := s.kv.Get(ctx, prefix+name); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return notFound(prefix, name)
		}
		return unavailable(err)
	}
	if err := s.kv.Purge(ctx, prefix+name); err != nil {
		return unavailable(err)
	}
	return nil
}

// load reads every stored role and binding.
func (s *Store) load(ctx context.Context) ([]Role, []Binding, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	var roles []Role
	var bindings []Binding
	for key := range lister.Keys() {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, unavailable(err)
		}
		if err := addEntry(e.Key(), e.Value(), &roles, &bindings); err != nil {
			return nil, nil, err
		}
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	sort.Slice(bindings, func(i, j int) bool { return bindings[i].Name < bindings[j].Name })
	return roles, bindings, nil
}

func addEntry(key string, value []byte, roles *[]Role, bindings *[]Binding) error {
	switch {
	case strings.HasPrefix(key, rolePrefix):
		var r Role
		if err := json.Unmarshal(value, &r); err != nil {
			return fmt.Errorf("%w: stored %s: %v", ErrUnavailable, key, err)
		}
		*roles = append(*roles, r)
	case strings.HasPrefix(key, bindingPrefix):
		var b Binding
		if err := json.Unmarshal(value, &b); err != nil {
			return fmt.Errorf("%w: stored %s: %v", ErrUnavailable, key, err)
		}
		*bindings = append(*bindings, b)
	}
	return nil
}

// Follow loads the stored roles and bindings into a, then keeps a current with every change
// until ctx ends. It returns once a holds the stored state. Changes made on any replica reach
// every Authorizer that follows the bucket.
func (s *Store) Follow(ctx context.Context, a *Authorizer, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return unavailable(err)
	}
	var mu sync.Mutex
	state := map[string][]byte{}
	apply := func() {
		var roles []Role
		var bindings []Binding
		for k, v := range state {
			if err := addEntry(k, v, &roles, &bindings); err != nil {
				log.Error("ignoring a malformed RBAC entry", "key", k, "err", err)
			}
		}
		sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
		sort.Slice(bindings, func(i, j int) bool { return bindings[i].Name < bindings[j].Name })
		a.Set(roles, bindings)
	}
	handle := func(e jetstream.KeyValueEntry) {
		mu.Lock()
		defer mu.Unlock()
		if e.Operation() == jetstream.KeyValuePut {
			state[e.Key()] = e.Value()
		} else {
			delete(state, e.Key())
		}
	}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("%w: watch closed", ErrUnavailable)
			}
			if e != nil {
				handle(e)
				continue
			}
			apply()
			go func() {
				defer w.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case e, ok := <-w.Updates():
						if !ok {
							if ctx.Err() == nil {
								log.Error("RBAC watch closed; roles and bindings no longer follow the store")
							}
							return
						}
						if e == nil {
							continue
						}
						handle(e)
						mu.Lock()
						apply()
						mu.Unlock()
					}
				}
			}()
			return nil
		case <-ctx.Done():
			w.Stop()
			return ctx.Err()
		}
	}
}
