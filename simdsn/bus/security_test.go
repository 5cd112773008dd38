package bus

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// admissionServer is the control plane's admission route as a DSN sees it: it signs each
// CSR with a real CA once release is closed, and counts the admissions it answered and the
// most it held at once.
type admissionServer struct {
	*httptest.Server
	ca      *pki.CA
	release chan struct{}

	admitted, inFlight, maxInFlight atomic.Int64
}

func newAdmissionServer(t *testing.T) *admissionServer {
	t.Helper()
	ca, err := pki.OpenCA(t.TempDir(), nil)
	require.NoError(t, err)
	s := &admissionServer{ca: ca, release: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-s.release
		var req client.AdmitRequest
		if r.URL.Path != "/api/v1/admission" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		cert, err := ca.SignCSRFor([]byte(req.CSR), pki.Identity{Name: req.DSN, Role: pki.RoleDSN}, time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		s.admitted.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(client.AdmitResponse{Certificate: string(cert), CA: string(ca.CertPEM()), Role: pki.RoleDSN})
	}))
	srvCert, err := ca.ServerCert([]string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *admissionServer) security() *Security {
	return &Security{CA: string(s.ca.CertPEM()), APIURL: s.URL, BootstrapToken: "token"}
}

// A DSN whose connection attempts give up while its admission is still under way must not be
// admitted again by its retries: each admission spends a use of the fleet's token.
func TestRetriesJoinTheAdmissionUnderWay(t *testing.T) {
	s := newAdmissionServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids, err := newIdentities(ctx, s.security(), PerDSN)
	require.NoError(t, err)

	for range 3 {
		short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := ids.dsnOptions(short, "sim-0001", nil)
		stop()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	close(s.release)
	opts, err := ids.dsnOptions(ctx, "sim-0001", nil)
	require.NoError(t, err)
	assert.NotEmpty(t, opts)
	_, err = ids.dsnOptions(ctx, "sim-0001", nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.admitted.Load(), "one admission for one DSN, however often it retried")
}

// A fleet booting at once holds at most maxAdmissions admissions (and HTTPS connections) open.
func TestAdmissionsAreBounded(t *testing.T) {
	s := newAdmissionServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids, err := newIdentities(ctx, s.security(), PerDSN)
	require.NoError(t, err)

	const dsns = 3 * maxAdmissions
	var wg sync.WaitGroup
	errs := make(chan error, dsns)
	for i := range dsns {
		wg.Go(func() {
			_, err := ids.dsnOptions(ctx, fmt.Sprintf("sim-%04d", i), nil)
			errs <- err
		})
	}
	require.Eventually(t, func() bool { return s.inFlight.Load() == maxAdmissions }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // room for any admission beyond the bound to show up
	close(s.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(maxAdmissions), s.maxInFlight.Load())
	assert.Equal(t, int64(dsns), s.admitted.Load())
}

// A connection attempt that a newer one overtook closes what it dialled: a DSN has one
// connection, however often it was asked to connect.
func TestOvertakenDialsLeaveOneConnection(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Stop()
	b, err := NewNATS(Config{URL: srv.URL(), Mode: PerDSN})
	require.NoError(t, err)
	b.Register(0, "a", "u1", nil)
	in := newInbox()
	require.NoError(t, b.Start(in.deliver))
	defer b.Close()

	for range 5 {
		b.Connect(0)
	}
	in.next(t, ConnUp)
	require.Eventually(t, func() bool { return srv.NumClients() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the server has %d clients", srv.NumClients())
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, srv.NumClients())
	assert.Equal(t, 1, b.Connected())
}

// A DSN with its own connection keeps its certificate renewed over that connection, and
// reconnects with the renewed one.
func TestPerDSNCertificatesAreRenewed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Leaves start pki.ClockSkew early, so a one-minute certificate is due as soon as issued.
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), BcryptCost: 4, CertTTL: pki.MinLeafTTL,
		RateLimits: controlplane.RateLimits{Off: true}})
	require.NoError(t, err)
	defer cp.Stop()
	require.NoError(t, cp.WaitReady(ctx))
	hc, err := client.HTTPClient(cp.CAPEM(), 10*time.Second)
	require.NoError(t, err)
	user, pw, err := cp.AdminCredentials()
	require.NoError(t, err)
	admin := client.New(cp.APIURL(), hc, client.WithCredentials(user, pw))
	_, err = admin.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}})
	require.NoError(t, err)
	tok, err := admin.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", Uses: 1})
	require.NoError(t, err)

	b, err := NewNATS(Config{URL: cp.NATSURL(), Mode: PerDSN, RenewEvery: 100 * time.Millisecond,
		Security: &Security{CA: string(cp.CAPEM()), APIURL: cp.APIURL(), BootstrapToken: tok.Secret}})
	require.NoError(t, err)
	b.Register(0, "dsn-a", "u1", nil)
	in := newInbox()
	require.NoError(t, b.Start(in.deliver))
	defer b.Close()
	b.Connect(0)
	in.next(t, ConnUp)
	ident := b.ids.identity("dsn-a")
	require.NotNil(t, ident)
	first := ident.NotAfter()

	require.Eventually(t, func() bool { return b.Renewals() > 0 && ident.NotAfter().After(first) }, 20*time.Second, 20*time.Millisecond,
		"the certificate is renewed over the DSN's connection")
	assert.Equal(t, 1, b.Connected(), "renewal keeps the connection")
	b.Connect(0) // a new connection, with the renewed certificate
	in.next(t, ConnUp)
	assert.Equal(t, 1, b.Connected())
}
