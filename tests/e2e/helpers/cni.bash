# shellcheck shell=bash disable=SC2154
# The CNI world, sourced by tests/e2e/cni.bats: pod.bash's pod (the world's
# namespaces, throw-away CA, DoT and two plain unbounds, the pod's
# resolv.conf) WITHOUT dotproxy-init, plus a "node" namespace that plays
# the host a container runtime runs on:
#
#   node ns (dpt-<id>-node)  bridge cni0 198.51.100.1/24 (made by the bridge
#                            plugin), the runtime's view: plugins run here
#   pod ns  (dpt-<id>-pod)   world.bash's pod, plus eth0 198.51.100.x/24 from
#                            bridge + host-local; resolv.conf lists
#                            192.0.2.2, 192.0.2.3 and 2001:db8::3
#   more pods                made by cni_pod_add (ip netns add), each with
#                            lo from loopback and eth0 from the chain
#
# Plugins are run exactly as a runtime (libcni) runs a network
# configuration list: one process per plugin with CNI_COMMAND,
# CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS (containerd's
# K8S_POD_* keys) and CNI_PATH in the environment and the plugin's
# configuration on stdin (cniVersion and name of the list, runtimeConfig
# for capabilities it declares, prevResult); ADD and CHECK in list order,
# DEL in reverse; the ADD result is cached for CHECK and DEL. The plugins
# are Debian's (containernetworking-plugins, /usr/lib/cni) and a copy of
# build/dotproxy-cni, linked into one CNI_PATH directory. host-local keeps
# its leases under $W_DIR. Nothing runs in, or changes, the root namespace;
# teardown deletes every namespace (with the bridge) and /etc/netns/<pod>.

# shellcheck source=tests/e2e/helpers/pod.bash
. "$(dirname "${BASH_SOURCE[0]}")/pod.bash"

CNI_BIN=${CNI_BIN:-$W_ROOT/build/dotproxy-cni}
CNI_REF_DIR=${CNI_REF_DIR:-/usr/lib/cni}
CNI_LIST_NAME=dpt-test-net
# The K8S_POD_NAMESPACE whose pods the plugin captures without annotation.
CNI_CAPTURED_NS=dns-captured

# The pod's resolv.conf: two IPv4 nameservers and an IPv6 one, so that a
# query to any but the first shows whether it reached the one asked.
CNI_RESOLV_CONF='nameserver 192.0.2.2
nameserver 192.0.2.3
nameserver 2001:db8::3
search ns.svc.cluster.local svc.cluster.local cluster.local
options ndots:5'

node() { ip netns exec "$CNI_NODE" "$@"; }

# The network configuration list, as a node's /etc/cni/net.d has it.
cni_write_conflist() {
	jq -n --arg name "$CNI_LIST_NAME" --arg ipam "$W_DIR/ipam" \
		--arg log "$W_DIR/cni.log" --arg ns "$CNI_CAPTURED_NS" '{
		cniVersion: "1.0.0",
		name: $name,
		plugins: [
			{type: "bridge", bridge: "cni0", isGateway: true, ipMasq: false,
			 hairpinMode: true,
			 ipam: {type: "host-local", dataDir: $ipam,
				ranges: [[{subnet: "198.51.100.0/24"}]]}},
			{type: "dotproxy-cni",
			 capabilities: {"io.kubernetes.cri.pod-annotations": true,
				dns: true},
			 namespaces: [$ns], logFile: $log}
		]
	}' >"$W_DIR/net.d/10-$CNI_LIST_NAME.conflist"
}

# cni_exec CMD TYPE NETNS CONTAINERID ARGS: runs one plugin in the node
# namespace as a runtime does, stdin passed through; prints its stdout.
cni_exec() {
	local cmd=$1 type=$2 netns=$3 cid=$4 cargs=$5
	ip netns exec "$CNI_NODE" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" CNI_NETNS="$netns" \
		CNI_IFNAME=eth0 CNI_ARGS="$cargs" CNI_PATH="$W_DIR/cni-bin" \
		timeout 20 "$W_DIR/cni-bin/$type"
}

# cni_list CMD POD K8S_NAMESPACE [ANNOTATIONS-JSON]: runs the list for the
# pod namespace POD (a name under /var/run/netns; it need not exist for
# DEL) like libcni does, and prints the final result (ADD) or the failing
# plugin's error object. Returns the failing plugin's exit status. The
# container id is the pod's name; the ADD result is cached in $W_DIR.
cni_list() {
	local cmd=$1 pod=$2 k8sns=$3 ann=${4:-null} list n i idx conf out rc=0
	local prev=null cache=$W_DIR/cache/$pod.json kargs dnscap
	list=$W_DIR/net.d/10-$CNI_LIST_NAME.conflist
	# The "dns" capability, as containerd fills it from the pod's DNS
	# config (the nameservers of its resolv.conf), on every command.
	dnscap=$(awk '$1 == "nameserver" { print $2 }' <<<"$CNI_RESOLV_CONF" |
		jq -Rsc 'split("\n") | map(select(. != "")) | {servers: .}')
	kargs="IgnoreUnknown=1;K8S_POD_NAMESPACE=$k8sns;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=$pod;K8S_POD_UID=uid-$pod"
	n=$(jq '.plugins | length' "$list")
	[ "$cmd" = ADD ] || prev=$(cat "$cache" 2>/dev/null || echo null)
	for ((i = 0; i < n; i++)); do
		idx=$i
		[ "$cmd" != DEL ] || idx=$((n - 1 - i))
		conf=$(jq -c --argjson i "$idx" --argjson prev "$prev" \
			--argjson ann "$ann" --argjson dnscap "$dnscap" '
			.plugins[$i] as $p
			| $p + {cniVersion: .cniVersion, name: .name}
			| del(.capabilities)
			| if ($p.capabilities["io.kubernetes.cri.pod-annotations"] == true
			      and $ann != null)
			  then .runtimeConfig = {"io.kubernetes.cri.pod-annotations": $ann}
			  else . end
			| if $p.capabilities.dns == true
			  then .runtimeConfig = ((.runtimeConfig // {}) + {dns: $dnscap})
			  else . end
			| if $prev != null then .prevResult = $prev else . end' "$list")
		out=$(cni_exec "$cmd" "$(jq -r --argjson i "$idx" '.plugins[$i].type' "$list")" \
			"/var/run/netns/$pod" "$pod" "$kargs" <<<"$conf") || rc=$?
		if [ "$rc" -ne 0 ]; then
			printf '%s\n' "$out"
			return "$rc"
		fi
		[ "$cmd" != ADD ] || prev=$out
	done
	if [ "$cmd" = ADD ]; then
		printf '%s\n' "$prev" >"$cache"
		printf '%s\n' "$prev"
	fi
	[ "$cmd" != DEL ] || rm -f "$cache"
	return 0
}

# cni_pod_add NAME: a fresh pod namespace (ip netns add) with lo up from the
# loopback plugin (its own network, as containerd runs it), torn down with
# the world.
cni_pod_add() {
	ip netns add "$1" || return 1
	echo "$1" >>"$W_DIR/netns"
	cni_pod_resolv "$1" || return 1
	cni_exec ADD loopback "/var/run/netns/$1" "$1" "" \
		<<<'{"cniVersion":"1.0.0","name":"lo","type":"loopback"}' >/dev/null
}

# cni_pod_resolv NS: the pod NS gets CNI_RESOLV_CONF as its resolv.conf
# (what `ip netns exec` shows its processes), the list the runtime's dns
# capability passes: dotproxy-init run there then builds the same table.
# pod_teardown removes it.
cni_pod_resolv() {
	mkdir -p "/etc/netns/$1" || return 1
	printf '%s\n' "$CNI_RESOLV_CONF" >"/etc/netns/$1/resolv.conf"
}

# Everything pod.bash's pod_setup does but dotproxy-init, then the node, the
# plugin directory and the list; the pod itself joins the network through
# the chain as a pod annotated dotproxy/capture: "true".
cni_setup() {
	local b
	world_setup || return 1
	export INIT_BIN GAI
	CNI_NODE=${W_POD%-pod}-node
	export CNI_NODE
	ip -n "$W_UP" addr add 192.0.2.3/24 dev veth1 || return 1
	ip -n "$W_UP" addr add 2001:db8::3/64 dev veth1 nodad || return 1
	ip -n "$W_POD" route add 203.0.113.0/24 via 192.0.2.2 || return 1
	[ -d /etc/netns ] || { mkdir /etc/netns && touch "$W_DIR/made-etc-netns"; }
	mkdir -p "/etc/netns/$W_POD" || return 1
	printf '%s\n' "$CNI_RESOLV_CONF" >"/etc/netns/$W_POD/resolv.conf"
	chmod 0644 "/etc/netns/$W_POD/resolv.conf"
	unbound_start unbound-plain2 plain 192.0.2.3 2001:db8::3 -- 198.51.100.54 \
		'local-zone: "cluster.local." static' \
		'local-data: "web.ns.svc.cluster.local. 60 IN A 198.51.100.11"' || return 1
	pod_cluster_check 192.0.2.2 198.51.100.10 || return 1
	pod_cluster_check 192.0.2.3 198.51.100.11 || return 1

	ip netns add "$CNI_NODE" || return 1
	echo "$CNI_NODE" >>"$W_DIR/netns"
	ip -n "$CNI_NODE" link set lo up
	mkdir -p "$W_DIR/cni-bin" "$W_DIR/net.d" "$W_DIR/ipam" "$W_DIR/cache"
	for b in bridge host-local loopback; do
		[ -x "$CNI_REF_DIR/$b" ] ||
			{ echo "no $CNI_REF_DIR/$b (containernetworking-plugins)" >&2; return 1; }
		ln -s "$CNI_REF_DIR/$b" "$W_DIR/cni-bin/$b"
	done
	cp "$CNI_BIN" "$W_DIR/cni-bin/dotproxy-cni" || return 1
	cni_write_conflist
	cni_list ADD "$W_POD" apps '{"dotproxy/capture":"true","other":"x"}' \
		>"$W_DIR/pod-add.json" 2>"$W_DIR/pod-add.err" ||
		{ cat "$W_DIR/pod-add.json" "$W_DIR/pod-add.err" >&2; return 1; }
}

# setup_file: binaries, root, the root namespace's state, then the world.
cni_file_setup() {
	local b
	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; return 1; }
	for b in "$DOTPROXY" "$CNI_BIN" "$INIT_BIN" "$GAI"; do
		[ -x "$b" ] || { echo "no $b (make $b)" >&2; return 1; }
	done
	command -v jq >/dev/null || { echo "needs jq" >&2; return 1; }
	pod_root_state >"$BATS_FILE_TMPDIR/root.before" || return 1
	cni_setup || { pod_teardown; return 1; }
}

# The tables in a pod namespace, one name per line.
pod_tables() {
	ip netns exec "$1" nft list tables
}
