package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// File names inside a run directory.
const (
	RunFile     = "run.json"
	ReportFile  = "report.html"
	SummaryFile = "summary.md"
	JUnitFile   = "junit.xml"
)

// maxRunBytes bounds the run.json Load reads: far above any real run, low enough that a wrong
// path (a disk image, say) is refused rather than read into memory.
const maxRunBytes = 1 << 30

// Write writes run.json and the derived files (report.html, summary.md, junit.xml) into dir,
// creating it if needed. Each file is written atomically (temporary file, then rename).
//
// run.json comes first and is written even when the record fails validation, so that the data
// of a run is never lost to a rendering problem; the derived files are then skipped. The error
// joins every failure.
func Write(dir string, run *Run) error {
	if run == nil {
		return fmt.Errorf("%w: nil run", ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: create run directory: %w", err)
	}
	data, err := MarshalRun(run)
	if err != nil {
		// Only a non-finite number makes marshalling fail; validation names the field.
		return errors.Join(fmt.Errorf("reports: encode %s: %w", RunFile, err), run.Validate())
	}
	if err := writeAtomic(filepath.Join(dir, RunFile), data); err != nil {
		return err
	}
	if err := run.Validate(); err != nil {
		return fmt.Errorf("reports: %s written but not rendered: %w", RunFile, err)
	}
	return renderAll(dir, run)
}

// Render redoes report.html, summary.md and junit.xml in dir from its run.json.
func Render(dir string) error {
	run, err := Load(dir)
	if err != nil {
		return err
	}
	return renderAll(dir, run)
}

func renderAll(dir string, run *Run) error {
	renderers := []struct {
		name   string
		render func(io.Writer, *Run) error
	}{
		{ReportFile, RenderHTML},
		{SummaryFile, RenderSummary},
		{JUnitFile, RenderJUnit},
	}
	var errs []error
	for _, r := range renderers {
		var buf bytes.Buffer
		if err := r.render(&buf, run); err != nil {
			errs = append(errs, fmt.Errorf("reports: render %s: %w", r.name, err))
			continue
		}
		if err := writeAtomic(filepath.Join(dir, r.name), buf.Bytes()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load reads and validates dir/run.json.
func Load(dir string) (*Run, error) {
	return LoadFile(filepath.Join(dir, RunFile))
}

// LoadFile reads and validates one run.json file.
func LoadFile(path string) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRunBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reports: read %s: %w", path, err)
	}
	if len(data) > maxRunBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, path, maxRunBytes)
	}
	return Decode(data, path)
}

// Decode parses and validates a run record. name labels errors ("run.json:12:7: ...").
// Unknown fields are rejected; a record of another schema version is rejected with
// ErrSchemaVersion before its fields are looked at.
func Decode(data []byte, name string) (*Run, error) {
	var head struct {
		SchemaVersion *int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, decodeError(name, data, err)
	}
	if head.SchemaVersion == nil {
		return nil, fmt.Errorf("%s: %w", name, &FieldError{Path: "schemaVersion", Problem: "missing", err: ErrSchemaVersion})
	}
	if *head.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%s: %w", name, &FieldError{Path: "schemaVersion",
			Problem: fmt.Sprintf("%d is not supported (this build reads %d)", *head.SchemaVersion, SchemaVersion), err: ErrSchemaVersion})
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var run Run
	if err := dec.Decode(&run); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &syn) && !errors.As(err, &typ) {
			// Unknown fields and bad times come without a position: find it.
			if path, off, problem, ok := locateProblem(data, reflect.TypeOf(run)); ok {
				return nil, fmt.Errorf("%w: %s:%s: %s: %s", ErrInvalid, name, lineCol(data, off), path, problem)
			}
		}
		return nil, decodeError(name, data, err)
	}
	if err := run.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &run, nil
}

// decodeError places a JSON syntax or type error at its line and column.
func decodeError(name string, data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && strings.Contains(syn.Error(), "unexpected end"):
		return fmt.Errorf("%w: %s:%s: truncated JSON: the document ends before the run object does", ErrInvalid, name, lineCol(data, syn.Offset))
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		return fmt.Errorf("%w: %s:%s: %v", ErrInvalid, name, lineCol(data, syn.Offset-1), syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("%w: %s:%s: %s: cannot use JSON %s as %s", ErrInvalid, name, lineCol(data, typ.Offset), field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s: truncated JSON: %v", ErrInvalid, name, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
}

// lineCol turns a byte offset into "line:column", both counted from 1.
func lineCol(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("%d:%d", line, col)
}

// writeAtomic writes data to path through a temporary file in the same directory and a rename,
// so that readers see the old file or the new one, never a part.
func writeAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("reports: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("reports: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("reports: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("reports: write %s: %w", path, err)
	}
	return nil
}
