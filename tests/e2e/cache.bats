#!/usr/bin/env bats
# The packet cache end to end, in the pod world of helpers/pod.bash (real
# unbound upstreams that log every query they get, dotproxy-init's redirect,
# the kubelet's ndots:5 resolv.conf): hits while the upstream is frozen,
# ageing, expiry, serve-stale when the upstream dies or is slow, one
# upstream query for a burst of identical questions, negative answers,
# SIGHUP, and the ndots tax of getaddrinfo.
#
# What reached an upstream is read from that upstream's own query log, so
# no test trusts the proxy's word for what it did not send.

bats_require_minimum_version 1.5.0
load helpers/pod

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}
C_METRICS=127.0.0.1:9153
export W_CACHE=1

# Authorities have SOA records; negative answers carry them (RFC 2308).
W_UNBOUND_EXTRA_dot+=('local-data: "test. 60 IN SOA ns.test. host.test. 1 7200 900 1209600 30"')
W_UNBOUND_EXTRA_plain+=("log-queries: yes"
	'local-data: "cluster.local. 60 IN SOA ns.cluster.local. host.cluster.local. 1 7200 900 1209600 30"')

setup_file() { pod_file_setup; }

teardown_file() {
	local pod=${W_POD:-} up=${W_UP:-}
	pod_teardown
	[ -f "$BATS_FILE_TMPDIR/root.before" ] || return 0
	pod_root_state >"$BATS_FILE_TMPDIR/root.after"
	diff -u "$BATS_FILE_TMPDIR/root.before" "$BATS_FILE_TMPDIR/root.after"
	pod_root_gone "$pod" "$up"
}

setup() {
	# A frozen upstream from a failed test must not freeze the next one.
	c_thaw
	unbound_alive unbound-dot || dot_unbound_start
}

teardown() {
	c_thaw
	proxy_test_teardown
}

unbound_alive() {
	local pid
	pid=$(cat "$W_DIR/$1.pid" 2>/dev/null)
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

c_freeze() { kill -STOP "$(cat "$W_DIR/unbound-dot.pid")"; }
c_thaw() {
	local pid
	pid=$(cat "$W_DIR/unbound-dot.pid" 2>/dev/null) || return 0
	[ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null || true
}

# Queries for NAME the DoT upstream logged.
dot_count() {
	grep -c " $1\\. A IN" "$W_DIR/unbound-dot.log" || true
}

# Queries for NAME (any type) the first plain resolver logged.
plain_count() {
	grep -c " $1\\. " "$W_DIR/unbound-plain.log" || true
}

# metric NAME: its value on the proxy's /metrics (0 when absent).
metric() {
	pod curl -sS --max-time 5 "http://$C_METRICS/metrics" |
		awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

# TTL of the first answer record in $output (dig).
first_ttl() {
	awk '/^;; ANSWER SECTION:/ { a = 1; next } a && NF >= 5 { print $2; exit }' <<<"$output"
}

@test "a repeated question is answered from the cache while the upstream is frozen, with the client's ID and case" {
	pod_start_proxy
	before=$(dot_count whoami.test)
	run q whoami.test A
	assert_dot_answer
	c_freeze
	# ID 0xabcd, question WhOaMi.TeSt A: both must come back as sent.
	run pod timeout 10 "$DNSRAW" -w 2000 udp 127.0.0.1 "$W_PROXY_PORT" \
		abcd010000010000000000000657684f614d6904546553740000010001
	grep -q 'reply len=[0-9]* id=abcd qr=1 opcode=0 aa=[01] tc=0 rcode=0 qd=1 an=1 ' <<<"$output" ||
		w_fail "want NOERROR with ID abcd and one answer from the cache"
	grep -q '^hex abcd8.*0657684f614d6904546553740000010001c00c' <<<"$output" ||
		w_fail "want the question in the client's case"
	grep -q 'cb007101$' <<<"$output" || w_fail "want 203.0.113.1 as the answer"
	# kdig checks the ID too (it ignores answers with another).
	run pod timeout 10 kdig @127.0.0.1 -p "$W_PROXY_PORT" +time=2 +retry=0 whoami.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NOERROR from kdig"
	[ "$(dot_count whoami.test)" -eq $((before + 1)) ] ||
		w_fail "the upstream saw $(($(dot_count whoami.test) - before)) queries, want 1"
	assert_logged whoami.test. "cache=hit"
}

@test "a cached answer's TTL is lowered by its age" {
	pod_start_proxy
	run q whoami.test A
	assert_dot_answer
	sleep 2.2
	run q whoami.test A
	assert_dot_answer
	ttl=$(first_ttl)
	[ "$ttl" -le 58 ] && [ "$ttl" -ge 50 ] || w_fail "want TTL 50..58 after 2 s, got $ttl"
}

@test "after its TTL an answer is asked for again (--cache-max-ttl)" {
	pod_start_proxy --cache-max-ttl 1 --cache-stale-max 0
	run q n11.test A
	run q n11.test A
	[ "$(dot_count n11.test)" -eq 1 ] || w_fail "within the TTL: want 1 upstream query, got $(dot_count n11.test)"
	sleep 1.3
	run q n11.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NOERROR"
	[ "$(dot_count n11.test)" -eq 2 ] || w_fail "after the TTL: want 2 upstream queries, got $(dot_count n11.test)"
}

@test "with the upstream killed, an expired answer is served stale with TTL 30, and the log says so" {
	pod_start_proxy --cache-max-ttl 1
	run q whoami.test A
	assert_dot_answer
	sleep 1.3
	dot_unbound_stop
	run q whoami.test A
	assert_dot_answer
	[ "$(first_ttl)" = 30 ] || w_fail "want TTL 30 on a stale answer, got $(first_ttl)"
	grep -q 'answered from the cache with a stale entry' "$(proxy_log)" ||
		w_fail "no log line about the stale answer"
	# A name never seen before still fails: nothing stale to give.
	run q n12.test A
	grep -q 'status: SERVFAIL' <<<"$output" || w_fail "want SERVFAIL for an uncached name"
	dot_unbound_start
}

@test "a slow upstream: the stale answer comes after --cache-client-timeout, the refresh goes on" {
	pod_start_proxy --cache-max-ttl 1 --cache-client-timeout 300 --timeout 3000
	run q whoami.test A
	assert_dot_answer
	sleep 1.3
	c_freeze
	start=$(date +%s%N)
	run q whoami.test A
	took=$((($(date +%s%N) - start) / 1000000))
	assert_dot_answer
	[ "$(first_ttl)" = 30 ] || w_fail "want the stale answer (TTL 30), got TTL $(first_ttl)"
	[ "$took" -lt 2500 ] || w_fail "the stale answer took $took ms, want well below the 3 s timeout"
	c_thaw
	# The refresh that went on after the stale answer fills the cache.
	sleep 0.5
	run q whoami.test A
	assert_dot_answer
	[ "$(first_ttl)" != 30 ] || w_fail "after the refresh the answer is still the stale one"
}

@test "a burst of identical concurrent questions reaches the upstream once" {
	pod_start_proxy --metrics "$C_METRICS" --timeout 15000
	run q whoami.test A
	assert_dot_answer
	c_freeze
	pids=()
	for i in $(seq 1 20); do
		pod timeout 20 dig @127.0.0.1 -p "$W_PROXY_PORT" +tries=1 +time=15 +short \
			n77.test A >"$W_DIR/burst.$i" 2>&1 &
		pids+=($!)
	done
	sleep 0.5
	c_thaw
	wait "${pids[@]}"
	for i in $(seq 1 20); do
		grep -qxF 198.51.100.78 "$W_DIR/burst.$i" || w_fail "client $i: $(cat "$W_DIR/burst.$i")"
	done
	[ "$(dot_count n77.test)" -eq 1 ] || w_fail "the upstream saw $(dot_count n77.test) queries for n77.test, want 1"
	# On a loaded machine a late client may find the answer cached already.
	c=$(metric dotproxy_cache_coalesced_total)
	h=$(metric dotproxy_cache_hits_total)
	[ "$c" -ge 10 ] && [ $((c + h)) -ge 19 ] ||
		w_fail "want 19 coalesced or answered from the cache, got $c coalesced, $h hits"
}

@test "NXDOMAIN and NODATA are cached from the SOA; SERVFAIL only for --cache-servfail-ttl" {
	pod_start_proxy --metrics "$C_METRICS" --cache-servfail-ttl 1
	run q nothere.test A
	grep -q 'status: NXDOMAIN' <<<"$output" || w_fail "want NXDOMAIN"
	run q nothere.test A
	grep -q 'status: NXDOMAIN' <<<"$output" || w_fail "want NXDOMAIN again"
	grep -Eq '^test\.[[:space:]]+(29|30)[[:space:]]+IN[[:space:]]+SOA' <<<"$output" ||
		w_fail "want the SOA with the negative TTL (MINIMUM 30)"
	[ "$(dot_count nothere.test)" -eq 1 ] || w_fail "NXDOMAIN asked $(dot_count nothere.test) times, want 1"
	run q whoami.test AAAA
	run q whoami.test AAAA
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NODATA (NOERROR)"
	[ "$(grep -c ' whoami\.test\. AAAA IN' "$W_DIR/unbound-dot.log")" -eq 1 ] || w_fail "NODATA asked twice"
	# A failure is remembered briefly: the upstream frozen, one timeout,
	# then the next query fails at once without asking.
	c_freeze
	run q n13.test A +time=4
	grep -q 'status: SERVFAIL' <<<"$output" || w_fail "want SERVFAIL after the timeout"
	c_thaw
	start=$(date +%s%N)
	run q n13.test A
	took=$((($(date +%s%N) - start) / 1000000))
	grep -q 'status: SERVFAIL' <<<"$output" || w_fail "want the cached SERVFAIL"
	[ "$took" -lt 1000 ] || w_fail "the cached failure took $took ms"
	sleep 1.2
	run q n13.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "after --cache-servfail-ttl the name resolves again"
}

@test "--cache-size 0 turns the cache off: every question goes upstream" {
	pod_start_proxy --cache-size 0 --metrics "$C_METRICS"
	run q n21.test A
	run q n21.test A
	[ "$(dot_count n21.test)" -eq 2 ] || w_fail "want 2 upstream queries, got $(dot_count n21.test)"
	run pod curl -sS --max-time 5 "http://$C_METRICS/metrics"
	! grep -q '^dotproxy_cache_entries ' <<<"$output" || w_fail "no cache, no entries gauge"
}

@test "metrics count hits, misses, entries and bytes; the query log says where the answer came from" {
	pod_start_proxy --metrics "$C_METRICS"
	run q n31.test A
	run q n31.test A
	run q n31.test A
	[ "$(metric dotproxy_cache_hits_total)" -eq 2 ] || w_fail "want 2 hits, got $(metric dotproxy_cache_hits_total)"
	[ "$(metric dotproxy_cache_misses_total)" -eq 1 ] || w_fail "want 1 miss, got $(metric dotproxy_cache_misses_total)"
	[ "$(metric dotproxy_cache_entries)" -eq 1 ] || w_fail "want 1 entry, got $(metric dotproxy_cache_entries)"
	[ "$(metric dotproxy_cache_bytes)" -gt 0 ] || w_fail "want bytes > 0"
	[ "$(metric 'dotproxy_responses_total{rcode="NOERROR",source="cache"}')" -eq 2 ] ||
		w_fail "want 2 responses from the cache"
	assert_logged n31.test. "cache=miss"
	assert_logged n31.test. "cache=hit"
}

@test "the cache survives SIGHUP with the same upstreams and is emptied when they change" {
	conf=$W_DIR/cache.conf
	printf 'upstream 192.0.2.2@853#dot.test\nca-file %s\n' "$W_CA" >"$conf"
	W_NO_DEFAULT_UPSTREAM=1 pod_start_proxy --config "$conf" --metrics "$C_METRICS"
	run q n41.test A
	kill -HUP "$(proxy_pid)"
	for _ in $(seq 50); do grep -q 'configuration reloaded' "$(proxy_log)" && break; sleep 0.1; done
	run q n41.test A
	[ "$(dot_count n41.test)" -eq 1 ] || w_fail "same upstreams: want the cached answer, upstream saw $(dot_count n41.test)"
	printf 'upstream 192.0.2.2@853#dot.test\nupstream 2001:db8::2@853#dot.test\nca-file %s\n' "$W_CA" >"$conf"
	kill -HUP "$(proxy_pid)"
	for _ in $(seq 50); do grep -q 'cache emptied' "$(proxy_log)" && break; sleep 0.1; done
	grep -q 'cache emptied' "$(proxy_log)" || w_fail "no 'cache emptied' line"
	run q n41.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NOERROR"
	[ "$(dot_count n41.test)" -eq 2 ] || w_fail "new upstreams: want a fresh query, upstream saw $(dot_count n41.test)"
}

@test "SIGHUP applies the cache settings: TTLs in place, a new size empties the cache; the logs show them" {
	conf=$W_DIR/cache2.conf
	printf 'upstream 192.0.2.2@853#dot.test\nca-file %s\n' "$W_CA" >"$conf"
	W_NO_DEFAULT_UPSTREAM=1 pod_start_proxy --config "$conf"
	grep -q 'msg="cache" size=10000 bytes=16777216 min_ttl=0 ' "$(proxy_log)" ||
		w_fail "the start log has no cache line with the settings"
	run q n42.test A
	printf 'upstream 192.0.2.2@853#dot.test\nca-file %s\ncache-min-ttl 10\n' "$W_CA" >"$conf"
	kill -HUP "$(proxy_pid)"
	for _ in $(seq 50); do grep -q 'cache settings applied' "$(proxy_log)" && break; sleep 0.1; done
	grep -q 'cache settings applied.*min_ttl=10' "$(proxy_log)" || w_fail "no 'cache settings applied' line"
	grep -q 'msg="cache" size=10000 bytes=16777216 min_ttl=10 ' "$(proxy_log)" ||
		w_fail "the reload log has no cache line with the new settings"
	run q n42.test A
	[ "$(dot_count n42.test)" -eq 1 ] || w_fail "new TTLs: want the cached answer, upstream saw $(dot_count n42.test)"
	printf 'upstream 192.0.2.2@853#dot.test\nca-file %s\ncache-min-ttl 10\ncache-size 500\n' "$W_CA" >"$conf"
	kill -HUP "$(proxy_pid)"
	for _ in $(seq 50); do grep -q 'cache resized and emptied' "$(proxy_log)" && break; sleep 0.1; done
	grep -q 'cache resized and emptied.*entries=500' "$(proxy_log)" || w_fail "no 'cache resized and emptied' line"
	run q n42.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NOERROR"
	[ "$(dot_count n42.test)" -eq 2 ] || w_fail "new size: want a fresh query, upstream saw $(dot_count n42.test)"
	printf 'upstream 192.0.2.2@853#dot.test\nca-file %s\ncache-min-ttl 3600\ncache-max-ttl 60\n' "$W_CA" >"$conf"
	kill -HUP "$(proxy_pid)"
	for _ in $(seq 50); do grep -q 'configuration reload refused' "$(proxy_log)" && break; sleep 0.1; done
	grep -q 'configuration reload refused.*cache-min-ttl 3600 (.*cache2.conf:3) is above --cache-max-ttl 60' "$(proxy_log)" ||
		w_fail "contradictory clamps were not refused"
}

@test "with ndots:5, repeating getaddrinfo sends nothing new to either resolver within the TTL" {
	pod_start_proxy
	run app "$GAI" whoami.test
	[ "$status" -eq 0 ] || w_fail "gai exit $status"
	[ "${lines[0]}" = "whoami.test 203.0.113.1" ] || w_fail "first lookup: ${lines[0]}"
	dot_before=$(wc -l <"$W_DIR/unbound-dot.log")
	plain_before=$(wc -l <"$W_DIR/unbound-plain.log")
	[ "$(plain_count whoami.test.ns.svc.cluster.local)" -ge 1 ] ||
		w_fail "the search-list expansions did not reach the plain resolver the first time"
	for _ in 1 2 3; do
		run app "$GAI" whoami.test
		[ "${lines[0]}" = "whoami.test 203.0.113.1" ] || w_fail "repeat: ${lines[0]}"
	done
	[ "$(wc -l <"$W_DIR/unbound-dot.log")" -eq "$dot_before" ] ||
		w_fail "the DoT upstream was asked again: $(tail -n 5 "$W_DIR/unbound-dot.log")"
	[ "$(wc -l <"$W_DIR/unbound-plain.log")" -eq "$plain_before" ] ||
		w_fail "the cluster resolver was asked again: $(tail -n 5 "$W_DIR/unbound-plain.log")"
}

@test "a cached answer is fitted to each client: TC within its UDP size, 512 and no OPT without EDNS" {
	pod_start_proxy
	run q big.test A +tcp
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want the whole answer over TCP"
	[ "$(answer_count)" = 100 ] || w_fail "want 100 records over TCP, got $(answer_count)"
	before=$(grep -c ' big\.test\. A IN' "$W_DIR/unbound-dot.log")
	run q big.test A +bufsize=1232 +ignore
	has_tc || w_fail "want TC=1 for a 1232-byte client"
	[ "$(msg_size)" -le 1232 ] || w_fail "want at most 1232 bytes, got $(msg_size)"
	run q big.test A +noedns +ignore
	has_tc || w_fail "want TC=1 without EDNS"
	[ "$(msg_size)" -le 512 ] || w_fail "want at most 512 bytes without EDNS, got $(msg_size)"
	! grep -q 'OPT PSEUDOSECTION' <<<"$output" || w_fail "no OPT for a client without EDNS"
	run q big.test A +bufsize=4096
	! has_tc || w_fail "a 4096-byte client gets it all"
	[ "$(answer_count)" = 100 ] || w_fail "want 100 records, got $(answer_count)"
	[ "$(grep -c ' big\.test\. A IN' "$W_DIR/unbound-dot.log")" -eq "$before" ] ||
		w_fail "the hits went to the upstream"
}

@test "an entry asked for in the last tenth of its TTL is refreshed in the background: it never misses" {
	pod_start_proxy --cache-max-ttl 10 --metrics "$C_METRICS"
	run q n51.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want NOERROR"
	sleep 9.3
	run q n51.test A
	grep -q 'status: NOERROR' <<<"$output" || w_fail "want the cached answer"
	[ "$(first_ttl)" -le 1 ] || w_fail "want the old entry's last second, got TTL $(first_ttl)"
	for _ in $(seq 30); do
		[ "$(dot_count n51.test)" -ge 2 ] && break
		sleep 0.1
	done
	[ "$(dot_count n51.test)" -eq 2 ] || w_fail "want a background refresh, upstream saw $(dot_count n51.test)"
	[ "$(metric dotproxy_cache_prefetches_total)" -eq 1 ] || w_fail "want 1 prefetch"
	sleep 1
	run q n51.test A
	[ "$(first_ttl)" -ge 7 ] || w_fail "want the refreshed entry (TTL near 10), got $(first_ttl)"
	[ "$(metric dotproxy_cache_misses_total)" -eq 1 ] ||
		w_fail "only the first query may miss, got $(metric dotproxy_cache_misses_total)"
	[ "$(dot_count n51.test)" -eq 2 ] || w_fail "the refreshed entry went upstream again"
}
