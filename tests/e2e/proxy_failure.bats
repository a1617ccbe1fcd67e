#!/usr/bin/env bats
# reset_with_inflight sets bats' $status and $output for the test itself.
# shellcheck disable=SC2030,SC2031
# dotproxy when the upstream fails: killed and restarted, connections reset
# with queries in flight. SERVFAIL within the timeout when nothing can
# answer; no query lost when a retry on a new connection can answer.

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-90}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
setup() { start_proxy; }

teardown() {
	local pid
	pid=$(cat "$W_DIR/unbound-dot.pid" 2>/dev/null)
	[ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null || true
	proxy_test_teardown
	# Leave the DoT resolver running for the next test.
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		dot_unbound_start
	fi
}

# Kills the proxy's upstream TLS connections (inside the pod namespace)
# and checks that it did: at least one was open, ss -K succeeded, and none
# of the connections open before (by local port) is still there. A kernel
# without socket destroy (CONFIG_INET_DIAG_DESTROY) fails here instead of
# letting the test pass with nothing reset. Prints how many were reset.
kill_tls_conns() {
	local before after p left=
	before=$(tls_ports)
	[ -n "$before" ] || { echo "no TLS connection open to reset" >&2; return 1; }
	pod ss -K -tn dst 192.0.2.2 dport = 853 >"$W_DIR/ss-K.out" 2>&1 ||
		{ echo "ss -K failed: $(cat "$W_DIR/ss-K.out")" >&2; return 1; }
	after=$(tls_ports)
	for p in $before; do
		if grep -qxF -- "$p" <<<"$after"; then
			left="$left $p"
		fi
	done
	[ -z "$left" ] ||
		{ echo "ss -K reset nothing: still open from$left" >&2; return 1; }
	wc -w <<<"$before"
}

# The local ports of the proxy's established upstream TLS connections.
tls_ports() {
	pod ss -tnH state established dst 192.0.2.2 dport = 853 |
		awk '{ n = split($3, a, ":"); print a[n] }'
}

tls_conns() {
	tls_ports | wc -l
}

@test "upstream killed: SERVFAIL within the timeout; restarted: answers again" {
	local t0 t1 i ok=
	run q whoami.test A
	assert_dot_answer
	dot_unbound_stop
	t0=$(date +%s%N)
	run q +time=5 whoami.test A
	t1=$(date +%s%N)
	[ "$status" -eq 0 ] || w_fail "dig exit $status: no answer within 5 s"
	assert_status SERVFAIL
	echo "SERVFAIL after $(((t1 - t0) / 1000000)) ms"
	[ "$(((t1 - t0) / 1000000))" -le 3000 ] || w_fail "SERVFAIL took more than 3 s"
	# A second query while it is down: also SERVFAIL, over TCP this time.
	run q +tcp +time=5 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status: no answer within 5 s"
	assert_status SERVFAIL
	dot_unbound_start
	for ((i = 0; i < 20; i++)); do
		run q +time=2 whoami.test A
		if [ "$status" -eq 0 ] && grep -q 'status: NOERROR' <<<"$output"; then
			ok=1
			break
		fi
		sleep 0.5
	done
	[ -n "$ok" ] || w_fail "no answer within 10 s of the upstream coming back"
	assert_dot_answer
	proxy_alive || w_fail "the proxy was restarted?"
}

# Sends 200 UDP queries in the background while the DoT resolver is
# frozen, resets every proxy TLS connection, thaws the resolver, and leaves
# dnsraw's verdict in $output and its status in $status. $1: "warm" first
# opens both pool connections, so only ready connections are reset.
reset_with_inflight() {
	local upid n many rc
	if [ "$1" = warm ]; then
		# The pool opens its second connection only when one wake-up
		# finds the first busy; a fast upstream may answer a burst on
		# one, so burst again (a few times at most) until both are up.
		for ((n = 0; n < 5; n++)); do
			run dnsraw -w 5000 udpmany 127.0.0.1 "$W_PROXY_PORT" 200 'n%d.test'
			[ "$status" -eq 0 ] || w_fail "warm-up failed" || return 1
			[ "$(tls_conns)" -eq 2 ] && break
		done
		[ "$(tls_conns)" -eq 2 ] || w_fail "want 2 TLS connections after warm-up" || return 1
	else
		run q whoami.test A
		assert_dot_answer || return 1
	fi
	# Freeze the resolver so the queries stay in flight on the TLS
	# connections, reset those connections, then let the resolver go.
	upid=$(cat "$W_DIR/unbound-dot.pid")
	kill -STOP "$upid"
	(
		rc=0
		dnsraw -w 8000 udpmany 127.0.0.1 "$W_PROXY_PORT" 200 'n%d.test' \
			>"$W_DIR/many.out" 2>&1 || rc=$?
		echo "$rc" >"$W_DIR/many.rc"
	) 3>&- &
	many=$!
	sleep 0.4
	n=$(kill_tls_conns 2>"$W_DIR/kill.err") || n=0
	sleep 0.1
	kill -CONT "$upid"
	wait "$many" || true
	echo "TLS connections reset: $n"
	[ "$n" -ge 1 ] || w_fail "reset failed: $(cat "$W_DIR/kill.err")" || return 1
	status=$(cat "$W_DIR/many.rc")
	output=$(cat "$W_DIR/many.out")
	echo "$output"
}

@test "upstream connections reset with 200 queries in flight: all answered" {
	reset_with_inflight warm
	[ "$status" -eq 0 ] || w_fail "not every query was answered NOERROR"
}

@test "a connection reset during its TLS handshake: its queries are retried, not SERVFAIL" {
	# Cold: the load makes the proxy open its second connection while the
	# resolver is frozen, so that one is reset in mid-handshake.
	reset_with_inflight cold
	[ "$status" -eq 0 ] || w_fail "not every query was answered NOERROR"
}

@test "upstream connections reset twice under continuous load: none lost, no SERVFAIL" {
	local perf n1 n2
	(
		pod timeout 60 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -c 20 -q 200 \
			-l 4 -Q 3000 -t 5 -d "$W_DIR/queries.txt" >"$W_DIR/perf-reset.out" 2>&1
	) 3>&- &
	perf=$!
	sleep 1
	n1=$(kill_tls_conns 2>"$W_DIR/kill1.err") || n1=0
	sleep 1
	n2=$(kill_tls_conns 2>"$W_DIR/kill2.err") || n2=0
	wait "$perf" || true
	output=$(cat "$W_DIR/perf-reset.out")
	echo "connections reset: $n1 then $n2"
	[ "$n1" -ge 1 ] && [ "$n2" -ge 1 ] ||
		w_fail "reset failed: $(cat "$W_DIR/kill1.err" "$W_DIR/kill2.err")"
	assert_dnsperf_clean
}
