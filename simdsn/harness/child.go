package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/internal/procstat"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// ChildArgs are the arguments of `dsnscale sim child`.
type ChildArgs struct {
	Harness string // host:port of the harness endpoint
	Unit    string
	Token   string
	Cache   string // directory for the DSNs' config cache
	// Reattach bounds how long a unit whose link to the harness broke keeps its DSNs running
	// while it dials the harness again (0: the harness's end is the unit's end).
	Reattach time.Duration
	// Credential is the unit's link credential (from CredentialEnv), or CredentialDir holds it
	// in a file named after the unit (a mounted Kubernetes Secret).
	Credential    string
	CredentialDir string
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

// DefaultReattach is how long a unit keeps trying to re-attach by default.
const DefaultReattach = 2 * time.Minute

// ParseChildArgs parses `dsnscale sim child` flags; the credential comes from the environment
// (CredentialEnv), read through getenv.
func ParseChildArgs(args []string, getenv func(string) string, stderr io.Writer) (ChildArgs, error) {
	fs := flag.NewFlagSet("sim child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a ChildArgs
	fs.StringVar(&a.Harness, "harness", "", "harness endpoint host:port")
	fs.StringVar(&a.Unit, "unit", "", "unit name")
	fs.StringVar(&a.Token, "token", "", "harness token")
	fs.StringVar(&a.Cache, "cache", "", "config cache directory")
	fs.DurationVar(&a.Reattach, "reattach", DefaultReattach, "how long the unit's DSNs keep running while it dials a harness it lost (0: stop with the link)")
	fs.StringVar(&a.UnitsFile, "units", "", "units file (JSON list of units), with --index instead of --unit")
	fs.IntVar(&a.Index, "index", -1, "the unit's index in --units")
	fs.StringVar(&a.CredentialDir, "credential-dir", "", "directory holding the unit's link credential in a file named after the unit (instead of $"+CredentialEnv+")")
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
	if a.Reattach < 0 {
		return a, fmt.Errorf("sim child: --reattach %v is negative", a.Reattach)
	}
	a.Credential = getenv(CredentialEnv)
	if a.Credential == "" && a.CredentialDir == "" {
		return a, fmt.Errorf("sim child: %w: %s is not set (nor --credential-dir)", ErrCredential, CredentialEnv)
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

// resolve fills in the unit's name (from a units file) and its credential (from a file).
func (a *ChildArgs) resolve() error {
	if a.Unit == "" {
		name, err := unitAt(a.UnitsFile, a.Index)
		if err != nil {
			return err
		}
		a.Unit = name
	}
	if a.Credential == "" {
		b, err := os.ReadFile(filepath.Join(a.CredentialDir, a.Unit))
		if err != nil {
			return fmt.Errorf("sim child: %w: %v", ErrCredential, err)
		}
		a.Credential = strings.TrimSpace(string(b))
	}
	return nil
}

// maxDetachedBytes bounds the records a detached unit keeps for the harness; beyond it they are
// dropped and counted.
const maxDetachedBytes = 64 << 20

// childLink dials the harness and says hello.
type childLink struct {
	a   ChildArgs
	tls *tls.Config
}

// dial connects once, says hello and reads the spec.
func (cl *childLink) dial(h hello) (net.Conn, *bufio.Reader, []byte, error) {
	host, _, err := net.SplitHostPort(cl.a.Harness)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sim child: harness %q: %w", cl.a.Harness, err)
	}
	cfg := cl.tls.Clone()
	cfg.ServerName = host
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", cl.a.Harness, cfg)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &unknown) {
			return nil, nil, nil, fmt.Errorf("%w: the harness at %s has a certificate of another run's CA: %v", ErrCredential, cl.a.Harness, err)
		}
		return nil, nil, nil, err
	}
	hb, _ := json.Marshal(h)
	_ = conn.SetDeadline(time.Now().Add(helloTimeout))
	if _, err := conn.Write(append(hb, '\n')); err != nil {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("sim child: hello: %w", err)
	}
	rd := bufio.NewReaderSize(conn, 64<<10)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		_ = conn.Close()
		// TLS 1.3 sends the server's verdict on the client's certificate after the handshake:
		// a refused credential shows as an alert on the first read.
		if strings.Contains(err.Error(), "certificate") {
			return nil, nil, nil, fmt.Errorf("%w: the harness at %s refused this unit's credential (from another run?): %v", ErrCredential, cl.a.Harness, err)
		}
		return nil, nil, nil, fmt.Errorf("sim child: reading spec: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, rd, line, nil
}

// RunChild runs one unit: it fetches its spec from the harness, runs its DSNs and serves
// commands until ctx ends or the harness goes away for longer than a.Reattach (it dials again
// meanwhile, with its DSNs running). log may be nil.
func RunChild(ctx context.Context, a ChildArgs, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := a.resolve(); err != nil {
		return err
	}
	tc, err := unitTLS(a.Credential)
	if err != nil {
		return err
	}
	cl := &childLink{a: a, tls: tc}
	var (
		conn net.Conn
		rd   *bufio.Reader
		line []byte
	)
	deadline := time.Now().Add(helloTimeout)
	for {
		conn, rd, line, err = cl.dial(hello{Unit: a.Unit, Token: a.Token, PID: os.Getpid()})
		if err == nil || errors.Is(err, ErrCredential) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("sim child: harness %s: %w", a.Harness, err)
	}
	var spec Spec
	if err := json.Unmarshal(line, &spec); err != nil {
		_ = conn.Close()
		return fmt.Errorf("%w: spec: %v", ErrProtocol, err)
	}
	reg, err := stage.FromSources(spec.Stages)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("sim child: stages: %w", err)
	}
	if spec.Map == nil {
		_ = conn.Close()
		return fmt.Errorf("%w: spec without a map", ErrProtocol)
	}
	if err := spec.Map.Validate(reg); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sim child: map: %w", err)
	}
	spec.Bus.Logger = log
	b, err := bus.NewNATS(spec.Bus)
	if err != nil {
		_ = conn.Close()
		return err
	}
	cache := spec.CacheDir
	if cache == "" {
		cache = filepath.Join(a.Cache, a.Unit)
	}
	w := newLineWriter(conn)
	eng, err := engine.New(engine.Config{Bus: b, Stages: reg, Map: spec.Map, Records: w, CacheDir: cache,
		Workers: spec.Workers, Seed: spec.Seed, Logger: log}, spec.DSNs)
	if err != nil {
		_ = conn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	go w.flushLoop(ctx)
	go reportUsage(ctx, a.Unit, w, usageInterval)
	stop := func() error {
		cancel()
		w.detach()
		return <-done
	}
	log.Info("unit running", "unit", a.Unit, "dsns", eng.Len())

	for {
		err := serveCommands(ctx, conn, rd, w, eng)
		_ = conn.Close()
		if ctx.Err() != nil || errors.Is(err, ErrProtocol) {
			_ = stop()
			return err
		}
		if a.Reattach <= 0 {
			_ = stop()
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil // the harness went away: so does the unit
			}
			return fmt.Errorf("sim child: link: %w", err)
		}
		// The link broke. The DSNs go on (they are DSNs, not harness processes); their records
		// wait for the harness, which is dialled again until a.Reattach has passed.
		w.detach()
		log.Warn("unit lost the harness; dialling again", "unit", a.Unit, "err", err, "for", a.Reattach)
		conn, rd, err = reattach(ctx, cl, a, eng, log)
		if err != nil {
			_ = stop()
			return fmt.Errorf("sim child: harness lost for good: %w", err)
		}
		if n := w.attach(conn); n > 0 {
			log.Warn("records dropped while detached", "unit", a.Unit, "lines", n)
			rec, _ := json.Marshal(record.Record{At: time.Now().UnixNano(), Type: record.TypeUnit, Unit: a.Unit, State: "records-dropped",
				Detail: fmt.Sprintf("%d records dropped while the harness was out of reach", n)})
			_, _ = w.Write(append(rec, '\n'))
		}
		log.Info("unit re-attached", "unit", a.Unit)
	}
}

// usageInterval is how often a unit reports its own resource use.
const usageInterval = 5 * time.Second

// reportUsage has the unit report its process's CPU and memory, and the host it runs on, now
// and every interval: the harness cannot read them itself from a unit on another host.
func reportUsage(ctx context.Context, unit string, w *lineWriter, interval time.Duration) {
	host, _ := os.Hostname()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s, err := procstat.Read(0); err == nil {
			rec, _ := json.Marshal(record.Record{At: time.Now().UnixNano(), Type: record.TypeUsage, Unit: unit, Host: host,
				CPU: s.CPUSeconds, RSS: s.RSSBytes})
			_, _ = w.Write(append(rec, '\n'))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serveCommands runs the harness's commands on the engine until the link ends.
func serveCommands(ctx context.Context, conn net.Conn, rd *bufio.Reader, w *lineWriter, eng *engine.Engine) error {
	stopClose := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks the reader
	defer stopClose()
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return err
		}
		var c command
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("%w: command: %v", ErrProtocol, err)
		}
		_, _ = w.Write(ackLine(c.ID, eng.Do(c.Cmd)))
		w.flush()
	}
}

// reattach dials the harness with jittered exponential back-off until it answers, the window
// a.Reattach ends, or ctx does.
func reattach(ctx context.Context, cl *childLink, a ChildArgs, eng *engine.Engine, log *slog.Logger) (net.Conn, *bufio.Reader, error) {
	end := time.Now().Add(a.Reattach)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, rd, _, err := cl.dial(hello{Unit: a.Unit, Token: a.Token, PID: os.Getpid(), Resume: true, Injections: eng.Injections()})
		if err == nil {
			return conn, rd, nil
		}
		if errors.Is(err, ErrCredential) || !time.Now().Add(wait).Before(end) {
			return nil, nil, err
		}
		log.Debug("re-attach failed", "unit", a.Unit, "attempt", attempt, "err", err)
		jittered := wait/2 + time.Duration(mrand.Int64N(int64(wait)))
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(jittered):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// lineWriter is the child's upstream: whole lines into a buffer flushed every flushInterval.
// While the link is down, lines wait in memory (maxDetachedBytes at most; more are counted
// and dropped).
type lineWriter struct {
	mu       sync.Mutex
	w        *bufio.Writer // nil while detached
	held     [][]byte
	heldSize int
	limit    int // of heldSize
	dropped  int
}

func newLineWriter(conn net.Conn) *lineWriter {
	return &lineWriter{w: bufio.NewWriterSize(conn, 64<<10), limit: maxDetachedBytes}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// An answer to a command is for the link that carried the command: never for the next one,
	// whose command ids start again.
	if l.w == nil && len(p) > 0 && p[0] == ackPrefix {
		return len(p), nil
	}
	if l.w == nil {
		if l.heldSize+len(p) > l.limit {
			l.dropped++
			return len(p), nil
		}
		l.held = append(l.held, append([]byte(nil), p...))
		l.heldSize += len(p)
		return len(p), nil
	}
	n, err := l.w.Write(p)
	if err != nil {
		// The link is broken; keep the line (not an answer) for the next one.
		l.w = nil
		if len(p) > 0 && p[0] != ackPrefix {
			l.held = append(l.held, append([]byte(nil), p...))
			l.heldSize += len(p)
		}
		return len(p), nil
	}
	return n, nil
}

// detach starts holding lines.
func (l *lineWriter) detach() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		_ = l.w.Flush()
	}
	l.w = nil
}

// attach sends the held lines on conn and writes there from now on; it returns how many lines
// were dropped while detached.
func (l *lineWriter) attach(conn net.Conn) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = bufio.NewWriterSize(conn, 64<<10)
	for _, p := range l.held {
		if _, err := l.w.Write(p); err != nil {
			break
		}
	}
	l.held, l.heldSize = nil, 0
	n := l.dropped
	l.dropped = 0
	return n
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	if l.w != nil {
		if err := l.w.Flush(); err != nil {
			l.w = nil
		}
	}
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
