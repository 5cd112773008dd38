package kube

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

// childOf is what the harness hands the runner for a unit: sim child's arguments, and the unit's
// link credential in the environment.
func childOf(unit string) harness.Child {
	return harness.Child{Args: []string{"sim", "child", "--harness", "10.0.0.5:7000", "--unit", unit, "--token", "tok", "--cache", "/state"},
		Env: []string{harness.CredentialEnv + "=cred-" + unit}}
}

// startAll starts every unit, as the harness does at launch.
func startAll(ctx context.Context, r *Runner) error {
	for _, u := range testParams().Units {
		if err := r.Start(ctx, u.Name, childOf(u.Name)); err != nil {
			return err
		}
	}
	return nil
}

// verbs lists the create and delete calls a fake clientset received, as "verb resource name".
func verbs(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a := a.(type) {
		case k8stesting.CreateAction:
			o, err := metaName(a.GetObject())
			if err == nil {
				out = append(out, "create "+a.GetResource().Resource+" "+o)
			}
		case k8stesting.DeleteAction:
			out = append(out, "delete "+a.GetResource().Resource+" "+a.GetName())
		}
	}
	return out
}

func metaName(o any) (string, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return "", strconv.ErrSyntax
	}
	return m.GetName(), nil
}

// Pods stands in for the Job controller, which a fake clientset does not run: one pod per index.
func addPods(t *testing.T, cs *fake.Clientset, ns string, n int) {
	for i := range n {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dsnscale-units-" + strconv.Itoa(i) + "-x", Namespace: ns,
			Labels: map[string]string{LabelRun: "r1", LabelComponent: "unit", LabelName: AppName, LabelIndex: strconv.Itoa(i)}}}
		_, err := cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

func podNames(t *testing.T, cs *fake.Clientset, ns string) []string {
	list, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

func TestRunnerCreatesKillsAndDeletes(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	units := testParams().Units
	r := NewRunner(cs, "r1", "img:1", units, nil)

	// The fleet is made once every unit has handed over its credential.
	require.NoError(t, r.Start(ctx, "site1-rack1", childOf("site1-rack1")))
	require.NoError(t, r.Start(ctx, "site1-rack2", childOf("site1-rack2")))
	require.Empty(t, verbs(cs))
	require.NoError(t, r.Start(ctx, "site2-rack1", childOf("site2-rack1")))
	ns := "dsnscale-r1"
	require.Equal(t, []string{"create namespaces " + ns, "create secrets " + Secret, "create configmaps " + ConfigMap,
		"create jobs " + JobName}, verbs(cs))
	// A start after a kill creates nothing more.
	require.NoError(t, r.Start(ctx, "site1-rack2", childOf("site1-rack2")))
	require.Len(t, verbs(cs), 4)

	job, err := cs.BatchV1().Jobs(ns).Get(ctx, JobName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(3), *job.Spec.Completions)
	require.Equal(t, "img:1", job.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, "10.0.0.5:7000", job.Spec.Template.Spec.Containers[0].Args[3])
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, Secret, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []byte("tok"), sec.Data[TokenKey])
	require.Equal(t, []byte("cred-site1-rack2"), sec.Data[linkKeyPrefix+"site1-rack2"], "each unit's link credential, for its pod to mount")

	addPods(t, cs, ns, 3)
	// An unrelated pod in the namespace with index 1 but another run's label is left alone.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns, Labels: map[string]string{LabelRun: "r2", LabelComponent: "unit", LabelIndex: "1"}}}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{})
	require.NoError(t, err)

	cs.ClearActions()
	require.NoError(t, r.Kill(ctx, "site1-rack2"))
	require.ElementsMatch(t, []string{"dsnscale-units-0-x", "dsnscale-units-2-x", "other"}, podNames(t, cs, ns))
	var grace *int64
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok {
			grace = d.GetDeleteOptions().GracePeriodSeconds
		}
	}
	require.NotNil(t, grace)
	require.Equal(t, int64(0), *grace, "a kill is immediate")
	require.ErrorContains(t, r.Kill(ctx, "site1-rack2"), "has no pod")
	require.ErrorIs(t, r.Kill(ctx, "nope"), driver.ErrUnknownUnit)
	require.ErrorIs(t, r.Pause(ctx, "site1-rack1", true), driver.ErrUnsupported)

	cs.ClearActions()
	require.NoError(t, r.Close(ctx))
	require.Equal(t, []string{"delete jobs " + JobName, "delete configmaps " + ConfigMap, "delete secrets " + Secret,
		"delete namespaces " + ns}, verbs(cs))
	_, err = cs.BatchV1().Jobs(ns).Get(ctx, JobName, metav1.GetOptions{})
	require.Error(t, err)
	require.NoError(t, r.Close(ctx), "a second close has nothing to do")
}

func TestRunnerFailedCreateIsUndoneAtClose(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtimeObject, error) {
		return true, nil, errJobRefused
	})
	r := NewRunner(cs, "r1", "img:1", testParams().Units, nil)
	require.ErrorIs(t, startAll(ctx, r), errJobRefused)
	cs.ClearActions()
	require.NoError(t, r.Close(ctx))
	require.Contains(t, verbs(cs), "delete namespaces dsnscale-r1")
}

type runtimeObject = runtime.Object

var errJobRefused = errors.New("quota exceeded")

// The runner watches the fleet's pods and logs why one waits: what the harness sees only as a
// unit that does not connect.
func TestRunnerLogsPodStates(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	var buf syncBuffer
	r := NewRunner(cs, "r1", "img:1", testParams().Units, slog.New(slog.NewTextHandler(&buf, nil)))
	require.NoError(t, startAll(ctx, r))
	defer r.Close(ctx)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dsnscale-units-0-x", Namespace: "dsnscale-r1",
			Labels: map[string]string{LabelRun: "r1", LabelComponent: "unit", LabelIndex: "0"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "unit", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}},
	}
	_, err := cs.CoreV1().Pods("dsnscale-r1").Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(buf.String(), "pod=dsnscale-units-0-x index=0 state=Pending/ErrImagePull")
	}, 5*time.Second, 10*time.Millisecond, buf.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
