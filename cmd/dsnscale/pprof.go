package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Profiling rates while profiles are served: one blocking event sampled per this many
// nanoseconds blocked, one mutex contention event in this many.
const (
	blockProfileRate     = 10_000
	mutexProfileFraction = 10
)

// profileServer serves the Go runtime's profiles (net/http/pprof) of this process, with block
// and mutex profiling on.
type profileServer struct {
	srv *http.Server
	ln  net.Listener
}

// startProfiles serves the profiles on addr, which must be a loopback host:port: the profiles
// are unauthenticated and say much about the process.
func startProfiles(addr string) (*profileServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-listen %q: want a loopback address (127.0.0.1, ::1 or localhost): the profiles are unauthenticated", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	runtime.SetBlockProfileRate(blockProfileRate)
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	p := &profileServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is where the profiles are served.
func (p *profileServer) URL() string { return "http://" + p.ln.Addr().String() + "/debug/pprof/" }

// Close stops serving and turns block and mutex profiling off.
func (p *profileServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = p.srv.Close()
	}
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
}
