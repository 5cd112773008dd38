package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/harness"
	"github.com/dsnscale/dsnscale/simdsn/kube"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// The manifests of a scenario's fleet decode strictly into one namespace, secret, configmap and
// Indexed Job, with one pod per unit of the fleet the scenario would run.
func TestFleetManifestsDecodeStrictly(t *testing.T) {
	code, out, errOut := runBinary(t, time.Minute, "fleet", "manifests", "--driver", "kubernetes",
		"--harness", "10.1.2.3:7000", "smoke", "--set", "dsns=30", "--image", "reg.example/dsnscale:1")
	require.Equal(t, exitOK, code, errOut)

	want, err := simdsn.PlanUnits(trafficmap.Default(), 30, "sim-")
	require.NoError(t, err)
	require.Greater(t, len(want), 1)

	strict := kube.Serializer(true)
	rd := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	kinds := map[string]int{}
	var job *batchv1.Job
	var cm *corev1.ConfigMap
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		require.NoError(t, err, "%s", doc)
		kinds[gvk.Kind]++
		switch o := obj.(type) {
		case *batchv1.Job:
			job = o
		case *corev1.ConfigMap:
			cm = o
		}
		labels := obj.(interface{ GetLabels() map[string]string }).GetLabels()
		require.Equal(t, "smoke", labels[kube.LabelRun], gvk.Kind)
		require.Equal(t, "dsnscale", labels[kube.LabelName], gvk.Kind)
	}
	require.Equal(t, map[string]int{"Namespace": 1, "Secret": 1, "ConfigMap": 1, "Job": 1}, kinds)
	require.NotNil(t, job)
	require.Equal(t, "dsnscale-smoke", job.Namespace)
	require.Equal(t, int32(len(want)), *job.Spec.Completions)
	require.Equal(t, batchv1.IndexedCompletion, *job.Spec.CompletionMode)
	require.Equal(t, "reg.example/dsnscale:1", job.Spec.Template.Spec.Containers[0].Image)
	require.Contains(t, job.Spec.Template.Spec.Containers[0].Args, "10.1.2.3:7000")
	var entries []harness.UnitEntry
	require.NoError(t, json.Unmarshal([]byte(cm.Data[kube.UnitsKey]), &entries))
	require.Len(t, entries, len(want))
	total := 0
	for i, e := range entries {
		require.Equal(t, want[i].Name, e.Name)
		total += e.DSNs
	}
	require.Equal(t, 30, total)
}

func TestFleetManifestsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "manifests", "--driver", "kubernetes", "smoke"}, "--harness HOST:PORT is required"},
		{[]string{"fleet", "manifests", "--driver", "docker", "--harness", "h:1", "smoke"}, `--driver "docker" has no manifests`},
		{[]string{"fleet", "manifests", "--driver", "kubernetes", "--harness", "h:99999", "smoke"}, `port "99999"`},
		{[]string{"fleet", "manifests", "--driver", "kubernetes", "--harness", "h:1", "no-such-scenario"}, "no-such-scenario"},
		{[]string{"fleet", "nope"}, "want the subcommand manifests"},
	} {
		code, out, errOut := runBinary(t, time.Minute, tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, errOut)
		require.Empty(t, out, "%v", tc.args)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}

// A scenario on the kubernetes driver with no cluster, or one whose API server does not
// answer, is refused before the run starts anything: exit 3, no run directory.
func TestKubernetesDriverWithoutCluster(t *testing.T) {
	smoke, err := os.ReadFile(filepath.Join("..", "..", "scenarios", "library", "smoke.yaml"))
	require.NoError(t, err)
	dir := t.TempDir()
	scen := filepath.Join(dir, "kube.yaml")
	require.NoError(t, os.WriteFile(scen, bytes.Replace(smoke, []byte("driver: inproc"), []byte("driver: kubernetes"), 1), 0o600))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://`+closed+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))

	for _, tc := range []struct {
		name, kubeconfig, want string
	}{
		{"unreachable", kubeconfig, "API server https://" + closed},
		{"unconfigured", filepath.Join(dir, "absent"), "no cluster configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "run-"+tc.name)
			cmd := exec.Command(binary, "run", scen, "--out", out)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+tc.kubeconfig, "HOME="+dir, "KUBERNETES_SERVICE_HOST=")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, stdout.String())
			require.Equal(t, exitBroken, ee.ExitCode(), "%s\n%s", stdout.String(), stderr.String())
			require.Contains(t, stderr.String(), "kubernetes: no reachable cluster")
			require.Contains(t, stderr.String(), tc.want)
			_, err = os.Stat(out)
			require.True(t, os.IsNotExist(err), "the run must not start: %v", err)
		})
	}
}
