#!/usr/bin/env node
'use strict';
/*
 * Prints the spec of the PrometheusRule in FILE as a Prometheus rule file
 * (YAML: groups), for promtool. Exits 1 if FILE holds no PrometheusRule.
 *
 *   node extract-rules.js examples/monitoring/prometheusrule.yaml
 */
const fs = require('fs');
const yaml = require('js-yaml');

const file = process.argv[2];
if (!file) {
	process.stderr.write('usage: extract-rules.js FILE\n');
	process.exit(2);
}
const rule = yaml.loadAll(fs.readFileSync(file, 'utf8'))
    .find((d) => d && d.kind === 'PrometheusRule');
if (!rule || !rule.spec || !Array.isArray(rule.spec.groups)) {
	process.stderr.write(`extract-rules.js: no PrometheusRule with spec.groups in ${file}\n`);
	process.exit(1);
}
process.stdout.write(yaml.dump({ groups: rule.spec.groups }, { lineWidth: -1 }));
