package engine

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// fakeBus is a scripted stand-in for the control plane and its bus, for state-machine tests on
// virtual time (a real NATS connection cannot run inside a synctest bubble). Every answer goes
// back through the engine's Deliver, as the real bus does.
type fakeBus struct {
	mu        sync.Mutex
	deliver   bus.Deliver
	ids       map[int32]string
	up        bool // the bus is reachable
	connected map[int32]bool
	sent      []sent
	connects  []time.Time

	// hello answers a Hello after a delay; nil answers nothing.
	hello func(h wire.Hello) (*wire.Admission, time.Duration)
	// fetch answers a snapshot fetch after a delay.
	fetch func(bucket, object string) ([]byte, error, time.Duration)
}

type sent struct {
	at      time.Time
	dsn     int32
	subject string
	data    []byte
}

func newFakeBus() *fakeBus {
	return &fakeBus{ids: map[int32]string{}, connected: map[int32]bool{}, up: true}
}

func (f *fakeBus) Register(n int32, id, pool string, _ map[string]string) { f.ids[n] = id }

func (f *fakeBus) Start(d bus.Deliver) error { f.deliver = d; return nil }

func (f *fakeBus) Connect(n int32) {
	f.mu.Lock()
	f.connects = append(f.connects, time.Now())
	up := f.up
	if up {
		f.connected[n] = true
	}
	f.mu.Unlock()
	if up {
		f.deliver(bus.Delivery{DSN: n, Kind: bus.ConnUp})
	} else {
		f.deliver(bus.Delivery{DSN: n, Kind: bus.ConnFailed, Err: bus.ErrNotConnected})
	}
}

func (f *fakeBus) Disconnect(n int32) {
	f.mu.Lock()
	delete(f.connected, n)
	f.mu.Unlock()
}

func (f *fakeBus) Publish(n int32, subject string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up || !f.connected[n] {
		return bus.ErrNotConnected
	}
	f.sent = append(f.sent, sent{at: time.Now(), dsn: n, subject: subject, data: append([]byte(nil), data...)})
	return nil
}

func (f *fakeBus) Request(n int32, subject string, data []byte, token uint32) error {
	if err := f.Publish(n, subject, data); err != nil {
		return err
	}
	var h wire.Hello
	if err := json.Unmarshal(data, &h); err != nil {
		return err
	}
	f.mu.Lock()
	answer := f.hello
	f.mu.Unlock()
	if answer == nil {
		return nil
	}
	adm, delay := answer(h)
	if adm == nil {
		return nil
	}
	b, _ := json.Marshal(adm)
	time.AfterFunc(delay, func() {
		f.mu.Lock()
		ok := f.up && f.connected[n]
		f.mu.Unlock()
		if ok {
			f.deliver(bus.Delivery{DSN: n, Kind: bus.Reply, Token: token, Data: b})
		}
	})
	return nil
}

func (f *fakeBus) Fetch(n int32, bucket, object string, token uint32, timeout time.Duration) {
	f.mu.Lock()
	fetch := f.fetch
	f.mu.Unlock()
	data, err, delay := fetch(bucket, object)
	time.AfterFunc(min(delay, timeout), func() {
		if delay > timeout {
			data, err = nil, errFetchTimeout
		}
		f.deliver(bus.Delivery{DSN: n, Kind: bus.Fetched, Token: token, Data: data, Err: err})
	})
}

var errFetchTimeout = errors.New("fetch timed out")

func (f *fakeBus) Close() {}

// setUp makes the bus reachable or not; going down drops every connection.
func (f *fakeBus) setUp(up bool) {
	f.mu.Lock()
	f.up = up
	var lost []int32
	if !up {
		for n := range f.connected {
			lost = append(lost, n)
		}
		clear(f.connected)
	}
	f.mu.Unlock()
	for _, n := range lost {
		f.deliver(bus.Delivery{DSN: n, Kind: bus.ConnLost, Err: bus.ErrNotConnected})
	}
}

// push sends a push to DSN n.
func (f *fakeBus) push(n int32, p wire.Push) {
	b, _ := json.Marshal(p)
	f.deliver(bus.Delivery{DSN: n, Kind: bus.Push, Data: b})
}

// messages returns what was sent on subjects with the given suffix ("" for all).
func (f *fakeBus) messages(suffix string) []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, s := range f.sent {
		if suffix == "" || len(s.subject) >= len(suffix) && s.subject[len(s.subject)-len(suffix):] == suffix {
			out = append(out, s)
		}
	}
	return out
}
