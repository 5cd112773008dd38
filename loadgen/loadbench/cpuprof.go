package loadbench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"time"

	"github.com/dsnscale/dsnscale/loadgen"
)

// The generator runs under this pprof label, so a CPU profile tells its samples from the
// server's when both share the process.
const (
	labelKey   = "dsnscale-role"
	labelValue = "generator"
)

// cpuSplit is how a phase's process CPU divides between the generator and everything else.
type cpuSplit struct {
	Process   time.Duration // the whole process (getrusage)
	Generator time.Duration // the generator's part, from the share of its profile samples
	Known     bool          // false when profiling was unavailable
}

// withGeneratorCPU runs fn with the generator label set on its goroutines (and all they start)
// under a CPU profile, and splits the process's CPU time by the profile's samples. Goroutines the
// generator did not start - the server's, and the runtime's background GC workers - count as
// not the generator, so the generator's share is, if anything, understated by its GC.
func withGeneratorCPU(ctx context.Context, fn func(ctx context.Context)) cpuSplit {
	var buf bytes.Buffer
	profiling := pprof.StartCPUProfile(&buf) == nil
	before, _ := loadgen.ProcessCPU()
	pprof.Do(ctx, pprof.Labels(labelKey, labelValue), fn)
	after, _ := loadgen.ProcessCPU()
	split := cpuSplit{Process: after - before}
	if !profiling {
		return split
	}
	pprof.StopCPUProfile()
	labeled, total, err := labeledShare(&buf, labelKey, labelValue)
	if err != nil || total == 0 {
		return split
	}
	split.Generator = time.Duration(float64(split.Process) * float64(labeled) / float64(total))
	split.Known = true
	return split
}

// labeledShare reads a gzipped pprof CPU profile and sums the CPU time of samples that carry
// label key=value, and of all samples.
func labeledShare(r io.Reader, key, value string) (labeled, total int64, err error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, 0, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return 0, 0, err
	}
	var strs []string
	var samples [][]byte
	err = fields(data, func(num int, wire int, v uint64, b []byte) error {
		switch {
		case num == 2 && wire == 2:
			samples = append(samples, b)
		case num == 6 && wire == 2:
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for _, s := range samples {
		var vals []int64
		hit := false
		err := fields(s, func(num int, wire int, v uint64, b []byte) error {
			switch {
			case num == 2 && wire == 0:
				vals = append(vals, int64(v))
			case num == 2 && wire == 2:
				for len(b) > 0 {
					x, n := binary.Uvarint(b)
					if n <= 0 {
						return errors.New("bad packed value")
					}
					vals = append(vals, int64(x))
					b = b[n:]
				}
			case num == 3 && wire == 2:
				var k, sv uint64
				if err := fields(b, func(num int, wire int, v uint64, _ []byte) error {
					if wire == 0 && num == 1 {
						k = v
					}
					if wire == 0 && num == 2 {
						sv = v
					}
					return nil
				}); err != nil {
					return err
				}
				if int(k) < len(strs) && int(sv) < len(strs) && strs[k] == key && strs[sv] == value {
					hit = true
				}
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		if len(vals) == 0 {
			continue
		}
		v := vals[len(vals)-1] // CPU profiles carry [samples, nanoseconds]
		total += v
		if hit {
			labeled += v
		}
	}
	return labeled, total, nil
}

// fields walks the fields of one protobuf message.
func fields(b []byte, fn func(num int, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var data []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("short fixed64")
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			data = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return fmt.Errorf("wire type %d", wire)
		}
		if err := fn(num, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}
