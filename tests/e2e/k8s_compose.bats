#!/usr/bin/env bats
# Composing the Kubernetes examples as an operator does, rendered with the
# real kustomize (kubectl kustomize): several injected apps and overlays in
# one namespace, per-app overrides, settings for dotproxy-init, which
# workloads an upstream change rolls; and dotproxy-init run, in a network
# namespace this test makes, with exactly the environment the injection
# component gives it (downward API resolved as the kubelet would).
# run_init sets status and output through bats' run for its caller.
# shellcheck disable=SC2030,SC2031

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
	# js-yaml for podenv.js (npm ci once; k8s_manifests.bats does the same).
	[ -d "$K8S_NODE_MODULES/js-yaml" ] ||
		(cd "$REPO/tests/k8s" && npm ci --silent --no-audit --no-fund >/dev/null)
}

setup() {
	command -v kubectl >/dev/null 2>&1 ||
		skip "kubectl not found (scripts/deps.sh installs it)"
	command -v node >/dev/null 2>&1 || skip "node not found (apt-get install nodejs npm)"
	# Fixtures live inside a copy of examples/, so their relative paths
	# to the components are the ones a user's tree would have.
	COPY="$BATS_TEST_TMPDIR/examples"
	cp -r "$EXAMPLES" "$COPY"
	K="$COPY/kubernetes"
	NS_MADE=()
}

teardown() {
	local n
	for n in "${NS_MADE[@]}"; do
		ip netns del "$n" 2>/dev/null || true
	done
}

# app DIR NAME: a kustomization of one plain Deployment called NAME, with
# the privileged injection component (or the one given as $3).
app() {
	mkdir -p "$1"
	sed "s/dns-app/$2/g" "$EXAMPLES/kubernetes/sidecar/deployment.yaml" >"$1/deployment.yaml"
	cat >"$1/kustomization.yaml" <<-EOF
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		resources:
		  - deployment.yaml
		components:
		  - ../../components/${3:-inject}
	EOF
}

# render DIR: kubectl kustomize into $R (the file) and $output.
render() {
	R="$BATS_TEST_TMPDIR/render-$RANDOM.yaml"
	run kubectl kustomize "$1"
	echo "$output" | head -40
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$R"
}

# count_in FILE REGEX: lines matching.
count_in() { grep -cE -- "$2" "$1" || true; }

# templates FILE: "Kind/name sha" of each workload's pod template, to see
# which ones a change rolls.
templates() {
	# shellcheck disable=SC2016 # JavaScript, not shell
	NODE_PATH="$K8S_NODE_MODULES" node -e '
		const yaml = require("js-yaml"), fs = require("fs"), crypto = require("crypto");
		for (const o of yaml.loadAll(fs.readFileSync(process.argv[1], "utf8")))
			if (o && o.spec && o.spec.template)
				console.log(`${o.kind}/${o.metadata.name}`, crypto.createHash("sha256")
				    .update(JSON.stringify(o.spec.template)).digest("hex").slice(0, 12));
	' "$1"
}

# A namespace "team": the config base once, two injected apps and an app
# without dotproxy, each app a kustomization of its own.
team() {
	app "$K/t/app-a" app-a
	app "$K/t/app-b" app-b "${1:-inject}"
	mkdir -p "$K/t/plain" "$K/t/team"
	sed "s/dns-app/plain/g" "$EXAMPLES/kubernetes/sidecar/deployment.yaml" >"$K/t/plain/deployment.yaml"
	printf 'resources: [deployment.yaml]\n' >"$K/t/plain/kustomization.yaml"
	cat >"$K/t/team/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		namespace: team
		resources:
		  - ../../config
		  - ../app-a
		  - ../app-b
		  - ../plain
	EOF
}

@test "compose: two injected apps and a plain one in one namespace share one config" {
	team
	render "$K/t/team"
	[ "$(count_in "$R" '^kind: ConfigMap$')" -eq 2 ]
	[ "$(count_in "$R" '^  name: dotproxy-config-[a-z0-9]+$')" -eq 1 ]
	[ "$(count_in "$R" '^  name: dotproxy-init-config-[a-z0-9]+$')" -eq 1 ]
	# Each injected app has each container once; the plain one none.
	[ "$(count_in "$R" '^      - .*name: dotproxy-init$|^        name: dotproxy-init$')" -eq 2 ]
	[ "$(count_in "$R" '^        name: dotproxy$')" -eq 2 ]
	[ "$(count_in "$R" '^        name: dotproxy-validate$')" -eq 2 ]
	# Every reference carries the generated (hashed) name.
	[ "$(count_in "$R" '^            name: dotproxy-config-[a-z0-9]+$')" -eq 2 ]
	[ "$(count_in "$R" '^            name: dotproxy-init-config-[a-z0-9]+$')" -eq 2 ]
	if grep -qE '^            name: dotproxy(-init)?-config$' "$R"; then
		echo "a reference without the hash suffix"
		return 1
	fi
}

@test "compose: CNI-mode and privileged apps side by side in one namespace" {
	team inject-cni
	render "$K/t/team"
	[ "$(count_in "$R" '^  name: dotproxy-config-[a-z0-9]+$')" -eq 1 ]
	[ "$(count_in "$R" '^        name: dotproxy$')" -eq 2 ]
	[ "$(count_in "$R" '^        name: dotproxy-init$')" -eq 1 ]
	grep -q 'dotproxy/capture: "true"' "$R"
}

@test "compose: injecting in a base and again in an overlay adds each container once" {
	app "$K/t/base" app-a
	mkdir -p "$K/t/overlay"
	cat >"$K/t/overlay/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		namespace: team
		resources:
		  - ../../config
		  - ../base
		components:
		  - ../../components/inject
	EOF
	render "$K/t/overlay"
	[ "$(count_in "$R" '^        name: dotproxy-init$')" -eq 1 ]
	[ "$(count_in "$R" '^        name: dotproxy$')" -eq 1 ]
	[ "$(count_in "$R" '^        name: dotproxy-validate$')" -eq 1 ]
	[ "$(count_in "$R" '^        - name: DOTPROXY_INIT_POD_IP$')" -eq 1 ]
	# Still in order: dotproxy-init, dotproxy, dotproxy-validate.
	[ "$(grep -E '^        name: dotproxy' "$R" | tr -d ' ' | tr '\n' ' ')" = \
		"name:dotproxy-init name:dotproxy name:dotproxy-validate " ]
}

@test "compose: the old layout (the component makes the ConfigMap) fails with two apps" {
	# What made the issue: a ConfigMap generated by the injection component
	# is made once per app and collides. The fixture shows the test bites.
	team
	cat >>"$K/components/dotproxy-sidecar/kustomization.yaml" <<-'EOF'
		configMapGenerator:
		  - name: dotproxy-config
		    literals: [DOTPROXY_LOG_LEVEL=info]
	EOF
	sed -i '/- ..\/..\/config/d' "$K/t/team/kustomization.yaml"
	run kubectl kustomize "$K/t/team"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"already registered id"*"dotproxy-config"* ]]
}

@test "compose: behavior: merge next to the config base and the component changes one key" {
	app "$K/t/one" app-a
	cat >>"$K/t/one/kustomization.yaml" <<-'EOF'
		namespace: team
		configMapGenerator:
		  - name: dotproxy-config
		    behavior: merge
		    literals:
		      - DOTPROXY_UPSTREAM=9.9.9.9@853#dns.quad9.net
		  - name: dotproxy-init-config
		    behavior: merge
		    literals:
		      - DOTPROXY_INIT_EXCLUDE_UID=1337
	EOF
	sed -i 's|^  - deployment.yaml|  - ../../config\n  - deployment.yaml|' "$K/t/one/kustomization.yaml"
	render "$K/t/one"
	grep -q '^  DOTPROXY_UPSTREAM: 9.9.9.9@853#dns.quad9.net$' "$R"
	grep -q '^  DOTPROXY_LOG_FORMAT: json$' "$R"
	grep -q '^  DOTPROXY_INIT_EXCLUDE_UID: "1337"$' "$R"
	# dotproxy-init reads it: the kubelet's view of its environment.
	run node "$PODENV" "$R" Deployment/app-a dotproxy-init \
		status.podIP=192.0.2.2 status.hostIP=192.0.2.10
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'["DOTPROXY_INIT_EXCLUDE_UID","1337"]'* ]]
	# The proxy does not (its ConfigMap is the other one).
	run node "$PODENV" "$R" Deployment/app-a dotproxy status.podIP=192.0.2.2
	[ "$status" -eq 0 ]
	[[ "$output" != *DOTPROXY_INIT_* ]]
	[[ "$output" == *'["DOTPROXY_UPSTREAM","9.9.9.9@853#dns.quad9.net"]'* ]]
}

@test "compose: a per-app override (generator + patches) rolls only that app" {
	team
	render "$K/t/team"
	templates "$R" >"$BATS_TEST_TMPDIR/before"
	# app-b: a ConfigMap of its own, read after the shared one (a later
	# envFrom wins), by a strategic merge patch; app-a: a JSON patch adds
	# a dotproxy-init setting (dotproxy-init is always the first init
	# container).
	cat >>"$K/t/team/kustomization.yaml" <<-'EOF'
		configMapGenerator:
		  - name: dotproxy-app-b
		    literals:
		      - DOTPROXY_UPSTREAM=9.9.9.9@853#dns.quad9.net
		patches:
		  - target: {kind: Deployment, name: app-b}
		    patch: |
		      apiVersion: apps/v1
		      kind: Deployment
		      metadata: {name: app-b}
		      spec:
		        template:
		          spec:
		            initContainers:
		              - name: dotproxy
		                envFrom:
		                  - configMapRef: {name: dotproxy-config}
		                  - configMapRef: {name: dotproxy-app-b}
		  - target: {kind: Deployment, name: app-a}
		    patch: |
		      - op: add
		        path: /spec/template/spec/initContainers/0/env/-
		        value: {name: DOTPROXY_INIT_EXCLUDE_UID, value: "1337"}
	EOF
	render "$K/t/team"
	run node "$PODENV" "$R" Deployment/app-b dotproxy status.podIP=192.0.2.2
	echo "$output"
	[[ "$output" == *'["DOTPROXY_UPSTREAM","9.9.9.9@853#dns.quad9.net"]'* ]]
	[[ "$output" == *'["DOTPROXY_LOG_FORMAT","json"]'* ]]
	run node "$PODENV" "$R" Deployment/app-a dotproxy status.podIP=192.0.2.2
	[[ "$output" == *'["DOTPROXY_UPSTREAM","1.1.1.1@853#cloudflare-dns.com,1.0.0.1@853#cloudflare-dns.com"]'* ]]
	run node "$PODENV" "$R" Deployment/app-a dotproxy-init status.podIP=192.0.2.2 status.hostIP=192.0.2.10
	[[ "$output" == *'["DOTPROXY_INIT_EXCLUDE_UID","1337"]'* ]]
	templates "$R" >"$BATS_TEST_TMPDIR/after"
	# Now change only app-b's ConfigMap: only app-b's pod template changes.
	sed -i 's/DOTPROXY_UPSTREAM=9.9.9.9@853#dns.quad9.net/DOTPROXY_UPSTREAM=149.112.112.112@853#dns.quad9.net/' \
		"$K/t/team/kustomization.yaml"
	render "$K/t/team"
	templates "$R" >"$BATS_TEST_TMPDIR/changed"
	diff "$BATS_TEST_TMPDIR/after" "$BATS_TEST_TMPDIR/changed" | grep '^[<>]' >"$BATS_TEST_TMPDIR/d" || true
	cat "$BATS_TEST_TMPDIR/d"
	[ "$(grep -c '^<' "$BATS_TEST_TMPDIR/d")" -eq 1 ]
	grep -q '^< Deployment/app-b ' "$BATS_TEST_TMPDIR/d"
}

@test "compose: a shared upstream change rolls the injected apps and nothing else" {
	team
	render "$K/t/team"
	templates "$R" >"$BATS_TEST_TMPDIR/before"
	sed -i 's/1.1.1.1@853#cloudflare-dns.com,1.0.0.1@853#cloudflare-dns.com/9.9.9.9@853#dns.quad9.net/' \
		"$K/config/kustomization.yaml"
	render "$K/t/team"
	templates "$R" >"$BATS_TEST_TMPDIR/after"
	diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after" | grep '^<' >"$BATS_TEST_TMPDIR/d" || true
	cat "$BATS_TEST_TMPDIR/d"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/d")" -eq 2 ]
	grep -q '^< Deployment/app-a ' "$BATS_TEST_TMPDIR/d"
	grep -q '^< Deployment/app-b ' "$BATS_TEST_TMPDIR/d"
}

# ------------------------------------------------------------ hostNetwork

# run_init R WORKLOAD POD_IP HOST_IP: runs build/dotproxy-init as the
# kubelet would run the rendered dotproxy-init container, in a fresh
# network namespace of this test's ($NETNS); sets $status and $output.
run_init() {
	local spec envs=() args=()
	[ -x "$BUILD_DIR/dotproxy-init" ] || skip "no $BUILD_DIR/dotproxy-init (make)"
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	spec=$(node "$PODENV" "$1" "$2" dotproxy-init "status.podIP=$3" "status.hostIP=$4")
	echo "rendered: $spec"
	mapfile -t envs < <(jq -r '.env[] | "\(.[0])=\(.[1])"' <<<"$spec")
	mapfile -t args < <(jq -r '.args[]' <<<"$spec")
	[ "$(jq -r '.command[0]' <<<"$spec")" = /usr/local/bin/dotproxy-init ]
	NETNS="k8sc-$$-$BATS_TEST_NUMBER-$RANDOM"
	ip netns add "$NETNS"
	NS_MADE+=("$NETNS")
	ip -n "$NETNS" link set lo up
	run ip netns exec "$NETNS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		"${envs[@]}" "$BUILD_DIR/dotproxy-init" "${args[@]}"
	echo "dotproxy-init: status $status"
	echo "$output"
}

# A Deployment with hostNetwork: true, with the injection component.
host_network_app() {
	app "$K/t/hostnet" node-agent
	node "$REPO/tests/k8s/mutate.js" "$K/t/hostnet/deployment.yaml" \
		'spec.hostNetwork = true; spec.dnsPolicy = "ClusterFirstWithHostNet"'
	sed -i 's|^  - deployment.yaml|  - ../../config\n  - deployment.yaml|' "$K/t/hostnet/kustomization.yaml"
	printf 'namespace: team\n' >>"$K/t/hostnet/kustomization.yaml"
	render "$K/t/hostnet"
	grep -q '^      hostNetwork: true$' "$R"
}

@test "inject: dotproxy-init gets the pod's and the node's IP from the downward API" {
	host_network_app
	run node "$PODENV" "$R" Deployment/node-agent dotproxy-init \
		status.podIP=192.0.2.10 status.hostIP=192.0.2.10
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'["DOTPROXY_INIT_POD_IP","192.0.2.10"]'* ]]
	[[ "$output" == *'["DOTPROXY_INIT_HOST_IP","192.0.2.10"]'* ]]
	grep -q 'fieldPath: status.podIP' "$R"
	grep -q 'fieldPath: status.hostIP' "$R"
}

@test "inject: an ordinary pod (pod IP is not the node's): dotproxy-init installs its table" {
	app "$K/t/ordinary" app-a
	sed -i 's|^  - deployment.yaml|  - ../../config\n  - deployment.yaml|' "$K/t/ordinary/kustomization.yaml"
	render "$K/t/ordinary"
	run_init "$R" Deployment/app-a 192.0.2.2 192.0.2.10
	[ "$status" -eq 0 ]
	run ip netns exec "$NETNS" nft list table inet dotproxy
	[ "$status" -eq 0 ]
}

@test "inject: a hostNetwork pod (pod IP = node IP): dotproxy-init refuses, one line, no table" {
	host_network_app
	# The kubelet gives a hostNetwork pod the node's IP as its own.
	run_init "$R" Deployment/node-agent 192.0.2.10 192.0.2.10
	[ "$status" -ne 0 ]
	[ "$(printf '%s\n' "$output" | grep -c .)" -eq 1 ]
	[[ "$output" == *"host"* ]]
	run ip netns exec "$NETNS" nft list table inet dotproxy
	[ "$status" -ne 0 ]
}
