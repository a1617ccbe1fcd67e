#!/usr/bin/env bats
# The Kubernetes examples (examples/kubernetes/), validated offline by
# tests/k8s/validate.sh: one test per check group, then broken copies of
# the manifests that the validator must reject. No cluster and no network
# (except `npm ci` from the npm registry the first time).

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
VALIDATE="$REPO/tests/k8s/validate.sh"
MUTATE="$REPO/tests/k8s/mutate.js"
EXAMPLES="$REPO/examples/kubernetes"

setup_file() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
		return 0
	# npm ci once, here, so no single test pays for it.
	"$VALIDATE" --only yaml >/dev/null
}

setup() {
	local t
	for t in node npm; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "# $t not found: skipping (apt-get install nodejs npm)" >&3
			skip "$t not found (apt-get install nodejs npm)"
		fi
	done
}

# Validates one group of the real examples and shows the output on failure.
group_ok() {
	run "$VALIDATE" --only "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok - $1"* ]]
	[[ "$output" != *"not ok"* ]]
}

# A copy of examples/kubernetes to break: sets $COPY.
copy_examples() {
	COPY="$BATS_TEST_TMPDIR/kubernetes"
	cp -r "$EXAMPLES" "$COPY"
}

# mutate FILE STATEMENT: edit the copy's FILE (relative to the copy).
mutate() {
	node "$MUTATE" "$COPY/$1" "$2"
}

# Validates the copy, which must fail, with every given string in the output.
rejected() {
	local want
	run "$VALIDATE" --root "$COPY"
	echo "$output"
	[ "$status" -eq 1 ]
	for want in "$@"; do
		[[ "$output" == *"$want"* ]] || {
			echo "missing from output: $want"
			return 1
		}
	done
}

@test "k8s: every YAML file parses and every document has apiVersion, kind, name" {
	group_ok yaml
}

@test "k8s: every document validates against the Kubernetes 1.33 schema" {
	group_ok schema
}

@test "k8s: no document has a key the schema does not know" {
	group_ok strict
}

@test "k8s: kustomizations are well-formed and render (upstream set in one place)" {
	group_ok kustomize
}

@test "k8s: sidecar mode: NET_ADMIN init, native sidecar, validate, probes" {
	group_ok sidecar
}

@test "k8s: node-local mode: no privileges, Service with internalTrafficPolicy Local" {
	group_ok node-local
}

@test "k8s: Pod Security: sidecar namespace privileged, node-local restricted" {
	group_ok pss
}

@test "k8s: the whole run passes" {
	run "$VALIDATE"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"checks ok, 0 failed"* ]]
}

@test "k8s: rejects a misspelled key (securityContxt)" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'rename(c("dotproxy"), "securityContext", "securityContxt")'
	rejected "not ok - strict: sidecar/deployment.yaml" \
		"unknown key /spec/template/spec/initContainers/1/securityContxt"
}

@test "k8s: rejects a misspelled key deep in a probe and in a Service" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'rename(c("dotproxy").livenessProbe.httpGet, "path", "pth")'
	mutate node-local/service.yaml \
		'rename(doc.spec, "internalTrafficPolicy", "internalTraficPolicy")'
	rejected "unknown key /spec/template/spec/initContainers/1/livenessProbe/httpGet/pth" \
		"unknown key /spec/internalTraficPolicy" \
		"internalTrafficPolicy must be Local"
}

@test "k8s: rejects a schema type error" {
	copy_examples
	mutate sidecar/deployment.yaml 'doc.spec.replicas = "one"'
	rejected "not ok - schema: sidecar/deployment.yaml" "replicas"
}

@test "k8s: rejects NET_ADMIN added to the sidecar" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'c("dotproxy").securityContext.capabilities.add = ["NET_ADMIN"]'
	rejected "not ok - sidecar:" \
		"dotproxy: must add no capability (adds NET_ADMIN)" \
		"not ok - pss: documented levels"
}

@test "k8s: rejects a capability other than NET_ADMIN on dotproxy-init" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'c("dotproxy-init").securityContext.capabilities.add.push("NET_RAW")'
	rejected 'dotproxy-init: must add exactly [NET_ADMIN]'
}

@test "k8s: rejects a sidecar without restartPolicy Always, or with a root UID" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'delete c("dotproxy").restartPolicy; c("dotproxy").securityContext.runAsUser = 0'
	rejected "restartPolicy must be Always" \
		"runAsUser and runAsGroup must be 15353" \
		"--proxy-uid 15353 is not the sidecar's UID 0"
}

@test "k8s: rejects the capture check before the sidecar" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'const i = spec.initContainers; i.splice(1, 0, i.splice(2, 1)[0])'
	rejected "dotproxy-validate: must run after the sidecar"
}

@test "k8s: rejects an app running as the proxy's UID" {
	copy_examples
	mutate sidecar/deployment.yaml 'c("app").securityContext.runAsUser = 15353'
	rejected "app: runs as 15353, whose DNS is never captured"
}

@test "k8s: rejects missing probes and httpGet probes on a loopback metrics port" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'delete c("dotproxy").startupProbe; c("dotproxy").env[0].value = "127.0.0.1:9153"'
	rejected "dotproxy: no startupProbe" "unreachable from the kubelet"
}

@test "k8s: rejects the upstream set outside the shared ConfigMap, and no local zone" {
	copy_examples
	mutate sidecar/deployment.yaml \
		'c("dotproxy").args = ["--transparent", "--upstream", "9.9.9.9@853#dns.quad9.net"]'
	rejected "belongs in the dotproxy-config ConfigMap" \
		"needs --local-zone cluster.local"
}

@test "k8s: rejects NET_ADMIN or hostNetwork in the node-local DaemonSet" {
	copy_examples
	mutate node-local/daemonset.yaml \
		'c("dotproxy").securityContext.capabilities.add = ["NET_ADMIN"]; spec.hostNetwork = true'
	rejected "not ok - node-local:" "must add no capability (adds NET_ADMIN)" \
		"must not use hostNetwork" "restricted: container dotproxy: adds capability NET_ADMIN"
}

@test "k8s: rejects a node-local client that does not name the Service IP" {
	copy_examples
	mutate node-local/client-example.yaml \
		'spec.dnsConfig.nameservers = ["10.96.0.10"]'
	rejected "dnsConfig.nameservers lacks 10.96.0.53"
}

@test "k8s: rejects a broken kustomization (unknown field, missing resource)" {
	copy_examples
	mutate sidecar/kustomization.yaml \
		'rename(doc, "resources", "resource")'
	mutate node-local/kustomization.yaml \
		'doc.resources.push("missing.yaml")'
	rejected 'unsupported or unknown field "resource"' \
		"resource missing.yaml does not exist"
}
