#!/usr/bin/env bats
# dotproxy-init end to end, as root, in namespaces each test makes (see
# helpers/init_ns.bash): it installs, converges, checks, cleans up,
# redirects UDP and TCP port 53 to the proxy port but not the proxy's own
# traffic, keeps a reused UDP source port from bypassing the redirect
# (conntrack zones), fails clearly without CAP_NET_ADMIN or with bad
# values, and --validate tells whether capture works.

load helpers/init_ns

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
	# The root namespace must not change: remember it.
	nft -s list ruleset >"$BATS_FILE_TMPDIR/root-ruleset.before"
}

teardown_file() {
	[ -f "$BATS_FILE_TMPDIR/root-ruleset.before" ] || return 0
	nft -s list ruleset >"$BATS_FILE_TMPDIR/root-ruleset.after"
	cmp "$BATS_FILE_TMPDIR/root-ruleset.before" \
		"$BATS_FILE_TMPDIR/root-ruleset.after"
	left=$(init_ns_leftovers)
	if [ -n "$left" ]; then
		echo "namespaces left behind:" "$left" >&2
		return 1
	fi
}

setup() {
	init_ns_setup
}

teardown() {
	init_ns_teardown
	# The resolv.conf a test gave its pod namespace, and /etc/netns if
	# the test made it (and nobody else uses it now).
	[ -z "${POD:-}" ] || rm -rf "/etc/netns/$POD"
	[ ! -f "$BATS_TEST_TMPDIR/made-etc-netns" ] || rmdir /etc/netns 2>/dev/null || true
}

@test "init installs table inet dotproxy in the pod namespace only" {
	run in_pod "$INIT_BIN"
	[ "$status" -eq 0 ]
	[[ $output == *"table inet dotproxy installed"* ]]
	run in_pod nft list table inet dotproxy
	[ "$status" -eq 0 ]
	[[ $output == *"chain output {"* ]]
	[[ $output == *"type nat hook output priority -110; policy accept;"* ]]
	[[ $output == *"meta skuid 15353 counter packets 0 bytes 0 return"* ]]
	[[ $output == *"meta nfproto ipv4 udp dport 53 counter packets 0 bytes 0 redirect to :15353"* ]]
	[[ $output == *"chain ct_zone {"* ]]
	[[ $output == *"type filter hook output priority raw; policy accept;"* ]]
	run nft list table inet dotproxy
	[ "$status" -ne 0 ]
}

@test "running init twice gives the identical ruleset, replacing changes" {
	in_pod "$INIT_BIN" --exclude-uid 1001 --exclude-cidr 198.51.100.0/24
	first=$(pod_table)
	# Traffic and a stray rule must not survive a re-run.
	in_pod nft add rule inet dotproxy output meta skuid 4242 counter return
	rcode_of "$APP_UID" 192.0.2.1 >/dev/null
	in_pod "$INIT_BIN" --exclude-uid 1001 --exclude-cidr 198.51.100.0/24
	second=$(pod_table)
	[ "$first" = "$second" ]
	in_pod "$INIT_BIN" --exclude-uid 1001 --exclude-cidr 198.51.100.0/24
	[ "$(pod_table)" = "$first" ]
	[ "$(in_pod nft list tables | grep -c dotproxy)" -eq 1 ]
}

@test "--dry-run text passes nft -c and installs the very same ruleset" {
	args=(--exclude-uid 1001 --exclude-gid 2001 --exclude-cidr 198.51.100.0/25
		--exclude-cidr 2001:db8:ff::/48 --proxy-port 5300 --ipv6 on)
	run "$INIT_BIN" --dry-run "${args[@]}"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "add table inet dotproxy" ]
	echo "$output" >"$TMPD/rules.nft"
	# nft -c needs a namespace too: use the throw-away "up" one.
	ip netns exec "$UP" nft -c -f "$TMPD/rules.nft"
	ip netns exec "$UP" nft -f "$TMPD/rules.nft"
	in_pod "$INIT_BIN" "${args[@]}"
	[ "$(ip netns exec "$UP" nft list table inet dotproxy)" = \
		"$(in_pod nft list table inet dotproxy)" ]
	# And --check accepts what nft built from the text.
	run ip netns exec "$UP" "$INIT_BIN" --check "${args[@]}"
	[ "$status" -eq 0 ]
}

@test "--check is 0 after install, 3 with one line after any change" {
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"not installed"* ]]

	in_pod "$INIT_BIN" --exclude-uid 1001
	run in_pod "$INIT_BIN" --check --exclude-uid 1001
	[ "$status" -eq 0 ]
	[[ $output == *"matches"* ]]

	# Other flags than installed.
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 1 ]
	run in_pod "$INIT_BIN" --check --exclude-uid 1001 --proxy-port 5300
	[ "$status" -eq 3 ]
	[[ $output == *"redirect to :5300"* ]]

	# Delete the first redirect rule behind its back.
	handle=$(in_pod nft -a list chain inet dotproxy output |
		awk '/redirect to/ { print $NF; exit }')
	in_pod nft delete rule inet dotproxy output handle "$handle"
	run in_pod "$INIT_BIN" --check --exclude-uid 1001
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"chain output rule 3"* ]]
}

@test "--check is 3 on a dormant table (its rules do nothing); a re-run makes it active again" {
	in_pod "$INIT_BIN" >/dev/null
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 0 ]
	# The nft CLI can set the flag on the table in place: same chains,
	# same rules, none of them run.
	in_pod nft add table inet dotproxy '{ flags dormant; }'
	in_pod nft list table inet dotproxy | grep -q 'flags dormant'
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"has flags dormant 0x1; want none"* ]]
	# Installing again replaces the table: no flags, check passes.
	in_pod "$INIT_BIN" >/dev/null
	run in_pod nft list table inet dotproxy
	[ "$status" -eq 0 ]
	[[ $output != *flags* ]]
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 0 ]
}

@test "the UDP mark rules name the namespace's resolv.conf nameservers; --check sees another list" {
	local etc=/etc/netns/$POD
	[ -d /etc/netns ] || { mkdir /etc/netns && touch "$BATS_TEST_TMPDIR/made-etc-netns"; }
	mkdir -p "$etc"
	printf 'nameserver 192.0.2.1\nnameserver 2001:db8::1\nnameserver 2001:db8::53%%vp\n' \
		>"$etc/resolv.conf"
	run in_pod "$INIT_BIN" --ipv6 on --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"ip daddr 192.0.2.1/32 udp dport 53 counter meta mark set 0xd07d"*01* ]]
	[[ $output == *"ip6 daddr 2001:db8::1/128 udp dport 53 counter meta mark set 0xd07d"*02* ]]
	[[ $output == *"ip6 daddr 2001:db8::53/128 udp dport 53 counter meta mark set 0xd07d"*03* ]]
	in_pod "$INIT_BIN" --ipv6 on >/dev/null
	run in_pod "$INIT_BIN" --ipv6 on --check
	[ "$status" -eq 0 ]
	# The pod's resolv.conf changed since: the table names other servers.
	printf 'nameserver 192.0.2.1\n' >"$etc/resolv.conf"
	run in_pod "$INIT_BIN" --ipv6 on --check
	[ "$status" -eq 3 ]
	[[ $output == *"differs"* ]]
}

@test "UDP and TCP to port 53 go to the proxy port; --cleanup makes DNS direct again" {
	start_fake_proxy
	start_real_server
	# echo_dns is UDP only: a TCP stand-in for the proxy, SERVFAIL too.
	start_bg proxytcp "$POD" "$PROXY_UID" /usr/bin/python3 \
		"$INIT_ROOT/tests/tools/hostile_dot.py" --plain \
		--listen 127.0.0.1:15353 --rule '* rcode 2'
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = REFUSED ]	# direct, no rules yet
	in_pod "$INIT_BIN" --ipv6 on
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = SERVFAIL ]	# the proxy
	grep -q "query from 192.0.2.2" "$TMPD/proxy4.log"
	# The answer came back from the address asked (un-NATted): dig
	# would otherwise say "reply from unexpected source" and time out.
	[ "$(rcode_of "$APP_UID" 192.0.2.1 +tcp)" = SERVFAIL ]
	grep -q "name=example.test type=1 action=rcode" "$TMPD/proxytcp.log"
	in_pod nft list chain inet dotproxy output |
		grep -E 'ipv4 tcp dport 53 counter packets [1-9]'
	in_pod nft list chain inet dotproxy ct_zone |
		grep -E 'udp sport 15353 counter packets [1-9]'

	run in_pod "$INIT_BIN" --cleanup
	[ "$status" -eq 0 ]
	[[ $output == *"removed"* ]]
	run in_pod nft list table inet dotproxy
	[ "$status" -ne 0 ]
	n=$(grep -c "query from" "$TMPD/proxy4.log")
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = REFUSED ]
	[ "$(grep -c "query from" "$TMPD/proxy4.log")" -eq "$n" ]
	# Cleaning up again is not an error.
	run in_pod "$INIT_BIN" --cleanup
	[ "$status" -eq 0 ]
	[[ $output == *"not installed"* ]]
}

@test "the proxy UID, excluded UIDs, GIDs and CIDRs are not captured" {
	start_fake_proxy
	start_real_server
	in_pod "$INIT_BIN" --exclude-uid 1001 --exclude-gid 2002 \
		--exclude-cidr 2001:db8::1/128
	[ "$(rcode_of "$PROXY_UID" 192.0.2.1)" = REFUSED ]
	[ "$(rcode_of 1001 192.0.2.1)" = REFUSED ]
	run ip netns exec "$POD" setpriv --reuid 1003 --regid 2002 \
		--clear-groups "${DIG[@]}" @192.0.2.1 example.test
	[[ $output == *"status: REFUSED"* ]]
	[ "$(rcode_of "$APP_UID" 2001:db8::1)" = REFUSED ]
	# Everyone else still is.
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = SERVFAIL ]
	[ "$(rcode_of 1003 192.0.2.1)" = SERVFAIL ]
	grep -q "query from 192.0.2.2" "$TMPD/real4.log"
}

@test "IPv6 is redirected with --ipv6 on and left alone with --ipv6 off" {
	start_fake_proxy
	start_real_server
	in_pod "$INIT_BIN" --ipv6 on
	[ "$(rcode_of "$APP_UID" 2001:db8::1)" = SERVFAIL ]
	grep -q "query from 2001:db8::2" "$TMPD/proxy6.log"
	in_pod "$INIT_BIN" --ipv6 off
	[ "$(in_pod nft list table inet dotproxy | grep -c ipv6)" -eq 0 ]
	[ "$(rcode_of "$APP_UID" 2001:db8::1)" = REFUSED ]
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = SERVFAIL ]
	# auto follows the namespace: IPv6 disabled there means IPv4 only.
	[ "$(in_pod "$INIT_BIN" --dry-run | grep -c ipv6)" -gt 0 ]
	in_pod sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	[ "$(in_pod "$INIT_BIN" --dry-run | grep -c ipv6)" -eq 0 ]
	[ "$(in_pod "$INIT_BIN" --dry-run --ipv6 on | grep -c ipv6)" -gt 0 ]
}

@test "a reused UDP source port never bypasses the redirect (conntrack zones)" {
	start_fake_proxy
	start_real_server
	in_pod "$INIT_BIN"
	# The proxy asks the real server from port P; then an app gets port
	# P for the same server: it must still reach the proxy. And the
	# other way round: the proxy must not be looped back to itself.
	[ "$(rcode_of "$PROXY_UID" 192.0.2.1 -b 192.0.2.2#40001)" = REFUSED ]
	[ "$(rcode_of "$APP_UID" 192.0.2.1 -b 192.0.2.2#40001)" = SERVFAIL ]
	[ "$(rcode_of "$APP_UID" 192.0.2.1 -b 192.0.2.2#40002)" = SERVFAIL ]
	[ "$(rcode_of "$PROXY_UID" 192.0.2.1 -b 192.0.2.2#40002)" = REFUSED ]

	# Control 1: without the rule zoning the proxy's answers, they are
	# not un-NATted and the app gets nothing it accepts.
	handle=$(in_pod nft -a list chain inet dotproxy ct_zone |
		awk '/udp sport 15353/ { print $NF; exit }')
	in_pod nft delete rule inet dotproxy ct_zone handle "$handle"
	[ "$(rcode_of "$APP_UID" 192.0.2.1)" = noanswer ]

	# Control 2: without the zone chain the same sequence leaks both ways,
	# so the checks above do test the zones.
	in_pod nft flush chain inet dotproxy ct_zone
	[ "$(rcode_of "$PROXY_UID" 192.0.2.1 -b 192.0.2.2#40003)" = REFUSED ]
	[ "$(rcode_of "$APP_UID" 192.0.2.1 -b 192.0.2.2#40003)" = REFUSED ]
	[ "$(rcode_of "$APP_UID" 192.0.2.1 -b 192.0.2.2#40004)" = SERVFAIL ]
	[ "$(rcode_of "$PROXY_UID" 192.0.2.1 -b 192.0.2.2#40004)" = SERVFAIL ]
}

@test "without CAP_NET_ADMIN init fails with one line and status 4" {
	run as_uid 1000 --inh-caps=-all "$INIT_BIN"
	[ "$status" -eq 4 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$output" = "dotproxy-init: cannot change nftables: operation not permitted (needs CAP_NET_ADMIN)" ]
	# Root without the capability too, and --check and --cleanup.
	run in_pod capsh --drop=cap_net_admin -- -c "exec $INIT_BIN"
	[ "$status" -eq 4 ]
	[[ $output == *"needs CAP_NET_ADMIN"* ]]
	run as_uid 1000 --inh-caps=-all "$INIT_BIN" --check
	[ "$status" -eq 4 ]
	run as_uid 1000 --inh-caps=-all "$INIT_BIN" --cleanup
	[ "$status" -eq 4 ]
	run in_pod nft list tables
	[ -z "$output" ]
}

@test "a bad port, UID, CIDR or flag exits 2 with one line" {
	for bad in "--proxy-port 0" "--proxy-port 65536" "--proxy-port x" \
		"--proxy-uid -1" "--proxy-uid 4294967295" "--exclude-uid 1,x" \
		"--exclude-gid -5" "--exclude-cidr 192.0.2.1/24" \
		"--exclude-cidr 192.0.2.0/33" "--exclude-cidr 2001:db8::/129" \
		"--exclude-cidr nonsense" "--ipv6 maybe" "--no-such-flag" \
		"--check --cleanup" "--validate-timeout 0"; do
		# shellcheck disable=SC2086
		run in_pod "$INIT_BIN" $bad
		echo "$bad -> $status: $output"
		[ "$status" -eq 2 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ $output == "dotproxy-init: "* ]]
	done
	run in_pod nft list tables
	[ -z "$output" ]
	run env DOTPROXY_INIT_PROXY_PORT=99999 "$INIT_BIN" --dry-run
	[ "$status" -eq 2 ]
	[[ $output == *DOTPROXY_INIT_PROXY_PORT* ]]
}

@test "environment twins apply, comma lists split, and flags beat them" {
	run env DOTPROXY_INIT_PROXY_PORT=5300 DOTPROXY_INIT_EXCLUDE_UID=1001,1002 \
		DOTPROXY_INIT_IPV6=off DOTPROXY_INIT_EXCLUDE_CIDR=198.51.100.0/24 \
		"$INIT_BIN" --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"redirect to :5300"* ]]
	[[ $output == *"meta skuid 1002 counter return"* ]]
	[[ $output == *"ip daddr 198.51.100.0/24 counter return"* ]]
	[[ $output != *ipv6* ]]
	run env DOTPROXY_INIT_PROXY_PORT=5300 DOTPROXY_INIT_EXCLUDE_UID=1001 \
		"$INIT_BIN" --dry-run --proxy-port 5400 --exclude-uid 1003
	[[ $output == *"redirect to :5400"* ]]
	[[ $output != *"skuid 1001"* ]]
	[[ $output == *"skuid 1003"* ]]
	in_pod env DOTPROXY_INIT_PROXY_UID=1234 "$INIT_BIN"
	run in_pod "$INIT_BIN" --check --proxy-uid 1234
	[ "$status" -eq 0 ]
}

@test "--validate: 7 without capture or listener, 0 when the proxy answers" {
	# No rules: the probe to TEST-NET goes nowhere.
	run as_uid "$APP_UID" "$INIT_BIN" --validate --validate-timeout 600
	[ "$status" -eq 7 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"capture does not work"* ]]
	# Rules but nothing on the proxy port.
	in_pod "$INIT_BIN"
	run as_uid "$APP_UID" "$INIT_BIN" --validate --validate-timeout 600
	[ "$status" -eq 7 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"192.0.2.53:53"* ]]
	# The proxy UID is never captured: refused as a usage error.
	run as_uid "$PROXY_UID" "$INIT_BIN" --validate
	[ "$status" -eq 2 ]
	# A responder on the proxy port.
	start_fake_proxy
	run as_uid "$APP_UID" "$INIT_BIN" --validate
	[ "$status" -eq 0 ]
	[[ $output == "dotproxy-init: capture works: 192.0.2.53:53 answered by the proxy (rcode SERVFAIL, "*" ms)" ]]
	run as_uid "$APP_UID" "$INIT_BIN" --validate --validate-addr 2001:db8::53
	[ "$status" -eq 0 ]
	[[ $output == *"[2001:db8::53]:53 answered"* ]]
}

@test "--help documents the options and exit statuses" {
	run "$INIT_BIN" --help
	[ "$status" -eq 0 ]
	[[ $output == *"--exclude-cidr"* ]]
	[[ $output == *"DOTPROXY_INIT_"* ]]
	[[ $output == *"4 no permission"* ]]
	[[ $output == *"7 --validate"* ]]
}
