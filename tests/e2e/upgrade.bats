#!/usr/bin/env bats
# Several event loops and upgrades without a lost query (issue 18, items 3
# and 4), against the world's real unbound DoT upstream:
# - --workers auto follows the CPUs the process may use (1 as a sidecar);
# - --workers 2: both loops answer (per-worker counters), /metrics is their
#   sum, SIGHUP reaches every worker, SIGTERM drains them all;
# - two processes serve one address at once (SO_REUSEPORT);
# - a rolling upgrade (second process started with the same
#   --handover-socket, first sent SIGTERM) under 2000 queries/s over UDP
#   loses no query, and every answer is NOERROR;
# - the metrics listener goes with the handover: one socket, held by the
#   new process alone, and no probe refused meanwhile (a DaemonSet's surge
#   pod shares the node's metrics address with the old one).
# shellcheck disable=SC2154

load helpers/world
load helpers/upgrade

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

setup_file() {
	command -v dnsperf >/dev/null || {
		echo "dnsperf is missing (scripts/deps.sh)" >&2
		return 1
	}
	world_file_setup
}
teardown_file() { world_teardown; }

teardown() {
	local n
	[ -n "${BATS_TEST_COMPLETED:-}" ] || for n in a b w; do
		[ -f "$W_DIR/$n.log" ] && { echo "--- $n.log:"; grep -v 'msg="query"' "$W_DIR/$n.log" | tail -n 25; }
	done
	for n in a b w; do
		[ -f "$W_DIR/$n.pid" ] && upg_alive "$n" && upg_stop "$n" KILL >/dev/null
		rm -f "$W_DIR/$n.pid" "$W_DIR/$n.rc" "$W_DIR/$n.log"
	done
	return 0
}

@test "--workers auto: one loop per CPU the process may use, one as a sidecar" {
	UPG_TASKSET=0 upg_start w
	grep -q 'msg="ready" workers=1$' "$W_DIR/w.log" || w_fail "pinned to one CPU: want 1 worker"
	[ "$(upg_stop w)" = 0 ] || w_fail "exit status"
	if [ "$(nproc)" -ge 2 ]; then
		UPG_TASKSET=0,1 upg_start w
		grep -q 'msg="ready" workers=2$' "$W_DIR/w.log" || w_fail "two CPUs: want 2 workers"
		[ "$(upg_stop w)" = 0 ] || w_fail "exit status"
	fi
	UPG_TASKSET=0,1 upg_start w --transparent --listen 127.0.0.1:15353
	grep -q 'msg="ready" workers=1$' "$W_DIR/w.log" || w_fail "--transparent: want 1 worker"
	[ "$(upg_stop w)" = 0 ] || w_fail "exit status"
}

@test "--workers 2: both loops answer and /metrics sums them" {
	upg_start w --workers 2 --metrics 127.0.0.1:9153
	run pod timeout 60 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -d "$W_DIR/queries.txt" \
		-c 20 -n 1 -t 5
	[ "$status" -eq 0 ] || w_fail "dnsperf exit $status"
	assert_dnsperf_clean
	w0=$(upg_metric 9153 'dotproxy_worker_queries_total{worker="0"}')
	w1=$(upg_metric 9153 'dotproxy_worker_queries_total{worker="1"}')
	total=$(upg_metric_sum 9153 dotproxy_queries_total)
	up=$(upg_metric_sum 9153 dotproxy_upstream_queries_total)
	echo "# worker 0: $w0, worker 1: $w1, total $total, upstream $up" >&3
	[ "${w0:-0}" -gt 0 ] && [ "${w1:-0}" -gt 0 ] || w_fail "want queries on both workers: $w0 / $w1"
	[ "$total" -eq 5000 ] || w_fail "dotproxy_queries_total sums to $total, want 5000"
	[ $((w0 + w1)) -eq "$total" ] || w_fail "per-worker $w0 + $w1 != $total"
	[ "$up" -eq 5000 ] || w_fail "upstream queries sum to $up, want 5000 (cache off)"
	[ "$(upg_metric 9153 dotproxy_workers)" = 2 ] || w_fail "dotproxy_workers"
	# Not --transparent: no rule marks a packet, so no mark is asked for
	# (a control message per datagram would be work for nothing).
	[ "$(upg_metric_sum 9153 dotproxy_udp_marks_total)" = 0 ] ||
		w_fail "marks read without the redirect: $(upg_metric_sum 9153 dotproxy_udp_marks_total)"
	[ "$(upg_stop w)" = 0 ] || w_fail "exit status"
}

@test "--workers 2: SIGHUP reaches every worker" {
	conf=$W_DIR/w.conf
	echo "upstream 192.0.2.2@853#dot.test" >"$conf"
	chmod 0644 "$conf"
	upg_start w --workers 2 --metrics 127.0.0.1:9153 --config "$conf"
	echo "upstream 2001:db8::2@853#dot.test" >"$conf"
	kill -HUP "$(cat "$W_DIR/w.pid")"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c 'msg="upstreams swapped"' "$W_DIR/w.log")" -ge 2 ] && break
		sleep 0.1
	done
	grep -q 'msg="upstreams swapped" worker=0 ' "$W_DIR/w.log" || w_fail "worker 0 not reloaded"
	grep -q 'msg="upstreams swapped" worker=1 ' "$W_DIR/w.log" || w_fail "worker 1 not reloaded"
	run pod timeout 60 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -d "$W_DIR/queries.txt" \
		-c 20 -n 1 -t 5
	assert_dnsperf_clean
	[ "$(upg_metric 9153 'dotproxy_worker_queries_total{worker="1"}')" -gt 0 ] ||
		w_fail "worker 1 took no queries"
	new=$(upg_metric 9153 'dotproxy_upstream_queries_total{upstream="2001:db8::2@853#dot.test"}')
	old=$(upg_metric 9153 'dotproxy_upstream_queries_total{upstream="192.0.2.2@853#dot.test"}')
	[ "${new:-0}" -eq 5000 ] || w_fail "the new upstream got ${new:-0} of 5000"
	[ -z "$old" ] || w_fail "a worker still uses the old upstream ($old queries)"
	[ "$(upg_stop w)" = 0 ] || w_fail "exit status"
}

@test "--workers 2: SIGTERM drains every worker, in-flight queries answered" {
	upg_start w --workers 2
	(pod timeout 30 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -d "$W_DIR/queries.txt" \
		-c 20 -Q 2000 -l 3 -t 3 >"$W_DIR/perf-w.out" 2>&1) &
	perf=$!
	sleep 1
	[ "$(upg_stop w)" = 0 ] || w_fail "exit status after SIGTERM under load"
	wait "$perf"
	grep -q 'msg="stopped"' "$W_DIR/w.log" || w_fail "no clean stop"
	! grep -q 'answering the rest with SERVFAIL' "$W_DIR/w.log" ||
		w_fail "in-flight queries were failed, not answered"
	completed=$(upg_perf "$W_DIR/perf-w.out" completed)
	noerror=$(upg_perf "$W_DIR/perf-w.out" noerror)
	[ "${completed:-0}" -gt 500 ] || w_fail "too little load: $(cat "$W_DIR/perf-w.out")"
	[ "$noerror" = "$completed" ] || w_fail "answers other than NOERROR: $(cat "$W_DIR/perf-w.out")"
}

@test "two processes serve one address at once (SO_REUSEPORT)" {
	upg_start a --workers 1 --metrics 127.0.0.1:9153
	upg_start b --workers 1 --metrics 127.0.0.1:9154
	run pod timeout 60 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -d "$W_DIR/queries.txt" \
		-c 20 -n 1 -t 5
	assert_dnsperf_clean
	qa=$(upg_metric_sum 9153 dotproxy_queries_total)
	qb=$(upg_metric_sum 9154 dotproxy_queries_total)
	[ "$qa" -gt 0 ] && [ "$qb" -gt 0 ] || w_fail "want both processes answering: $qa / $qb"
	[ $((qa + qb)) -eq 5000 ] || w_fail "$qa + $qb != 5000"
	[ "$(upg_stop a)" = 0 ] && [ "$(upg_stop b)" = 0 ] || w_fail "exit status"
}

@test "rolling upgrade under 2000 queries/s over UDP: zero lost" {
	ho=$(upg_dir)/ho.sock
	upg_start a --workers 2 --handover-socket "$ho"
	(pod timeout 60 dnsperf -s 127.0.0.1 -p "$W_PROXY_PORT" -d "$W_DIR/queries.txt" \
		-c 20 -Q 2000 -l 6 -t 4 >"$W_DIR/perf-up.out" 2>&1) &
	perf=$!
	sleep 2
	upg_start b --workers 2 --handover-socket "$ho"
	grep -q 'msg="listening sockets taken over"' "$W_DIR/b.log" || w_fail "b took nothing over"
	grep -q 'msg="listening sockets handed over"' "$W_DIR/a.log" || w_fail "a handed nothing over"
	[ "$(upg_stop a)" = 0 ] || w_fail "a: exit status after SIGTERM"
	grep -q 'msg="stopping: the sockets were handed over"' "$W_DIR/a.log" ||
		w_fail "a did not stop at once after the handover"
	wait "$perf"
	cat "$W_DIR/perf-up.out" >&3
	output=$(cat "$W_DIR/perf-up.out")
	sent=$(upg_perf "$W_DIR/perf-up.out" sent)
	[ "${sent:-0}" -ge 9000 ] || w_fail "want ~12000 queries at 2000/s, sent ${sent:-0}"
	assert_dnsperf_clean
	upg_alive b || w_fail "b is gone"
	run q whoami.test
	assert_dot_answer
	# The TCP listeners came over too.
	run q +tcp whoami.test
	assert_dot_answer
	[ "$(upg_stop b)" = 0 ] || w_fail "b: exit status"
}

@test "the metrics listener goes with the handover: probes never refused, the new process answers them" {
	ho=$(upg_dir)/ho.sock
	upg_start a --workers 1 --handover-socket "$ho" --metrics 127.0.0.1:9153
	pa=$(cat "$W_DIR/a.pid")
	# A kubelet's probes of the node's address during the update, every
	# 20 ms: a refused or failed one is counted.
	(
		fails=0 n=0
		for ((i = 0; i < 150; i++)); do
			n=$((n + 1))
			pod curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:9153/readyz" ||
				fails=$((fails + 1))
			sleep 0.02
		done
		echo "$n $fails" >"$W_DIR/probes.out"
	) &
	probes=$!
	sleep 0.5
	upg_start b --workers 1 --handover-socket "$ho" --metrics 127.0.0.1:9153
	pb=$(cat "$W_DIR/b.pid")
	# One listening socket on the metrics address, and only b holds it:
	# a gave its copy up once b had taken it.
	holders=$(pod ss -Hltnp 'sport = :9153')
	echo "# $holders" >&3
	[ "$(grep -c . <<<"$holders")" -eq 1 ] || w_fail "want one metrics listener: $holders"
	[[ "$holders" == *"pid=$pb,"* ]] || w_fail "b does not hold the metrics listener"
	[[ "$holders" != *"pid=$pa,"* ]] || w_fail "a still accepts on the metrics address"
	[ "$(upg_stop a)" = 0 ] || w_fail "a: exit status after SIGTERM"
	wait "$probes"
	read -r n fails <"$W_DIR/probes.out"
	echo "# probes: $n, failed: $fails" >&3
	[ "$n" -eq 150 ] && [ "$fails" -eq 0 ] || w_fail "$fails of $n probes failed"
	[ "$(pod curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9153/readyz)" = 200 ] ||
		w_fail "b's /readyz"
	[ "$(upg_stop b)" = 0 ] || w_fail "b: exit status"
}
