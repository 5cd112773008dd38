package controlplane

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{DataDir: "d"}
	require.NoError(t, ok.Validate())
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no data", func(c *Config) { c.DataDir = "" }, "data directory"},
		{"bad listen", func(c *Config) { c.Listen = "nope" }, "listen"},
		{"bad tsdb url", func(c *Config) { c.TSDBURL = "ftp://x" }, "tsdb"},
		{"bad inventory url", func(c *Config) { c.InventoryURL = "mysql://x" }, "inventory"},
		{"nats url and listen", func(c *Config) { c.NATSURL, c.NATSListen = "nats://x:1", "127.0.0.1:0" }, "exclusive"},
		{"negative limits", func(c *Config) { c.MaxInFlight = -1 }, "negative"},
		{"coalesce window too long", func(c *Config) { c.CoalesceWindow = 101 * time.Millisecond }, "coalesce window 101ms"},
		{"negative coalesce window", func(c *Config) { c.CoalesceWindow = -time.Millisecond }, "coalesce window -1ms"},
		{"cert without key", func(c *Config) { c.TLSCertFile = "c" }, "go together"},
		{"insecure with a certificate", func(c *Config) { c.Insecure, c.TLSCertFile, c.TLSKeyFile = true, "c", "k" }, "contradict"},
		{"insecure with an admin password", func(c *Config) { c.Insecure, c.AdminPasswordFile = true, "p" }, "no effect"},
		{"token ttl", func(c *Config) { c.TokenTTL = 25 * time.Hour }, "token TTL"},
		{"cert ttl", func(c *Config) { c.CertTTL = time.Second }, "certificate TTL"},
		{"empty host", func(c *Config) { c.TLSHosts = []string{""} }, "TLSHosts[0]"},
		{"bcrypt cost", func(c *Config) { c.BcryptCost = 2 }, "bcrypt"},
		{"rate", func(c *Config) { c.RateLimits.UserRate = math.Inf(1) }, "RateLimits.UserRate"},
		{"burst", func(c *Config) { c.RateLimits.SourceBurst = -1 }, "bursts"},
	} {
		cfg := ok
		c.edit(&cfg)
		err := cfg.Validate()
		require.ErrorIs(t, err, ErrConfig, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}

func TestDefaultsNameTheListenHosts(t *testing.T) {
	c := Config{DataDir: "d", Listen: "10.1.2.3:8080", NATSListen: "0.0.0.0:4222"}
	c.setDefaults()
	assert.Equal(t, []string{"127.0.0.1", "localhost", "10.1.2.3"}, c.TLSHosts, "a wildcard address names no host")
	assert.Equal(t, float64(DefaultUserRate), c.RateLimits.UserRate)
}

// TestInsecureIsPlain checks the explicit opt-out: plain HTTP and NATS, no users.
func TestInsecureIsPlain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := Start(ctx, Config{DataDir: t.TempDir(), Insecure: true})
	require.NoError(t, err)
	defer srv.Stop()
	require.NoError(t, srv.WaitReady(ctx))
	assert.True(t, strings.HasPrefix(srv.APIURL(), "http://"), srv.APIURL())
	assert.True(t, strings.HasPrefix(srv.NATSURL(), "nats://"), srv.NATSURL())
	assert.Empty(t, srv.CAFile())
	assert.Nil(t, srv.ClientTLS())
	_, _, err = srv.AdminCredentials()
	assert.Error(t, err)
	resp, err := http.Get(srv.APIURL() + "/api/v1/tenants")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
