package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// DefaultIdentityBucket is the bucket of admitted identities.
const DefaultIdentityBucket = "dsn-identities"

// Admitted is what admission fixed about a DSN: its tenant (also in its certificate) and its
// labels (the DSN's own at admission with the token's added). The southbound side takes a DSN's
// tenant and labels from here, never from what the DSN says; only the northbound API changes
// the labels (Identities.SetLabels).
type Admitted struct {
	DSN        string            `json:"dsn"`
	Tenant     string            `json:"tenant,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	TokenID    string            `json:"tokenID,omitempty"`
	AdmittedAt time.Time         `json:"admittedAt"`
}

// Identities keeps one Admitted record per DSN in a JetStream key-value bucket, keyed by the
// DSN id. It is safe for concurrent use.
type Identities struct {
	kv jetstream.KeyValue
}

// OpenIdentities opens (creating if needed) the bucket; empty means DefaultIdentityBucket.
func OpenIdentities(ctx context.Context, js jetstream.JetStream, bucket string) (*Identities, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrUnavailable)
	}
	if bucket == "" {
		bucket = DefaultIdentityBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, History: 1, Description: "dsnscale admitted DSN identities",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, bucket, err)
	}
	return &Identities{kv: kv}, nil
}

// Put records an admission, replacing any earlier one of the same DSN.
func (s *Identities) Put(ctx context.Context, a Admitted) error {
	b, err := json.Marshal(&a)
	if err != nil {
		return fmt.Errorf("admission: encoding identity %s: %w", a.DSN, err)
	}
	if _, err := s.kv.Put(ctx, a.DSN, b); err != nil {
		return fmt.Errorf("%w: recording identity %s: %v", ErrUnavailable, a.DSN, err)
	}
	return nil
}

// Get returns the admission record of dsn, or false if it has none (never admitted through a
// token, or decommissioned).
func (s *Identities) Get(ctx context.Context, dsn string) (Admitted, bool, error) {
	e, err := s.kv.Get(ctx, dsn)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Admitted{}, false, nil
	}
	if err != nil {
		return Admitted{}, false, fmt.Errorf("%w: reading identity %s: %v", ErrUnavailable, dsn, err)
	}
	var a Admitted
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return Admitted{}, false, fmt.Errorf("admission: identity record %s: %w", dsn, err)
	}
	return a, true, nil
}

// SetLabels replaces the labels of an admitted DSN. It returns the updated record, or ErrNoIdentity
// when dsn has none. Concurrent changes of one record meet at a compare-and-swap; the loser
// retries.
func (s *Identities) SetLabels(ctx context.Context, dsn string, labels map[string]string) (Admitted, error) {
	errs := &model.FieldErrors{}
	model.ValidateLabels(labels, "labels", errs)
	if errs.Len() > 0 {
		return Admitted{}, fmt.Errorf("%w: %w", ErrInvalid, errs)
	}
	for attempt := 0; attempt < 8; attempt++ {
		e, err := s.kv.Get(ctx, dsn)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Admitted{}, fmt.Errorf("%w: %q", ErrNoIdentity, dsn)
		}
		if err != nil {
			return Admitted{}, fmt.Errorf("%w: reading identity %s: %v", ErrUnavailable, dsn, err)
		}
		var a Admitted
		if err := json.Unmarshal(e.Value(), &a); err != nil {
			return Admitted{}, fmt.Errorf("admission: identity record %s: %w", dsn, err)
		}
		a.Labels = maps.Clone(labels)
		b, err := json.Marshal(&a)
		if err != nil {
			return Admitted{}, err
		}
		if _, err := s.kv.Update(ctx, dsn, b, e.Revision()); err == nil {
			return a, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return Admitted{}, fmt.Errorf("%w: updating identity %s: %v", ErrUnavailable, dsn, err)
		}
	}
	return Admitted{}, fmt.Errorf("%w: identity %s kept changing", ErrUnavailable, dsn)
}

// Delete forgets dsn's record (a decommissioned DSN). A missing record is not an error.
func (s *Identities) Delete(ctx context.Context, dsn string) error {
	err := s.kv.Purge(ctx, dsn)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: deleting identity %s: %v", ErrUnavailable, dsn, err)
	}
	return nil
}
