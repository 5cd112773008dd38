package main

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func postJSON(url, body string) (int, error) {
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func network(i int) string {
	return fmt.Sprintf(`{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"n%d","tenant":"acme"},"spec":{"cidr":"10.%d.%d.0/24","vlan":%d}}`,
		i, (i/256)%256, i%256, 1+i%4094)
}

// TestCrashKeepsAcknowledgedWrites SIGKILLs the control plane during a stream of writes: after a
// restart on the same data directory, every write that got a 2xx is there.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	cp := startCP(t, dir)
	code, err := postJSON(cp.apiURL+"/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"acme"},"spec":{}}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code)

	var (
		mu    sync.Mutex
		acked []int
		wg    sync.WaitGroup
	)
	const writers = 4
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i += writers {
				code, err := postJSON(cp.apiURL+"/api/v1/tenants/acme/networks", network(i))
				if err != nil {
					return // the server is gone
				}
				if code/100 == 2 {
					mu.Lock()
					acked = append(acked, i)
					mu.Unlock()
				}
			}
		}(w)
	}
	// Let some writes land, then kill without warning.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, cp.cmd.Process.Signal(syscall.SIGKILL))
	_ = cp.cmd.Wait()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))
	cp2 := startCP(t, dir)
	for _, i := range acked {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/tenants/acme/networks/n%d", cp2.apiURL, i))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "acknowledged network n%d lost", i)
	}
}

// TestSIGTERMShutsDownCleanly checks a graceful stop exits 0 and keeps what was written.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	cp := startCP(t, dir)
	code, err := postJSON(cp.apiURL+"/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"acme"},"spec":{}}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code)
	require.NoError(t, cp.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cp.cmd.Wait(), "stderr: %s", cp.stderr)
	require.Contains(t, cp.stderr.String(), "control plane listening")

	cp2 := startCP(t, dir)
	resp, err := http.Get(cp2.apiURL + "/api/v1/tenants/acme")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
