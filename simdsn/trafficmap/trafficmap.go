// Package trafficmap reads traffic-pattern maps: YAML files (apiVersion dsnscale/v1, kind
// TrafficMap) that describe a simulated fleet's infrastructure (sites, racks, DSN groups with
// labels and counts) and each group's workload (connections per second, active flows,
// endpoints, the mix of flows, telemetry series and interval, event rate, diurnal shape,
// bursts). Maps are decoded strictly and validated before anything starts; every error carries
// file:line and the field path. A default map is embedded.
package trafficmap

import (
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// APIVersion and Kind of a traffic-pattern map file.
const (
	APIVersion = "dsnscale/v1"
	Kind       = "TrafficMap"
)

// Defaults for fields a map leaves out.
const (
	DefaultHeartbeat         = 10 * time.Second
	DefaultSeries            = 50
	DefaultTelemetryInterval = 10 * time.Second
	// MinSeries is the number of core series every telemetry batch carries.
	MinSeries = 10
)

// ErrInvalid wraps every problem found in a map.
var ErrInvalid = errors.New("invalid traffic map")

//go:embed default.yaml
var defaultMap []byte

// Map is a traffic-pattern map.
type Map struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion"`
	Kind        string `yaml:"kind" json:"kind"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	// Total, if set, is the number of DSNs the map describes; group counts and rack sizes must
	// add up to it.
	Total int `yaml:"total" json:"total,omitempty"`
	// Heartbeat is the heartbeat interval DSNs use until the control plane tells them one.
	Heartbeat time.Duration `yaml:"heartbeat" json:"heartbeat"`
	Sites     []Site        `yaml:"sites" json:"sites"`
	Groups    []Group       `yaml:"groups" json:"groups"`
}

// Site is a location holding racks.
type Site struct {
	Name  string `yaml:"name" json:"name"`
	Racks []Rack `yaml:"racks" json:"racks"`
}

// Rack is a failure domain holding DSNs.
type Rack struct {
	Name string `yaml:"name" json:"name"`
	DSNs int    `yaml:"dsns" json:"dsns"`
}

// Group is a set of DSNs alike in labels, behaviour and workload, placed in one site.
type Group struct {
	Name   string            `yaml:"name" json:"name"`
	Site   string            `yaml:"site" json:"site"`
	Count  int               `yaml:"count" json:"count"`
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// Stages names the stage set the group's DSNs follow (default "default").
	Stages string `yaml:"stages" json:"stages"`
	// Misbehaviours are always active on the group's DSNs.
	Misbehaviours []string  `yaml:"misbehaviours" json:"misbehaviours,omitempty"`
	Traffic       Traffic   `yaml:"traffic" json:"traffic"`
	Telemetry     Telemetry `yaml:"telemetry" json:"telemetry"`
	Events        Events    `yaml:"events" json:"events"`
}

// Traffic is a group's workload, per DSN.
type Traffic struct {
	ConnectionsPerSecond float64     `yaml:"connectionsPerSecond" json:"connectionsPerSecond"`
	ActiveFlows          int         `yaml:"activeFlows" json:"activeFlows"`
	Endpoints            int         `yaml:"endpoints" json:"endpoints"`
	Flows                []FlowClass `yaml:"flows" json:"flows,omitempty"`
	Diurnal              Diurnal     `yaml:"diurnal" json:"diurnal"`
	Bursts               Bursts      `yaml:"bursts" json:"bursts"`
}

// FlowClass is one kind of flow and the probability that a new flow is of it.
type FlowClass struct {
	Probability float64  `yaml:"probability" json:"probability"`
	From        Endpoint `yaml:"from" json:"from"`
	To          Endpoint `yaml:"to" json:"to"`
	Protocol    string   `yaml:"protocol" json:"protocol,omitempty"`
	Port        int      `yaml:"port" json:"port,omitempty"`
}

// Endpoint is one side of a flow: a tenant network and/or labelled endpoints.
type Endpoint struct {
	Tenant  string            `yaml:"tenant" json:"tenant,omitempty"`
	Network string            `yaml:"network" json:"network,omitempty"`
	Labels  map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// Diurnal shapes the connection rate over a day: the rate is multiplied by
// 1 + Amplitude*cos(2π(h-PeakHour)/24) at hour h of a day of DayLength.
type Diurnal struct {
	Amplitude float64       `yaml:"amplitude" json:"amplitude"`
	PeakHour  float64       `yaml:"peakHour" json:"peakHour"`
	DayLength time.Duration `yaml:"dayLength" json:"dayLength"`
}

// Bursts multiply the connection rate by Factor for Duration once every Every (all DSNs of the
// group together: a flash crowd).
type Bursts struct {
	Every    time.Duration `yaml:"every" json:"every"`
	Duration time.Duration `yaml:"duration" json:"duration"`
	Factor   float64       `yaml:"factor" json:"factor"`
}

// Telemetry is how much a DSN reports and how often.
type Telemetry struct {
	Series   int           `yaml:"series" json:"series"`
	Interval time.Duration `yaml:"interval" json:"interval"`
}

// Events is the rate of log events a DSN sends besides its lifecycle events.
type Events struct {
	PerMinute float64 `yaml:"perMinute" json:"perMinute"`
}

// StageNames is what validation needs from a stage registry.
type StageNames interface {
	HasSet(name string) bool
	Misbehaviour(name string) (*stage.Misbehaviour, bool)
	SetNames() []string          // for "did you mean" in errors
	MisbehaviourNames() []string // likewise
}

// Default returns the embedded default map, validated against the embedded stages.
func Default() *Map {
	m, err := Parse("default.yaml", defaultMap, stage.Default())
	if err != nil {
		panic(fmt.Sprintf("trafficmap: embedded default map is invalid: %v", err))
	}
	return m
}

// DefaultSource returns the embedded default map's YAML.
func DefaultSource() []byte { return append([]byte(nil), defaultMap...) }

// Load reads, decodes and validates a map file.
func Load(path string, stages StageNames) (*Map, error) {
	data, err := strictyaml.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Parse(path, data, stages)
}

// Parse decodes and validates a map; file names it in errors. Defaults are filled in.
func Parse(file string, data []byte, stages StageNames) (*Map, error) {
	var m Map
	d := &strictyaml.Decoder{File: file, Sentinel: ErrInvalid}
	if err := d.DecodeData(data, &m); err != nil {
		return nil, err
	}
	if err := m.validate(d, stages); err != nil {
		return nil, err
	}
	m.setDefaults()
	return &m, nil
}

// Validate checks a map built in code (errors carry field paths but no lines).
func (m *Map) Validate(stages StageNames) error {
	return m.validate(&strictyaml.Decoder{File: m.Name, Sentinel: ErrInvalid}, stages)
}

func (m *Map) setDefaults() {
	if m.Heartbeat == 0 {
		m.Heartbeat = DefaultHeartbeat
	}
	for i := range m.Groups {
		g := &m.Groups[i]
		if g.Stages == "" {
			g.Stages = stage.DefaultSet
		}
		if g.Telemetry.Series == 0 {
			g.Telemetry.Series = DefaultSeries
		}
		if g.Telemetry.Interval == 0 {
			g.Telemetry.Interval = DefaultTelemetryInterval
		}
		if g.Traffic.Diurnal.DayLength == 0 {
			g.Traffic.Diurnal.DayLength = 24 * time.Hour
		}
	}
}

// Group returns the group named name.
func (m *Map) Group(name string) (*Group, bool) {
	for i := range m.Groups {
		if m.Groups[i].Name == name {
			return &m.Groups[i], true
		}
	}
	return nil, false
}

// DSNs is the number of DSNs the map places.
func (m *Map) DSNs() int {
	n := 0
	for _, g := range m.Groups {
		n += g.Count
	}
	return n
}
