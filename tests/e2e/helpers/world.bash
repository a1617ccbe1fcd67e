# shellcheck shell=bash
# $output and $status come from bats' run; stop_proxy's argument is optional.
# shellcheck disable=SC2154,SC2119,SC2120
# The end-to-end test world, sourced by every tests/e2e/proxy_*.bats.
#
#   pod ns  (dpt-<id>-pod)  veth0 192.0.2.1/24 2001:db8::1/64, lo; dotproxy
#   up ns   (dpt-<id>-up)   veth1 192.0.2.2/24 2001:db8::2/64, lo
#           unbound DoT   192.0.2.2@853 [2001:db8::2]@853  whoami.test A 203.0.113.1
#           unbound plain 192.0.2.2@53  [2001:db8::2]@53   whoami.test A 198.51.100.53
#           nft table inet dpt: a counter of SYNs to port 853
#
# No default route anywhere, nothing changes in the root namespace. All state
# lives in files under $W_DIR (bats runs every test in its own subshell, so a
# variable set by a test is not seen by teardown_file). world_teardown kills
# every process the world started, by PID, and removes the namespaces and
# the temp dir even when a test failed.
#
# Functions: world_setup, world_teardown, start_proxy [ARGS], stop_proxy,
# proxy_log, proxy_alive, pod CMD, up CMD, q / q6 DIG-ARGS (dig to the
# proxy in the pod over 127.0.0.1 / ::1), syn_count, dot_unbound_start,
# dot_unbound_stop, unbound_start / unbound_run / unbound_stop (more
# unbound instances), kill_tracked PID..., dnsraw ARGS, run_dnsperf ARGS,
# and assert_* helpers that read bats' $output. Set E2E_KEEP=1 to keep
# $W_DIR (logs, configs).
#
# Hooks for helpers that build a bigger world on this one (set them before
# world_setup / start_proxy; all are optional):
#   W_UNBOUND_EXTRA_dot, W_UNBOUND_EXTRA_plain  arrays of extra server:
#       lines for the world's DoT / plain unbound.conf (e.g. "log-queries: yes")
#   W_SETPRIV_EXTRA  array of extra setpriv arguments for start_proxy
#       (e.g. --inh-caps +net_admin --ambient-caps +net_admin)
#   W_NO_DEFAULT_UPSTREAM=1  start_proxy adds no --upstream / --ca-file
#       (so that a --config file is their only source)
#   W_GRACE  the proxy's lameduck grace in s (default 0; "default" keeps
#       the proxy's own)
#   W_CACHE=1  keep the proxy's cache on (it is off by default in tests
#       of the forwarding path, so every query reaches an upstream)
#   W_WORKERS  the proxy's --workers (default 1: the tests count one
#       loop's sessions and cache hits; "auto" is the proxy's default)

W_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# The build directory: $BUILD as make and tests/run.sh use it (relative to
# the repository root, or absolute), else build/.
case ${BUILD:-build} in
/*) W_BUILD=${BUILD} ;;
*) W_BUILD=$W_ROOT/${BUILD:-build} ;;
esac
DOTPROXY=${DOTPROXY:-$W_BUILD/dotproxy}
DNSRAW=${DNSRAW:-$W_BUILD/tools/dnsraw}
W_PROXY_UID=15353
W_PROXY_PORT=15353

# Runs a command in the pod / upstream namespace.
pod() { ip netns exec "$W_POD" "$@"; }
up() { ip netns exec "$W_UP" "$@"; }

# dig to the proxy, from the pod namespace: q [dig args...]
q() {
	pod timeout 20 dig @127.0.0.1 -p "$W_PROXY_PORT" +tries=1 +time=5 "$@"
}

# dnsraw from the pod namespace.
dnsraw() {
	pod timeout 60 "$DNSRAW" "$@"
}

# Remembers a PID the world started, so teardown can end it.
w_track() {
	echo "$1" >>"$W_DIR/pids"
}

# True while PID runs (a zombie no longer counts).
w_alive() {
	kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

# w_wait_gone TENTHS PID...: waits up to TENTHS x 0.1 s until no PID runs.
w_wait_gone() {
	local n=$1 i pid
	shift
	for ((i = 0; i < n; i++)); do
		for pid in "$@" ""; do
			[ -z "$pid" ] || ! w_alive "$pid" || break
		done
		[ -n "$pid" ] || return 0
		sleep 0.1
	done
	return 1
}

# kill_tracked PID...: ends processes the world started and tracked
# (w_track): SIGCONT and SIGTERM, then SIGKILL to those still running
# after 5 s; returns once they are gone. A PID that is not in
# $W_DIR/pids, or whose command is not one the world runs, is left alone
# (guards against PID reuse). Empty arguments are ignored.
kill_tracked() {
	local pid comm live=()
	for pid in "$@"; do
		[ -n "$pid" ] || continue
		grep -qxF -- "$pid" "$W_DIR/pids" 2>/dev/null || continue
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		case $comm in
		unbound|dotproxy|dnsperf|dig|kdig|dnsraw|timeout|ip|setpriv|python3) ;;
		*) continue ;;
		esac
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null && live+=("$pid")
	done
	[ "${#live[@]}" -gt 0 ] || return 0
	w_wait_gone 50 "${live[@]}" && return 0
	for pid in "${live[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	w_wait_gone 20 "${live[@]}" || true
}

w_certs() {
	local d=$W_DIR/pki
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
		openssl req -x509 -new -key ca.key -subj "/CN=dotproxy test CA" -days 2 \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
		openssl req -new -key server.key -subj "/CN=dot.test" -out server.csr
		cat >server.ext <<-EOF
			basicConstraints=CA:FALSE
			keyUsage=critical,digitalSignature
			extendedKeyUsage=serverAuth
			subjectAltName=DNS:dot.test,IP:192.0.2.2,IP:2001:db8::2
		EOF
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-days 2 -extfile server.ext -out server.pem
		# An unrelated CA, for the untrusted-CA test.
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-ca.key
		openssl req -x509 -new -key other-ca.key -subj "/CN=dotproxy unrelated CA" \
			-days 2 -addext "basicConstraints=critical,CA:TRUE" -out other-ca.pem
	) >"$W_DIR/openssl.log" 2>&1 || { cat "$W_DIR/openssl.log"; return 1; }
	chmod 0644 "$d"/*.pem
	W_CA=$d/ca.pem
	W_OTHER_CA=$d/other-ca.pem
	export W_CA W_OTHER_CA
}

# unbound_start NAME KIND ADDR... -- WHOAMI [LINE...]
# Starts one more unbound in the upstream namespace, in the foreground
# (-d), and waits until it answers. KIND is dot (TLS on ADDR@853 with the
# test certificate for dot.test) or plain (ADDR@53, UDP and TCP). It
# serves whoami.test A WHOAMI, big.test (100 A records) and n1..n2000.test,
# refuses everything else, and has the LINEs (unbound.conf syntax) added
# to its server: clause. Its files are $W_DIR/NAME.{conf,log,pid}; its PID
# is tracked, so world_teardown ends it. ADDR must be on veth1 already.
unbound_start() {
	local name=$1 kind=$2 addrs=() whoami port a l i
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		addrs+=("$1")
		shift
	done
	case $kind in
	dot) port=853 ;;
	plain) port=53 ;;
	*) port= ;;
	esac
	if [ -z "$port" ] || [ "${#addrs[@]}" -eq 0 ] || [ $# -lt 2 ]; then
		echo "usage: unbound_start NAME dot|plain ADDR... -- WHOAMI [LINE...]" >&2
		return 1
	fi
	whoami=$2
	shift 2
	{
		echo "server:"
		echo "	verbosity: 1"
		echo "	use-syslog: no"
		echo "	logfile: \"\""
		echo "	chroot: \"\""
		echo "	username: \"\""
		echo "	directory: \"$W_DIR\""
		echo "	pidfile: \"$W_DIR/$name.pidfile\""
		echo "	num-threads: 1"
		echo "	interface-automatic: no"
		echo "	do-ip4: yes"
		echo "	do-ip6: yes"
		echo "	do-udp: yes"
		echo "	do-tcp: yes"
		for a in "${addrs[@]}"; do
			echo "	interface: $a@$port"
		done
		if [ "$kind" = dot ]; then
			echo "	tls-port: 853"
			echo "	tls-service-key: \"$W_DIR/pki/server.key\""
			echo "	tls-service-pem: \"$W_DIR/pki/server.pem\""
		fi
		echo "	access-control: 0.0.0.0/0 allow"
		echo "	access-control: ::/0 allow"
		echo "	incoming-num-tcp: 256"
		echo "	tcp-idle-timeout: 30000"
		echo "	module-config: \"iterator\""
		echo "	local-zone: \".\" refuse"
		echo "	local-zone: \"test.\" static"
		echo "	local-data: \"whoami.test. 60 IN A $whoami\""
		for ((i = 1; i <= 100; i++)); do
			echo "	local-data: \"big.test. 60 IN A 203.0.113.$i\""
		done
		for ((i = 1; i <= 2000; i++)); do
			echo "	local-data: \"n$i.test. 60 IN A 198.51.100.$((i % 250 + 1))\""
		done
		for l in "$@"; do
			echo "	$l"
		done
		echo "remote-control:"
		echo "	control-enable: no"
	} >"$W_DIR/$name.conf"
	# How unbound_run tells that it answers.
	echo "$kind ${addrs[0]} $whoami" >"$W_DIR/$name.probe"
	unbound_run "$name"
}

# unbound_run NAME: (re)starts an unbound that unbound_start configured,
# with the same config, and waits up to 10 s until it answers whoami.test.
unbound_run() {
	local name=$1 kind addr whoami i
	read -r kind addr whoami <"$W_DIR/$name.probe" || return 1
	: >"$W_DIR/$name.pid"
	(
		ip netns exec "$W_UP" unbound -d -c "$W_DIR/$name.conf" \
			</dev/null >>"$W_DIR/$name.log" 2>&1 &
		echo $! >"$W_DIR/$name.pid"
	) 3>&-
	w_track "$(cat "$W_DIR/$name.pid")"
	for ((i = 0; i < 100; i++)); do
		if [ "$kind" = dot ]; then
			pod timeout 3 kdig @"$addr" -p 853 +tls-ca="$W_CA" \
				+tls-hostname=dot.test +time=1 +retry=0 +short whoami.test A
		else
			pod timeout 3 dig @"$addr" -p 53 +time=1 +tries=1 +short \
				whoami.test A
		fi 2>/dev/null | grep -qxF "$whoami" && return 0
		sleep 0.1
	done
	echo "unbound $name ($kind on $addr) did not answer; its log:" >&2
	tail -n 20 "$W_DIR/$name.log" >&2
	return 1
}

# unbound_stop NAME: ends that unbound (kill_tracked) and waits until it
# is gone. Nothing happens if it is not running.
unbound_stop() {
	local pid
	pid=$(cat "$W_DIR/$1.pid" 2>/dev/null) || return 0
	: >"$W_DIR/$1.pid"
	kill_tracked "$pid"
}

# The world's DoT unbound, for tests that take the upstream away.
dot_unbound_start() {
	unbound_run unbound-dot
}

dot_unbound_stop() {
	unbound_stop unbound-dot
}

# Number of TCP SYNs that reached port 853 in the upstream namespace.
syn_count() {
	up nft list chain inet dpt input |
		sed -n 's/.*tcp dport 853 .*counter packets \([0-9]*\) .*/\1/p'
}

world_setup() {
	local id=${BASHPID}${RANDOM}
	W_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dpt-e2e.XXXXXX")
	chmod 0755 "$W_DIR"
	W_POD=dpt-$id-pod
	W_UP=dpt-$id-up
	export W_DIR W_POD W_UP DOTPROXY DNSRAW
	# A private copy of the binary: a concurrent relink of build/dotproxy
	# cannot change or break it under a running file.
	W_BIN=$W_DIR/dotproxy
	cp "$DOTPROXY" "$W_BIN" 2>/dev/null && chmod 0755 "$W_BIN" || W_BIN=$DOTPROXY
	export W_BIN
	echo "$W_POD" >"$W_DIR/netns"
	echo "$W_UP" >>"$W_DIR/netns"
	: >"$W_DIR/pids"

	ip netns add "$W_POD" || return 1
	ip netns add "$W_UP" || return 1
	ip -n "$W_POD" link set lo up
	ip -n "$W_UP" link set lo up
	ip -n "$W_POD" link add veth0 type veth peer name veth1 netns "$W_UP" || return 1
	ip -n "$W_POD" addr add 192.0.2.1/24 dev veth0
	ip -n "$W_POD" addr add 2001:db8::1/64 dev veth0 nodad
	ip -n "$W_UP" addr add 192.0.2.2/24 dev veth1
	ip -n "$W_UP" addr add 2001:db8::2/64 dev veth1 nodad
	ip -n "$W_POD" link set veth0 up
	ip -n "$W_UP" link set veth1 up

	up nft -f - <<-'EOF' || return 1
		table inet dpt {
			chain input {
				type filter hook input priority 0; policy accept;
				tcp dport 853 tcp flags & (syn | ack) == syn counter
			}
		}
	EOF

	w_certs || return 1
	unbound_start unbound-dot dot 192.0.2.2 2001:db8::2 -- 203.0.113.1 \
		"${W_UNBOUND_EXTRA_dot[@]}" || return 1
	unbound_start unbound-plain plain 192.0.2.2 2001:db8::2 -- 198.51.100.53 \
		"${W_UNBOUND_EXTRA_plain[@]}" || return 1
	w_queries_file
}

world_teardown() {
	local pid ns pids
	[ -n "${W_DIR:-}" ] && [ -d "$W_DIR" ] || return 0
	stop_proxy >/dev/null 2>&1 || true
	mapfile -t pids <"$W_DIR/pids"
	kill_tracked "${pids[@]}"
	# Anything still running inside our namespaces is ours too.
	while read -r ns; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done <"$W_DIR/netns"
	if [ -n "${E2E_KEEP:-}" ]; then
		echo "# kept $W_DIR" >&3
	else
		rm -rf "$W_DIR"
	fi
}

# The current proxy's log file.
proxy_log() {
	cat "$W_DIR/proxy.logpath"
}

proxy_pid() {
	cat "$W_DIR/proxy.pid" 2>/dev/null
}

proxy_alive() {
	local pid
	pid=$(proxy_pid)
	[ -n "$pid" ] && [ ! -s "$W_DIR/proxy.rc" ] && kill -0 "$pid" 2>/dev/null
}

# Prints the tail of the proxy log (for failure output).
# Per-query debug lines are left out; the file itself has everything.
show_proxy_log() {
	local f
	f=$(proxy_log 2>/dev/null) || return 0
	[ ! -e "$W_DIR/log-shown" ] || return 0
	touch "$W_DIR/log-shown"
	echo "--- proxy log ($f), last ${1:-40} lines without per-query lines:"
	grep -v 'msg="query"' "$f" | tail -n "${1:-40}"
}

# True if any of the words is among the arguments (as --word or --word=...).
w_has_flag() {
	local flag=$1 a
	shift
	for a in "$@"; do
		[[ $a == "$flag" || $a == "$flag="* ]] && return 0
	done
	return 1
}

# Starts the proxy ($W_BIN, a copy of $DOTPROXY) in the pod namespace as
# UID/GID 15353 (setpriv, plus the W_SETPRIV_EXTRA arguments) with the test
# upstream and CA (not with W_NO_DEFAULT_UPSTREAM=1), debug logging and a
# 1.5 s timeout, unless ARGS override them. Waits until it listens on
# 127.0.0.1:15353 (TCP and UDP).
start_proxy() {
	local args=() envs n log i pid
	if [ "${W_NO_DEFAULT_UPSTREAM:-}" != 1 ]; then
		w_has_flag --upstream "$@" || args+=(--upstream "192.0.2.2@853#dot.test")
		w_has_flag --ca-file "$@" || args+=(--ca-file "$W_CA")
	fi
	w_has_flag --log-level "$@" || args+=(--log-level debug)
	w_has_flag --timeout "$@" || args+=(--timeout 1500)
	args+=("$@")

	n=$(($(cat "$W_DIR/proxy.n" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$W_DIR/proxy.n"
	log=$W_DIR/proxy.$n.log
	echo "$log" >"$W_DIR/proxy.logpath"
	echo "# dotproxy ${args[*]}" >"$log"
	chmod 0644 "$log"
	rm -f "$W_DIR/proxy.pid" "$W_DIR/proxy.rc"
	# The lameduck grace after SIGTERM (default 3 s) is set to 0 through
	# the environment (ignored if the proxy does not know it), so that each
	# test's stop is quick; W_GRACE=default keeps the proxy's default.
	if [ "${W_GRACE:-0}" = default ]; then
		envs=()
	else
		envs=("DOTPROXY_SHUTDOWN_GRACE=${W_GRACE:-0}")
	fi
	# Tests of the forwarding path see every query reach an upstream:
	# the cache is off unless a file sets W_CACHE=1 (cache.bats does;
	# a --cache-size flag beats this too).
	[ "${W_CACHE:-0}" = 1 ] || envs+=("DOTPROXY_CACHE_SIZE=0")
	# One event loop unless a file sets W_WORKERS (upgrade.bats tests
	# several): these tests count one loop's sessions, back-offs and
	# cache hits, which N share-nothing loops each have on their own.
	envs+=("DOTPROXY_WORKERS=${W_WORKERS:-1}")
	(
		ip netns exec "$W_POD" env "${envs[@]}" setpriv --reuid "$W_PROXY_UID" \
			--regid "$W_PROXY_UID" --clear-groups "${W_SETPRIV_EXTRA[@]}" \
			"$W_BIN" "${args[@]}" </dev/null >>"$log.stdout" 2>>"$log" &
		pid=$!
		echo "$pid" >"$W_DIR/proxy.pid.tmp"
		mv "$W_DIR/proxy.pid.tmp" "$W_DIR/proxy.pid"
		# Not "wait; echo $?": under bats errexit a non-zero status would
		# end this watcher before it records the status.
		rc=0
		wait "$pid" || rc=$?
		echo "$rc" >"$W_DIR/proxy.rc.tmp"
		mv "$W_DIR/proxy.rc.tmp" "$W_DIR/proxy.rc"
	) 3>&- >/dev/null 2>&1 &

	for ((i = 0; i < 50; i++)); do
		[ -s "$W_DIR/proxy.pid" ] && break
		sleep 0.1
	done
	pid=$(proxy_pid)
	[ -n "$pid" ] || { echo "proxy did not start" >&2; return 1; }
	w_track "$pid"
	for ((i = 0; i < 50; i++)); do
		if [ -s "$W_DIR/proxy.rc" ]; then
			echo "proxy exited with $(cat "$W_DIR/proxy.rc") at start" >&2
			show_proxy_log >&2
			return 1
		fi
		if pod ss -lntH "sport = :$W_PROXY_PORT" | grep -q "127.0.0.1:$W_PROXY_PORT" &&
			pod ss -lnuH "sport = :$W_PROXY_PORT" | grep -q "127.0.0.1:$W_PROXY_PORT"; then
			return 0
		fi
		sleep 0.1
	done
	echo "proxy does not listen on 127.0.0.1:$W_PROXY_PORT after 5 s" >&2
	show_proxy_log >&2
	return 1
}

# Sends SIGTERM to the proxy, waits up to ${1:-10} s, returns its exit
# status (124 if it did not exit; it is then killed).
stop_proxy() {
	local pid rc i limit=$((${1:-10} * 10))
	pid=$(proxy_pid)
	[ -n "$pid" ] || return 0
	if [ ! -s "$W_DIR/proxy.rc" ]; then
		kill -TERM "$pid" 2>/dev/null
	fi
	for ((i = 0; i < limit; i++)); do
		[ -s "$W_DIR/proxy.rc" ] && break
		# Gone without a status: its watcher was killed (bats timeout).
		if ! kill -0 "$pid" 2>/dev/null; then
			sleep 0.2
			[ -s "$W_DIR/proxy.rc" ] && break
			echo "proxy exited, status unknown (watcher gone)" >&2
			rm -f "$W_DIR/proxy.pid"
			return 125
		fi
		sleep 0.1
	done
	if [ ! -s "$W_DIR/proxy.rc" ]; then
		echo "proxy did not exit within ${1:-10} s of SIGTERM" >&2
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 20; i++)); do
			[ -s "$W_DIR/proxy.rc" ] && break
			sleep 0.1
		done
		rm -f "$W_DIR/proxy.pid"
		return 124
	fi
	rc=$(cat "$W_DIR/proxy.rc")
	rm -f "$W_DIR/proxy.pid"
	if [ "$rc" -ne 0 ]; then
		echo "proxy exited with status $rc after SIGTERM" >&2
		show_proxy_log 60 >&2
	fi
	return "$rc"
}

# Standard per-test hooks for files that want a default proxy per test:
# a fresh proxy before each test, and after it the proxy must exit 0 on
# SIGTERM (an ASan build exits non-zero when it leaks).
proxy_test_setup() {
	start_proxy "$@"
}

proxy_test_teardown() {
	local rc=0
	[ -n "${BATS_TEST_COMPLETED:-}" ] || show_proxy_log 30
	rm -f "$W_DIR/log-shown"
	proxy_alive || [ -s "$W_DIR/proxy.rc" ] || return 0
	stop_proxy || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "teardown: proxy exit status $rc on SIGTERM (want 0)"
		return 1
	fi
}

# ---- queries and assertions used by the proxy_*.bats files ----

# dig to the proxy over IPv6 (::1).
q6() {
	pod timeout 20 dig @::1 -p "$W_PROXY_PORT" +tries=1 +time=5 "$@"
}

# Writes $W_DIR/queries.txt for dnsperf: 5000 lines over n1..n2000.test A.
w_queries_file() {
	local i
	for ((i = 0; i < 5000; i++)); do
		echo "n$((i % 2000 + 1)).test A"
	done >"$W_DIR/queries.txt"
}

# dnsperf against the proxy from the pod namespace, over queries.txt.
run_dnsperf() {
	run pod timeout 120 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" \
		-d "$W_DIR/queries.txt" "$@"
}

w_fail() {
	echo "$*"
	echo "--- output:"
	echo "$output"
	show_proxy_log
	return 1
}

# $output (dig) has NOERROR and whoami.test A 203.0.113.1, the DoT answer.
assert_dot_answer() {
	grep -q 'status: NOERROR,' <<<"$output" ||
		w_fail "want status NOERROR" || return 1
	grep -Eq '^whoami\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+203\.0\.113\.1$' \
		<<<"$output" || w_fail "want whoami.test A 203.0.113.1 (the DoT answer)" || return 1
	! grep -q '198\.51\.100\.53' <<<"$output" ||
		w_fail "got the plain resolver's answer" || return 1
}

# $output (dig) has status $1.
assert_status() {
	grep -q "status: $1," <<<"$output" || w_fail "want status $1"
}

# Size of the message dig received, from ";; MSG SIZE  rcvd: N".
msg_size() {
	sed -n 's/^;; MSG SIZE  rcvd: \([0-9]*\)$/\1/p' <<<"$output" | tail -n 1
}

# True if dig's (last) header has the TC flag.
has_tc() {
	grep -E '^;; flags:' <<<"$output" | tail -n 1 | grep -Eq ' tc( |;)'
}

answer_count() {
	sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' <<<"$output" | tail -n 1
}

# $output (dnsperf): some queries sent, none lost, every answer NOERROR.
assert_dnsperf_clean() {
	local sent lost noerror
	sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' <<<"$output")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' <<<"$output")
	noerror=$(sed -n 's/^ *Response codes:.*NOERROR \([0-9]*\) .*/\1/p' <<<"$output")
	[ -n "$sent" ] && [ "$sent" -gt 0 ] || w_fail "dnsperf sent nothing" || return 1
	[ "$lost" = 0 ] || w_fail "dnsperf lost $lost of $sent queries" || return 1
	[ "$noerror" = "$sent" ] ||
		w_fail "want NOERROR for all $sent, got ${noerror:-0} NOERROR" || return 1
	! grep -Eq 'Response codes:.*(SERVFAIL|REFUSED|FORMERR|NXDOMAIN)' <<<"$output" ||
		w_fail "dnsperf saw error rcodes" || return 1
}

# A field of dnsraw's "reply ..." line: raw_field rcode
raw_field() {
	sed -n "s/^reply.* $1=\([0-9a-f]*\).*/\1/p" <<<"$output" | head -n 1
}

# setup_file for every proxy_*.bats: the binaries must exist, then the world.
world_file_setup() {
	[ -x "$DOTPROXY" ] ||
		{ echo "no proxy binary at $DOTPROXY (make build/dotproxy)" >&2; return 1; }
	[ -x "$DNSRAW" ] ||
		{ echo "no $DNSRAW (make build/tools/dnsraw)" >&2; return 1; }
	world_setup || { world_teardown; return 1; }
}
