#!/usr/bin/env bats
# dotproxy-cni under a real container runtime (see helpers/cri.bash):
# Debian's containerd, whose CRI plugin is what calls CNI plugins on most
# Kubernetes nodes, started by the test in a node namespace with its CNI
# configuration directory managed by `dotproxy-cni install`, the chain
# being Debian's bridge + host-local and then the plugin. The project's
# own CRI client (tests/tools/cri_client.py) does what the kubelet does:
# RunPodSandbox (with and without dotproxy/capture: "true"),
# CreateContainer and StartContainer for the proxy (the project's image)
# and an unmodified app, ExecSync for a lookup, StopPodSandbox and
# RemovePodSandbox. Images are built locally (no registry).
#
# Skipped, with the reason, only when containerd genuinely cannot run on
# this machine (no overlay file system, no cgroups).

bats_require_minimum_version 1.5.0
load helpers/cri

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

setup_file() { cri_file_setup; }

teardown_file() {
	local node=${CRI_NODE:-} pod=${W_POD:-} up=${W_UP:-} dir=${CRI_DIR:-} rc=0
	[ ! -s "$BATS_FILE_TMPDIR/skip" ] || return 0
	cri_teardown
	world_teardown
	# Nothing of ours is left: processes, mounts, namespaces, cgroups,
	# and the root namespace's ruleset is what it was.
	[ -z "$dir" ] || ! pgrep -f -- "$dir/" >/dev/null ||
		{ echo "processes left: $(pgrep -af -- "$dir/")"; rc=1; }
	[ -z "$dir" ] || ! findmnt -rn -o TARGET | grep -qF "$dir/" ||
		{ echo "mounts left under $dir"; rc=1; }
	for ns in $node $pod $up; do
		! ip netns list | grep -q "^$ns\( \|\$\)" || { echo "namespace $ns left"; rc=1; }
	done
	[ -z "${CRI_CG:-}" ] || ! ls -d /sys/fs/cgroup/*/"$CRI_CG" 2>/dev/null ||
		{ echo "cgroups left"; rc=1; }
	if [ -f "$BATS_FILE_TMPDIR/root.before" ]; then
		nft -s list ruleset | diff -u "$BATS_FILE_TMPDIR/root.before" - || rc=1
	fi
	return "$rc"
}

setup() { cri_skip_if_cannot; }

teardown() {
	[ -z "${BATS_TEST_COMPLETED:-}" ] || return 0
	[ -n "${CRI_DIR:-}" ] || return 0
	cri_dump
}

# The pod's plain-DNS and DoT query lines in the two unbounds' logs.
dot_queries_from() { grep -cF "info: $1 $2 A IN" "$W_DIR/unbound-dot.log" || true; }
plain_queries_from() { grep -cF "info: $1 $2 A IN" "$W_DIR/unbound-plain.log" || true; }

# cri_torn_down NAME: after StopPodSandbox on pod NAME (whose namespace
# cri_hold kept): the plugin's table is gone from it, the bridge's
# interface too, host-local's lease is released, the plugin logged DEL.
cri_torn_down() {
	local name=$1 id ip
	id=$(cri_pod_id "$name")
	ip=$(cri_pod_ip "$name")
	! cri_held "$name" nft list tables | grep -q dotproxy ||
		{ echo "pod $name: the table is still there"; return 1; }
	! cri_held "$name" ip link show eth0 >/dev/null 2>&1 ||
		{ echo "pod $name: eth0 is still there"; return 1; }
	[ ! -e "$(cri_lease "$ip")" ] ||
		{ echo "pod $name: host-local still leases $ip"; return 1; }
	grep -q "DEL container=$id " "$CRI_DIR/cni.log" ||
		{ echo "pod $name: the plugin logged no DEL"; return 1; }
}

# containerd's CRI has loaded the rewritten list (its MTU), plugin last.
loaded_rewritten() {
	[ "$(cri_loaded_primary | jq -r .mtu)" = 1400 ] && cri_loaded_ours
}

@test "cri: containerd's CRI loaded the list the installer manages: bridge, then dotproxy-cni" {
	run cri version
	[ "$status" -eq 0 ] || w_fail "Version failed"
	[ "$(jq -r .runtime_name <<<"$output")" = containerd ] || w_fail "not containerd"
	[ "$(jq -r '.plugins[-1].type' "$CRI_DIR/net.d/$CRI_LIST")" = dotproxy-cni ] ||
		w_fail "the list does not end with the plugin"
	run cri_loaded_types
	[ "$output" = bridge,dotproxy-cni ] || w_fail "containerd loaded: $output"
}

@test "cri: the annotated pod's unmodified app is answered over DoT; table in the pod; proxy from the project's image" {
	local ip id
	cri_pod cap true
	ip=$(cri_pod_ip cap)
	id=$(cri_pod_id cap)
	[[ $ip == 198.51.100.* ]] || w_fail "pod address $ip"
	run cri_lookup cap whoami.test.
	[ "$status" -eq 0 ] || w_fail "lookup failed"
	[ "$output" = "whoami.test. 203.0.113.1" ] || w_fail "want the DoT answer 203.0.113.1"
	[ "$(dot_queries_from "$ip" whoami.test.)" -ge 1 ] ||
		w_fail "the DoT unbound got no query from $ip"
	[ "$(plain_queries_from "$ip" whoami.test.)" = 0 ] ||
		w_fail "plain DNS left the pod"
	run cri_in_pod cap nft list tables
	grep -qx 'table inet dotproxy' <<<"$output" || w_fail "no table inet dotproxy in the pod"
	grep -q "ADD container=$id pod=apps/cap .*captured (annotation dotproxy/capture=true): table inet dotproxy installed" \
		"$CRI_DIR/cni.log" || w_fail "no ADD line: $(cat "$CRI_DIR/cni.log")"
	# The proxy answered it, as UID 15353 (the image's user).
	grep -q 'msg="query" name=whoami.test. ' "$CRI_DIR/logs/cap/dotproxy.log" ||
		w_fail "the proxy logged no query: $(tail -n 5 "$CRI_DIR/logs/cap/dotproxy.log")"
	run cri_in_pod cap ss -lnupH 'sport = :15353'
	[ "$(stat -c %u "/proc/$(grep -o 'pid=[0-9]*' <<<"$output" | head -n 1 | cut -d= -f2)")" = 15353 ] ||
		w_fail "the proxy does not run as 15353"
}

@test "cri: the pod without the annotation is untouched: plain DNS, no table" {
	local ip id
	cri_pod plain false
	ip=$(cri_pod_ip plain)
	id=$(cri_pod_id plain)
	run cri_lookup plain whoami.test.
	[ "$status" -eq 0 ] || w_fail "lookup failed"
	[ "$output" = "whoami.test. 198.51.100.53" ] || w_fail "want the plain answer 198.51.100.53"
	[ "$(plain_queries_from "$ip" whoami.test.)" -ge 1 ] ||
		w_fail "the plain unbound got no query from $ip"
	[ "$(dot_queries_from "$ip" whoami.test.)" = 0 ] || w_fail "a query went over DoT"
	run cri_in_pod plain nft list tables
	[ -z "$output" ] || w_fail "the pod has tables"
	grep -q "ADD container=$id pod=apps/plain .*not captured" "$CRI_DIR/cni.log" ||
		w_fail "no ADD line: $(cat "$CRI_DIR/cni.log")"
}

@test "cri: StopPodSandbox removes the table and releases the IP; RemovePodSandbox removes the pod" {
	local p ip
	for p in cap plain; do
		[ -f "$CRI_DIR/pods/$p.id" ] || cri_pod "$p" "$([ $p = cap ] && echo true || echo false)"
		ip=$(cri_pod_ip "$p")
		[ -e "$(cri_lease "$ip")" ] || w_fail "no lease for $ip before the teardown"
		cri_hold "$p"
	done
	cri_held cap nft list tables | grep -qx 'table inet dotproxy' || w_fail "no table before"
	for p in cap plain; do
		run cri stopp "$(cri_pod_id "$p")"
		[ "$status" -eq 0 ] || w_fail "StopPodSandbox $p failed"
		run cri_torn_down "$p"
		[ "$status" -eq 0 ] || w_fail "$output"
		run cri rmp "$(cri_pod_id "$p")"
		[ "$status" -eq 0 ] || w_fail "RemovePodSandbox $p failed"
		! cri pods | grep -qxF "$(cri_pod_id "$p")" || w_fail "pod $p still listed"
		cri_unhold "$p"
	done
	grep -q "DEL container=$(cri_pod_id cap) .*table inet dotproxy removed" "$CRI_DIR/cni.log" ||
		w_fail "no DEL line saying the table was removed"
}

@test "cri: the installer stopped and started again (a rolling update) while pods run; they still tear down cleanly" {
	local p
	cri_pod r1 true
	cri_pod r2 false
	cri_hold r1
	cri_hold r2

	cri_installer_stop || w_fail "the installer did not stop on SIGTERM"
	if [ "$CRI_SIGTERM_KEEPS" = 1 ]; then
		# An upgrade-safe installer leaves binary and entry in place, so a
		# pod torn down while it is away still goes through the plugin.
		[ -x "$CRI_DIR/cni-bin/dotproxy-cni" ] || w_fail "SIGTERM removed the binary"
		[ "$(jq -r '.plugins[-1].type' "$CRI_DIR/net.d/$CRI_LIST")" = dotproxy-cni ] ||
			w_fail "SIGTERM removed the entry"
		run cri stopp "$(cri_pod_id r2)"
		[ "$status" -eq 0 ] || w_fail "StopPodSandbox failed with the installer away"
		run cri_torn_down r2
		[ "$status" -eq 0 ] || w_fail "$output"
	fi
	cri_installer_start || w_fail "the installer did not come back"
	cri_wait 100 cri_loaded_ours ||
		w_fail "containerd did not load the list again: $(cri_loaded_types)"

	# The pods from before the update are still served...
	run cri_lookup r1 whoami.test.
	[ "$output" = "whoami.test. 203.0.113.1" ] || w_fail "r1 lost DoT"
	# ... a new pod is captured ...
	cri_pod r3 true
	run cri_lookup r3 whoami.test.
	[ "$output" = "whoami.test. 203.0.113.1" ] || w_fail "r3 not captured after the update"
	cri_hold r3
	# ... and every pod tears down cleanly.
	for p in r1 r2 r3; do
		run cri stopp "$(cri_pod_id "$p")"
		[ "$status" -eq 0 ] || w_fail "StopPodSandbox $p failed"
		run cri_torn_down "$p"
		[ "$status" -eq 0 ] || w_fail "$output"
		run cri rmp "$(cri_pod_id "$p")"
		[ "$status" -eq 0 ] || w_fail "RemovePodSandbox $p failed"
		cri_unhold "$p"
	done
}

@test "cri: the primary list rewritten while containerd runs still ends with the plugin, and new pods get both" {
	local f=$CRI_DIR/net.d/$CRI_LIST ip
	# The primary CNI rewrites its file (new temp, rename), with another
	# address range and MTU, and without our entry.
	cri_primary_conflist '.plugins[0].mtu = 1400
		| .plugins[0].ipam.ranges[0][0].rangeStart = "198.51.100.200"' \
		>"$CRI_DIR/net.d/.primary.tmp"
	cp "$CRI_DIR/net.d/.primary.tmp" "$CRI_DIR/rewritten"
	mv "$CRI_DIR/net.d/.primary.tmp" "$f"
	cri_wait 100 cri_installer_ready || w_fail "the installer did not re-add itself"
	[ "$(jq -S 'del(.plugins[-1])' "$f")" = "$(jq -S . "$CRI_DIR/rewritten")" ] ||
		w_fail "the rewritten list changed beyond our entry"
	# containerd reloads the file: the new range, and still the plugin last.
	cri_wait 100 loaded_rewritten ||
		w_fail "containerd did not load the rewritten list with the plugin: $(cri_loaded_types)"

	cri_pod w1 true
	ip=$(cri_pod_ip w1)
	[ "${ip##*.}" -ge 200 ] || w_fail "the pod's address $ip is not from the rewritten range"
	run cri_lookup w1 whoami.test.
	[ "$output" = "whoami.test. 203.0.113.1" ] || w_fail "the new pod is not captured"
	cri_in_pod w1 nft list tables | grep -qx 'table inet dotproxy' || w_fail "no table"
	cri_hold w1
	run cri_pod_down w1
	[ "$status" -eq 0 ] || w_fail "teardown failed"
	run cri_torn_down w1
	[ "$status" -eq 0 ] || w_fail "$output"
	cri_unhold w1
}
