// Package testservers tells tests where the real servers started by start.sh listen.
//
// start.sh DIR writes DIR/env with the variables below; `make test` exports them. A test that
// needs a server calls Require (PostgreSQL, VictoriaMetrics: started by `make test`, so they must
// be there in CI) or Optional (servers nobody starts here, such as Elasticsearch).
package testservers

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Environment variables naming the real servers.
const (
	PostgresURL = "DSNSCALE_TEST_POSTGRES_URL" // postgres://user:password@127.0.0.1:port/db?sslmode=disable
	VMURL       = "DSNSCALE_TEST_VM_URL"       // http://127.0.0.1:port (VictoriaMetrics)
	ESURL       = "DSNSCALE_ES_URL"            // http://127.0.0.1:9200 (Elasticsearch or OpenSearch)
	InfluxURL   = "DSNSCALE_INFLUX_URL"        // influxdb://127.0.0.1:8086?org=..&bucket=..&token=..
)

// InCI reports whether the tests run in CI (CI=true or another true value), where a missing
// server is a failure rather than a reason to skip.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Require returns the URL in the environment variable name. When it is unset the test is skipped
// with a loud message, or fails in CI, so a real-server suite cannot silently not run there.
func Require(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := fmt.Sprintf("%s is not set: the real-server suite %s did NOT run. "+
		"Start the servers with scripts/testservers/start.sh DIR and export the variables in DIR/env.", name, t.Name())
	if InCI() {
		t.Fatalf("CI=true and %s", msg)
	}
	loud(t, msg)
	return ""
}

// RequireTool skips the test loudly when a tool the machine should have (the Docker engine, a
// browser) is unavailable, and fails it in CI, where the suite must run. why says what was not
// tested; err says why the tool is unavailable (nil: it is available and nothing happens).
func RequireTool(t testing.TB, why string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s: %s did NOT run (%v)", why, t.Name(), err)
	if InCI() {
		t.Fatalf("CI=true and %s", msg)
	}
	loud(t, msg)
}

// Optional returns the URL in the environment variable name, or skips the test with a loud
// message, in CI too: nothing here starts that server.
func Optional(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	loud(t, fmt.Sprintf("%s is not set: the real-server suite %s did NOT run (no such server is started here; "+
		"set %s to run it).", name, t.Name(), name))
	return ""
}

// SkipLog names an environment variable: when set, every skip for a missing server is also
// appended to that file, so that `make test` can print them after the run (go test shows a
// passing package's output only with -v).
const SkipLog = "DSNSCALE_SKIP_LOG"

// loud skips with msg, also writing it to stderr and to the SkipLog file.
func loud(t testing.TB, msg string) {
	t.Helper()
	line := "SKIP " + msg + "\n"
	fmt.Fprint(os.Stderr, line)
	if path := os.Getenv(SkipLog); path != "" {
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			_, _ = f.WriteString(line)
			_ = f.Close()
		}
	}
	t.Skip(msg)
}
