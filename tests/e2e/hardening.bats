#!/usr/bin/env bats
# Hostile conditions (issue 9, proxy side): the operations endpoint against
# bad requests and connection floods, the descriptor budget, the bounded
# plain path, asynchronous netlink lookups and loop detection by address.
# http_code and http_body are set by http_get in helpers/ops.bash.
# shellcheck disable=SC2154

load helpers/world
load helpers/ops

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}
HOSTILE=$BATS_TEST_DIRNAME/../tools/http_hostile.py
FLOOD=$BATS_TEST_DIRNAME/../tools/dns_flood.py

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
teardown() {
	local rc=0 pid
	proxy_test_teardown || rc=1
	# A test may stop the DoT resolver: leave it running for the next.
	pid=$(cat "$W_DIR/unbound-dot.pid" 2>/dev/null)
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		dot_unbound_start || rc=1
	fi
	return "$rc"
}

# raw_http HEX WAIT: sends HEX to the metrics port from the pod; $output is
# "<ms> <bytes>" and then what came back.
raw_http() {
	run pod timeout 20 python3 "$HOSTILE" raw "${OPS_METRICS%:*}" \
		"${OPS_METRICS##*:}" "$1" "$2"
}

@test "http: a NUL byte before the blank line is answered 400 at once" {
	local ms
	ops_start_proxy
	# "GET /livez HTTP/1.1\r\nX: a\0b\r\n": no blank line yet.
	raw_http "$(printf 'GET /livez HTTP/1.1\r\nX: a' | od -An -tx1 | tr -d ' \n')00620d0a" 4
	ms=${output%% *}
	grep -q '^HTTP/1.1 400 ' <<<"$output" || w_fail "want an immediate 400"
	[ "$ms" -lt 1000 ] || w_fail "400 came after $ms ms, want at once"
	http_get /livez
	[ "$http_code" = 200 ] || w_fail "/livez after the NUL request: HTTP $http_code"
}

@test "http: HEAD gets the headers and no body" {
	local hdr body
	ops_start_proxy
	for path in /livez /readyz /metrics; do
		raw_http "$(printf 'HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n' "$path" | od -An -tx1 | tr -d ' \n')" 4
		grep -q '^HTTP/1.1 200 ' <<<"$output" || w_fail "HEAD $path: want 200"
		grep -qi '^Content-Length: [1-9]' <<<"$output" ||
			w_fail "HEAD $path: want the GET body's length"
		hdr=$(tr -d '\r' <<<"$output" | sed -n '2,/^$/p')
		body=$(tr -d '\r' <<<"$output" | sed '1,/^$/d' | sed '1d')
		[ -n "$hdr" ] || w_fail "HEAD $path: no headers"
		[ -z "$body" ] || w_fail "HEAD $path: a body came: $body"
	done
	http_get /livez
	[ "$http_code" = 200 ] && [ -n "$http_body" ] || w_fail "GET /livez lost its body"
}

@test "http: a flood of idle connections does not starve health probes" {
	local i ok=0 fail=0 fpid
	ops_start_proxy
	pod python3 "$HOSTILE" flood "${OPS_METRICS%:*}" "${OPS_METRICS##*:}" 12 \
		>"$W_DIR/flood.out" 2>&1 &
	fpid=$!
	sleep 1
	for ((i = 0; i < 30; i++)); do
		if healthcheck "http://$OPS_METRICS/livez" >"$W_DIR/probe.out" 2>&1; then
			ok=$((ok + 1))
		else
			fail=$((fail + 1))
			cat "$W_DIR/probe.out"
		fi
	done
	wait "$fpid" || true
	echo "probes: $ok answered, $fail failed; flood opened $(cat "$W_DIR/flood.out") connections"
	[ "$fail" -eq 0 ] || w_fail "$fail of 30 probes failed under the flood"
	http_get /readyz
	[ "$http_code" = 200 ] || w_fail "/readyz after the flood: HTTP $http_code"
}

@test "healthcheck: a refused connect is reported as refused, not as a timeout" {
	run pod timeout 10 "${W_BIN:-$DOTPROXY}" healthcheck http://127.0.0.1:9/readyz
	echo "$output"
	[ "$status" -eq 1 ] || w_fail "exit $status, want 1"
	grep -qi 'refused' <<<"$output" || w_fail "want 'refused' in the message"
	! grep -qi 'timed out' <<<"$output" || w_fail "reported as a timeout"
}

# wait_file FILE WORD: waits up to 5 s for WORD in FILE (a helper's ready line).
wait_file() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no '$2' in $1 after 5 s" >&2
	return 1
}

# The proxy's open descriptors now.
proxy_fds() {
	local pid
	pid=$(proxy_pid)
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

@test "plain path: a local-zone flood at a frozen resolver is capped: SERVFAIL at once, descriptors bounded" {
	local fpid qpid i n max=0 sent servfail
	printf 'nameserver 127.0.0.2\n' >"$W_DIR/frozen.resolv"
	chmod 0644 "$W_DIR/frozen.resolv"
	pod timeout 60 python3 "$FLOOD" frozen 127.0.0.2 53 40 >"$W_DIR/frozen.out" 2>&1 &
	fpid=$!
	wait_file "$W_DIR/frozen.out" frozen
	start_proxy --local-zone frozen.test --resolv-conf "$W_DIR/frozen.resolv" \
		--timeout 4000
	pod timeout 30 python3 "$FLOOD" udp 127.0.0.1 "$W_PROXY_PORT" 1500 frozen.test 1.5 \
		>"$W_DIR/lflood.out" 2>&1 &
	qpid=$!
	for ((i = 0; i < 20; i++)); do
		n=$(proxy_fds)
		[ "$n" -gt "$max" ] && max=$n
		sleep 0.1
	done
	wait "$qpid" || true
	kill "$fpid" 2>/dev/null || true
	cat "$W_DIR/lflood.out"
	read -r _ sent _ _ _ servfail <"$W_DIR/lflood.out"
	echo "peak descriptors: $max"
	# The default cap is 256 plain queries in flight.
	[ "$max" -lt 320 ] || w_fail "peak of $max descriptors: the plain path is not capped"
	[ "$servfail" -ge $((sent - 256)) ] ||
		w_fail "only $servfail of $sent answered SERVFAIL within 1.5 s: queries above the cap must fail at once"
	run q whoami.test A
	assert_dot_answer
}

@test "descriptor budget: soft limit raised to hard, TCP clients capped, a UDP query still gets its upstream connection" {
	local pid hpid held lim cap
	# Soft 64, hard 160: the rlimits pass to the proxy through start_proxy.
	(
		ulimit -Sn 64 && ulimit -Hn 160 || exit 1
		start_proxy --max-clients 1024
	) || w_fail "proxy did not start under a 64/160 descriptor limit" || return 1
	pid=$(proxy_pid)
	lim=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$pid/limits")
	[ "$lim" = "160 160" ] || w_fail "soft/hard limits '$lim', want '160 160'"
	cap=$(grep -o 'descriptor budget.* max_clients=[0-9]*' "$(cat "$W_DIR/proxy.logpath")" |
		grep -o 'max_clients=[0-9]*$' | cut -d= -f2)
	echo "effective TCP client cap: $cap"
	[ -n "$cap" ] && [ "$cap" -lt 160 ] || w_fail "no effective client cap under 160 logged"
	# More idle TCP clients than the limit allows; no upstream connection
	# is open yet (they open on demand).
	pod timeout 60 python3 "$HOSTILE" hold 127.0.0.1 "$W_PROXY_PORT" 300 30 \
		>"$W_DIR/hold.out" 2>&1 &
	hpid=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$W_DIR/hold.out" ] && break
		sleep 0.1
	done
	held=$(cat "$W_DIR/hold.out")
	echo "connections held: $held, proxy descriptors: $(proxy_fds)"
	run q whoami.test A
	kill "$hpid" 2>/dev/null || true
	assert_dot_answer
	[ "$(proxy_fds)" -lt 160 ] || w_fail "proxy at its descriptor limit"
}

@test "UDP loop detection: a client on another address that shares a plain query's source port is served" {
	local fpid qpid port
	printf 'nameserver 127.0.0.2\n' >"$W_DIR/frozen.resolv"
	chmod 0644 "$W_DIR/frozen.resolv"
	pod timeout 60 python3 "$FLOOD" frozen 127.0.0.2 53 30 >"$W_DIR/frozen.out" 2>&1 &
	fpid=$!
	wait_file "$W_DIR/frozen.out" frozen
	start_proxy --local-zone frozen.test --resolv-conf "$W_DIR/frozen.resolv" \
		--timeout 4000
	# One plain query in flight towards the frozen resolver.
	pod timeout 10 python3 "$FLOOD" udp 127.0.0.1 "$W_PROXY_PORT" 1 frozen.test 3 \
		>/dev/null 2>&1 &
	qpid=$!
	for ((i = 0; i < 30; i++)); do
		port=$(pod ss -Huna | awk '$5 == "127.0.0.2:53" && $4 ~ /^127\./ {
			sub(/.*:/, "", $4); print $4; exit }')
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || w_fail "no plain query in flight to 127.0.0.2:53" || return 1
	echo "plain query source: 127.0.0.1:$port; the client uses 127.0.0.5:$port"
	run pod timeout 10 dig -b "127.0.0.5#$port" @127.0.0.1 -p "$W_PROXY_PORT" \
		+tries=1 +time=3 whoami.test A
	kill "$qpid" "$fpid" 2>/dev/null || true
	assert_dot_answer
}

@test "answers: REFUSED without a question answers the query with REFUSED at once, not a timeout" {
	local rpid t0 t1
	printf 'nameserver 127.0.0.3\n' >"$W_DIR/refuse.resolv"
	chmod 0644 "$W_DIR/refuse.resolv"
	pod timeout 60 python3 "$FLOOD" refuse 127.0.0.3 53 30 >"$W_DIR/refuse.out" 2>&1 &
	rpid=$!
	wait_file "$W_DIR/refuse.out" refusing
	start_proxy --local-zone refuse.test --resolv-conf "$W_DIR/refuse.resolv" \
		--timeout 3000
	t0=$(ms_now)
	run q name.refuse.test A
	t1=$(ms_now)
	kill "$rpid" 2>/dev/null || true
	echo "answered in $((t1 - t0)) ms"
	assert_status REFUSED
	grep -q 'QUERY: 1,' <<<"$output" || w_fail "want the client's question echoed"
	[ $((t1 - t0)) -lt 2000 ] || w_fail "took $((t1 - t0)) ms: waited for the timeout"
}

@test "answers: NOTIMP to an unknown opcode keeps the client's OPT" {
	start_proxy
	run pod timeout 10 dig @127.0.0.1 -p "$W_PROXY_PORT" +tries=1 +time=3 \
		+opcode=5 +edns=0 +dnssec example.test SOA
	assert_status NOTIMP
	grep -q 'OPT PSEUDOSECTION' <<<"$output" || w_fail "no OPT in the NOTIMP answer"
	grep -q 'flags: do;' <<<"$output" || w_fail "DO bit not echoed"
}

@test "metrics: an upstream never tried is up (1); one that refuses connections goes to 0" {
	local m=$W_DIR/up.prom
	W_NO_DEFAULT_UPSTREAM=1 ops_start_proxy --ca-file "$W_CA" \
		--upstream "192.0.2.2@853#dot.test" --upstream "127.0.0.1@9#dot.test"
	scrape "$m"
	grep '^dotproxy_upstream_up' "$m"
	[ "$(mval "$m" 'dotproxy_upstream_up{upstream="192.0.2.2@853#dot.test"}')" = 1 ] ||
		w_fail "an upstream never tried must be up"
	[ "$(mval "$m" 'dotproxy_upstream_up{upstream="127.0.0.1@9#dot.test"}')" = 1 ] ||
		w_fail "an upstream never tried must be up"
	# The second one is tried when the first is skipped: stop the first.
	dot_unbound_stop
	for i in 1 2 3; do
		run q "n$i.whoami.test" A
	done
	dot_unbound_start
	scrape "$m"
	grep '^dotproxy_upstream_up' "$m"
	[ "$(mval "$m" 'dotproxy_upstream_up{upstream="127.0.0.1@9#dot.test"}')" = 0 ] ||
		w_fail "an upstream whose connections are refused must be down"
}

# The Seccomp: line of the proxy's /proc status (0 off, 2 filter).
seccomp_mode() {
	awk '/^Seccomp:/ { print $2 }' "/proc/$(proxy_pid)/status"
}

@test "seccomp: on by default after start-up, off with --seccomp=off or DOTPROXY_SECCOMP=off" {
	start_proxy
	[ "$(seccomp_mode)" = 2 ] || w_fail "Seccomp: $(seccomp_mode), want 2 (filter)"
	grep -q 'msg="seccomp filter installed"' "$(cat "$W_DIR/proxy.logpath")" ||
		w_fail "no log line for the filter"
	run q whoami.test A
	assert_dot_answer
	run q +tcp whoami.test A
	assert_dot_answer
	stop_proxy
	start_proxy --seccomp=off
	[ "$(seccomp_mode)" = 0 ] || w_fail "--seccomp=off: Seccomp: $(seccomp_mode), want 0"
	stop_proxy
	DOTPROXY_SECCOMP=off start_proxy
	[ "$(seccomp_mode)" = 0 ] || w_fail "DOTPROXY_SECCOMP=off: Seccomp: $(seccomp_mode), want 0"
	stop_proxy
	run start_proxy --seccomp=maybe
	[ "$status" -ne 0 ] || w_fail "--seccomp=maybe accepted"
	grep -q "seccomp: 'maybe' is not one of on, off" "$(cat "$W_DIR/proxy.logpath")" ||
		w_fail "no clear line for a bad --seccomp value"
	# That proxy exited 2 at start, as it should: not a teardown failure.
	rm -f "$W_DIR/proxy.rc"
}
