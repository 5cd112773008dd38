package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// Series names the engine writes to the run's time-series store.
const (
	seriesDSNs        = "dsnscale_fleet_dsns"          // {state}
	seriesAcked       = "dsnscale_fleet_acked_percent" // share in session at the revision current ackedGrace ago
	seriesRevision    = "dsnscale_cp_revision"
	seriesCPU         = "dsnscale_component_cpu_seconds_total" // {component}
	seriesRSS         = "dsnscale_component_rss_bytes"         // {component}
	seriesAPIRequests = "dsnscale_api_requests_per_second"
	seriesAPIErrors   = "dsnscale_api_errors_per_second"
	seriesAPIP50      = "dsnscale_api_latency_p50_ms"
	seriesAPIP99      = "dsnscale_api_latency_p99_ms"
)

// census counts the fleet's DSNs now (none before the fleet exists).
func (e *engine) census(rev uint64) measure.Counts {
	if e.fleet == nil {
		return measure.Counts{States: map[string]int{}}
	}
	return e.fleet.Census(rev)
}

// startObservers starts the goroutines that watch the run from outside: the revision poll (which
// is also the API health probe), the reader of the control plane's loss counters and the
// sampler of the fleet census, resources and API figures.
func (e *engine) startObservers(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(3)
	go func() {
		defer wg.Done()
		e.pollRevisions(ctx)
	}()
	go func() {
		defer wg.Done()
		e.watchCounters(ctx)
	}()
	go func() {
		defer wg.Done()
		e.sample(ctx)
	}()
}

// pollRevisions asks the control plane's API for its revision every PollInterval: each new
// revision is recorded with the time it was first seen, and each answer (or its absence) is a
// health probe.
func (e *engine) pollRevisions(ctx context.Context) {
	api := e.cp.API()
	var last uint64
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		rev, err := api.Revision(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := e.clock.Now()
		e.cpEvents.Probe(measure.Probe{At: now, OK: err == nil})
		if err == nil && rev > last {
			last = rev
			e.revisions.Add(measure.Mark{Revision: rev, At: now, Source: measure.SourcePoll})
		}
		if sleepCtx(ctx, e.clock, e.opts.PollInterval) != nil {
			return
		}
	}
}

// ackedGrace is how old a change must be before the acked share expects the fleet to have
// applied it. Against the latest revision, a load that writes would move the target under the
// fleet at every sample and the share would flap between 0 and 100%; against the revision
// current ackedGrace ago, it says how much of the fleet keeps up within that time.
const ackedGrace = time.Second

// Sample is what the engine saw over one sampling interval, as Options.Watch receives it.
type Sample struct {
	// At is when the sample was taken; Step the step running then ("" before the first).
	At   time.Time
	Step string
	// Size is the fleet's declared size; Census counts its DSNs now.
	Size   int
	Census measure.Counts
	// APICalls and APIFailed count the calls to the control plane's API since the previous
	// sample: the load's requests and the harness's own revision probes.
	APICalls, APIFailed int
}

// sample records, every SampleInterval, the fleet census, the resources of each component and
// the API's figures over the last interval, to the time-series store and the progress display.
func (e *engine) sample(ctx context.Context) {
	cpu := newCPUAccount()
	lastAPI := e.clock.Now()
	probesSeen := 0
	for {
		now := e.clock.Now()
		rev := e.revisions.At(now.Add(-ackedGrace))
		c := e.census(rev)
		e.series.censusSample(now, c, e.s.Fleet.Size, e.revisions.Latest())
		e.sampleResources(now, cpu)
		n, failed, lat := e.requests.Between(lastAPI, now)
		if secs := now.Sub(lastAPI).Seconds(); secs > 0 && n > 0 {
			e.series.apiSample(now, float64(n)/secs, float64(failed)/secs, lat)
		}
		lastAPI = now
		e.series.flush(ctx)
		e.mu.Lock()
		step := e.current
		e.mu.Unlock()
		e.prog.Update(step, c, e.s.Fleet.Size, rev, now.Sub(e.start))
		if e.opts.Watch != nil {
			probes := e.cpEvents.Probes()
			calls, failedCalls := n, failed
			for _, p := range probes[min(probesSeen, len(probes)):] {
				calls++
				if !p.OK {
					failedCalls++
				}
			}
			probesSeen = len(probes)
			e.opts.Watch(Sample{At: now, Step: step, Size: e.s.Fleet.Size, Census: c, APICalls: calls, APIFailed: failedCalls})
		}
		if sleepCtx(ctx, e.clock, e.opts.SampleInterval) != nil {
			return
		}
	}
}

func (e *engine) sampleResources(now time.Time, cpu *cpuAccount) {
	self := os.Getpid()
	comps := []struct {
		name string
		pids []int
	}{
		{measure.ComponentHarness, []int{self}},
	}
	if e.cp != nil && e.cp.PID() > 0 {
		comps = append(comps, struct {
			name string
			pids []int
		}{measure.ComponentControlPlane, []int{e.cp.PID()}})
	}
	if e.fleet != nil {
		if e.fleet.InHarness() {
			e.resources.SetNote(measure.ComponentFleet, "runs in the harness process: its figures are the harness's")
			comps = append(comps, struct {
				name string
				pids []int
			}{measure.ComponentFleet, []int{self}})
		} else if cpuSecs, rss, err := e.fleet.Usage(context.Background()); err == nil {
			s := measure.Sample{At: now, CPUSeconds: cpuSecs, RSSBytes: rss}
			e.resources.Add(measure.ComponentFleet, s)
			e.series.resourceSample(measure.ComponentFleet, s)
		} else {
			e.resources.SetNote(measure.ComponentFleet, "not sampled: "+err.Error())
		}
	}
	for _, comp := range comps {
		var rss int64
		ok := false
		for _, pid := range comp.pids {
			secs, r, err := readProc(pid)
			if err != nil {
				continue
			}
			ok = true
			cpu.update(comp.name, pid, secs)
			rss += r
		}
		if !ok {
			continue
		}
		s := measure.Sample{At: now, CPUSeconds: cpu.total(comp.name), RSSBytes: rss}
		e.resources.Add(comp.name, s)
		e.series.resourceSample(comp.name, s)
	}
}

// cpuAccount keeps each component's CPU time across its processes, including processes that
// have since exited (a restarted control plane), so the total never goes back.
type cpuAccount struct {
	last map[string]map[int]float64
}

func newCPUAccount() *cpuAccount { return &cpuAccount{last: map[string]map[int]float64{}} }

func (a *cpuAccount) update(comp string, pid int, secs float64) {
	if a.last[comp] == nil {
		a.last[comp] = map[int]float64{}
	}
	a.last[comp][pid] = secs
}

func (a *cpuAccount) total(comp string) float64 {
	t := 0.0
	for _, s := range a.last[comp] {
		t += s
	}
	return t
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat (100 on Linux).
const clockTicks = 100

// readProc reads a process's user+system CPU seconds from /proc/<pid>/stat and its resident set
// from /proc/<pid>/status.
func readProc(pid int) (cpuSecs float64, rss int64, err error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ... utime(14) stime(15), so utime is f[11] and stime f[12].
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("unreadable CPU times in /proc stat")
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			rss = kb * 1024
		}
	}
	return float64(ut+st) / clockTicks, rss, nil
}
