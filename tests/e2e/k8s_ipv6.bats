#!/usr/bin/env bats
# Every example, as kubectl kustomize renders it, started for real on an
# IPv4 pod and (with components/ipv6) on an IPv6-only pod: each dotproxy
# container's arguments and environment resolved as the kubelet would
# (tests/k8s/podenv.js: ConfigMaps, downward API, $(VAR)), the binaries run
# in a network namespace this test makes holding only the pod's address
# (192.0.2.2, or 2001:db8::2 and no IPv4 but loopback's). A sidecar pod goes
# through dotproxy-init, dotproxy and the capture check (dotproxy-validate
# must exit 0). A node-local pod (hostNetwork: the namespace is the node's,
# its address the node IP) goes through dotproxy-init --node-local and must
# answer DNS on its node-local address and the kube-dns IP, which the test
# gives as documentation addresses through the Service environment; then a
# second copy of its container (the surge pod of an update) takes its
# sockets over the rendered handover socket, and the first stops. Every
# pod must answer /readyz where the kubelet's probes go.

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-180}

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
EXAMPLES="$REPO/examples"
PODENV="$REPO/tests/k8s/podenv.js"
K8S_NODE_MODULES="$REPO/tests/k8s/node_modules"
case ${BUILD:-build} in
/*) BUILD_DIR=$BUILD ;;
*) BUILD_DIR=$REPO/${BUILD:-build} ;;
esac

setup_file() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
		return 0
	[ -d "$K8S_NODE_MODULES/js-yaml" ] ||
		(cd "$REPO/tests/k8s" && npm ci --silent --no-audit --no-fund >/dev/null)
}

setup() {
	command -v kubectl >/dev/null 2>&1 ||
		skip "kubectl not found (scripts/deps.sh installs it)"
	command -v node >/dev/null 2>&1 || skip "node not found (apt-get install nodejs npm)"
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	local b
	for b in dotproxy dotproxy-init; do
		[ -x "$BUILD_DIR/$b" ] || skip "no $BUILD_DIR/$b (make)"
	done
	COPY="$BATS_TEST_TMPDIR/examples"
	cp -r "$EXAMPLES" "$COPY"
	PIDS=()
	NETNS=
	SVC_ENV=()
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[ -z "$NETNS" ] || ip netns del "$NETNS" 2>/dev/null || true
}

# render EXAMPLE FAMILY: kubectl kustomize examples/kubernetes/EXAMPLE into
# $R; for FAMILY 6, with components/ipv6 added by a kustomization around it.
render() {
	local dir=$COPY/kubernetes/$1
	if [ "$2" = 6 ]; then
		dir=$COPY/kubernetes/t-ipv6
		mkdir -p "$dir"
		cat >"$dir/kustomization.yaml" <<-EOF
			apiVersion: kustomize.config.k8s.io/v1beta1
			kind: Kustomization
			resources:
			  - ../$1
			components:
			  - ../components/ipv6
		EOF
	fi
	R="$BATS_TEST_TMPDIR/render.yaml"
	kubectl kustomize "$dir" >"$R"
}

# pod_ns FAMILY: a network namespace with one interface holding the pod IP
# ($IP): 192.0.2.2, or 2001:db8::2 with no IPv4 address but loopback's.
# No default route: the examples' upstreams (public addresses) are
# unreachable at once, nothing leaves for them, and the proxy answers
# SERVFAIL, which is all the capture check needs.
pod_ns() {
	NETNS="k8s6-$$-$BATS_TEST_NUMBER-$RANDOM"
	ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	# A veth pair with both ends here (no dummy module needed): d0 is the
	# pod's interface, d1 only keeps it up.
	ip -n "$NETNS" link add d0 type veth peer name d1
	ip -n "$NETNS" link set d1 up
	if [ "$1" = 6 ]; then
		IP=2001:db8::2 HOST_IP=2001:db8::1 URL_IP="[2001:db8::2]"
		ip -n "$NETNS" addr add 2001:db8::2/64 dev d0 nodad
		ip -n "$NETNS" link set d0 up
	else
		IP=192.0.2.2 HOST_IP=192.0.2.1 URL_IP=192.0.2.2
		ip -n "$NETNS" addr add 192.0.2.2/24 dev d0
		ip -n "$NETNS" link set d0 up
	fi
}

# spec WORKLOAD CONTAINER: the container as the kubelet runs it, into
# $CMD (binary from build/), $ENVS (KEY=VALUE) and $ARGS.
spec() {
	local s
	s=$(node "$PODENV" "$R" "$1" "$2" "status.podIP=$IP" "status.hostIP=$HOST_IP" \
		${SVC_ENV[@]+"${SVC_ENV[@]}"})
	echo "$1 $2: $s"
	mapfile -t ENVS < <(jq -r '.env[] | "\(.[0])=\(.[1])"' <<<"$s")
	mapfile -t ARGS < <(jq -r '.args[]' <<<"$s")
	CMD=$(jq -r '.command[0] // "/usr/local/bin/dotproxy"' <<<"$s")
	CMD=$BUILD_DIR/${CMD##*/}
}

# in_pod UID CMD...: runs in the pod's namespace as UID with only $ENVS.
in_pod() {
	local uid=$1
	shift
	ip netns exec "$NETNS" setpriv --reuid "$uid" --regid "$uid" --clear-groups \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${ENVS[@]}" "$@"
}

# start_proxy WORKLOAD: dotproxy as the rendered container, UID 15353;
# waits for /readyz on the pod IP, port 9153 (where the probes go).
start_proxy() {
	local code
	spec "$1" dotproxy
	# Not through in_pod: $! must be the proxy itself (exec all the way).
	ip netns exec "$NETNS" setpriv --reuid 15353 --regid 15353 --clear-groups \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${ENVS[@]}" "$CMD" "${ARGS[@]}" \
		>"$BATS_TEST_TMPDIR/proxy.log" 2>&1 3>&- &
	PIDS+=("$!")
	for _ in $(seq 50); do
		code=$(ip netns exec "$NETNS" curl -g -s -o /dev/null -w '%{http_code}' \
			--max-time 1 "http://$URL_IP:9153/readyz") || true
		[ "$code" = 200 ] && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "readyz on $URL_IP:9153: ${code:-none}"
	cat "$BATS_TEST_TMPDIR/proxy.log"
	[ "$code" = 200 ]
}

# sidecar_pod EXAMPLE WORKLOAD FAMILY: the pod's start, in order.
sidecar_pod() {
	render "$1" "$3"
	pod_ns "$3"
	if grep -q 'name: dotproxy-init$' "$R"; then
		spec "$2" dotproxy-init
		run in_pod 0 "$CMD" "${ARGS[@]}"
		echo "$output"
		[ "$status" -eq 0 ]
	else
		# CNI mode: the node's plugin installs the same table.
		ENVS=()
		run in_pod 0 "$BUILD_DIR/dotproxy-init" --proxy-uid 15353 --proxy-port 15353
		[ "$status" -eq 0 ]
	fi
	start_proxy "$2"
	spec "$2" dotproxy-validate
	run in_pod 65534 "$CMD" "${ARGS[@]}"
	echo "dotproxy-validate: $status $output"
	[ "$status" -eq 0 ]
}

# node_local_ns FAMILY: the node's namespace for a node-local pod
# (hostNetwork: pod IP = node IP, $IP), the kube-dns and kube-dns-upstream
# Service IPs in the Service environment, the node-local address ($NL) and
# the init container's resolv.conf moved to documentation addresses and
# the test's directory ($R edited).
node_local_ns() {
	pod_ns "$1"
	HOST_IP=$IP
	if [ "$1" = 6 ]; then
		KDNS=2001:db8:1::10 KUP=2001:db8:1::11 NL=2001:db8:20::10
		sed -i "s/fd00::10/$NL/g" "$R"
	else
		KDNS=198.51.100.10 KUP=198.51.100.11 NL=169.254.20.10
	fi
	SVC_ENV=("env:KUBE_DNS_SERVICE_HOST=$KDNS" "env:KUBE_DNS_UPSTREAM_SERVICE_HOST=$KUP")
	sed -i "s|/run/dotproxy/resolv.conf|$BATS_TEST_TMPDIR/resolv.conf|g" "$R"
	# The handover socket's hostPath (type DirectoryOrCreate).
	sed -i "s|/run/dotproxy-handover|$BATS_TEST_TMPDIR/handover|g" "$R"
	mkdir -p "$BATS_TEST_TMPDIR/handover"
	grep -q -- "- $NL,\$(KUBE_DNS_SERVICE_HOST)" "$R"
}

# proxy_bg LOG: the node-local proxy container as rendered (spec already
# read) in the background, logging to LOG; its PID goes to PIDS.
proxy_bg() {
	ip netns exec "$NETNS" setpriv --bounding-set -all,+net_bind_service \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${ENVS[@]}" "$CMD" "${ARGS[@]}" \
		>"$1" 2>&1 3>&- &
	PIDS+=("$!")
}

# start_node_local: dotproxy-init --node-local as root with NET_ADMIN only,
# then dotproxy as root with NET_BIND_SERVICE only, as rendered; waits for
# /readyz on the node IP, port 9253.
start_node_local() {
	local code url
	spec DaemonSet/dotproxy-node-local dotproxy-init
	run ip netns exec "$NETNS" setpriv --bounding-set -all,+net_admin \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${ENVS[@]}" "$CMD" "${ARGS[@]}"
	echo "dotproxy-init: $status $output"
	[ "$status" -eq 0 ]
	spec DaemonSet/dotproxy-node-local dotproxy
	proxy_bg "$BATS_TEST_TMPDIR/proxy.log"
	url=$URL_IP:9253
	for _ in $(seq 50); do
		code=$(ip netns exec "$NETNS" curl -g -s -o /dev/null -w '%{http_code}' \
			--max-time 1 "http://$url/readyz") || true
		[ "$code" = 200 ] && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "readyz on $url: ${code:-none}"
	cat "$BATS_TEST_TMPDIR/proxy.log"
	[ "$code" = 200 ]
}

# node_local_pod EXAMPLE FAMILY
node_local_pod() {
	local a
	render "$1" "$2"
	node_local_ns "$2"
	start_node_local
	# DNS on both node-local addresses, UDP and TCP: any answer shows the
	# listener (the upstream is out of reach here).
	for a in "$NL" "$KDNS"; do
		run ip netns exec "$NETNS" dig +tries=1 +time=3 "@$a" example.com A
		echo "$output"
		[[ "$output" == *"status: "* ]]
		run ip netns exec "$NETNS" dig +tcp +tries=1 +time=3 "@$a" example.com A
		echo "$output"
		[[ "$output" == *"status: "* ]]
	done
	# The liveness check: a TCP connect to the node-local address.
	ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$NL/53"
	surge_node_local
}

# surge_node_local: the surge pod of a rolling update, the same container
# as rendered, started next to the running one: it takes the sockets (DNS
# and metrics) over the handover socket; the old one, sent SIGTERM, stops at
# once with status 0; the node-local addresses and /readyz still answer.
surge_node_local() {
	local old=${PIDS[-1]} rc=0 code a
	spec DaemonSet/dotproxy-node-local dotproxy
	proxy_bg "$BATS_TEST_TMPDIR/proxy2.log"
	for _ in $(seq 50); do
		grep -q '"listening sockets taken over"' "$BATS_TEST_TMPDIR/proxy2.log" && break
		sleep 0.1
	done
	cat "$BATS_TEST_TMPDIR/proxy2.log"
	grep -q '"listening sockets taken over"' "$BATS_TEST_TMPDIR/proxy2.log"
	kill -TERM "$old"
	wait "$old" || rc=$?
	grep -q '"stopping: the sockets were handed over"' "$BATS_TEST_TMPDIR/proxy.log"
	[ "$rc" = 0 ]
	code=$(ip netns exec "$NETNS" curl -g -s -o /dev/null -w '%{http_code}' \
		--max-time 2 "http://$URL_IP:9253/readyz") || true
	echo "readyz after the surge: $code"
	[ "$code" = 200 ]
	for a in "$NL" "$KDNS"; do
		run ip netns exec "$NETNS" dig +tries=1 +time=3 "@$a" example.com A
		[[ "$output" == *"status: "* ]]
	done
}

@test "ipv6: sidecar example on an IPv4 pod" {
	sidecar_pod sidecar Deployment/dns-app 4
}

@test "ipv6: sidecar example with components/ipv6 on an IPv6-only pod" {
	sidecar_pod sidecar Deployment/dns-app 6
	grep -q "DOTPROXY_METRICS: \[\$(POD_IP)\]:9153\|value: '\[\$(POD_IP)\]:9153'" "$R"
}

@test "ipv6: CNI sidecar example on an IPv4 pod" {
	sidecar_pod sidecar-cni Deployment/dns-app 4
}

@test "ipv6: CNI sidecar example with components/ipv6 on an IPv6-only pod" {
	sidecar_pod sidecar-cni Deployment/dns-app 6
}

@test "ipv6: node-local example on an IPv4 pod" {
	node_local_pod node-local 4
}

@test "ipv6: node-local example with components/ipv6 on an IPv6-only pod" {
	node_local_pod node-local 6
}

@test "ipv6: the ipv6 overlay (both modes, IPv6 upstreams) on IPv6-only pods" {
	R="$BATS_TEST_TMPDIR/render.yaml"
	kubectl kustomize "$COPY/kubernetes/overlays/ipv6" >"$R"
	grep -q 'DOTPROXY_UPSTREAM: 2606:4700:4700::1111@853' "$R"
	node_local_ns 6
	start_node_local
	kill "${PIDS[-1]}"
	wait "${PIDS[-1]}" 2>/dev/null || true
	ip netns del "$NETNS"
	SVC_ENV=()
	pod_ns 6
	spec Deployment/dns-app dotproxy-init
	run in_pod 0 "$CMD" "${ARGS[@]}"
	[ "$status" -eq 0 ]
	start_proxy Deployment/dns-app
	spec Deployment/dns-app dotproxy-validate
	run in_pod 65534 "$CMD" "${ARGS[@]}"
	echo "dotproxy-validate: $status $output"
	[ "$status" -eq 0 ]
}

@test "ipv6: without components/ipv6 an IPv6 pod IP is refused (why the component exists)" {
	render sidecar 4
	pod_ns 6
	spec Deployment/dns-app dotproxy
	run in_pod 15353 "$CMD" "${ARGS[@]}"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"needs brackets"* ]]
}
