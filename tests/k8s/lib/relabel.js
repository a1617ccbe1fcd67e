'use strict';
/*
 * What Prometheus' Kubernetes pod discovery and a PodMonitor endpoint make
 * of one pod: its targets after relabeling. Enough of both to check that
 * each dotproxy pod is scraped exactly once, on its metrics port:
 *
 * - discovery (role: pod) gives one target per declared container port,
 *   and one port-less target (address: the pod IP) per container that
 *   declares none, init containers included, with the __meta_kubernetes_
 *   labels used here;
 * - the operator keeps, for an endpoint with `port`, only the targets of
 *   the port of that name, then applies the endpoint's relabelings;
 * - relabeling: replace, keep and drop, with sourceLabels joined by ";",
 *   fully anchored RE2-style regexes (JavaScript's are close enough for
 *   the patterns of this project), $1-style references.
 *
 * tests/e2e/k8s_manifests.bats checks the node-local endpoint's result
 * against a real Prometheus (promtool check service-discovery).
 */

/* Prometheus' label name for a Kubernetes label key. */
function labelName(k) {
	return k.replace(/[^a-zA-Z0-9_]/g, '_');
}

/* The discovered targets of one pod: [{ labels }], before relabeling. */
function discover(podLabels, spec, ip) {
	const base = { __meta_kubernetes_pod_ip: ip };
	for (const [k, v] of Object.entries(podLabels || {}))
		base[`__meta_kubernetes_pod_label_${labelName(k)}`] = String(v);
	const host = ip.includes(':') ? `[${ip}]` : ip;
	const out = [];
	const each = (c, init) => {
		const l = { ...base,
			__meta_kubernetes_pod_container_name: c.name,
			__meta_kubernetes_pod_container_init: init ? 'true' : 'false' };
		const ports = c.ports || [];
		if (ports.length === 0)
			out.push({ ...l, __address__: ip });
		for (const p of ports)
			out.push({ ...l,
				__address__: `${host}:${p.containerPort}`,
				__meta_kubernetes_pod_container_port_name: p.name || '',
				__meta_kubernetes_pod_container_port_number:
				    String(p.containerPort) });
	};
	for (const c of spec.initContainers || [])
		each(c, true);
	for (const c of spec.containers || [])
		each(c, false);
	return out;
}

function expand(repl, m) {
	return repl.replace(/\$\{?(\d+)\}?/g, (_, n) => m[Number(n)] || '');
}

/* One target through a list of relabel configs: its labels, or null when
 * dropped. */
function relabel(labels, rules) {
	let l = { ...labels };
	for (const r of rules || []) {
		const src = (r.sourceLabels || []).map((n) => l[n] || '')
		    .join(r.separator === undefined ? ';' : r.separator);
		const re = new RegExp(`^(?:${r.regex === undefined ? '(.*)' :
		    r.regex})$`);
		const m = re.exec(src);
		const action = (r.action || 'replace').toLowerCase();
		if (action === 'keep' && !m)
			return null;
		if (action === 'drop' && m)
			return null;
		if (action === 'replace' && m) {
			const v = expand(r.replacement === undefined ? '$1' :
			    r.replacement, m);
			if (v === '')
				delete l[r.targetLabel];
			else
				l = { ...l, [r.targetLabel]: v };
		}
	}
	return l;
}

/* The targets one endpoint makes of one pod, after relabeling. */
function endpointTargets(ep, podLabels, spec, ip) {
	const out = [];
	for (const t of discover(podLabels, spec, ip)) {
		if (ep.port !== undefined &&
		    t.__meta_kubernetes_pod_container_port_name !== ep.port)
			continue;
		const l = relabel(t, ep.relabelings);
		if (l !== null)
			out.push(l);
	}
	return out;
}

module.exports = { labelName, discover, relabel, endpointTargets };
