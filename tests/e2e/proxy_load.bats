#!/usr/bin/env bats
# dotproxy under load: pipelined TCP, thousands of UDP queries from many
# clients, upstream connection reuse, SIGTERM while busy.
# bats runs each @test in a subshell; its own $status is meant to be local.
# shellcheck disable=SC2030,SC2031

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
setup() { start_proxy; }
teardown() { proxy_test_teardown; }

@test "300 pipelined queries in one write on one TCP connection all answered" {
	# dnsraw checks each ID comes back once, NOERROR, with its question.
	run dnsraw -w 20000 pipeline 127.0.0.1 "$W_PROXY_PORT" 300 'n%d.test'
	[ "$status" -eq 0 ] || w_fail "pipelining failed"
	grep -q '^sent=300 answered=300 dup=0' <<<"$output" || w_fail "not all answered"
}

@test "300 pipelined identical questions each answered under its own ID" {
	run dnsraw -w 20000 pipeline 127.0.0.1 "$W_PROXY_PORT" 300 whoami.test
	[ "$status" -eq 0 ] || w_fail "pipelining failed"
}

@test "300 pipelined queries over TCP on ::1 all answered" {
	run dnsraw -w 20000 pipeline ::1 "$W_PROXY_PORT" 300 'n%d.test'
	[ "$status" -eq 0 ] || w_fail "pipelining failed"
}

@test "5000 UDP queries from 20 clients: none lost, all NOERROR" {
	run_dnsperf -c 20 -q 100 -n 1 -t 5
	[ "$status" -eq 0 ] || w_fail "dnsperf exit $status"
	assert_dnsperf_clean
	grep -q 'Queries sent: *5000' <<<"$output" || w_fail "want 5000 sent"
}

@test "200 UDP queries sent at once from one socket all answered" {
	run dnsraw -w 10000 udpmany 127.0.0.1 "$W_PROXY_PORT" 200 'n%d.test'
	[ "$status" -eq 0 ] || w_fail "not all answered"
}

@test "5000 queries reuse a few upstream TLS connections" {
	local before after
	run stop_proxy
	[ "$status" -eq 0 ] || w_fail "first proxy exit $status"
	before=$(syn_count)
	start_proxy
	run_dnsperf -c 20 -q 100 -n 1 -t 5
	[ "$status" -eq 0 ] || w_fail "dnsperf exit $status"
	assert_dnsperf_clean
	after=$(syn_count)
	echo "TLS connections opened: $((after - before))"
	[ "$((after - before))" -ge 1 ] || w_fail "no SYN counted: is the counter broken?"
	[ "$((after - before))" -le 4 ] ||
		w_fail "$((after - before)) connections for 5000 queries, want <= 4"
}

# Runs dnsperf for 5 s in the background, sends SIGTERM after 1 s, and
# checks the exit status and the time to exit (at most $1 ms).
sigterm_under_load() {
	local perf t0 t1 ms
	(
		pod timeout 30 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -c 20 -q 100 \
			-l 5 -t 2 -d "$W_DIR/queries.txt" >"$W_DIR/perf-term.out" 2>&1
	) 3>&- &
	perf=$!
	sleep 1
	proxy_alive || w_fail "proxy died under load" || return 1
	t0=$(date +%s%N)
	run stop_proxy 10
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "exit status $status after $ms ms"
	[ "$status" -eq 0 ] || w_fail "want exit 0 on SIGTERM, got $status" || return 1
	[ "$ms" -le "$1" ] || w_fail "took $ms ms to exit, want <= $1" || return 1
	wait "$perf" || true
	grep -Eq 'Queries completed: *[1-9]' "$W_DIR/perf-term.out" ||
		w_fail "dnsperf completed nothing: was there load? $(cat "$W_DIR/perf-term.out")"
}

@test "SIGTERM under load, default lameduck grace: exits 0 within a few seconds" {
	run stop_proxy
	[ "$status" -eq 0 ] || w_fail "first proxy exit $status"
	W_GRACE=default start_proxy
	# 3 s of lameduck, then in-flight queries (1.5 s timeout) finish.
	sigterm_under_load 6000
}

@test "SIGTERM under load, no lameduck grace: exits 0 within 2 s" {
	sigterm_under_load 2000
}
