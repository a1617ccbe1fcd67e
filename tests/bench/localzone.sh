#!/usr/bin/env bash
# localzone.sh - the local-zone path before and after the asynchronous
# netlink lookups (issue 9, "Measure"): two proxy binaries, one run each.
#
#   A  the main build (build/dotproxy, or --a PATH)
#   B  a binary built from commit d543107 (--b-commit), the last commit
#      before the asynchronous lookups, where the conntrack lookup of a
#      local-zone UDP query blocks the loop (up to 200 ms); built here in
#      a temporary `git worktree` with `make -j2` and removed at the end
#      (or given with --b PATH)
#
# The world is the transparent "pod" of the end-to-end tests, sourced from
# tests/e2e/helpers/pod.bash (documentation addresses only, in namespaces
# made here, with no route out): a pod namespace with dotproxy-init's
# capture, the proxy as UID 15353 with --transparent, CAP_NET_ADMIN (for
# conntrack) and --cache-size 0 (B has no cache), and dnsperf as the
# application (UID 1000) sending to the pod's resolver 192.0.2.2:53; an
# upstream namespace with unbound as the DoT upstream (192.0.2.2@853,
# names n1..n2000.test) and as the plain cluster resolver (192.0.2.2@53,
# names n1..n2000.svc.cluster.local). The capture is dotproxy-init's table
# without its packet-mark rule, so that A asks conntrack for every
# local-zone UDP query as B does (with the mark, A asks nothing; --mark
# adds a row for A that way). A's own counters on /metrics confirm it
# (conntrack lookups per local-zone query).
#
# Phases, each on a fresh proxy:
#   mix      dnsperf, half cluster.local names (plain DNS to the local
#            resolver, through a conntrack lookup each) and half DoT names:
#            saturation (-c 10 -q 100), then a fixed rate (--rate); proxy
#            CPU per answer = utime+stime from /proc/PID/stat over the run
#            divided by the answers
#   flood    the local resolver frozen (SIGSTOP), a paced sender (Python;
#            dnsperf slows down while its queries go unanswered) at
#            --flood-rate over --flood-names distinct cluster.local names: peak
#            descriptors (/proc/PID/fd, sampled every 50 ms) and peak RSS
#            (VmHWM at the end); the resolver is thawed afterwards
#
# Usage: tests/bench/localzone.sh [options]      (as root: namespaces)
#   --duration S      seconds per dnsperf run (default 20)
#   --quick           3 s per run (a smoke run, not a measurement)
#   --rate QPS        fixed rate of the second mix run (default 2000)
#   --flood-rate QPS  rate of the flood (default 5000)
#   --flood-names N   distinct names in the flood (default 50000)
#   --a PATH          binary A (default build/dotproxy)
#   --b PATH          binary B, already built (skips the worktree build)
#   --b-commit REV    what B is built from (default d543107)
#   --mark            also measure A with the mark rule (no lookup at all)
#   --out FILE        the table's copy (default tests/bench/results/localzone.md)
#   --keep            keep the work directory (logs, dnsperf output)
#   -h, --help
#
# The table goes to stdout and to --out. Every process started here is
# ended by PID, the namespaces and /etc/netns/<pod> are removed and the B
# worktree is deleted on exit, also after a failure or Ctrl-C.

set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

DURATION=20
RATE=2000
FLOOD_RATE=5000
FLOOD_NAMES=50000
A_SRC=$ROOT/build/dotproxy
B_SRC=
B_COMMIT=d543107
WITH_MARK=0
OUT=$SCRIPT_DIR/results/localzone.md
KEEP=0
NAMES=2000

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }
die() { echo "localzone.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--duration) [ $# -ge 2 ] || die "--duration needs a value"; DURATION=$2; shift ;;
	--quick) DURATION=3 ;;
	--rate) [ $# -ge 2 ] || die "--rate needs a value"; RATE=$2; shift ;;
	--flood-rate) [ $# -ge 2 ] || die "--flood-rate needs a value"; FLOOD_RATE=$2; shift ;;
	--flood-names) [ $# -ge 2 ] || die "--flood-names needs a value"; FLOOD_NAMES=$2; shift ;;
	--a) [ $# -ge 2 ] || die "--a needs a value"; A_SRC=$2; shift ;;
	--b) [ $# -ge 2 ] || die "--b needs a value"; B_SRC=$2; shift ;;
	--b-commit) [ $# -ge 2 ] || die "--b-commit needs a value"; B_COMMIT=$2; shift ;;
	--mark) WITH_MARK=1 ;;
	--out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
	shift
done
for v in DURATION RATE FLOOD_RATE FLOOD_NAMES; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v needs a positive integer"
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, nftables inside them)"
for t in dnsperf unbound kdig dig nft ip setpriv curl openssl git make awk getconf; do
	command -v "$t" >/dev/null || die "missing tool: $t (run: make deps; scripts/deps.sh bench)"
done
# The system's Python: the flood runs as UID 1000, which may not reach a
# per-user installation (pyenv shims under /root).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || die "no $PYTHON (apt-get install python3)"
[ -x "$A_SRC" ] || die "no binary A at $A_SRC (run: make)"
[ -z "$B_SRC" ] || [ -x "$B_SRC" ] || die "no binary B at $B_SRC"
CLK_TCK=$(getconf CLK_TCK)

# The e2e world: namespaces, CA, the unbound instances, the capture.
# world.bash takes the init binary from the main build.
export BUILD=${BUILD:-build}
# shellcheck source=tests/e2e/helpers/pod.bash
. "$ROOT/tests/e2e/helpers/pod.bash"
[ -x "$INIT_BIN" ] || die "no $INIT_BIN (run: make)"

# ------------------------------------------------------------ cleanup
B_TREE=
STARTED=()	# PIDs of background helpers started here (samplers, dnsperf)
cleanup() {
	local pid
	for pid in "${STARTED[@]}"; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -n "${W_DIR:-}" ] && [ -d "$W_DIR" ]; then
		[ "$KEEP" = 1 ] && E2E_KEEP=1 && log "keeping $W_DIR"
		# world_teardown writes its "kept" line to fd 3.
		pod_teardown 3>&2
	fi
	if [ -n "$B_TREE" ]; then
		git -C "$ROOT" worktree remove --force "$B_TREE" >/dev/null 2>&1 ||
			rm -rf "$B_TREE"
		git -C "$ROOT" worktree prune >/dev/null 2>&1
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ binary B
if [ -z "$B_SRC" ]; then
	B_TREE=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-localzone-b.XXXXXX") || die "mktemp failed"
	rmdir "$B_TREE"
	log "building B from $B_COMMIT in $B_TREE"
	git -C "$ROOT" worktree add --detach "$B_TREE" "$B_COMMIT" >/dev/null 2>&1 ||
		die "git worktree add $B_COMMIT failed"
	make -C "$B_TREE" -j2 >"$B_TREE.make.log" 2>&1 ||
		{ tail -20 "$B_TREE.make.log" >&2; rm -f "$B_TREE.make.log"; die "make in $B_TREE failed"; }
	rm -f "$B_TREE.make.log"
	B_SRC=$B_TREE/build/dotproxy
fi
# What each binary says it is ("dotproxy 0.1.0 (rev)").
A_REV=$("$A_SRC" --version 2>/dev/null | sed -n 's/.*(\(.*\)).*/\1/p')
B_REV=$("$B_SRC" --version 2>/dev/null | sed -n 's/.*(\(.*\)).*/\1/p')

# ------------------------------------------------------------ the world
# No query logging in the DoT unbound (pod.bash turns it on for the tests);
# the plain one serves the cluster names of the mix.
W_UNBOUND_EXTRA_dot=()
W_UNBOUND_EXTRA_plain=('local-zone: "cluster.local." static'
	'local-data: "web.ns.svc.cluster.local. 60 IN A 198.51.100.10"')
for ((i = 1; i <= NAMES; i++)); do
	W_UNBOUND_EXTRA_plain+=("local-data: \"n$i.svc.cluster.local. 60 IN A 198.51.100.$((i % 250 + 1))\"")
done
log "setting up the namespaces, the CA, unbound (DoT and plain) and the capture"
pod_setup >"${TMPDIR:-/tmp}/localzone-setup.$$.log" 2>&1 || {
	cat "${TMPDIR:-/tmp}/localzone-setup.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/localzone-setup.$$.log"
	die "world setup failed"
}
rm -f "${TMPDIR:-/tmp}/localzone-setup.$$.log"
RAW=$W_DIR/bench
mkdir -p "$RAW"
chmod 0755 "$RAW"
cp "$A_SRC" "$W_DIR/dotproxy-A" || die "cannot copy $A_SRC"
cp "$B_SRC" "$W_DIR/dotproxy-B" || die "cannot copy $B_SRC"
chmod 0755 "$W_DIR/dotproxy-A" "$W_DIR/dotproxy-B"

# The capture without the mark rule: every local-zone UDP query's
# destination must come from conntrack, in A as in B.
capture_without_mark() {
	local h
	for h in $(pod nft -a list chain inet dotproxy ct_zone |
		sed -n 's/.*meta mark set.* # handle \([0-9]*\)$/\1/p'); do
		pod nft delete rule inet dotproxy ct_zone handle "$h" || return 1
	done
	! pod nft list chain inet dotproxy ct_zone | grep -q 'meta mark set'
}
capture_with_mark() {
	pod "$INIT_BIN" >>"$RAW/init.log" 2>&1
}
capture_without_mark || die "could not remove the mark rule"

# Queries: the mix alternates a cluster name and a DoT name; the flood
# has distinct cluster names nobody serves.
awk -v n="$NAMES" 'BEGIN { for (i = 1; i <= n; i++) {
	printf "n%d.svc.cluster.local A\n", i; printf "n%d.test A\n", i } }' \
	>"$RAW/mix.txt"
chmod 0644 "$RAW"/*.txt
# The flood's sender. dnsperf sends at most ~1600 queries/s per thread
# while its queries stay unanswered (it walks its outstanding queries), so
# against a blocked path it would offer B less than A; this sender keeps
# the rate whatever comes back. A queries for f<i>.flood.svc.cluster.local
# (i cycling over NAMES) from 10 sockets, paced every 10 ms, for SECONDS,
# then it reads answers for WAIT more seconds and prints one line:
#   sent N answered N noerror N servfail N other N
cat >"$RAW/flood.py" <<'EOF_PY'
import select, socket, struct, sys, time

addr, rate, secs, names, wait = (sys.argv[1], int(sys.argv[2]),
    float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(10)]
for s in socks:
    s.setblocking(False)
counts = {"sent": 0, "answered": 0, "noerror": 0, "servfail": 0, "other": 0}

def query(i):
    name = b"".join(bytes([len(l)]) + l for l in
        (b"f%d" % (i % names + 1), b"flood", b"svc", b"cluster", b"local"))
    return struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + \
        name + b"\0" + struct.pack(">HH", 1, 1)

def drain(timeout):
    r, _, _ = select.select(socks, [], [], timeout)
    for s in r:
        while True:
            try:
                m = s.recv(4096)
            except BlockingIOError:
                break
            if len(m) < 4:
                continue
            counts["answered"] += 1
            rc = m[3] & 0xf
            key = "noerror" if rc == 0 else "servfail" if rc == 2 else "other"
            counts[key] += 1

start = time.monotonic()
tick = 0.01
while True:
    now = time.monotonic() - start
    if now >= secs:
        break
    due = min(int(now * rate) + 1, int(secs * rate))
    while counts["sent"] < due:
        i = counts["sent"]
        try:
            socks[i % len(socks)].sendto(query(i), (addr, 53))
        except (BlockingIOError, OSError):
            pass
        counts["sent"] += 1
    drain(tick)
end = time.monotonic() + wait
while time.monotonic() < end:
    drain(0.05)
print(" ".join("%s %d" % kv for kv in counts.items()))
EOF_PY
chmod 0644 "$RAW/flood.py"

# ------------------------------------------------------------ helpers
cpu_ticks() {	# utime + stime of PID, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
vm_kib() {	# vm_kib PID FIELD -> kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
nfds() {	# open descriptors of PID, without a fork
	local f=("/proc/$1/fd/"*)
	[ -e "${f[0]}" ] && echo "${#f[@]}" || echo 0
}
parse() {	# FILE -> completed lost qps avg_s non_noerror
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
		}
	    }
	    END { printf "%d %d %.0f %.6f %d\n", c, l, q, a, e }' "$1"
}
# dnsperf as the application (UID 1000) to the pod's resolver; the
# capture sends it to the proxy.
app_dnsperf() {	# app_dnsperf OUTFILE ARGS...
	local out=$1 pid
	shift
	ip netns exec "$W_POD" setpriv --reuid "$APP_UID" --regid "$APP_UID" \
		--clear-groups dnsperf -s 192.0.2.2 -p 53 "$@" >"$out" 2>&1 </dev/null &
	pid=$!
	STARTED+=("$pid")
	wait "$pid"
}
metric() {	# metric NAME{LABELS}: from the running proxy's /metrics, or -
	pod curl -s --max-time 3 "http://$OPS_METRICS/metrics" 2>/dev/null |
		awk -v s="$1" '$1 == s { print $2; f = 1; exit } END { if (!f) print "-" }'
}
OPS_METRICS=127.0.0.1:9153

# start VARIANT: a fresh proxy (binary of VARIANT), its PID in PID.
start() {
	local bin=$W_DIR/dotproxy-${1%%+*} args
	args=(--transparent --local-zone cluster.local --log-level warn
		--timeout 3000 --metrics "$OPS_METRICS")
	"$bin" --help 2>&1 | grep -q -- '--cache-size' && args+=(--cache-size 0)
	W_BIN=$bin
	W_SETPRIV_EXTRA=(--inh-caps +net_admin --ambient-caps +net_admin)
	start_proxy "${args[@]}" >>"$RAW/start.log" 2>&1 ||
		{ tail -20 "$RAW/start.log" >&2; return 1; }
	PID=$(proxy_pid)
	[ "$(cat "/proc/$PID/comm" 2>/dev/null)" = "dotproxy-${1%%+*}" ] ||
		{ echo "PID $PID is not the proxy" >&2; return 1; }
}

declare -A R=()	# R[variant.key] = value

# mix VARIANT: the saturation and the fixed-rate run on one proxy.
mix() {
	local v=$1 t0 t1 c l q a e run args
	start "$v" || return 1
	# Warm: the TLS connections to the upstream are open.
	app_dnsperf "$RAW/$v-warm.txt" -d "$RAW/mix.txt" -c 10 -Q 1000 -l 1 -t 5
	R[$v.ct0]=$(metric 'dotproxy_netlink_requests_total{lookup="conntrack"}')
	R[$v.local0]=$(metric dotproxy_local_sent_total)
	for run in sat fixed; do
		if [ "$run" = sat ]; then
			args=(-c 10 -q 100)
		else
			args=(-c 10 -q 100 -Q "$RATE")
		fi
		t0=$(cpu_ticks "$PID")
		app_dnsperf "$RAW/$v-$run.txt" -d "$RAW/mix.txt" "${args[@]}" \
			-l "$DURATION" -t 5
		t1=$(cpu_ticks "$PID")
		read -r c l q a e <<<"$(parse "$RAW/$v-$run.txt")"
		R[$v.$run.qps]=$q
		R[$v.$run.avg]=$(awk -v x="$a" 'BEGIN { printf "%.2f", x * 1000 }')
		R[$v.$run.lost]=$l
		R[$v.$run.err]=$e
		R[$v.$run.cpu]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$c" \
			'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-" }')
		log "  $v mix $run: $q qps, avg ${R[$v.$run.avg]} ms, lost $l, non-NOERROR $e, CPU ${R[$v.$run.cpu]} us/answer"
	done
	R[$v.ct1]=$(metric 'dotproxy_netlink_requests_total{lookup="conntrack"}')
	R[$v.local1]=$(metric dotproxy_local_sent_total)
	R[$v.cttimeouts]=$(metric 'dotproxy_netlink_timeouts_total{lookup="conntrack"}')
	R[$v.ctper]=$(awk -v a="${R[$v.ct0]}" -v b="${R[$v.ct1]}" \
		-v x="${R[$v.local0]}" -v y="${R[$v.local1]}" 'BEGIN {
		if (a == "-" || b == "-" || x == "-" || y == "-" || y == x) print "-"
		else printf "%.2f", (b - a) / (y - x) }')
	stop_proxy >>"$RAW/start.log" 2>&1
}

# flood VARIANT: the local resolver frozen, distinct cluster names at
# FLOOD_RATE; descriptors sampled, VmHWM at the end.
flood() {
	local v=$1 upid sampler flooder sent answered servfail
	start "$v" || return 1
	R[$v.fd0]=$(nfds "$PID")
	R[$v.rss0]=$(vm_kib "$PID" VmRSS)
	R[$v.nofile]=$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$PID/limits")
	upid=$(cat "$W_DIR/unbound-plain.pid")
	kill -STOP "$upid" || return 1
	(
		max=0
		while kill -0 "$PID" 2>/dev/null && [ ! -e "$RAW/$v-flood.stop" ]; do
			n=$(nfds "$PID")
			((n > max)) && max=$n && echo "$max" >"$RAW/$v-fdmax"
			sleep 0.05
		done
	) &
	sampler=$!
	STARTED+=("$sampler")
	# Answers are read until 4 s after the last query: past the proxy's
	# 3 s timeout, so anything unanswered by then was dropped.
	ip netns exec "$W_POD" setpriv --reuid "$APP_UID" --regid "$APP_UID" \
		--clear-groups "$PYTHON" "$RAW/flood.py" 192.0.2.2 "$FLOOD_RATE" \
		"$DURATION" "$FLOOD_NAMES" 4 >"$RAW/$v-flood.txt" 2>&1 </dev/null &
	flooder=$!
	STARTED+=("$flooder")
	wait "$flooder"
	touch "$RAW/$v-flood.stop"
	wait "$sampler"
	kill -CONT "$upid"
	read -r _ sent _ answered _ _ _ servfail _ _ <"$RAW/$v-flood.txt"
	[[ $sent =~ ^[0-9]+$ && $answered =~ ^[0-9]+$ && $servfail =~ ^[0-9]+$ ]] ||
		{ cat "$RAW/$v-flood.txt" >&2; return 1; }
	R[$v.fdmax]=$(cat "$RAW/$v-fdmax" 2>/dev/null || echo "${R[$v.fd0]}")
	R[$v.hwm]=$(vm_kib "$PID" VmHWM)
	R[$v.fsent]=$sent
	R[$v.fservfail]=$servfail
	R[$v.fnone]=$((sent - answered))
	log "  $v flood: fds ${R[$v.fd0]} -> peak ${R[$v.fdmax]} (limit ${R[$v.nofile]}), VmHWM ${R[$v.hwm]} kB, sent $sent, SERVFAIL $servfail, unanswered ${R[$v.fnone]}"
	stop_proxy >>"$RAW/start.log" 2>&1
}

# ------------------------------------------------------------ run
START_TS=$SECONDS
VARIANTS=(A B)
for v in "${VARIANTS[@]}"; do
	log "$v: mix ($DURATION s saturation, $DURATION s at $RATE qps)"
	mix "$v" || die "$v: the mix runs failed"
	log "$v: flood ($DURATION s at $FLOOD_RATE qps, the local resolver frozen)"
	flood "$v" || die "$v: the flood failed"
done
if [ "$WITH_MARK" = 1 ]; then
	capture_with_mark || die "dotproxy-init (with the mark) failed"
	VARIANTS+=(A+mark)
	log "A+mark: mix and flood with the mark rule (no conntrack lookup)"
	mix A+mark || die "A+mark: the mix runs failed"
	flood A+mark || die "A+mark: the flood failed"
fi
ELAPSED=$((SECONDS - START_TS))

# ------------------------------------------------------------ table
table() {
	local v h row mark_note=
	[ "$WITH_MARK" = 1 ] &&
		mark_note=" In the A+mark column dotproxy-init's mark rule gave the destination: no lookup."
	h="| | A: main (${A_REV:-?}) | B: ${B_REV:-?} (blocking lookups) |"
	[ "$WITH_MARK" = 1 ] && h="$h A+mark: main, no lookup |"
	echo "Local-zone path: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $DURATION s per run, one run, dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p') as UID $APP_UID through the capture, unbound $(unbound -V 2>/dev/null | sed -n 's/^Version //p'), cache off, wall time $ELAPSED s"
	echo
	echo "$h"
	echo "| --- | ---: | ---: |$([ "$WITH_MARK" = 1 ] && echo ' ---: |')"
	for row in \
		"mix, saturation: answers/s|sat.qps" \
		"mix, saturation: proxy CPU us/answer|sat.cpu" \
		"mix, saturation: avg latency ms|sat.avg" \
		"mix, saturation: lost / non-NOERROR|sat.lost:sat.err" \
		"mix, $RATE qps: answers/s|fixed.qps" \
		"mix, $RATE qps: proxy CPU us/answer|fixed.cpu" \
		"mix, $RATE qps: avg latency ms|fixed.avg" \
		"mix, $RATE qps: lost / non-NOERROR|fixed.lost:fixed.err" \
		"conntrack lookups per local-zone query (A's /metrics)|ctper" \
		"conntrack lookups timed out (A's /metrics)|cttimeouts" \
		"flood: descriptors at start / peak|fd0:fdmax" \
		"flood: peak RSS (VmHWM) MiB|hwm" \
		"flood: queries sent / SERVFAIL / unanswered|fsent:fservfail:fnone" \
		"open-file limit (soft/hard)|nofile"; do
		printf '| %s |' "${row%%|*}"
		for v in "${VARIANTS[@]}"; do
			local keys=${row#*|} k out=
			IFS=: read -ra ks <<<"$keys"
			for k in "${ks[@]}"; do
				local val=${R[$v.$k]:--}
				[ "$k" = hwm ] && [ "$val" != - ] &&
					val=$(awk -v x="$val" 'BEGIN { printf "%.1f", x / 1024 }')
				out=${out:+$out / }$val
			done
			printf ' %s |' "$out"
		done
		echo
	done
	echo
	echo "Each proxy ran with --transparent --local-zone cluster.local --timeout 3000, CAP_NET_ADMIN, cache off;"
	echo "the capture had no packet-mark rule, so every local-zone UDP query's destination came from conntrack"
	echo "(B: a blocking lookup in the loop; A: asynchronous).$mark_note"
	echo "The mix alternates n<i>.svc.cluster.local (plain DNS to unbound at 192.0.2.2@53) and n<i>.test (DoT"
	echo "to unbound at 192.0.2.2@853). CPU us/answer = utime+stime of the proxy over the run / answers."
	echo "The flood: $FLOOD_NAMES distinct cluster names at"
	echo "$FLOOD_RATE qps with the plain unbound stopped (SIGSTOP), descriptors sampled every 50 ms, VmHWM at"
	echo "the end, each phase on a fresh proxy. The flood's sender (a paced Python loop as UID $APP_UID: dnsperf"
	echo "slows down while its queries go unanswered) reads answers until 4 s after its last query, past the"
	echo "proxy's 3 s timeout (unanswered: no answer by then). One run: on a shared machine a row moves by"
	echo "tens of percent."
}
mkdir -p "$(dirname "$OUT")"
table | tee "$OUT"
