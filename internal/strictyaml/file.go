package strictyaml

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// APIVersion is the version every dsnscale file kind declares.
const APIVersion = "dsnscale/v1"

// MaxFileBytes bounds every file the decoder reads.
const MaxFileBytes = 1 << 20

// Header is the part every dsnscale file kind starts with. A kind declares the two fields
// itself and passes them to CheckHeader after decoding.
type Header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

// CheckHeader reports a problem unless h declares apiVersion dsnscale/v1 and the given kind.
// Call it after decoding, so the problems point at the fields' lines.
func (d *Decoder) CheckHeader(h Header, kind string) {
	if h.APIVersion != APIVersion {
		d.ErrorAt("apiVersion", "must be %q, got %q", APIVersion, h.APIVersion)
	}
	if h.Kind != kind {
		d.ErrorAt("kind", "must be %q, got %q", kind, h.Kind)
	}
}

// KindOf reads the top-level kind of a file without decoding it, so that a command can choose
// the decoder for it; "" when it cannot tell (no such file, a library name, no kind line).
func KindOf(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimRight(line, " \r"), "kind:"); ok {
			return strings.Trim(strings.TrimSpace(k), `"'`)
		}
	}
	return ""
}

// ReadFile reads a file of at most MaxFileBytes. A larger file is an Errors naming the file;
// a file that cannot be read is returned as the os error (wrapped), so callers can tell
// "not there" (fs.ErrNotExist) from "not valid".
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if buf.Len() > MaxFileBytes {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}}
	}
	return buf.Bytes(), nil
}

// DecodeFile parses data (one YAML document from file) and decodes it into v strictly. It
// returns the decoder, so validation can report further problems at the decoded paths with
// ErrorAt, and the problems found so far (nil if none).
func DecodeFile(file string, data []byte, v any) (*Decoder, error) {
	d := &Decoder{File: file}
	return d, d.DecodeData(data, v)
}

// DecodeData parses data (one YAML document from d.File) and decodes it into v strictly, with
// d's settings (Subst, Sentinel). It returns the problems found so far (nil if none).
func (d *Decoder) DecodeData(data []byte, v any) error {
	root, err := Parse(d.File, data)
	if err != nil {
		d.Add(err)
		return d.Err()
	}
	d.Decode(root, "", v)
	return d.Err()
}
