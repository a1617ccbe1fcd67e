#!/usr/bin/env bats
# The operations side of dotproxy, over real HTTP and real signals:
# /metrics (promtool-clean, counters that move by what was sent, the
# netlink lookups by kind), /livez,
# /readyz and lameduck on SIGTERM, `dotproxy healthcheck`, SIGHUP reload
# of the upstream set, slow HTTP clients against DNS latency, JSON logs
# and the effective configuration logged at start.
#
# promtool policy: `promtool check metrics` exits 1 on a parse (format)
# error and 3 when it only has lint findings (naming, units, counters
# without _total...). Both fail the test: the exposition is ours and
# small, so a lint finding is a real naming mistake to fix, not noise.
# Every line promtool prints is shown in the failure output.
# http_code and http_body are set by http_get in helpers/ops.bash.
# shellcheck disable=SC2154

load helpers/world
load helpers/ops

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-90}

setup_file() {
	command -v promtool >/dev/null || {
		echo "promtool is missing (apt-get install prometheus)" >&2
		return 1
	}
	world_file_setup
}
teardown_file() { world_teardown; }

teardown() {
	local rc=0 pid
	# Ends the dig loop of the SIGHUP test if it failed half-way.
	touch "$W_DIR/loop.stop"
	slow_stop
	pod nft delete table inet dpt_ct 2>/dev/null
	proxy_test_teardown || rc=1
	dot2_stop
	# Leave the DoT resolver running for the next test.
	pid=$(cat "$W_DIR/unbound-dot.pid" 2>/dev/null)
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		dot_unbound_start || rc=1
	fi
	return "$rc"
}

# Sends one query per kind so that every family has samples.
some_traffic() {
	run q whoami.test A
	assert_dot_answer || return 1
	run q +tcp whoami.test A
	assert_dot_answer || return 1
	run q6 whoami.test AAAA
	assert_status NOERROR || return 1
	run q nosuchname.test A
	assert_status NXDOMAIN || return 1
	run q +bufsize=512 +ignore big.test A
	has_tc || w_fail "want TC for big.test over a 512-byte buffer" || return 1
}

@test "/metrics: promtool check metrics passes on a live scrape, 0.0.4 rules hold" {
	local m=$W_DIR/m.promtool problems
	ops_start_proxy
	some_traffic
	scrape "$m" || w_fail "no scrape"

	grep -qi '^content-type: text/plain; version=0.0.4' "$m.hdr" ||
		w_fail "Content-Type is not text/plain; version=0.0.4: $(grep -i '^content-type' "$m.hdr")"
	[ "$(tail -c 1 "$m" | od -An -c | tr -d ' ')" = '\n' ] ||
		w_fail "the last line does not end with \\n"
	! grep -q $'\r' "$m" || w_fail "the body has \\r line endings"

	run promtool check metrics <"$m"
	if [ "$status" -ne 0 ]; then
		echo "--- scrape:"
		cat "$m"
		[ "$status" -ne 1 ] ||
			w_fail "promtool: format (parse) error, exit 1" || return 1
		w_fail "promtool: lint findings, exit $status (see the policy at the top)" ||
			return 1
	fi

	# What promtool does not check (see expo_problems in helpers/ops.bash).
	problems=$(expo_problems "$m")
	[ -z "$problems" ] || w_fail "exposition problems:"$'\n'"$problems"
	# The histograms saw the queries.
	[ "$(mval "$m" dotproxy_query_duration_seconds_count)" -ge 5 ] ||
		w_fail "query_duration_seconds_count < 5 after 5 queries"
	[ "$(mval "$m" 'dotproxy_upstream_latency_seconds_count{upstream="'"$OPS_UP"'"}')" -ge 1 ] ||
		w_fail "no upstream latency sample for $OPS_UP"
}

@test "/metrics: the standard process_* families; captured queries only with --transparent" {
	local m=$W_DIR/m.proc v now
	ops_start_proxy
	some_traffic
	scrape "$m" || w_fail "no scrape"
	for v in process_cpu_seconds_total process_open_fds process_max_fds \
		process_resident_memory_bytes process_start_time_seconds; do
		grep -q "^# TYPE $v " "$m" || w_fail "no TYPE line for $v" || return 1
		[ -n "$(mval "$m" "$v")" ] || w_fail "no sample for $v" || return 1
	done
	grep -q '^# TYPE process_cpu_seconds_total counter' "$m" ||
		w_fail "process_cpu_seconds_total is not a counter" || return 1
	awk -v c="$(mval "$m" process_cpu_seconds_total)" 'BEGIN { exit !(c > 0 && c < 60) }' ||
		w_fail "process_cpu_seconds_total $(mval "$m" process_cpu_seconds_total): want (0, 60)" || return 1
	v=$(mval "$m" process_open_fds)
	[ "$v" -ge 5 ] && [ "$v" -le "$(mval "$m" process_max_fds)" ] ||
		w_fail "open fds $v against max $(mval "$m" process_max_fds)" || return 1
	# The soft limit the proxy logs at start (it raises it to the hard one).
	v=$(grep -o 'msg="descriptor budget" nofile=[0-9]*' "$(proxy_log)" | cut -d= -f3)
	[ -n "$v" ] && [ "$(mval "$m" process_max_fds)" = "$v" ] ||
		w_fail "process_max_fds $(mval "$m" process_max_fds), want the soft RLIMIT_NOFILE $v" ||
		return 1
	[ "$(mval "$m" process_resident_memory_bytes)" -gt 1000000 ] ||
		w_fail "resident memory below 1 MB" || return 1
	now=$(date +%s)
	v=$(mval "$m" process_start_time_seconds)
	[ "$v" -le "$now" ] && [ "$v" -ge $((now - 60)) ] ||
		w_fail "start time $v, now $now" || return 1
	! grep -q '^dotproxy_process_' "$m" || w_fail "old dotproxy_process_* names" || return 1
	! grep -q 'captured_queries_total' "$m" ||
		w_fail "captured_queries_total without --transparent" || return 1
	stop_proxy >/dev/null
	ops_start_proxy --transparent
	run q whoami.test A
	assert_dot_answer
	scrape "$m" || w_fail "no scrape"
	[ "$(awk '/^dotproxy_captured_queries_total\{/ { s += $2 } END { print s + 0 }' "$m")" -ge 1 ] ||
		w_fail "--transparent: want the query in captured_queries_total" || return 1
}

@test "/metrics: counters move by exactly the queries sent" {
	local d=$W_DIR i s
	ops_start_proxy
	scrape "$d/c0" || w_fail "no scrape"
	for ((i = 0; i < 10; i++)); do
		run q whoami.test A
		assert_dot_answer
	done
	for ((i = 0; i < 5; i++)); do
		run q +tcp whoami.test A
		assert_dot_answer
	done
	scrape "$d/c1" || w_fail "no scrape"
	assert_delta "$d/c0" "$d/c1" 'dotproxy_queries_total{transport="udp",family="ipv4",qtype="A"}' 10
	assert_delta "$d/c0" "$d/c1" 'dotproxy_queries_total{transport="tcp",family="ipv4",qtype="A"}' 5
	assert_delta "$d/c0" "$d/c1" 'dotproxy_queries_total{transport="udp",family="ipv4",qtype="AAAA"}' 0
	assert_delta "$d/c0" "$d/c1" 'dotproxy_responses_total{rcode="NOERROR",source="upstream"}' 15
	assert_delta "$d/c0" "$d/c1" 'dotproxy_responses_total{rcode="SERVFAIL",source="synthesized"}' 0
	assert_delta "$d/c0" "$d/c1" "dotproxy_upstream_queries_total{upstream=\"$OPS_UP\"}" 15
	assert_delta "$d/c0" "$d/c1" "dotproxy_upstream_answers_total{upstream=\"$OPS_UP\"}" 15
	assert_delta "$d/c0" "$d/c1" dotproxy_query_duration_seconds_count 15
	assert_delta "$d/c0" "$d/c1" dotproxy_tcp_accepted_total 5
	assert_delta "$d/c0" "$d/c1" dotproxy_truncated_total 0
	assert_delta "$d/c0" "$d/c1" dotproxy_metrics_requests_total 1
	[ "$(mval "$d/c1" dotproxy_inflight_queries)" = 0 ] || w_fail "inflight_queries not 0 when idle"
	[ "$(mval "$d/c1" "dotproxy_upstream_up{upstream=\"$OPS_UP\"}")" = 1 ] ||
		w_fail "upstream_up is not 1 while it answers"

	# One truncated UDP answer.
	run q +bufsize=512 +ignore big.test A
	has_tc || w_fail "want TC for big.test over a 512-byte buffer"
	scrape "$d/c2" || w_fail "no scrape"
	assert_delta "$d/c1" "$d/c2" dotproxy_truncated_total 1
	assert_delta "$d/c1" "$d/c2" 'dotproxy_queries_total{transport="udp",family="ipv4",qtype="A"}' 1

	# One SERVFAIL made by the proxy while the upstream is down.
	dot_unbound_stop
	run q whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status with the upstream down"
	assert_status SERVFAIL
	scrape "$d/c3" || w_fail "no scrape"
	assert_delta "$d/c2" "$d/c3" 'dotproxy_responses_total{rcode="SERVFAIL",source="synthesized"}' 1
	assert_delta "$d/c2" "$d/c3" 'dotproxy_responses_total{rcode="NOERROR",source="upstream"}' 0
	s=$(mval "$d/c3" "dotproxy_upstream_up{upstream=\"$OPS_UP\"}")
	[ "$s" = 0 ] || w_fail "upstream_up is '$s' with the upstream down, want 0"
	dot_unbound_start
}

@test "/metrics: TLS handshakes, resumptions and connection reuse are counted" {
	local d=$W_DIR n h r u0 u1 out
	ops_start_proxy --idle-timeout 300
	run q whoami.test A
	assert_dot_answer
	# Idle for more than 300 ms: the TLS connection closes.
	sleep 1
	scrape "$d/h0" || w_fail "no scrape"
	n=$(mval "$d/h0" "dotproxy_upstream_connections{upstream=\"$OPS_UP\"}")
	[ "$n" = 0 ] || w_fail "upstream_connections is '$n' after 1 s idle with --idle-timeout 300"
	run q whoami.test A
	assert_dot_answer
	scrape "$d/h1" || w_fail "no scrape"
	h=$(mval "$d/h1" "dotproxy_upstream_tls_handshakes_total{upstream=\"$OPS_UP\"}")
	r=$(mval "$d/h1" "dotproxy_upstream_tls_resumptions_total{upstream=\"$OPS_UP\"}")
	echo "handshakes=$h resumptions=$r"
	[ -n "$h" ] && [ "$h" -ge 2 ] || w_fail "tls_handshakes_total is '$h', want >= 2"
	[ -n "$r" ] && [ "$r" -ge 1 ] || w_fail "tls_resumptions_total is '$r', want >= 1"
	[ "$r" -le "$h" ] || w_fail "more resumptions ($r) than handshakes ($h)"

	# 100 queries back to back: all but the first few ride an open connection.
	u0=$(mval "$d/h1" "dotproxy_upstream_connection_reuse_total{upstream=\"$OPS_UP\"}")
	# shellcheck disable=SC2016
	out=$(pod bash -c 'for ((i = 0; i < 100; i++)); do
		dig @127.0.0.1 -p "$1" +tries=1 +time=3 +short whoami.test A; done' \
		q100 "$W_PROXY_PORT" 2>&1)
	n=$(grep -cx 203.0.113.1 <<<"$out")
	[ "$n" = 100 ] || w_fail "$n of 100 queries answered 203.0.113.1"
	scrape "$d/h2" || w_fail "no scrape"
	u1=$(mval "$d/h2" "dotproxy_upstream_connection_reuse_total{upstream=\"$OPS_UP\"}")
	echo "connection_reuse_total: $u0 -> $u1"
	[ -n "$u1" ] && [ "$((u1 - u0))" -ge 90 ] ||
		w_fail "connection_reuse_total moved by $((u1 - u0)) over 100 queries, want >= 90"
}

# The netlink lookups of transparent use, without a capture: a local-zone
# UDP query asks conntrack for its original destination (the proxy has no
# CAP_NET_ADMIN, so the kernel's answer is an EPERM error, a reply all the
# same, and later queries go to resolv.conf without asking), and a TCP
# client is looked up in sock_diag. Each lookup kind has its own series.
@test "/metrics: netlink lookups (conntrack, sock_diag) are counted by kind" {
	local d=$W_DIR k s
	echo "nameserver 192.0.2.2" >"$d/nl-resolv.conf"
	ops_start_proxy --transparent --local-zone cluster.local \
		--resolv-conf "$d/nl-resolv.conf"
	scrape "$d/n0" || w_fail "no scrape"
	for k in conntrack sock_diag; do
		for s in requests_total replies_total timeouts_total \
			stale_replies_total busy_total send_errors_total overruns_total \
			pending_lookups; do
			[ "$(mval "$d/n0" "dotproxy_netlink_$s{lookup=\"$k\"}")" = 0 ] ||
				w_fail "dotproxy_netlink_$s{lookup=\"$k\"} is not 0 at start" ||
				return 1
		done
	done
	grep -qx '# TYPE dotproxy_netlink_timeouts_total counter' "$d/n0" ||
		w_fail "no TYPE line for dotproxy_netlink_timeouts_total"
	grep -q '^# HELP dotproxy_netlink_stale_replies_total .' "$d/n0" ||
		w_fail "no HELP for dotproxy_netlink_stale_replies_total"
	grep -qx '# TYPE dotproxy_netlink_pending_lookups gauge' "$d/n0" ||
		w_fail "no gauge TYPE line for dotproxy_netlink_pending_lookups"

	# One local-zone query over UDP: one conntrack lookup, one reply.
	run q web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status for a local-zone name"
	scrape "$d/n1" || w_fail "no scrape"
	assert_delta "$d/n0" "$d/n1" 'dotproxy_netlink_requests_total{lookup="conntrack"}' 1
	assert_delta "$d/n0" "$d/n1" 'dotproxy_netlink_replies_total{lookup="conntrack"}' 1
	assert_delta "$d/n0" "$d/n1" 'dotproxy_netlink_requests_total{lookup="sock_diag"}' 0

	# Two TCP clients: one sock_diag lookup each; a DoT name over UDP: none.
	run q +tcp whoami.test A
	assert_dot_answer
	run q +tcp whoami.test A
	assert_dot_answer
	run q whoami.test A
	assert_dot_answer
	scrape "$d/n2" || w_fail "no scrape"
	assert_delta "$d/n1" "$d/n2" 'dotproxy_netlink_requests_total{lookup="sock_diag"}' 2
	assert_delta "$d/n1" "$d/n2" 'dotproxy_netlink_replies_total{lookup="sock_diag"}' 2
	assert_delta "$d/n1" "$d/n2" 'dotproxy_netlink_requests_total{lookup="conntrack"}' 0
	for k in conntrack sock_diag; do
		for s in timeouts_total stale_replies_total busy_total \
			send_errors_total overruns_total pending_lookups; do
			assert_delta "$d/n0" "$d/n2" "dotproxy_netlink_$s{lookup=\"$k\"}" 0 ||
				return 1
		done
	done
}

@test "/livez and /readyz answer 200, ?verbose lists the checks, unknown paths 404" {
	ops_start_proxy
	http_get /livez
	[ "$http_code" = 200 ] || w_fail "/livez: HTTP $http_code"
	http_get '/livez?verbose'
	[ "$http_code" = 200 ] || w_fail "/livez?verbose: HTTP $http_code"
	grep -q '^\[+\]' <<<"$http_body" || w_fail "/livez?verbose lists no check: $http_body"
	http_get /readyz
	[ "$http_code" = 200 ] || w_fail "/readyz: HTTP $http_code"
	http_get '/readyz?verbose'
	[ "$http_code" = 200 ] || w_fail "/readyz?verbose: HTTP $http_code"
	grep -q '^\[+\]listeners' <<<"$http_body" || w_fail "/readyz?verbose: no listeners check: $http_body"
	grep -q '^\[+\]config' <<<"$http_body" || w_fail "/readyz?verbose: no config check: $http_body"
	grep -q '^\[+\]lameduck' <<<"$http_body" || w_fail "/readyz?verbose: no lameduck check: $http_body"
	! grep -q '^\[-\]' <<<"$http_body" || w_fail "/readyz?verbose: a failing check while ready: $http_body"
	http_get /nosuchpath
	[ "$http_code" = 404 ] || w_fail "/nosuchpath: HTTP $http_code, want 404"
	http_get /metrics -X POST
	[ "$http_code" = 405 ] || w_fail "POST /metrics: HTTP $http_code, want 405"
	run healthcheck "http://$OPS_METRICS/nosuchpath"
	[ "$status" -eq 1 ] || w_fail "healthcheck on a 404 path: exit $status, want 1"
	# The endpoint still works after those.
	http_get /livez
	[ "$http_code" = 200 ] || w_fail "/livez after bad requests: HTTP $http_code"
}

@test "SIGTERM: lameduck keeps answering with /readyz 503 for the grace, then exit 0" {
	local pid t0 t1 el rc
	ops_start_proxy --shutdown-grace 3000
	run healthcheck
	[ "$status" -eq 0 ] || w_fail "healthcheck against a live proxy: exit $status, want 0"
	run healthcheck "http://$OPS_METRICS/livez"
	[ "$status" -eq 0 ] || w_fail "healthcheck URL /livez: exit $status, want 0"
	http_get /readyz
	[ "$http_code" = 200 ] || w_fail "/readyz before SIGTERM: HTTP $http_code"

	pid=$(proxy_pid)
	t0=$(ms_now)
	kill -TERM "$pid"
	sleep 0.3
	http_get /readyz
	[ "$http_code" = 503 ] || w_fail "/readyz in lameduck: HTTP $http_code, want 503"
	http_get '/readyz?verbose'
	[ "$http_code" = 503 ] || w_fail "/readyz?verbose in lameduck: HTTP $http_code, want 503"
	grep -q '^\[-\]lameduck' <<<"$http_body" ||
		w_fail "/readyz?verbose does not show the failing lameduck check: $http_body"
	grep -q '^\[+\]listeners' <<<"$http_body" ||
		w_fail "/readyz?verbose: listeners should still pass: $http_body"
	http_get /livez
	[ "$http_code" = 200 ] || w_fail "/livez in lameduck: HTTP $http_code, want 200 (alive)"
	run healthcheck
	[ "$status" -eq 1 ] || w_fail "healthcheck in lameduck: exit $status, want 1"
	run q whoami.test A
	assert_dot_answer
	run q +tcp whoami.test A
	assert_dot_answer
	t1=$(ms_now)
	el=$((t1 - t0))
	echo "lameduck checks done $el ms after SIGTERM"
	[ "$el" -lt 3000 ] || w_fail "checks took $el ms: not inside the 3000 ms grace"
	proxy_alive || w_fail "proxy gone $el ms after SIGTERM, grace is 3000 ms"

	rc=$(wait_rc 10)
	t1=$(ms_now)
	el=$((t1 - t0))
	echo "exit status $rc after $el ms"
	[ "$rc" = 0 ] || w_fail "exit status '$rc' after SIGTERM, want 0"
	[ "$el" -ge 2900 ] || w_fail "exited after $el ms, before the 3000 ms grace ended"
	grep -q 'lameduck' "$(proxy_log)" || w_fail "no lameduck log line"
	run healthcheck
	[ "$status" -eq 1 ] || w_fail "healthcheck with the proxy gone: exit $status, want 1"
	http_get /livez
	[ "$http_code" = 000 ] || w_fail "/livez answered HTTP $http_code after exit"
}

@test "SIGTERM twice: the second signal ends the grace at once" {
	local pid t0 el rc
	ops_start_proxy --shutdown-grace 30000
	pid=$(proxy_pid)
	t0=$(ms_now)
	kill -TERM "$pid"
	sleep 0.3
	http_get /readyz
	[ "$http_code" = 503 ] || w_fail "/readyz in lameduck: HTTP $http_code, want 503"
	kill -INT "$pid"
	rc=$(wait_rc 10)
	el=$(($(ms_now) - t0))
	echo "exit status $rc after $el ms"
	[ "$rc" = 0 ] || w_fail "exit status '$rc', want 0"
	[ "$el" -lt 5000 ] || w_fail "took $el ms to exit after the second signal (grace 30 s)"
}

@test "SIGHUP swaps the upstream without a restart or a failed query; a bad file is refused" {
	local conf=$W_DIR/ops.conf d=$W_DIR pid bad n first last line loop
	printf 'upstream %s\nca-file %s\n' "$OPS_UP" "$W_CA" >"$conf"
	ops_start_from_file "$conf"
	! grep -q -- '--upstream' "$(proxy_log)" ||
		w_fail "the proxy got --upstream on the command line; the file must be the only source"
	run q whoami.test A
	assert_dot_answer
	pid=$(proxy_pid)
	dot2_start
	scrape "$d/r0" || w_fail "no scrape"

	# A dig loop across the swap: every answer must be NOERROR.
	rm -f "$d/loop.stop"
	(
		while [ ! -e "$d/loop.stop" ]; do
			out=$(pod timeout 10 dig @127.0.0.1 -p "$W_PROXY_PORT" +tries=1 \
				+time=3 whoami.test A 2>&1)
			st=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
			ip=$(awk '$1 == "whoami.test." && $4 == "A" { print $5 }' <<<"$out")
			echo "${st:-none} ${ip:-none}"
		done >"$d/loop.out"
	) 3>&- &
	loop=$!
	sleep 1
	printf 'upstream %s\nca-file %s\n' "$OPS_UP2" "$W_CA" >"$conf"
	kill -HUP "$pid"
	wait_log "configuration reloaded" 5 || w_fail "no 'configuration reloaded' log line"
	for ((n = 0; n < 50; n++)); do
		[ "$(grep -c ' 203\.0\.113\.2$' "$d/loop.out")" -ge 5 ] && break
		sleep 0.1
	done
	touch "$d/loop.stop"
	wait "$loop"
	echo "dig loop: $(wc -l <"$d/loop.out") queries; $(sort "$d/loop.out" | uniq -c | tr '\n' ';')"
	bad=$(grep -v -E '^NOERROR 203\.0\.113\.[12]$' "$d/loop.out" || true)
	[ -z "$bad" ] || w_fail "queries failed during the swap:"$'\n'"$bad"
	first=$(head -n 1 "$d/loop.out")
	last=$(tail -n 1 "$d/loop.out")
	[ "$first" = "NOERROR 203.0.113.1" ] || w_fail "first loop answer '$first', want the old upstream"
	[ "$last" = "NOERROR 203.0.113.2" ] || w_fail "last loop answer '$last', want the new upstream"
	# Sequential queries: once the new upstream answered, the old one never does.
	line=$(grep -n '203\.0\.113\.2$' "$d/loop.out" | head -n 1 | cut -d: -f1)
	! tail -n +"$line" "$d/loop.out" | grep -q '203\.0\.113\.1$' ||
		w_fail "an answer from the old upstream after the new one answered"

	[ "$(proxy_pid)" = "$pid" ] && proxy_alive || w_fail "the proxy restarted or died on SIGHUP"
	run q +tcp whoami.test A
	grep -q 'status: NOERROR' <<<"$output" && grep -q '203\.0\.113\.2' <<<"$output" ||
		w_fail "TCP after the reload: want NOERROR 203.0.113.2"
	run q6 whoami.test A
	grep -q 'status: NOERROR' <<<"$output" && grep -q '203\.0\.113\.2' <<<"$output" ||
		w_fail "UDP/IPv6 after the reload: want NOERROR 203.0.113.2"
	scrape "$d/r1" || w_fail "no scrape"
	assert_delta "$d/r0" "$d/r1" 'dotproxy_config_reloads_total{result="success"}' 1
	assert_delta "$d/r0" "$d/r1" 'dotproxy_config_reloads_total{result="failure"}' 0
	n=$(mval "$d/r1" "dotproxy_upstream_answers_total{upstream=\"$OPS_UP2\"}")
	[ -n "$n" ] && [ "$n" -ge 1 ] || w_fail "no answers counted for $OPS_UP2: '$n'"

	# A broken file: an upstream without an authentication name.
	printf 'upstream 192.0.2.2@853\nca-file %s\n' "$W_CA" >"$conf"
	kill -HUP "$pid"
	wait_log "configuration reload refused" 5 ||
		w_fail "no 'configuration reload refused' log line for a bad file"
	grep 'configuration reload refused' "$(proxy_log)" | grep -q 'level=warn' ||
		w_fail "the refusal is not logged at level warn"
	scrape "$d/r2" || w_fail "no scrape"
	assert_delta "$d/r1" "$d/r2" 'dotproxy_config_reloads_total{result="failure"}' 1
	assert_delta "$d/r1" "$d/r2" 'dotproxy_config_reloads_total{result="success"}' 0
	for ((n = 0; n < 5; n++)); do
		run q whoami.test A
		grep -q 'status: NOERROR' <<<"$output" && grep -q '203\.0\.113\.2' <<<"$output" ||
			w_fail "after the refused reload: want NOERROR 203.0.113.2 from the current upstream"
	done
	[ "$(proxy_pid)" = "$pid" ] && proxy_alive || w_fail "the proxy died on a bad reload"
	[ "$(grep -c 'dotproxy starting' "$(proxy_log)")" = 1 ] ||
		w_fail "'dotproxy starting' logged more than once across reloads"
}

@test "slow HTTP clients on the metrics port do not delay DNS; /livez still answers" {
	local n i qt max=0 t0 el
	ops_start_proxy
	run q whoami.test A
	assert_dot_answer
	t0=$(ms_now)
	slow_start 20
	for ((i = 0; i < 50; i++)); do
		n=$(slow_conns)
		[ "$n" -ge 16 ] && break
		sleep 0.1
	done
	sleep 0.5
	n=$(slow_conns_held)
	echo "$(slow_conns) slow HTTP connections established, the proxy holds $n"
	[ "$n" -ge 1 ] || w_fail "no slow connection got through to the proxy"
	# At most 16 at once: the oldest are evicted.
	[ "$n" -le 16 ] || w_fail "the proxy holds $n HTTP connections, want at most 16"
	for ((i = 0; i < 20; i++)); do
		if ((i % 2)); then
			run q +tcp +time=2 whoami.test A
		else
			run q +time=2 whoami.test A
		fi
		[ "$status" -eq 0 ] || w_fail "query $i: dig exit $status"
		assert_dot_answer
		qt=$(sed -n 's/^;; Query time: \([0-9]*\) msec$/\1/p' <<<"$output")
		[ -n "$qt" ] || w_fail "query $i: no Query time"
		[ "$qt" -lt 1000 ] || w_fail "query $i took $qt msec with slow HTTP clients open"
		((qt > max)) && max=$qt
	done
	echo "20 queries with slow HTTP clients open, slowest $max msec"
	el=$(ms_now)
	http_get /livez
	el=$(($(ms_now) - el))
	echo "/livez: HTTP $http_code after $el ms"
	[ "$http_code" = 200 ] || w_fail "/livez with slow clients open: HTTP $http_code"
	# The 5 s request deadline ends every slow client.
	el=$(($(ms_now) - t0))
	[ "$el" -ge 6500 ] || sleep "$(((6500 - el) / 1000)).$(((6500 - el) % 1000 / 100))"
	n=$(slow_conns_held)
	[ "$n" = 0 ] || w_fail "$n slow HTTP connections still held 6.5 s after they opened (deadline 5 s)"
	slow_stop
	http_get /metrics
	[ "$http_code" = 200 ] || w_fail "/metrics after the slow clients: HTTP $http_code"
}

# Checks every line of the proxy's stderr (past the helper's "# dotproxy"
# header line) is a JSON object with ts, level, msg and fields.
assert_json_log() {
	local f n=0 bad=0 line
	f=$(proxy_log)
	while IFS= read -r line; do
		n=$((n + 1))
		[ "$n" -eq 1 ] && [[ $line == "# dotproxy "* ]] && continue
		if ! jq -e '(.ts | type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))
			and (.level | IN("debug", "info", "warn", "error"))
			and (.msg | type == "string" and length > 0)
			and (.fields | type == "object")' <<<"$line" >/dev/null 2>&1; then
			echo "line $n is not a log object: $line"
			bad=$((bad + 1))
		fi
	done <"$f"
	echo "$n log lines, $bad bad"
	[ "$n" -ge 3 ] || w_fail "only $n log lines" || return 1
	[ "$bad" -eq 0 ] || w_fail "$bad lines are not JSON log objects" || return 1
}

@test "JSON logs: every line parses; no query names without --log-queries" {
	local f
	ops_start_proxy --log-format json --log-level debug
	run q whoami.test A
	assert_dot_answer
	run q +tcp whoami.test A
	assert_dot_answer
	run q nosuchname.test A
	assert_status NXDOMAIN
	stop_proxy || w_fail "proxy exit status $? on SIGTERM"
	f=$(proxy_log)
	assert_json_log
	jq -e 'select(.msg == "dotproxy starting")' <"$f" >/dev/null 2>&1 ||
		grep -q '"msg":"dotproxy starting"' "$f" || w_fail "no 'dotproxy starting' line"
	grep -q '"level":"debug"' "$f" || w_fail "--log-level debug wrote no debug line"
	! grep -Eiq 'whoami|nosuchname' "$f" || w_fail "a query name is in the log without --log-queries:
$(grep -Ei 'whoami|nosuchname' "$f")"
}

@test "JSON logs with --log-queries: the query name is in .fields.name" {
	local f names
	ops_start_proxy --log-format json --log-level info --log-queries
	run q whoami.test A
	assert_dot_answer
	run q +tcp nosuchname.test A
	assert_status NXDOMAIN
	stop_proxy || w_fail "proxy exit status $? on SIGTERM"
	f=$(proxy_log)
	assert_json_log
	names=$(tail -n +2 "$f" | jq -r 'select(.fields.name != null) | .fields.name' 2>/dev/null)
	echo "logged names: $names"
	grep -Eqx 'whoami\.test\.?' <<<"$names" || w_fail "whoami.test not in any .fields.name"
	grep -Eqx 'nosuchname\.test\.?' <<<"$names" || w_fail "nosuchname.test not in any .fields.name"
}

@test "the effective configuration is logged once at start" {
	local conf=$W_DIR/eff.conf f line
	printf 'max-inflight 77\n' >"$conf"
	DOTPROXY_MAX_PIPELINE=33 ops_start_proxy --config "$conf" --idle-timeout 4321 \
		--connections 3 --log-level info
	run q whoami.test A
	assert_dot_answer
	f=$(proxy_log)
	[ "$(grep -c 'dotproxy starting' "$f")" = 1 ] ||
		w_fail "'dotproxy starting' logged $(grep -c 'dotproxy starting' "$f") times, want 1"
	line=$(grep 'dotproxy starting' "$f")
	echo "$line"
	grep -q 'level=info' <<<"$line" || w_fail "not at level info"
	grep -Eq 'version=[^ ]+' <<<"$line" || w_fail "no version"
	# One value from each source: flag, environment, file, start_proxy's flag.
	grep -q 'idle_timeout_ms=4321' <<<"$line" || w_fail "flag --idle-timeout 4321 not shown"
	grep -q 'connections=3' <<<"$line" || w_fail "flag --connections 3 not shown"
	grep -q 'max_pipeline=33' <<<"$line" || w_fail "env DOTPROXY_MAX_PIPELINE=33 not shown"
	grep -q 'max_inflight=77' <<<"$line" || w_fail "file max-inflight 77 not shown"
	grep -q ' timeout_ms=1500' <<<"$line" || w_fail "--timeout 1500 not shown"
	grep -q "ca_file=\"$W_CA\"" <<<"$line" || w_fail "ca_file not shown"
	grep -q 'upstreams=1' <<<"$line" || w_fail "upstream count not shown"
	grep -q "upstream=$OPS_UP" "$f" || w_fail "the upstream itself is not logged"
	# Before the proxy says it is ready.
	[ "$(grep -n 'dotproxy starting' "$f" | cut -d: -f1)" -lt \
		"$(grep -n 'msg="ready"' "$f" | head -n 1 | cut -d: -f1)" ] ||
		w_fail "'dotproxy starting' is not before 'ready'"
}

@test "queries the upstream never answers free their slots; other queries keep flowing" {
	local d=$W_DIR i fails=0 pids=() srv up="192.0.2.2@8853#dot.test"
	# A DoT server that stays silent for names starting with "drop".
	up /usr/bin/python3 "$BATS_TEST_DIRNAME/../tools/silent_dot.py" 192.0.2.2 8853 \
		"$W_DIR/pki/server.pem" "$W_DIR/pki/server.key" 2>"$d/silent.log" &
	srv=$!
	w_track "$srv"
	for ((i = 0; i < 50; i++)); do
		up ss -Hlnt 'sport = :8853' | grep -q . && break
		sleep 0.1
	done
	# One connection, 8 slots: 4 unanswered queries would otherwise hold
	# half of it until the connection went quiet for a whole timeout.
	ops_start_proxy --upstream "$up" --connections 1 --max-inflight 8 --timeout 1000
	run q whoami.test A
	assert_dot_answer
	scrape "$d/u0" || w_fail "no scrape"
	for i in 1 2 3 4; do
		pod timeout 5 dig @127.0.0.1 -p 15353 +tries=1 +time=3 "drop$i.test" A \
			>"$d/drop$i.out" 2>&1 &
		pids+=("$!")
	done
	for ((i = 0; i < 25; i++)); do
		run q whoami.test A
		grep -q 'status: NOERROR,' <<<"$output" || fails=$((fails + 1))
		sleep 0.1
	done
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		grep -q 'status: SERVFAIL,' "$d/drop$i.out" ||
			w_fail "drop query $i: want SERVFAIL at the timeout" || return 1
	done
	[ "$fails" -eq 0 ] || w_fail "$fails of 25 queries failed beside the unanswered ones"
	scrape "$d/u1" || w_fail "no scrape"
	assert_delta "$d/u0" "$d/u1" "dotproxy_upstream_unanswered_total{upstream=\"$up\"}" 4
	assert_delta "$d/u0" "$d/u1" "dotproxy_upstream_errors_total{upstream=\"$up\"}" 0
	kill_tracked "$srv"
}

@test "an upstream that takes TLS and never answers: up falls to 0 at 0.5 q/s, every query unanswered; an answer brings it back" {
	local d=$W_DIR i n=7 srv pids=() ua up="192.0.2.2@8853#dot.test"
	# Silent for names starting with "drop", answering the others.
	up /usr/bin/python3 "$BATS_TEST_DIRNAME/../tools/silent_dot.py" 192.0.2.2 8853 \
		"$W_DIR/pki/server.pem" "$W_DIR/pki/server.key" 2>"$d/silent.log" &
	srv=$!
	w_track "$srv"
	for ((i = 0; i < 50; i++)); do
		up ss -Hlnt 'sport = :8853' | grep -q . && break
		sleep 0.1
	done
	# The default 3 s timeout: queries 2 s apart share a connection.
	ops_start_proxy --upstream "$up"
	scrape "$d/s0" || w_fail "no scrape"
	[ "$(mval "$d/s0" "dotproxy_upstream_up{upstream=\"$up\"}")" = 1 ] ||
		w_fail "never tried: want up 1" || return 1
	# One query every 2 s, nothing else flowing.
	for ((i = 1; i <= n; i++)); do
		pod timeout 8 dig @127.0.0.1 -p 15353 +tries=1 +time=6 "drop$i.test" A \
			>"$d/drop$i.out" 2>&1 &
		pids+=("$!")
		sleep 2
	done
	wait "${pids[@]}"
	for ((i = 1; i <= n; i++)); do
		grep -q 'status: SERVFAIL,' "$d/drop$i.out" ||
			w_fail "drop$i: want SERVFAIL at the timeout" || return 1
	done
	# The last connection's own deadline passes 3 s after its last send.
	sleep 3.5
	scrape "$d/s1" || w_fail "no scrape"
	[ "$(mval "$d/s1" "dotproxy_upstream_up{upstream=\"$up\"}")" = 0 ] ||
		w_fail "an upstream that never answers: want up 0" || return 1
	# Each query once, at its last send; one may end at the very
	# millisecond its connection does, handed back with no time left.
	ua=$(mdelta "$d/s0" "$d/s1" "dotproxy_upstream_unanswered_total{upstream=\"$up\"}")
	[ "$ua" -ge $((n - 1)) ] && [ "$ua" -le "$n" ] ||
		w_fail "unanswered moved by $ua, want $n (or $((n - 1)))" || return 1
	[ "$(mdelta "$d/s0" "$d/s1" "dotproxy_upstream_tls_handshakes_total{upstream=\"$up\"}")" -ge 3 ] ||
		w_fail "want TLS to have worked (3 handshakes or more)" || return 1
	[ "$(mdelta "$d/s0" "$d/s1" "dotproxy_upstream_answers_total{upstream=\"$up\"}")" = 0 ] ||
		w_fail "answers counted from a silent upstream" || return 1
	# A name it answers: the probe past the back-off brings it up.
	run q whoami.test A
	assert_status NOERROR
	scrape "$d/s2" || w_fail "no scrape"
	[ "$(mval "$d/s2" "dotproxy_upstream_up{upstream=\"$up\"}")" = 1 ] ||
		w_fail "answered again: want up 1" || return 1
	kill_tracked "$srv"
}

@test "an HTTP request split across segments is read whole, never with a previous request's bytes" {
	ops_start_proxy
	# A long request first, so the client slot holds bytes past the next one.
	pod curl -sS -o /dev/null -H "X-Padding: $(printf '%0200d' 0)" \
		"http://$OPS_METRICS/livez" || w_fail "first request failed"
	# shellcheck disable=SC2016 # expanded by the inner bash
	run pod timeout 5 bash -c '
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET /readyz" >&3
		sleep 0.3
		printf " HTTP/1.1\r\nHost: a\r\n\r\n" >&3
		head -n 1 <&3' _ "$OPS_METRICS"
	[ "$status" -eq 0 ] || w_fail "no answer"
	grep -q '^HTTP/1.1 200' <<<"$output" || w_fail "want 200, got: $output"
}

@test "a misspelled DOTPROXY_* variable stops the proxy: exit 2, one line naming it; the project's other variables do not" {
	# In the pod's namespace and bounded: were it ignored, the proxy would run.
	run pod timeout 5 env DOTPROXY_TIMEOUTX=1000 "$W_BIN" --upstream "$OPS_UP" \
		--ca-file "$W_CA" --listen 127.0.0.1:15399 --allow-root
	[ "$status" -eq 2 ] || w_fail "exit $status, want 2" || return 1
	[ "${#lines[@]}" -eq 1 ] || w_fail "want one line, got ${#lines[@]}" || return 1
	grep -q 'DOTPROXY_TIMEOUTX.*did you mean DOTPROXY_TIMEOUT' <<<"$output" ||
		w_fail "the line does not name it: $output" || return 1
	# dotproxy-init's and the installer's twins and the test scripts'
	# variables share the environment (one env file, one CI job).
	# (Exported in this test's own subshell only; start_proxy passes the
	# environment on.)
	export DOTPROXY_INIT_EXCLUDE_UID=1337 DOTPROXY_CNI_CNI_BIN_DIR=/x \
		DOTPROXY_DOCKER_TESTS=0 DOTPROXY_IMAGE=dotproxy:x
	ops_start_proxy
	run q whoami.test A
	assert_dot_answer
	! grep -q "unknown environment" "$(proxy_log)" ||
		w_fail "a complaint about the project's variables"
}

@test "a wildcard listener under connection tracking: a TCP local-zone query sent straight to it goes to resolv.conf, no loop" {
	local d=$W_DIR a
	echo "nameserver 192.0.2.2" >"$d/wc-resolv.conf"
	# A stateful firewall in the pod: conntrack now tracks the connections
	# nothing redirects, and SO_ORIGINAL_DST answers for them too.
	pod nft -f - <<-'EOF' || return 1
		table inet dpt_ct {
			chain input { type filter hook input priority 0; ct state new accept; }
		}
	EOF
	# The wildcard on 15354; 127.0.0.1:15353 only for start_proxy's check.
	ops_start_proxy --transparent --local-zone whoami.test \
		--resolv-conf "$d/wc-resolv.conf" \
		--listen 0.0.0.0:15354 --listen "127.0.0.1:$W_PROXY_PORT"
	scrape "$d/w0" || w_fail "no scrape"
	for a in 127.0.0.1 192.0.2.1; do
		run pod timeout 10 dig @"$a" -p 15354 +tcp +tries=1 +time=3 whoami.test A
		grep -q 'status: NOERROR,' <<<"$output" ||
			w_fail "TCP to $a:15354: want NOERROR" || return 1
		grep -q '198\.51\.100\.53' <<<"$output" ||
			w_fail "TCP to $a:15354: want the plain resolver's answer" || return 1
	done
	scrape "$d/w1" || w_fail "no scrape"
	assert_delta "$d/w0" "$d/w1" 'dotproxy_local_queries_total{resolver="resolv_conf"}' 2
	! grep -q 'forwarding loop' "$(proxy_log)" || w_fail "a forwarding loop was logged"
	pod nft delete table inet dpt_ct
}
