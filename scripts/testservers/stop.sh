#!/usr/bin/env bash
# stop.sh DIR: stop the servers start.sh DIR started. Data stays in DIR; remove DIR to discard it.
# Stopping servers that are not running is not an error.
set -euo pipefail

log() { printf 'testservers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 DIR"
[[ -d $1 ]] || die "$1 is not a directory"
DIR=$(cd "$1" && pwd)
PG_DIR=$DIR/postgres
VM_DIR=$DIR/victoria-metrics
status=0

find_pg_bin() {
	local name=$1 p
	for p in /usr/lib/postgresql/*/bin/"$name"; do
		[[ -x $p ]] && { echo "$p"; return 0; }
	done
	command -v "$name" 2>/dev/null
}

if [[ -f $PG_DIR/data/postmaster.pid ]]; then
	PG_CTL=$(find_pg_bin pg_ctl) || die "pg_ctl not found"
	log "stopping PostgreSQL in $PG_DIR/data"
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$PG_CTL" -D "$PG_DIR/data" -m fast -w -t 60 stop >&2 || status=1
	else
		"$PG_CTL" -D "$PG_DIR/data" -m fast -w -t 60 stop >&2 || status=1
	fi
fi

if [[ -f $VM_DIR/pid ]]; then
	pid=$(cat "$VM_DIR/pid")
	# Only signal the process if it still is the VictoriaMetrics this directory started.
	if kill -0 "$pid" 2>/dev/null && grep -qa "storageDataPath=$VM_DIR/data" "/proc/$pid/cmdline" 2>/dev/null; then
		log "stopping VictoriaMetrics (pid $pid)"
		kill -TERM "$pid"
		for i in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "VictoriaMetrics (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
			kill -KILL "$pid" || true
			status=1
		fi
	fi
	rm -f "$VM_DIR/pid"
fi

rm -f "$DIR/env"
exit $status
