# shellcheck shell=bash
# The NL_* constants and W_UNBOUND_EXTRA_plain are read by the .bats file
# and world.bash; $output and $status come from bats' run.
# shellcheck disable=SC2154,SC2034
# The node-local world, on top of helpers/world.bash (whose "pod" namespace
# plays the node here, and whose "up" namespace holds the DoT upstream and
# the plain unbound that plays CoreDNS):
#
#   node ns ($W_POD)  veth0 192.0.2.1/24 to the up ns; bridge nlbr0
#                     203.0.113.254/24 for the pods; kube-proxy-like nat
#                     (table ip kubeproxy): kube-dns 198.51.100.10 and
#                     kube-dns-upstream 198.51.100.11, :53 -> 192.0.2.2:53
#   pod ns ($NL_PODNS) eth0 203.0.113.21/24 on nlbr0, default route via
#                     the node; resolv.conf: nameserver 198.51.100.10
#                     (ClusterFirst), search default.svc.cluster.local ...
#   up ns ($W_UP)     DoT unbound 192.0.2.2@853: whoami.test A 203.0.113.1
#                     "CoreDNS" 192.0.2.2@53: whoami.test A 198.51.100.53,
#                     kubernetes.default.svc.cluster.local A 198.51.100.1
#
# The node-local dotproxy listens on 169.254.20.10:53 and 198.51.100.10:53
# (and 127.0.0.1:15353, which start_proxy waits for), sends cluster.local
# in plain DNS to the first nameserver of its resolv.conf, the
# kube-dns-upstream IP. The link-local address lives only in the node ns.
# resolv.conf files go through `ip netns exec`'s /etc/netns/NAME/, removed
# at teardown. Nothing happens in the root namespace.

load helpers/world

NL_KDNS=198.51.100.10
NL_UPSTREAM=198.51.100.11
NL_LL=169.254.20.10
NL_COREDNS=192.0.2.2
NL_POD_IP=203.0.113.21
INIT_BIN=${INIT_BIN:-$W_BUILD/dotproxy-init}
# Answers that say who answered whoami.test.
NL_VIA_DOT=203.0.113.1
NL_VIA_COREDNS=198.51.100.53
NL_CLUSTER_A=198.51.100.1

podns() { ip netns exec "$NL_PODNS" "$@"; }
node() { ip netns exec "$W_POD" "$@"; }

# ask WHERE NAME [dig args]: the A answer, short; WHERE is pod or node.
ask() {
	local where=$1 server=$2 name=$3
	shift 3
	"$where" timeout 5 dig @"$server" +tries=1 +time=1 +short "$@" "$name" A 2>/dev/null | head -n 1
}

# The node's state that removal must give back.
nl_snapshot() {
	{
		# Counters and IPv6 DAD state change with time, not with us.
		node nft list ruleset | sed 's/counter packets [0-9]* bytes [0-9]*/counter/'
		node ip -o addr show | awk '{print $2, $3, $4}'
		node ip -o link show | awk '{print $2}'
		node cat /proc/sys/net/ipv4/conf/lo/accept_local
	} >"$1"
}

nl_setup() {
	W_UNBOUND_EXTRA_plain=(
		'local-zone: "cluster.local." static'
		'local-data: "kubernetes.default.svc.cluster.local. 5 IN A 198.51.100.1"'
	)
	world_setup || return 1
	NL_PODNS=${W_POD%-pod}-nlpod
	export NL_PODNS INIT_BIN
	echo "$NL_PODNS" >>"$W_DIR/netns"
	ip netns add "$NL_PODNS" || return 1
	podns ip link set lo up
	node sysctl -qw net.ipv4.ip_forward=1
	# The proxy binds port 53 as UID 15353 (a DaemonSet gives it
	# NET_BIND_SERVICE; here the namespace's sysctl does).
	node sysctl -qw net.ipv4.ip_unprivileged_port_start=53
	node ip link add nlbr0 type bridge || return 1
	node ip addr add 203.0.113.254/24 dev nlbr0
	node ip link set nlbr0 up
	node ip link add nlveth0 type veth peer name eth0 netns "$NL_PODNS" || return 1
	node ip link set nlveth0 master nlbr0 up
	podns ip addr add "$NL_POD_IP"/24 dev eth0
	podns ip link set eth0 up
	podns ip route add default via 203.0.113.254
	up ip route add 203.0.113.0/24 via 192.0.2.1
	# A node has a default route: a Service IP is routed before the DNAT.
	node ip route add default via 192.0.2.2
	node nft -f - <<-EOF || return 1
		table ip kubeproxy {
			chain pre {
				type nat hook prerouting priority dstnat; policy accept;
				ip daddr { $NL_KDNS, $NL_UPSTREAM } meta l4proto { udp, tcp } th dport 53 counter dnat to $NL_COREDNS
			}
			chain out {
				type nat hook output priority -100; policy accept;
				ip daddr { $NL_KDNS, $NL_UPSTREAM } meta l4proto { udp, tcp } th dport 53 counter dnat to $NL_COREDNS
			}
		}
	EOF
	mkdir -p "/etc/netns/$NL_PODNS" "/etc/netns/$W_POD"
	printf 'nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n' \
		"$NL_KDNS" >"/etc/netns/$NL_PODNS/resolv.conf"
	cp "/etc/netns/$NL_PODNS/resolv.conf" "/etc/netns/$W_POD/resolv.conf"
	nl_snapshot "$W_DIR/node.before"
}

nl_teardown() {
	[ -n "${W_DIR:-}" ] || return 0
	rm -rf "/etc/netns/${NL_PODNS:-none}" "/etc/netns/${W_POD:-none}"
	world_teardown
}

nl_init() {
	node "$INIT_BIN" --node-local "$NL_LL,$NL_KDNS" \
		--node-local-upstream "$NL_UPSTREAM" \
		--node-local-resolv-conf "$W_DIR/upstream-resolv.conf" "$@"
}

nl_start_proxy() {
	start_proxy --listen "$NL_LL:53" --listen "$NL_KDNS:53" \
		--listen 127.0.0.1:15353 --local-zone cluster.local \
		--resolv-conf "$W_DIR/upstream-resolv.conf" "$@"
}

# DNS queries that reached "CoreDNS" (UDP datagrams and TCP SYNs to port
# 53 in the up ns, counted by a table made on first use): what must not
# move while a node-local proxy serves names that are not cluster.local.
nl_coredns_count() {
	if ! up nft list table inet nlcoredns >/dev/null 2>&1; then
		up nft -f - <<-'EOF2' || return 1
			table inet nlcoredns {
				chain input {
					type filter hook input priority 0; policy accept;
					udp dport 53 counter
					tcp dport 53 tcp flags & (syn | ack) == syn counter
				}
			}
		EOF2
	fi
	up nft list chain inet nlcoredns input |
		sed -n 's/.*counter packets \([0-9]*\) .*/\1/p' | awk '{ t += $1 } END { print t + 0 }'
}

# nl_upg_start NAME [ARGS]: a node-local proxy as NAME (helpers/upgrade's
# upg_start: files $W_DIR/NAME.{log,pid,rc}), so that two can run at once.
nl_upg_start() {
	local name=$1
	shift
	declare -F upg_start >/dev/null || load helpers/upgrade
	upg_start "$name" --listen "$NL_LL:53" --listen "$NL_KDNS:53" \
		--listen 127.0.0.1:15353 --local-zone cluster.local \
		--resolv-conf "$W_DIR/upstream-resolv.conf" "$@"
}

# Kills what nl_upg_start left running (a failed test); tails on demand.
nl_upg_cleanup() {
	local n
	declare -F upg_alive >/dev/null || load helpers/upgrade
	for n in a b; do
		[ -f "$W_DIR/$n.pid" ] || continue
		if [ -n "${1:-}" ] && [ -f "$W_DIR/$n.log" ]; then
			echo "--- $n.log:"
			grep -v 'msg="query"' "$W_DIR/$n.log" | tail -n 25
		fi
		upg_alive "$n" && upg_stop "$n" KILL >/dev/null
		rm -f "$W_DIR/$n.pid" "$W_DIR/$n.rc"
	done
	return 0
}

# dnsperf from the pod to SERVER:53 in the background: nl_perf SERVER OUT
# QPS SECONDS; its PID is added to the array NL_PERF_PIDS (for wait).
nl_perf() {
	(podns timeout 60 dnsperf -s "$1" -p 53 -d "$W_DIR/queries.txt" \
		-c 10 -Q "$3" -l "$4" -t 4 >"$2" 2>&1) 3>&- &
	NL_PERF_PIDS+=($!)
}
