#!/usr/bin/env node
'use strict';
/*
 * sdconfig.js PODMONITOR DIR: writes DIR/prometheus.yml and DIR/pods.json
 * for `promtool check service-discovery DIR/prometheus.yml nodelocal`.
 *
 * The job is the PodMonitor's port-less endpoint (the node-local one) as
 * prometheus-operator renders it: no port filter, then the endpoint's
 * relabelings. Its targets come from file discovery, with the labels that
 * Kubernetes pod discovery gives (lib/relabel.js's discover(), the same
 * model the validator uses): a node-local pod's proxy container and
 * its init container (no ports: one port-less target each), on an IPv4
 * and on an IPv6 node, and a sidecar pod's application container (no
 * ports either). A real Prometheus then relabels them.
 */
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const rl = require('./lib/relabel');

const [file, dir] = process.argv.slice(2);
if (!file || !dir) {
	console.error('usage: sdconfig.js PODMONITOR DIR');
	process.exit(2);
}
const pm = yaml.loadAll(fs.readFileSync(file, 'utf8'))
    .find((d) => d && d.kind === 'PodMonitor');
const ep = ((pm || {}).spec || {}).podMetricsEndpoints || [];
const nl = ep.filter((e) => e.port === undefined);
if (nl.length !== 1) {
	console.error(`${file}: want one endpoint without a port name, ` +
	    `found ${nl.length}`);
	process.exit(1);
}

const snake = { sourceLabels: 'source_labels', targetLabel: 'target_label' };
const rules = (nl[0].relabelings || []).map((r) => {
	const o = {};
	for (const [k, v] of Object.entries(r))
		o[snake[k] || k] = v;
	return o;
});

/* File discovery groups for one pod: the targets Kubernetes pod discovery
 * gives it (relabel.js), each with its __meta_ labels. */
function pod(mode, ip, spec) {
	return rl.discover({ 'dotproxy/mode': mode }, spec, ip).map((t) => {
		const { __address__: addr, ...labels } = t;
		return { targets: [addr], labels };
	});
}

const nodeLocal = {
	initContainers: [{ name: 'dotproxy-init' }],
	containers: [{ name: 'dotproxy' }],
};
const groups = [
	...pod('node-local', '192.0.2.10', nodeLocal),
	...pod('node-local', '2001:db8::a', nodeLocal),
	...pod('sidecar', '198.51.100.7', { containers: [{ name: 'app' }] }),
];
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'pods.json'), JSON.stringify(groups, null, 1));
fs.writeFileSync(path.join(dir, 'prometheus.yml'), yaml.dump({
	scrape_configs: [{
		job_name: 'nodelocal',
		metrics_path: nl[0].path || '/metrics',
		file_sd_configs: [{ files: [path.join(dir, 'pods.json')] }],
		relabel_configs: rules,
	}],
}));
