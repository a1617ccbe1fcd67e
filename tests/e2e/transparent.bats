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

# The pod's resolv.conf in this file: three nameservers (a dnsConfig), so
# a UDP query to 192.0.2.3 or 2001:db8::3, not the first, is named
# exactly by its packet mark.
TP_RESOLV='nameserver 192.0.2.2
nameserver 192.0.2.3
nameserver 2001:db8::3
search ns.svc.cluster.local svc.cluster.local cluster.local
options ndots:5'
TP_METRICS=127.0.0.1:9153

# tp_resolv TEXT: gives the pod this resolv.conf and installs the rules
# again (their marks name its nameservers). The proxy reads it when it
# starts: callers restart it. teardown puts TP_RESOLV back.
tp_resolv() {
	printf '%s\n' "$1" >"/etc/netns/$W_POD/resolv.conf" || return 1
	[ "$1" = "$TP_RESOLV" ] || touch "$BATS_FILE_TMPDIR/resolv-changed"
	pod "$INIT_BIN" >/dev/null
}

# metric NAME{LABELS}: its value on the proxy's /metrics (0 when absent).
tp_metric() {
	pod curl -sS --max-time 5 "http://$TP_METRICS/metrics" |
		awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

setup_file() {
	pod_file_setup || return 1
	tp_resolv "$TP_RESOLV"
}

teardown_file() {
	local pod=${W_POD:-} up=${W_UP:-}
	pod_teardown
	[ -f "$BATS_FILE_TMPDIR/root.before" ] || return 0
	pod_root_state >"$BATS_FILE_TMPDIR/root.after"
	diff -u "$BATS_FILE_TMPDIR/root.before" "$BATS_FILE_TMPDIR/root.after"
	pod_root_gone "$pod" "$up"
}

setup() { pod_start_proxy; }
teardown() {
	local rc=0
	proxy_test_teardown || rc=$?
	pod nft delete table inet tp_foreign 2>/dev/null || true
	pod ip -6 route del 2001:db8:1::/64 2>/dev/null || true
	pod ip -6 route del 2001:db8:2::/64 2>/dev/null || true
	if [ -f "$BATS_FILE_TMPDIR/resolv-changed" ]; then
		rm -f "$BATS_FILE_TMPDIR/resolv-changed"
		tp_resolv "$TP_RESOLV" || rc=1
	fi
	return "$rc"
}

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
	# Nameservers 2 and 3 of resolv.conf, IPv4 and IPv6: exact.
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
	! grep -q 'UDP original destination unavailable' "$(proxy_log)" ||
		w_fail "the conntrack path was tried"
}

@test "issue 15: IPv6 nameservers are named by their whole address; an unlisted address or ::1 sharing a server's last 32 bits never goes to that server" {
	stop_proxy || w_fail "default proxy did not stop cleanly"
	# As the issue's fd00:213::53 and fd00:213::1: 2001:db8::3 shares its
	# last 32 bits with 2001:db8:1::3, and 2001:db8:2::1 (listed, nobody
	# there) with ::1.
	tp_resolv 'nameserver 2001:db8::2
nameserver 2001:db8::3
nameserver 2001:db8:2::1
search ns.svc.cluster.local svc.cluster.local cluster.local
options ndots:5' || w_fail "cannot set resolv.conf"
	# Only so that the app's datagrams leave its socket (the redirect
	# catches them before they go anywhere).
	pod ip -6 route add 2001:db8:1::/64 via 2001:db8::2
	pod ip -6 route add 2001:db8:2::/64 via 2001:db8::2
	pod_start_proxy --metrics "$TP_METRICS"

	run adig @2001:db8::3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig @2001:db8::3 exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=[2001:db8::3]:53"

	# Not a nameserver of resolv.conf: an unknown destination, so the
	# documented rule (the first nameserver, 2001:db8::2: .10), not the
	# listed server ending in the same bits (2001:db8::3: .11).
	run adig @2001:db8:1::3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig @2001:db8:1::3 exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server 2001:db8:1::3 UDP
	run adig @::1 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig @::1 exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server ::1 UDP
	[ "$(grep -c 'msg="query" name=web\.ns\.svc\.cluster\.local\. .* to=\[2001:db8::2\]:53' "$(proxy_log)")" -eq 2 ] ||
		w_fail "want both unknown destinations sent to the first nameserver"
	! grep -q 'to=\[2001:db8:2::1\]' "$(proxy_log)" ||
		w_fail "a query went to the listed server ending in ::1"
	[ "$(tp_metric 'dotproxy_udp_marks_total{mark="nameserver"}')" = 1 ] ||
		w_fail "want 1 mark naming a nameserver"
	[ "$(tp_metric 'dotproxy_udp_marks_total{mark="other_destination"}')" = 2 ] ||
		w_fail "want 2 marks saying: no listed nameserver"
	[ "$(tp_metric 'dotproxy_local_queries_total{resolver="resolv_conf"}')" = 2 ] ||
		w_fail "want the 2 fallbacks counted as such"
}

@test "issue 15: a mark another chain writes after ours (0x539) is never read as an address; one written before ours is replaced" {
	# Another component's chain in the pod, after our raw chain (-300)
	# and before the redirect (-110), where udp dport is still 53: the
	# mangle priority.
	pod nft -f - <<-'EOF' || w_fail "cannot add the other table"
		table inet tp_foreign {
			chain late {
				type filter hook output priority -150; policy accept;
				udp dport 53 meta mark set 0x539
			}
		}
	EOF
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	# No usable mark: the documented fallback, the first nameserver.
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server 192.0.2.3 UDP
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.2:53"
	! grep -q '57\.5\.0\.0' "$(proxy_log)" ||
		w_fail "the mark 0x539 was read as the address 57.5.0.0"

	# The same mark written before our chain: ours replaces it.
	pod nft delete table inet tp_foreign
	pod nft -f - <<-'EOF' || w_fail "cannot add the other table"
		table inet tp_foreign {
			chain early {
				type filter hook output priority -400; policy accept;
				udp dport 53 meta mark set 0x539
			}
		}
	EOF
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.3:53"
}

@test "a resolv.conf changed after the rules were installed: its marks are never mapped onto the new list, and that is said once" {
	stop_proxy || w_fail "default proxy did not stop cleanly"
	# The same servers in another order, the rules left as they were:
	# slot 2 (192.0.2.3 when installed) is 192.0.2.2 in the new file.
	printf 'nameserver 192.0.2.3\nnameserver 192.0.2.2\nsearch ns.svc.cluster.local\n' \
		>"/etc/netns/$W_POD/resolv.conf"
	touch "$BATS_FILE_TMPDIR/resolv-changed"
	pod_start_proxy --metrics "$TP_METRICS"
	local _
	for _ in 1 2; do
		run adig @192.0.2.3 web.ns.svc.cluster.local A
		[ "$status" -eq 0 ] || w_fail "dig exit $status"
		assert_a web.ns.svc.cluster.local 198.51.100.11
	done
	! grep -q 'to=192\.0\.2\.2:53' "$(proxy_log)" ||
		w_fail "a stale slot was mapped onto the new list"
	[ "$(grep -c 'msg="UDP packet mark made for other nameservers"' "$(proxy_log)")" = 1 ] ||
		w_fail "want the stale marks logged exactly once"
	[ "$(tp_metric 'dotproxy_udp_marks_total{mark="stale"}')" = 2 ] ||
		w_fail "want 2 stale marks counted"
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
	pod "$INIT_BIN" >/dev/null
}

@test "UDP local-zone query with ambient CAP_NET_ADMIN goes to its original destination (conntrack)" {
	stop_proxy || w_fail "default proxy did not stop cleanly"
	# One nameserver: the marks say "no listed nameserver" for
	# 192.0.2.3 and 2001:db8::3, and conntrack names them.
	tp_resolv 'nameserver 192.0.2.2
search ns.svc.cluster.local svc.cluster.local cluster.local
options ndots:5' || w_fail "cannot set resolv.conf"
	pod_start_proxy_netadmin --metrics "$TP_METRICS"
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
	[ "$(tp_metric 'dotproxy_udp_marks_total{mark="other_destination"}')" = 2 ] ||
		w_fail "want 2 marks saying: no listed nameserver"
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
	run app "$INIT_BIN" --validate
	[ "$status" -eq 0 ] || w_fail "--validate exit $status with the proxy up"
	[[ $output == *"capture works"* ]] || w_fail "want 'capture works'"

	stop_proxy || w_fail "proxy did not stop cleanly"
	run app "$INIT_BIN" --validate
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
