#!/usr/bin/env bats
# dotproxy-cni end to end (see helpers/cni.bash): Debian's reference
# plugins (bridge with host-local, loopback) chained with dotproxy-cni and
# run as a runtime runs them, from a "node" namespace, for pod namespaces
# made with ip netns add. The annotated pod gets dotproxy-init's very
# table; its unmodified dig and getaddrinfo are answered by the proxy over
# DoT, and a local-zone UDP query reaches the nameserver the application
# asked although the proxy holds no capability (the packet mark). Other
# pods get nothing. CHECK, DEL (twice, and with the namespace gone),
# VERSION, the spec's error objects, the static binary alone in an empty
# chroot, the prevResult passed on byte for byte, and the node installer on
# a copy of a real-shaped configuration directory (rolling update,
# uninstall, libcni's file choice, symlinked lists, exact bytes).

bats_require_minimum_version 1.5.0
load helpers/cni

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() { cni_file_setup; }

teardown_file() {
	local pod=${W_POD:-} up=${W_UP:-} node=${CNI_NODE:-}
	pod_teardown
	[ -f "$BATS_FILE_TMPDIR/root.before" ] || return 0
	pod_root_state >"$BATS_FILE_TMPDIR/root.after"
	diff -u "$BATS_FILE_TMPDIR/root.before" "$BATS_FILE_TMPDIR/root.after"
	pod_root_gone "$pod" "$up" "$node"
}

teardown() {
	local pid
	# An installer a failed test left running (dotproxy-cni, by PID).
	pid=$(cat "$W_DIR/inst.pid" 2>/dev/null) || pid=
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dotproxy-cni ]; then
		kill -TERM "$pid" 2>/dev/null || true
		w_wait_gone 50 "$pid" || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$W_DIR/inst.pid"
	# The chroot test's bind mount, when it failed before its umount.
	if [ -f "$W_DIR/chroot-mount" ]; then
		umount "$(cat "$W_DIR/chroot-mount")" 2>/dev/null || true
		rm -f "$W_DIR/chroot-mount"
	fi
	proxy_test_teardown
}

# $output is a CNI error object with code $1 whose msg contains $2.
assert_cni_error() {
	[ "$status" -eq 1 ] || w_fail "want exit status 1, got $status" || return 1
	[ "$(jq -r .code <<<"$output")" = "$1" ] ||
		w_fail "want error code $1" || return 1
	jq -r .msg <<<"$output" | grep -qF -- "$2" ||
		w_fail "want a msg naming '$2'" || return 1
	[ -n "$(jq -r '.cniVersion // empty' <<<"$output")" ] ||
		w_fail "the error object has no cniVersion" || return 1
}

@test "ADD: the chain's result passes through unchanged, and the annotated pod has dotproxy-init's very table" {
	local addr
	run cat "$W_DIR/pod-add.json"
	# The pod got eth0 on the bridge from host-local, and the final result
	# (ours) still carries the bridge's interfaces and addresses.
	addr=$(jq -r '.ips[0].address' <<<"$output")
	[[ $addr == 198.51.100.*/24 ]] || w_fail "the result lost the bridge's ips"
	ip -n "$W_POD" -4 addr show dev eth0 | grep -qF "inet $addr " ||
		w_fail "no $addr on eth0 in the pod"
	jq -e '.interfaces | map(.name) | index("eth0")' <<<"$output" >/dev/null ||
		w_fail "no eth0 interface in the result"
	[ "$(jq -r .cniVersion <<<"$output")" = 1.0.0 ] || w_fail "cniVersion"

	run pod "$INIT_BIN" --check
	[ "$status" -eq 0 ] || w_fail "dotproxy-init --check: the table differs"
	# Byte for byte what dotproxy-init installs (counters left out).
	ip netns add "${W_POD}x"
	echo "${W_POD}x" >>"$W_DIR/netns"
	cni_pod_resolv "${W_POD}x"
	ip netns exec "${W_POD}x" "$INIT_BIN" >/dev/null
	[ "$(ip netns exec "${W_POD}x" nft -s list table inet dotproxy)" = \
		"$(pod nft -s list table inet dotproxy)" ] ||
		w_fail "the table differs from dotproxy-init's"
	grep -q "ADD container=$W_POD pod=apps/$W_POD .*captured (annotation dotproxy/capture=true): table inet dotproxy installed" \
		"$W_DIR/cni.log" || w_fail "no log line for the ADD"
}

@test "ADD output is the previous plugin's result, byte-for-byte equal as JSON" {
	local pod2=${W_POD}2 conf bridge ours
	cni_pod_add "$pod2"
	# The bridge alone, then dotproxy-cni with the bridge's result.
	conf=$(jq -c '.plugins[0] + {cniVersion, name}' \
		"$W_DIR/net.d/10-$CNI_LIST_NAME.conflist")
	bridge=$(cni_exec ADD bridge "/var/run/netns/$pod2" "$pod2" "" <<<"$conf")
	conf=$(jq -c --argjson prev "$bridge" \
		'.plugins[1] + {cniVersion, name, prevResult: $prev} | del(.capabilities)' \
		"$W_DIR/net.d/10-$CNI_LIST_NAME.conflist")
	ours=$(cni_exec ADD dotproxy-cni "/var/run/netns/$pod2" "$pod2" \
		"K8S_POD_NAMESPACE=default" <<<"$conf")
	[ "$(jq -S . <<<"$ours")" = "$(jq -S . <<<"$bridge")" ] ||
		w_fail "result changed: $ours vs $bridge"
	[ -z "$(pod_tables "$pod2")" ] || w_fail "a table in an unselected pod"
	cni_exec DEL bridge "/var/run/netns/$pod2" "$pod2" "" <<<"$conf"
}

@test "the annotated pod's unmodified dig and getaddrinfo are answered by the proxy over DoT" {
	pod_start_proxy
	run adig @192.0.2.2 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	assert_server 192.0.2.2 UDP
	assert_logged whoami.test. "transport=udp path=dot to=dot"

	run adig @192.0.2.2 +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig +tcp exit $status"
	assert_dot_answer
	assert_server 192.0.2.2 TCP

	run app "$GAI" whoami.test web
	[ "$status" -eq 0 ] || w_fail "gai exit $status"
	[ "${lines[0]}" = "whoami.test 203.0.113.1" ] || w_fail "whoami.test over DoT"
	[ "${lines[1]}" = "web 198.51.100.10" ] || w_fail "web via the search list"
}

@test "without any capability, a local-zone UDP query reaches the nameserver the app asked (IPv4 and IPv6)" {
	pod_start_proxy
	# Not the first nameserver (192.0.2.2, which answers .10): .11 only
	# comes from 192.0.2.3, so the resolv.conf fallback cannot pass this.
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

	# The first nameserver still gets its own queries.
	run adig @192.0.2.2 web.ns.svc.cluster.local A
	assert_a web.ns.svc.cluster.local 198.51.100.10
	# Really without conntrack: the proxy could not read it.
	grep -q 'UDP original destination unavailable' "$(proxy_log)" &&
		w_fail "the conntrack path was used"
	# The proxy has no capability at all.
	grep -E '^CapEff:[[:space:]]+0+$' "/proc/$(proxy_pid)/status" ||
		w_fail "the proxy has capabilities"
}

@test "without the mark (a table without its mark rules) the conntrack path and the resolv.conf fallback stay" {
	local h
	for h in $(pod nft -a list chain inet dotproxy ct_zone |
		awk '/meta mark set/ { print $NF }'); do
		pod nft delete rule inet dotproxy ct_zone handle "$h"
	done
	! pod nft list chain inet dotproxy ct_zone | grep -q 'meta mark' ||
		w_fail "mark rules still there"
	# No capability: the first nameserver, said once.
	pod_start_proxy
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.10
	assert_server 192.0.2.3 UDP
	grep -q 'msg="UDP original destination unavailable".*fallback=resolv.conf' "$(proxy_log)" ||
		w_fail "the fallback is not logged"
	stop_proxy || w_fail "the proxy did not stop cleanly"
	# CAP_NET_ADMIN: conntrack finds the address asked.
	pod_start_proxy_netadmin
	run adig @192.0.2.3 web.ns.svc.cluster.local A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_a web.ns.svc.cluster.local 198.51.100.11
	assert_logged web.ns.svc.cluster.local. "transport=udp path=local to=192.0.2.3:53"
	pod "$INIT_BIN" >/dev/null
}

@test "an unannotated pod in an unlisted namespace gets nothing; CHECK and DEL leave it alone" {
	local p=${W_POD}3
	cni_pod_add "$p"
	run cni_list ADD "$p" default '{"other":"x"}'
	[ "$status" -eq 0 ] || w_fail "ADD failed"
	ip -n "$p" -4 addr show dev eth0 | grep -q 'inet 198\.51\.100\.' ||
		w_fail "the pod has no address from the chain"
	[ -z "$(pod_tables "$p")" ] || w_fail "an unselected pod got a table"
	grep -q "ADD container=$p pod=default/$p .*not captured (not selected)" "$W_DIR/cni.log" ||
		w_fail "no log line"
	run cni_list CHECK "$p" default '{"other":"x"}'
	[ "$status" -eq 0 ] || w_fail "CHECK failed"
	# No annotations at all (a runtime without the capability): nothing.
	run cni_list DEL "$p" default
	[ "$status" -eq 0 ] || w_fail "DEL failed"
	cni_pod_add "${p}b"
	run cni_list ADD "${p}b" default
	[ "$status" -eq 0 ] || w_fail "ADD without annotations failed"
	[ -z "$(pod_tables "${p}b")" ] || w_fail "a table without annotations"
	grep -q "ADD container=${p}b .*the runtime passed no pod annotations" "$W_DIR/cni.log" ||
		w_fail "the log does not say annotations were missing"
	# Opted out in a listed namespace: nothing.
	cni_pod_add "${p}c"
	run cni_list ADD "${p}c" "$CNI_CAPTURED_NS" '{"dotproxy/capture":"false"}'
	[ "$status" -eq 0 ] || w_fail "ADD (opt-out) failed"
	[ -z "$(pod_tables "${p}c")" ] || w_fail "an opted-out pod got a table"
}

@test "listed namespace: table on ADD, CHECK passes, fails once the table is dormant or flushed, DEL removes it, a second DEL succeeds" {
	local p=${W_POD}4
	cni_pod_add "$p"
	run cni_list ADD "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "ADD failed"
	[ "$(pod_tables "$p")" = "table inet dotproxy" ] || w_fail "no table"
	run ip netns exec "$p" "$INIT_BIN" --check
	[ "$status" -eq 0 ] || w_fail "not dotproxy-init's table"
	run cni_list CHECK "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "CHECK right after ADD failed"

	# A dormant table keeps its rules and runs none of them.
	ip netns exec "$p" nft add table inet dotproxy '{ flags dormant; }'
	run --separate-stderr cni_list CHECK "$p" "$CNI_CAPTURED_NS" '{}'
	assert_cni_error 100 "table inet dotproxy has flags dormant 0x1; want none"

	ip netns exec "$p" nft flush table inet dotproxy
	run --separate-stderr cni_list CHECK "$p" "$CNI_CAPTURED_NS" '{}'
	assert_cni_error 100 "table inet dotproxy differs"
	ip netns exec "$p" nft delete table inet dotproxy
	run --separate-stderr cni_list CHECK "$p" "$CNI_CAPTURED_NS" '{}'
	assert_cni_error 100 "table inet dotproxy is missing"

	# Put it back (the same table, from dotproxy-init), for DEL to remove.
	ip netns exec "$p" "$INIT_BIN" >/dev/null
	run cni_list CHECK "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "CHECK after the repair failed"
	run cni_list DEL "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "DEL failed"
	[ -z "$(pod_tables "$p")" ] || w_fail "DEL left the table"
	! ip -n "$p" link show eth0 2>/dev/null || w_fail "DEL left eth0"
	run cni_list DEL "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "second DEL failed: $output"
	grep -q "DEL container=$p .*table inet dotproxy removed" "$W_DIR/cni.log" ||
		w_fail "no log line for the removal"
	grep -q "DEL container=$p .*was not installed; nothing to do" "$W_DIR/cni.log" ||
		w_fail "no log line for the second DEL"
}

@test "DEL succeeds when the pod's network namespace is already gone" {
	local p=${W_POD}5
	cni_pod_add "$p"
	run cni_list ADD "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "ADD failed"
	ip netns del "$p"
	run cni_list DEL "$p" "$CNI_CAPTURED_NS" '{}'
	[ "$status" -eq 0 ] || w_fail "DEL with the namespace gone failed: $output"
	grep -q "DEL container=$p .*network namespace gone" "$W_DIR/cni.log" ||
		w_fail "no log line"
	# And with no CNI_NETNS at all.
	run cni_exec DEL dotproxy-cni "" "$p" "K8S_POD_NAMESPACE=$CNI_CAPTURED_NS" \
		<<<'{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni","namespaces":["dns-captured"]}'
	[ "$status" -eq 0 ] || w_fail "DEL without CNI_NETNS failed: $output"
}

@test "VERSION, and errors as the spec's objects with its codes" {
	local p=${W_POD}6 ok_conf
	run cni_exec VERSION dotproxy-cni "" "" "" <<<'{"cniVersion":"1.0.0"}'
	[ "$status" -eq 0 ]
	jq -e '.supportedVersions | index("1.0.0") and index("0.4.0") and index("0.3.1")' \
		<<<"$output" >/dev/null || w_fail "supportedVersions"
	[ "$(jq -r .cniVersion <<<"$output")" = 1.0.0 ] || w_fail "cniVersion"

	cni_pod_add "$p"
	ok_conf='{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni","prevResult":{"cniVersion":"1.0.0"}}'
	run --separate-stderr cni_exec ADD dotproxy-cni "" "$p" "" <<<"$ok_conf"
	assert_cni_error 4 CNI_NETNS
	run --separate-stderr ip netns exec "$CNI_NODE" env -i CNI_CONTAINERID=x CNI_NETNS="/var/run/netns/$p" \
		CNI_IFNAME=eth0 "$W_DIR/cni-bin/dotproxy-cni" <<<"$ok_conf"
	assert_cni_error 4 CNI_COMMAND
	run --separate-stderr cni_exec BOGUS dotproxy-cni "/var/run/netns/$p" "$p" "" <<<"$ok_conf"
	assert_cni_error 4 BOGUS
	run --separate-stderr cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "" <<<'{"cniVersion":'
	assert_cni_error 6 decode
	run --separate-stderr cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "" <<<'{"cniVersion":"9.9.9"}'
	assert_cni_error 1 9.9.9
	run --separate-stderr cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "" \
		<<<'{"cniVersion":"1.0.0","name":"n","proxyPort":70000,"prevResult":{}}'
	assert_cni_error 7 proxyPort
	run --separate-stderr cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "" \
		<<<'{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni"}'
	assert_cni_error 7 prevResult
	run --separate-stderr cni_exec CHECK dotproxy-cni "/var/run/netns/$p" "$p" "" \
		<<<'{"cniVersion":"0.3.1","name":"n","type":"dotproxy-cni","prevResult":{}}'
	assert_cni_error 1 CHECK
	# A namespace that does not exist, for a pod that should be captured.
	run --separate-stderr cni_exec ADD dotproxy-cni /var/run/netns/dpt-no-such-ns "$p" "" \
		<<<'{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"dotproxy/capture":"true"}},"prevResult":{}}'
	assert_cni_error 5 dpt-no-such-ns
	[ -z "$(pod_tables "$p")" ] || w_fail "a failed ADD left a table"
}

# A conflist shaped like flannel's, as its install-cni writes it, with a
# key order and spacing of its own.
inst_conflist() {
	cat <<-'EOF'
	{
	  "name": "cbr0",
	  "cniVersion": "0.3.1",
	  "plugins": [
	    {
	      "type": "flannel",
	      "delegate": {
	        "hairpinMode": true,
	        "isDefaultGateway": true
	      }
	    },
	    {
	      "type": "portmap",
	      "capabilities": {
	        "portMappings": true
	      }
	    }
	  ]
	}
	EOF
}

# inst_wait CONDITION-COMMAND...: waits up to 10 s for it to succeed.
inst_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

inst_ours_last() {
	[ "$(jq -r '.plugins[-1].type' "$1" 2>/dev/null)" = dotproxy-cni ]
}

# inst_start DIR [OPTIONS...]: the installer on DIR/bin and DIR/net.d, ready
# file DIR/ready, in the background (PID in $W_DIR/inst.pid), log DIR/inst.log.
inst_start() {
	local d=$1
	shift
	"$CNI_BIN" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--ready-file "$d/ready" "$@" 2>>"$d/inst.log" &
	echo $! >"$W_DIR/inst.pid"
}

# inst_stop: SIGTERM, as a rolling update or a node drain sends it; the
# exit status must be 0.
inst_stop() {
	local rc=0
	kill -TERM "$(cat "$W_DIR/inst.pid")"
	wait "$(cat "$W_DIR/inst.pid")" || rc=$?
	rm -f "$W_DIR/inst.pid"
	[ "$rc" -eq 0 ] || w_fail "installer exit status $rc on SIGTERM"
}

@test "installer: copies the plugin, appends itself to the first list, re-adds itself after a rewrite, is ready; SIGTERM leaves plugin and entry, uninstall gives back the bytes" {
	local d=$W_DIR/inst f
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	inst_conflist >"$f"
	cp "$f" "$d/original"
	printf '{"cniVersion":"0.3.1","name":"lo","type":"loopback"}\n' >"$d/net.d/99-loopback.conf"
	inst_conflist >"$d/net.d/20-other.conflist"
	sha256sum "$d/net.d/99-loopback.conf" "$d/net.d/20-other.conflist" >"$d/others.sum"

	inst_start "$d" --plugin-config '{"namespaces":["apps"],"logFile":"/var/log/dotproxy-cni.log"}'
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	inst_wait test -e "$d/ready" || w_fail "no ready file with the entry in place"
	run "$CNI_BIN" ready "$d/ready"
	[ "$status" -eq 0 ] || w_fail "ready: exit $status"
	cmp "$CNI_BIN" "$d/bin/dotproxy-cni" || w_fail "binary not copied"
	[ -x "$d/bin/dotproxy-cni" ] || w_fail "binary not executable"
	# Everything else byte for byte: the file up to the end of the last
	# plugin is the original's.
	[ "$(jq -S 'del(.plugins[-1])' "$f")" = "$(jq -S . "$d/original")" ] ||
		w_fail "the rest of the list changed"
	[ "$(jq -c '.plugins[-1]' "$f")" = \
		'{"type":"dotproxy-cni","capabilities":{"io.kubernetes.cri.pod-annotations":true,"dns":true},"namespaces":["apps"],"logFile":"/var/log/dotproxy-cni.log"}' ] ||
		w_fail "our entry: $(jq -c '.plugins[-1]' "$f")"
	[ "$(jq '[.plugins[] | select(.type == "dotproxy-cni")] | length' "$f")" = 1 ] ||
		w_fail "more than one entry"
	sha256sum -c --quiet "$d/others.sum" || w_fail "another file changed"
	[ -z "$(find "$d/net.d" "$d/bin" -name '.dotproxy-cni.tmp*')" ] ||
		w_fail "temp files left"

	# The network plugin rewrites its file (new temp, rename), then in place.
	inst_conflist | jq '.plugins[0].delegate.mtu = 1400' >"$d/net.d/.flannel.tmp"
	cp "$d/net.d/.flannel.tmp" "$d/rewritten"
	mv "$d/net.d/.flannel.tmp" "$f"
	inst_wait inst_ours_last "$f" || w_fail "not re-added after a rename"
	[ "$(jq -S 'del(.plugins[-1])' "$f")" = "$(jq -S . "$d/rewritten")" ] ||
		w_fail "the rewritten list changed"
	cat "$d/rewritten" >"$f"
	inst_wait inst_ours_last "$f" || w_fail "not re-added after an in-place write"

	# A rolling update: the old pod stops, pods started with the entry
	# must still be able to run DEL.
	inst_stop
	inst_ours_last "$f" || w_fail "SIGTERM took the entry out"
	cmp "$CNI_BIN" "$d/bin/dotproxy-cni" || w_fail "SIGTERM took the binary away"
	grep -q "stopping; the plugin and its entry stay" "$d/inst.log" || w_fail "no log line"
	# The new pod starts: nothing to change, ready at once.
	cp "$f" "$d/with-entry"
	inst_start "$d" --plugin-config '{"namespaces":["apps"],"logFile":"/var/log/dotproxy-cni.log"}'
	inst_wait test -e "$d/ready" || w_fail "the new installer is not ready"
	cmp "$d/with-entry" "$f" || w_fail "the new installer rewrote an entry in place"
	inst_stop

	run "$CNI_BIN" uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 0 ] || w_fail "uninstall failed: $output"
	# The exact bytes the network plugin last wrote.
	cmp "$d/rewritten" "$f" || w_fail "the list was not restored"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "the binary is still there"
	sha256sum -c --quiet "$d/others.sum" || w_fail "another file changed"
	[[ $output == *"removed dotproxy-cni from $f"* ]] || w_fail "no log line"
}

@test "installer: when another list comes first, it moves there and gives the old one back its bytes" {
	local d=$W_DIR/inst3 f g
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	g=$d/net.d/05-calico.conflist
	inst_conflist >"$f"
	cp "$f" "$d/flannel"
	inst_start "$d"
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	inst_conflist | jq '.name = "k8s-pod-network"' >"$d/calico"
	cp "$d/calico" "$g"
	inst_wait inst_ours_last "$g" || w_fail "not moved: $(cat "$d/inst.log")"
	inst_wait cmp -s "$d/flannel" "$f" || w_fail "the old list was not given back"
	inst_stop
	inst_ours_last "$g" || w_fail "SIGTERM took the entry out"
	"$CNI_BIN" uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" 2>/dev/null
	cmp "$d/calico" "$g" || w_fail "the new list was not restored"
	cmp "$d/flannel" "$f" || w_fail "the old list changed again"
}

@test "installer: a stale entry of an earlier run is replaced; uninstall takes every entry out" {
	local d=$W_DIR/inst4 f
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	inst_conflist | jq '.plugins |= [.[0], {type: "dotproxy-cni", proxyPort: 1}, .[1]]' >"$f"
	inst_start "$d" --plugin-config '{"proxyPort":15353}'
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	[ "$(jq '[.plugins[] | select(.type == "dotproxy-cni")] | length' "$f")" = 1 ] ||
		w_fail "the stale entry stayed"
	[ "$(jq '.plugins[-1].proxyPort' "$f")" = 15353 ] || w_fail "not the new settings"
	inst_stop
	run "$CNI_BIN" uninstall --keep-binary --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 0 ] || w_fail "uninstall failed"
	[ "$(jq -S . "$f")" = "$(inst_conflist | jq -S .)" ] ||
		w_fail "an entry of ours is left: $(cat "$f")"
	[ -x "$d/bin/dotproxy-cni" ] || w_fail "--keep-binary removed the binary"
}

@test "installer: bad configuration refused at once; --once fails, leaving nothing, when it installed nothing; --once then uninstall" {
	local d=$W_DIR/inst2 f
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	run "$CNI_BIN" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--plugin-config '{"proxyPort":"x"}'
	[ "$status" -eq 2 ] || w_fail "want exit 2"
	[[ $output == *proxyPort* ]] || w_fail "the message does not name the key"
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--conf-file 10-x.yaml
	[ "$status" -eq 2 ] || w_fail "a --conf-file no runtime reads: want exit 2"

	# Nothing to install into: exit 1, one clear line, no binary left.
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--ready-file "$d/ready"
	[ "$status" -eq 1 ] || w_fail "--once with no list: want exit 1, got $status"
	[[ $output == *"no network configuration list"* ]] || w_fail "no reason given: $output"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "a binary left half-installed"
	[ ! -e "$d/ready" ] || w_fail "ready without an entry"
	run env DOTPROXY_CNI_READY_FILE="$d/ready" "$CNI_BIN" ready
	[ "$status" -eq 1 ] || w_fail "ready (from the environment) without an entry: exit $status"
	# A single-plugin file, and a list that is not JSON: left alone.
	printf '{"cniVersion":"0.3.1","name":"b","type":"bridge"}\n' >"$d/net.d/10-bridge.conf"
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 1 ] || w_fail "--once on a .conf: want exit 1"
	[[ $output == *"single-plugin"* ]] || w_fail "no reason given: $output"
	[ "$(cat "$d/net.d/10-bridge.conf")" = '{"cniVersion":"0.3.1","name":"b","type":"bridge"}' ] ||
		w_fail "the .conf changed"
	rm "$d/net.d/10-bridge.conf"
	printf '{"plugins": [' >"$f"
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 1 ] || w_fail "--once on broken JSON: want exit 1"
	[ "$(cat "$f")" = '{"plugins": [' ] || w_fail "the broken list changed"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "a binary left half-installed"

	inst_conflist >"$f"
	run env DOTPROXY_CNI_CNI_BIN_DIR="$d/bin" DOTPROXY_CNI_CNI_CONF_DIR="$d/net.d" \
		DOTPROXY_CNI_READY_FILE="$d/ready" "$CNI_BIN" install --once
	[ "$status" -eq 0 ] || w_fail "--once failed: $output"
	inst_ours_last "$f" || w_fail "--once did not add the entry"
	[ -x "$d/bin/dotproxy-cni" ] || w_fail "--once did not copy the binary"
	[ -e "$d/ready" ] || w_fail "--once: no ready file"
	run "$CNI_BIN" install --uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--ready-file "$d/ready"
	[ "$status" -eq 0 ] || w_fail "--uninstall failed"
	cmp <(inst_conflist) "$f" || w_fail "not removed"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "binary left"
	[ ! -e "$d/ready" ] || w_fail "ready file left"
}

@test "installer: picks the file as libcni does (a directory named like a list skipped, a dot-file counts), --conf-file names another" {
	local d=$W_DIR/inst5 f h
	mkdir -p "$d/bin" "$d/net.d/00-dir.conflist"
	f=$d/net.d/10-flannel.conflist
	h=$d/net.d/.05-hidden.conflist
	inst_conflist >"$f"
	# The directory sorts first: skipped.
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 0 ] || w_fail "--once past a directory failed: $output"
	inst_ours_last "$f" || w_fail "the directory stopped it"
	"$CNI_BIN" uninstall --keep-binary --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" 2>/dev/null
	cmp <(inst_conflist) "$f" || w_fail "uninstall did not restore the list"
	# A dot-file sorts before both ('.' < '0') and libcni loads it.
	inst_conflist | jq '.name = "hidden"' >"$h"
	cp "$h" "$d/hidden"
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 0 ] || w_fail "--once failed: $output"
	inst_ours_last "$h" || w_fail "the dot-file libcni loads first was not used"
	cmp <(inst_conflist) "$f" || w_fail "a later file changed"
	"$CNI_BIN" uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" 2>/dev/null
	cmp "$d/hidden" "$h" || w_fail "uninstall did not restore the dot-file"
	run "$CNI_BIN" install --once --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--conf-file 10-flannel.conflist
	[ "$status" -eq 0 ] || w_fail "--once --conf-file failed: $output"
	inst_ours_last "$f" || w_fail "--conf-file not used"
	cmp "$d/hidden" "$h" || w_fail "--conf-file: the first file changed"
}

@test "installer: a symlinked list is written through to its target and stays a link; numbers and unknown fields byte for byte" {
	local d=$W_DIR/inst6 f t
	mkdir -p "$d/bin" "$d/net.d" "$d/primary"
	t=$d/primary/10-calico.conflist
	f=$d/net.d/10-calico.conflist
	# Numbers a double cannot hold, a decimal, fields of nobody we know.
	cat >"$t" <<-'EOF'
	{"name":"k8s-pod-network","cniVersion":"0.3.1","x-serial":123456789012345678901234567890,
	 "plugins":[{"type":"calico","mtu":0,"ratio":0.1,"nodename_file_optional":false,
	   "ipam":{"type":"calico-ipam","assign_ipv4":"true"},"weird":{"k":[1.0,2e3,-0.0]}},
	  {"type":"bandwidth","capabilities":{"bandwidth":true}}]}
	EOF
	cp "$t" "$d/original"
	ln -s ../primary/10-calico.conflist "$f"
	inst_start "$d" --plugin-config '{"proxyPort":15353,"x":0.1}'
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	[ -L "$f" ] || w_fail "the link was replaced by a file"
	[ "$(readlink "$f")" = ../primary/10-calico.conflist ] || w_fail "the link changed"
	grep -qF '123456789012345678901234567890' "$t" && grep -qF '"ratio":0.1,' "$t" &&
		grep -qF '[1.0,2e3,-0.0]' "$t" && grep -qF '"x":0.1' "$t" ||
		w_fail "numbers rewritten: $(cat "$t")"
	# The primary CNI rewrites its file (in its own directory).
	sed 's/"mtu":0/"mtu":1440/' "$d/original" >"$d/primary/.tmp"
	cp "$d/primary/.tmp" "$d/rewritten"
	mv "$d/primary/.tmp" "$t"
	inst_wait inst_ours_last "$f" || w_fail "not re-added through the link"
	inst_stop
	"$CNI_BIN" uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" 2>/dev/null
	[ -L "$f" ] || w_fail "uninstall replaced the link"
	cmp "$d/rewritten" "$t" || w_fail "the target did not get its bytes back"
	[ -z "$(find "$d" -name '.dotproxy-cni.tmp*')" ] || w_fail "temp files left"
}

@test "the static plugin alone in an empty chroot: ADD, CHECK and DEL; no interpreter" {
	local p=${W_POD}c c=$W_DIR/chroot conf out chroot
	chroot=$(command -v chroot) || w_fail "no chroot (coreutils)"
	# The sanitizers cannot link statically, so a SANITIZE build links the
	# plugin dynamically; the static binary is tested in the plain round.
	if grep -q -- '-fsanitize=' "$W_BUILD/.build-flags" 2>/dev/null; then
		skip "a SANITIZE build links dotproxy-cni dynamically (sanitizers need the loader)"
	fi
	run readelf -lW "$CNI_BIN"
	[ "$status" -eq 0 ] || w_fail "readelf failed"
	[[ $output != *INTERP* ]] || w_fail "the binary needs a program interpreter"
	run readelf -dW "$CNI_BIN"
	[[ $output != *NEEDED* ]] || w_fail "the binary needs shared libraries: $output"
	cni_pod_add "$p"
	# Only the binary and the namespace (bind-mounted): no loader, no
	# libc, no /proc, no /etc.
	mkdir -p "$c/netns"
	cp "$CNI_BIN" "$c/dotproxy-cni"
	touch "$c/netns/pod"
	mount --bind "/var/run/netns/$p" "$c/netns/pod"
	echo "$c/netns/pod" >"$W_DIR/chroot-mount"
	[ "$(find "$c" -mindepth 1 | sort | tr '\n' ' ')" = "$c/dotproxy-cni $c/netns $c/netns/pod " ] ||
		w_fail "the chroot holds more than the binary and the namespace"
	conf='{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"dotproxy/capture":"true"}},"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"198.51.100.77/24"}],"x":0.1}}'
	for cmd in ADD CHECK DEL; do
		out=$(ip netns exec "$CNI_NODE" env -i CNI_COMMAND=$cmd CNI_CONTAINERID="$p" \
			CNI_NETNS=/netns/pod CNI_IFNAME=eth0 CNI_PATH=/ \
			"$chroot" "$c" /dotproxy-cni <<<"$conf") || w_fail "$cmd in the chroot failed: $out"
		case $cmd in
		ADD)
			[ "$out" = '{"cniVersion":"1.0.0","ips":[{"address":"198.51.100.77/24"}],"x":0.1}' ] ||
				w_fail "ADD result: $out"
			[ "$(pod_tables "$p")" = "table inet dotproxy" ] || w_fail "ADD installed no table"
			;;
		DEL)
			[ -z "$(pod_tables "$p")" ] || w_fail "DEL left the table"
			;;
		esac
	done
	umount "$c/netns/pod"
	rm -f "$W_DIR/chroot-mount"
}

@test "ADD passes the prevResult on byte for byte: integers beyond int64, decimals, unknown fields" {
	local p=${W_POD}7 prev out
	cni_pod_add "$p"
	prev='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mtu":1500}],"ips":[{"address":"198.51.100.78/24","gateway":"198.51.100.1"}],"x-big":123456789012345678901234567890,"x-neg":-18446744073709551617,"x-dec":0.1,"x-exp":1.5e-7,"x-obj":{"k":[1.0,true,null]}}'
	out=$(cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "K8S_POD_NAMESPACE=default" \
		<<<"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"dotproxy-cni\",\"prevResult\":$prev}") ||
		w_fail "ADD failed: $out"
	[ "$out" = "$prev" ] || w_fail "result rewritten: $out"
	# An older list version: only the cniVersion changes.
	out=$(cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "K8S_POD_NAMESPACE=default" \
		<<<"{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"dotproxy-cni\",\"prevResult\":${prev/1.0.0/0.4.0}}") ||
		w_fail "ADD 0.4.0 failed: $out"
	[ "$out" = "${prev/1.0.0/0.4.0}" ] || w_fail "0.4.0 result rewritten: $out"
}

@test "VERSION answers the version asked; errors carry the configuration's version; DEL tolerates any namespace error; long log records stay lines" {
	local p=${W_POD}8 long kargs i
	run cni_exec VERSION dotproxy-cni "" "" "" <<<'{"cniVersion":"0.4.0"}'
	[ "$status" -eq 0 ] || w_fail "VERSION failed"
	[ "$(jq -r .cniVersion <<<"$output")" = 0.4.0 ] || w_fail "VERSION 0.4.0: $output"
	[ "$(jq -c .supportedVersions <<<"$output")" = '["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]' ] ||
		w_fail "supportedVersions: $output"
	run cni_exec VERSION dotproxy-cni "" "" "" <<<'{"cniVersion":"0.2.0"}'
	[ "$(jq -r .cniVersion <<<"$output")" = 1.1.0 ] || w_fail "VERSION of a version we lack: $output"
	run cni_exec VERSION dotproxy-cni "" "" "" </dev/null
	[ "$status" -eq 0 ] && [ "$(jq -r .cniVersion <<<"$output")" = 1.1.0 ] ||
		w_fail "VERSION without a configuration: $output"

	run --separate-stderr cni_exec ADD dotproxy-cni "/var/run/netns/$p" "$p" "" \
		<<<'{"cniVersion":"0.4.0","name":"n","proxyPort":70000,"prevResult":{}}'
	assert_cni_error 7 proxyPort
	[ "$(jq -r .cniVersion <<<"$output")" = 0.4.0 ] || w_fail "error object version: $output"

	# A namespace path that cannot be opened for another reason than
	# ENOENT (ENOTDIR): DEL still succeeds, the teardown goes on.
	run --separate-stderr cni_exec DEL dotproxy-cni /etc/hostname/ns "$p" "" \
		<<<'{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"dotproxy/capture":"true"}},"logFile":"'"$W_DIR"'/long.log"}'
	[ "$status" -eq 0 ] || w_fail "DEL failed on ENOTDIR: $output"

	# Records longer than 1 KiB (long container id, pod names, namespace
	# path and message): each is cut at the bound, and still one line.
	long=/var/run/netns/$(printf 'n%.0s' {1..1500})
	kargs="K8S_POD_NAMESPACE=$(printf 's%.0s' {1..200});K8S_POD_NAME=$(printf 'p%.0s' {1..200})"
	for i in 1 2; do
		cni_exec DEL dotproxy-cni "$long" "$(printf 'c%.0s' {1..100})" "$kargs" \
			<<<'{"cniVersion":"1.0.0","name":"n","type":"dotproxy-cni","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"dotproxy/capture":"true"}},"logFile":"'"$W_DIR"'/long.log"}' >/dev/null ||
			w_fail "DEL with a long path failed"
	done
	[ "$(wc -l <"$W_DIR/long.log")" -eq 3 ] || w_fail "want 3 records: $(cat "$W_DIR/long.log")"
	[ "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.* DEL container=' "$W_DIR/long.log")" -eq 3 ] ||
		w_fail "records merged: $(cat "$W_DIR/long.log")"
	[ "$(awk '{ print length($0) }' "$W_DIR/long.log" | sort -n | tail -1)" -eq 1023 ] ||
		w_fail "the long records were not cut at 1 KiB: $(awk '{ print length($0) }' "$W_DIR/long.log")"
}
