#!/usr/bin/env bash
# start.sh DIR: start the real servers the conformance suites run against.
#
# Starts PostgreSQL and VictoriaMetrics from Debian's packages, both listening only on 127.0.0.1 on
# free ports, with all their state under DIR, waits until both answer, and writes DIR/env:
#
#   DSNSCALE_TEST_POSTGRES_URL=postgres://dsnscale:<password>@127.0.0.1:<port>/dsnscale_test?sslmode=disable
#   DSNSCALE_TEST_VM_URL=http://127.0.0.1:<port>
#
# DIR/env holds plain KEY=value lines: `set -a; . DIR/env; set +a` in a shell, `include DIR/env`
# plus `export` in make, or `--env-file` for docker. Stop the servers with stop.sh DIR.
#
# Missing packages (postgresql, victoria-metrics) are installed with apt-get; the package index
# is refreshed first only when apt does not know the package. PostgreSQL refuses to run as root,
# so when this script runs as root it runs initdb and pg_ctl as the "postgres" user the Debian
# package creates.
set -euo pipefail

log() { printf 'testservers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)

PG_DIR=$DIR/postgres
VM_DIR=$DIR/victoria-metrics

for pidfile in "$PG_DIR/data/postmaster.pid" "$VM_DIR/pid"; do
	if [[ -f $pidfile ]] && kill -0 "$(head -n1 "$pidfile")" 2>/dev/null; then
		die "a server started in $DIR still runs (pid file $pidfile); run stop.sh $DIR first"
	fi
done

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG: install PKG, refreshing the package index first only if apt cannot find it.
apt_install() {
	local pkg=$1
	if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		log "apt does not know $pkg yet: running apt-get update"
		as_root apt-get update -qq
	fi
	log "installing $pkg with apt-get"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2
}

# find_pg_bin NAME: the path of a PostgreSQL server program (Debian keeps them off PATH).
find_pg_bin() {
	local name=$1 p
	for p in /usr/lib/postgresql/*/bin/"$name"; do
		[[ -x $p ]] && { echo "$p"; return 0; }
	done
	command -v "$name" 2>/dev/null && return 0
	return 1
}

if ! find_pg_bin initdb >/dev/null || ! find_pg_bin pg_ctl >/dev/null; then
	apt_install postgresql
fi
INITDB=$(find_pg_bin initdb) || die "initdb not found after installing postgresql"
PG_CTL=$(find_pg_bin pg_ctl) || die "pg_ctl not found after installing postgresql"
PG_ISREADY=$(find_pg_bin pg_isready || command -v pg_isready) || die "pg_isready not found"
PSQL=$(find_pg_bin psql || command -v psql) || die "psql not found"

VM_BIN=$(command -v victoria-metrics || true)
if [[ -z $VM_BIN ]]; then
	apt_install victoria-metrics
	VM_BIN=$(command -v victoria-metrics) || die "victoria-metrics not found after installing it"
fi
command -v curl >/dev/null || apt_install curl

# free_port: a TCP port nothing listens on at 127.0.0.1 right now.
free_port() {
	local port i
	for i in $(seq 1 100); do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found on 127.0.0.1"
}

# run_pg CMD...: run a PostgreSQL program as a user it accepts.
run_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# --- PostgreSQL -------------------------------------------------------------------------------
mkdir -p "$PG_DIR/socket"
if [[ $(id -u) -eq 0 ]]; then
	id postgres >/dev/null 2>&1 || die "user postgres does not exist (the postgresql package creates it)"
	# The postgres user must be able to reach DIR.
	chmod o+x "$DIR"
	chown -R postgres: "$PG_DIR"
	runuser -u postgres -- test -w "$PG_DIR" ||
		die "user postgres cannot write $PG_DIR: a parent directory of $DIR is closed to it; choose a DIR under /tmp"
fi

PG_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
	rm -rf "$PG_DIR/data"
	pwfile=$PG_DIR/pwfile
	printf '%s\n' "$PG_PASSWORD" >"$pwfile"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
	chmod 600 "$pwfile"
	log "initdb in $PG_DIR/data"
	run_pg "$INITDB" -D "$PG_DIR/data" -U dsnscale --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
		die "initdb failed; see $PG_DIR/initdb.log"
	rm -f "$pwfile"
	printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/password"
	chmod 600 "$PG_DIR/password"
else
	[[ -f $PG_DIR/password ]] || die "$PG_DIR/data exists but $PG_DIR/password does not; remove $PG_DIR"
	PG_PASSWORD=$(cat "$PG_DIR/password")
fi

pg_started=false
for attempt in 1 2 3; do
	PG_PORT=$(free_port)
	log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
	if run_pg "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR/socket -c max_connections=200" \
		start >&2; then
		pg_started=true
		break
	fi
	log "PostgreSQL did not start on port $PG_PORT (attempt $attempt); see $PG_DIR/server.log"
done
$pg_started || die "PostgreSQL did not start; see $PG_DIR/server.log"

for i in $(seq 1 60); do
	"$PG_ISREADY" -q -h 127.0.0.1 -p "$PG_PORT" && break
	[[ $i -eq 60 ]] && die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT; see $PG_DIR/server.log"
	sleep 0.5
done
if ! run_pg "$PSQL" -h "$PG_DIR/socket" -p "$PG_PORT" -U dsnscale -d postgres -tAc \
	"SELECT 1 FROM pg_database WHERE datname = 'dsnscale_test'" | grep -q 1; then
	run_pg "$PSQL" -h "$PG_DIR/socket" -p "$PG_PORT" -U dsnscale -d postgres -qc \
		"CREATE DATABASE dsnscale_test" >&2 || die "cannot create database dsnscale_test"
fi
PG_URL="postgres://dsnscale:$PG_PASSWORD@127.0.0.1:$PG_PORT/dsnscale_test?sslmode=disable"

# --- VictoriaMetrics --------------------------------------------------------------------------
mkdir -p "$VM_DIR/data"
vm_started=false
for attempt in 1 2 3; do
	VM_PORT=$(free_port)
	log "starting VictoriaMetrics on 127.0.0.1:$VM_PORT"
	# A retention of 100 years keeps samples at any past timestamp a test writes; VictoriaMetrics
	# silently drops samples older than its retention period.
	setsid "$VM_BIN" -storageDataPath="$VM_DIR/data" -httpListenAddr="127.0.0.1:$VM_PORT" \
		-retentionPeriod=100y -loggerLevel=WARN -search.disableCache \
		>"$VM_DIR/server.log" 2>&1 </dev/null &
	echo $! >"$VM_DIR/pid"
	for i in $(seq 1 60); do
		if [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$VM_PORT/health" 2>/dev/null) == OK ]]; then
			vm_started=true
			break
		fi
		kill -0 "$(cat "$VM_DIR/pid")" 2>/dev/null || break
		sleep 0.5
	done
	$vm_started && break
	kill "$(cat "$VM_DIR/pid")" 2>/dev/null || true
	rm -f "$VM_DIR/pid"
	log "VictoriaMetrics did not answer on port $VM_PORT (attempt $attempt); see $VM_DIR/server.log"
done
$vm_started || die "VictoriaMetrics did not start; see $VM_DIR/server.log"
VM_URL="http://127.0.0.1:$VM_PORT"

cat >"$DIR/env.tmp" <<EOF
DSNSCALE_TEST_POSTGRES_URL=$PG_URL
DSNSCALE_TEST_VM_URL=$VM_URL
EOF
chmod 600 "$DIR/env.tmp"
mv "$DIR/env.tmp" "$DIR/env"
log "PostgreSQL at 127.0.0.1:$PG_PORT, VictoriaMetrics at $VM_URL; variables in $DIR/env"
