package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Revocation is one entry of the revocation list.
type Revocation struct {
	// Serial is the revoked certificate's serial number in hex, for a revocation of one
	// certificate.
	Serial string `json:"serial,omitempty"`
	// Identity is the revoked DSN id, for a revocation of every certificate issued to it before At.
	Identity string `json:"identity,omitempty"`
	// At is when the revocation was made.
	At time.Time `json:"at"`
	// Until is when the entry may be forgotten: every certificate it covers has expired by then.
	Until time.Time `json:"until"`
	// Reason says why, for operators.
	Reason string `json:"reason,omitempty"`
}

// revocations is the list in memory, indexed.
type revocations struct {
	serials    map[string]Revocation
	identities map[string]Revocation
}

type revocationsFile struct {
	Revocations []Revocation `json:"revocations"`
}

func loadRevocations(path string) (revocations, error) {
	r := revocations{serials: map[string]Revocation{}, identities: map[string]Revocation{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	var f revocationsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return r, fmt.Errorf("%w: %s: %v", ErrStorage, path, err)
	}
	for i, e := range f.Revocations {
		switch {
		case e.Serial != "" && e.Identity == "":
			if _, ok := new(big.Int).SetString(e.Serial, 16); !ok {
				return r, fmt.Errorf("%w: %s: revocations[%d].serial: %q is not hex", ErrStorage, path, i, e.Serial)
			}
			r.serials[e.Serial] = e
		case e.Identity != "" && e.Serial == "":
			r.identities[e.Identity] = e
		default:
			return r, fmt.Errorf("%w: %s: revocations[%d]: exactly one of serial and identity must be set", ErrStorage, path, i)
		}
	}
	return r, nil
}

// save writes the list, dropping entries past their Until. The caller holds ca.mu.
func (ca *CA) saveRevocations() error {
	now := ca.now()
	f := revocationsFile{Revocations: []Revocation{}}
	for k, e := range ca.rev.serials {
		if now.After(e.Until) {
			delete(ca.rev.serials, k)
			continue
		}
		f.Revocations = append(f.Revocations, e)
	}
	for k, e := range ca.rev.identities {
		if now.After(e.Until) {
			delete(ca.rev.identities, k)
			continue
		}
		f.Revocations = append(f.Revocations, e)
	}
	sort.Slice(f.Revocations, func(i, j int) bool {
		a, b := f.Revocations[i], f.Revocations[j]
		return a.Serial+"/"+a.Identity < b.Serial+"/"+b.Identity
	})
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("pki: encoding revocations: %w", err)
	}
	return writeFileAtomic(filepath.Join(ca.dir, RevocationsFile), data)
}

// Revoke revokes the certificate with the given serial number. It takes effect at once for
// every check made through this CA, and is persisted before Revoke returns.
func (ca *CA) Revoke(serial *big.Int, reason string) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("%w: serial: must be a positive number", ErrInvalid)
	}
	now := ca.now()
	until := now.Add(MaxLeafTTL + ClockSkew)
	if t, ok := issuedAt(serial); ok {
		until = t.Add(MaxLeafTTL + ClockSkew)
	}
	key := serial.Text(16)
	ca.mu.Lock()
	defer ca.mu.Unlock()
	prev, had := ca.rev.serials[key]
	ca.rev.serials[key] = Revocation{Serial: key, At: now, Until: until, Reason: reason}
	if err := ca.saveRevocations(); err != nil {
		if had {
			ca.rev.serials[key] = prev
		} else {
			delete(ca.rev.serials, key)
		}
		return err
	}
	return nil
}

// RevokeIdentity revokes every certificate issued to the DSN name up to now (decommissioning).
// Certificates issued to the same name afterwards, at a new admission, are not affected. It is
// persisted before RevokeIdentity returns.
func (ca *CA) RevokeIdentity(name, reason string) error {
	if msg := CheckName(name); msg != "" {
		return fmt.Errorf("%w: identity: %s", ErrInvalid, msg)
	}
	now := ca.now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	prev, had := ca.rev.identities[name]
	ca.rev.identities[name] = Revocation{Identity: name, At: now, Until: now.Add(MaxLeafTTL + ClockSkew), Reason: reason}
	if err := ca.saveRevocations(); err != nil {
		if had {
			ca.rev.identities[name] = prev
		} else {
			delete(ca.rev.identities, name)
		}
		return err
	}
	return nil
}

// Revocations lists the revocation list's entries.
func (ca *CA) Revocations() []Revocation {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	out := make([]Revocation, 0, len(ca.rev.serials)+len(ca.rev.identities))
	for _, e := range ca.rev.serials {
		out = append(out, e)
	}
	for _, e := range ca.rev.identities {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// IsRevoked reports whether cert was revoked, by serial number or through its identity.
func (ca *CA) IsRevoked(cert *x509.Certificate) bool {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	if _, ok := ca.rev.serials[cert.SerialNumber.Text(16)]; ok {
		return true
	}
	if len(ca.rev.identities) == 0 || len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != RoleDSN {
		return false
	}
	e, ok := ca.rev.identities[cert.Subject.CommonName]
	if !ok {
		return false
	}
	t, ok := issuedAt(cert.SerialNumber)
	// A certificate whose issue time cannot be read was not made by this CA's leaf path; refuse
	// it rather than guess.
	return !ok || !t.After(e.At)
}

// Verify checks a client's certificate chain (leaf first, as presented in a TLS handshake):
// it must chain to this CA's root at the CA's current time, be meant for client authentication,
// name a dsnscale identity and not be revoked. It returns the identity.
func (ca *CA) Verify(chain []*x509.Certificate) (Identity, error) {
	if len(chain) == 0 || chain[0] == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         ca.pool,
		Intermediates: inter,
		CurrentTime:   ca.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	return ca.checkLeaf(leaf)
}

// checkLeaf checks what Verify checks of a leaf beyond its chain: the identity it names and
// that it is not revoked.
func (ca *CA) checkLeaf(leaf *x509.Certificate) (Identity, error) {
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	if ca.IsRevoked(leaf) {
		return Identity{}, fmt.Errorf("%w: %s (serial %s)", ErrRevoked, id, leaf.SerialNumber.Text(16))
	}
	return id, nil
}

// VerifyPeerCertificate is a tls.Config.VerifyPeerCertificate function that refuses, during the
// handshake, client certificates that Verify refuses: revoked ones above all. A chain crypto/tls
// has already verified to this CA's root (ServerTLSConfig asks it to) is not verified again:
// only what the handshake does not check, the identity and its revocation, is.
func (ca *CA) VerifyPeerCertificate(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
	if leaf, ok := ca.verifiedLeaf(verifiedChains); ok {
		_, err := ca.checkLeaf(leaf)
		return err
	}
	chain := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUntrusted, err)
		}
		chain = append(chain, c)
	}
	_, err := ca.Verify(chain)
	return err
}

// VerifyConnection is Verify for the client of a TLS connection: when the handshake verified
// the client's chain to this CA's root, it checks only the identity the leaf names and its
// revocation (a revocation may have come since the handshake); otherwise it verifies the
// presented chain in full. A mutual-TLS connection then costs one verification of its chain,
// not one per check.
func (ca *CA) VerifyConnection(state *tls.ConnectionState) (Identity, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	if leaf, ok := ca.verifiedLeaf(state.VerifiedChains); ok && leaf.Equal(state.PeerCertificates[0]) {
		return ca.checkLeaf(leaf)
	}
	return ca.Verify(state.PeerCertificates)
}

// verifiedLeaf returns the leaf of a chain crypto/tls verified that ends in this CA's root.
func (ca *CA) verifiedLeaf(chains [][]*x509.Certificate) (*x509.Certificate, bool) {
	for _, c := range chains {
		if len(c) > 0 && c[len(c)-1].Equal(ca.cert) {
			return c[0], true
		}
	}
	return nil, false
}
