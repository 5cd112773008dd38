package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// ChildArgs are the arguments of `dsnscale sim child`.
type ChildArgs struct {
	Harness string // host:port of the harness endpoint
	Unit    string
	Token   string
	Cache   string // directory for the DSNs' config cache
	// UnitsFile and Index name the unit instead of Unit: entry Index of the JSON list of units
	// in UnitsFile (UnitEntry). A pod of a Kubernetes Indexed Job knows only its index.
	UnitsFile string
	Index     int
}

// UnitEntry is one unit in a units file (see ChildArgs.UnitsFile).
type UnitEntry struct {
	Name string `json:"name"`
	Site string `json:"site"`
	Rack string `json:"rack"`
	DSNs int    `json:"dsns"`
}

// ParseChildArgs parses `dsnscale sim child` flags.
func ParseChildArgs(args []string, stderr io.Writer) (ChildArgs, error) {
	fs := flag.NewFlagSet("sim child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a ChildArgs
	fs.StringVar(&a.Harness, "harness", "", "harness endpoint host:port")
	fs.StringVar(&a.Unit, "unit", "", "unit name")
	fs.StringVar(&a.Token, "token", "", "harness token")
	fs.StringVar(&a.Cache, "cache", "", "config cache directory")
	fs.StringVar(&a.UnitsFile, "units", "", "units file (JSON list of units), with --index instead of --unit")
	fs.IntVar(&a.Index, "index", -1, "the unit's index in --units")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if a.Harness == "" || a.Token == "" || a.Cache == "" {
		return a, errors.New("sim child: --harness, --token and --cache are required")
	}
	switch {
	case a.Unit != "" && a.UnitsFile == "" && a.Index < 0:
	case a.Unit == "" && a.UnitsFile != "" && a.Index >= 0:
	default:
		return a, errors.New("sim child: name the unit with --unit, or with --units FILE and --index N (N >= 0)")
	}
	return a, nil
}

// unitAt returns the name of entry index of a units file.
func unitAt(path string, index int) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("sim child: units file: %w", err)
	}
	var units []UnitEntry
	if err := json.Unmarshal(data, &units); err != nil {
		return "", fmt.Errorf("sim child: units file %s: %w", path, err)
	}
	if index >= len(units) || units[index].Name == "" {
		return "", fmt.Errorf("sim child: units file %s has no unit at index %d (%d units)", path, index, len(units))
	}
	return units[index].Name, nil
}

// RunChild runs one unit: it fetches its spec from the harness, runs its DSNs and serves
// commands until the harness goes away or ctx ends. log may be nil.
func RunChild(ctx context.Context, a ChildArgs, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if a.Unit == "" {
		name, err := unitAt(a.UnitsFile, a.Index)
		if err != nil {
			return err
		}
		a.Unit = name
	}
	var conn net.Conn
	var err error
	deadline := time.Now().Add(helloTimeout)
	for {
		conn, err = net.DialTimeout("tcp", a.Harness, 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("sim child: harness %s: %w", a.Harness, err)
	}
	defer conn.Close()
	hb, _ := json.Marshal(hello{Unit: a.Unit, Token: a.Token, PID: os.Getpid()})
	if _, err := conn.Write(append(hb, '\n')); err != nil {
		return fmt.Errorf("sim child: hello: %w", err)
	}
	rd := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(helloTimeout))
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("sim child: reading spec: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	var spec Spec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("%w: spec: %v", ErrProtocol, err)
	}
	reg, err := stage.FromSources(spec.Stages)
	if err != nil {
		return fmt.Errorf("sim child: stages: %w", err)
	}
	if spec.Map == nil {
		return fmt.Errorf("%w: spec without a map", ErrProtocol)
	}
	if err := spec.Map.Validate(reg); err != nil {
		return fmt.Errorf("sim child: map: %w", err)
	}
	spec.Bus.Logger = log
	b, err := bus.NewNATS(spec.Bus)
	if err != nil {
		return err
	}
	cache := spec.CacheDir
	if cache == "" {
		cache = filepath.Join(a.Cache, a.Unit)
	}
	w := &lineWriter{w: bufio.NewWriterSize(conn, 64<<10)}
	eng, err := engine.New(engine.Config{Bus: b, Stages: reg, Map: spec.Map, Records: w, CacheDir: cache,
		Workers: spec.Workers, Seed: spec.Seed, Logger: log}, spec.DSNs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	go w.flushLoop(ctx)
	go func() {
		<-ctx.Done()
		_ = conn.Close() // unblocks the command reader
	}()
	log.Info("unit running", "unit", a.Unit, "dsns", eng.Len())

	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			cancel()
			<-done
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil // the harness went away (or we were stopped): so does the unit
			}
			return fmt.Errorf("sim child: link: %w", err)
		}
		var c command
		if err := json.Unmarshal(line, &c); err != nil {
			cancel()
			<-done
			return fmt.Errorf("%w: command: %v", ErrProtocol, err)
		}
		_, _ = w.Write(ackLine(c.ID, eng.Do(c.Cmd)))
		w.flush()
	}
}

// lineWriter is the child's upstream: whole lines into a buffer flushed every flushInterval.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	_ = l.w.Flush()
	l.mu.Unlock()
}

func (l *lineWriter) flushLoop(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flush()
			return
		case <-t.C:
			l.flush()
		}
	}
}
