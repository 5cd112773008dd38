package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Identity is who a leaf certificate names.
type Identity struct {
	// Name is the DSN id, or the name of a control-plane component.
	Name string
	// Role is RoleDSN, RoleGateway or RoleControlPlane.
	Role string
	// Tenant is the tenant a DSN (or a gateway) was admitted into, fixed by the CA from the
	// bootstrap token and carried as a second URI SAN (see TenantURI); empty for the control
	// plane's components and for identities issued without one.
	Tenant string
}

// String renders the identity as "role:name".
func (id Identity) String() string { return id.Role + ":" + id.Name }

// URI is the identity's URI SAN: "urn:dsnscale:<role>:<name>".
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "urn", Opaque: Organization + ":" + id.Role + ":" + id.Name}
}

// TenantURI is the URI SAN that carries a tenant: "urn:dsnscale:tenant:<tenant>".
func TenantURI(tenant string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: Organization + ":tenant:" + tenant}
}

// CheckName returns "" if name can name an identity, or what is wrong with it. Names are DSN
// ids (1-128 of A-Z, a-z, 0-9, '_' and '-'), so that each is one NATS subject token.
func CheckName(name string) string { return model.CheckDSNID(name) }

// ParseCSR decodes one PEM certificate signing request and checks its signature and key: ECDSA
// P-256 or P-384, Ed25519, or RSA of 2048 to 8192 bits. Errors wrap ErrInvalidCSR.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	if len(csrPEM) > MaxCSRBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCSR, len(csrPEM), MaxCSRBytes)
	}
	block, rest := pem.Decode(csrPEM)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidCSR)
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: PEM block is %q, want \"CERTIFICATE REQUEST\"", ErrInvalidCSR, block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", ErrInvalidCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalidCSR, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s, want P-256 or P-384", ErrInvalidCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("%w: RSA key of %d bits, want 2048 to 8192", ErrInvalidCSR, n)
		}
	default:
		return fmt.Errorf("%w: public key of type %T is not accepted", ErrInvalidCSR, pub)
	}
	return nil
}

// CheckCSRIdentity checks that a DSN's CSR asks for the identity name and nothing else: its CN
// must be name, and it may carry no SAN but the identity's own URI. Errors wrap ErrIdentity.
func CheckCSRIdentity(csr *x509.CertificateRequest, name string) error {
	return CheckCSRFor(csr, Identity{Name: name, Role: RoleDSN})
}

// CheckCSRFor checks that a CSR asks for the identity want (a DSN or a gateway) and nothing
// else: its CN must be want.Name, and it may carry no SAN but the identity's own URI. Errors
// wrap ErrIdentity.
func CheckCSRFor(csr *x509.CertificateRequest, want Identity) error {
	name := want.Name
	switch {
	case csr.Subject.CommonName != name:
		return fmt.Errorf("%w: the CSR's common name is %q, want %q", ErrIdentity, csr.Subject.CommonName, name)
	case len(csr.DNSNames) > 0:
		return fmt.Errorf("%w: the CSR asks for DNS names %q; a %s identity carries none", ErrIdentity, csr.DNSNames, want.Role)
	case len(csr.IPAddresses) > 0:
		return fmt.Errorf("%w: the CSR asks for IP addresses %v; a %s identity carries none", ErrIdentity, csr.IPAddresses, want.Role)
	case len(csr.EmailAddresses) > 0:
		return fmt.Errorf("%w: the CSR asks for e-mail addresses %q; a %s identity carries none", ErrIdentity, csr.EmailAddresses, want.Role)
	case len(csr.URIs) > 1 || len(csr.URIs) == 1 && csr.URIs[0].String() != want.URI().String():
		return fmt.Errorf("%w: the CSR asks for URIs %v; the only one allowed is %s", ErrIdentity, csr.URIs, want.URI())
	}
	return nil
}

// SignCSR signs a DSN's certificate signing request for the identity name, valid for ttl (0
// means DefaultLeafTTL). The CSR must be well formed, correctly self-signed and ask for exactly
// that identity (see CheckCSRIdentity); the certificate's subject is the CA's, never copied from
// the CSR. The result is the certificate in PEM.
func (ca *CA) SignCSR(csrPEM []byte, name string, ttl time.Duration) ([]byte, error) {
	return ca.SignCSRFor(csrPEM, Identity{Name: name, Role: RoleDSN}, ttl)
}

// SignCSRFor is SignCSR for an identity of role RoleDSN or RoleGateway: the roles whose holders
// make their own keys. Certificates for the control plane's own components come from
// ClientCert and ServerCert.
func (ca *CA) SignCSRFor(csrPEM []byte, id Identity, ttl time.Duration) ([]byte, error) {
	if id.Role != RoleDSN && id.Role != RoleGateway {
		return nil, fmt.Errorf("%w: role %q: a CSR is signed for %q or %q only", ErrInvalid, id.Role, RoleDSN, RoleGateway)
	}
	if msg := CheckName(id.Name); msg != "" {
		return nil, fmt.Errorf("%w: identity: %s", ErrInvalid, msg)
	}
	if id.Tenant != "" {
		if msg := model.CheckName(id.Tenant); msg != "" {
			return nil, fmt.Errorf("%w: tenant: %s", ErrInvalid, msg)
		}
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	return ca.SignRequestFor(csr, id, ttl)
}

// SignRequestFor is SignCSRFor for a CSR ParseCSR has already parsed and checked the signature
// of, so that a caller that looked into the CSR does not pay for its signature twice.
func (ca *CA) SignRequestFor(csr *x509.CertificateRequest, id Identity, ttl time.Duration) ([]byte, error) {
	if id.Role != RoleDSN && id.Role != RoleGateway {
		return nil, fmt.Errorf("%w: role %q: a CSR is signed for %q or %q only", ErrInvalid, id.Role, RoleDSN, RoleGateway)
	}
	if msg := CheckName(id.Name); msg != "" {
		return nil, fmt.Errorf("%w: identity: %s", ErrInvalid, msg)
	}
	if id.Tenant != "" {
		if msg := model.CheckName(id.Tenant); msg != "" {
			return nil, fmt.Errorf("%w: tenant: %s", ErrInvalid, msg)
		}
	}
	if err := CheckCSRFor(csr, id); err != nil {
		return nil, err
	}
	der, err := ca.issue(id, csr.PublicKey, ttl, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// ServerCert issues a server certificate for hosts (DNS names or IP addresses), valid for ttl
// (0 means DefaultLeafTTL), with a new key made here.
func (ca *CA) ServerCert(hosts []string, ttl time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, fmt.Errorf("%w: hosts: at least one is required", ErrInvalid)
	}
	san := &sans{}
	for i, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			san.ips = append(san.ips, ip)
			continue
		}
		if msg := checkHostname(h); msg != "" {
			return tls.Certificate{}, fmt.Errorf("%w: hosts[%d]: %s", ErrInvalid, i, msg)
		}
		san.dns = append(san.dns, h)
	}
	name := strings.ReplaceAll(hosts[0], ".", "_")
	name = strings.ReplaceAll(name, ":", "_")
	if CheckName(name) != "" {
		name = "server"
	}
	return ca.localCert(Identity{Name: name, Role: RoleControlPlane}, ttl, san, x509.ExtKeyUsageServerAuth)
}

// ClientCert issues a client certificate with the control-plane role for one of the control
// plane's own components (name, as CheckName), valid for ttl (0 means DefaultLeafTTL), with a
// new key made here.
func (ca *CA) ClientCert(name string, ttl time.Duration) (tls.Certificate, error) {
	if msg := CheckName(name); msg != "" {
		return tls.Certificate{}, fmt.Errorf("%w: name: %s", ErrInvalid, msg)
	}
	return ca.localCert(Identity{Name: name, Role: RoleControlPlane}, ttl, nil, x509.ExtKeyUsageClientAuth)
}

type sans struct {
	dns []string
	ips []net.IP
}

func (ca *CA) localCert(id Identity, ttl time.Duration, san *sans, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := ca.issue(id, &key.PublicKey, ttl, san, usage)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parsing issued certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// issue creates a leaf certificate for id and pub.
func (ca *CA) issue(id Identity, pub crypto.PublicKey, ttl time.Duration, san *sans, usage x509.ExtKeyUsage) ([]byte, error) {
	if ttl == 0 {
		ttl = DefaultLeafTTL
	}
	if ttl < MinLeafTTL || ttl > MaxLeafTTL {
		return nil, fmt.Errorf("%w: ttl %s: want %s to %s", ErrInvalid, ttl, MinLeafTTL, MaxLeafTTL)
	}
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	serial, err := newSerial(now)
	if err != nil {
		return nil, err
	}
	keyUsage := x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		keyUsage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id.Name, Organization: []string{Organization}, OrganizationalUnit: []string{id.Role}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              keyUsage,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URI()},
	}
	if id.Tenant != "" {
		tmpl.URIs = append(tmpl.URIs, TenantURI(id.Tenant))
	}
	if san != nil {
		tmpl.DNSNames, tmpl.IPAddresses = san.dns, san.ips
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing certificate for %s: %w", id, err)
	}
	return der, nil
}

// newSerial returns a serial number made of the issue time in nanoseconds (8 bytes, top bit
// clear so that the number is positive) and 8 random bytes.
func newSerial(t time.Time) (*big.Int, error) {
	var b [16]byte
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	binary.BigEndian.PutUint64(b[:8], uint64(ns)&^(1<<63))
	if _, err := rand.Read(b[8:]); err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return new(big.Int).SetBytes(b[:]), nil
}

// issuedAt returns the issue time encoded in a serial number made by newSerial, or false for
// serial numbers of another shape.
func issuedAt(serial *big.Int) (time.Time, bool) {
	if serial == nil || serial.Sign() <= 0 || serial.BitLen() > 127 || serial.BitLen() <= 64 {
		return time.Time{}, false
	}
	b := serial.FillBytes(make([]byte, 16))
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// IdentityOf reads the identity of a leaf issued by this package: CN, O, OU and URI SAN must
// agree. Errors wrap ErrIdentity.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	s := cert.Subject
	if len(s.Organization) != 1 || s.Organization[0] != Organization || len(s.OrganizationalUnit) != 1 {
		return Identity{}, fmt.Errorf("%w: subject %q is not a dsnscale identity", ErrIdentity, s.String())
	}
	id := Identity{Name: s.CommonName, Role: s.OrganizationalUnit[0]}
	if id.Role != RoleDSN && id.Role != RoleGateway && id.Role != RoleControlPlane {
		return Identity{}, fmt.Errorf("%w: role %q is not %q, %q or %q", ErrIdentity, id.Role, RoleDSN, RoleGateway, RoleControlPlane)
	}
	if msg := CheckName(id.Name); msg != "" {
		return Identity{}, fmt.Errorf("%w: common name: %s", ErrIdentity, msg)
	}
	if len(cert.URIs) < 1 || len(cert.URIs) > 2 || cert.URIs[0].String() != id.URI().String() {
		return Identity{}, fmt.Errorf("%w: URI SANs %v do not match the subject's %s", ErrIdentity, cert.URIs, id.URI())
	}
	if len(cert.URIs) == 2 {
		prefix := Organization + ":tenant:"
		u := cert.URIs[1]
		if u.Scheme != "urn" || !strings.HasPrefix(u.Opaque, prefix) {
			return Identity{}, fmt.Errorf("%w: URI SAN %s is not a tenant", ErrIdentity, u)
		}
		id.Tenant = strings.TrimPrefix(u.Opaque, prefix)
		if msg := model.CheckName(id.Tenant); msg != "" {
			return Identity{}, fmt.Errorf("%w: tenant: %s", ErrIdentity, msg)
		}
	}
	return id, nil
}

// checkHostname returns "" for a DNS name a server certificate may carry.
func checkHostname(h string) string {
	if h == "" || len(h) > 253 {
		return fmt.Sprintf("%q is not 1-253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Sprintf("%q has an empty or over-long label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Sprintf("%q is not a DNS name", h)
			}
		}
	}
	return ""
}
