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
# dot_unbound_stop, dnsraw ARGS, run_dnsperf ARGS, and assert_* helpers
# that read bats' $output. Set E2E_KEEP=1 to keep $W_DIR (logs, configs).

W_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DOTPROXY=${DOTPROXY:-$W_ROOT/build/dotproxy}
DNSRAW=${DNSRAW:-$W_ROOT/build/tools/dnsraw}
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

# Ends processes we started: TERM, then KILL after 3 s. Only a PID whose
# command is one of ours is signalled (guards against PID reuse).
w_kill_pids() {
	local pid i comm live=()
	for pid in "$@"; do
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		case $comm in
		unbound|dotproxy|dnsperf|dig|kdig|dnsraw|timeout|ip|setpriv) ;;
		*) continue ;;
		esac
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null && live+=("$pid")
	done
	[ "${#live[@]}" -gt 0 ] || return 0
	for ((i = 0; i < 30; i++)); do
		for pid in "${live[@]}"; do
			kill -0 "$pid" 2>/dev/null && break
			pid=
		done
		[ -n "${pid:-}" ] || return 0
		sleep 0.1
	done
	for pid in "${live[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
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

# Writes an unbound config: w_unbound_conf NAME KIND(dot|plain) WHOAMI-ADDR
w_unbound_conf() {
	local name=$1 kind=$2 whoami=$3 i
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
		if [ "$kind" = dot ]; then
			echo "	interface: 192.0.2.2@853"
			echo "	interface: 2001:db8::2@853"
			echo "	tls-port: 853"
			echo "	tls-service-key: \"$W_DIR/pki/server.key\""
			echo "	tls-service-pem: \"$W_DIR/pki/server.pem\""
		else
			echo "	interface: 192.0.2.2@53"
			echo "	interface: 2001:db8::2@53"
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
		echo "remote-control:"
		echo "	control-enable: no"
	} >"$W_DIR/$name.conf"
}

# Starts one unbound in the upstream namespace in the foreground (-d).
w_unbound_start() {
	local name=$1
	: >"$W_DIR/$name.pid"
	(
		ip netns exec "$W_UP" unbound -d -c "$W_DIR/$name.conf" \
			</dev/null >>"$W_DIR/$name.log" 2>&1 &
		echo $! >"$W_DIR/$name.pid"
	) 3>&-
	w_track "$(cat "$W_DIR/$name.pid")"
}

# Polls until the DoT unbound answers (kdig over TLS with the test CA).
w_wait_dot() {
	local i
	for ((i = 0; i < 100; i++)); do
		if pod timeout 3 kdig @192.0.2.2 -p 853 +tls-ca="$W_CA" \
			+tls-hostname=dot.test +time=1 +retry=0 +short whoami.test A \
			2>/dev/null | grep -qx 203.0.113.1; then
			return 0
		fi
		sleep 0.1
	done
	echo "DoT unbound did not answer; its log:" >&2
	tail -n 20 "$W_DIR/unbound-dot.log" >&2
	return 1
}

w_wait_plain() {
	local i
	for ((i = 0; i < 100; i++)); do
		if pod timeout 3 dig @192.0.2.2 -p 53 +time=1 +tries=1 +short \
			whoami.test A 2>/dev/null | grep -qx 198.51.100.53; then
			return 0
		fi
		sleep 0.1
	done
	echo "plain unbound did not answer; its log:" >&2
	tail -n 20 "$W_DIR/unbound-plain.log" >&2
	return 1
}

dot_unbound_start() {
	w_unbound_start unbound-dot && w_wait_dot
}

# Kills the DoT unbound and waits until it is gone.
dot_unbound_stop() {
	local pid i
	pid=$(cat "$W_DIR/unbound-dot.pid" 2>/dev/null)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	: >"$W_DIR/unbound-dot.pid"
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
	w_unbound_conf unbound-dot dot 203.0.113.1
	w_unbound_conf unbound-plain plain 198.51.100.53
	w_unbound_start unbound-dot
	w_unbound_start unbound-plain
	w_wait_dot || return 1
	w_wait_plain || return 1
	w_queries_file
}

world_teardown() {
	local pid ns pids
	[ -n "${W_DIR:-}" ] && [ -d "$W_DIR" ] || return 0
	stop_proxy >/dev/null 2>&1 || true
	mapfile -t pids <"$W_DIR/pids"
	w_kill_pids "${pids[@]}"
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
# UID/GID 15353 with the test
# upstream, CA, debug logging and a 1.5 s timeout, unless ARGS override
# them. Waits until it listens on 127.0.0.1:15353 (TCP and UDP).
start_proxy() {
	local args=() envs n log i pid
	w_has_flag --upstream "$@" || args+=(--upstream "192.0.2.2@853#dot.test")
	w_has_flag --ca-file "$@" || args+=(--ca-file "$W_CA")
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
	(
		ip netns exec "$W_POD" env "${envs[@]}" setpriv --reuid "$W_PROXY_UID" \
			--regid "$W_PROXY_UID" --clear-groups \
			"$W_BIN" "${args[@]}" </dev/null >>"$log.stdout" 2>>"$log" &
		pid=$!
		echo "$pid" >"$W_DIR/proxy.pid.tmp"
		mv "$W_DIR/proxy.pid.tmp" "$W_DIR/proxy.pid"
		wait "$pid"
		echo $? >"$W_DIR/proxy.rc.tmp"
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
