#!/usr/bin/env bash
# instr.sh - instructions per cached answer in the proxy's own process.
#
# CPU time per answer moves by several per cent between runs on a shared
# machine; the number of instructions the proxy executes for an answer does
# not. This counts them with callgrind (valgrind): everything that runs in
# the process's user space (its code, libc, OpenSSL; not the kernel, which
# bench.sh's CPU figures include). For each binary it runs the proxy twice
# under callgrind against a local unbound (DoT, 100 names): once warmed up
# only, once warmed up and then answering N cached queries from dnsperf,
# one at a time (-c 1 -q 1, the 100 names repeated); the difference divided
# by N is the figure. One at a time, every answer pays for a whole wake-up
# of the loop (epoll_wait, the read, the send, the clock), so the count
# repeats to within about 1 % (timers add a little with the run's length).
# At saturation that part is shared by the answers of one read: with 4 x 40
# queries outstanding the same binary counted some 500 fewer per answer,
# but varied by 10 % from run to run.
#
# Usage: tests/bench/instr.sh [--answers N] [BIN[=LABEL]]...
#   BIN          a dotproxy binary (default: build/dotproxy); several are
#                measured in turn and compared with the first
#   --answers N  cached answers counted per binary (default 100000)
#   -h, --help
#
# Needs valgrind, unbound, openssl and dnsperf (scripts/deps.sh bench). Only
# loopback is used; every process it starts is stopped by PID when it ends.

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
ANSWERS=100000
HOST=127.0.0.1
ZONE=bench.test
SNI=dot.$ZONE
BINS=()

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }
die() { echo "instr.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--answers) [ $# -ge 2 ] || die "--answers needs a value"; ANSWERS=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option: $1 (see --help)" ;;
	*) BINS+=("$1") ;;
	esac
	shift
done
if ! [[ $ANSWERS =~ ^[0-9]+$ ]] || [ "$ANSWERS" -lt 100 ]; then
	die "--answers needs a number of at least 100"
fi
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/build/dotproxy")
for t in valgrind callgrind_annotate unbound openssl dnsperf dig ss; do
	command -v "$t" >/dev/null || die "missing tool: $t (run: bash scripts/deps.sh bench)"
done
for b in "${BINS[@]}"; do
	[ -x "${b%%=*}" ] || die "no executable at ${b%%=*}"
done

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-instr.XXXXXX") || die "mktemp failed"
# shellcheck source=tests/bench/lib.sh
. "$SCRIPT_DIR/lib.sh"
cleanup() {
	stop_all
	rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throw-away CA and server certificate, and unbound serving 100 names.
make_certs "$WORKDIR" "$SNI" "$WORKDIR/openssl.log"
UP_DOT=$(free_port 18953) || die "no free port near 18953"
PROXY_PORT=$(free_port 18653) || die "no free port near 18653"
awk -v z="$ZONE" 'BEGIN { for (i = 1; i <= 100; i++) printf "n%d.%s A\n", i, z }' \
    >"$WORKDIR/queries.txt"
{
	printf 'server:\n'
	printf '\t%s\n' "directory: \"$WORKDIR\"" 'chroot: ""' 'username: ""' 'pidfile: ""' \
	    'do-daemonize: no' 'use-syslog: no' 'logfile: ""' 'verbosity: 0' 'num-threads: 1' \
	    'do-ip6: no' "interface: $HOST@$UP_DOT" "tls-port: $UP_DOT" \
	    "tls-service-key: \"$WORKDIR/server.key\"" "tls-service-pem: \"$WORKDIR/server.pem\"" \
	    'access-control: 127.0.0.0/8 allow' 'module-config: "iterator"' \
	    'local-zone: "." refuse' "local-zone: \"$ZONE.\" static"
	awk -v z="$ZONE" 'BEGIN { for (i = 1; i <= 100; i++)
		printf "\tlocal-data: \"n%d.%s. 300 IN A 127.0.0.%d\"\n", i, z, i }'
	printf 'remote-control:\n\tcontrol-enable: no\n'
} >"$WORKDIR/upstream.conf"
start_bg unbound "$WORKDIR/upstream.log" unbound -d -c "$WORKDIR/upstream.conf"
for i in $(seq 1 50); do
	ss -Hlnt 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$UP_DOT\$" && break
	[ "$i" = 50 ] && die "the upstream did not come up: $(tail -3 "$WORKDIR/upstream.log")"
	sleep 0.1
done

# counted BIN N: callgrind's instruction total for start-up, warm-up and N
# cached answers, in COUNT (not a subshell: a failure stops the proxy too).
counted() {
	local bin=$1 n=$2 out=$WORKDIR/cg.out pid i help args=()

	rm -f "$out"
	# (read whole: grep -q would stop the pipe early, and pipefail fail it)
	help=$("$bin" --help 2>&1)
	[[ $help == *--workers* ]] && args+=(--workers 1)
	# valgrind cannot run under the seccomp filter
	[[ $help == *--seccomp* ]] && args+=(--seccomp off)
	start_bg proxy "$WORKDIR/proxy.log" valgrind --tool=callgrind \
	    --callgrind-out-file="$out" "$bin" --listen "$HOST:$PROXY_PORT" \
	    --upstream "$HOST@$UP_DOT#$SNI" --ca-file "$WORKDIR/ca.pem" \
	    --log-level warn "${args[@]}"
	pid=$LAST_PID
	for i in $(seq 1 100); do
		dig +short +tries=1 +time=1 -p "$PROXY_PORT" "@$HOST" "n1.$ZONE" 2>/dev/null |
		    grep -q . && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	# Every name once: the cache is warm before anything is counted.
	dnsperf -s "$HOST" -p "$PROXY_PORT" -d "$WORKDIR/queries.txt" -n 1 -c 1 \
	    >"$WORKDIR/warm.txt" 2>&1
	grep -q 'Queries completed: *100 ' "$WORKDIR/warm.txt" ||
		die "$bin did not answer the warm-up: $(grep -v "^==" "$WORKDIR/proxy.log" | tail -3)"
	if [ "$n" -gt 0 ]; then
		dnsperf -s "$HOST" -p "$PROXY_PORT" -d "$WORKDIR/queries.txt" \
		    -n $((n / 100)) -c 1 -q 1 -t 30 >"$WORKDIR/run.txt" 2>&1
		grep -q "Queries completed: *$n " "$WORKDIR/run.txt" ||
			die "$bin: not every query answered: $(grep -E 'Queries (completed|lost)' "$WORKDIR/run.txt" | tr -s ' ')"
	fi
	stop_pid "$pid" 100
	COUNT=$(awk '/^totals:/ { print $2 }' "$out")
	[ -n "$COUNT" ] || die "$bin: no callgrind totals: $(tail -3 "$WORKDIR/proxy.log")"
}

ANSWERS=$((ANSWERS / 100 * 100))
echo "instructions per cached answer (callgrind, user space), $ANSWERS answers, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-28s %14s %10s\n' binary instr/answer ratio
first=""
for b in "${BINS[@]}"; do
	bin=${b%%=*}
	label=${b#*=}
	[ "$label" != "$b" ] || label=$(basename "$(dirname "$(dirname "$bin")")")/$(basename "$bin")
	log "$label: warm-up only"
	counted "$bin" 0
	base=$COUNT
	log "$label: warm-up and $ANSWERS answers"
	counted "$bin" "$ANSWERS"
	per=$(( (COUNT - base) / ANSWERS ))
	[ -n "$first" ] || first=$per
	printf '%-28s %14d %9.2fx\n' "$label" "$per" "$(awk -v a="$per" -v b="$first" 'BEGIN { print a / b }')"
done
