package bus

import (
	"os"
	"runtime/debug"
	"sync"
)

// DensityGCPercent is the garbage collector target a process runs with while it holds a bus
// with one connection per DSN, unless GOGC is set. Each such connection carries about 60 KB
// of long-lived state (the NATS client's buffers and goroutines, the TLS session), so the heap
// is almost all live and the runtime's default target (100: a heap twice the live one) would
// double the fleet's memory to spare a collector that has little garbage to find. At 30,
// 10,000 DSNs hold about a quarter less memory for about a tenth more CPU (`make bench`,
// sim_*_conn_per_dsn).
const DensityGCPercent = 30

var density struct {
	mu       sync.Mutex
	holders  int
	previous int
}

// holdDensityGC sets DensityGCPercent for as long as at least one holder holds it; release
// restores the previous target when the last one lets go. It does nothing when GOGC is set:
// the user's choice wins.
func holdDensityGC() (release func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	density.mu.Lock()
	defer density.mu.Unlock()
	if density.holders == 0 {
		density.previous = debug.SetGCPercent(DensityGCPercent)
	}
	density.holders++
	var once sync.Once
	return func() {
		once.Do(func() {
			density.mu.Lock()
			defer density.mu.Unlock()
			if density.holders--; density.holders == 0 {
				debug.SetGCPercent(density.previous)
			}
		})
	}
}
