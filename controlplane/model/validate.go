package model

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on objects; they keep one object small enough to push to every DSN that needs it.
const (
	MaxNameLength     = 63   // names of tenants, networks and policies (one DNS label)
	MaxDSNIDLength    = 128  // DSN ids (one NATS subject token)
	MaxLabels         = 64   // labels on an object, or pairs in one selector
	MaxLabelValue     = 63   // characters in a label value
	MaxRules          = 1024 // rules in one policy
	MaxPortsPerRule   = 64   // port entries in one rule
	MaxTextLength     = 256  // free-text fields such as displayName
	maxLabelKeyPrefix = 253
)

// Protocols a rule may name; the empty string means any.
var Protocols = []string{"tcp", "udp", "icmp", "any"}

// Validate checks an object in layers, the way the control plane does before it stores one:
// syntax (apiVersion, a known kind, the shape of spec and status: JSON types and no unknown
// fields), names (lowercase DNS labels, a tenant exactly for namespaced kinds), labels, and the
// semantics of the spec (CIDRs, VLANs, ports, protocols, actions, peers, bounded sizes). It does
// not check relations between objects, which need the rest of the store.
//
// It returns nil or a *FieldErrors listing every problem with its field path.
func Validate(obj *Object) error {
	var errs FieldErrors
	if obj == nil {
		errs.AddMalformed("", "missing object")
		return &errs
	}
	validateEnvelope(obj, &errs)
	switch obj.Kind {
	case KindTenant:
		var spec TenantSpec
		if decodeSpec(obj.Spec, &spec, "spec", false, &errs) {
			validateText(spec.DisplayName, "spec.displayName", &errs)
		}
		forbidStatus(obj, &errs)
	case KindNetwork:
		var spec NetworkSpec
		if decodeSpec(obj.Spec, &spec, "spec", true, &errs) {
			validateNetworkSpec(&spec, &errs)
		}
		forbidStatus(obj, &errs)
	case KindPolicy:
		var spec PolicySpec
		if decodeSpec(obj.Spec, &spec, "spec", true, &errs) {
			ValidatePolicySpec(&spec, "spec", &errs)
		}
		forbidStatus(obj, &errs)
	case KindDSN:
		var spec DSNSpec
		if decodeSpec(obj.Spec, &spec, "spec", false, &errs) {
			validateText(spec.SoftwareVersion, "spec.softwareVersion", &errs)
			validateText(spec.Site, "spec.site", &errs)
			validateText(spec.Rack, "spec.rack", &errs)
		}
		var status DSNStatus
		if decodeSpec(obj.Status, &status, "status", false, &errs) {
			validateDSNStatus(&status, &errs)
		}
	}
	return errs.Err()
}

func validateEnvelope(obj *Object, errs *FieldErrors) {
	if obj.APIVersion != APIVersion {
		errs.AddMalformed("apiVersion", fmt.Sprintf("must be %q, got %q", APIVersion, obj.APIVersion))
	}
	known := false
	for _, k := range Kinds {
		known = known || obj.Kind == k
	}
	if !known {
		errs.AddMalformed("kind", fmt.Sprintf("must be one of %s, got %q", kindList(), obj.Kind))
	}
	md := &obj.Metadata
	if obj.Kind == KindDSN {
		if msg := CheckDSNID(md.Name); msg != "" {
			errs.Add("metadata.name", msg)
		}
	} else if msg := CheckName(md.Name); msg != "" {
		errs.Add("metadata.name", msg)
	}
	switch {
	case obj.Kind.Namespaced() && md.Tenant == "":
		errs.Add("metadata.tenant", fmt.Sprintf("required: a %s lives in a tenant", obj.Kind))
	case obj.Kind.Namespaced():
		if msg := CheckName(md.Tenant); msg != "" {
			errs.Add("metadata.tenant", msg)
		}
	case known && md.Tenant != "":
		errs.Add("metadata.tenant", fmt.Sprintf("must be empty: a %s does not live in a tenant", obj.Kind))
	}
	ValidateLabels(md.Labels, "metadata.labels", errs)
	if md.ResourceVersion != "" {
		if _, err := strconv.ParseUint(md.ResourceVersion, 10, 64); err != nil || md.ResourceVersion[0] == '+' {
			errs.Add("metadata.resourceVersion", fmt.Sprintf("must be a decimal revision, got %q", md.ResourceVersion))
		}
	}
}

// decodeSpec shape-checks raw against v's type and decodes it; it reports whether the value is
// usable for the semantic checks. An absent (or null) value is an error only when required.
func decodeSpec(raw []byte, v any, path string, required bool, errs *FieldErrors) bool {
	if isAbsent(raw) {
		if required {
			errs.Add(path, "required")
			return false
		}
		return true
	}
	if err := DecodeStrict(raw, v, path); err != nil {
		if fe, ok := err.(*FieldErrors); ok {
			errs.Append("", fe)
		} else {
			errs.AddMalformed(path, err.Error())
		}
		return false
	}
	return true
}

func isAbsent(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// forbidStatus rejects a status on kinds whose status only the control plane could write.
func forbidStatus(obj *Object, errs *FieldErrors) {
	t := bytes.TrimSpace(obj.Status)
	if isAbsent(t) {
		return
	}
	if t[0] == '{' && bytes.Equal(bytes.Join(bytes.Fields(t), nil), []byte("{}")) {
		return
	}
	errs.Add("status", fmt.Sprintf("must be empty: a %s has no status a client can set", obj.Kind))
}

func validateNetworkSpec(spec *NetworkSpec, errs *FieldErrors) {
	if msg := CheckCIDR(spec.CIDR); msg != "" {
		errs.Add("spec.cidr", msg)
	}
	if spec.VLAN < 1 || spec.VLAN > 4094 {
		errs.Add("spec.vlan", fmt.Sprintf("must be a VLAN id in 1-4094, got %d", spec.VLAN))
	}
}

// ValidatePolicySpec checks a policy spec's selector and rules; errors go to errs under path.
func ValidatePolicySpec(spec *PolicySpec, path string, errs *FieldErrors) {
	ValidateLabels(spec.Selector.MatchLabels, JoinPath(path, "selector.matchLabels"), errs)
	rulesPath := JoinPath(path, "rules")
	if len(spec.Rules) > MaxRules {
		errs.Add(rulesPath, fmt.Sprintf("%d rules, at most %d", len(spec.Rules), MaxRules))
		return
	}
	for i := range spec.Rules {
		validateRule(&spec.Rules[i], indexPath(rulesPath, i), errs)
	}
}

func validateRule(r *Rule, path string, errs *FieldErrors) {
	switch r.Action {
	case ActionAllow, ActionDeny:
	case "":
		errs.Add(path+".action", `required: "allow" or "deny"`)
	default:
		errs.Add(path+".action", fmt.Sprintf(`must be "allow" or "deny", got %q`, r.Action))
	}
	validatePeer(&r.From, path+".from", errs)
	validatePeer(&r.To, path+".to", errs)
	switch r.Protocol {
	case "", "tcp", "udp", "icmp", "any":
	default:
		errs.Add(path+".protocol", fmt.Sprintf("must be one of %s, got %q", strings.Join(Protocols, ", "), r.Protocol))
	}
	if len(r.Ports) > 0 && r.Protocol == "icmp" {
		errs.Add(path+".ports", "must be empty for protocol icmp, which has no ports")
	}
	if len(r.Ports) > MaxPortsPerRule {
		errs.Add(path+".ports", fmt.Sprintf("%d entries, at most %d", len(r.Ports), MaxPortsPerRule))
		return
	}
	for i, p := range r.Ports {
		if msg := CheckPortRange(p); msg != "" {
			errs.Add(indexPath(path+".ports", i), msg)
		}
	}
}

func validatePeer(p *Peer, path string, errs *FieldErrors) {
	if p.Network != "" && len(p.Labels) > 0 {
		errs.Add(path, "set network or labels, not both")
	}
	if p.Network != "" {
		if msg := CheckName(p.Network); msg != "" {
			errs.Add(path+".network", msg)
		}
	}
	ValidateLabels(p.Labels, path+".labels", errs)
}

func validateDSNStatus(s *DSNStatus, errs *FieldErrors) {
	switch s.State {
	case "", DSNStateAdmitted, DSNStateSyncing, DSNStateInSync, DSNStateLagging, DSNStateQuarantined, DSNStateOffline:
	default:
		errs.Add("status.state", fmt.Sprintf("unknown DSN state %q", s.State))
	}
	if s.AppliedRevision > s.DesiredRevision && s.DesiredRevision != 0 {
		errs.Add("status.appliedRevision", fmt.Sprintf("%d is past the desired revision %d", s.AppliedRevision, s.DesiredRevision))
	}
}

func validateText(s, path string, errs *FieldErrors) {
	switch {
	case len(s) > MaxTextLength:
		errs.Add(path, fmt.Sprintf("%d bytes, at most %d", len(s), MaxTextLength))
	case !utf8.ValidString(s):
		errs.Add(path, "must be valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		errs.Add(path, "must not contain control characters")
	}
}

// ValidateLabels checks a label map (object labels, a selector, a peer): at most MaxLabels pairs,
// keys as CheckLabelKey, values as CheckLabelValue. Errors go to errs under path.
func ValidateLabels(labels map[string]string, path string, errs *FieldErrors) {
	if len(labels) > MaxLabels {
		errs.Add(path, fmt.Sprintf("%d labels, at most %d", len(labels), MaxLabels))
		return
	}
	for _, k := range sortedKeys(labels) {
		if msg := CheckLabelKey(k); msg != "" {
			errs.Add(keyPath(path, k), "key: "+msg)
		}
		if msg := CheckLabelValue(labels[k]); msg != "" {
			errs.Add(keyPath(path, k), msg)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// A small insertion sort: label maps are tiny and this keeps error order stable.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func kindList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
