#!/usr/bin/env bats
# dotproxy-cni end to end (see helpers/cni.bash): Debian's reference
# plugins (bridge with host-local, loopback) chained with dotproxy-cni and
# run as a runtime runs them, from a "node" namespace, for pod namespaces
# made with ip netns add. The annotated pod gets dotproxy-init's very
# table; its unmodified dig and getaddrinfo are answered by the proxy over
# DoT, and a local-zone UDP query reaches the nameserver the application
# asked although the proxy holds no capability (the packet mark). Other
# pods get nothing. CHECK, DEL (twice, and with the namespace gone),
# VERSION, the spec's error objects, and the node installer on a copy of
# a real-shaped configuration directory.

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

	run pod "$DOTPROXY_INIT" --check
	[ "$status" -eq 0 ] || w_fail "dotproxy-init --check: the table differs"
	# Byte for byte what dotproxy-init installs (counters left out).
	ip netns add "${W_POD}x"
	echo "${W_POD}x" >>"$W_DIR/netns"
	cni_pod_resolv "${W_POD}x"
	ip netns exec "${W_POD}x" "$DOTPROXY_INIT" >/dev/null
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
	pod "$DOTPROXY_INIT" >/dev/null
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
	run ip netns exec "$p" "$DOTPROXY_INIT" --check
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
	ip netns exec "$p" "$DOTPROXY_INIT" >/dev/null
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

@test "installer: copies the plugin, appends itself to the first list, re-adds itself after a rewrite, removes itself on SIGTERM" {
	local d=$W_DIR/inst f rc
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	inst_conflist >"$f"
	cp "$f" "$d/original"
	printf '{"cniVersion":"0.3.1","name":"lo","type":"loopback"}\n' >"$d/net.d/99-loopback.conf"
	inst_conflist >"$d/net.d/20-other.conflist"
	sha256sum "$d/net.d/99-loopback.conf" "$d/net.d/20-other.conflist" >"$d/others.sum"

	"$DOTPROXY_CNI" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--plugin-config '{"namespaces":["apps"],"logFile":"/var/log/dotproxy-cni.log"}' \
		2>"$d/inst.log" &
	echo $! >"$W_DIR/inst.pid"
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	cmp "$DOTPROXY_CNI" "$d/bin/dotproxy-cni" || w_fail "binary not copied"
	[ -x "$d/bin/dotproxy-cni" ] || w_fail "binary not executable"
	# Everything else meaningfully equal; our entry as configured.
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

	kill -TERM "$(cat "$W_DIR/inst.pid")"
	rc=0
	wait "$(cat "$W_DIR/inst.pid")" || rc=$?
	rm -f "$W_DIR/inst.pid"
	[ "$rc" -eq 0 ] || w_fail "installer exit status $rc on SIGTERM: $(cat "$d/inst.log")"
	# Left as it was: the exact bytes the network plugin last wrote.
	cmp "$d/rewritten" "$f" || w_fail "the list was not restored"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "the binary is still there"
	sha256sum -c --quiet "$d/others.sum" || w_fail "another file changed"
	grep -q "removed dotproxy-cni from $f" "$d/inst.log" || w_fail "no log line"
}

@test "installer: when another list comes first, it moves there and gives the old one back its bytes" {
	local d=$W_DIR/inst3 f g rc
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	g=$d/net.d/05-calico.conflist
	inst_conflist >"$f"
	cp "$f" "$d/flannel"
	"$DOTPROXY_CNI" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		2>"$d/inst.log" &
	echo $! >"$W_DIR/inst.pid"
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	inst_conflist | jq '.name = "k8s-pod-network"' >"$d/calico"
	cp "$d/calico" "$g"
	inst_wait inst_ours_last "$g" || w_fail "not moved: $(cat "$d/inst.log")"
	inst_wait cmp -s "$d/flannel" "$f" || w_fail "the old list was not given back"
	kill -TERM "$(cat "$W_DIR/inst.pid")"
	rc=0
	wait "$(cat "$W_DIR/inst.pid")" || rc=$?
	rm -f "$W_DIR/inst.pid"
	[ "$rc" -eq 0 ] || w_fail "exit status $rc"
	cmp "$d/calico" "$g" || w_fail "the new list was not restored"
	cmp "$d/flannel" "$f" || w_fail "the old list changed again"
}

@test "installer: a stale entry of an earlier run is replaced, and SIGTERM takes it out too" {
	local d=$W_DIR/inst4 f rc
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	inst_conflist | jq '.plugins |= [.[0], {type: "dotproxy-cni", proxyPort: 1}, .[1]]' >"$f"
	"$DOTPROXY_CNI" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--plugin-config '{"proxyPort":15353}' 2>"$d/inst.log" &
	echo $! >"$W_DIR/inst.pid"
	inst_wait inst_ours_last "$f" || w_fail "not added: $(cat "$d/inst.log")"
	[ "$(jq '[.plugins[] | select(.type == "dotproxy-cni")] | length' "$f")" = 1 ] ||
		w_fail "the stale entry stayed"
	[ "$(jq '.plugins[-1].proxyPort' "$f")" = 15353 ] || w_fail "not the new settings"
	kill -TERM "$(cat "$W_DIR/inst.pid")"
	rc=0
	wait "$(cat "$W_DIR/inst.pid")" || rc=$?
	rm -f "$W_DIR/inst.pid"
	[ "$rc" -eq 0 ] || w_fail "exit status $rc"
	[ "$(jq -S . "$f")" = "$(inst_conflist | jq -S .)" ] ||
		w_fail "an entry of ours is left: $(cat "$f")"
}

@test "installer: a bad plugin configuration is refused at once; --once installs and --uninstall removes" {
	local d=$W_DIR/inst2 f
	mkdir -p "$d/bin" "$d/net.d"
	f=$d/net.d/10-flannel.conflist
	inst_conflist >"$f"
	run "$DOTPROXY_CNI" install --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d" \
		--plugin-config '{"proxyPort":"x"}'
	[ "$status" -eq 2 ] || w_fail "want exit 2"
	[[ $output == *proxyPort* ]] || w_fail "the message does not name the key"
	cmp <(inst_conflist) "$f" || w_fail "a refused config changed the file"

	run env DOTPROXY_CNI_CNI_BIN_DIR="$d/bin" DOTPROXY_CNI_CNI_CONF_DIR="$d/net.d" \
		"$DOTPROXY_CNI" install --once
	[ "$status" -eq 0 ] || w_fail "--once failed"
	inst_ours_last "$f" || w_fail "--once did not add the entry"
	[ -x "$d/bin/dotproxy-cni" ] || w_fail "--once did not copy the binary"
	run "$DOTPROXY_CNI" install --uninstall --cni-bin-dir "$d/bin" --cni-conf-dir "$d/net.d"
	[ "$status" -eq 0 ] || w_fail "--uninstall failed"
	[ "$(jq -S . "$f")" = "$(inst_conflist | jq -S .)" ] || w_fail "not removed"
	[ ! -e "$d/bin/dotproxy-cni" ] || w_fail "binary left"
}
