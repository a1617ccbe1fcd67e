#!/usr/bin/env bash
# peers.sh - dotproxy side by side with other DNS-over-TLS forwarders, on
# loopback only (127.0.0.0/8), with a table and an SVG chart.
#
# One run:
#   1. makes a throw-away CA and a certificate for dot.bench.test (SAN DNS and
#      IP:127.0.0.1) in a temporary directory;
#   2. starts unbound as the upstream: plain DNS and DoT on 127.0.0.1,
#      authoritative only for n1..n10000.bench.test (A, TTL 300), everything
#      else refused, one thread, remote control on loopback for its query
#      counter; by default with a small LD_PRELOAD shim (built with cc) that
#      sets TCP_NODELAY on the connections it accepts (unbound < 1.23 leaves
#      Nagle on, which adds the gap between queries to the latency of any
#      client pipelining on one connection);
#   3. measures the ceilings: dnsperf straight at the upstream over UDP and
#      over DoT (dnsperf -m dot);
#   4. for each peer (dotproxy, dnsdist, stubby, unbound, kresd: whichever are
#      installed) and each mode, starts it forwarding everything over DoT to
#      the upstream with the certificate checked against the throw-away CA,
#      and runs dnsperf over UDP against it: saturation (-c 10 -q 100, no -Q)
#      and fixed rate (-Q RATE, -v, p50/p99 from the per-query times), REPEATS
#      times each; medians are reported.
#        uncached: the peer's cache off, the 10,000 names cycled;
#        cached:   the peer's cache on and warmed, 100 names repeated
#                  (a peer without a cache runs uncached there: its upstream
#                  queries per answer stay 1.00);
#   5. prints a markdown table, writes it with the raw rows (TSV) to the
#      results directory, and draws the comparison with gnuplot as an SVG:
#      throughput on the left, latency at the fixed rate on the right.
#
# Usage: tests/bench/peers.sh [options]
#   --quick              1 repeat of 3 s per measurement (a smoke run)
#   --repeats N          repeats per measurement (default 3)
#   --duration S         seconds per dnsperf run (default 10)
#   --rate QPS           fixed rate of the latency runs (default 2000)
#   --peers LIST         among dotproxy,dnsdist,stubby,unbound,kresd (default
#                        all of them; missing ones are skipped and noted)
#   --modes LIST         uncached,cached (default both)
#   --no-ceilings        skip the runs straight at the upstream
#   --proxy PATH         the dotproxy binary (default build/dotproxy)
#   --out DIR            where peers.md, peers.tsv and peers.svg go
#                        (default tests/bench/results)
#   --plot TSV           only draw the chart of an earlier run's TSV (to
#                        --out DIR/peers.svg) and exit
#   --title TEXT         the chart's subtitle (default: date and machine)
#   --upstream-stock     run the upstream unbound exactly as shipped
#   --keep               keep the temporary directory (configs, logs, raw output)
#   -h, --help
#
# Needs unbound (and unbound-control), dnsperf, openssl, gnuplot
# (`scripts/deps.sh bench` installs them with the peers). Every process it
# starts is stopped by PID when it ends, also on failure or Ctrl-C; ports
# are the first free ones from 19053 upward. A full run (3 x 10 s, 5 peers,
# 2 modes) takes about 12 minutes; run it on a quiet machine.

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

REPEATS=3
DURATION=10
RATE=2000
CLIENTS=10
OUTSTANDING=100
PEERS="dotproxy,dnsdist,stubby,unbound,kresd"
MODES="uncached,cached"
CEILINGS=1
PROXY_SRC=${DOTPROXY_BIN:-$ROOT/build/dotproxy}
OUT=$SCRIPT_DIR/results
PLOT_ONLY=""
TITLE=""
NODELAY=1
KEEP=0

NAMES=10000
CACHED_NAMES=100
ZONE=bench.test
SNI=dot.$ZONE
HOST=127.0.0.1

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }
die() { echo "peers.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
list() { tr -s ', ' '\n' <<<"$1" | sed '/^$/d'; }

while [ $# -gt 0 ]; do
	case $1 in
	--quick) REPEATS=1; DURATION=3 ;;
	--repeats | --duration | --rate | --peers | --modes | --proxy | --out | --plot | --title)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		--repeats) REPEATS=$2 ;;
		--duration) DURATION=$2 ;;
		--rate) RATE=$2 ;;
		--peers) PEERS=$2 ;;
		--modes) MODES=$2 ;;
		--proxy) PROXY_SRC=$2 ;;
		--out) OUT=$2 ;;
		--plot) PLOT_ONLY=$2 ;;
		--title) TITLE=$2 ;;
		esac
		shift ;;
	--no-ceilings) CEILINGS=0 ;;
	--upstream-stock) NODELAY=0 ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
	shift
done

# ------------------------------------------------------------ the chart
# plot TSV SVG SUBTITLE: throughput (median QPS with the min-max range) and
# latency at the fixed rate (p50, p99) per peer and mode, side by side.
plot() {
	local tsv=$1 svg=$2 sub=$3 data
	command -v gnuplot >/dev/null || die "gnuplot not found (scripts/deps.sh bench)"
	data=$(mktemp "${TMPDIR:-/tmp}/peers-plot.XXXXXX") || return 1
	# label qps qmin qmax p50 p99, in the order of the TSV; ms in the TSV.
	awk -F'\t' 'NR > 1 && $3 != "" {
		printf "\"%s\\n%s\"\t%s\t%s\t%s\t%s\t%s\n", $1, $2, $3, $4, $5, $8, $9 }' "$tsv" >"$data"
	[ -s "$data" ] || { rm -f "$data"; die "no rows in $tsv"; }
	gnuplot <<EOF || { rm -f "$data"; return 1; }
set terminal svg size 1200,520 dynamic font "sans,11" background rgb "white"
set output "$svg"
set datafile separator "\t"
set multiplot layout 1,2 title "DNS-over-TLS forwarders side by side (tests/bench/peers.sh)\n{/*0.8 $sub}"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set grid ytics lc rgb "#dddddd"
set xtics rotate by -45 font ",9" nomirror
set ytics nomirror
unset key
set yrange [0:*]
set title "Throughput at saturation (dnsperf -c $CLIENTS -q $OUTSTANDING)"
set ylabel "answers per second (median, min-max)"
plot "$data" using 2:3:4:xtic(1) title "QPS" lc rgb "#3b75af"
set style histogram clustered gap 1
set key top left
set title "Latency at a fixed rate"
set ylabel "milliseconds"
plot "$data" using 5:xtic(1) title "p50" lc rgb "#519e3e", \
     "" using 6 title "p99" lc rgb "#ef8636"
unset multiplot
EOF
	rm -f "$data"
	log "chart written to $svg"
}

if [ -n "$PLOT_ONLY" ]; then
	[ -f "$PLOT_ONLY" ] || die "no such file: $PLOT_ONLY"
	mkdir -p "$OUT" || die "cannot make $OUT"
	plot "$PLOT_ONLY" "$OUT/peers.svg" "${TITLE:-$(basename "$PLOT_ONLY")}"
	exit $?
fi

for v in REPEATS DURATION RATE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} needs a positive integer"
done
for p in $(list "$PEERS"); do
	case $p in dotproxy | dnsdist | stubby | unbound | kresd) ;; *) die "unknown peer: $p" ;; esac
done
for m in $(list "$MODES"); do
	case $m in uncached | cached) ;; *) die "unknown mode: $m" ;; esac
done
for t in unbound unbound-control unbound-checkconf openssl dnsperf gnuplot awk ss; do
	command -v "$t" >/dev/null || die "missing tool: $t (scripts/deps.sh bench)"
done
if [ "$NODELAY" = 1 ] && ! command -v cc >/dev/null; then
	log "no C compiler: the upstream runs stock (Nagle on)"
	NODELAY=0
fi
mkdir -p "$OUT" || die "cannot make $OUT"

# ------------------------------------------------------------ workdir, cleanup
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-peers.XXXXXX") || die "mktemp failed"
RAW=$WORKDIR/raw
mkdir -p "$RAW"
RUNS=$WORKDIR/runs.tsv	# one line per dnsperf run
: >"$RUNS"
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

UP_PLAIN=$(free_port 19053) || die "no free port"
UP_DOT=$(free_port 19853) || die "no free port"
UP_CTRL=$(free_port 19953) || die "no free port"

# ------------------------------------------------------------ certificates
CERTS=$WORKDIR/certs
make_certs "$CERTS" "$SNI" "$RAW/openssl.log"
CA=$CERTS/ca.pem
chmod 0644 "$CERTS"/*.pem "$CERTS/server.key"

# ------------------------------------------------------------ queries, upstream
awk -v n="$NAMES" -v z="$ZONE" 'BEGIN { for (i = 1; i <= n; i++) printf "n%d.%s A\n", i, z }' \
    >"$WORKDIR/q-uncached.txt"
head -n "$CACHED_NAMES" "$WORKDIR/q-uncached.txt" >"$WORKDIR/q-cached.txt"
printf 'n1.%s A\n' "$ZONE" >"$WORKDIR/probe.txt"
{
	cat <<EOF
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
	statistics-cumulative: yes
	local-zone: "." refuse
	local-zone: "$ZONE." static
EOF
	awk -v n="$NAMES" -v z="$ZONE" 'BEGIN { for (i = 1; i <= n; i++)
		printf "\tlocal-data: \"n%d.%s. 300 IN A 127.0.%d.%d\"\n", i, z, int(i / 256) % 256, i % 256 }'
	printf 'remote-control:\n\tcontrol-enable: yes\n\tcontrol-interface: 127.0.0.1\n\tcontrol-port: %s\n\tcontrol-use-cert: no\n' "$UP_CTRL"
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

int
accept4(int s, struct sockaddr *sa, socklen_t *len, int flags)
{
	int (*real)(int, struct sockaddr *, socklen_t *, int) =
	    (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	int one = 1, fd = real(s, sa, len, flags);

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
accept(int s, struct sockaddr *sa, socklen_t *len)
{
	return accept4(s, sa, len, 0);
}
EOF
	cc -shared -fPIC -O2 -o "$WORKDIR/nodelay.so" "$WORKDIR/nodelay.c" -ldl \
	    >"$RAW/nodelay.log" 2>&1 || die "TCP_NODELAY shim: $(cat "$RAW/nodelay.log")"
	UP_ENV=(env "LD_PRELOAD=$WORKDIR/nodelay.so")
fi

# ------------------------------------------------------------ dnsperf
probe() {	# probe PORT TRANSPORT: 0 when n1 answers NOERROR
	dnsperf -s "$HOST" -p "$1" -m "$2" -d "$WORKDIR/probe.txt" -n 1 -c 1 -t 2 2>&1 |
	    grep -qF 'NOERROR 1 (100'
}
wait_ready() {	# wait_ready PID PORT TRANSPORT SECONDS
	local end=$((SECONDS + $4))
	while [ $SECONDS -lt $end ]; do
		kill -0 "$1" 2>/dev/null || return 2
		probe "$2" "$3" && return 0
		sleep 0.2
	done
	return 1
}
up_queries() {
	unbound-control -c "$WORKDIR/upstream.conf" stats_noreset 2>/dev/null |
	    awk -F= '$1 == "total.num.queries" { print $2; f = 1 } END { if (!f) print 0 }'
}
parse() {	# FILE -> completed lost qps avg_s non_noerror
	awk '/Queries completed:/ { c = $3 }
	    /Queries lost:/ { l = $3 }
	    /Queries per second:/ { q = $4 }
	    /Average Latency \(s\):/ && !a { a = $4 }
	    /Response codes:/ {
		line = $0; sub(/.*Response codes: */, "", line)
		n = split(line, p, ", ")
		for (i = 1; i <= n; i++) { split(p[i], kv, " "); if (kv[1] != "NOERROR") e += kv[2] }
	    }
	    END { printf "%d %d %.1f %.6f %d\n", c, l, q, a, e }' "$1"
}
percentiles() {	# FILE -> p50_s p99_s from dnsperf -v's per-query lines
	awk '/^> [A-Z]+ / && $NF ~ /^[0-9.]+$/ { print $NF }' "$1" | sort -g |
	    awk '{ v[NR] = $1 }
		function at(f,   i) { i = int(NR * f); if (i < NR * f) i++; if (i < 1) i = 1; return v[i] }
		END { if (NR == 0) print "nan nan"; else printf "%.6f %.6f\n", at(0.50), at(0.99) }'
}
dp() {	# dp OUTFILE DNSPERF-ARGS...: in the background, so a signal stops it
	local out=$1 pid
	shift
	dnsperf "$@" >"$out" 2>&1 </dev/null &
	pid=$!
	STARTED[$pid]=dnsperf
	wait "$pid"
	unset "STARTED[$pid]"
}
warm() {	# warm PORT TRANSPORT MODE
	if [ "$3" = cached ]; then
		dp /dev/null -s "$HOST" -p "$1" -m "$2" -d "$WORKDIR/q-cached.txt" -n 2 -c 1 -q 10
	else
		dp /dev/null -s "$HOST" -p "$1" -m "$2" -d "$WORKDIR/q-uncached.txt" -c "$CLIENTS" -Q 1000 -l 1
	fi
}

# measure PEER MODE PORT TRANSPORT QFILE: REPEATS x (saturation, fixed rate)
measure() {
	local peer=$1 mode=$2 port=$3 tr=$4 qf=$5 r out u0 u1 c l q a e p50 p99 tag
	tag=$(tr -c 'A-Za-z0-9_.-' '_' <<<"$peer-$mode")
	for ((r = 1; r <= REPEATS; r++)); do
		out=$RAW/$tag-sat-$r.txt
		u0=$(up_queries)
		dp "$out" -s "$HOST" -p "$port" -m "$tr" -d "$qf" -t 5 \
		    -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION"
		u1=$(up_queries)
		read -r c l q a e <<<"$(parse "$out")"
		printf '%s\t%s\tsat\t%s\t%s\t%s\t%s\t%s\t%s\tnan\tnan\n' "$peer" "$mode" \
		    "$c" "$l" "$q" "$a" "$e" "$((u1 - u0))" >>"$RUNS"
		log "  $peer/$mode run $r: $q qps, avg $(awk -v x="$a" 'BEGIN { printf "%.2f", x * 1000 }') ms, lost $l"
		out=$RAW/$tag-lat-$r.txt
		dp "$out" -s "$HOST" -p "$port" -m "$tr" -d "$qf" -t 5 \
		    -c "$CLIENTS" -q "$OUTSTANDING" -Q "$RATE" -l "$DURATION" -v
		read -r c l q a e <<<"$(parse "$out")"
		read -r p50 p99 <<<"$(percentiles "$out")"
		sed -i '/^> /d' "$out"
		printf '%s\t%s\tlat\t%s\t%s\t%s\t%s\t%s\t0\t%s\t%s\n' "$peer" "$mode" \
		    "$c" "$l" "$q" "$a" "$e" "$p50" "$p99" >>"$RUNS"
		log "  $peer/$mode run $r: at $RATE qps p50 $(awk -v x="$p50" 'BEGIN { printf "%.3f", x * 1000 }') ms, p99 $(awk -v x="$p99" 'BEGIN { printf "%.3f", x * 1000 }') ms"
	done
}

# ------------------------------------------------------------ peers
PROXY=$WORKDIR/dotproxy
HAS_CACHE=0
# peer_cmd PEER MODE PORT -> PEER_CMD (and its config files), 1 if missing
peer_cmd() {
	local peer=$1 mode=$2 port=$3 dir=$WORKDIR/$1-$2
	mkdir -p "$dir"
	case $peer in
	dotproxy)
		[ -x "$PROXY" ] || return 1
		PEER_CMD=("$PROXY" --listen "$HOST:$port" --upstream "$HOST@$UP_DOT#$SNI"
		    --ca-file "$CA" --log-level warn)
		if [ "$HAS_CACHE" = 1 ]; then
			if [ "$mode" = cached ]; then
				PEER_CMD+=(--cache-size 100000)
			else
				PEER_CMD+=(--cache-size 0)
			fi
		fi ;;
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
	interface: $HOST@$port
	port: $port
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
	forward-no-cache: $([ "$mode" = cached ] && echo no || echo yes)
EOF
		PEER_CMD=(unbound -d -c "$dir/unbound.conf") ;;
	kresd)
		command -v kresd >/dev/null || return 1
		{
			echo "net.ipv6 = false"
			echo "net.listen('$HOST', $port, { kind = 'dns' })"
			echo "net.outgoing_v4('$HOST')"
			echo "trust_anchors.remove('.')"
			echo "modules.unload('priming')"
			echo "modules.unload('detect_time_skew')"
			echo "cache.open(100 * MB, 'lmdb://$dir/cache')"
			[ "$mode" = cached ] || echo "policy.add(policy.all(policy.FLAGS({'NO_CACHE'})))"
			echo "policy.add(policy.all(policy.TLS_FORWARD({{'$HOST@$UP_DOT', hostname='$SNI', ca_file='$CA'}})))"
		} >"$dir/kresd.conf"
		PEER_CMD=(kresd -n -c "$dir/kresd.conf" "$dir") ;;
	dnsdist)
		command -v dnsdist >/dev/null || return 1
		{
			echo "setSecurityPollSuffix('')"
			echo "setLocal('$HOST:$port')"
			echo "setACL({'127.0.0.0/8'})"
			echo "newServer({address='$HOST:$UP_DOT', tls='openssl', subjectName='$SNI', validateCertificates=true, caStore='$CA', source='$HOST', checkName='n1.$ZONE.', checkType='A'})"
			[ "$mode" = cached ] && echo "getPool(''):setCache(newPacketCache(100000, {maxTTL=86400, minTTL=0}))"
		} >"$dir/dnsdist.conf"
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
round_robin_upstreams: 0
listen_addresses:
  - $HOST@$port
upstream_recursive_servers:
  - address_data: $HOST
    tls_port: $UP_DOT
    tls_auth_name: "$SNI"
EOF
		PEER_CMD=(stubby -C "$dir/stubby.yml") ;;
	esac
}

# ------------------------------------------------------------ run
START_TS=$SECONDS
start_bg upstream "$RAW/upstream.log" "${UP_ENV[@]}" unbound -d -c "$WORKDIR/upstream.conf"
UP_PID=$LAST_PID
wait_ready "$UP_PID" "$UP_PLAIN" udp 60 || die "upstream did not come up: $(tail -5 "$RAW/upstream.log")"
wait_ready "$UP_PID" "$UP_DOT" dot 10 || die "upstream DoT did not come up: $(tail -5 "$RAW/upstream.log")"
log "upstream unbound (pid $UP_PID): plain $HOST:$UP_PLAIN, DoT $HOST:$UP_DOT$([ "$NODELAY" = 1 ] && echo ', TCP_NODELAY shim')"

if [ -x "$PROXY_SRC" ]; then
	cp "$PROXY_SRC" "$PROXY" || die "cannot copy $PROXY_SRC"
	"$PROXY" --help 2>&1 | grep -q -- '--cache-size' && HAS_CACHE=1
fi

if [ "$CEILINGS" = 1 ]; then
	log "ceiling: dnsperf straight at the upstream, plain UDP"
	measure upstream-udp direct "$UP_PLAIN" udp "$WORKDIR/q-uncached.txt"
	log "ceiling: dnsperf -m dot straight at the upstream (no certificate check)"
	warm "$UP_DOT" dot uncached
	measure upstream-dot direct "$UP_DOT" dot "$WORKDIR/q-uncached.txt"
fi

for peer in $(list "$PEERS"); do
	for mode in $(list "$MODES"); do
		port=$(free_port 19400) || die "no free port for $peer"
		if ! peer_cmd "$peer" "$mode" "$port"; then
			log "$peer: not installed, skipped"
			grep -qxF "$peer: not installed" "$NOTES" || echo "$peer: not installed" >>"$NOTES"
			break
		fi
		[ "$peer" = dotproxy ] && [ "$mode" = cached ] && [ "$HAS_CACHE" = 0 ] &&
			echo "dotproxy: this build has no cache; its cached row ran uncached" >>"$NOTES"
		[ "$peer" = stubby ] && [ "$mode" = cached ] &&
			echo "stubby: no cache in stub mode; its cached row ran uncached" >>"$NOTES"
		log "$peer ($mode) on $HOST:$port"
		start_bg "$peer-$mode" "$RAW/$peer-$mode.log" "${PEER_CMD[@]}"
		pid=$LAST_PID
		if ! wait_ready "$pid" "$port" udp 30; then
			echo "$peer $mode: did not answer ($(tail -1 "$RAW/$peer-$mode.log"))" >>"$NOTES"
			stop_pid "$pid"
			continue
		fi
		warm "$port" udp "$mode"
		measure "$peer" "$mode" "$port" udp "$WORKDIR/q-$mode.txt"
		stop_pid "$pid"
	done
done
stop_pid "$UP_PID"
ELAPSED=$((SECONDS - START_TS))

# ------------------------------------------------------------ results
# One row per (peer, mode), in the order measured: medians over the repeats.
STAMP=$(date -u '+%Y-%m-%d %H:%M UTC')
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
TSV=$OUT/peers.tsv
awk -F'\t' -v OFS='\t' '
	function med(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return n == 0 ? "nan" : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) }
	{ k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
	$3 == "sat" { ns[k]++; Q[k, ns[k]] = $6; S[k, ns[k]] = $7; lost[k] += $5; err[k] += $8; up[k] += $9; got[k] += $4
		if (ns[k] == 1 || $6 < qmin[k]) qmin[k] = $6; if (ns[k] == 1 || $6 > qmax[k]) qmax[k] = $6 }
	$3 == "lat" { nl[k]++; A[k, nl[k]] = $7; P5[k, nl[k]] = $10; P9[k, nl[k]] = $11; lost[k] += $5; err[k] += $8 }
	END {
		print "peer", "mode", "qps", "qps_min", "qps_max", "sat_avg_ms", "avg_ms", "p50_ms", "p99_ms", "lost", "non_noerror", "upstream_per_answer"
		for (o = 1; o <= nk; o++) {
			k = order[o]; split(k, pm, SUBSEP)
			delete q; delete s; delete a; delete p5; delete p9
			for (i = 1; i <= ns[k]; i++) { q[i] = Q[k, i]; s[i] = S[k, i] }
			for (i = 1; i <= nl[k]; i++) { a[i] = A[k, i]; p5[i] = P5[k, i]; p9[i] = P9[k, i] }
			ratio = pm[1] ~ /^upstream-/ ? "-" : (got[k] > 0 ? sprintf("%.2f", up[k] / got[k]) : "nan")
			printf "%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%s\n", pm[1], pm[2],
			    med(q, ns[k]), qmin[k], qmax[k], med(s, ns[k]) * 1000, med(a, nl[k]) * 1000,
			    med(p5, nl[k]) * 1000, med(p9, nl[k]) * 1000, lost[k], err[k], ratio
		}
	}' "$RUNS" >"$TSV"

PARAMS="$STAMP, $(nproc) CPUs ($CPU) shared by dnsperf, the peer and the upstream; $REPEATS x $DURATION s per measurement, saturation -c $CLIENTS -q $OUTSTANDING, latency at $RATE qps; upstream unbound $(unbound -V 2>/dev/null | sed -n 's/^Version //p')$([ "$NODELAY" = 1 ] && echo ' + TCP_NODELAY shim'); dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'); wall time $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
{
	echo "## peers.sh run of $STAMP"
	echo
	echo "Parameters: $PARAMS."
	echo
	echo "| peer | mode | QPS (median) | QPS min-max | sat. avg lat ms | avg lat ms @$RATE qps | p50 ms | p99 ms | lost | non-NOERROR | upstream q per answer |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s-%s | %s | %s | %s | %s | %s | %s | %s |\n",
		$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$TSV"
	echo
	echo "upstream q per answer: queries the upstream counted / answers dnsperf got (1.00: every query went over"
	echo "DoT; 0.00: all from the peer's cache). upstream-* rows are the ceilings (dnsperf straight at the upstream)."
	if [ -s "$NOTES" ]; then
		echo
		sed 's/^/- /' "$NOTES"
	fi
} | tee "$OUT/peers.md"
plot "$TSV" "$OUT/peers.svg" "${TITLE:-$STAMP, $(nproc) CPUs, $REPEATS x $DURATION s, latency at $RATE qps}"
log "done in ${ELAPSED} s: $OUT/peers.md, $OUT/peers.tsv, $OUT/peers.svg"
