package engine

import (
	"math"
	"strconv"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/dataplane"
	"github.com/dsnscale/dsnscale/simdsn/sched"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// startTicks begins periodic data-plane work when a DSN starts forwarding.
func (e *Engine) startTicks(d *dsn, now time.Time) {
	t := now.UnixNano()
	d.lastFlow = t
	if d.counters.Table() == nil {
		d.counters.SetTable(d.g.table(d.cur.objs))
	}
	iv := int64(d.g.mg.Telemetry.Interval)
	d.nextTel = t + d.r.Int64N(iv) + 1
	d.nextEvt = t + e.eventGap(d)
	d.nextHB = t + d.r.Int64N(int64(d.hb)+1)
	e.reschedule(d, now)
}

func (e *Engine) eventGap(d *dsn) int64 {
	rate := d.g.mg.Events.PerMinute / 60
	if rate <= 0 {
		return math.MaxInt64 / 2
	}
	return int64(d.r.ExpFloat64() / rate * float64(time.Second))
}

// reschedule sets the DSN's single periodic timer to its next due work.
func (e *Engine) reschedule(d *dsn, now time.Time) {
	if !d.state.DataPlane() {
		return
	}
	next := min(d.nextTel, d.nextEvt)
	if d.session != "" {
		next = min(next, d.nextHB)
	}
	d.tickSeq++
	e.sch.At(time.Unix(0, max(next, now.UnixNano())), sched.Event{Key: d.idx, Kind: evTick, Seq: d.tickSeq})
}

// tick does whatever periodic work is due.
func (e *Engine) tick(d *dsn, worker int, now time.Time) {
	if !d.state.DataPlane() {
		return
	}
	t := now.UnixNano()
	sending := d.connected && d.session != ""
	if t >= d.nextHB {
		if sending {
			e.heartbeat(d, now)
		}
		d.nextHB = next(d.nextHB, int64(d.hb), t)
	}
	if t >= d.nextTel {
		e.flows(d, now)
		if sending {
			e.telemetry(d, worker, now)
		}
		d.nextTel = next(d.nextTel, int64(d.g.mg.Telemetry.Interval), t)
	}
	if t >= d.nextEvt {
		if sending {
			e.logEvent(d, now)
		}
		d.nextEvt = t + e.eventGap(d)
	}
	e.reschedule(d, now)
}

// next is the next due time of a period after t, keeping its phase.
func next(due, period, t int64) int64 {
	if period <= 0 {
		return math.MaxInt64 / 2
	}
	due += period
	if due <= t {
		due = t + period
	}
	return due
}

// rate is a group's connection rate at now, with its diurnal shape and bursts.
func rate(mg *trafficmap.Group, now time.Time) float64 {
	tr := &mg.Traffic
	r := tr.ConnectionsPerSecond
	if dl := tr.Diurnal.DayLength; dl > 0 && tr.Diurnal.Amplitude > 0 {
		h := float64(now.UnixNano()%int64(dl)) / float64(dl) * 24
		r *= 1 + tr.Diurnal.Amplitude*math.Cos(2*math.Pi*(h-tr.Diurnal.PeakHour)/24)
	}
	if b := tr.Bursts; b.Every > 0 && b.Duration > 0 && now.UnixNano()%int64(b.Every) < int64(b.Duration) {
		r *= b.Factor
	}
	return max(r, 0)
}

// flows counts the flows since the last count under the config in force.
func (e *Engine) flows(d *dsn, now time.Time) {
	t := now.UnixNano()
	dt := t - d.lastFlow
	d.lastFlow = t
	if dt <= 0 || !d.state.DataPlane() {
		return
	}
	if d.counters.Table() == nil {
		d.counters.SetTable(d.g.table(d.cur.objs))
	}
	n := dataplane.Poisson(d.r, rate(d.g.mg, now)*float64(dt)/1e9)
	d.counters.Add(n, d.r)
}

// health is a DSN's simulated hardware state.
type health struct {
	cpu, memory, temperature, disk float64
}

func (e *Engine) health(d *dsn, now time.Time) health {
	mg := d.g.mg
	load := 0.0
	if mg.Traffic.ConnectionsPerSecond > 0 {
		load = rate(mg, now) / 1000
	}
	h := health{
		cpu:         min(100, 5+60*load+2*d.r.NormFloat64()),
		memory:      1.5e9 + float64(mg.Traffic.ActiveFlows)*512*(1+load) + 1e6*d.r.Float64(),
		temperature: 42 + 0.25*min(100, 5+60*load) + 0.5*d.r.NormFloat64(),
		disk:        100,
	}
	h.cpu = max(h.cpu, 0.5)
	since := float64(now.UnixNano()-d.healthSince) / 1e9
	if d.healthSince > 0 && since > 0 {
		h.temperature += d.beh.Health.TemperatureRisePerMinute * since / 60
		h.disk = max(0, 100-d.beh.Health.DiskHealthLossPerHour*since/3600)
	}
	return h
}

// series are the filler series of a telemetry batch beyond the core ones, precomputed per group.
type series struct {
	name   string
	labels string // pre-encoded JSON object
}

func buildSeries(n int) []series {
	var out []series
	for i := 0; len(out) < n; i++ {
		iface := `{"interface":"eth` + strconv.Itoa(i/4) + `"}`
		for _, name := range []string{"dsn_interface_rx_bytes_total", "dsn_interface_tx_bytes_total", "dsn_interface_rx_packets_total", "dsn_interface_drops_total"} {
			out = append(out, series{name: name, labels: iface})
		}
	}
	return out[:n]
}

// telemetry publishes one batch: the core series, the per-decision counters, then filler
// series up to the group's series count.
func (e *Engine) telemetry(d *dsn, worker int, now time.Time) {
	mg := d.g.mg
	h := e.health(d, now)
	tp := d.beh.Telemetry
	corrupt := tp.CorruptProbability > 0 && d.r.Float64() < tp.CorruptProbability
	mode := ""
	if corrupt {
		mode = tp.CorruptMode
	}
	id := d.id
	if mode == stage.CorruptWrongDSN {
		id = d.id + "-x"
	}
	r := rate(mg, now)
	active := float64(mg.Traffic.ActiveFlows) * r / max(mg.Traffic.ConnectionsPerSecond, 1)
	if mg.Traffic.ConnectionsPerSecond == 0 {
		active = float64(mg.Traffic.ActiveFlows)
	}
	if mode == stage.CorruptImpossible {
		h.cpu, h.temperature, h.disk, active = 400, 1e6, -50, -1
	}
	w := batchWriter{b: e.scratch[worker][:0]}
	w.begin(id, now.Add(d.beh.ClockSkew).UnixNano())
	w.sample("dsn_flows_active", "", active)
	w.sample("dsn_connections_per_second", "", r)
	w.sample("dsn_flows_allowed_total", "", float64(d.counters.Allowed))
	w.sample("dsn_flows_denied_total", "", float64(d.counters.Denied))
	w.sample("dsn_cpu_percent", "", h.cpu)
	w.sample("dsn_memory_bytes", "", h.memory)
	w.sample("dsn_temperature_celsius", "", h.temperature)
	w.sample("dsn_disk_health_percent", "", h.disk)
	w.sample("dsn_config_revision", "", float64(d.cur.rev))
	w.sample("dsn_endpoints", "", float64(mg.Traffic.Endpoints))
	left := mg.Telemetry.Series - trafficmap.MinSeries
	for _, rc := range d.counters.Rules {
		if left == 0 {
			break
		}
		action := "deny"
		if rc.Decision.Allow {
			action = "allow"
		}
		w.sampleDecision(rc.Decision.Label(), action, float64(rc.N))
		left--
	}
	base := float64(d.counters.Allowed)
	for i := 0; i < left && i < len(d.g.series); i++ {
		s := d.g.series[i]
		w.sample(s.name, s.labels, base*float64(900+(i%4)*100))
	}
	w.end()
	data := w.b
	if mode == stage.CorruptGarbage {
		data = data[:len(data)/2]
	}
	if e.publish(d, wire.TelemetrySubject(d.id), data) {
		e.st.telemetry.Add(1)
	}
	e.scratch[worker] = w.b
}

var logLines = []string{
	"flow table compaction finished",
	"conntrack sweep removed idle flows",
	"link eth0 renegotiated at 100G",
	"certificate rotation check passed",
	"policy cache hit ratio nominal",
	"firmware watchdog ping ok",
}

func (e *Engine) logEvent(d *dsn, now time.Time) {
	e.event(d, now, "log", "info", logLines[d.r.IntN(len(logLines))], nil)
}
