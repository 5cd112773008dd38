package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// restartLink is the harness's end of the link going away and coming back on the same address:
// every unit loses its connection at once.
func (d *Deployment) restartLink(t *testing.T) {
	addr := d.ln.Addr().String()
	require.NoError(t, d.ln.Close())
	for _, us := range d.units {
		us.mu.Lock()
		if us.link != nil {
			_ = us.link.conn.Close()
		}
		us.mu.Unlock()
	}
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	d.ln = tls.NewListener(ln, d.tls)
	d.wg.Add(1)
	go d.accept()
}

// launchSmall links a fleet of n DSNs, in units of the default map's racks, run by children in
// this process.
func launchSmall(t *testing.T, n int) (*Deployment, *goRunner, *record.Collector, []driver.Unit) {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	m := trafficmap.Default()
	ps, err := m.Place(n, "r")
	require.NoError(t, err)
	units, _ := unitsOf(ps)
	col := record.NewCollector(nil)
	r := newGoRunner(t)
	d, err := Launch(context.Background(), &driver.Plan{Map: m, Stages: stage.Default(), Units: units, Bus: bus.Config{URL: srv.URL()}, Seed: 1},
		col.Writer(), r, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d, r, col, units
}

// unitsOf groups placed DSNs into units, one per rack, and says which unit each rack is.
func unitsOf(ps []trafficmap.Placement) ([]driver.Unit, map[string]int) {
	var units []driver.Unit
	idx := map[string]int{}
	for _, p := range ps {
		i, ok := idx[p.Rack]
		if !ok {
			i = len(units)
			idx[p.Rack] = i
			units = append(units, driver.Unit{Name: p.Rack, Site: p.Site, Rack: p.Rack})
		}
		units[i].DSNs = append(units[i].DSNs, engine.DSNSpec{ID: p.ID, Group: p.Group, Unit: p.Rack, Labels: p.Labels})
	}
	return units, idx
}

// A unit that loses the harness keeps its DSNs running, dials again and is caught up: faults
// that ended meanwhile end, and its DSNs report where they are.
func TestUnitsReattachWhenTheHarnessComesBack(t *testing.T) {
	d, r, col, units := launchSmall(t, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpStart}))
	require.NoError(t, col.WaitFor(ctx, func(s record.Summary) bool { return s.Count("admitting") == 16 }))
	hung := units[0].DSNs[0].ID
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpInject, Injection: "h", Misbehaviour: "hang", DSNs: []string{hung}}))
	require.NoError(t, col.WaitFor(ctx, func(s record.Summary) bool { return s.Count("hung") == 1 }))

	d.restartLink(t)
	// The harness counts what it cannot see as off...
	require.NoError(t, col.WaitFor(ctx, func(s record.Summary) bool { return s.Count("off") == 16 }))
	// ...and a fault that ends while the unit is away must end when it is back.
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpRecover, Injection: "h"}))

	require.NoError(t, col.WaitFor(ctx, func(s record.Summary) bool { return s.Count("admitting") == 16 }))
	for _, u := range units {
		require.Eventually(t, func() bool { return col.Units()[u.Name].Status == "reattached" }, 10*time.Second, 20*time.Millisecond, u.Name)
		r.mu.Lock()
		assert.Equal(t, 1, r.starts[u.Name], "unit %s was re-attached, not started again", u.Name)
		r.mu.Unlock()
	}
	// Commands work over the new links.
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpInject, Injection: "h2", Misbehaviour: "hang", DSNs: []string{hung}}))
	require.NoError(t, col.WaitFor(ctx, func(s record.Summary) bool { return s.Count("hung") == 1 }))
}

// A unit with a credential of another run, or one that claims another unit's name, gets nothing.
func TestLinkRefusesForeignCredentials(t *testing.T) {
	d, _, _, units := launchSmall(t, 4)
	other, err := newLinkCA(time.Now())
	require.NoError(t, err)
	foreign, err := other.credential(units[0].Name, time.Now())
	require.NoError(t, err)
	a := ChildArgs{Harness: d.Addr(), Unit: units[0].Name, Token: d.token, Cache: t.TempDir(), Credential: foreign}
	start := time.Now()
	err = RunChild(context.Background(), a, nil)
	require.ErrorIs(t, err, ErrCredential)
	assert.Less(t, time.Since(start), helloTimeout, "a refused credential is final: no dialling again")

	// The run's own credential for unit B, claiming unit A.
	if len(units) < 2 {
		t.Skip("the default map placed every DSN in one rack")
	}
	b, err := d.ca.credential(units[1].Name, time.Now())
	require.NoError(t, err)
	cfg, err := unitTLS(b)
	require.NoError(t, err)
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.Dial("tcp", d.Addr(), cfg)
	require.NoError(t, err)
	defer conn.Close()
	hb, _ := json.Marshal(hello{Unit: units[0].Name, Token: d.token})
	_, err = conn.Write(append(hb, '\n'))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(conn).ReadBytes('\n')
	require.Error(t, err, "no spec for a unit that is not the certificate's")
}

func TestDetachedRecordsWaitAndAnswersDoNot(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &lineWriter{limit: 20}
	_, _ = w.Write([]byte("{\"n\":1}\n"))
	_, _ = w.Write(ackLine(3, nil))
	_, _ = w.Write([]byte("{\"n\":2}\n"))
	_, _ = w.Write([]byte("{\"n\":3}\n")) // over the limit: dropped
	got := make(chan []string, 1)
	go func() {
		rd := bufio.NewReader(b)
		var lines []string
		for range 2 {
			l, err := rd.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, l)
		}
		got <- lines
	}()
	dropped := w.attach(a)
	w.flush()
	assert.Equal(t, 1, dropped)
	assert.Equal(t, []string{"{\"n\":1}\n", "{\"n\":2}\n"}, <-got, "held records in order, the stale answer left out")
}

func TestParseChildArgsNeedsACredential(t *testing.T) {
	args := []string{"--harness", "127.0.0.1:1", "--unit", "u", "--token", "t", "--cache", "/tmp/x"}
	_, err := ParseChildArgs(args, func(string) string { return "" }, nil)
	require.ErrorIs(t, err, ErrCredential)
	_, err = ParseChildArgs(append(args, "--reattach", "-1s"), func(string) string { return "x" }, nil)
	require.ErrorContains(t, err, "negative")
}

// An advertised address that does not reach the harness is refused before any unit starts.
func TestLaunchRefusesAnUnreachableAdvertisedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	r := newGoRunner(t)
	m := trafficmap.Default()
	ps, err := m.Place(2, "u")
	require.NoError(t, err)
	units := []driver.Unit{{Name: ps[0].Rack, DSNs: []engine.DSNSpec{{ID: ps[0].ID, Group: ps[0].Group, Unit: ps[0].Rack}}}}
	_, err = Launch(context.Background(), &driver.Plan{Map: m, Stages: stage.Default(), Units: units, Bus: bus.Config{URL: "nats://127.0.0.1:1"}, Seed: 1},
		record.NewCollector(nil).Writer(), r, Options{Advertise: dead})
	require.ErrorContains(t, err, "does not reach the harness")
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(t, r.starts, "no unit was started")
}

// silentRunner starts nothing, and says why.
type silentRunner struct{ goRunner }

func (r *silentRunner) Start(context.Context, string, Child) error { return nil }

func (r *silentRunner) WhyNotConnected(_ context.Context, unit string) string {
	return "its task is pending: no suitable node"
}

// A unit that does not connect is reported with what its runner knows of why.
func TestLaunchSaysWhyAUnitDidNotConnect(t *testing.T) {
	r := &silentRunner{goRunner: *newGoRunner(t)}
	m := trafficmap.Default()
	ps, err := m.Place(1, "w")
	require.NoError(t, err)
	units := []driver.Unit{{Name: ps[0].Rack, DSNs: []engine.DSNSpec{{ID: ps[0].ID, Group: ps[0].Group, Unit: ps[0].Rack}}}}
	_, err = Launch(context.Background(), &driver.Plan{Map: m, Stages: stage.Default(), Units: units, Bus: bus.Config{URL: "nats://127.0.0.1:1"}, Seed: 1},
		record.NewCollector(nil).Writer(), r, Options{ConnectTimeout: 500 * time.Millisecond})
	require.ErrorContains(t, err, "did not connect within 500ms: its task is pending: no suitable node")
}
