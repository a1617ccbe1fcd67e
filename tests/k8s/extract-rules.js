#!/usr/bin/env node
'use strict';
/*
 * Prints the spec of the PrometheusRule in FILE as a Prometheus rule file
 * (YAML: groups), for promtool. Exits 1 if FILE holds no PrometheusRule.
 *
 *   node extract-rules.js examples/monitoring/rules/prometheusrule.yaml
 *   node extract-rules.js --check-tests TESTS FILE
 *
 * With --check-tests, prints nothing on stdout but checks that the promtool
 * test file TESTS shows every alert of FILE firing (a non-empty exp_alerts)
 * in a test whose name contains "0.2 queries/s" (the rate of one quiet pod),
 * and silent (an empty exp_alerts) both in a test whose name contains
 * "healthy idle" and in one whose name contains "healthy but imperfect";
 * exits 1 naming each alert that lacks one.
 */
const fs = require('fs');
const yaml = require('js-yaml');

let tests = null;
const argv = process.argv.slice(2);
if (argv[0] === '--check-tests') {
	argv.shift();
	tests = argv.shift();
}
const file = argv[0];
if (!file || (tests !== null && !tests)) {
	process.stderr.write('usage: extract-rules.js [--check-tests TESTS] FILE\n');
	process.exit(2);
}
const rule = yaml.loadAll(fs.readFileSync(file, 'utf8'))
    .find((d) => d && d.kind === 'PrometheusRule');
if (!rule || !rule.spec || !Array.isArray(rule.spec.groups)) {
	process.stderr.write(`extract-rules.js: no PrometheusRule with spec.groups in ${file}\n`);
	process.exit(1);
}
if (tests === null) {
	process.stdout.write(yaml.dump({ groups: rule.spec.groups },
	    { lineWidth: -1 }));
	process.exit(0);
}
const t = yaml.load(fs.readFileSync(tests, 'utf8'));
const fires = new Set();
const silentIdle = new Set();
const silentImperfect = new Set();
for (const tc of t.tests || [])
	for (const a of tc.alert_rule_test || []) {
		const name = tc.name || '';
		if ((a.exp_alerts || []).length) {
			if (name.includes('0.2 queries/s'))
				fires.add(a.alertname);
		} else if (name.includes('healthy idle')) {
			silentIdle.add(a.alertname);
		} else if (name.includes('healthy but imperfect')) {
			silentImperfect.add(a.alertname);
		}
	}
let bad = 0;
for (const g of rule.spec.groups)
	for (const r of g.rules || []) {
		if (!r.alert)
			continue;
		if (!fires.has(r.alert)) {
			bad++;
			process.stderr.write(`${r.alert}: no unit test shows it firing ` +
			    'at 0.2 queries/s\n');
		}
		if (!silentImperfect.has(r.alert)) {
			bad++;
			process.stderr.write(`${r.alert}: no unit test shows it silent ` +
			    'on a healthy but imperfect proxy\n');
		}
		if (!silentIdle.has(r.alert)) {
			bad++;
			process.stderr.write(`${r.alert}: no unit test shows it silent ` +
			    'on a healthy idle proxy\n');
		}
	}
process.exit(bad ? 1 : 0);
