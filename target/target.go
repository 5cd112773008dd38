// Package target describes a control plane the harness does not run (a staging deployment, or a
// `dsnscale cp serve` started on its own): where its API and bus are, the CA that signs their
// certificates, the credentials the harness logs in with, and how simulated DSNs are admitted.
// A Target is a file of its own (kind: Target), reused across scenarios, or a block inline in a
// scenario's controlPlane; both decode through the one strict decoder with file:line errors.
package target

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// Kind is the kind of a target file.
const Kind = "Target"

// ErrInvalid is matched by every problem with a target's description.
var ErrInvalid = errors.New("target: invalid")

// How the fleet's DSNs are admitted, as Admission.Mode says it.
const (
	// AdmitDSNToken: each DSN admits itself with a multi-use DSN bootstrap token and connects
	// over its own connection (per-DSN connections).
	AdmitDSNToken = "dsn-token"
	// AdmitGatewayToken: the fleet obtains one gateway identity with a gateway bootstrap token
	// and its DSNs share connections.
	AdmitGatewayToken = "gateway-token"
	// AdmitGatewayIdentity: the fleet uses a gateway identity made beforehand (certificate and
	// key files) and its DSNs share connections.
	AdmitGatewayIdentity = "gateway-identity"
	// AdmitIssueGateway: the harness creates a gateway bootstrap token with its own credentials
	// at the start of each run (the credentials need the right to create bootstrap tokens).
	AdmitIssueGateway = "issue-gateway"
)

// File is a target file: the header, a name, and the target.
type File struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name says which control plane this is ("staging"), for plans and reports.
	Name string `yaml:"name"`
	Target
}

// UnmarshalYAMLNode decodes the header fields and the name, and the rest of the mapping as the
// Target, so a file lists the target's fields at its top level.
func (f *File) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	pairs := d.Pairs(n, path)
	if pairs == nil {
		return
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for _, kv := range pairs {
		fp := strictyaml.Field(path, kv[0].Value)
		switch kv[0].Value {
		case "apiVersion":
			d.Decode(kv[1], fp, &f.APIVersion)
		case "kind":
			d.Decode(kv[1], fp, &f.Kind)
		case "name":
			d.Decode(kv[1], fp, &f.Name)
		default:
			rest.Content = append(rest.Content, kv[0], kv[1])
		}
	}
	d.Decode(rest, path, &f.Target)
}

// Target is a control plane reached by URL. It is pure data; Validate checks it. File paths
// are relative to the file that holds the target until Resolve makes them absolute.
type Target struct {
	// APIURL is the northbound API (https://host:port).
	APIURL string `yaml:"apiURL"`
	// BusURL is where DSNs connect (tls://host:port).
	BusURL string `yaml:"busURL"`
	// CAFile holds the PEM certificates of the CAs that sign the bus's and the API's
	// certificates, and nothing else is trusted: for cp serve, the ca file it prints signs
	// both; an API certificate from --tls-cert needs its CA added to the file.
	CAFile string `yaml:"caFile"`
	// Credentials are how the harness authenticates to the API.
	Credentials Credentials `yaml:"credentials"`
	// Admission is how the simulated DSNs get their bus identities.
	Admission Admission `yaml:"admission"`
	// Hooks are the commands for faults on the control plane's replicas (none by default:
	// control-plane faults are then refused against the target).
	Hooks Hooks `yaml:"hooks"`
}

// Credentials are one of: a user and a password file (the harness logs in with POST
// /api/v1/login and again when the token expires), a token file (a bearer token from that
// login, which must outlast the run), or a client certificate
// presented on the API's TLS connections (for control planes that authenticate with one).
type Credentials struct {
	User           string `yaml:"user"`
	PasswordFile   string `yaml:"passwordFile"`
	TokenFile      string `yaml:"tokenFile"`
	ClientCertFile string `yaml:"clientCertFile"`
	ClientKeyFile  string `yaml:"clientKeyFile"`
}

// Kind says which credential the target has: "password", "token", "client-certificate" or ""
// for none.
func (c Credentials) Kind() string {
	switch {
	case c.User != "" || c.PasswordFile != "":
		return "password"
	case c.TokenFile != "":
		return "token"
	case c.ClientCertFile != "" || c.ClientKeyFile != "":
		return "client-certificate"
	}
	return ""
}

// Admission is one of: a DSN bootstrap token file, a gateway bootstrap token file, a gateway
// identity (certificate and key files), or issue: gateway.
type Admission struct {
	BootstrapTokenFile string `yaml:"bootstrapTokenFile"`
	GatewayTokenFile   string `yaml:"gatewayTokenFile"`
	GatewayCertFile    string `yaml:"gatewayCertFile"`
	GatewayKeyFile     string `yaml:"gatewayKeyFile"`
	// Issue "gateway" has the harness create a gateway bootstrap token with its credentials.
	Issue string `yaml:"issue"`
}

// Mode is how the fleet is admitted (one of the Admit constants), or "" when none is set.
func (a Admission) Mode() string {
	switch {
	case a.BootstrapTokenFile != "":
		return AdmitDSNToken
	case a.GatewayTokenFile != "":
		return AdmitGatewayToken
	case a.GatewayCertFile != "" || a.GatewayKeyFile != "":
		return AdmitGatewayIdentity
	case a.Issue != "":
		return AdmitIssueGateway
	}
	return ""
}

// Validate checks t and reports each problem at its field under path ("" for a target file,
// "controlPlane.target" inline).
func (t *Target) Validate(d *strictyaml.Decoder, path string) {
	at := func(f string) string { return strictyaml.Field(path, f) }
	if h := t.Hooks; path != "" && (h.Kill != nil || h.Start != nil || h.Pause != nil || h.Resume != nil) {
		d.ErrorAt(at("hooks"), "are declared in a target file (kind: Target), not inline")
	}
	// A target is a control plane with its security on: one run --insecure is reached with
	// a scenario's controlPlane.url and natsURL instead.
	if u, err := url.Parse(t.APIURL); err != nil || u.Scheme != "https" || u.Host == "" {
		d.ErrorAt(at("apiURL"), "must be an https:// URL of the northbound API, got %q (a control plane run --insecure needs no target: use controlPlane.url)", t.APIURL)
	}
	if u, err := url.Parse(t.BusURL); err != nil || u.Scheme != "tls" || u.Host == "" {
		d.ErrorAt(at("busURL"), "must be a tls:// URL where DSNs connect, got %q", t.BusURL)
	}
	if t.CAFile == "" {
		d.ErrorAt(at("caFile"), "is required: the control plane's CA certificate (the ca line cp serve prints), which signs the bus's certificate")
	}
	cp := at("credentials")
	c := t.Credentials
	set := 0
	if c.User != "" || c.PasswordFile != "" {
		set++
		if c.User == "" {
			d.ErrorAt(strictyaml.Field(cp, "user"), "is required with passwordFile")
		}
		if c.PasswordFile == "" {
			d.ErrorAt(strictyaml.Field(cp, "passwordFile"), "is required with user (a file holding the password, such as the admin-password file cp serve prints)")
		}
	}
	if c.TokenFile != "" {
		set++
	}
	if c.ClientCertFile != "" || c.ClientKeyFile != "" {
		set++
		if c.ClientCertFile == "" || c.ClientKeyFile == "" {
			d.ErrorAt(cp, "clientCertFile and clientKeyFile go together")
		}
	}
	switch set {
	case 0:
		d.ErrorAt(cp, "one of user with passwordFile, tokenFile, or clientCertFile with clientKeyFile is required")
	case 1:
	default:
		d.ErrorAt(cp, "user/passwordFile, tokenFile and clientCertFile/clientKeyFile are exclusive: give one")
	}
	ap := at("admission")
	a := t.Admission
	set = 0
	for _, s := range []string{a.BootstrapTokenFile, a.GatewayTokenFile, a.GatewayCertFile + a.GatewayKeyFile, a.Issue} {
		if s != "" {
			set++
		}
	}
	switch {
	case set == 0:
		d.ErrorAt(ap, "one of bootstrapTokenFile, gatewayTokenFile, gatewayCertFile with gatewayKeyFile, or issue: gateway is required")
	case set > 1:
		d.ErrorAt(ap, "bootstrapTokenFile, gatewayTokenFile, gatewayCertFile/gatewayKeyFile and issue are exclusive: give one")
	}
	if (a.GatewayCertFile == "") != (a.GatewayKeyFile == "") {
		d.ErrorAt(ap, "gatewayCertFile and gatewayKeyFile go together")
	}
	if a.Issue != "" && a.Issue != "gateway" {
		d.ErrorAt(strictyaml.Field(ap, "issue"), "must be gateway, got %q", a.Issue)
	}
	if a.Issue != "" && c.Kind() == "client-certificate" {
		d.ErrorAt(strictyaml.Field(ap, "issue"), "needs a login (user/passwordFile or tokenFile) to create the token with")
	}
}

// Resolve makes every file path of t absolute, relative to dir.
func (t *Target) Resolve(dir string) {
	for _, p := range t.files() {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

func (t *Target) files() []*string {
	c, a := &t.Credentials, &t.Admission
	return []*string{&t.CAFile, &c.PasswordFile, &c.TokenFile, &c.ClientCertFile, &c.ClientKeyFile,
		&a.BootstrapTokenFile, &a.GatewayTokenFile, &a.GatewayCertFile, &a.GatewayKeyFile}
}

// Load reads, decodes and validates a target file; its file paths come back absolute.
func Load(path string) (*File, error) {
	data, err := strictyaml.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a target file read from path.
func Parse(path string, data []byte) (*File, error) {
	var f File
	d := &strictyaml.Decoder{File: path, Sentinel: ErrInvalid}
	if err := d.DecodeData(data, &f); err != nil {
		return nil, err
	}
	d.CheckHeader(strictyaml.Header{APIVersion: f.APIVersion, Kind: f.Kind}, Kind)
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f.Target.Validate(d, "")
	f.Target.Hooks.validate(d, abs)
	if err := d.Err(); err != nil {
		return nil, err
	}
	f.Resolve(abs)
	if f.Name == "" {
		f.Name = f.APIURL
	}
	return &f, nil
}

// Describe is a one-line description of t for plans: where it is, how the harness logs in and
// how DSNs are admitted.
func (t *Target) Describe() string {
	return fmt.Sprintf("%s (bus %s), credentials: %s, admission: %s", t.APIURL, t.BusURL, t.Credentials.Kind(), t.Admission.Mode())
}
