package cpproc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/internal/testbin"
)

func tenantObj(name string) *model.Object {
	return &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: name}}
}

func tenantKey(name string) model.Key { return model.Key{Kind: model.KindTenant, Name: name} }

// TestClusterOfThreeReplicas starts three replicas with StartCluster and checks that they form
// one cluster, that a write through one is read back through the others, that a replica of
// another cluster or another CA is refused at start, that SIGKILL of a replica during a stream
// of writes loses no acknowledged write while the survivors keep answering, and that the last
// replica standing is no longer ready.
func TestClusterOfThreeReplicas(t *testing.T) {
	bin := testbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	procs, err := StartCluster(ctx, Options{Binary: bin, Dir: dir, StartTimeout: 90 * time.Second}, 3)
	require.NoError(t, err)
	t.Logf("three replicas ready in %s", time.Since(start).Round(time.Millisecond))
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()

	t.Run("status", func(t *testing.T) {
		for i, p := range procs {
			var st model.ClusterStatus
			require.Eventually(t, func() bool {
				st, err = p.API().Cluster(ctx)
				return err == nil && len(st.Node.Remotes) == 2 && len(st.Peers) == 3
			}, 30*time.Second, 50*time.Millisecond, "replica %d: %+v %v", i, st, err)
			assert.Equal(t, "cluster", st.Mode)
			assert.Equal(t, 3, st.Replicas)
			assert.Equal(t, NodeName(i), st.Node.ServerName)
			assert.Equal(t, ClusterName, st.Node.ClusterName)
			assert.Contains(t, []string{NodeName(0), NodeName(1), NodeName(2)}, st.MetaLeader)
			var names []string
			for _, peer := range st.Peers {
				names = append(names, peer.Name)
				assert.Equal(t, peer.Name == st.MetaLeader, peer.Leader, "peer %s", peer.Name)
			}
			assert.Equal(t, []string{NodeName(0), NodeName(1), NodeName(2)}, names)
			assert.NotNil(t, st.Owners)
		}
	})

	t.Run("write through one, read through the others", func(t *testing.T) {
		created, err := procs[0].API().Create(ctx, tenantObj("acme"))
		require.NoError(t, err)
		for i, p := range procs[1:] {
			require.Eventually(t, func() bool {
				got, err := p.API().Get(ctx, tenantKey("acme"))
				return err == nil && got.Metadata.ResourceVersion == created.Metadata.ResourceVersion
			}, 10*time.Second, 10*time.Millisecond, "replica %d never read the write made through replica 0", i+1)
		}
		// And the other way round: a write through a replica that did not make the first one is
		// checked against it (the name exists) and seen by replica 0.
		_, err = procs[2].API().Create(ctx, tenantObj("acme"))
		assert.Equal(t, 409, client.StatusCode(err), "create of an existing name through another replica: %v", err)
		_, err = procs[2].API().Create(ctx, tenantObj("globex"))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := procs[0].API().Get(ctx, tenantKey("globex"))
			return err == nil
		}, 10*time.Second, 10*time.Millisecond)
	})

	t.Run("a replica of another cluster or CA is refused", func(t *testing.T) {
		routes := []string{procs[0].ClusterAddr(), procs[1].ClusterAddr(), procs[2].ClusterAddr()}
		free, err := natsserver.FreeAddrs(1)
		require.NoError(t, err)
		for _, c := range []struct{ name, cluster, caDir string }{
			{"another cluster name", "other", filepath.Join(dir, ClusterCADir)},
			{"another CA", ClusterName, filepath.Join(t.TempDir(), "other-ca")},
		} {
			t.Run(c.name, func(t *testing.T) {
				cmd := exec.CommandContext(ctx, bin, "cp", "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
					"--nats-listen", "127.0.0.1:0", "--cluster", c.cluster, "--node-name", "intruder",
					"--cluster-listen", free[0], "--peers", strings.Join(routes, ","), "--ca-dir", c.caDir,
					"--admin-password-file", filepath.Join(dir, ClusterPasswordFile), "--join-timeout", "3s")
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				require.True(t, errors.As(err, &exit), "cp serve did not fail: %v\n%s", err, out)
				assert.Equal(t, 3, exit.ExitCode(), "%s", out)
				assert.Contains(t, string(out), "the cluster did not form")
				assert.Contains(t, string(out), "another cluster name")
				assert.Contains(t, string(out), "another CA")
			})
		}
		for i, p := range procs {
			st, err := p.API().Cluster(ctx)
			require.NoError(t, err)
			assert.NotContains(t, st.Node.Remotes, "intruder", "replica %d", i)
		}
	})

	t.Run("SIGKILL of a replica during writes", func(t *testing.T) {
		st, err := procs[0].API().Cluster(ctx)
		require.NoError(t, err)
		// Kill the meta leader when it is not the replica written through, else replica 2.
		victim := 2
		if i := slices.Index([]string{NodeName(0), NodeName(1), NodeName(2)}, st.MetaLeader); i > 0 {
			victim = i
		}
		survivor := 3 - victim // the replica other than 0 and the victim
		w := &writer{api: procs[0].API()}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.run(wctx) }()
		require.Eventually(t, func() bool { return w.count() >= 20 }, 30*time.Second, 5*time.Millisecond)
		before := w.count()
		killedAt := time.Now()
		procs[victim].Kill()
		t.Logf("SIGKILL of %s (meta leader %s) after %d acknowledged writes", NodeName(victim), st.MetaLeader, before)
		require.Eventually(t, func() bool { return w.count() >= before+20 }, 30*time.Second, 5*time.Millisecond,
			"writes through %s did not resume within 30s of the kill", NodeName(0))
		stop()
		<-done
		gap, failed := w.gapAfter(killedAt)
		t.Logf("writes through %s after the kill: longest time without an acknowledged write %s, %d writes failed; %d acknowledged in all",
			NodeName(0), gap.Round(time.Millisecond), failed, w.count())

		// Every acknowledged write is there, read through the survivor and through replica 0.
		for _, p := range []*Process{procs[survivor], procs[0]} {
			var missing []string
			require.Eventually(t, func() bool {
				missing = missing[:0]
				list, err := p.API().ListAll(ctx, model.KindTenant, client.ListOptions{}, 500)
				if err != nil {
					return false
				}
				have := map[string]bool{}
				for _, o := range list {
					have[o.Metadata.Name] = true
				}
				for _, name := range w.acked() {
					if !have[name] {
						missing = append(missing, name)
					}
				}
				return len(missing) == 0
			}, 20*time.Second, 20*time.Millisecond, "acknowledged writes missing: %v", missing)
		}
		// The survivors answer, elect a meta leader among themselves, and the leader reports
		// the killed replica as not current.
		require.NoError(t, procs[survivor].API().Ready(ctx))
		require.Eventually(t, func() bool {
			for _, p := range []*Process{procs[0], procs[survivor]} {
				st, err := p.API().Cluster(ctx)
				if err != nil || st.MetaLeader != st.Node.ServerName {
					continue
				}
				for _, peer := range st.Peers {
					if peer.Name == NodeName(victim) {
						return !peer.Current
					}
				}
			}
			return false
		}, 30*time.Second, 100*time.Millisecond, "no surviving meta leader reported %s as not current", NodeName(victim))

		// With a second replica gone the last one has no quorum: it still answers, but not ready.
		procs[survivor].Kill()
		var notReady error
		require.Eventually(t, func() bool {
			notReady = procs[0].API().Ready(ctx)
			return notReady != nil
		}, 60*time.Second, 100*time.Millisecond, "the last replica stayed ready without a quorum")
		assert.Contains(t, notReady.Error(), "no JetStream meta leader")
		require.NoError(t, procs[0].API().Healthy(ctx))
	})
}

// writer creates tenants one after the other and records which were acknowledged, and when.
type writer struct {
	api *client.Client

	mu     sync.Mutex
	ok     []string
	okAt   []time.Time
	failed []time.Time
}

func (w *writer) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("w-%05d", i)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := w.api.Create(rctx, tenantObj(name))
		cancel()
		w.mu.Lock()
		if err == nil {
			w.ok, w.okAt = append(w.ok, name), append(w.okAt, time.Now())
		} else if ctx.Err() == nil {
			w.failed = append(w.failed, time.Now())
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ok)
}

func (w *writer) acked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ok)
}

// gapAfter is the longest time without an acknowledged write from t on, and how many writes
// failed after t.
func (w *writer) gapAfter(t time.Time) (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	last := t
	for _, at := range w.okAt {
		if at.Before(t) {
			continue
		}
		gap = max(gap, at.Sub(last))
		last = at
	}
	failed := 0
	for _, at := range w.failed {
		if !at.Before(t) {
			failed++
		}
	}
	return gap, failed
}
