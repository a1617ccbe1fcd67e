#!/usr/bin/env bats
# dotproxy-init's hostNetwork guard (init/hostnet.c), its version flag and
# its environment check. The "node" is a namespace the test made (see
# helpers/init_ns.bash) given the node's part by the flags: equal
# --pod-ip and --host-ip, or a --host-ip that sits on its interface. The
# one check that only the real root namespace can trigger (the kernel's
# initial namespace) runs there as UID 1000 with every capability gone,
# so that even a broken guard could not change the root ruleset; the
# ruleset is compared before and after the file all the same.

load helpers/init_ns

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
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
}

# no_table: the pod namespace has no nftables table at all.
no_table() {
	run in_pod nft list tables
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

# unprivileged CMD...: CMD as UID 1000 in the current (root) namespace
# with no capabilities, none inheritable, an empty bounding set and
# no_new_privs: nothing it runs can change nftables.
unprivileged() {
	setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps=-all \
		--bounding-set=-all --no-new-privs "$@"
}

@test "pod IP equal to host IP (hostNetwork): status 8, one line, no table" {
	run in_pod "$INIT_BIN" --pod-ip 198.51.100.7 --host-ip 198.51.100.7
	echo "$output"
	[ "$status" -eq 8 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$output" = "dotproxy-init: refusing to install in the node's network namespace: the pod IP 198.51.100.7 is the host IP (hostNetwork: true); the table would redirect the node's own DNS and outlive the pod (--allow-host-network overrides)" ]
	no_table
	# The downward API's way: the environment twins.
	run in_pod env DOTPROXY_INIT_POD_IP=198.51.100.7 \
		DOTPROXY_INIT_HOST_IP=198.51.100.7 "$INIT_BIN"
	[ "$status" -eq 8 ]
	no_table
	# Dual stack (status.podIPs, status.hostIPs): any common address.
	run in_pod env DOTPROXY_INIT_POD_IP=198.51.100.7,2001:db8:7::7 \
		DOTPROXY_INIT_HOST_IP=203.0.113.1,2001:db8:7::7 "$INIT_BIN"
	[ "$status" -eq 8 ]
	[[ $output == *"the pod IP 2001:db8:7::7 is the host IP"* ]]
	no_table
}

@test "a host IP on an interface here (the node's own address): status 8, no table" {
	# 192.0.2.2 and 2001:db8::2 are the test namespace's, on vp.
	run in_pod "$INIT_BIN" --pod-ip 198.51.100.7 --host-ip 192.0.2.2
	[ "$status" -eq 8 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"the host IP 192.0.2.2 is assigned to interface vp here"* ]]
	no_table
	run in_pod "$INIT_BIN" --host-ip 2001:db8::2
	[ "$status" -eq 8 ]
	[[ $output == *"the host IP 2001:db8::2 is assigned to interface vp here"* ]]
	no_table
}

@test "an ordinary pod (its own IP, the node's elsewhere) gets its table" {
	# The "node" at 192.0.2.1 is the other end of the veth.
	run in_pod "$INIT_BIN" --pod-ip 192.0.2.2 --host-ip 192.0.2.1
	[ "$status" -eq 0 ]
	[[ $output == *"table inet dotproxy installed"* ]]
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 0 ]
	in_pod "$INIT_BIN" --cleanup
	run in_pod env DOTPROXY_INIT_POD_IP=192.0.2.2,2001:db8::2 \
		DOTPROXY_INIT_HOST_IP=192.0.2.1,2001:db8::1 "$INIT_BIN"
	[ "$status" -eq 0 ]
	# Empty twins (a downward API field not filled): no check, no error.
	in_pod "$INIT_BIN" --cleanup
	run in_pod env DOTPROXY_INIT_POD_IP= DOTPROXY_INIT_HOST_IP= "$INIT_BIN"
	[ "$status" -eq 0 ]
}

@test "--allow-host-network installs anyway and says why it would not have" {
	run in_pod "$INIT_BIN" --pod-ip 198.51.100.7 --host-ip 198.51.100.7 \
		--allow-host-network
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "dotproxy-init: installing in the node's network namespace as --allow-host-network says: the pod IP 198.51.100.7 is the host IP (hostNetwork: true)" ]]
	[[ $output == *"table inet dotproxy installed"* ]]
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 0 ]
	in_pod "$INIT_BIN" --cleanup
	run in_pod env DOTPROXY_INIT_ALLOW_HOST_NETWORK=true "$INIT_BIN" \
		--host-ip 192.0.2.2
	[ "$status" -eq 0 ]
	run in_pod "$INIT_BIN" --check
	[ "$status" -eq 0 ]
}

@test "only installing is refused: --dry-run, --check and --cleanup still work" {
	node=(--pod-ip 192.0.2.2 --host-ip 192.0.2.2)
	run in_pod "$INIT_BIN" --dry-run "${node[@]}"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "add table inet dotproxy" ]
	run in_pod "$INIT_BIN" --check "${node[@]}"
	[ "$status" -eq 3 ]
	# A table a hostNetwork pod once left behind can be removed.
	in_pod nft add table inet dotproxy
	run in_pod "$INIT_BIN" --cleanup "${node[@]}"
	[ "$status" -eq 0 ]
	[[ $output == *"removed"* ]]
	no_table
}

@test "the real root namespace is refused before netlink (run without any capability)" {
	# The guard runs unprivileged: prove the process has no capability.
	run unprivileged grep '^CapEff:' /proc/self/status
	[ "$output" = "CapEff:	0000000000000000" ]
	run unprivileged "$INIT_BIN"
	echo "$output"
	[ "$status" -eq 8 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"refusing to install in the node's network namespace: this is the kernel's initial network namespace"* ]]
	# Control: allowed, the same run reaches netlink and is refused there
	# (no capability), so the status above came from the guard.
	run unprivileged "$INIT_BIN" --allow-host-network
	[ "$status" -eq 4 ]
	# And no test namespace looks like the initial one.
	run in_pod "$INIT_BIN" --dry-run
	[ "$status" -eq 0 ]
}

@test "a bad --pod-ip or --host-ip exits 2 with one line" {
	for bad in "--pod-ip 198.51.100.0/24" "--pod-ip nonsense" \
		"--host-ip [2001:db8::1]" "--host-ip 256.0.0.1" "--pod-ip"; do
		# shellcheck disable=SC2086
		run in_pod "$INIT_BIN" $bad
		echo "$bad -> $status: $output"
		[ "$status" -eq 2 ]
		[ "${#lines[@]}" -eq 1 ]
	done
	run in_pod env DOTPROXY_INIT_HOST_IP=node-1 "$INIT_BIN"
	[ "$status" -eq 2 ]
	[ "$output" = "dotproxy-init: DOTPROXY_INIT_HOST_IP 'node-1': not an IPv4 or IPv6 address" ]
	no_table
}

@test "an unknown DOTPROXY_INIT_ variable exits 2 naming it" {
	run in_pod env DOTPROXY_INIT_EXCLUDE_UIDS=1001 "$INIT_BIN"
	[ "$status" -eq 2 ]
	[ "$output" = "dotproxy-init: unknown variable DOTPROXY_INIT_EXCLUDE_UIDS: no option has this name (see --help)" ]
	no_table
	# Help and version have no twins; other prefixes are not ours.
	run in_pod env DOTPROXY_INIT_VERSION=1 "$INIT_BIN" --dry-run
	[ "$status" -eq 2 ]
	[[ $output == *DOTPROXY_INIT_VERSION* ]]
	run in_pod env DOTPROXY_INITIAL=1 DOTPROXY_UPSTREAM=192.0.2.1 \
		DOTPROXY_INIT_EXCLUDE_UID=1001 "$INIT_BIN" --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"skuid 1001"* ]]
}

@test "-V and --version print the version and revision like dotproxy" {
	run "$INIT_BIN" -V
	[ "$status" -eq 0 ]
	[[ $output =~ ^dotproxy-init\ [0-9]+\.[0-9]+\.[0-9]+\ \(.+\)$ ]]
	[ "$output" = "dotproxy-init $(cat "$INIT_ROOT/VERSION") ${output##* }" ]
	v=$output
	run "$INIT_BIN" --version
	[ "$output" = "$v" ]
	run "$INIT_BIN" --help
	[[ $output == *"-V, --version"* ]]
	[[ $output == *"--allow-host-network"* ]]
	[[ $output == *"8 refused"* ]]
}
