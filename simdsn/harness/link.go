// Package harness connects units of DSNs that run outside the harness process (child processes,
// containers) to the harness: a unit's child dials the harness's loopback endpoint, gets its
// spec (its DSNs, the map, the stage files, its bus settings), then streams its DSNs' records
// (the same JSON lines the in-process driver writes) and takes commands. Deployment is the
// driver.Deployment shared by the process, docker and swarm drivers; only how a unit's child is
// started, killed and paused differs (Runner).
package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Sentinel errors.
var (
	ErrProtocol = errors.New("harness: protocol error")
	ErrUnitDown = errors.New("harness: unit is down")
)

// hello is a child's first line. A child whose DSNs kept running through a lost link says so
// (Resume) and names the faults it still has in force, so that the harness can catch it up.
type hello struct {
	Unit       string   `json:"unit"`
	Token      string   `json:"token"`
	PID        int      `json:"pid"`
	Resume     bool     `json:"resume,omitempty"`
	Injections []string `json:"injections,omitempty"`
}

// Spec is what a unit's child runs: the harness's answer to its hello.
type Spec struct {
	Unit    string            `json:"unit"`
	Map     *trafficmap.Map   `json:"map"`
	Stages  map[string][]byte `json:"stages"`
	Bus     bus.Config        `json:"bus"`
	DSNs    []engine.DSNSpec  `json:"dsns"`
	Seed    uint64            `json:"seed"`
	Workers int               `json:"workers"`
	// CacheDir, if set, overrides the child's --cache directory.
	CacheDir string `json:"cacheDir,omitempty"`
}

// command is a harness-to-child line.
type command struct {
	ID  uint64         `json:"id"`
	Cmd engine.Command `json:"cmd"`
}

// Child-to-harness lines are records (JSON objects, package record) or command answers, which
// start with ackPrefix: "A <id> <error text, empty when the command succeeded>".
const ackPrefix = 'A'

func ackLine(id uint64, err error) []byte {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b, _ := json.Marshal(msg)
	return fmt.Appendf(nil, "A %d %s\n", id, b)
}

func parseAck(line []byte) (uint64, error, bool) {
	parts := strings.SplitN(strings.TrimRight(string(line), "\n"), " ", 3)
	if len(parts) != 3 || parts[0] != string(ackPrefix) {
		return 0, nil, false
	}
	id, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return 0, nil, false
	}
	var msg string
	if err := json.Unmarshal([]byte(parts[2]), &msg); err != nil {
		return id, fmt.Errorf("%w: bad ack %q", ErrProtocol, line), true
	}
	if msg == "" {
		return id, nil, true
	}
	return id, errors.New(msg), true
}

// Timeouts of the link.
const (
	helloTimeout   = 10 * time.Second
	commandTimeout = 15 * time.Second
	flushInterval  = 50 * time.Millisecond
)
