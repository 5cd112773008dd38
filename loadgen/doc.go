// Package loadgen drives northbound load at a control plane and tells the truth about it.
//
// An executor decides when iterations start; a [Workload] decides what one iteration does. The
// executors follow k6's: constant-arrival-rate and ramping-arrival-rate are open models (new
// iterations start on a schedule whatever the target's latency), constant-vus and ramping-vus are
// closed models (a fixed population of virtual users loops as fast as the target answers).
//
// Every latency is measured from the iteration's intended start: in the open model, the time the
// schedule called for it, so a stall of the generator (a GC pause, a starved CPU) or of the
// target shows up in the latencies instead of being hidden by starting late (coordinated
// omission). When the generator could not keep the requested schedule - late starts, iterations
// dropped because every VU was busy, its own CPU saturated - the [Summary] says so in
// GeneratorLimited and LimitReasons, so a slow generator is never mistaken for a slow target.
//
// An [ExecutorConfig] is pure data: Validate checks it and Plan says what it would do without
// doing it. Executor types live in a registry; the four built-in types register themselves.
package loadgen
