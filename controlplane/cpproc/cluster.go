package cpproc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// ClusterName is the cluster name StartCluster gives the replicas.
const ClusterName = "dsnscale"

// Paths under Options.Dir of a cluster started by StartCluster.
const (
	// ClusterCADir is the CA the replicas share.
	ClusterCADir = "ca"
	// ClusterPasswordFile is the first admin's password, the same for every replica.
	ClusterPasswordFile = "admin-password"
)

// StartCluster runs n control-plane replicas (`cp serve --cluster`) on loopback, each with its
// own directory o.Dir/node-<i> (data and log) and free ports, sharing one CA (o.Dir/ca, created
// here before any replica starts so that none races to create its own) and one admin password
// file (o.Dir/admin-password). It returns once every replica answers ready, in node order
// (node names cp0, cp1, ...). o.DataDir, o.Listen and o.NATSListen are per replica and ignored;
// o.Args are given to every replica. A replica that fails to start kills the others.
func StartCluster(ctx context.Context, o Options, n int) ([]*Process, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, fmt.Errorf("%w: a binary and a directory are required", ErrNotStarted)
	}
	if n < 3 {
		return nil, fmt.Errorf("%w: a cluster of %d replicas: at least 3 keep a quorum through the loss of one", ErrNotStarted, n)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	routes, err := natsserver.FreeAddrs(n)
	if err != nil {
		return nil, err
	}
	var shared []string
	if !o.Insecure {
		caDir := filepath.Join(o.Dir, ClusterCADir)
		if _, err := pki.OpenCA(caDir, nil); err != nil {
			return nil, fmt.Errorf("%w: shared CA: %w", ErrNotStarted, err)
		}
		pwFile := filepath.Join(o.Dir, ClusterPasswordFile)
		if err := ensurePassword(pwFile); err != nil {
			return nil, fmt.Errorf("%w: admin password: %w", ErrNotStarted, err)
		}
		shared = []string{"--ca-dir", caDir, "--admin-password-file", pwFile}
	}
	procs := make([]*Process, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ro := o
		ro.Dir = filepath.Join(o.Dir, fmt.Sprintf("node-%d", i))
		ro.DataDir, ro.Listen, ro.NATSListen = "", "", ""
		ro.Args = append(append(ClusterArgs(routes, i), shared...), o.Args...)
		wg.Go(func() {
			procs[i], errs[i] = Start(ctx, ro)
			if procs[i] != nil {
				procs[i].nodeName, procs[i].clusterAddr = NodeName(i), routes[i]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range procs {
			if p != nil {
				p.Kill()
			}
		}
		return nil, err
	}
	return procs, nil
}

// NodeName is the node name StartCluster gives replica i.
func NodeName(i int) string { return fmt.Sprintf("cp%d", i) }

// ClusterArgs are the `cp serve` flags that make replica i of the cluster whose route addresses
// are routes.
func ClusterArgs(routes []string, i int) []string {
	var peers []string
	for j, r := range routes {
		if j != i {
			peers = append(peers, r)
		}
	}
	return []string{"--cluster", ClusterName, "--node-name", NodeName(i), "--cluster-listen", routes[i],
		"--peers", strings.Join(peers, ",")}
}

// ensurePassword writes a new random password to path (mode 0600) unless it exists.
func ensurePassword(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(base64.RawURLEncoding.EncodeToString(raw)+"\n"), 0o600)
}

// NodeName is the replica's node name in its cluster ("" when not started by StartCluster).
func (p *Process) NodeName() string { return p.nodeName }

// ClusterAddr is the host:port the replica's NATS server takes routes on ("" when not started
// by StartCluster).
func (p *Process) ClusterAddr() string { return p.clusterAddr }
