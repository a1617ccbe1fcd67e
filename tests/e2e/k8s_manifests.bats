#!/usr/bin/env bats
# The Kubernetes and monitoring examples (examples/), checked with the real
# tools: every kustomization under examples/ rendered by `kubectl kustomize`
# (tests/k8s/validate.sh; the rendered objects go through the Kubernetes
# 1.33 schema, a strict-key check and dotproxy's own assertions), every
# alert unit-tested by `promtool test rules`, and every series the Grafana
# dashboard and the alerts query looked up in a live proxy's /metrics.
# Then broken copies that must be rejected, so each check is shown to bite.
# No cluster; network only for `npm ci` (the npm registry) the first time.
# http_code and http_body come from helpers/ops.bash.
# shellcheck disable=SC2154

load helpers/world
load helpers/ops

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-180}

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
VALIDATE="$REPO/tests/k8s/validate.sh"
RULES="$REPO/tests/k8s/rules.sh"
SERIES="$REPO/tests/k8s/series.js"
MUTATE="$REPO/tests/k8s/mutate.js"
EXAMPLES="$REPO/examples"
DASHBOARD="$EXAMPLES/monitoring/grafana/dotproxy-dashboard.json"

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

teardown() {
	# Only the live-proxy test builds a world.
	[ -z "${W_DIR:-}" ] || world_teardown
}

# Skips the test, saying why, where kubectl (which embeds kustomize) is
# missing: nothing can be rendered without it.
need_kubectl() {
	if ! command -v kubectl >/dev/null 2>&1; then
		echo "# kubectl not found: skipping the kustomize checks (install kubectl; it embeds kustomize)" >&3
		skip "kubectl not found: the kustomizations cannot be rendered"
	fi
}

need_promtool() {
	if ! command -v promtool >/dev/null 2>&1; then
		echo "# promtool not found: skipping (apt-get install prometheus)" >&3
		skip "promtool not found (apt-get install prometheus)"
	fi
}

# Validates one group of the real examples and shows the output on failure.
group_ok() {
	need_kubectl
	run "$VALIDATE" --only "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok - $1"* ]]
	[[ "$output" != *"not ok"* ]]
}

# A copy of examples/ to break: sets $COPY.
copy_examples() {
	COPY="$BATS_TEST_TMPDIR/examples"
	rm -rf "$COPY"
	cp -r "$EXAMPLES" "$COPY"
}

# mutate FILE STATEMENT: edit the copy's FILE (relative to the copy).
mutate() {
	node "$MUTATE" "$COPY/$1" "$2"
}

# Validates the copy, which must fail, with every given string in the output.
rejected() {
	local want
	need_kubectl
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

# The copy's rules must fail promtool with every given string in the output.
rules_rejected() {
	local want
	need_promtool
	run "$RULES" --root "$COPY"
	echo "$output"
	[ "$status" -ne 0 ]
	for want in "$@"; do
		[[ "$output" == *"$want"* ]] || {
			echo "missing from output: $want"
			return 1
		}
	done
}

@test "k8s: kubectl kustomize is the renderer (version printed)" {
	need_kubectl
	run "$VALIDATE" --only kustomize
	echo "$output"
	[[ "$output" == *"# rendering with kubectl v"*", kustomize v"* ]]
}

@test "k8s: every YAML file parses and every document has apiVersion, kind, name" {
	run "$VALIDATE" --only yaml
	echo "$output"
	# 0, or 3 where kubectl is missing (the render groups were skipped).
	[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
	[[ "$output" == *"ok - yaml"* ]]
	[[ "$output" != *"not ok"* ]]
}

@test "k8s: every document validates against the Kubernetes 1.33 schema" {
	group_ok schema
}

@test "k8s: no document has a key the schema does not know" {
	group_ok strict
}

@test "k8s: every kustomization under examples/ renders with kubectl kustomize" {
	group_ok kustomize
	# Found, not listed: each of these is rendered.
	local d
	for d in kubernetes/all kubernetes/sidecar kubernetes/node-local \
		kubernetes/overlays/quad9 kubernetes/overlays/ipv6; do
		[[ "$output" == *"ok - kustomize: $d renders"* ]] ||
			{ echo "not rendered: $d"; return 1; }
	done
	[[ "$output" == *"ok - kustomize: kubernetes/components/inject injects into Deployment, StatefulSet, DaemonSet, Job"* ]]
	[[ "$output" == *"ok - kustomize: kubernetes/components/inject-cni injects into Deployment, StatefulSet, DaemonSet, Job"* ]]
}

@test "k8s: the quad9 overlay renders with the real kustomize (no cycle)" {
	need_kubectl
	run kubectl kustomize "$EXAMPLES/kubernetes/overlays/quad9"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *"DOTPROXY_UPSTREAM: 9.9.9.9@853#dns.quad9.net"* ]]
	group_ok overlay
}

@test "k8s: sidecar mode: NET_ADMIN init first, native sidecar, validate, probes" {
	group_ok sidecar
	[[ "$output" == *"ok - sidecar: kubernetes/sidecar: Deployment/dns-app"* ]]
}

@test "k8s: CNI mode: annotation, sidecar and validate, no capability anywhere" {
	group_ok sidecar-cni
	[[ "$output" == *"ok - sidecar-cni: fixture:kubernetes/components/inject-cni: Job/fixture"* ]]
}

@test "k8s: node-local mode: hostNetwork in kube-system, exact listeners, NET_ADMIN init, NET_BIND_SERVICE proxy" {
	group_ok node-local
	[[ "$output" == *"ok - node-local: kubernetes/node-local: DaemonSet/dotproxy-node-local"* ]]
	[[ "$output" == *"ok - node-local: kubernetes/overlays/ipv6: DaemonSet/dotproxy-node-local"* ]]
}

@test "k8s: Pod Security: sidecar privileged, CNI mode restricted" {
	group_ok pss
}

@test "k8s: the PodMonitor scrapes every dotproxy pod it sits next to" {
	group_ok monitoring
}

@test "k8s: the whole run passes" {
	need_kubectl
	run "$VALIDATE"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"checks ok, 0 failed"* ]]
}

@test "k8s: the injection component adds each dotproxy container once to the example app" {
	need_kubectl
	run kubectl kustomize "$EXAMPLES/kubernetes/sidecar"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	# The app's own file names no dotproxy container; the render has each once.
	if grep -q 'name: dotproxy' "$EXAMPLES/kubernetes/sidecar/deployment.yaml"; then
		echo "the app's own manifest names a dotproxy container"
		return 1
	fi
	# (A container's name at its indentation, first key or not.)
	[ "$(grep -cE -- '^      (- |  )name: dotproxy$' <<<"$output")" -eq 1 ]
	[ "$(grep -cE '^      (- |  )name: dotproxy-init$' <<<"$output")" -eq 1 ]
	[ "$(grep -cE '^      (- |  )name: dotproxy-validate$' <<<"$output")" -eq 1 ]
}

@test "k8s: egress: injected pods send DoT only to their upstreams, DNS only to kube-dns" {
	group_ok egress
	[[ "$output" == *"ok - egress: kubernetes/sidecar: Deployment/dns-app"* ]]
	[[ "$output" == *"ok - egress: kubernetes/sidecar-cni: Deployment/dns-app"* ]]
	[[ "$output" == *"ok - egress: kubernetes/overlays/quad9: Deployment/dns-app"* ]]
}

@test "k8s: rejects an upstream the egress policy does not admit, and 53 open to anywhere" {
	copy_examples
	sed -i 's/DOTPROXY_UPSTREAM=1.1.1.1@853#cloudflare-dns.com,1.0.0.1@853#cloudflare-dns.com/DOTPROXY_UPSTREAM=192.0.2.8@853#dot.test/' \
		"$COPY/kubernetes/config/kustomization.yaml"
	mutate kubernetes/egress/networkpolicy.yaml \
		'doc.spec.egress[2].ports[0] = { protocol: "UDP", port: 1, endPort: 1000 }'
	rejected "not ok - egress: kubernetes/sidecar: Deployment/dns-app" \
		"upstream 192.0.2.8:853 is not admitted" \
		"853/TCP is admitted to {\"ipBlock\":{\"cidr\":\"1.1.1.1/32\"}}" \
		"53/UDP is admitted to anywhere"
}

@test "k8s: the DoH switch drops 443 to the public resolvers and keeps HTTPS elsewhere" {
	need_kubectl
	run kubectl kustomize "$EXAMPLES/kubernetes/sidecar-cni"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r.yaml"
	run node -e '
		const yaml = require(process.argv[2] + "/js-yaml");
		const fs = require("fs");
		const np = yaml.loadAll(fs.readFileSync(process.argv[1], "utf8"))
		    .find((o) => o && o.kind === "NetworkPolicy" && o.metadata.name === "dotproxy-egress");
		const r2 = np.spec.egress[2].ports;
		const has = (port, proto) => r2.some((p) => p.protocol === proto && p.port <= port && port <= (p.endPort || p.port));
		if (has(443, "TCP") || has(443, "UDP") || !has(80, "TCP") || !has(444, "TCP")) throw new Error("rule 2: " + JSON.stringify(r2));
		const r3 = np.spec.egress[3];
		const v4 = r3.to.find((p) => p.ipBlock.cidr === "0.0.0.0/0");
		if (!v4.ipBlock.except.includes("8.8.8.8/32") || !r3.ports.some((p) => p.port === 443 && p.protocol === "UDP")) throw new Error("rule 3: " + JSON.stringify(r3));
		console.log("ok");
	' "$BATS_TEST_TMPDIR/r.yaml" "$REPO/tests/k8s/node_modules"
	echo "$output"
	[ "$output" = ok ]
	# Without the switch, 443 is in rule 2 (the sidecar example).
	run kubectl kustomize "$EXAMPLES/kubernetes/sidecar"
	if grep -q 'endPort: 442' <<<"$output"; then
		echo "443 is cut out without the switch"
		return 1
	fi
}

@test "k8s: the monitoring namespace is a parameter of the NetworkPolicies" {
	need_kubectl
	# One patch of dotproxy-params, in a component before network-params,
	# moves the monitoring namespace in every NetworkPolicy of the namespace.
	copy_examples
	sed -i 's|^  - ../components/network-params|  - my-params\n&|' \
		"$COPY/kubernetes/sidecar/kustomization.yaml"
	mkdir "$COPY/kubernetes/sidecar/my-params"
	cat >"$COPY/kubernetes/sidecar/my-params/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1alpha1
		kind: Component
		patches:
		  - target: {kind: ConfigMap, name: dotproxy-params}
		    patch: |
		      - op: replace
		        path: /data/monitoringNamespace
		        value: observability
	EOF
	run kubectl kustomize "$COPY/kubernetes/sidecar"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *"kubernetes.io/metadata.name: observability"* ]]
	[[ "$output" != *"kubernetes.io/metadata.name: monitoring"* ]]
	[[ "$output" != *"dotproxy-params"* ]]
}

# ---------------------------------------------------------------- alerts

@test "alerts: promtool check rules and promtool test rules pass" {
	need_promtool
	run "$RULES"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"SUCCESS: 9 rules found"* ]]
	[[ "$output" == *"every alert has a firing (0.2 queries/s), a healthy-idle and a healthy-but-imperfect unit test"* ]]
	[[ "$output" == *"Unit Testing:"*"SUCCESS"* ]]
}

@test "alerts: a ratio threshold that never fires fails its unit test" {
	copy_examples
	sed -i 's/) > 0.05/) > 0.5/' "$COPY/monitoring/rules/prometheusrule.yaml"
	rules_rejected "alertname: DotproxyServfailRatioHigh" "got:[]"
}

@test "alerts: the old 'up == 0' alert fires on the healthy idle proxy" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'doc.spec.groups[0].rules[0].expr = "min by (job, namespace, pod, instance, upstream) (dotproxy_upstream_connections) == 0"'
	rules_rejected "healthy idle proxy, nothing fires" "alertname: DotproxyUpstreamsAllDown"
}

@test "alerts: paging for one dead upstream of two fires on the healthy but imperfect proxy" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'doc.spec.groups[0].rules[0].expr = doc.spec.groups[0].rules[0].expr.replace("max by", "min by")'
	rules_rejected "healthy but imperfect proxy at 0.2 queries/s, nothing fires" \
		"alertname: DotproxyUpstreamsAllDown"
}

@test "alerts: a ratio alert that needs more than 1 query/s misses the quiet pod" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'doc.spec.groups[0].rules[1].expr = doc.spec.groups[0].rules[1].expr.replace(") >= 30", ") >= 1000")'
	rules_rejected "every upstream refuses at 0.2 queries/s" "alertname: DotproxyServfailRatioHigh"
}

@test "alerts: a cache comparison with offset 1h stays silent for a young pod" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'const r = doc.spec.groups[0].rules.find((x) => x.alert === "DotproxyCacheHitRatioCollapsed"); r.expr = r.expr.replace(/\[1h\]/g, "[1h] offset 1h")'
	rules_rejected "a 40-minute-old pod at 0.2 queries/s whose cache hit ratio collapses"
}

@test "alerts: latency from the query-duration histogram pages on the imperfect proxy's timeouts" {
	copy_examples
	# Where every query, timeouts too, is timed: the imperfect proxy's 2 %
	# of 3 s timeouts make the p99.
	mutate monitoring/rules/prometheusrule.yaml \
		'const r = doc.spec.groups[0].rules.find((x) => x.alert === "DotproxyUpstreamLatencyHigh"); r.expr = r.expr.replace(/dotproxy_upstream_latency_seconds/g, "dotproxy_query_duration_seconds")'
	cat >"$BATS_TEST_TMPDIR/add.js" <<-'EOF'
		// The imperfect pod: 11.75 answers a minute under 0.1 s, one in
		// four minutes after the 3 s timeout.
		const fs = require('fs'), f = process.argv[2];
		const seq = (g) => Array.from({ length: 181 }, (_, m) => g(m)).join(' ');
		const who = 'job="dotproxy",namespace="ns",pod="imperfect",instance="10.0.0.4:9153"';
		const row = (name, v) => `      - series: '${name}'\n        values: '${v}'\n`;
		let add = '';
		for (const le of ['0.1', '1', '2.5'])
			add += row(`dotproxy_query_duration_seconds_bucket{${who},le="${le}"}`,
			    seq((m) => 12 * m - Math.floor(m / 4)));
		for (const le of ['5', '+Inf'])
			add += row(`dotproxy_query_duration_seconds_bucket{${who},le="${le}"}`,
			    seq((m) => 12 * m));
		add += row(`dotproxy_query_duration_seconds_count{${who}}`, seq((m) => 12 * m));
		const t = fs.readFileSync(f, 'utf8').replace(
		    /(- name: "healthy but imperfect[^\n]*\n    interval: 1m\n    input_series:\n)/,
		    (m) => m + add);
		fs.writeFileSync(f, t);
	EOF
	node "$BATS_TEST_TMPDIR/add.js" "$COPY/monitoring/rules/promtool/rules_test.yaml"
	grep -q dotproxy_query_duration_seconds_count "$COPY/monitoring/rules/promtool/rules_test.yaml"
	rules_rejected "healthy but imperfect proxy at 0.2 queries/s, nothing fires" \
		"alertname: DotproxyUpstreamLatencyHigh"
}

@test "alerts: a broken expression is rejected by promtool check rules" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'doc.spec.groups[0].rules.push({ alert: "Broken", expr: "rate(dotproxy_queries_total[5m] >" })'
	rules_rejected "Broken" "FAILED"
}

@test "alerts: an alert without a firing, a healthy-idle and a healthy-but-imperfect unit test is rejected" {
	copy_examples
	mutate monitoring/rules/prometheusrule.yaml \
		'doc.spec.groups[0].rules.push({ alert: "Untested", expr: "dotproxy_inflight_queries > 1000", for: "5m" })'
	rules_rejected "Untested: no unit test shows it firing at 0.2 queries/s" \
		"Untested: no unit test shows it silent on a healthy idle proxy" \
		"Untested: no unit test shows it silent on a healthy but imperfect proxy"
}

@test "alerts: one PrometheusRule for the cluster, none per namespace" {
	need_kubectl
	run kubectl kustomize "$EXAMPLES/kubernetes/all"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$(grep -c '^kind: PrometheusRule$' <<<"$output")" -eq 1 ]
	[ "$(grep -c '^kind: PodMonitor$' <<<"$output")" -eq 2 ]
	group_ok monitoring
	# The rule's namespace is a parameter: an overlay moves it.
	mkdir -p "$BATS_TEST_TMPDIR/rules"
	cp -r "$EXAMPLES/monitoring" "$BATS_TEST_TMPDIR/monitoring"
	cat >"$BATS_TEST_TMPDIR/rules/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		namespace: observability
		resources:
		  - ../monitoring/rules
	EOF
	run kubectl kustomize "$BATS_TEST_TMPDIR/rules"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *"namespace: observability"* ]]
	# Put back into the monitoring component, it is rejected.
	copy_examples
	mutate monitoring/kustomization.yaml 'doc.resources.push("rules/prometheusrule.yaml")'
	rejected "kubernetes/sidecar renders a PrometheusRule: the rule is cluster-wide"
}

# ------------------------------------------------- dashboard, live proxy

@test "dashboard and alerts: every series they query is exported by a running proxy" {
	local m args=() gaps=()
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	world_file_setup
	# A second upstream nobody answers, so per-upstream series exist for a
	# failing one too; the cache on when this proxy has one.
	# --transparent: as in the sidecar, where captured_queries_total is
	# exported.
	args=(--transparent --upstream "$OPS_UP" --upstream "192.0.2.9@853#dot.test" --ca-file "$W_CA")
	if "$W_BIN" --help 2>&1 | grep -q -- '--cache-size'; then
		args+=(--cache-size 1000)
	else
		gaps=(--gap dotproxy_cache_)
		echo "# this proxy has no --cache-size: the cache panels are the expected gap" >&3
	fi
	ops_start_proxy "${args[@]}"
	run q whoami.test A
	assert_dot_answer
	run q whoami.test A
	run q +tcp whoami.test A
	m=$W_DIR/dash.prom
	scrape "$m"
	# The standard process_* families came with the proxy's metrics rework;
	# a proxy before it exports dotproxy_process_* instead.
	if ! grep -q '^process_cpu_seconds_total ' "$m"; then
		gaps+=(--gap process_)
		echo "# this proxy has no standard process_* metrics: the process panels are the expected gap" >&3
	fi
	run node "$SERIES" "${gaps[@]}" "$m" "$DASHBOARD" \
		"$EXAMPLES/monitoring/rules/prometheusrule.yaml"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok - series: dotproxy_responses_total{source=\"synthesized\",rcode=\"SERVFAIL\"}"* ]]
	[[ "$output" == *"ok - series: dotproxy_upstream_up{}"* ]]
	[[ "$output" == *", 0 missing"* ]]
	grep '^# series:' <<<"$output" >&3
	# With a cache, its series are checked like the rest, not excused.
	if [ "${#gaps[@]}" -eq 0 ]; then
		[[ "$output" == *"ok - series: dotproxy_cache_hits_total{}"* ]]
		[[ "$output" != *"# gap"* ]]
	fi

	# The checker bites: a panel on a series nobody exports fails.
	cp "$DASHBOARD" "$W_DIR/broken.json"
	sed -i 's/dotproxy_upstream_up{/dotproxy_upstream_healthy{/' "$W_DIR/broken.json"
	run node "$SERIES" "${gaps[@]}" "$m" "$W_DIR/broken.json"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not ok - series: dotproxy_upstream_healthy{}"*"not exported"* ]]
	stop_proxy
}

# ---------------------------------------------------------- broken copies

@test "k8s: rejects a misspelled key in the injected sidecar (securityContxt)" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'rename(c("dotproxy"), "securityContext", "securityContxt")'
	rejected "not ok - kustomize: kubernetes/sidecar renders" \
		"unknown key /spec/template/spec/initContainers/1/securityContxt"
}

@test "k8s: rejects a misspelled key deep in a probe and in a Service" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'rename(c("dotproxy").livenessProbe.httpGet, "path", "pth")'
	mutate kubernetes/node-local/service-upstream.yaml \
		'rename(doc.spec, "selector", "selectr")'
	rejected "unknown key /spec/template/spec/initContainers/1/livenessProbe/httpGet/pth" \
		"unknown key /spec/selectr" \
		"selector must be exactly k8s-app: kube-dns"
}

@test "k8s: rejects a schema type error" {
	copy_examples
	mutate kubernetes/sidecar/deployment.yaml 'doc.spec.replicas = "one"'
	rejected "not ok - schema: kubernetes/sidecar/deployment.yaml" "replicas"
}

@test "k8s: rejects NET_ADMIN added to the sidecar" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'c("dotproxy").securityContext.capabilities.add = ["NET_ADMIN"]'
	rejected "not ok - sidecar: kubernetes/sidecar" \
		"dotproxy: must add no capability (adds NET_ADMIN)" \
		"baseline violations other than NET_ADMIN" \
		"not ok - sidecar-cni: fixture:kubernetes/components/inject-cni"
}

@test "k8s: rejects a capability other than NET_ADMIN on dotproxy-init" {
	copy_examples
	mutate kubernetes/components/inject/init.yaml \
		'c("dotproxy-init").securityContext.capabilities.add.push("NET_RAW")'
	rejected 'dotproxy-init: must add exactly [NET_ADMIN]'
}

@test "k8s: rejects a sidecar without restartPolicy Always, or with a root UID" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'delete c("dotproxy").restartPolicy; c("dotproxy").securityContext.runAsUser = 0'
	rejected "restartPolicy must be Always" \
		"runAsUser and runAsGroup must be 15353" \
		"--proxy-uid 15353 is not the sidecar's UID 0"
}

@test "k8s: rejects the capture check before the sidecar" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'spec.initContainers.reverse()'
	rejected "dotproxy-validate: must run after the sidecar"
}

@test "k8s: rejects an injection that misses a workload kind" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/kustomization.yaml \
		'doc.patches[0].target.kind = "(Deployment|DaemonSet|Job)"'
	rejected "not ok - kustomize: kubernetes/components/inject-cni injects into" \
		"StatefulSet: nothing injected" \
		"not ok - sidecar: fixture:kubernetes/components/inject: StatefulSet/fixture"
}

@test "k8s: rejects CNI-mode injection without the capture annotation" {
	copy_examples
	mutate kubernetes/components/inject-cni/mode.yaml \
		'delete doc.spec.template.metadata.annotations'
	rejected "not ok - sidecar-cni: fixture:kubernetes/components/inject-cni: Deployment/fixture" \
		'pod annotation dotproxy/capture must be "true"'
}

@test "k8s: rejects an app running as the proxy's UID" {
	copy_examples
	mutate kubernetes/sidecar/deployment.yaml 'c("app").securityContext.runAsUser = 15353'
	rejected "app: runs as 15353, whose DNS is never captured"
}

@test "k8s: rejects missing probes and metrics on 0.0.0.0 or loopback" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'delete c("dotproxy").startupProbe; c("dotproxy").env[1].value = "0.0.0.0:9153"'
	mutate kubernetes/components/ipv6/sidecar.yaml \
		'c("dotproxy").env[1].value = "[::1]:9153"'
	rejected "dotproxy: no startupProbe" \
		"metrics listens on 0.0.0.0; bind it to the pod IP" \
		"unreachable from the kubelet"
}

@test "k8s: rejects the upstream set outside the shared ConfigMap, and no local zone" {
	copy_examples
	mutate kubernetes/components/dotproxy-sidecar/sidecar.yaml \
		'c("dotproxy").args = ["--transparent", "--upstream", "9.9.9.9@853#dns.quad9.net"]'
	rejected "belongs in the dotproxy-config ConfigMap" \
		"needs --local-zone cluster.local"
}

# nl_rejected STATEMENT MESSAGE...: the node-local DaemonSet changed by
# STATEMENT must fail the node-local check with each MESSAGE.
nl_rejected() {
	local stmt=$1
	shift
	copy_examples
	mutate kubernetes/node-local/daemonset.yaml "$stmt"
	rejected "not ok - node-local: kubernetes/node-local: DaemonSet/dotproxy-node-local" "$@"
}

@test "k8s: rejects node-local off the node's network, or in its own namespace" {
	nl_rejected 'spec.hostNetwork = false' "hostNetwork must be true"
	copy_examples
	mutate kubernetes/node-local/kustomization.yaml 'doc.namespace = "dotproxy-node-local"'
	rejected "namespace must be kube-system (is dotproxy-node-local)"
}

@test "k8s: rejects a wildcard, a missing or an extra node-local listener" {
	nl_rejected 'c("dotproxy").args[1] = "0.0.0.0:53"' \
		"dotproxy: must --listen exactly"
	nl_rejected 'c("dotproxy").args.splice(2, 2)' \
		"dotproxy: must --listen exactly" "(has 169.254.20.10:53)"
	# shellcheck disable=SC2016 # \$(...) is the manifest's, not the shell's
	nl_rejected 'c("dotproxy").args.push("--listen", "$(HOST_IP):53")' \
		"dotproxy: must --listen exactly"
	# The proxy's addresses follow the init container's.
	# shellcheck disable=SC2016 # \$(...) is the manifest's, not the shell's
	nl_rejected 'c("dotproxy-init").args[1] = "169.254.20.11,$(KUBE_DNS_SERVICE_HOST)"' \
		"dotproxy: must --listen exactly" \
		"the IPv4 node-local address must be 169.254.20.10"
}

@test "k8s: rejects an extra capability, or a missing one, in node-local" {
	nl_rejected 'c("dotproxy").securityContext.capabilities.add.push("NET_ADMIN")' \
		'dotproxy: must add exactly [NET_BIND_SERVICE] (adds ["NET_BIND_SERVICE","NET_ADMIN"])'
	nl_rejected 'c("dotproxy-init").securityContext.capabilities.add = ["NET_ADMIN", "NET_RAW"]' \
		'dotproxy-init: must add exactly [NET_ADMIN]'
	nl_rejected 'c("dotproxy").securityContext.capabilities.drop = []' \
		"dotproxy: capabilities.drop must be exactly [ALL]"
	nl_rejected 'c("dotproxy").securityContext.allowPrivilegeEscalation = true; c("dotproxy-init").securityContext.readOnlyRootFilesystem = false' \
		"dotproxy: allowPrivilegeEscalation must be false" \
		"dotproxy-init: readOnlyRootFilesystem must be true"
	nl_rejected 'c("dotproxy").securityContext.runAsUser = 15353; c("dotproxy").securityContext.runAsNonRoot = true' \
		"dotproxy: must run as UID 0"
}

@test "k8s: rejects a node-local update that stops the old pod first, or no critical priority" {
	nl_rejected 'doc.spec.updateStrategy.rollingUpdate.maxUnavailable = 1' \
		"maxSurge 1 and maxUnavailable 0"
	nl_rejected 'doc.spec.updateStrategy.rollingUpdate.maxSurge = 0; doc.spec.updateStrategy.rollingUpdate.maxUnavailable = 1' \
		"maxSurge 1 and maxUnavailable 0"
	nl_rejected 'delete spec.priorityClassName' \
		"priorityClassName must be system-node-critical"
}

@test "k8s: rejects node-local ports (host ports block the surge) and a handover socket the pods do not share" {
	nl_rejected 'c("dotproxy").ports = [{ name: "dotproxy-prom", containerPort: 9253 }]' \
		"dotproxy: declares ports (9253): in the node's network they are host ports"
	nl_rejected 'c("dotproxy-init").ports = [{ containerPort: 53, protocol: "UDP" }]' \
		"dotproxy-init: declares ports (53)"
	nl_rejected 'c("dotproxy").env = c("dotproxy").env.filter((e) => e.name !== "DOTPROXY_HANDOVER_SOCKET")' \
		"dotproxy: needs --handover-socket"
	nl_rejected 'spec.volumes.find((v) => v.name === "handover").hostPath = undefined; spec.volumes.find((v) => v.name === "handover").emptyDir = {}' \
		"the handover socket's volume handover must be a hostPath directory"
	nl_rejected 'c("dotproxy").volumeMounts.find((m) => m.name === "handover").readOnly = true' \
		"must be in a writable volume mounted at its directory"
	nl_rejected 'c("dotproxy").env.find((e) => e.name === "DOTPROXY_HANDOVER_SOCKET").value = "/tmp/handover.sock"' \
		"must be in a writable volume mounted at its directory"
	nl_rejected 'c("dotproxy").readinessProbe.httpGet.port = "dotproxy-prom"' \
		"dotproxy: readinessProbe must GET /readyz on 9253"
}

@test "k8s: the PodMonitor scrapes each dotproxy pod once, node-local ones by number, and nothing else" {
	copy_examples
	# The node-local endpoint without its container filter: the init
	# container's port-less target is scraped too.
	mutate monitoring/podmonitor.yaml \
		'doc.spec.podMetricsEndpoints[1].relabelings.splice(1, 2)'
	rejected "not ok - monitoring: kubernetes/node-local" \
		"DaemonSet/dotproxy-node-local: IPv4 pod: also scrapes dotproxy-init at 192.0.2.10:9253"
	copy_examples
	# Without the bracketed form an IPv6 node is scraped at a bad address.
	mutate monitoring/podmonitor.yaml \
		'doc.spec.podMetricsEndpoints[1].relabelings.splice(4, 1)'
	rejected "DaemonSet/dotproxy-node-local: IPv6 pod: 0 targets scrape the proxy at [2001:db8::a]:9253 (want 1)"
	copy_examples
	# Without the mode and container filters, a sidecar pod's app
	# container is scraped at a port it never opened.
	mutate monitoring/podmonitor.yaml \
		'doc.spec.podMetricsEndpoints[1].relabelings.splice(0, 2)'
	rejected "not ok - monitoring: kubernetes/all" \
		"Deployment/dns-app: IPv4 pod: also scrapes app at 192.0.2.10:9253"
}

@test "k8s: the node-local scrape target, through a real Prometheus' relabeling" {
	need_promtool
	local dir=$BATS_TEST_TMPDIR/sd
	mkdir -p "$dir"
	# The PodMonitor's node-local endpoint as the operator renders it (its
	# relabelings after discovery), fed by file discovery with the labels
	# Kubernetes pod discovery gives a node-local pod (the proxy and its
	# init container, no ports), a sidecar pod's app container, and the
	# same node-local pod on an IPv6 node.
	run node "$BATS_TEST_DIRNAME/../k8s/sdconfig.js" \
		"$EXAMPLES/monitoring/podmonitor.yaml" "$dir"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# (its log lines go to stderr, the targets as JSON to stdout)
	output=$(promtool check service-discovery "$dir/prometheus.yml" nodelocal \
		2>"$dir/promtool.err") || { cat "$dir/promtool.err"; false; }
	echo "$output"
	# Kept targets (labels not empty): exactly the proxy container at the
	# node IP, port 9253, for each family, in job dotproxy (promtool lists
	# them in no fixed order).
	kept=$(python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["labels"]:
        d = t["discoveredLabels"]
        print(d["__meta_kubernetes_pod_container_name"], t["labels"]["__address__"], t["labels"]["job"])
' <<<"$output" | LC_ALL=C sort)
	echo "kept: $kept"
	[ "$kept" = "dotproxy 192.0.2.10:9253 dotproxy
dotproxy [2001:db8::a]:9253 dotproxy" ]
}

@test "k8s: rejects node-local metrics on a wildcard, DNS through itself, a liveness check elsewhere" {
	nl_rejected 'c("dotproxy").env.find((e) => e.name === "DOTPROXY_METRICS").value = "0.0.0.0:9253"' \
		"metrics must be \$(HOST_IP):9253"
	nl_rejected 'spec.dnsPolicy = "ClusterFirstWithHostNet"' \
		"dnsPolicy must be Default"
	nl_rejected 'c("dotproxy").livenessProbe.tcpSocket.host = "127.0.0.1"' \
		"livenessProbe must be a TCP connect to 169.254.20.10:53"
	nl_rejected 'c("dotproxy-init").args[3] = "10.96.0.10"' \
		"--node-local-upstream must be \$(KUBE_DNS_UPSTREAM_SERVICE_HOST)"
}

@test "k8s: rejects the old node-local pieces: a NetworkPolicy, internalTrafficPolicy, a pinned clusterIP" {
	copy_examples
	cp "$EXAMPLES/kubernetes/egress/networkpolicy.yaml" "$COPY/kubernetes/node-local/np.yaml"
	mutate kubernetes/node-local/kustomization.yaml 'doc.resources.push("np.yaml")'
	mutate kubernetes/node-local/service-upstream.yaml \
		'doc.spec.internalTrafficPolicy = "Local"; doc.spec.clusterIP = "10.96.0.53"'
	rejected "NetworkPolicy does not apply to hostNetwork pods" \
		"Service/kube-dns-upstream: no internalTrafficPolicy" \
		"Service/kube-dns-upstream: fixes clusterIP 10.96.0.53"
	copy_examples
	mutate kubernetes/node-local/service-upstream.yaml \
		'doc.spec.selector = { "app.kubernetes.io/name": "dotproxy" }'
	rejected "Service/kube-dns-upstream: selector must be exactly k8s-app: kube-dns"
}

@test "k8s: rejects node-local creating kube-system, or a level below privileged there" {
	copy_examples
	cat >"$COPY/kubernetes/node-local/ns.yaml" <<-'EOF'
		apiVersion: v1
		kind: Namespace
		metadata:
		  name: kube-system
		  labels:
		    pod-security.kubernetes.io/enforce: restricted
	EOF
	mutate kubernetes/node-local/kustomization.yaml 'doc.resources.push("ns.yaml")'
	rejected "Namespace/kube-system: node-local must not create or relabel kube-system" \
		"node-local needs a privileged namespace"
}

@test "k8s: rejects the IPv6 node-local with an unbracketed kube-dns listener" {
	copy_examples
	# shellcheck disable=SC2016 # \$(...) is the manifest's, not the shell's
	mutate kubernetes/components/ipv6/node-local.yaml \
		'c("dotproxy").args[3] = "$(KUBE_DNS_SERVICE_HOST):53"'
	rejected "not ok - node-local: kubernetes/overlays/ipv6: DaemonSet/dotproxy-node-local" \
		"must --listen exactly"
}

@test "k8s: rejects a PodMonitor that does not select the dotproxy pods" {
	copy_examples
	mutate monitoring/podmonitor.yaml \
		'doc.spec.selector.matchExpressions[0].values = ["sidecar"]'
	rejected "not ok - monitoring: kubernetes/node-local" \
		"DaemonSet/dotproxy-node-local: no PodMonitor in kube-system selects its pods"
}

@test "k8s: rejects a broken kustomization (unknown field, missing resource)" {
	copy_examples
	mutate kubernetes/sidecar/kustomization.yaml \
		'rename(doc, "resources", "resource")'
	mutate kubernetes/node-local/kustomization.yaml \
		'doc.resources.push("missing.yaml")'
	rejected 'unknown field \"resource\"' "missing.yaml"
}

@test "k8s: rejects an overlay inside its own base (kustomize: cycle detected)" {
	copy_examples
	mkdir -p "$COPY/kubernetes/all/overlays/inside"
	cat >"$COPY/kubernetes/all/overlays/inside/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		resources:
		  - ../..
	EOF
	rejected "not ok - kustomize: kubernetes/all/overlays/inside renders" "cycle"
}

@test "k8s: a new kustomization under examples/ is found and checked" {
	copy_examples
	mkdir -p "$COPY/kubernetes/extra"
	cp "$EXAMPLES/kubernetes/sidecar/deployment.yaml" "$COPY/kubernetes/extra/"
	cat >"$COPY/kubernetes/extra/kustomization.yaml" <<-'EOF'
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		namespace: extra
		resources:
		  - deployment.yaml
		components:
		  - ../components/inject
	EOF
	mutate kubernetes/extra/deployment.yaml 'c("app").securityContext.runAsUser = 15353'
	rejected "not ok - sidecar: kubernetes/extra: Deployment/dns-app" \
		"app: runs as 15353"
}

# ------------------------------------------------------- image metadata

@test "image: the OCI source and licence labels are real and match LICENSE" {
	local df=$REPO/Dockerfile src lic
	src=$(sed -n 's/.*org\.opencontainers\.image\.source="\([^"]*\)".*/\1/p' "$df")
	lic=$(sed -n 's/.*org\.opencontainers\.image\.licenses="\([^"]*\)".*/\1/p' "$df")
	echo "source=$src licenses=$lic"
	[[ $src =~ ^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]
	# MIT is our code's term; tests/licences.sh checks the whole expression
	# against what the binaries link.
	[[ " $lic " == *" MIT "* ]]
	head -1 "$REPO/LICENSE" | grep -qx 'MIT License'
}

# --------------------------------------------------------------- README

@test "docs: every flag of dotproxy and dotproxy-init is documented" {
	local bin flag missing=()
	for bin in "$REPO/build/dotproxy" "$REPO/build/dotproxy-init"; do
		[ -x "$bin" ] || skip "no $bin (make)"
		while read -r flag; do
			grep -qF -- "\`$flag" "$REPO/docs/configuration.md" || missing+=("${bin##*/} $flag")
		done < <("$bin" --help 2>&1 | grep -E -- '^ +--' | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
	done
	[ "${#missing[@]}" -eq 0 ] || {
		printf 'not in docs/configuration.md: %s\n' "${missing[@]}"
		return 1
	}
}

@test "readme: the contents and the three answers are linked from the top and every link lands" {
	# Every relative link in README.md, docs/ and the examples lands on a
	# file and, with a #fragment, on one of its headings.
	run bash "$REPO/tests/links.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	# Within the first screenful: the two commands, the three answers, contents.
	head -70 "$REPO/README.md" | grep -q '^make demo'
	head -70 "$REPO/README.md" | grep -q '^make test'
	[ "$(head -70 "$REPO/README.md" | grep -c '#what-are-the-security\|#how-would-this-proxy\|#what-other-improvements')" -eq 3 ]
	head -70 "$REPO/README.md" | grep -q '^## Contents'
}
