package kube

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

// Name is the driver's registered name.
const Name = "kubernetes"

// EnvImage names the environment variable that overrides the image the pods run.
const EnvImage = "DSNSCALE_KUBE_IMAGE"

// ErrNoCluster is returned when there is no cluster configured (KUBECONFIG, ~/.kube/config) or
// its API server does not answer.
var ErrNoCluster = errors.New("kubernetes: no reachable cluster")

// checkTimeout bounds the API server's answer to the reachability check.
const checkTimeout = 5 * time.Second

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the kubernetes driver.
type Driver struct{}

// Check implements driver.Checker: the cluster in KUBECONFIG answers.
func (Driver) Check(ctx context.Context) error {
	_, err := connect(ctx)
	return err
}

// connect loads the client configuration the way kubectl does and asks the API server for its
// version.
func connect(ctx context.Context) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("%w: no cluster configured (set KUBECONFIG or write ~/.kube/config)", ErrNoCluster)
		}
		return nil, fmt.Errorf("%w: kubeconfig: %v", ErrNoCluster, err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = checkTimeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCluster, err)
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("%w: API server %s: %v", ErrNoCluster, cfg.Host, err)
	}
	return cs, ctx.Err()
}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	cs, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	image := os.Getenv(EnvImage)
	if image == "" {
		if image, err = DefaultImage(p.Binary); err != nil {
			return nil, err
		}
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := NewRunner(cs, hex.EncodeToString(id[:]), image, p.Units, p.Logger)
	return harness.Launch(ctx, p, records, r, harness.Options{ConnectTimeout: 3 * time.Minute, Listen: p.HarnessListen, Advertise: p.HarnessAdvertise})
}

// DefaultImage names the image of a binary the way the docker driver tags the one it builds
// (dsnscale-sim:<first 6 bytes of the binary's SHA-256>), so a cluster that can pull that tag
// runs the harness's own binary.
func DefaultImage(binary string) (string, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("kubernetes: reading the binary for its image tag: %w", err)
	}
	sum := sha256.Sum256(data)
	return "dsnscale-sim:" + hex.EncodeToString(sum[:6]), nil
}

// Runner is the harness.Runner that keeps a fleet's units in the pods of an Indexed Job.
type Runner struct {
	cs    kubernetes.Interface
	run   string
	image string
	units []driver.Unit
	index map[string]int
	log   *slog.Logger

	mu      sync.Mutex
	creds   map[string]string // each unit's link credential, as its first start hands it over
	objs    *Objects
	stopped chan struct{}
	watched chan struct{}
}

// NewRunner returns a runner for the fleet of run (which labels its objects) on cs.
func NewRunner(cs kubernetes.Interface, run, image string, units []driver.Unit, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idx := make(map[string]int, len(units))
	for i, u := range units {
		idx[u.Name] = i
	}
	return &Runner{cs: cs, run: run, image: image, units: units, index: idx, log: log, creds: map[string]string{}}
}

// CacheDir implements harness.Runner: the pod's emptyDir.
func (r *Runner) CacheDir(string) string { return stateDir }

// Start implements harness.Runner. The Job starts every unit's pod at once, so the fleet is
// created when every unit has been started (and its link credential handed over); later starts
// (after a kill) have nothing to do, the controller has already replaced the pod.
func (r *Runner) Start(ctx context.Context, unit string, c harness.Child) error {
	if _, ok := r.index[unit]; !ok {
		return fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs != nil {
		return nil
	}
	if len(c.Args) < 2 {
		return fmt.Errorf("kubernetes: unit arguments %q are not sim child's", c.Args)
	}
	env := func(k string) string {
		for _, kv := range c.Env {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	a, err := harness.ParseChildArgs(c.Args[2:], env, io.Discard)
	if err != nil {
		return fmt.Errorf("kubernetes: unit arguments: %w", err)
	}
	r.creds[unit] = a.Credential
	if len(r.creds) < len(r.units) {
		return nil
	}
	objs, err := Build(Params{Run: r.run, Image: r.image, HarnessAddr: a.Harness, Token: a.Token, Credentials: r.creds, Units: r.units})
	if err != nil {
		return err
	}
	// Recorded before the first create, so Close removes whatever part was made.
	r.objs = objs
	if _, err := r.cs.CoreV1().Namespaces().Create(ctx, objs.Namespace, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubernetes: namespace %s: %w", objs.Namespace.Name, err)
	}
	ns := objs.Namespace.Name
	if _, err := r.cs.CoreV1().Secrets(ns).Create(ctx, objs.Secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubernetes: secret: %w", err)
	}
	if _, err := r.cs.CoreV1().ConfigMaps(ns).Create(ctx, objs.ConfigMap, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubernetes: configmap: %w", err)
	}
	w, err := r.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: Selector(r.run)})
	if err != nil {
		return fmt.Errorf("kubernetes: watching pods: %w", err)
	}
	if _, err := r.cs.BatchV1().Jobs(ns).Create(ctx, objs.Job, metav1.CreateOptions{}); err != nil {
		w.Stop()
		return fmt.Errorf("kubernetes: job: %w", err)
	}
	r.stopped, r.watched = make(chan struct{}), make(chan struct{})
	go r.watch(w, r.stopped, r.watched)
	r.log.Info("kubernetes: fleet created", "namespace", ns, "units", len(r.units), "image", r.image)
	return nil
}

// watch logs the pods' phases and the reasons a container waits (ErrImagePull,
// CrashLoopBackOff...): what the harness sees only as a unit that does not connect.
func (r *Runner) watch(w watch.Interface, stopped <-chan struct{}, watched chan<- struct{}) {
	defer close(watched)
	defer w.Stop()
	last := map[string]string{}
	for {
		select {
		case <-stopped:
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			state := string(pod.Status.Phase)
			for _, cs := range pod.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
					state += "/" + cs.State.Waiting.Reason
				}
			}
			if ev.Type == watch.Deleted {
				state = "deleted"
			}
			if last[pod.Name] == state {
				continue
			}
			last[pod.Name] = state
			r.log.Info("kubernetes: pod", "pod", pod.Name, "index", pod.Labels[LabelIndex], "state", state)
		}
	}
}

func (r *Runner) namespace() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs == nil {
		return "", errors.New("kubernetes: the fleet has not been created")
	}
	return r.objs.Namespace.Name, nil
}

// Kill implements harness.Runner: the unit's pod is deleted at once. The Job controller starts
// a new pod of the same index, which reconnects as the same unit.
func (r *Runner) Kill(ctx context.Context, unit string) error {
	i, ok := r.index[unit]
	if !ok {
		return fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	ns, err := r.namespace()
	if err != nil {
		return err
	}
	pods := r.cs.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: Selector(r.run) + "," + LabelIndex + "=" + strconv.Itoa(i)})
	if err != nil {
		return fmt.Errorf("kubernetes: pods of unit %s: %w", unit, err)
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("kubernetes: unit %s (index %d) has no pod", unit, i)
	}
	var errs []error
	for _, pod := range list.Items {
		if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("kubernetes: deleting pod %s: %w", pod.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Restart implements harness.Runner the same way as Kill: a pod cannot be restarted in place,
// and a graceful delete would let the unit exit 0, which completes its index for good.
func (r *Runner) Restart(ctx context.Context, unit string) error { return r.Kill(ctx, unit) }

// Pause implements harness.Runner: Kubernetes cannot freeze a pod.
func (r *Runner) Pause(context.Context, string, bool) error {
	return fmt.Errorf("%w: unit pause on kubernetes", driver.ErrUnsupported)
}

// Usage implements harness.Runner: reading it would need the metrics API.
func (r *Runner) Usage(context.Context) (driver.Usage, error) {
	return driver.Usage{}, fmt.Errorf("%w: usage on kubernetes", driver.ErrUnsupported)
}

// Close implements harness.Runner: it deletes the Job (and with it the pods), the ConfigMap, the
// Secret and the namespace.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	objs, stopped, watched := r.objs, r.stopped, r.watched
	r.objs, r.stopped = nil, nil
	r.mu.Unlock()
	if stopped != nil {
		close(stopped)
		<-watched
	}
	if objs == nil {
		return nil
	}
	ns := objs.Namespace.Name
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error
	keep := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("kubernetes: deleting %s: %w", what, err))
		}
	}
	keep("job", r.cs.BatchV1().Jobs(ns).Delete(ctx, objs.Job.Name, del))
	keep("configmap", r.cs.CoreV1().ConfigMaps(ns).Delete(ctx, objs.ConfigMap.Name, del))
	keep("secret", r.cs.CoreV1().Secrets(ns).Delete(ctx, objs.Secret.Name, del))
	keep("namespace", r.cs.CoreV1().Namespaces().Delete(ctx, ns, del))
	return errors.Join(errs...)
}
