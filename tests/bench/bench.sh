#!/usr/bin/env bash
# bench.sh - dotproxy benchmark, everything on loopback (127.0.0.0/8).
#
# In one run it:
#   1. makes a throw-away CA and a server certificate for dot.bench.test
#      (SAN DNS:dot.bench.test and IP:127.0.0.1) in a temporary directory;
#   2. starts a real unbound as the upstream: plain DNS and DoT on 127.0.0.1,
#      authoritative only for n1..n10000.bench.test (A, TTL 300), everything
#      else refused, one thread, no remote control;
#   3. starts dotproxy forwarding to the upstream's DoT port and measures it with
#      dnsperf over UDP: saturation (-c 10 -q 100), fixed rate (-Q RATE, -v for
#      per-query latencies, p50/p99), and a run with ~1000 queries in flight
#      (-c 10 -q 1000) on a fresh proxy for its peak RSS;
#   4. measures the upstream's own DoT port the same way (dnsperf -m dot) as the
#      ceiling;
#   5. optionally (--peers) measures other DoT forwarders the same way, with
#      configurations written here, for CPU and memory comparisons;
#   5b. in cache mode, measures floor.c (a minimal recvmmsg/sendmmsg UDP
#      responder) the same way, and prints CPU per cached answer as a ratio
#      to it and, for the work above it, to each peer's;
#   6. prints one table: QPS, average / p50 / p99 latency, lost queries, answers
#      that were not NOERROR, CPU time per answered query (utime+stime of the
#      process under test, from /proc/PID/stat) and its peak RSS (VmHWM from
#      /proc/PID/status, read at the end of the run).
#
# Usage: tests/bench/bench.sh [options]
#   --duration S        seconds per dnsperf run (default 10)
#   --quick             3 s per run
#   --rate QPS          fixed rate of the latency run (default 2000)
#   --proxy PATH        dotproxy binary (default build/dotproxy; it is copied to
#                       the temporary directory first, so rebuilds do not disturb it)
#   --peers LIST        also measure these forwarders if installed: unbound,kresd,
#                       dnsdist,stubby or "all" (default: none)
#   --cached            cache mode: every forwarder's cache on (dotproxy's at its
#                       defaults, the peers' switched on), 100 names repeated and
#                       warmed first, so the runs measure answers from memory;
#                       the ~1000-in-flight runs then cycle all names, so their
#                       peak RSS is that of a cache filled with them. Without it
#                       no cache is on anywhere (dotproxy --cache-size 0)
#   --rounds N          cache mode: also N alternating rounds of the saturation
#                       run over the floor, dotproxy, --compare and every peer,
#                       all running side by side, and the CPU-per-answer ratios
#                       from the medians of the rounds (a single run moves by
#                       10 % between runs here; alternating rounds average out
#                       what the machine does meanwhile)
#   --compare PATH      in the rounds, also a second dotproxy binary (e.g. the
#                       tree before a change), labelled --compare-label
#                       (default dotproxy-B)
#   --upstream-stock    run unbound exactly as shipped; by default a small
#                       LD_PRELOAD shim (built with cc) sets TCP_NODELAY on the
#                       connections it accepts, since unbound < 1.23 leaves Nagle
#                       on and that adds the gap between queries to the latency of
#                       any client that pipelines on one connection
#   --keep              keep the temporary directory (configs, logs, raw output)
#   -h, --help
#
# Every process it starts is stopped by PID when it ends (also on failure or
# Ctrl-C). Ports are chosen from 18053 (plain), 18853 (DoT) and 18353 (proxy)
# upward, skipping any port that is already in use.

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

DURATION=10
RATE=2000
CLIENTS=10
OUTSTANDING=100
INFLIGHT_Q=1000
PROXY_SRC=${DOTPROXY_BIN:-$ROOT/build/dotproxy}
PEERS=""
NODELAY=1
KEEP=0
CACHED=0
LOAD_PIN=()
ROUNDS=0
COMPARE=""
COMPARE_LABEL=dotproxy-B

NAMES=10000
ZONE=bench.test
SNI=dot.$ZONE
HOST=127.0.0.1

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }
die() { echo "bench.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--duration) [ $# -ge 2 ] || die "--duration needs a value"; DURATION=$2; shift ;;
	--quick) DURATION=3 ;;
	--rate) [ $# -ge 2 ] || die "--rate needs a value"; RATE=$2; shift ;;
	--proxy) [ $# -ge 2 ] || die "--proxy needs a value"; PROXY_SRC=$2; shift ;;
	--peers) [ $# -ge 2 ] || die "--peers needs a value"; PEERS=$2; shift ;;
	--upstream-stock) NODELAY=0 ;;
	--cached) CACHED=1 ;;
	--rounds) [ $# -ge 2 ] || die "--rounds needs a value"; ROUNDS=$2; shift ;;
	--compare) [ $# -ge 2 ] || die "--compare needs a path"; COMPARE=$2; shift ;;
	--compare-label) [ $# -ge 2 ] || die "--compare-label needs a value"; COMPARE_LABEL=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
	shift
done
if ! [[ $ROUNDS =~ ^[0-9]+$ ]]; then
	die "--rounds needs a number"
fi
[ "$ROUNDS" = 0 ] || [ "$CACHED" = 1 ] || die "--rounds measures cached answers: add --cached"
[ -z "$COMPARE" ] || [ "$ROUNDS" -gt 0 ] || die "--compare is measured in the rounds: add --rounds N"
[ -z "$COMPARE" ] || [ -x "$COMPARE" ] || die "--compare: no executable at $COMPARE"
for v in DURATION RATE; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -eq 0 ]; then
		die "--${v,,} needs a positive integer"
	fi
done
[ "$PEERS" = all ] && PEERS="unbound,kresd,dnsdist,stubby"
[ "$PEERS" = none ] && PEERS=""
PEER_LIST=$(tr -s ', ' '\n' <<<"$PEERS" | sed '/^$/d')
for p in $PEER_LIST; do
	case $p in unbound | kresd | dnsdist | stubby) ;; *) die "unknown peer: $p" ;; esac
done

for t in unbound unbound-checkconf openssl dnsperf awk sort ss getconf; do
	command -v "$t" >/dev/null || die "missing tool: $t (run: make deps)"
done
[ -x "$PROXY_SRC" ] || die "no dotproxy binary at $PROXY_SRC (run: make build/dotproxy)"
if [ "$NODELAY" = 1 ] && ! command -v cc >/dev/null; then
	log "no C compiler: upstream runs stock (Nagle on)"
	NODELAY=0
fi
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------ workdir, cleanup
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-bench.XXXXXX") || die "mktemp failed"
RAW=$WORKDIR/raw
mkdir -p "$RAW"
ROWS=$WORKDIR/rows.tsv
: >"$ROWS"
NOTES=$WORKDIR/notes.txt
: >"$NOTES"
# shellcheck source=tests/bench/lib.sh
. "$SCRIPT_DIR/lib.sh"
cleanup() {
	stop_all
	if [ "$KEEP" = 1 ]; then log "kept $WORKDIR"; else rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ ports
UP_PLAIN=$(free_port 18053) || die "no free port near 18053"
UP_DOT=$(free_port 18853) || die "no free port near 18853"
PROXY_PORT=$(free_port 18353) || die "no free port near 18353"
PEER_PORT_BASE=18400

# ------------------------------------------------------------ certificates
CERTS=$WORKDIR/certs
make_certs "$CERTS" "$SNI" "$RAW/openssl.log"
CA=$CERTS/ca.pem

# ------------------------------------------------------------ upstream
awk -v n="$NAMES" -v z="$ZONE" 'BEGIN {
	for (i = 1; i <= n; i++)
		printf "n%d.%s A\n", i, z }' >"$WORKDIR/queries.txt"
printf 'n1.%s A\n' "$ZONE" >"$WORKDIR/probe.txt"
# The saturation and fixed-rate runs: every name, or in cache mode the
# first 100 over and over.
if [ "$CACHED" = 1 ]; then
	head -n 100 "$WORKDIR/queries.txt" >"$WORKDIR/run-queries.txt"
else
	cp "$WORKDIR/queries.txt" "$WORKDIR/run-queries.txt"
fi

{
	cat <<EOF
# benchmark upstream: authoritative for $ZONE only, loopback only
server:
	directory: "$WORKDIR"
	chroot: ""
	username: ""
	pidfile: ""
	do-daemonize: no
	use-syslog: no
	logfile: ""
	verbosity: 0
	num-threads: 1
	do-ip4: yes
	do-ip6: no
	interface: $HOST@$UP_PLAIN
	interface: $HOST@$UP_DOT
	port: $UP_PLAIN
	tls-port: $UP_DOT
	tls-service-key: "$CERTS/server.key"
	tls-service-pem: "$CERTS/server.pem"
	incoming-num-tcp: 1024
	tcp-idle-timeout: 30000
	access-control: 127.0.0.0/8 allow
	outgoing-interface: 127.0.0.1
	do-not-query-localhost: yes
	module-config: "iterator"
	local-zone: "." refuse
	local-zone: "$ZONE." static
EOF
	awk -v n="$NAMES" -v z="$ZONE" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "\tlocal-data: \"n%d.%s. 300 IN A 127.0.%d.%d\"\n",
			    i, z, int(i / 256) % 256, i % 256 }'
	printf 'remote-control:\n\tcontrol-enable: no\n'
} >"$WORKDIR/upstream.conf"
unbound-checkconf "$WORKDIR/upstream.conf" >"$RAW/checkconf.log" 2>&1 ||
	die "upstream config rejected: $(cat "$RAW/checkconf.log")"

UP_ENV=()
if [ "$NODELAY" = 1 ]; then
	cat >"$WORKDIR/nodelay.c" <<'EOF'
/* Benchmark upstream only: TCP_NODELAY on every TCP socket unbound accepts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static int
set_nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
accept4(int s, struct sockaddr *sa, socklen_t *len, int flags)
{
	accept4_fn real = (accept4_fn)dlsym(RTLD_NEXT, "accept4");

	return set_nodelay(real(s, sa, len, flags));
}

int
accept(int s, struct sockaddr *sa, socklen_t *len)
{
	return accept4(s, sa, len, 0);
}
EOF
	cc -shared -fPIC -O2 -o "$WORKDIR/nodelay.so" "$WORKDIR/nodelay.c" -ldl \
	    >"$RAW/nodelay-cc.log" 2>&1 || die "could not build the TCP_NODELAY shim: $(cat "$RAW/nodelay-cc.log")"
	UP_ENV=(env "LD_PRELOAD=$WORKDIR/nodelay.so")
fi

# ------------------------------------------------------------ dnsperf helpers
probe() {	# probe PORT MODE: 0 when n1 answers NOERROR
	dnsperf -s "$HOST" -p "$1" -m "$2" -d "$WORKDIR/probe.txt" -n 1 -c 1 -t 2 2>&1 |
	    grep -qF 'NOERROR 1 (100'
}
wait_ready() {	# wait_ready PID PORT MODE SECONDS
	local end=$((SECONDS + $4))
	while [ $SECONDS -lt $end ]; do
		kill -0 "$1" 2>/dev/null || return 2
		probe "$2" "$3" && return 0
		sleep 0.2
	done
	return 1
}
cpu_ticks() {	# utime + stime of PID, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
vm_kib() {	# vm_kib PID FIELD (VmHWM, VmRSS) -> kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
parse() {	# FILE -> completed lost qps avg_s non_noerror servfail
	awk '/Queries completed:/ { c = $3 }
	    /Queries lost:/ { l = $3 }
	    /Queries per second:/ { q = $4 }
	    /Average Latency \(s\):/ && !a { a = $4 }
	    /Response codes:/ {
		line = $0; sub(/.*Response codes: */, "", line)
		n = split(line, p, ", ")
		for (i = 1; i <= n; i++) {
			split(p[i], kv, " ")
			if (kv[1] != "NOERROR") e += kv[2]
			if (kv[1] == "SERVFAIL") s += kv[2]
		}
	    }
	    END { printf "%d %d %.0f %.6f %d %d\n", c, l, q, a, e, s }' "$1"
}
percentiles() {	# FILE -> p50_s p99_s, from the "> RCODE name type secs" lines of -v
	awk '/^> [A-Z]+ / && $NF ~ /^[0-9.]+$/ { print $NF }' "$1" | sort -g |
	    awk '{ v[NR] = $1 }
		function at(f,   i) { i = int(NR * f); if (i < NR * f) i++; if (i < 1) i = 1; return v[i] }
		END { if (NR == 0) print "nan nan"; else printf "%.6f %.6f\n", at(0.50), at(0.99) }'
}

# load OUTFILE DNSPERF-ARGS...: dnsperf in the background, so that a signal
# stops the script (and, through cleanup, dnsperf) at once
load() {
	local out=$1 dp
	shift
	"${LOAD_PIN[@]}" dnsperf "$@" >"$out" 2>&1 </dev/null &
	dp=$!
	STARTED[$dp]=dnsperf
	wait "$dp"
	unset "STARTED[$dp]"
}

# cpu_us TICKS ANSWERS DECIMALS: CPU microseconds per answer
cpu_us() {
	awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" -v p="$3" \
	    'BEGIN { if (n > 0) printf "%.*f", p, d / hz * 1e6 / n; else print "nan" }'
}

# run TARGET RUN PID PORT MODE OUTFILE DNSPERF-ARGS...: one dnsperf run against
# PORT, CPU of PID measured around it, one row added to $ROWS
run() {
	local target=$1 what=$2 pid=$3 port=$4 mode=$5 out=$6 t0 t1 c l q a e s p50=nan p99=nan cpu hwm
	shift 6
	t0=$(cpu_ticks "$pid")
	load "$out" -s "$HOST" -p "$port" -m "$mode" -d "${RUN_QUERIES:-$WORKDIR/run-queries.txt}" -t 5 "$@"
	t1=$(cpu_ticks "$pid")
	read -r c l q a e s <<<"$(parse "$out")"
	if grep -q '^> ' "$out"; then
		read -r p50 p99 <<<"$(percentiles "$out")"
		sed -i '/^> /d' "$out"
	fi
	cpu=$(cpu_us $((t1 - t0)) "$c" 1)
	hwm=$(vm_kib "$pid" VmHWM)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$what" \
	    "$q" "$a" "$p50" "$p99" "$l" "$e" "$s" "$cpu" "${hwm:-0}" "$c" >>"$ROWS"
	log "  $target $what: $q qps, avg $(awk -v x="$a" 'BEGIN { printf "%.3f", x * 1000 }') ms, p99 $p99 s, lost $l, non-NOERROR $e, cpu $cpu us/q, VmHWM ${hwm:-?} kB"
	LAST_SERVFAIL=$s
}
warm() {	# warm PORT MODE: opens upstream connections; in cache mode fills the cache
	load /dev/null -s "$HOST" -p "$1" -m "$2" -d "$WORKDIR/queries.txt" \
	    -c "$CLIENTS" -Q 1000 -l 1
	[ "$CACHED" = 0 ] || load /dev/null -s "$HOST" -p "$1" -m "$2" \
	    -d "$WORKDIR/run-queries.txt" -c 1 -q 10 -n 2
}

# measure_forwarder NAME PORT CMD...: saturation and fixed rate on one process,
# then the ~1000 in flight runs (measure_1k)
measure_forwarder() {
	local name=$1 port=$2 pid tag
	shift 2
	tag=$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_')
	start_bg "$name" "$RAW/$tag.log" "$@"
	pid=$LAST_PID
	if ! wait_ready "$pid" "$port" udp 30; then
		log "$name did not answer on $port: $(tail -3 "$RAW/$tag.log")"
		echo "$name: did not answer ($(tail -1 "$RAW/$tag.log"))" >>"$NOTES"
		stop_pid "$pid"
		return 1
	fi
	log "$name (pid $pid) on $HOST:$port, RSS after start $(vm_kib "$pid" VmRSS) kB"
	warm "$port" udp
	run "$name" "udp sat -c$CLIENTS -q$OUTSTANDING" "$pid" "$port" udp "$RAW/$tag-sat.txt" \
	    -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION"
	run "$name" "udp fixed $RATE qps" "$pid" "$port" udp "$RAW/$tag-lat.txt" \
	    -c "$CLIENTS" -q "$OUTSTANDING" -Q "$RATE" -l "$DURATION" -v
	stop_pid "$pid"
	measure_1k "$name" "$port" "" "$@"
}

# measure_1k NAME PORT SUFFIX CMD...: ~1000 queries outstanding, each run on a
# fresh process so that its VmHWM is that run's own. Over UDP a burst of 1000
# datagrams can overflow the listener's receive buffer (the lost column, and
# then fewer are really in flight); over TCP (10 connections x 100 pipelined)
# all of them reach the forwarder. Sets SERVFAILS.
measure_1k() {
	local name=$1 port=$2 suffix=$3 pid tag mode
	shift 3
	SERVFAILS=0
	for mode in udp tcp; do
		tag=$(printf '%s' "$name-1k-$mode$suffix" | tr -c 'A-Za-z0-9_.-' '_')
		start_bg "$name-1k" "$RAW/$tag.log" "$@"
		pid=$LAST_PID
		if ! wait_ready "$pid" "$port" udp 30; then
			stop_pid "$pid"
			return 1
		fi
		warm "$port" "$mode"
		RUN_QUERIES=$WORKDIR/queries.txt run "$name" \
		    "$mode sat -c$CLIENTS -q$INFLIGHT_Q$suffix" "$pid" "$port" "$mode" \
		    "$RAW/$tag.txt" -c "$CLIENTS" -q "$INFLIGHT_Q" -l "$DURATION"
		SERVFAILS=$((SERVFAILS + LAST_SERVFAIL))
		stop_pid "$pid"
	done
}

# ------------------------------------------------------------ run
START_TS=$SECONDS
start_bg upstream "$RAW/upstream.log" "${UP_ENV[@]}" unbound -d -c "$WORKDIR/upstream.conf"
UP_PID=$LAST_PID
wait_ready "$UP_PID" "$UP_PLAIN" udp 60 || die "upstream did not come up: $(tail -5 "$RAW/upstream.log")"
wait_ready "$UP_PID" "$UP_DOT" dot 10 || die "upstream DoT did not come up: $(tail -5 "$RAW/upstream.log")"
log "upstream unbound (pid $UP_PID): plain $HOST:$UP_PLAIN, DoT $HOST:$UP_DOT$([ "$NODELAY" = 1 ] && echo ', TCP_NODELAY shim')"

PROXY=$WORKDIR/dotproxy
cp "$PROXY_SRC" "$PROXY" || die "cannot copy $PROXY_SRC"
# One event loop unless told (BENCH_WORKERS): the figures stay comparable
# with earlier runs and with the peers' one-thread configurations here;
# tests/bench/workers.sh measures several.
PROXY_CMD=("$PROXY" --listen "$HOST:$PROXY_PORT" --upstream "$HOST@$UP_DOT#$SNI"
    --ca-file "$CA" --log-level warn)
# (A binary from before --workers has one loop anyway.)
"$PROXY" --help 2>/dev/null | grep -q -- '--workers' &&
	PROXY_CMD+=(--workers "${BENCH_WORKERS:-1}")
# No cache unless in cache mode (where dotproxy runs with its defaults).
[ "$CACHED" = 1 ] || PROXY_CMD+=(--cache-size 0)

measure_forwarder dotproxy "$PROXY_PORT" "${PROXY_CMD[@]}" ||
	die "dotproxy did not come up: $(tail -5 "$RAW/dotproxy.log")"
if [ "${SERVFAILS:-0}" -gt 0 ]; then
	# ~1000 in flight is more than the default 2 connections x 256 per
	# connection: measure again with room for all of them
	log "dotproxy answered $SERVFAILS SERVFAIL with ~$INFLIGHT_Q in flight; again with --max-inflight 1024"
	echo "dotproxy: $SERVFAILS SERVFAIL in the -q $INFLIGHT_Q runs with the default --max-inflight (256 per connection x 2 connections); the rows marked 'mi1024' ran with --max-inflight 1024" >>"$NOTES"
	measure_1k dotproxy "$PROXY_PORT" " mi1024" "${PROXY_CMD[@]}" --max-inflight 1024
fi

log "ceiling: dnsperf -m dot straight at the upstream (CPU and VmHWM columns: the upstream's)"
warm "$UP_DOT" dot
run upstream-dot "dot sat -c$CLIENTS -q$OUTSTANDING" "$UP_PID" "$UP_DOT" dot "$RAW/updot-sat.txt" \
    -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION"
run upstream-dot "dot fixed $RATE qps" "$UP_PID" "$UP_DOT" dot "$RAW/updot-lat.txt" \
    -c "$CLIENTS" -q "$OUTSTANDING" -Q "$RATE" -l "$DURATION" -v

# ------------------------------------------------------------ the floor
# In cache mode: floor.c, a minimal recvmmsg/sendmmsg responder (no cache,
# no parsing beyond the question), measured the same way in the same run:
# the least CPU an answer costs here. The ratios under the table use it.
if [ "$CACHED" = 1 ]; then
	if cc -O2 -o "$WORKDIR/floor" "$SCRIPT_DIR/floor.c" >"$RAW/floor-cc.log" 2>&1; then
		FLOOR_PORT=$(free_port 18453) || die "no free port for the floor"
		start_bg floor "$RAW/floor.log" "$WORKDIR/floor" "$HOST" "$FLOOR_PORT"
		if wait_ready "$LAST_PID" "$FLOOR_PORT" udp 30; then
			run floor "udp sat -c$CLIENTS -q$OUTSTANDING" "$LAST_PID" "$FLOOR_PORT" udp \
			    "$RAW/floor-sat.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION"
		fi
		stop_pid "$LAST_PID"
	else
		echo "floor: could not build floor.c ($(tail -1 "$RAW/floor-cc.log"))" >>"$NOTES"
	fi
fi

# ------------------------------------------------------------ optional peers
peer_start() {	# peer_start PEER PORT -> PEER_CMD, or 1 if not installed
	local dir=$WORKDIR/peer-$1
	mkdir -p "$dir"
	case $1 in
	unbound)
		cat >"$dir/unbound.conf" <<EOF
server:
	directory: "$dir"
	chroot: ""
	username: ""
	pidfile: ""
	do-daemonize: no
	use-syslog: no
	logfile: ""
	num-threads: 1
	do-ip6: no
	interface: $HOST@$2
	port: $2
	access-control: 127.0.0.0/8 allow
	outgoing-interface: 127.0.0.1
	do-not-query-localhost: no
	module-config: "iterator"
	qname-minimisation: no
	tls-cert-bundle: "$CA"
	local-zone: "test." nodefault
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: $HOST@$UP_DOT#$SNI
	forward-tls-upstream: yes
	forward-no-cache: $([ "$CACHED" = 1 ] && echo no || echo yes)
EOF
		PEER_CMD=(unbound -d -c "$dir/unbound.conf") ;;
	kresd)
		command -v kresd >/dev/null || return 1
		cat >"$dir/kresd.conf" <<EOF
net.ipv6 = false
net.listen('$HOST', $2, { kind = 'dns' })
net.outgoing_v4('$HOST')
trust_anchors.remove('.')
modules.unload('priming')
modules.unload('detect_time_skew')
cache.open(10 * MB, 'lmdb://$dir/cache')
$([ "$CACHED" = 1 ] || echo "policy.add(policy.all(policy.FLAGS({'NO_CACHE'})))")
policy.add(policy.all(policy.TLS_FORWARD({
	{'$HOST@$UP_DOT', hostname='$SNI', ca_file='$CA'}
})))
EOF
		PEER_CMD=(kresd -n -c "$dir/kresd.conf" "$dir") ;;
	dnsdist)
		command -v dnsdist >/dev/null || return 1
		cat >"$dir/dnsdist.conf" <<EOF
setSecurityPollSuffix('')
setLocal('$HOST:$2')
setACL({'127.0.0.0/8'})
newServer({address='$HOST:$UP_DOT', tls='openssl', subjectName='$SNI',
	validateCertificates=true, caStore='$CA', source='$HOST',
	checkName='n1.$ZONE.', checkType='A'})
$([ "$CACHED" = 1 ] && echo "getPool(''):setCache(newPacketCache(10000, {maxTTL=86400, minTTL=0}))")
EOF
		PEER_CMD=(dnsdist -C "$dir/dnsdist.conf" --supervised --disable-syslog) ;;
	stubby)
		command -v stubby >/dev/null || return 1
		cat >"$dir/stubby.yml" <<EOF
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list:
  - GETDNS_TRANSPORT_TLS
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_query_padding_blocksize: 0
tls_ca_file: "$CA"
appdata_dir: "$dir"
edns_client_subnet_private: 0
idle_timeout: 10000
listen_addresses:
  - $HOST@$2
dnssec: GETDNS_EXTENSION_FALSE
round_robin_upstreams: 0
upstream_recursive_servers:
  - address_data: $HOST
    tls_port: $UP_DOT
    tls_auth_name: "$SNI"
EOF
		PEER_CMD=(stubby -C "$dir/stubby.yml") ;;
	esac
}
for peer in $PEER_LIST; do
	port=$(free_port "$PEER_PORT_BASE") || die "no free port for $peer"
	if ! peer_start "$peer" "$port"; then
		log "$peer: not installed, skipped"
		echo "$peer: not installed" >>"$NOTES"
		continue
	fi
	log "peer $peer on port $port"
	measure_forwarder "$peer" "$port" "${PEER_CMD[@]}" || true
done

# ------------------------------------------------------------ rounds
# --rounds N: every target started once and kept running side by side (an
# idle one costs nothing), warmed, then N rounds of the saturation run, the
# order rotated each round. CPU per answer to two decimals, and the medians.
RROWS=$WORKDIR/rounds.tsv
: >"$RROWS"
if [ "$ROUNDS" -gt 0 ]; then
	declare -A RPID=() RPORT=()
	RT=()
	# Every server on the last CPU, dnsperf on the others: left to the
	# scheduler, a process that shares a core with dnsperf and one that
	# does not pay differently for the same wake-ups, and that placement
	# sticks to a process for the whole run (the same binary started twice
	# differed by 20 % in one run here). BENCH_PIN=0 leaves it unpinned.
	mapfile -t cpus < <(taskset -pc $$ 2>/dev/null | sed 's/.*: //' | tr ',' '\n' |
	    awk -F- '{ for (i = $1; i <= ($2 == "" ? $1 : $2); i++) print i }')
	if [ "${BENCH_PIN:-1}" = 1 ] && [ "${#cpus[@]}" -ge 2 ]; then
		SRV_CPU=${cpus[${#cpus[@]}-1]}
		GEN_CPUS=$(IFS=,; echo "${cpus[*]:0:${#cpus[@]}-1}")
		log "rounds: servers pinned to CPU $SRV_CPU, dnsperf to $GEN_CPUS"
		echo "rounds: every server pinned to CPU $SRV_CPU, dnsperf to CPU $GEN_CPUS" >>"$NOTES"
	fi
	rstart() {	# rstart LABEL PORT CMD...
		local label=$1 port=$2 tag
		shift 2
		tag=$(printf 'rounds-%s' "$label" | tr -c 'A-Za-z0-9_.-' '_')
		start_bg "$label" "$RAW/$tag.log" ${SRV_CPU:+taskset -c "$SRV_CPU"} "$@"
		if ! wait_ready "$LAST_PID" "$port" udp 30; then
			log "rounds: $label did not answer on $port: $(tail -1 "$RAW/$tag.log")"
			echo "rounds: $label did not answer" >>"$NOTES"
			stop_pid "$LAST_PID"
			return 1
		fi
		warm "$port" udp
		RPID[$label]=$LAST_PID
		RPORT[$label]=$port
		RT+=("$label")
	}
	if [ -x "$WORKDIR/floor" ]; then
		port=$(free_port 18500) || die "no free port for the rounds"
		rstart floor "$port" "$WORKDIR/floor" "$HOST" "$port" || true
	fi
	port=$(free_port 18500) || die "no free port for the rounds"
	PC=("${PROXY_CMD[@]}")
	PC[2]=$HOST:$port
	rstart dotproxy "$port" "${PC[@]}" || die "dotproxy did not come up for the rounds"
	if [ -n "$COMPARE" ]; then
		cp "$COMPARE" "$WORKDIR/dotproxy-compare" || die "cannot copy $COMPARE"
		port=$(free_port 18500) || die "no free port for the rounds"
		PC=("$WORKDIR/dotproxy-compare")
		nw=1
		"$WORKDIR/dotproxy-compare" --help 2>/dev/null | grep -q -- '--workers' || nw=0
		for ((i = 1; i < ${#PROXY_CMD[@]}; i++)); do
			# (a binary from before --workers has one loop anyway)
			if [ "$nw" = 0 ] && [ "${PROXY_CMD[$i]}" = --workers ]; then
				i=$((i + 1))
				continue
			fi
			PC+=("${PROXY_CMD[$i]}")
		done
		PC[2]=$HOST:$port
		rstart "$COMPARE_LABEL" "$port" "${PC[@]}" || true
	fi
	for peer in $PEER_LIST; do
		port=$(free_port 18500) || die "no free port for the rounds"
		peer_start "$peer" "$port" || continue
		rstart "$peer" "$port" "${PEER_CMD[@]}" || true
	done
	[ -z "${GEN_CPUS:-}" ] || LOAD_PIN=(taskset -c "$GEN_CPUS")
	for ((r = 0; r < ROUNDS; r++)); do
		log "round $((r + 1)) of $ROUNDS"
		for ((i = 0; i < ${#RT[@]}; i++)); do
			t=${RT[$(((i + r) % ${#RT[@]}))]}
			out=$RAW/round-$r-$(printf '%s' "$t" | tr -c 'A-Za-z0-9_.-' '_').txt
			t0=$(cpu_ticks "${RPID[$t]}")
			load "$out" -s "$HOST" -p "${RPORT[$t]}" -m udp \
			    -d "$WORKDIR/run-queries.txt" -t 5 -c "$CLIENTS" \
			    -q "$OUTSTANDING" -l "$DURATION"
			t1=$(cpu_ticks "${RPID[$t]}")
			read -r c l q a e s <<<"$(parse "$out")"
			cpu=$(cpu_us $((t1 - t0)) "$c" 3)
			printf '%s\t%s\t%s\t%s\n' "$t" "$r" "$q" "$cpu" >>"$RROWS"
			log "  $t: $q qps, $cpu us/answer"
		done
	done
	LOAD_PIN=()
	for t in "${RT[@]}"; do stop_pid "${RPID[$t]}"; done
fi

# ------------------------------------------------------------ table
ELAPSED=$((SECONDS - START_TS))
echo
echo "dotproxy benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $DURATION s per run, UDP from dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), upstream unbound $(unbound -V 2>/dev/null | sed -n 's/^Version //p')$([ "$NODELAY" = 1 ] && echo ' + TCP_NODELAY shim'), $([ "$CACHED" = 1 ] && echo "cache mode: every cache on, 100 names repeated (the -q $INFLIGHT_Q runs: $NAMES names cycled)" || echo "$NAMES names cycled (no cache anywhere)"), wall time ${ELAPSED} s"
echo
echo "| target | run | QPS | avg ms | p50 ms | p99 ms | lost | non-NOERROR | CPU us/query | peak RSS MiB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
	function ms(x) { return x == "nan" ? "-" : sprintf("%.3f", x * 1000) }
	{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n",
	    $1, $2, $3, ms($4), ms($5), ms($6), $7, $8, $10, $11 / 1024 }' "$ROWS"
echo
echo "CPU us/query = utime+stime of the process under test during that run / answers; peak RSS = its VmHWM"
echo "at the end of the run (each -q $INFLIGHT_Q run uses a fresh process). For upstream-dot rows both are the"
echo "upstream unbound's, which also did the TLS and DNS work that the forwarders' own rows do not include."
echo "lost in a udp -q $INFLIGHT_Q run: the burst of $INFLIGHT_Q datagrams overflowed the listener's socket receive"
echo "buffer (kernel UdpRcvbufErrors), and those slots stay lost for dnsperf's 5 s timeout; the tcp -q $INFLIGHT_Q"
echo "run (10 connections x 100 pipelined) has them all in flight."
if [ "$CACHED" = 1 ]; then
	echo
	echo "CPU per cached answer at saturation against the floor (floor.c, same run) and, for the work above"
	echo "the floor, against each peer's:"
	awk -F'\t' '$2 ~ /^udp sat/ && $1 != "upstream-dot" && !($1 in cpu) { cpu[$1] = $10 }
	    END {
		f = cpu["floor"]
		if (f <= 0) { print "(no floor measured)"; exit }
		for (t in cpu) if (t != "floor")
			printf "- %s: %.1f us, %.2fx the floor, %.1f us above it\n", t, cpu[t], cpu[t] / f, cpu[t] - f
		d = cpu["dotproxy"] - f
		for (t in cpu) if (t != "floor" && t != "dotproxy" && cpu[t] - f > 0)
			printf "- dotproxy above the floor / %s above the floor: %.2f\n", t, d / (cpu[t] - f)
	    }' "$ROWS"
fi
if [ -s "$RROWS" ]; then
	echo
	echo "Rounds: $ROUNDS alternating saturation runs (udp -c$CLIENTS -q$OUTSTANDING, $DURATION s each) of"
	echo "every target, running side by side; CPU us per cached answer, the median of the rounds, and its"
	echo "ratios (targets: dotproxy at most 1.15x the floor, its work above the floor at most half"
	echo "the best peer's):"
	echo
	echo "| target | QPS (median) | CPU us/answer (median) | min | max | x floor | above floor us |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	sort -t"$(printf '\t')" -k1,1 -k4,4g "$RROWS" | awk -F'\t' '
	    { n[$1]++; c[$1, n[$1]] = $4; q[$1, n[$1]] = $3; if (!($1 in seen)) { seen[$1] = 1; ord[++k] = $1 } }
	    function med(t, a,   m, i, j, v, x) {
		m = n[t]; for (i = 1; i <= m; i++) v[i] = a[t, i] + 0
		for (i = 2; i <= m; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
		return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
	    }
	    END {
		f = ("floor" in n) ? med("floor", c) : 0
		for (i = 1; i <= k; i++) { t = ord[i]; mc[t] = med(t, c) }
		for (i = 1; i <= k; i++) {
			t = ord[i]
			printf "| %s | %.0f | %.2f | %.2f | %.2f | %s | %s |\n", t, med(t, q), mc[t],
			    c[t, 1], c[t, n[t]], (f > 0 ? sprintf("%.3fx", mc[t] / f) : "-"),
			    (f > 0 ? sprintf("%.2f", mc[t] - f) : "-")
		}
		if (f <= 0) exit
		print ""
		d = mc["dotproxy"] - f
		for (i = 1; i <= k; i++) {
			t = ord[i]
			if (t == "floor" || t ~ /^dotproxy/ || mc[t] - f <= 0) continue
			printf "- dotproxy above the floor / %s above the floor: %.2f\n", t, d / (mc[t] - f)
		}
		for (i = 1; i <= k; i++) {
			t = ord[i]
			if (t != "floor" && t != "dotproxy" && t ~ /^dotproxy/)
				printf "- dotproxy CPU per answer / %s: %.3f\n", t, mc["dotproxy"] / mc[t]
		}
	    }'
fi
if [ -s "$NOTES" ]; then
	echo
	sed 's/^/note: /' "$NOTES"
fi
