// Package securitytest attacks the reference control plane end to end, as it runs by default
// (controlplane.Start with security on: the API over TLS with login tokens, RBAC, audit and
// rate limits; the bus with mutual TLS and per-identity permissions). Each attack is a test
// that fails if the attack succeeds.
package securitytest
