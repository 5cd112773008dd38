package securitytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/search"
)

// slowIndex is a real search index behind a slow link: every write waits first, as a search
// backend under load does.
type slowIndex struct {
	idx   search.Index
	delay time.Duration
}

func (s slowIndex) Search(ctx context.Context, q search.Query) (search.Result, error) {
	return s.idx.Search(ctx, q)
}

func (s slowIndex) Close() error { return nil } // the test closes the index

func (s slowIndex) Index(ctx context.Context, docs ...search.Document) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.idx.Index(ctx, docs...)
}

// TestAuditBurst sends a burst of calls larger than the bounded queue while the search backend
// is slow. In bounded mode records are dropped (the burst does overflow the queue); in durable
// mode, the default, every call's record is in the audit search afterwards.
func TestAuditBurst(t *testing.T) {
	const calls, queue = 400, 50
	burst := func(t *testing.T, mode string) (*env, string) {
		idx, err := search.OpenBleve(filepath.Join(t.TempDir(), "audit"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = idx.Close() })
		e := start(t, nil, controlplane.RateLimits{}, func(c *controlplane.Config) {
			c.AuditMode, c.AuditQueue = mode, queue
			c.AuditIndex = slowIndex{idx: idx, delay: 500 * time.Millisecond}
		})
		user := "burster-" + mode
		if mode == "" {
			user = "burster-default"
		}
		_, err = e.admin.Create(e.ctx(), obj(model.KindTenant, "", "acme", model.TenantSpec{}))
		require.NoError(t, err)
		tok := e.user(user, []string{"get", "list"}, []string{"Tenant"}, []string{"*"})
		e.waitAuthorized(tok, "/api/v1/tenants") // a list: the burst's calls are gets
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := 0; i < calls; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				code, body := e.call("GET", "/api/v1/tenants/acme", tok, nil)
				assert.Equal(t, http.StatusOK, code, body)
			}()
		}
		wg.Wait()
		return e, user
	}
	// found counts the user's records the audit search finds.
	found := func(t *testing.T, e *env, user string) int {
		admin, err := e.admin.Token(e.ctx())
		require.NoError(t, err)
		code, body := e.call("GET", fmt.Sprintf("/api/v1/audit?user=%s&verb=get&limit=%d", user, search.MaxLimit), admin, nil)
		require.Equal(t, http.StatusOK, code, body)
		var res struct {
			Total int `json:"total"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res))
		return res.Total
	}

	t.Run("bounded mode drops", func(t *testing.T) {
		e, _ := burst(t, audit.ModeBounded)
		assert.Positive(t, e.srv.AuditStats().Dropped, "the burst overflowed the bounded queue")
	})
	t.Run("durable mode, the default, loses nothing", func(t *testing.T) {
		e, user := burst(t, "")
		st := e.srv.AuditStats()
		assert.Zero(t, st.Dropped)
		assert.Zero(t, st.Failed)
		// Every call was stored before it was answered; the search sees them all once the
		// slow backend has indexed them.
		require.GreaterOrEqual(t, st.Recorded, uint64(calls))
		require.Eventually(t, func() bool { return found(t, e, user) >= calls }, 60*time.Second, 200*time.Millisecond,
			"the audit search found %d of %d calls", found(t, e, user), calls)
		assert.Equal(t, calls, found(t, e, user), "each call is recorded once")
	})
}

// TestAuditSearchDelay checks the stated bound on how soon the audit search sees a call in
// durable mode, with a search backend that keeps up.
func TestAuditSearchDelay(t *testing.T) {
	e := start(t, nil, controlplane.RateLimits{})
	admin, err := e.admin.Token(e.ctx())
	require.NoError(t, err)
	code, _ := e.call("GET", "/api/v1/tenants/nosuch", admin, nil)
	require.Equal(t, http.StatusNotFound, code)
	answered := time.Now()
	require.Eventually(t, func() bool {
		code, body := e.call("GET", "/api/v1/audit?user=admin&verb=get&tenant=nosuch", admin, nil)
		var res struct {
			Total int `json:"total"`
		}
		return code == http.StatusOK && json.Unmarshal([]byte(body), &res) == nil && res.Total == 1
	}, audit.SearchDelay, 50*time.Millisecond, "the audit search did not see the call within %s", audit.SearchDelay)
	t.Logf("the audit search saw the call %s after its answer", time.Since(answered).Round(time.Millisecond))
}
