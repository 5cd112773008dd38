package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

func testParams() Params {
	return Params{Run: "r1", Image: "dsnscale-sim:abc", HarnessAddr: "10.0.0.5:7000", Token: "s3cret",
		Credentials: map[string]string{"site1-rack1": "c1", "site1-rack2": "c2", "site2-rack1": "c3"},
		Units: []driver.Unit{
			{Name: "site1-rack1", Site: "site1", Rack: "site1-rack1", DSNs: []engine.DSNSpec{{ID: "a"}, {ID: "b"}}},
			{Name: "site1-rack2", Site: "site1", Rack: "site1-rack2", DSNs: []engine.DSNSpec{{ID: "c"}}},
			{Name: "site2-rack1", Site: "site2", Rack: "site2-rack1", DSNs: []engine.DSNSpec{{ID: "d"}}},
		}}
}

// DecodeDocs splits a multi-document YAML stream and decodes every document strictly.
func decodeDocs(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	strict := Serializer(true)
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []runtime.Object
	for {
		doc, err := rd.Read()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		require.NoError(t, err, "document:\n%s", doc)
		out = append(out, obj)
	}
}

func TestBuildRoundTripsStrictly(t *testing.T) {
	objs, err := Build(testParams())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteYAML(&buf, objs.List()))
	got := decodeDocs(t, buf.Bytes())
	require.Equal(t, objs.List(), got)

	// The same objects through the JSON form of the serializer.
	for _, o := range objs.List() {
		var b bytes.Buffer
		require.NoError(t, jsonSerializer(false).Encode(o, &b))
		back, _, err := jsonSerializer(true).Decode(b.Bytes(), nil, nil)
		require.NoError(t, err)
		require.Equal(t, o, back)
	}
}

func jsonSerializer(strict bool) *kjson.Serializer {
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Strict: strict})
}

func TestStrictDecoderRefusesUnknownFields(t *testing.T) {
	// The check the round trip relies on: a misspelt field is an error, not dropped.
	doc := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {a: b}\ndatta: {}\n")
	_, _, err := Serializer(true).Decode(doc, nil, nil)
	require.Error(t, err)
	_, _, err = Serializer(false).Decode(doc, nil, nil)
	require.NoError(t, err)
}

func TestBuildObjects(t *testing.T) {
	p := testParams()
	objs, err := Build(p)
	require.NoError(t, err)
	ns := "dsnscale-r1"
	require.Equal(t, ns, objs.Namespace.Name)
	for _, m := range []string{objs.Secret.Namespace, objs.ConfigMap.Namespace, objs.Job.Namespace} {
		require.Equal(t, ns, m)
	}
	for _, l := range []map[string]string{objs.Namespace.Labels, objs.Secret.Labels, objs.ConfigMap.Labels, objs.Job.Labels, objs.Job.Spec.Template.Labels} {
		require.Equal(t, "r1", l[LabelRun])
		require.Equal(t, AppName, l[LabelName])
	}
	job := objs.Job.Spec
	require.Equal(t, int32(3), *job.Completions)
	require.Equal(t, int32(3), *job.Parallelism)
	require.Equal(t, batchv1.IndexedCompletion, *job.CompletionMode)
	require.Equal(t, corev1.RestartPolicyNever, job.Template.Spec.RestartPolicy)
	c := job.Template.Spec.Containers[0]
	require.Equal(t, "dsnscale-sim:abc", c.Image)
	require.Equal(t, []string{"sim", "child", "--harness", "10.0.0.5:7000", "--token", "$(DSNSCALE_TOKEN)",
		"--units", "/etc/dsnscale/units.json", "--index", "$(DSNSCALE_UNIT_INDEX)", "--cache", "/state",
		"--credential-dir", "/etc/dsnscale-link"}, c.Args)
	require.Equal(t, Secret, c.Env[0].ValueFrom.SecretKeyRef.Name)
	require.Equal(t, []byte("s3cret"), objs.Secret.Data[TokenKey])
	require.NotContains(t, c.Args, "s3cret", "the token travels in the Secret, not in the pod spec")

	// The pod's arguments, as the kubelet expands them for index 1, parse as a child's and
	// name unit 1 through the ConfigMap's units file.
	var entries []harness.UnitEntry
	require.NoError(t, json.Unmarshal([]byte(objs.ConfigMap.Data[UnitsKey]), &entries))
	require.Len(t, entries, 3)
	require.Equal(t, harness.UnitEntry{Name: "site1-rack1", Site: "site1", Rack: "site1-rack1", DSNs: 2}, entries[0])
	args := append([]string(nil), c.Args[2:]...)
	args[3], args[7] = "s3cret", "1"
	a, err := harness.ParseChildArgs(args, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 1, a.Index)
	require.Equal(t, "/etc/dsnscale-link", a.CredentialDir)
	// Each unit's credential is mounted as a file named after the unit, from the Secret.
	var link *corev1.Volume
	for i := range objs.Job.Spec.Template.Spec.Volumes {
		if v := &objs.Job.Spec.Template.Spec.Volumes[i]; v.Name == "link" {
			link = v
		}
	}
	require.NotNil(t, link)
	require.Equal(t, Secret, link.Secret.SecretName)
	require.Contains(t, link.Secret.Items, corev1.KeyToPath{Key: "link-site1-rack2", Path: "site1-rack2"})
	require.Equal(t, []byte("c2"), objs.Secret.Data["link-site1-rack2"])
	require.Equal(t, "10.0.0.5:7000", a.Harness)
	require.Equal(t, "site1-rack2", entries[a.Index].Name)
}

func TestParamsValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Params)
		want string
	}{
		"run":        {func(p *Params) { p.Run = "Bad_Run" }, `run "Bad_Run"`},
		"image":      {func(p *Params) { p.Image = "" }, "image: required"},
		"harness":    {func(p *Params) { p.HarnessAddr = "nohost" }, `harness address "nohost"`},
		"port":       {func(p *Params) { p.HarnessAddr = "h:0" }, `port "0"`},
		"credential": {func(p *Params) { delete(p.Credentials, "site1-rack2") }, `no link credential for "site1-rack2"`},
		"token":      {func(p *Params) { p.Token = "" }, "token: required"},
		"units":      {func(p *Params) { p.Units = nil }, "units: none"},
		"duplicate":  {func(p *Params) { p.Units[1].Name = p.Units[0].Name }, `units[1]: duplicate name "site1-rack1"`},
		"pull":       {func(p *Params) { p.PullPolicy = "Sometimes" }, `pull policy "Sometimes"`},
	} {
		t.Run(name, func(t *testing.T) {
			p := testParams()
			tc.edit(&p)
			_, err := Build(p)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
