// Package bus is a simulated DSN's link to the control plane's message bus. It hides whether a
// DSN has a connection of its own or shares one with many others: the DSN runtime asks to
// connect, publishes, sends requests and fetches snapshot objects, and gets every answer back
// as a Delivery on its own event queue, never on a goroutine of its own.
package bus

import (
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrNotConnected is returned when a DSN without a live connection tries to send.
	ErrNotConnected = errors.New("bus: not connected")
	// ErrNoResponders is delivered when nobody listens on a request's subject.
	ErrNoResponders = errors.New("bus: no responders")
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("bus: invalid config")
)

// Kind says what a Delivery is.
type Kind uint8

// Delivery kinds.
const (
	// ConnUp: the DSN's Connect succeeded.
	ConnUp Kind = iota + 1
	// ConnFailed: the DSN's Connect failed (Err says why).
	ConnFailed
	// ConnLost: the DSN's connection dropped.
	ConnLost
	// Push: a message arrived on the DSN's push subject.
	Push
	// Reply: the answer to a Request (or Err).
	Reply
	// Fetched: a Fetch finished (Data or Err).
	Fetched
)

// Delivery is something the bus hands back to a DSN.
type Delivery struct {
	DSN   int32
	Kind  Kind
	Token uint32
	Data  []byte
	Err   error
}

// Deliver receives deliveries; it must not block for long (it runs on the bus's goroutines).
type Deliver func(Delivery)

// Bus is what a DSN runtime needs from the message bus. DSNs are numbered 0..n-1 and registered
// before Start.
type Bus interface {
	// Register makes DSN n (with wire id and labels) known; pool groups DSNs that may share a
	// connection (a unit: a rack, a process, a container). A DSN that admits itself (PerDSN with
	// security) is admitted with its labels: the control plane holds a DSN to the labels it
	// was admitted with.
	Register(n int32, id string, pool string, labels map[string]string)
	// Start begins connecting shared connections; deliveries go to d.
	Start(d Deliver) error
	// Connect asks for DSN n's connection; ConnUp or ConnFailed follows.
	Connect(n int32)
	// Disconnect drops DSN n's connection without a ConnLost.
	Disconnect(n int32)
	// Publish sends data on subject for DSN n.
	Publish(n int32, subject string, data []byte) error
	// Request sends data on subject; the Reply carries token.
	Request(n int32, subject string, data []byte, token uint32) error
	// Fetch reads an object-store object; the Fetched delivery carries token.
	Fetch(n int32, bucket, object string, token uint32, timeout time.Duration)
	// Close closes every connection.
	Close()
}
