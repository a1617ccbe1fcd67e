#!/usr/bin/env bash
# workers.sh - --workers and upgrades, measured on loopback (127.0.0.0/8).
#
# In one run (ratios between its own figures are what it reports; on a
# shared machine absolute numbers wander from run to run):
#   1. throughput at saturation of --workers 1 and --workers 2, cache on
#      and warmed (100 names), so the proxy and not the upstream is what
#      is measured, with dnsperf pinned to the last CPU and the proxy to
#      the others (taskset); on a machine with 2 CPUs the proxy then has
#      ONE core, so workers 2 can only show what threads cost there, and
#      a third line gives the proxy both cores, shared with the
#      generator;
#   2. CPU per answer (utime+stime / answers) of --workers 1 against a
#      baseline binary (--baseline PATH, e.g. one built from the commit
#      before --workers), same runs;
#   3. queries lost at 2000 queries/s (dnsperf -Q, -t 2) while the proxy
#      is replaced: with --handover-socket (second process started, first
#      sent SIGTERM), with SO_REUSEPORT alone (the same without the
#      handover socket), after a kill -9 with a second process already
#      serving, and after a kill -9 with a restart 1 s later.
#
# Usage: tests/bench/workers.sh [--duration S] [--proxy PATH]
#        [--baseline PATH] [--keep]
# Every process it starts is stopped by PID when it ends.

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DURATION=5
PROXY_SRC=$ROOT/build/dotproxy
BASELINE=""
KEEP=0
HOST=127.0.0.1
ZONE=bench.test
SNI=dot.$ZONE

die() { echo "workers.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift ;;
	--proxy) PROXY_SRC=$2; shift ;;
	--baseline) BASELINE=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
for t in unbound openssl dnsperf taskset awk ss; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh)"
done
[ -x "$PROXY_SRC" ] || die "no proxy at $PROXY_SRC (make build/dotproxy)"

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-workers.XXXXXX")
# shellcheck source=tests/bench/lib.sh
. "$SCRIPT_DIR/lib.sh"
cleanup() {
	stop_all
	if [ "$KEEP" = 1 ]; then log "kept $WORKDIR"; else rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$PROXY_SRC" "$WORKDIR/dotproxy"
[ -z "$BASELINE" ] || cp "$BASELINE" "$WORKDIR/baseline"

UP_DOT=$(free_port 19853) || die "no free port"
PORT=$(free_port 19353) || die "no free port"

# Certificates and the upstream (unbound, DoT on loopback).
C=$WORKDIR/certs
make_certs "$C" "$SNI" "$WORKDIR/openssl.log"
{
	printf 'server:\n\tdirectory: "%s"\n\tchroot: ""\n\tusername: ""\n' "$WORKDIR"
	printf '\tpidfile: ""\n\tdo-daemonize: no\n\tuse-syslog: no\n\tlogfile: ""\n'
	printf '\tverbosity: 0\n\tnum-threads: 1\n\tdo-ip6: no\n'
	printf '\tinterface: %s@%s\n\ttls-port: %s\n' "$HOST" "$UP_DOT" "$UP_DOT"
	printf '\ttls-service-key: "%s/server.key"\n' "$C"
	printf '\ttls-service-pem: "%s/server.pem"\n' "$C"
	printf '\tincoming-num-tcp: 256\n\taccess-control: 127.0.0.0/8 allow\n'
	printf '\tmodule-config: "iterator"\n\tlocal-zone: "." refuse\n'
	printf '\tlocal-zone: "%s." static\n' "$ZONE"
	for ((i = 1; i <= 2000; i++)); do
		printf '\tlocal-data: "n%d.%s. 300 IN A 127.0.%d.%d"\n' "$i" "$ZONE" \
		    $((i / 256)) $((i % 256))
	done
	printf 'remote-control:\n\tcontrol-enable: no\n'
} >"$WORKDIR/unbound.conf"
for ((i = 1; i <= 2000; i++)); do echo "n$i.$ZONE A"; done >"$WORKDIR/all.txt"
head -n 100 "$WORKDIR/all.txt" >"$WORKDIR/hot.txt"
start_bg unbound "$WORKDIR/unbound.log" unbound -d -c "$WORKDIR/unbound.conf"

NCPU=$(nproc)
GEN_CPU=$((NCPU - 1))
if [ "$NCPU" -ge 2 ]; then PROXY_CPUS=0-$((NCPU - 2)); else PROXY_CPUS=0; fi

# start_proxy NAME BIN CPUS ARGS... -> its PID in $PID; log in NAME.log
start_proxy() {
	local name=$1 bin=$2 cpus=$3 i
	shift 3
	start_bg "$name" "$WORKDIR/$name.log" taskset -c "$cpus" "$bin" \
	    --listen "$HOST:$PORT" --upstream "$HOST@$UP_DOT#$SNI" \
	    --ca-file "$C/ca.pem" --log-level warn "$@"
	PID=$LAST_PID
	for ((i = 0; i < 100; i++)); do
		dnsperf -s "$HOST" -p "$PORT" -d "$WORKDIR/hot.txt" -n 1 -c 1 -t 1 2>&1 |
		    grep -qF 'NOERROR 100 (100' && return 0
		kill -0 "$PID" 2>/dev/null || die "$name exited: $(cat "$WORKDIR/$name.log")"
		sleep 0.1
	done
	die "$name does not answer"
}
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
field() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }

# saturate NAME BIN CPUS ARGS...: qps and CPU us per answer
saturate() {
	local name=$1 bin=$2 cpus=$3 t0 t1 hz answered qps
	shift 3
	start_proxy "$name" "$bin" "$cpus" "$@"
	# Warm every worker's cache shard: many source ports, every name.
	dnsperf -s "$HOST" -p "$PORT" -d "$WORKDIR/hot.txt" -c 20 -n 5 -t 2 >/dev/null 2>&1
	t0=$(cpu_ticks "$PID")
	taskset -c "$GEN_CPU" dnsperf -s "$HOST" -p "$PORT" -d "$WORKDIR/hot.txt" \
	    -c 10 -q 100 -l "$DURATION" -t 2 >"$WORKDIR/$name.perf" 2>&1
	t1=$(cpu_ticks "$PID")
	stop_pid "$PID"
	hz=$(getconf CLK_TCK)
	answered=$(field "Queries completed" "$WORKDIR/$name.perf")
	qps=$(field "Queries per second" "$WORKDIR/$name.perf")
	awk -v n="$name" -v q="$qps" -v d="$answered" -v t=$((t1 - t0)) -v hz="$hz" \
	    'BEGIN { printf "%-34s %10.0f qps %8.2f us CPU/answer\n", n, q,
	        (d > 0 ? t * 1e6 / hz / d : 0) }'
	echo "$name $qps" >>"$WORKDIR/qps"
}

# lost NAME MODE: queries lost at 2000 qps while the proxy is replaced.
lost() {
	local name=$1 mode=$2 ho=() a b perf
	[ "$mode" = handover ] && ho=(--handover-socket "$WORKDIR/ho.sock")
	start_proxy "$name-a" "$WORKDIR/dotproxy" "0-$GEN_CPU" --workers 1 \
	    --cache-size 0 --shutdown-grace 0 "${ho[@]}"
	a=$PID
	# -q: room to keep sending at 2000 qps through a gap of seconds.
	dnsperf -s "$HOST" -p "$PORT" -d "$WORKDIR/all.txt" -c 20 -q 20000 -Q 2000 \
	    -l 6 -t 2 >"$WORKDIR/$name.perf" 2>&1 &
	perf=$!
	sleep 2
	case $mode in
	handover | reuseport)
		start_proxy "$name-b" "$WORKDIR/dotproxy" "0-$GEN_CPU" --workers 1 \
		    --cache-size 0 --shutdown-grace 0 "${ho[@]}"
		b=$PID
		kill -TERM "$a" ;;
	crash-surge)
		start_proxy "$name-b" "$WORKDIR/dotproxy" "0-$GEN_CPU" --workers 1 \
		    --cache-size 0 --shutdown-grace 0
		b=$PID
		kill -KILL "$a" ;;
	crash-restart)
		kill -KILL "$a"
		sleep 1
		start_proxy "$name-b" "$WORKDIR/dotproxy" "0-$GEN_CPU" --workers 1 \
		    --cache-size 0 --shutdown-grace 0
		b=$PID ;;
	esac
	wait "$perf"
	stop_pid "$a"
	stop_pid "$b"
	printf '%-34s %6s of %6s lost\n' "$name" \
	    "$(field "Queries lost" "$WORKDIR/$name.perf")" \
	    "$(field "Queries sent" "$WORKDIR/$name.perf")"
}

echo "# dotproxy workers and upgrades, $(date -u +%Y-%m-%d), $NCPU CPUs," \
    "dnsperf on CPU $GEN_CPU, ${DURATION}s per run"
echo "## saturation, cached (100 names), proxy on CPUs $PROXY_CPUS"
saturate "workers 1" "$WORKDIR/dotproxy" "$PROXY_CPUS" --workers 1
saturate "workers 2" "$WORKDIR/dotproxy" "$PROXY_CPUS" --workers 2
if [ "$NCPU" -ge 2 ]; then
	saturate "workers 2, all CPUs (shared)" "$WORKDIR/dotproxy" "0-$GEN_CPU" --workers 2
fi
if [ -n "$BASELINE" ]; then
	saturate "baseline (one loop)" "$WORKDIR/baseline" "$PROXY_CPUS"
fi
awk '$1 == "workers" && $2 == "1" { w1 = $3 } $1 == "workers" && $2 == "2" { w2 = $3 }
    END { if (w1 > 0) printf "ratio workers 2 / workers 1 (same CPUs): %.2f\n", w2 / w1 }' \
    "$WORKDIR/qps"
echo "## queries lost at 2000 qps, uncached, while the proxy is replaced"
# (stderr: the shell's "Killed" notes of the kill -9 runs)
lost "upgrade, --handover-socket" handover 2>/dev/null
lost "upgrade, SO_REUSEPORT only" reuseport 2>/dev/null
lost "kill -9, second already serving" crash-surge 2>/dev/null
lost "kill -9, restart after 1 s" crash-restart 2>/dev/null
