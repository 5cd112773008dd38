#!/usr/bin/env bash
# Runs the whole test suite. It installs what the tests need (Debian packages), starts the real
# servers the conformance suites use on loopback in a temporary directory, and stops them after.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/testdeps.sh

servers=$(mktemp -d /tmp/dsnscale-test-XXXXXX)
cleanup() {
	./scripts/testservers/stop.sh "$servers" || true
	rm -rf "$servers"
}
trap cleanup EXIT
./scripts/testservers/start.sh "$servers"
set -a
# shellcheck disable=SC1091
. "$servers/env"
set +a

go build ./...
go vet ./...
go test -count=1 -timeout 25m ./... 2>&1 | tee "$servers/test.log"
