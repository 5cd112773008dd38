package ingest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
)

// Reasons a message is refused, as counted in dsnscale_ingest_messages_invalid_total.
const (
	ReasonMalformed = "malformed" // not JSON of the message's shape, or too large
	ReasonDSN       = "dsn"       // the dsn field is not a DSN id, or not the one in the subject
	ReasonTime      = "time"      // no time, or one the backends cannot store
	ReasonContent   = "content"   // another field breaks the limits (type, severity, message, fields)
)

// DSNLabel is the label every stored sample carries: the id of the DSN that sent it.
const DSNLabel = "dsn"

// invalidError is a message refused for reason.
type invalidError struct {
	reason string
	err    error
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func invalid(reason, format string, args ...any) error {
	return &invalidError{reason: reason, err: fmt.Errorf("%w: "+format, append([]any{wire.ErrInvalid}, args...)...)}
}

// reasonOf classifies an error of wire.Unmarshal.
func reasonOf(err error) string {
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie.reason
	}
	return ReasonMalformed
}

// telemetryMsg is a wire.TelemetryBatch that validates itself for wire.Unmarshal. Samples are
// checked one by one later: a bad sample costs itself, not its batch.
type telemetryMsg wire.TelemetryBatch

// Validate checks the batch's envelope.
func (m *telemetryMsg) Validate() error {
	if !wire.ValidID(m.DSN) {
		return invalid(ReasonDSN, "dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", m.DSN)
	}
	if m.TimeUnixNano <= 0 {
		return invalid(ReasonTime, "timeUnixNano: %d, want a time after 1970", m.TimeUnixNano)
	}
	return nil
}

// sampleLabels builds the label set of one sample of dsn: __name__, dsn and the sample's labels
// (empty values omitted: in the Prometheus data model an empty label is an absent one). The
// checks are tsdb.ValidateLabels', which every TSDB implementation shares, plus the one rule of
// VictoriaMetrics' line protocol (an underscore inside the name), so that a sample accepted here
// is stored alike by the embedded engine and by every remote server.
func sampleLabels(dsn string, s *wire.Sample) (*promutils.Labels, error) {
	if i := strings.LastIndexByte(s.Name, '_'); i <= 0 || i == len(s.Name)-1 {
		return nil, fmt.Errorf("%w: sample %q: a metric name needs an underscore that is neither first nor last (dsn_cpu_percent)", wire.ErrInvalid, s.Name)
	}
	ls := promutils.NewLabels(2 + len(s.Labels))
	ls.Add(tsdb.MetricNameLabel, s.Name)
	ls.Add(DSNLabel, dsn)
	for k, v := range s.Labels {
		if k == DSNLabel {
			return nil, fmt.Errorf("%w: sample %s: label %q is reserved for the sender's id", wire.ErrInvalid, s.Name, DSNLabel)
		}
		if v != "" {
			ls.Add(k, v)
		}
	}
	ls.Sort()
	if err := tsdb.ValidateLabels(ls); err != nil {
		return nil, fmt.Errorf("%w: sample %s: %w", wire.ErrInvalid, s.Name, err)
	}
	return ls, nil
}

// eventMsg is a wire.Event that validates itself for wire.Unmarshal, within the limits of the
// search index, so that an event accepted here is stored by every search backend.
type eventMsg wire.Event

var fieldKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the event.
func (m *eventMsg) Validate() error {
	if !wire.ValidID(m.DSN) {
		return invalid(ReasonDSN, "dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", m.DSN)
	}
	if m.TimeUnixNano <= 0 || !time.Unix(0, m.TimeUnixNano).Before(search.MaxTime) {
		return invalid(ReasonTime, "timeUnixNano: %d, want a time from 1970 to 2261", m.TimeUnixNano)
	}
	if m.Type == "" || len(m.Type) > search.MaxShortBytes || !utf8.ValidString(m.Type) {
		return invalid(ReasonContent, "type: want 1-%d bytes of UTF-8", search.MaxShortBytes)
	}
	switch m.Severity {
	case "debug", "info", "warning", "error":
	default:
		return invalid(ReasonContent, "severity: %q, want debug, info, warning or error", m.Severity)
	}
	if len(m.Message) > search.MaxMessageBytes || !utf8.ValidString(m.Message) {
		return invalid(ReasonContent, "message: want UTF-8 of at most %d bytes, got %d bytes", search.MaxMessageBytes, len(m.Message))
	}
	if max := search.MaxFields - len(reservedFields); len(m.Fields) > max {
		return invalid(ReasonContent, "fields: %d fields, at most %d", len(m.Fields), max)
	}
	for k, v := range m.Fields {
		if !fieldKeyPattern.MatchString(k) {
			return invalid(ReasonContent, "fields: key %q: want 1-64 of [A-Za-z0-9_-]", k)
		}
		if slices.Contains(reservedFields, k) {
			return invalid(ReasonContent, "fields: key %q is reserved for the event's series", k)
		}
		if v == "" || len(v) > search.MaxFieldValue || !utf8.ValidString(v) {
			return invalid(ReasonContent, "fields.%s: want 1-%d bytes of UTF-8", k, search.MaxFieldValue)
		}
	}
	return nil
}

// kind is the search kind of an event: events of type "log" are log lines.
func (m *eventMsg) kind() search.Kind {
	if m.Type == "log" {
		return search.KindLog
	}
	return search.KindEvent
}
