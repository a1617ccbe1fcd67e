#!/usr/bin/env node
'use strict';
/*
 * Checks that every dotproxy series a dashboard or an alert queries is one a
 * running proxy exports: each selector `dotproxy_name{label="value",...}`
 * (and the standard `process_name{...}`) in
 * the PromQL of FILEs must match at least one sample of SCRAPE (a /metrics
 * body). Labels Prometheus adds at scrape time (namespace, pod, job,
 * instance, ...) and values with Grafana variables ($pod) are not checked.
 *
 *   node series.js [--gap PREFIX] SCRAPE FILE...
 *
 * FILE is a Grafana dashboard (.json: every target expr and templating
 * query) or a PrometheusRule / rule file (.yaml: every expr). --gap PREFIX
 * reports series starting with PREFIX as an expected gap ("# gap") instead
 * of a failure (used when the proxy under test predates them). Prints one
 * ok / not ok line per distinct selector; exits 1 if any is missing.
 */
const fs = require('fs');
const yaml = require('js-yaml');

const TARGET_LABELS = new Set(['namespace', 'pod', 'job', 'instance',
	'container', 'endpoint', 'service', 'node', 'le_bucket']);

function usage() {
	process.stderr.write('usage: series.js [--gap PREFIX] SCRAPE FILE...\n');
	process.exit(2);
}

const args = process.argv.slice(2);
const gaps = [];
while (args[0] === '--gap') {
	args.shift();
	if (!args.length)
		usage();
	gaps.push(args.shift());
}
if (args.length < 2)
	usage();
const [scrapeFile, ...files] = args;

/* name -> [ {label: value} ] from the exposition text. */
function parseScrape(text) {
	const m = new Map();
	for (const line of text.split('\n')) {
		if (line === '' || line[0] === '#')
			continue;
		const x = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+/.exec(line);
		if (!x)
			continue;
		const labels = {};
		const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
		let l;
		while ((l = re.exec(x[3] || '')) !== null)
			labels[l[1]] = l[2].replace(/\\(.)/g, (s, c) => (c === 'n' ? '\n' : c));
		if (!m.has(x[1]))
			m.set(x[1], []);
		m.get(x[1]).push(labels);
	}
	return m;
}

/* Every PromQL expression in a dashboard or rule file. */
function exprs(file) {
	const text = fs.readFileSync(file, 'utf8');
	const out = [];
	const walk = (v, key) => {
		if (Array.isArray(v))
			v.forEach((x) => walk(x, key));
		else if (v && typeof v === 'object')
			for (const [k, x] of Object.entries(v))
				walk(x, k);
		else if (typeof v === 'string' && ['expr', 'query', 'definition']
		    .includes(key))
			out.push(v);
	};
	if (/\.json$/.test(file))
		walk(JSON.parse(text));
	else
		yaml.loadAll(text).forEach((d) => walk(d));
	return out;
}

function selectors(expr) {
	const out = [];
	const re = /\b((?:dotproxy|process)_[a-zA-Z0-9_]+)\s*(\{([^}]*)\})?/g;
	let m;
	while ((m = re.exec(expr)) !== null) {
		const matchers = [];
		const mr = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
		let x;
		while ((x = mr.exec(m[3] || '')) !== null)
			matchers.push({ label: x[1], op: x[2], value: x[3] });
		out.push({ name: m[1], matchers, text: m[0].replace(/\s+/g, '') });
	}
	return out;
}

function matches(labels, ms) {
	return ms.every(({ label, op, value }) => {
		if (TARGET_LABELS.has(label) || value.includes('$'))
			return true;
		const v = labels[label] ?? '';
		if (op === '=')
			return v === value;
		if (op === '!=')
			return v !== value;
		const re = new RegExp(`^(?:${value})$`);
		return op === '=~' ? re.test(v) : !re.test(v);
	});
}

const scrape = parseScrape(fs.readFileSync(scrapeFile, 'utf8'));
let bad = 0;
let good = 0;
let gap = 0;
const seen = new Set();
for (const f of files)
	for (const e of exprs(f))
		for (const s of selectors(e)) {
			const key = `${s.name}{${s.matchers.filter((m) =>
			    !TARGET_LABELS.has(m.label) && !m.value.includes('$'))
			    .map((m) => `${m.label}${m.op}"${m.value}"`).join(',')}}`;
			if (seen.has(key))
				continue;
			seen.add(key);
			const samples = scrape.get(s.name) || [];
			if (samples.some((l) => matches(l, s.matchers))) {
				good++;
				console.log(`ok - series: ${key}`);
			} else if (gaps.some((p) => s.name.startsWith(p))) {
				gap++;
				console.log(`ok - series: ${key} # gap: the proxy under ` +
				    'test does not export it yet');
			} else {
				bad++;
				console.log(`not ok - series: ${key} (queried in ${f}) is ` +
				    (samples.length ? 'exported, but no sample has those ' +
				    'labels' : 'not exported by the running proxy'));
			}
		}
console.log(`# series: ${good} exported, ${gap} expected gaps, ${bad} missing`);
process.exitCode = bad || seen.size === 0 ? 1 : 0;
