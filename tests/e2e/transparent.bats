#!/usr/bin/env bats
# Transparent interception, end to end, in a Kubernetes-like pod (see
# helpers/pod.bash): dotproxy-init's rules in the pod namespace, dotproxy
# --transparent as UID 15353, unmodified clients (dig, glibc getaddrinfo,
# dotproxy-init --validate) as UID 1000 asking the pod's resolver
# 192.0.2.2 (or any other address) on port 53.
#
# What reached which server is told apart by the answers: whoami.test is
# 203.0.113.1 over DoT but 198.51.100.53 from the plain resolver, and
# web.ns.svc.cluster.local is .10 from 192.0.2.2 but .11 from 192.0.2.3.
# The DoT unbound logs every query, so a leaked cluster name shows.
# Init-only behaviour (idempotence, --dry-run, --check, --cleanup, no
# CAP_NET_ADMIN) is in init.bats.

bats_require_minimum_version 1.5.0
load helpers/pod

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() { pod_file_setup; }

teardown_file() {
	local pod=${W_POD:-} up=${W_UP:-}
	pod_teardown
	[ -f "$BATS_FILE_TMPDIR/root.before" ] || return 0
	pod_root_state >"$BATS_FILE_TMPDIR/root.after"
	diff -u "$BATS_FILE_TMPDIR/root.before" "$BATS_FILE_TMPDIR/root.after"
	pod_root_gone "$pod" "$up"
}

setup() { pod_start_proxy; }
teardown() { proxy_test_teardown; }

@test "app UDP and TCP to the pod's resolver over IPv4: answered over DoT, from 192.0.2.2" {
	run adig @192.0.2.2 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	assert_server 192.0.2.2 UDP
	assert_logged whoami.test. "qtype=1 transport=udp path=dot to=dot"

	run adig @192.0.2.2 +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig +tcp exit $status"
	assert_dot_answer
	assert_server 192.0.2.2 TCP
	assert_logged whoami.test. "qtype=1 transport=tcp path=dot to=dot"
}

@test "app UDP and TCP to the pod's resolver over IPv6: answered over DoT, from 2001:db8::2" {
	run adig @2001:db8::2 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	assert_server 2001:db8::2 UDP

	run adig @2001:db8::2 +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig +tcp exit $status"
	assert_dot_answer
	assert_server 2001:db8::2 TCP
	[ "$(grep -c 'msg="query" name=whoami\.test\. .* path=dot' "$(proxy_log)")" -eq 2 ] ||
		w_fail "want 2 DoT query lines in the proxy log"
}

@test "a query to a resolver address that does not exist is still answered over DoT" {
	run adig @203.0.113.99 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	assert_server 203.0.113.99 UDP

	run adig @203.0.113.99 +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig +tcp exit $status"
	assert_dot_answer
	assert_server 203.0.113.99 TCP
}

@test "reverse lookups of private ranges and single-label names stay local, public ones go over DoT" {
	local name
	for name in 1.0.0.10.in-addr.arpa 1.0.168.192.in-addr.arpa \
		1.0.64.100.in-addr.arpa 1.0.127.100.in-addr.arpa \
		1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa; do
		run adig @192.0.2.2 "$name" PTR
		[ "$status" -eq 0 ] || w_fail "dig exit $status for $name"
		assert_logged "$name." "transport=udp path=local to=192.0.2.2:53"
	done
	run adig @192.0.2.2 web A
	assert_logged web. "transport=udp path=local to=192.0.2.2:53"
	# 100.128.0.0 is outside the shared range: a public reverse name.
	run adig @192.0.2.2 1.0.128.100.in-addr.arpa PTR
	assert_logged 1.0.128.100.in-addr.arpa. "transport=udp path=dot to=dot"
}

@test "local-zone names go in plain DNS to the pod's resolver, UDP and TCP, never to DoT" {
	run adig @192.0.2.2 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server 192.0.2.2 UDP
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.2:53"

	run adig @192.0.2.2 +tcp web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig +tcp exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server 192.0.2.2 TCP
	assert_logged web.ns.svc.cluster.local. "transport=tcp path=local to=192.0.2.2:53"

	# The local resolver's NXDOMAIN is passed through, not invented.
	run adig @192.0.2.2 nosuch.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_status NXDOMAIN

	run dot_log
	! grep -qi 'cluster\.local' <<<"$output" ||
		w_fail "a cluster.local name reached the DoT upstream"
}

@test "TCP local-zone query goes to its original destination (SO_ORIGINAL_DST), IPv4 and IPv6" {
	run adig @192.0.2.3 +tcp web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_server 192.0.2.3 TCP
	assert_logged web.ns.svc.cluster.local. "transport=tcp path=local to=192.0.2.3:53"

	run adig @2001:db8::3 +tcp web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig -6 exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_server 2001:db8::3 TCP
	assert_logged web.ns.svc.cluster.local. "transport=tcp path=local to=[2001:db8::3]:53"
}

@test "UDP local-zone query without CAP_NET_ADMIN goes to its original destination (the packet mark)" {
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_server 192.0.2.3 UDP
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.3:53"
	! grep -q 'UDP original destination unavailable' "$(proxy_log)" ||
		w_fail "the conntrack path was tried"
}

@test "UDP local-zone query without CAP_NET_ADMIN and without the mark falls back to resolv.conf, and says so once" {
	local h
	# A table without its mark rules (as an older dotproxy-init made it).
	for h in $(pod nft -a list chain inet dotproxy ct_zone |
		awk '/meta mark set/ { print $NF }'); do
		pod nft delete rule inet dotproxy ct_zone handle "$h"
	done
	local _
	for _ in 1 2; do
		run adig @192.0.2.3 web.ns.svc.cluster.local A
		[ "$status" -eq 0 ] || w_fail "dig exit $status"
		# Answered by 192.0.2.2 (the first nameserver), sent from 192.0.2.3.
		assert_a web.ns.svc.cluster.local 198.51.100.10
		assert_server 192.0.2.3 UDP
	done
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.2:53"
	run grep -c 'msg="UDP original destination unavailable"' "$(proxy_log)"
	[ "$output" = 1 ] || w_fail "want the fallback logged exactly once, got $output"
	grep 'UDP original destination unavailable' "$(proxy_log)" | grep -q 'fallback=resolv.conf' ||
		w_fail "the log line does not name the fallback"
	pod "$DOTPROXY_INIT" >/dev/null
}

@test "UDP local-zone query with ambient CAP_NET_ADMIN goes to its original destination (conntrack)" {
	stop_proxy || w_fail "default proxy did not stop cleanly"
	pod_start_proxy_netadmin
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_server 192.0.2.3 UDP
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.3:53"

	run adig @2001:db8::3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig -6 exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_server 2001:db8::3 UDP
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=[2001:db8::3]:53"

	# And the pod's own resolver still gets its own queries.
	run adig @192.0.2.2 web.ns.svc.cluster.local A
	assert_a web.ns.svc.cluster.local 198.51.100.10
	! grep -q 'UDP original destination unavailable' "$(proxy_log)" ||
		w_fail "conntrack lookup failed despite CAP_NET_ADMIN"
}

@test "the proxy's own UID is not captured: it reaches the plain resolver" {
	run as_proxy_uid dig +tries=1 +time=5 @192.0.2.2 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	grep -Eq '^whoami\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+198\.51\.100\.53$' \
		<<<"$output" || w_fail "want the plain answer 198.51.100.53"
	assert_server 192.0.2.2 UDP
	! grep -q 'msg="query" name=whoami' "$(proxy_log)" ||
		w_fail "the proxy UID's query went through the proxy"
}

@test "a large answer reaches the app through TC=1 and then TCP" {
	run adig @192.0.2.2 +bufsize=512 +ignore big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	has_tc || w_fail "want TC=1 for a 512-byte client"
	[ "$(msg_size)" -le 512 ] || w_fail "UDP answer of $(msg_size) bytes > 512"
	assert_server 192.0.2.2 UDP

	# An ordinary client retries over TCP by itself and gets everything.
	run adig @192.0.2.2 big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_status NOERROR
	[ "$(answer_count)" = 100 ] || w_fail "want 100 records, got $(answer_count)"
	assert_server 192.0.2.2 TCP
	assert_logged big.test. "transport=udp path=dot to=dot"
	assert_logged big.test. "transport=tcp path=dot to=dot"
}

@test "glibc getaddrinfo with the pod's resolv.conf: cluster names via the search list, external over DoT" {
	run app "$GAI" web web.ns.svc.cluster.local whoami.test
	[ "$status" -eq 0 ] || w_fail "gai exit $status"
	[ "${lines[0]}" = "web 198.51.100.10" ] || w_fail "line 1"
	[ "${lines[1]}" = "web.ns.svc.cluster.local 198.51.100.10" ] || w_fail "line 2"
	[ "${lines[2]}" = "whoami.test 203.0.113.1" ] || w_fail "line 3"

	run app getent ahostsv4 web
	[ "$status" -eq 0 ] || w_fail "getent exit $status"
	grep -q '^198\.51\.100\.10 ' <<<"$output" || w_fail "getent: want 198.51.100.10"

	# ndots:5 sent whoami.test through the search list first: those
	# expansions stayed local, only whoami.test. itself went over DoT.
	assert_logged whoami.test.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.2:53"
	assert_logged whoami.test.cluster.local. "transport=udp path=local to=192.0.2.2:53"
	assert_logged whoami.test. "transport=udp path=dot to=dot"
	run dot_log
	grep -q ' whoami\.test\. A IN' <<<"$output" ||
		w_fail "the DoT unbound logged no query at all (log-queries broken?)"
	! grep -qi 'cluster\.local' <<<"$output" ||
		w_fail "a cluster.local name reached the DoT upstream"
}

@test "dotproxy-init --validate as the app passes with the proxy up and fails with it down" {
	run app "$DOTPROXY_INIT" --validate
	[ "$status" -eq 0 ] || w_fail "--validate exit $status with the proxy up"
	[[ $output == *"capture works"* ]] || w_fail "want 'capture works'"

	stop_proxy || w_fail "proxy did not stop cleanly"
	run app "$DOTPROXY_INIT" --validate
	[ "$status" -eq 7 ] || w_fail "--validate exit $status with the proxy down (want 7)"
	[[ $output == *"capture does not work"* ]] || w_fail "want 'capture does not work'"
}

@test "a TCP query from the proxy's own UID to its listener is SERVFAIL, logged as a loop" {
	run as_proxy_uid dig +tries=1 +time=5 @127.0.0.1 -p "$W_PROXY_PORT" +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_status SERVFAIL
	grep -q 'level=warn msg="query from the proxy itself: forwarding loop"' "$(proxy_log)" ||
		w_fail "want the loop warning in the proxy log"
	proxy_alive || w_fail "the proxy died"
	# And ordinary traffic still works afterwards.
	run adig @192.0.2.2 whoami.test A
	assert_dot_answer
}

@test "dotproxy --transparent as root without --allow-root exits 2 with one line" {
	run --separate-stderr pod timeout 10 "${W_BIN:-$DOTPROXY}" --transparent \
		--upstream "192.0.2.2@853#dot.test" --ca-file "$W_CA" \
		--listen 127.0.0.1:15354
	[ "$status" -eq 2 ] || w_fail "exit $status, want 2"
	# shellcheck disable=SC2154 # run --separate-stderr sets them
	[ "${#stderr_lines[@]}" -eq 1 ] || w_fail "want one line on stderr, got: $stderr"
	# shellcheck disable=SC2154
	[[ $stderr == *allow-root* ]] || w_fail "the line does not mention --allow-root: $stderr"
	[ -z "$output" ] || w_fail "stdout not empty: $output"
}

@test "no cluster.local name ever reached the DoT upstream; the root namespace is untouched" {
	run dot_log
	! grep -qi 'cluster\.local' <<<"$output" ||
		w_fail "a cluster.local name reached the DoT upstream: $(grep -i cluster.local <<<"$output" | head -n 3)"
	pod_root_state >"$BATS_FILE_TMPDIR/root.now"
	diff -u "$BATS_FILE_TMPDIR/root.before" "$BATS_FILE_TMPDIR/root.now" ||
		w_fail "the root namespace's ruleset or resolv.conf changed"
	! nft list tables | grep -q dotproxy || w_fail "table dotproxy in the root namespace"
}
