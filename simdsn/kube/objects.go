// Package kube is the fleet driver that runs each unit (rack) of DSNs in a pod of a Kubernetes
// cluster, and the builder of the objects that fleet consists of, which `dsnscale fleet
// manifests` writes as YAML for clusters set up by hand.
//
// A fleet is one namespace holding an Indexed Job (one pod per unit), a ConfigMap with the
// unit list and a Secret with the harness token, all labelled with the run. An Indexed Job
// rather than a Deployment because a unit has an identity: pod i is unit i, the Job controller
// hands each pod its completion index and replaces a pod that is killed with one of the same
// index, so the replacement is the same unit. A Deployment's replicas are interchangeable; it
// would take one Deployment per unit to say which pod is which.
//
// The pods dial the harness link (package harness) at Params.HarnessAddr. Today the harness
// listens on loopback only, so a live cluster needs the harness (and the units' bus proxies)
// reachable from the pods: remote units, a change of its own.
package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

// Labels and names shared by every object of a fleet.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelRun       = "dsnscale.io/run"
	// LabelIndex is the completion index the Job controller puts on each of its pods.
	LabelIndex = batchv1.JobCompletionIndexAnnotation

	AppName   = "dsnscale"
	JobName   = "dsnscale-units"
	ConfigMap = "dsnscale-units"
	Secret    = "dsnscale-harness"
	UnitsKey  = "units.json"
	TokenKey  = "token"

	containerName = "unit"
	unitsDir      = "/etc/dsnscale"
	stateDir      = "/state"
	linkDir       = "/etc/dsnscale-link"
	// maxConfigMap is the API server's limit on a ConfigMap's data.
	maxConfigMap = 1 << 20
)

// Params describe a fleet's objects.
type Params struct {
	// Run identifies the fleet: it labels every object and names the namespace.
	Run string
	// Namespace holds the fleet (default "dsnscale-" + Run).
	Namespace string
	// Image is the image with the dsnscale binary at /dsnscale (the docker driver's image).
	Image string
	// PullPolicy is the image pull policy (default IfNotPresent).
	PullPolicy corev1.PullPolicy
	// HarnessAddr is the host:port of the harness link, as the pods reach it.
	HarnessAddr string
	// Token is the harness token the units present.
	Token string
	// Credentials are the units' harness-link credentials, by unit name (see package harness).
	Credentials map[string]string
	Units       []driver.Unit
}

// Objects are the typed objects of a fleet, in the order they are created.
type Objects struct {
	Namespace *corev1.Namespace
	Secret    *corev1.Secret
	ConfigMap *corev1.ConfigMap
	Job       *batchv1.Job
}

// List returns the objects in creation order.
func (o *Objects) List() []runtime.Object {
	return []runtime.Object{o.Namespace, o.Secret, o.ConfigMap, o.Job}
}

// Validate checks the parameters; every problem is reported.
func (p Params) Validate() error {
	var errs []error
	for _, msg := range validation.IsDNS1123Label("dsnscale-" + p.Run) {
		errs = append(errs, fmt.Errorf("run %q: %s", p.Run, msg))
	}
	if p.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(p.Namespace) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, msg))
		}
	}
	if p.Image == "" {
		errs = append(errs, errors.New("image: required"))
	}
	switch p.PullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("pull policy %q: not Always, IfNotPresent or Never", p.PullPolicy))
	}
	if host, port, err := net.SplitHostPort(p.HarnessAddr); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("harness address %q: want host:port", p.HarnessAddr))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("harness address %q: port %q is not 1-65535", p.HarnessAddr, port))
	}
	if p.Token == "" {
		errs = append(errs, errors.New("token: required"))
	}
	if len(p.Units) == 0 {
		errs = append(errs, errors.New("units: none"))
	}
	seen := map[string]bool{}
	for i, u := range p.Units {
		if u.Name == "" {
			errs = append(errs, fmt.Errorf("units[%d]: no name", i))
		} else if seen[u.Name] {
			errs = append(errs, fmt.Errorf("units[%d]: duplicate name %q", i, u.Name))
		} else if p.Credentials[u.Name] == "" {
			errs = append(errs, fmt.Errorf("units[%d]: no link credential for %q", i, u.Name))
		}
		seen[u.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	return nil
}

func (p Params) namespace() string {
	if p.Namespace != "" {
		return p.Namespace
	}
	return "dsnscale-" + p.Run
}

// labels are the labels of every object of the fleet.
func (p Params) labels(component string) map[string]string {
	return map[string]string{LabelName: AppName, LabelComponent: component, LabelRun: p.Run}
}

// Selector selects the pods of the fleet of run.
func Selector(run string) string { return LabelRun + "=" + run + "," + LabelComponent + "=unit" }

// UnitsJSON is the units file the pods read their unit's name from: entry i is unit i.
func UnitsJSON(units []driver.Unit) ([]byte, error) {
	entries := make([]harness.UnitEntry, len(units))
	for i, u := range units {
		entries[i] = harness.UnitEntry{Name: u.Name, Site: u.Site, Rack: u.Rack, DSNs: len(u.DSNs)}
	}
	return json.MarshalIndent(entries, "", "  ")
}

// Build returns the objects of a fleet.
func Build(p Params) (*Objects, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	ns := p.namespace()
	units, err := UnitsJSON(p.Units)
	if err != nil {
		return nil, err
	}
	if len(units) > maxConfigMap {
		return nil, fmt.Errorf("kube: the units file is %d bytes, over a ConfigMap's limit of %d", len(units), maxConfigMap)
	}
	meta := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: p.labels(component)}
	}
	pull := p.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	n := int32(len(p.Units))
	mode := batchv1.IndexedCompletion
	noToken, yes, no := false, true, false
	return &Objects{
		Namespace: &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: p.labels("fleet")},
		},
		Secret: &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(Secret, "fleet"),
			Type:       corev1.SecretTypeOpaque,
			Data:       secretData(p),
		},
		ConfigMap: &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(ConfigMap, "fleet"),
			Data:       map[string]string{UnitsKey: string(units)},
		},
		Job: &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta(JobName, "fleet"),
			Spec: batchv1.JobSpec{
				Completions:    &n,
				Parallelism:    &n,
				CompletionMode: &mode,
				// A unit kill deletes the pod at once (exit 137, or a disruption): neither
				// counts against the Job's failures, so the controller always replaces the pod.
				// A unit that exits 0 has been let go by the harness: its index is done.
				PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
					{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
						{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
					{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr(containerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{137}}},
				}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: p.labels("unit")},
					Spec:       podSpec(p, pull, &noToken, &yes, &no),
				},
			},
		},
	}, nil
}

func podSpec(p Params, pull corev1.PullPolicy, noToken, yes, no *bool) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: noToken,
		Containers: []corev1.Container{{
			Name:            containerName,
			Image:           p.Image,
			ImagePullPolicy: pull,
			Command:         []string{"/dsnscale"},
			// $(VAR) is expanded by the kubelet: the image is FROM scratch, with no shell.
			Args: []string{"sim", "child", "--harness", p.HarnessAddr, "--token", "$(DSNSCALE_TOKEN)",
				"--units", unitsDir + "/" + UnitsKey, "--index", "$(DSNSCALE_UNIT_INDEX)", "--cache", stateDir,
				"--credential-dir", linkDir},
			Env: []corev1.EnvVar{
				{Name: "DSNSCALE_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: Secret}, Key: TokenKey}}},
				{Name: "DSNSCALE_UNIT_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
					FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"}}},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "units", MountPath: unitsDir, ReadOnly: true},
				{Name: "link", MountPath: linkDir, ReadOnly: true},
				{Name: "state", MountPath: stateDir},
			},
			SecurityContext: &corev1.SecurityContext{
				ReadOnlyRootFilesystem:   yes,
				AllowPrivilegeEscalation: no,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "units", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMap}}}},
			{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "link", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: Secret, Items: linkItems(p), DefaultMode: ptr(int32(0o400))}}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// linkKeyPrefix starts the Secret's keys that hold the units' link credentials.
const linkKeyPrefix = "link-"

func secretData(p Params) map[string][]byte {
	data := map[string][]byte{TokenKey: []byte(p.Token)}
	for _, u := range p.Units {
		data[linkKeyPrefix+u.Name] = []byte(p.Credentials[u.Name])
	}
	return data
}

// linkItems mounts each unit's credential as a file named after the unit, which is where
// `sim child --credential-dir` looks.
func linkItems(p Params) []corev1.KeyToPath {
	out := make([]corev1.KeyToPath, len(p.Units))
	for i, u := range p.Units {
		out[i] = corev1.KeyToPath{Key: linkKeyPrefix + u.Name, Path: u.Name}
	}
	return out
}
