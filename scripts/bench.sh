#!/usr/bin/env bash
# Runs the benchmarks (bench.sh [AREA]). Like the tests, it starts PostgreSQL and VictoriaMetrics
# on loopback in a temporary directory, so that the figures against real servers are measured
# too, and stops them afterwards. The JSON object goes to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

servers=$(mktemp -d /tmp/dsnscale-bench-XXXXXX)
cleanup() {
	./scripts/testservers/stop.sh "$servers" >&2 || true
	rm -rf "$servers"
}
trap cleanup EXIT
./scripts/testservers/start.sh "$servers" >&2
set -a
# shellcheck disable=SC1091
. "$servers/env"
set +a

./bin/dsnscale bench ${1:+--only "$1"}
