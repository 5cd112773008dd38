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

export DSNSCALE_SKIP_LOG="$servers/skipped.log"
: >"$DSNSCALE_SKIP_LOG"

go build ./...
go vet ./...
status=0
go test -count=1 -timeout 25m ./... || status=$?
if [ -s "$DSNSCALE_SKIP_LOG" ]; then
	echo "Skipped suites (their servers are not available here):"
	sed 's/^/  /' "$DSNSCALE_SKIP_LOG"
fi
exit $status
