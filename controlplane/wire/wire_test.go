package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestHelloValidate(t *testing.T) {
	ok := Hello{Protocol: Version, DSN: "dsn-1", Labels: map[string]string{"role": "web"}}
	tests := []struct {
		name string
		mod  func(*Hello)
		want string
	}{
		{"ok", func(*Hello) {}, ""},
		{"protocol", func(h *Hello) { h.Protocol = 2 }, "protocol"},
		{"id with dot", func(h *Hello) { h.DSN = "a.b" }, "dsn"},
		{"empty id", func(h *Hello) { h.DSN = "" }, "dsn"},
		{"long id", func(h *Hello) { h.DSN = strings.Repeat("a", 129) }, "dsn"},
		{"empty key", func(h *Hello) { h.Labels = map[string]string{"": "x"} }, "labels"},
		{"key with =", func(h *Hello) { h.Labels = map[string]string{"a=b": "x"} }, "labels"},
		{"value with comma", func(h *Hello) { h.Labels = map[string]string{"a": "1,b=2"} }, "labels.a"},
		{"long value", func(h *Hello) { h.Labels = map[string]string{"a": strings.Repeat("v", 257)} }, "labels.a"},
		{"long version", func(h *Hello) { h.SoftwareVersion = strings.Repeat("v", 129) }, "softwareVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ok
			tt.mod(&h)
			err := h.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestAdmissionValidate(t *testing.T) {
	ref := &SnapshotRef{Bucket: SnapshotBucket, Object: "group-x", Revision: 4, SHA256: strings.Repeat("a", 64)}
	tests := []struct {
		name string
		a    Admission
		want string
	}{
		{"uptodate", Admission{Status: Admitted, SessionID: "s", Revision: 5, UpToDate: true, HeartbeatIntervalMs: 1000}, ""},
		{"snapshot", Admission{Status: Admitted, SessionID: "s", Revision: 5, Snapshot: ref, HeartbeatIntervalMs: 1000}, ""},
		{"delta", Admission{Status: Admitted, SessionID: "s", Revision: 5, Delta: &Push{Type: PushCurrent, From: 3, To: 5}, HeartbeatIntervalMs: 1000}, ""},
		{"retry", Admission{Status: Retry, RetryAfterMs: 100}, ""},
		{"rejected", Admission{Status: Rejected, Reason: "no"}, ""},
		{"bad status", Admission{Status: "maybe"}, "status"},
		{"two ways", Admission{Status: Admitted, SessionID: "s", Revision: 5, UpToDate: true, Snapshot: ref, HeartbeatIntervalMs: 1}, "exactly one"},
		{"no way", Admission{Status: Admitted, SessionID: "s", Revision: 5, HeartbeatIntervalMs: 1}, "exactly one"},
		{"no session", Admission{Status: Admitted, Revision: 5, UpToDate: true, HeartbeatIntervalMs: 1}, "sessionID"},
		{"no heartbeat", Admission{Status: Admitted, SessionID: "s", UpToDate: true}, "heartbeatIntervalMs"},
		{"delta short", Admission{Status: Admitted, SessionID: "s", Revision: 5, Delta: &Push{Type: PushCurrent, From: 3, To: 4}, HeartbeatIntervalMs: 1}, "delta.to"},
		{"snapshot ahead", Admission{Status: Admitted, SessionID: "s", Revision: 3, Snapshot: ref, HeartbeatIntervalMs: 1}, "snapshot.revision"},
		{"negative retry", Admission{Status: Retry, RetryAfterMs: -1}, "retryAfterMs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestPushValidate(t *testing.T) {
	obj := &model.Object{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n", Tenant: "t"}}
	put := Change{Op: OpPut, Kind: model.KindNetwork, Tenant: "t", Name: "n", Revision: 3, Object: obj}
	tests := []struct {
		name string
		p    Push
		want string
	}{
		{"delta", Push{Type: PushDelta, From: 2, To: 3, Changes: []Change{put}}, ""},
		{"current", Push{Type: PushCurrent, From: 2, To: 3}, ""},
		{"resync", Push{Type: PushResync, Snapshot: &SnapshotRef{Bucket: "b", Object: "o"}}, ""},
		{"quarantine", Push{Type: PushQuarantine, Reason: "x"}, ""},
		{"rehello", Push{Type: PushRehello}, ""},
		{"bad type", Push{Type: "other"}, "type"},
		{"backwards", Push{Type: PushDelta, From: 4, To: 3}, "from"},
		{"current with changes", Push{Type: PushCurrent, From: 2, To: 3, Changes: []Change{put}}, "changes"},
		{"resync without ref", Push{Type: PushResync}, "snapshot"},
		{"put without object", Push{Type: PushDelta, To: 1, Changes: []Change{{Op: OpPut, Kind: model.KindNetwork, Name: "n"}}}, "changes[0]"},
		{"object mismatch", Push{Type: PushDelta, To: 1, Changes: []Change{{Op: OpPut, Kind: model.KindNetwork, Name: "m", Tenant: "t", Object: obj}}}, "does not match"},
		{"bad op", Push{Type: PushDelta, To: 1, Changes: []Change{{Op: "patch", Kind: model.KindNetwork, Name: "n"}}}, "op"},
		{"bad sha", Push{Type: PushResync, Snapshot: &SnapshotRef{Bucket: "b", Object: "o", SHA256: "xyz"}}, "sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestAckHeartbeatValidate(t *testing.T) {
	require.NoError(t, (&Ack{DSN: "d", SessionID: "s", Revision: 3}).Validate())
	assert.ErrorIs(t, (&Ack{DSN: "d.x", SessionID: "s"}).Validate(), ErrInvalid)
	assert.ErrorIs(t, (&Ack{DSN: "d"}).Validate(), ErrInvalid)
	assert.ErrorIs(t, (&Ack{DSN: "d", SessionID: "s", Error: strings.Repeat("e", MaxErrorLen+1)}).Validate(), ErrInvalid)
	require.NoError(t, (&Heartbeat{DSN: "d", SessionID: "s", State: StateServing}).Validate())
	assert.ErrorIs(t, (&Heartbeat{DSN: "", SessionID: "s"}).Validate(), ErrInvalid)
	assert.ErrorIs(t, (&Heartbeat{DSN: "d", SessionID: strings.Repeat("s", 200)}).Validate(), ErrInvalid)
}

func TestUnmarshal(t *testing.T) {
	var a Ack
	require.NoError(t, Unmarshal([]byte(`{"dsn":"d","sessionID":"s","revision":7,"extra":1}`), &a))
	assert.Equal(t, uint64(7), a.Revision)
	err := Unmarshal([]byte(`{"dsn":"d"`), &a)
	require.ErrorIs(t, err, ErrInvalid)
	err = Unmarshal([]byte(`{"dsn":"d","revision":1}`), &Ack{})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDSNFromSubject(t *testing.T) {
	tests := []struct {
		subject string
		id      string
		ok      bool
	}{
		{AckSubject("dsn-1"), "dsn-1", true},
		{HeartbeatSubject("a_b"), "a_b", true},
		{PushSubject("x"), "x", true},
		{"dsn.v1.dsn..ack", "", false},
		{"dsn.v1.dsn.x.y.ack", "", false},
		{"dsn.v1.hello", "", false},
		{"dsn.v1.dsn.x", "", false},
	}
	for _, tt := range tests {
		id, ok := DSNFromSubject(tt.subject)
		assert.Equal(t, tt.ok, ok, tt.subject)
		assert.Equal(t, tt.id, id, tt.subject)
	}
}

func TestGroupID(t *testing.T) {
	a := GroupID(map[string]string{"role": "web", "site": "s1"})
	assert.Equal(t, a, GroupID(map[string]string{"site": "s1", "role": "web"}))
	assert.NotEqual(t, a, GroupID(map[string]string{"role": "web"}))
	assert.Len(t, a, 16)
	assert.Equal(t, GroupID(nil), GroupID(map[string]string{}))
}

// FuzzUnmarshal feeds arbitrary bytes to every decoder of messages from outside: it must never
// panic, and whatever it accepts must validate.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"protocol":1,"dsn":"d","labels":{"a":"b"},"appliedRevision":3}`))
	f.Add([]byte(`{"status":"admitted","sessionID":"s","revision":3,"upToDate":true,"heartbeatIntervalMs":10}`))
	f.Add([]byte(`{"type":"delta","from":1,"to":2,"changes":[{"op":"delete","kind":"Network","name":"n","revision":2}]}`))
	f.Add([]byte(`{"dsn":"d","sessionID":"s","revision":1}`))
	f.Add([]byte(`{"group":"g","revision":1,"objects":[{"kind":"Network","metadata":{"name":"n"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []Validator{&Hello{}, &Admission{}, &Push{}, &Ack{}, &Heartbeat{}, &Snapshot{}} {
			if err := Unmarshal(data, v); err == nil {
				require.NoError(t, v.Validate())
			} else {
				require.ErrorIs(t, err, ErrInvalid)
			}
		}
	})
}

func TestPerDSNSubjectsAndRenewal(t *testing.T) {
	for _, s := range []string{HelloSubject("d-1"), RenewSubject("d-1"), PushSubject("d-1")} {
		id, ok := DSNFromSubject(s)
		assert.True(t, ok, s)
		assert.Equal(t, "d-1", id, s)
	}
	assert.Equal(t, "dsn.v1.dsn.d-1.hello", HelloSubject("d-1"))
	assert.Equal(t, "dsn.v1.dsn.d-1.renew", RenewSubject("d-1"))

	ok := RenewRequest{DSN: "d-1", CSR: "pem"}
	assert.NoError(t, ok.Validate())
	for _, bad := range []RenewRequest{{DSN: "d.1", CSR: "pem"}, {DSN: "d-1"}, {DSN: "d-1", CSR: strings.Repeat("c", MaxCSRLen+1)}} {
		assert.ErrorIs(t, bad.Validate(), ErrInvalid, "%+v", bad)
	}
	assert.NoError(t, (&RenewResponse{Certificate: "pem"}).Validate())
	assert.NoError(t, (&RenewResponse{Error: "no"}).Validate())
	assert.ErrorIs(t, (&RenewResponse{}).Validate(), ErrInvalid)
	assert.ErrorIs(t, (&RenewResponse{Certificate: "pem", Error: "no"}).Validate(), ErrInvalid)
}
