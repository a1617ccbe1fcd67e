#!/usr/bin/env bats
# Node-local mode end to end (helpers/nodelocal.bash draws the world): the
# node namespace gets dotproxy-init --node-local, pods keep a ClusterFirst
# resolv.conf naming the kube-dns IP. Cluster names reach "CoreDNS" over
# the proxy's plain path, other names go over DoT, the node's own
# processes are served too; with the proxy killed, kube-proxy's path
# answers at once (fail-open), and captures again once it is back; bad
# input changes nothing; removal gives the node back as it was.

# $stderr comes from bats' run --separate-stderr.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0
load helpers/nodelocal

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
	nft -s list ruleset >"$BATS_FILE_TMPDIR/root-ruleset.before"
	nl_setup
}

teardown_file() {
	nl_teardown
	[ -f "$BATS_FILE_TMPDIR/root-ruleset.before" ] || return 0
	nft -s list ruleset | cmp "$BATS_FILE_TMPDIR/root-ruleset.before" -
}

teardown() {
	# The load loop of the kill test, if it failed before ending it.
	if [ -s "${W_DIR:-/nonexistent}/load.pid" ]; then
		kill "$(cat "$W_DIR/load.pid")" 2>/dev/null || true
		: >"$W_DIR/load.pid"
	fi
	[ -z "$BATS_TEST_COMPLETED" ] && show_proxy_log
	return 0
}

# The counter of kube-proxy's prerouting DNAT (pods' queries it saw).
kp_pre() {
	node nft list chain ip kubeproxy pre | sed -n 's/.*counter packets \([0-9]*\) .*/\1/p'
}

@test "bad input: exit 2, one line, the node namespace unchanged" {
	local before after
	before=$BATS_TEST_TMPDIR/before
	after=$BATS_TEST_TMPDIR/after
	node ip link add nlother type bridge
	node ip addr add 198.51.100.77/32 dev nlother
	nl_snapshot "$before"
	for args in \
		"--node-local 198.51.100.77" \
		"--node-local 198.51.100.10 --node-local-interface nlother" \
		"--node-local 198.51.100.10,198.51.100.10" \
		"--node-local 169.254.20.10,198.51.100.10 --node-local-upstream 198.51.100.10" \
		"--node-local 169.254.20.10,198.51.100.10" \
		"--node-local 127.0.0.1" \
		"--node-local 224.0.0.1" \
		"--node-local 198.51.100.0/24" \
		"--node-local nonsense" \
		"--node-local 198.51.100.10 --exclude-uid 1"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr node "$INIT_BIN" $args
		echo "$args -> $stderr"
		[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
		[ -z "$output" ]
	done
	nl_snapshot "$after"
	diff "$before" "$after"
	run node "$INIT_BIN" --node-local 198.51.100.77 2>&1
	[[ $output == *"already assigned to nlother"* ]]
	run node "$INIT_BIN" --node-local 198.51.100.10 --node-local-interface nlother
	[[ $output == *"in use by a bridge device"* ]]
	node ip link del nlother
}

@test "install, then again: the same ruleset and addresses (idempotent)" {
	run nl_init
	[ "$status" -eq 0 ]
	[[ $output == *"installed: 2 addresses on dotproxy0"* ]]
	node nft list table inet dotproxy-nodelocal >"$BATS_TEST_TMPDIR/one"
	node ip -o addr show dev dotproxy0 >"$BATS_TEST_TMPDIR/addr1"
	run nl_init
	[ "$status" -eq 0 ]
	node nft list table inet dotproxy-nodelocal >"$BATS_TEST_TMPDIR/two"
	node ip -o addr show dev dotproxy0 >"$BATS_TEST_TMPDIR/addr2"
	diff "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/two"
	diff "$BATS_TEST_TMPDIR/addr1" "$BATS_TEST_TMPDIR/addr2"
	grep -q "$NL_LL/32" "$BATS_TEST_TMPDIR/addr1"
	grep -q "$NL_KDNS/32" "$BATS_TEST_TMPDIR/addr1"
	[ "$(node cat /proc/sys/net/ipv4/conf/lo/accept_local)" = 1 ]
	# The proxy's plain path to cluster DNS, written for it.
	[ "$(cat "$W_DIR/upstream-resolv.conf")" = "nameserver $NL_UPSTREAM" ]
	# A re-run with fewer addresses drops the others, and back.
	run node "$INIT_BIN" --node-local "$NL_KDNS"
	[ "$status" -eq 0 ]
	run node ip -o addr show dev dotproxy0
	[[ $output == *"$NL_KDNS/32"* && $output != *"$NL_LL/32"* ]]
	run node nft list table inet dotproxy-nodelocal
	[[ $output != *"$NL_LL"* ]]
	nl_init
	node nft list table inet dotproxy-nodelocal | sed 's/packets [0-9]* bytes [0-9]*//' >"$BATS_TEST_TMPDIR/three"
	sed 's/packets [0-9]* bytes [0-9]*//' "$BATS_TEST_TMPDIR/one" | diff - "$BATS_TEST_TMPDIR/three"
	# The batch is what --dry-run prints: nft accepts that text too.
	node "$INIT_BIN" --node-local "$NL_LL,$NL_KDNS" \
		--node-local-upstream "$NL_UPSTREAM" --dry-run | node nft -c -f -
}

@test "without a proxy: pods and the node reach CoreDNS (fail-open from the start)" {
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask podns "$NL_LL" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask podns "$NL_LL" whoami.test +tcp)" = "$NL_VIA_COREDNS" ]
	[ "$(ask node "$NL_KDNS" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask node "$NL_LL" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask node "$NL_KDNS" whoami.test +tcp)" = "$NL_VIA_COREDNS" ]
}

@test "pods (ClusterFirst): cluster names via CoreDNS, others over DoT, no kube-proxy DNAT" {
	nl_start_proxy
	local before
	before=$(kp_pre)
	# The stub resolver with the search list, as an app would.
	run podns getent ahostsv4 kubernetes.default
	[ "$status" -eq 0 ]
	[[ $output == "$NL_CLUSTER_A "* ]]
	run podns getent ahostsv4 whoami.test
	[[ $output == "$NL_VIA_DOT "* ]]
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_KDNS" whoami.test +tcp)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_LL" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_LL" kubernetes.default.svc.cluster.local)" = "$NL_CLUSTER_A" ]
	# The pod's own queries never met kube-proxy's DNAT.
	[ "$(kp_pre)" = "$before" ]
}

@test "a hostNetwork process in the node namespace is served by the proxy" {
	proxy_alive || nl_start_proxy
	run node getent ahostsv4 kubernetes.default
	[[ $output == "$NL_CLUSTER_A "* ]]
	[ "$(ask node "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask node "$NL_KDNS" whoami.test +tcp)" = "$NL_VIA_DOT" ]
	[ "$(ask node "$NL_LL" whoami.test)" = "$NL_VIA_DOT" ]
}

@test "kill -9 under load: CoreDNS answers within a second; captured again once back" {
	proxy_alive || nl_start_proxy
	local pid t0 t1 ms i got load
	# Load: a pod asking the kube-dns IP as fast as dig goes.
	(
		for ((i = 0; i < 2000; i++)); do
			podns dig @"$NL_KDNS" +tries=1 +time=1 +short n$((i % 2000 + 1)).test A >/dev/null 2>&1
		done
	) 3>&- &
	load=$!
	echo "$load" >"$W_DIR/load.pid"
	sleep 0.5
	pid=$(proxy_pid)
	t0=$(date +%s%N)
	kill -KILL "$pid"
	got=$(ask podns "$NL_KDNS" whoami.test)
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "first answer after kill: $got in $ms ms"
	[ "$got" = "$NL_VIA_COREDNS" ]
	[ "$ms" -lt 1000 ]
	[ "$(ask podns "$NL_LL" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask podns "$NL_KDNS" whoami.test +tcp)" = "$NL_VIA_COREDNS" ]
	[ "$(ask node "$NL_KDNS" whoami.test)" = "$NL_VIA_COREDNS" ]
	[ "$(ask node "$NL_LL" whoami.test)" = "$NL_VIA_COREDNS" ]
	run podns getent ahostsv4 kubernetes.default
	[[ $output == "$NL_CLUSTER_A "* ]]
	# Back: captured again at once.
	nl_start_proxy
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_LL" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask node "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask node "$NL_LL" whoami.test)" = "$NL_VIA_DOT" ]
	kill "$load" 2>/dev/null || true
	wait "$load" 2>/dev/null || true
}

@test "removal leaves the node namespace as it was" {
	stop_proxy || true
	run node "$INIT_BIN" --node-local-remove
	[ "$status" -eq 0 ]
	[[ $output == *"deleted"* ]]
	nl_snapshot "$BATS_TEST_TMPDIR/after"
	diff "$W_DIR/node.before" "$BATS_TEST_TMPDIR/after"
	# Again: nothing to do, still fine.
	run node "$INIT_BIN" --node-local-remove
	[ "$status" -eq 0 ]
	[[ $output == *"was absent"* ]]
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_COREDNS" ]
}

# The figures of an upgrade test's dnsperf output: sent, lost, NOERROR.
nl_perf_clean() {
	local f=$1 sent lost noerror
	sent=$(upg_perf "$f" sent)
	lost=$(upg_perf "$f" lost)
	noerror=$(upg_perf "$f" noerror)
	echo "# $(basename "$f"): sent ${sent:-?} lost ${lost:-?} NOERROR ${noerror:-?}" >&3
	[ "${sent:-0}" -ge 4500 ] || { echo "want ~6000 queries at 1000/s: $(cat "$f")"; return 1; }
	[ "$lost" = 0 ] || { echo "lost $lost of $sent: $(cat "$f")"; return 1; }
	[ "$noerror" = "$sent" ] || { echo "not all NOERROR: $(cat "$f")"; return 1; }
}

@test "rolling upgrade under 2000 queries/s (kube-dns IP + link-local): zero lost, the bypass never lapses" {
	local ho cd0 cd1 kp0 kp1 rc=0
	stop_proxy || true
	nl_upg_cleanup
	nl_init
	# The DaemonSet's hostPath: a directory on the node both pods mount.
	ho=$(upg_dir)/ho.sock
	nl_upg_start a --workers 2 --handover-socket "$ho"
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_LL" whoami.test)" = "$NL_VIA_DOT" ]
	cd0=$(nl_coredns_count)
	kp0=$(kp_pre)
	# 1000/s to each address from the pod, 6 s; the upgrade at 2 s.
	NL_PERF_PIDS=()
	nl_perf "$NL_KDNS" "$W_DIR/perf-kdns.out" 1000 6
	nl_perf "$NL_LL" "$W_DIR/perf-ll.out" 1000 6
	sleep 2
	nl_upg_start b --workers 2 --handover-socket "$ho" || rc=1
	if [ "$rc" = 0 ]; then
		grep -q 'msg="listening sockets taken over"' "$W_DIR/b.log" || rc=2
		grep -q 'msg="listening sockets handed over"' "$W_DIR/a.log" || rc=3
		[ "$(upg_stop a)" = 0 ] || rc=4
		grep -q 'msg="stopping: the sockets were handed over"' "$W_DIR/a.log" || rc=5
	fi
	wait "${NL_PERF_PIDS[@]}"
	cd1=$(nl_coredns_count)
	kp1=$(kp_pre)
	echo "# CoreDNS saw $((cd1 - cd0)) queries, kube-proxy's DNAT $((kp1 - kp0)) during the upgrade" >&3
	[ "$rc" = 0 ] || { echo "handover step $rc failed"; nl_upg_cleanup logs; return 1; }
	nl_perf_clean "$W_DIR/perf-kdns.out"
	nl_perf_clean "$W_DIR/perf-ll.out"
	# Every query stayed on the bypass: none fell through to CoreDNS.
	[ "$cd1" = "$cd0" ]
	[ "$kp1" = "$kp0" ]
	# b serves on its own, both addresses, UDP and TCP.
	upg_alive b
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_DOT" ]
	[ "$(ask podns "$NL_LL" whoami.test +tcp)" = "$NL_VIA_DOT" ]
	[ "$(nl_coredns_count)" = "$cd0" ]
	[ "$(upg_stop b)" = 0 ]
	nl_upg_cleanup
}

@test "time to fail open after kill -9 of the only proxy (printed for tests/bench)" {
	local addr out cd0
	stop_proxy || true
	nl_upg_cleanup
	nl_init
	for addr in "$NL_KDNS" "$NL_LL"; do
		nl_upg_start a --workers 2
		[ "$(ask podns "$addr" whoami.test)" = "$NL_VIA_DOT" ]
		cd0=$(nl_coredns_count)
		# The probe kills the proxy itself, so the clock starts at the kill.
		out=$(podns python3 "$W_ROOT/tests/tools/failopen_probe.py" \
			"$addr" "$(cat "$W_DIR/a.pid")" "$NL_VIA_COREDNS" 5)
		echo "# fail-open after kill -9, pod -> $addr: $out" >&3
		[[ $out == failopen_ms=[0-9]* ]]
		# Gone (upg_stop would wait for a status that its watcher, under
		# errexit, does not record for a non-zero exit).
		if kill -0 "$(cat "$W_DIR/a.pid")" 2>/dev/null; then
			echo "the proxy outlived kill -9"
			return 1
		fi
		# The counter the upgrade test relies on saw the fallback.
		[ "$(nl_coredns_count)" -gt "$cd0" ]
		nl_upg_cleanup
	done
	[ "$(ask podns "$NL_KDNS" whoami.test)" = "$NL_VIA_COREDNS" ]
}
