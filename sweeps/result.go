package sweeps

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
)

// The files a sweep writes in its directory.
const (
	ResultFile  = "sweep.json"
	SummaryFile = "summary.md"
	JUnitFile   = "junit.xml"
	ReportFile  = "report.html"
)

// Files are the files every sweep writes.
var Files = []string{ResultFile, SummaryFile, JUnitFile, ReportFile}

// SchemaVersion is the version of sweep.json.
const SchemaVersion = 1

// Status is how far a sweep got.
type Status string

// The statuses.
const (
	StatusRunning     Status = "running"
	StatusComplete    Status = "complete"
	StatusInterrupted Status = "interrupted"
	// StatusBudget: the budget ran out before every point was run.
	StatusBudget Status = "budget-spent"
)

// PointStatus is how one point ended.
type PointStatus string

// The point statuses.
const (
	PointPass    PointStatus = "pass"
	PointFail    PointStatus = "fail"
	PointBroken  PointStatus = "broken"
	PointAborted PointStatus = "aborted"
)

// Result is a sweep's record, sweep.json.
type Result struct {
	SchemaVersion int    `json:"schemaVersion"`
	ID            string `json:"id"`
	Name          string `json:"name"`
	Description   string `json:"description,omitempty"`
	Source        string `json:"source"`
	Scenario      string `json:"scenario"`
	// Set are the parameters fixed for every point.
	Set  map[string]string `json:"set,omitempty"`
	Axes []AxisRecord      `json:"axes"`
	// Repeat is the runs per point.
	Repeat int           `json:"repeat"`
	Budget time.Duration `json:"budget,omitempty"`
	Status Status        `json:"status"`
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end,omitzero"`
	// Points are the runs made, in order.
	Points []PointRecord `json:"points"`
	// Planned is how many runs the grid has (0 for a limit search).
	Planned int `json:"planned"`
	// Search is the limit search, when the sweep was one.
	Search *SearchRecord `json:"search,omitempty"`
	// FirstFailing is the index in Points of the first run that failed an SLO or broke; -1
	// when none did.
	FirstFailing int `json:"firstFailing"`
	// Analysis is the model of the figures against the first axis, one per value of the second
	// axis (or one).
	Analysis []Analysis `json:"analysis,omitempty"`
}

// AxisRecord is one axis as swept.
type AxisRecord struct {
	Param  string   `json:"param"`
	Values []string `json:"values"`
}

// SearchRecord is the limit search: its bounds and path.
type SearchRecord struct {
	SearchSpec
	SearchResult
}

// PointRecord is one run of the sweep.
type PointRecord struct {
	Point
	Status PointStatus `json:"status"`
	Exit   int         `json:"exit"`
	RunID  string      `json:"runID,omitempty"`
	Error  string      `json:"error,omitempty"`
	Start  time.Time   `json:"start"`
	End    time.Time   `json:"end"`
	// SLOs are the run's verdicts.
	SLOs []reports.Verdict `json:"slos,omitempty"`
	// Figures are the modelled figures the run measured; Missing says why others are absent.
	Figures map[string]float64 `json:"figures,omitempty"`
	Missing map[string]string  `json:"missing,omitempty"`
}

// Size is the point's value on the first axis.
func (p PointRecord) Size() float64 { return p.Nums[0] }

// Series names the point's value on the second axis; "" with one axis.
func (p PointRecord) Series() string {
	if len(p.Point.Values) > 1 {
		return p.Point.Values[1]
	}
	return ""
}

// Analysis is the model of one curve (one value of the second axis, or the only one).
type Analysis struct {
	// Series is the second axis's value, "" with one axis.
	Series string `json:"series,omitempty"`
	// Models are the modelled figures, in the order they were named.
	Models []Model `json:"models"`
	// Capacity is the answer; CapacityError says why there is none.
	Capacity      *capacity.Answer `json:"capacity,omitempty"`
	CapacityError string           `json:"capacityError,omitempty"`
}

// Model is one figure against the first axis.
type Model struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Unit  string `json:"unit,omitempty"`
	// Note says what the figure measured when that is not what its name says (the control
	// plane sharing the harness's process, say).
	Note string `json:"note,omitempty"`
	// Cost says the figure is a cost (CPU, memory) whose knee is sought; PerDSN that it is one
	// of the per-DSN cost curves.
	Cost   bool `json:"cost,omitempty"`
	PerDSN bool `json:"perDSN,omitempty"`
	// SLO is the SLO on this figure, if any.
	SLO          *capacity.SLO          `json:"slo,omitempty"`
	Observations []capacity.Observation `json:"observations"`
	Medians      []capacity.Observation `json:"medians"`
	// Fits are the forms tried, best first; FitError says why there are none.
	Fits     []capacity.Fit `json:"fits,omitempty"`
	FitError string         `json:"fitError,omitempty"`
	Knee     *capacity.Knee `json:"knee,omitempty"`
}

// WriteResult writes sweep.json atomically.
func WriteResult(dir string, r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("sweeps: encode %s: %w", ResultFile, err)
	}
	tmp := filepath.Join(dir, ResultFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("sweeps: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ResultFile)); err != nil {
		return fmt.Errorf("sweeps: %w", err)
	}
	return nil
}

// LoadResult reads sweep.json from a sweep directory.
func LoadResult(dir string) (*Result, error) {
	data, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return nil, fmt.Errorf("sweeps: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("sweeps: %s: %w", filepath.Join(dir, ResultFile), err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("sweeps: %s: schema version %d, this build reads %d", filepath.Join(dir, ResultFile), r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}
