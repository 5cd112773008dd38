package model

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	goodTenant  = `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"acme","labels":{"tier":"gold"}},"spec":{"displayName":"Acme Corp"}}`
	goodNetwork = `{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"web","tenant":"acme","resourceVersion":"42"},"spec":{"cidr":"10.1.0.0/16","vlan":100}}`
	goodPolicy  = `{"apiVersion":"dsnscale/v1","kind":"Policy","metadata":{"name":"p1","tenant":"acme"},
	  "spec":{"selector":{"matchLabels":{"example.com/site":"ams-1"}},"rules":[
	    {"action":"allow","from":{"network":"web"},"to":{"labels":{"app":"db"}},"protocol":"tcp","ports":["5432","8000-8080"]},
	    {"action":"deny","from":{},"to":{}}]}}`
	goodDSN = `{"apiVersion":"dsnscale/v1","kind":"DSN","metadata":{"name":"DSN_0001-a","labels":{"site":"AMS-1"}},
	  "spec":{"softwareVersion":"1.2.3","site":"ams"},"status":{"state":"in-sync","desiredRevision":9,"appliedRevision":9,"corrective":{"resends":1,"resyncs":0,"quarantines":0}}}`
)

func TestValidateAcceptsGoodObjects(t *testing.T) {
	for name, in := range map[string]string{"tenant": goodTenant, "network": goodNetwork, "policy": goodPolicy, "dsn": goodDSN} {
		t.Run(name, func(t *testing.T) {
			obj, err := DecodeObject([]byte(in))
			require.NoError(t, err)
			require.NoError(t, Validate(obj))
		})
	}
}

// TestPortsIntOrString checks that ports may be integers as well as strings and ranges, and are
// kept as strings.
func TestPortsIntOrString(t *testing.T) {
	obj, err := DecodeObject([]byte(patch(t, goodPolicy, `"ports":["5432","8000-8080"]`, `"ports":[443, "8000-8080", "22"]`)))
	require.NoError(t, err)
	require.NoError(t, Validate(obj))
	var spec PolicySpec
	require.NoError(t, obj.DecodeSpec(&spec))
	require.Equal(t, Ports{"443", "8000-8080", "22"}, spec.Rules[0].Ports)
	b, err := json.Marshal(spec.Rules[0].Ports)
	require.NoError(t, err)
	require.JSONEq(t, `["443","8000-8080","22"]`, string(b))
}

// patch replaces old with new in a good object, failing the test if old is absent.
func patch(t *testing.T, in, old, new string) string {
	t.Helper()
	require.Contains(t, in, old)
	return strings.Replace(in, old, new, 1)
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name      string
		in        func(t *testing.T) string
		field     string
		contains  string
		malformed bool
	}{
		{"malformed JSON", func(t *testing.T) string { return `{"apiVersion":` }, "", "unexpected end", true},
		{"not an object", func(t *testing.T) string { return `[1,2]` }, "", "must be an object", true},
		{"null", func(t *testing.T) string { return `null` }, "", "got null", true},
		{"empty", func(t *testing.T) string { return `` }, "", "empty input", true},
		{"trailing data", func(t *testing.T) string { return goodTenant + `{}` }, "", "after the JSON value", true},
		{"unknown envelope field", func(t *testing.T) string { return patch(t, goodTenant, `"kind"`, `"extra":1,"kind"`) }, "extra", "unknown field", true},
		{"case-folded field", func(t *testing.T) string { return patch(t, goodTenant, `"kind"`, `"Kind"`) }, "Kind", `did you mean "kind"`, true},
		{"duplicate field", func(t *testing.T) string {
			return patch(t, goodTenant, `"kind":"Tenant"`, `"kind":"Tenant","kind":"Tenant"`)
		}, "kind", "duplicate", true},
		{"unknown metadata field", func(t *testing.T) string { return patch(t, goodTenant, `"name":"acme"`, `"name":"acme","uid":"x"`) }, "metadata.uid", "unknown field", true},
		{"labels wrong type", func(t *testing.T) string { return patch(t, goodTenant, `{"tier":"gold"}`, `{"tier":5}`) }, `metadata.labels["tier"]`, "must be a string, got a number", true},
		{"name wrong type", func(t *testing.T) string { return patch(t, goodTenant, `"name":"acme"`, `"name":["acme"]`) }, "metadata.name", "must be a string, got an array", true},
		{"wrong apiVersion", func(t *testing.T) string { return patch(t, goodTenant, `dsnscale/v1`, `dsnscale/v2`) }, "apiVersion", `must be "dsnscale/v1"`, true},
		{"unknown kind", func(t *testing.T) string { return patch(t, goodTenant, `"Tenant"`, `"Gadget"`) }, "kind", "must be one of", true},
		{"uppercase name", func(t *testing.T) string { return patch(t, goodTenant, `"acme"`, `"Acme"`) }, "metadata.name", "lowercase DNS label", false},
		{"long name", func(t *testing.T) string { return patch(t, goodTenant, `"acme"`, `"`+strings.Repeat("a", 64)+`"`) }, "metadata.name", "at most 63", false},
		{"name ends in dash", func(t *testing.T) string { return patch(t, goodTenant, `"acme"`, `"acme-"`) }, "metadata.name", "DNS label", false},
		{"missing name", func(t *testing.T) string { return patch(t, goodTenant, `"name":"acme",`, ``) }, "metadata.name", "required", false},
		{"tenant on a tenant", func(t *testing.T) string { return patch(t, goodTenant, `"name":"acme"`, `"name":"acme","tenant":"x"`) }, "metadata.tenant", "must be empty", false},
		{"network without tenant", func(t *testing.T) string { return patch(t, goodNetwork, `"tenant":"acme",`, ``) }, "metadata.tenant", "required", false},
		{"bad tenant", func(t *testing.T) string { return patch(t, goodNetwork, `"tenant":"acme"`, `"tenant":"a_b"`) }, "metadata.tenant", "DNS label", false},
		{"bad label key", func(t *testing.T) string { return patch(t, goodTenant, `"tier"`, `"-tier"`) }, `metadata.labels["-tier"]`, "key:", false},
		{"bad label prefix", func(t *testing.T) string { return patch(t, goodTenant, `"tier"`, `"Ex.com/tier"`) }, `metadata.labels["Ex.com/tier"]`, "prefix", false},
		{"bad label value", func(t *testing.T) string { return patch(t, goodTenant, `"gold"`, `"gold!"`) }, `metadata.labels["tier"]`, "not a label value", false},
		{"bad resourceVersion", func(t *testing.T) string { return patch(t, goodNetwork, `"42"`, `"4x"`) }, "metadata.resourceVersion", "decimal revision", false},
		{"tenant spec unknown field", func(t *testing.T) string { return patch(t, goodTenant, `"displayName"`, `"display"`) }, "spec.display", "unknown field", true},
		{"tenant display control char", func(t *testing.T) string { return patch(t, goodTenant, `Acme Corp`, `Acme\u0007`) }, "spec.displayName", "control", false},
		{"tenant status", func(t *testing.T) string { return patch(t, goodTenant, `"spec"`, `"status":{"x":1},"spec"`) }, "status", "must be empty", false},
		{"network missing spec", func(t *testing.T) string {
			return patch(t, goodNetwork, `,"spec":{"cidr":"10.1.0.0/16","vlan":100}`, ``)
		}, "spec", "required", false},
		{"network bad cidr", func(t *testing.T) string { return patch(t, goodNetwork, `10.1.0.0/16`, `10.1.0.0/33`) }, "spec.cidr", "not a CIDR", false},
		{"network host bits", func(t *testing.T) string { return patch(t, goodNetwork, `10.1.0.0/16`, `10.1.2.3/16`) }, "spec.cidr", "host bits set; the network is 10.1.0.0/16", false},
		{"network missing cidr", func(t *testing.T) string { return patch(t, goodNetwork, `"cidr":"10.1.0.0/16",`, ``) }, "spec.cidr", "required", false},
		{"network vlan 0", func(t *testing.T) string { return patch(t, goodNetwork, `"vlan":100`, `"vlan":0`) }, "spec.vlan", "1-4094", false},
		{"network vlan 4095", func(t *testing.T) string { return patch(t, goodNetwork, `"vlan":100`, `"vlan":4095`) }, "spec.vlan", "1-4094", false},
		{"network vlan string", func(t *testing.T) string { return patch(t, goodNetwork, `"vlan":100`, `"vlan":"100"`) }, "spec.vlan", "must be an integer, got a string", true},
		{"network vlan fraction", func(t *testing.T) string { return patch(t, goodNetwork, `"vlan":100`, `"vlan":1.5`) }, "spec.vlan", "integer", true},
		{"network vlan huge", func(t *testing.T) string { return patch(t, goodNetwork, `"vlan":100`, `"vlan":99999999999999999999`) }, "spec.vlan", "fits in 64 bits", true},
		{"spec not an object", func(t *testing.T) string { return patch(t, goodNetwork, `{"cidr":"10.1.0.0/16","vlan":100}`, `"x"`) }, "spec", "must be an object", true},
		{"policy bad action", func(t *testing.T) string { return patch(t, goodPolicy, `"action":"deny"`, `"action":"drop"`) }, "spec.rules[1].action", `"allow" or "deny"`, false},
		{"policy missing action", func(t *testing.T) string { return patch(t, goodPolicy, `"action":"deny",`, ``) }, "spec.rules[1].action", "required", false},
		{"policy both peers", func(t *testing.T) string {
			return patch(t, goodPolicy, `"from":{"network":"web"}`, `"from":{"network":"web","labels":{"a":"b"}}`)
		}, "spec.rules[0].from", "not both", false},
		{"policy bad peer network", func(t *testing.T) string { return patch(t, goodPolicy, `"network":"web"`, `"network":"Web"`) }, "spec.rules[0].from.network", "DNS label", false},
		{"policy bad protocol", func(t *testing.T) string { return patch(t, goodPolicy, `"protocol":"tcp"`, `"protocol":"sctp"`) }, "spec.rules[0].protocol", "tcp, udp, icmp, any", false},
		{"policy icmp ports", func(t *testing.T) string { return patch(t, goodPolicy, `"protocol":"tcp"`, `"protocol":"icmp"`) }, "spec.rules[0].ports", "icmp", false},
		{"policy port zero", func(t *testing.T) string { return patch(t, goodPolicy, `"5432"`, `"0"`) }, "spec.rules[0].ports[0]", "outside 1-65535", false},
		{"policy port integer zero", func(t *testing.T) string { return patch(t, goodPolicy, `"5432"`, `0`) }, "spec.rules[0].ports[0]", "outside 1-65535", false},
		{"policy port fraction", func(t *testing.T) string { return patch(t, goodPolicy, `"5432"`, `443.5`) }, "spec.rules[0].ports[0]", "an integer or a string", true},
		{"policy port object", func(t *testing.T) string { return patch(t, goodPolicy, `"5432"`, `{"port":443}`) }, "spec.rules[0].ports[0]", "an integer or a string, got an object", true},
		{"policy port big", func(t *testing.T) string { return patch(t, goodPolicy, `"5432"`, `"65536"`) }, "spec.rules[0].ports[0]", "outside 1-65535", false},
		{"policy port reversed", func(t *testing.T) string { return patch(t, goodPolicy, `"8000-8080"`, `"8080-8000"`) }, "spec.rules[0].ports[1]", "after its end", false},
		{"policy port junk", func(t *testing.T) string { return patch(t, goodPolicy, `"8000-8080"`, `"80-"`) }, "spec.rules[0].ports[1]", "not a port", false},
		{"policy rules object", func(t *testing.T) string {
			return `{"apiVersion":"dsnscale/v1","kind":"Policy","metadata":{"name":"p","tenant":"t"},"spec":{"rules":{}}}`
		}, "spec.rules", "must be an array", true},
		{"policy selector bad", func(t *testing.T) string { return patch(t, goodPolicy, `"ams-1"`, `"ams 1"`) }, `spec.selector.matchLabels["example.com/site"]`, "label value", false},
		{"policy too many rules", func(t *testing.T) string {
			rules := strings.Repeat(`{"action":"deny"},`, MaxRules) + `{"action":"deny"}`
			return `{"apiVersion":"dsnscale/v1","kind":"Policy","metadata":{"name":"p","tenant":"t"},"spec":{"rules":[` + rules + `]}}`
		}, "spec.rules", "at most 1024", false},
		{"dsn bad id", func(t *testing.T) string { return patch(t, goodDSN, `DSN_0001-a`, `dsn.1`) }, "metadata.name", "DSN id", false},
		{"dsn bad state", func(t *testing.T) string { return patch(t, goodDSN, `"in-sync"`, `"happy"`) }, "status.state", "unknown DSN state", false},
		{"dsn status wrong type", func(t *testing.T) string { return patch(t, goodDSN, `"desiredRevision":9`, `"desiredRevision":-9`) }, "status.desiredRevision", "non-negative", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeAndValidate([]byte(tc.in(t)))
			require.Error(t, err)
			var fe *FieldErrors
			require.True(t, errors.As(err, &fe), "want *FieldErrors, got %T", err)
			require.True(t, errors.Is(err, ErrInvalid))
			assert.Equal(t, tc.malformed, errors.Is(err, ErrMalformed), "malformed: %v", err)
			found := false
			for _, e := range fe.Errors {
				if e.Field == tc.field && strings.Contains(e.Message, tc.contains) {
					found = true
				}
			}
			assert.True(t, found, "want an error at %q containing %q, got %v", tc.field, tc.contains, fe.Errors)
		})
	}
}

func decodeAndValidate(data []byte) error {
	obj, err := DecodeObject(data)
	if err != nil {
		return err
	}
	return Validate(obj)
}

func TestValidateObjectsBuiltInGo(t *testing.T) {
	obj := &Object{APIVersion: APIVersion, Kind: KindPolicy, Metadata: Metadata{Name: "p", Tenant: "t"}}
	require.NoError(t, obj.EncodeSpec(PolicySpec{Rules: []Rule{{Action: ActionAllow, From: Peer{Network: "n"}, Ports: []string{"443"}}}}))
	require.NoError(t, Validate(obj))

	obj.Spec = []byte(`{"rules":[{"action":"allow","form":{}}]}`)
	err := Validate(obj)
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "spec.rules[0].form: unknown field")

	assert.ErrorIs(t, Validate(nil), ErrMalformed)
}

func TestValidateCollectsEveryError(t *testing.T) {
	in := `{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"Bad","tenant":"acme"},"spec":{"cidr":"x","vlan":0}}`
	err := decodeAndValidate([]byte(in))
	var fe *FieldErrors
	require.ErrorAs(t, err, &fe)
	var fields []string
	for _, e := range fe.Errors {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"metadata.name", "spec.cidr", "spec.vlan"}, fields)
	assert.False(t, fe.Malformed())
}

func TestFieldErrorsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"a"`)
	for i := range 500 {
		b.WriteString(`,"x` + strings.Repeat("y", i%7) + string(rune('a'+i%26)) + `":1`)
	}
	b.WriteString(`}}`)
	_, err := DecodeObject([]byte(b.String()))
	var fe *FieldErrors
	require.ErrorAs(t, err, &fe)
	assert.LessOrEqual(t, fe.Len(), maxFieldErrors)
}

func TestPortRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{
		{"1", 1, 1, true}, {"65535", 65535, 65535, true}, {"80-80", 80, 80, true}, {"1-65535", 1, 65535, true},
		{"", 0, 0, false}, {"-1", 0, 0, false}, {"1-", 0, 0, false}, {"+80", 0, 0, false}, {" 80", 0, 0, false},
		{"1-2-3", 0, 0, false}, {"999999", 0, 0, false}, {"10-9", 0, 0, false},
	} {
		lo, hi, err := ParsePortRange(tc.in)
		if !tc.ok {
			assert.ErrorIs(t, err, ErrInvalid, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, [2]uint16{tc.lo, tc.hi}, [2]uint16{lo, hi}, tc.in)
	}
}

func TestCheckNamesAndLabels(t *testing.T) {
	for _, good := range []string{"a", "0", "a-b", "abc123", strings.Repeat("x", 63)} {
		assert.Empty(t, CheckName(good), good)
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a.b", "a_b", "é", strings.Repeat("x", 64)} {
		assert.NotEmpty(t, CheckName(bad), bad)
	}
	for _, good := range []string{"app", "App_1", "a.b-c", "example.com/app", "x/y"} {
		assert.Empty(t, CheckLabelKey(good), good)
	}
	for _, bad := range []string{"", "/app", "example.com/", "a/b/c", "-app", "app.", "EX.com/a", "a b"} {
		assert.NotEmpty(t, CheckLabelKey(bad), bad)
	}
	for _, good := range []string{"", "v", "v1.2_3-x"} {
		assert.Empty(t, CheckLabelValue(good), good)
	}
	for _, bad := range []string{"-v", "v.", "a b", strings.Repeat("v", 64)} {
		assert.NotEmpty(t, CheckLabelValue(bad), bad)
	}
	for _, good := range []string{"10.0.0.0/8", "192.168.1.0/24", "fd00::/8", "0.0.0.0/0"} {
		assert.Empty(t, CheckCIDR(good), good)
	}
	for _, bad := range []string{"", "10.0.0.0", "10.0.0.1/8", "fe80::1%eth0/64", "300.0.0.0/8"} {
		assert.NotEmpty(t, CheckCIDR(bad), bad)
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	deep := strings.Repeat("[", 200000) + strings.Repeat("]", 200000)
	in := `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"a"},"spec":` + deep + `}`
	_, err := DecodeObject([]byte(in))
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "nested too deeply")

	ok := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	_, err = DecodeObject([]byte(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"a"},"status":` + ok + `}`))
	require.NoError(t, err, "raw fields take any JSON")
}
