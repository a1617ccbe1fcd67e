# shellcheck shell=bash disable=SC2154
# The transparent "pod" world, sourced by tests/e2e/transparent.bats. It is
# world.bash's world (namespaces, throw-away CA, DoT and plain unbound; see
# that file) plus what a Kubernetes pod has:
#
#   pod ns  veth0 192.0.2.1/24 2001:db8::1/64; route 203.0.113.0/24 via the
#           upstream ns (a resolver address nobody owns); dotproxy-init's
#           table inet dotproxy; dotproxy as UID 15353 with --transparent;
#           apps as UID 1000. /etc/netns/<pod>/resolv.conf (bind-mounted
#           over /etc/resolv.conf by `ip netns exec`):
#             nameserver 192.0.2.2
#             search ns.svc.cluster.local svc.cluster.local cluster.local
#             options ndots:5
#   up ns   veth1 192.0.2.2/24 192.0.2.3/24 2001:db8::2/64 2001:db8::3/64
#           unbound DoT   192.0.2.2@853  whoami.test A 203.0.113.1; logs
#                         every query it gets (unbound-dot.log)
#           unbound plain 192.0.2.2@53   (kube-dns) whoami.test A 198.51.100.53,
#                         web.ns.svc.cluster.local A 198.51.100.10, NXDOMAIN
#                         for the rest of cluster.local
#           unbound plain 192.0.2.3@53   (a second resolver)
#                         web.ns.svc.cluster.local A 198.51.100.11
#
# pod_setup gives world_setup the pod's additions to its two unbound
# configs (W_UNBOUND_EXTRA_*), then starts the second plain resolver.
# A cluster answer of .10 came from 192.0.2.2, .11 from 192.0.2.3: that is
# how a test tells the original destination from the resolv.conf fallback.
# pod_teardown ends every process by PID, deletes the namespaces and
# /etc/netns/<pod>, even after a failure. Nothing in the root namespace
# changes.

# shellcheck source=tests/e2e/helpers/world.bash
. "$(dirname "${BASH_SOURCE[0]}")/world.bash"

INIT_BIN=${INIT_BIN:-$W_BUILD/dotproxy-init}
GAI=${GAI:-$W_BUILD/tools/gai}
APP_UID=1000

# The proxy flags every pod test uses (start_proxy adds upstream, CA,
# debug logging and the timeout).
POD_PROXY_ARGS=(--transparent --local-zone cluster.local --log-queries)

# What the pod adds to world.bash's unbound configs: the DoT one logs every
# query; the plain one (kube-dns) serves the cluster zone.
W_UNBOUND_EXTRA_dot=("log-queries: yes")
W_UNBOUND_EXTRA_plain=('local-zone: "cluster.local." static'
	'local-data: "web.ns.svc.cluster.local. 60 IN A 198.51.100.10"')

# app CMD...: runs CMD in the pod as the application UID, with a deadline.
app() {
	ip netns exec "$W_POD" setpriv --reuid "$APP_UID" --regid "$APP_UID" \
		--clear-groups timeout 20 "$@"
}

# as_proxy_uid CMD...: runs CMD in the pod as the proxy's UID.
as_proxy_uid() {
	ip netns exec "$W_POD" setpriv --reuid "$W_PROXY_UID" \
		--regid "$W_PROXY_UID" --clear-groups timeout 20 "$@"
}

# adig DIG-ARGS...: dig as the application, one try, no retries.
adig() {
	app dig +tries=1 +time=5 "$@"
}

# The DoT unbound's log (one "info: <client> <name> <type> IN" line per
# query it received, with log-queries).
dot_log() {
	cat "$W_DIR/unbound-dot.log"
}

# pod_cluster_check ADDR WANT: the plain resolver at ADDR answers
# web.ns.svc.cluster.local A WANT.
pod_cluster_check() {
	pod timeout 3 dig @"$1" +time=1 +tries=1 +short \
		web.ns.svc.cluster.local A | grep -qxF "$2" ||
		{ echo "the plain unbound at $1 does not serve cluster.local" >&2; return 1; }
}

# world.bash's world (with the pod's unbound additions), then what a pod
# adds: the second resolver address, the pod's resolv.conf, the second
# plain resolver and dotproxy-init's rules. The proxy is started per test
# (pod_start_proxy).
pod_setup() {
	world_setup || return 1
	export INIT_BIN GAI
	ip -n "$W_UP" addr add 192.0.2.3/24 dev veth1 || return 1
	ip -n "$W_UP" addr add 2001:db8::3/64 dev veth1 nodad || return 1
	# Only so that a query to a resolver address nobody owns leaves the
	# socket: the redirect catches it before it goes anywhere.
	ip -n "$W_POD" route add 203.0.113.0/24 via 192.0.2.2 || return 1

	# The pod's resolv.conf, as the kubelet writes it (ClusterFirst).
	[ -d /etc/netns ] || { mkdir /etc/netns && touch "$W_DIR/made-etc-netns"; }
	mkdir -p "/etc/netns/$W_POD" || return 1
	cat >"/etc/netns/$W_POD/resolv.conf" <<-'EOF'
		nameserver 192.0.2.2
		search ns.svc.cluster.local svc.cluster.local cluster.local
		options ndots:5
	EOF
	chmod 0644 "/etc/netns/$W_POD/resolv.conf"

	# Before the redirect exists: these probes run as root in the pod.
	unbound_start unbound-plain2 plain 192.0.2.3 2001:db8::3 -- 198.51.100.54 \
		'local-zone: "cluster.local." static' \
		'local-data: "web.ns.svc.cluster.local. 60 IN A 198.51.100.11"' || return 1
	pod_cluster_check 192.0.2.2 198.51.100.10 || return 1
	pod_cluster_check 192.0.2.3 198.51.100.11 || return 1

	pod "$INIT_BIN" >"$W_DIR/init.log" 2>&1 ||
		{ cat "$W_DIR/init.log" >&2; return 1; }
}

pod_teardown() {
	local ns nss made=
	[ -n "${W_DIR:-}" ] && [ -d "$W_DIR" ] || return 0
	nss=$(cat "$W_DIR/netns")
	[ ! -e "$W_DIR/made-etc-netns" ] || made=1
	world_teardown
	for ns in $nss; do
		case $ns in
		dpt-*-pod | dpt-*-pod?*) rm -rf "/etc/netns/$ns" ;;
		esac
	done
	# Only if we made it and nobody else uses it now.
	[ -z "$made" ] || rmdir /etc/netns 2>/dev/null || true
}

# setup_file: binaries present, root, then the world. The root namespace's
# ruleset, namespace list and resolv.conf are recorded first.
pod_file_setup() {
	local b
	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; return 1; }
	for b in "$DOTPROXY" "$INIT_BIN" "$GAI"; do
		[ -x "$b" ] || { echo "no $b (make $b)" >&2; return 1; }
	done
	pod_root_state >"$BATS_FILE_TMPDIR/root.before" || return 1
	pod_setup || { pod_teardown; return 1; }
}

# What must not change in the root namespace: its ruleset and its
# resolv.conf. (Its namespace list is checked by pod_root_gone: other test
# files may add and remove their own namespaces meanwhile.)
pod_root_state() {
	echo "## nft list ruleset"
	nft -s list ruleset || return 1
	echo "## /etc/resolv.conf"
	sha256sum /etc/resolv.conf 2>/dev/null || echo "(none)"
}

# After pod_teardown: none of our namespaces or /etc/netns entries is left.
# pod_root_gone POD UP
pod_root_gone() {
	local ns
	for ns in "$@"; do
		if ip netns list | grep -q "^$ns\( \|\$\)"; then
			echo "namespace $ns is still there" >&2
			return 1
		fi
		if [ -e "/etc/netns/$ns" ]; then
			echo "/etc/netns/$ns is still there" >&2
			return 1
		fi
	done
}

# Starts the proxy the way a pod runs it: start_proxy with POD_PROXY_ARGS
# and ARGS.
pod_start_proxy() {
	start_proxy "${POD_PROXY_ARGS[@]}" "$@"
}

# Like pod_start_proxy, but the proxy keeps CAP_NET_ADMIN as an ambient
# capability (what it needs for the conntrack lookup of UDP flows).
pod_start_proxy_netadmin() {
	local W_SETPRIV_EXTRA=(--inh-caps +net_admin --ambient-caps +net_admin)
	pod_start_proxy "$@"
}

# ---- assertions on bats' $output (dig) ----

# $output has NOERROR and exactly one A record for $1 with address $2.
assert_a() {
	local name=${1//./\\.} addr=${2//./\\.}
	grep -q 'status: NOERROR,' <<<"$output" ||
		w_fail "want status NOERROR" || return 1
	grep -Eq "^$name\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+$addr\$" \
		<<<"$output" || w_fail "want $1 A $2" || return 1
	[ "$(answer_count)" = 1 ] || w_fail "want 1 answer, got $(answer_count)" || return 1
}

# dig talked to $1 (its SERVER line) over $2 (UDP|TCP) and never saw a
# reply from another address (dig ignores those and would time out).
assert_server() {
	local want=";; SERVER: $1#53($1) ($2)"
	grep -qxF "$want" <<<"$output" ||
		w_fail "want the line '$want'" || return 1
	! grep -q 'reply from unexpected source' <<<"$output" ||
		w_fail "a reply came from an address the app did not ask" || return 1
}

# The current proxy's log has a query line for NAME (with the trailing
# dot the proxy prints) matching the rest: assert_logged NAME 'transport=udp path=dot to=dot'
assert_logged() {
	local name=$1 rest=$2
	grep -F "msg=\"query\" name=$name " "$(proxy_log)" | grep -qF " $rest" ||
		w_fail "want a proxy log line: query name=$name ... $rest" || return 1
}
