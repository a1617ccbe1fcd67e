#!/usr/bin/env node
'use strict';
/*
 * Offline validation of examples/kubernetes/ (see tests/k8s/validate.sh).
 *
 *   node validate.js [--root DIR] [--only GROUP,...]   run the checks
 *   node validate.js [--root DIR] --render SUBDIR       print the rendered
 *                                                       kustomization as YAML
 *
 * Groups: yaml, schema, strict, kustomize, sidecar, node-local, pss.
 * Prints one "ok"/"not ok" line per check and exits 1 if any failed.
 */
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const { schemaErrors, unknownKeys } = require('./lib/schema');
const kz = require('./lib/kustomize');
const { checkSidecar, checkNodeLocal } = require('./lib/dotproxy');
const pss = require('./lib/pss');

const GROUPS = ['yaml', 'schema', 'strict', 'kustomize', 'sidecar',
	'node-local', 'pss'];

function usage(msg) {
	if (msg)
		process.stderr.write(`validate.js: ${msg}\n`);
	process.stderr.write('usage: validate.js [--root DIR] [--only ' +
	    `${GROUPS.join(',')}] | [--root DIR] --render SUBDIR\n`);
	process.exit(2);
}

function parseArgs(argv) {
	const o = {
		root: path.resolve(__dirname, '../../examples/kubernetes'),
		only: GROUPS,
		render: null,
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const v = () => (i + 1 < argv.length ? argv[++i] : usage(`${a}: value?`));
		if (a === '--root')
			o.root = path.resolve(v());
		else if (a === '--only')
			o.only = v().split(',');
		else if (a === '--render')
			o.render = v();
		else
			usage(`unknown argument ${a}`);
	}
	for (const g of o.only)
		if (!GROUPS.includes(g))
			usage(`unknown group ${g}`);
	return o;
}

function yamlFiles(dir) {
	const out = [];
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, e.name);
		if (e.isDirectory())
			out.push(...yamlFiles(p));
		else if (/\.ya?ml$/.test(e.name))
			out.push(p);
	}
	return out.sort();
}

let passed = 0;
let failed = 0;

function report(group, name, errs) {
	if (errs.length === 0) {
		passed++;
		console.log(`ok - ${group}: ${name}`);
		return;
	}
	failed++;
	console.log(`not ok - ${group}: ${name}`);
	for (const e of errs)
		console.log(`#   ${e}`);
}

function main() {
	const o = parseArgs(process.argv.slice(2));
	const rel = (p) => path.relative(o.root, p) || '.';
	if (!fs.existsSync(o.root))
		usage(`${o.root} does not exist`);

	if (o.render) {
		const list = kz.render(path.resolve(o.root, o.render));
		process.stdout.write(list.map((x) => yaml.dump(x, { noRefs: true }))
		    .join('---\n'));
		return 0;
	}

	const want = (g) => o.only.includes(g);
	const files = yamlFiles(o.root);
	const kfiles = files.filter(kz.isKustomizationFile);
	const mfiles = files.filter((f) => !kz.isKustomizationFile(f));

	/* yaml: every file parses; every manifest document is an object with
	 * apiVersion, kind and metadata.name. */
	const docs = [];
	for (const f of mfiles) {
		const errs = [];
		let n = 0;
		try {
			for (const d of yaml.loadAll(fs.readFileSync(f, 'utf8'))) {
				n++;
				if (d === null || d === undefined) {
					errs.push(`document ${n} is empty`);
					continue;
				}
				if (typeof d !== 'object' || Array.isArray(d) ||
				    typeof d.apiVersion !== 'string' ||
				    typeof d.kind !== 'string' ||
				    !d.metadata || typeof d.metadata.name !== 'string') {
					errs.push(`document ${n}: needs apiVersion, kind, ` +
					    'metadata.name');
					continue;
				}
				docs.push({ file: f, n, d });
			}
			if (n === 0)
				errs.push('no documents');
		} catch (e) {
			errs.push(e.message);
		}
		if (want('yaml'))
			report('yaml', rel(f), errs);
	}
	for (const f of kfiles) {
		const errs = [];
		try {
			yaml.load(fs.readFileSync(f, 'utf8'));
		} catch (e) {
			errs.push(e.message);
		}
		if (want('yaml'))
			report('yaml', rel(f), errs);
	}

	/* schema + strict on every document of every manifest file. */
	for (const { file, n, d } of docs) {
		const name = `${rel(file)}#${n} ${d.kind}/${d.metadata.name}`;
		if (want('schema'))
			report('schema', name, schemaErrors(d));
		if (want('strict'))
			report('strict', name, unknownKeys(d).map((k) =>
			    `unknown key ${k}`));
	}

	/* kustomize: each kustomization.yaml is well-formed and every
	 * Kustomization renders; the rendered objects pass schema and strict
	 * too; generated ConfigMaps are referenced and references resolve. */
	const rendered = {};
	for (const f of kfiles) {
		const dir = path.dirname(f);
		const errs = kz.lint(dir);
		let isComp = false;
		try {
			isComp = yaml.load(fs.readFileSync(f, 'utf8')).kind === 'Component';
		} catch (e) {
			/* reported by the yaml group */
		}
		if (!isComp && errs.length === 0) {
			try {
				const list = kz.render(dir);
				rendered[rel(dir)] = list;
				errs.push(...renderedErrors(list));
			} catch (e) {
				errs.push(`render: ${e.message}`);
			}
		}
		if (want('kustomize'))
			report('kustomize', rel(f), errs);
	}
	if (want('kustomize')) {
		/* Every manifest file is reachable from some kustomization. */
		const used = new Set();
		for (const f of kfiles) {
			try {
				const k = yaml.load(fs.readFileSync(f, 'utf8'));
				for (const r of k.resources || [])
					used.add(path.resolve(path.dirname(f), r));
			} catch (e) {
				/* reported above */
			}
		}
		report('kustomize', 'every manifest file is listed in a ' +
		    'kustomization', mfiles.filter((f) => !used.has(f))
		    .map((f) => `${rel(f)} is in no kustomization's resources`));
		report('kustomize', 'overlays/quad9 changes only the upstream',
		    overlayErrors(rendered));
	}

	/* Mode assertions on the rendered bases. */
	const modes = [['sidecar', checkSidecar], ['node-local', checkNodeLocal]];
	for (const [m, check] of modes) {
		if (!want(m))
			continue;
		const list = rendered[m];
		let errs;
		try {
			errs = list ? check(list) : [`${m}/ did not render`];
		} catch (e) {
			errs = [`check crashed (malformed manifest?): ${e.message}`];
		}
		report(m, `${m}/ security, order, probes, flags`, errs);
	}

	/* pss: the level each namespace enforces admits its pods, and the
	 * levels are the ones the README states. */
	if (want('pss')) {
		const all = rendered['.'] || [];
		report('pss', 'each pod meets its namespace\'s enforce level',
		    pssErrors(all));
		report('pss', 'documented levels: sidecar privileged (NET_ADMIN ' +
		    'only), node-local restricted', pssClaims(all));
	}

	console.log(`# k8s validation: ${passed} checks ok, ${failed} failed`);
	return failed ? 1 : 0;
}

function renderedErrors(list) {
	const errs = [];
	const ids = new Set();
	for (const d of list) {
		const name = `${d.kind}/${d.metadata.namespace || ''}/${d.metadata.name}`;
		if (ids.has(name))
			errs.push(`${name} rendered twice`);
		ids.add(name);
		for (const e of schemaErrors(d))
			errs.push(`${name}: ${e}`);
		for (const k of unknownKeys(d))
			errs.push(`${name}: unknown key ${k}`);
		if (d.kind !== 'Namespace' && !d.metadata.namespace)
			errs.push(`${name}: no namespace`);
		for (const spec of kz.podSpecs(d))
			for (const c of kz.containersOf(spec))
				for (const ref of [
					...(c.envFrom || []).map((x) => x.configMapRef),
					...(c.env || []).map((x) => x.valueFrom &&
					    x.valueFrom.configMapKeyRef)])
					if (ref && !ref.optional && !list.some((x) =>
					    x.kind === 'ConfigMap' &&
					    x.metadata.name === ref.name &&
					    x.metadata.namespace === d.metadata.namespace))
						errs.push(`${name}: ${c.name} refers to ConfigMap ` +
						    `${ref.name}, which is not rendered`);
	}
	for (const d of list)
		if (d.kind === 'Namespace' && !list.some((x) =>
		    x.metadata.namespace === d.metadata.name))
			errs.push(`Namespace ${d.metadata.name} holds nothing`);
	return errs;
}

function cms(list) {
	return (list || []).filter((x) => x.kind === 'ConfigMap');
}

function overlayErrors(rendered) {
	const base = rendered['.'];
	const q = rendered['overlays/quad9'];
	if (!base || !q)
		return ['. or overlays/quad9 did not render'];
	const errs = [];
	if (cms(q).length !== 2)
		errs.push(`expected 2 ConfigMaps, got ${cms(q).length}`);
	for (const cm of cms(q)) {
		const b = cms(base).find((x) =>
		    x.metadata.namespace === cm.metadata.namespace);
		const up = cm.data.DOTPROXY_UPSTREAM || '';
		if (!/^9\.9\.9\.9@853#dns\.quad9\.net/.test(up))
			errs.push(`${cm.metadata.namespace}: upstream is ${up}`);
		if (!b)
			continue;
		if (b.metadata.name === cm.metadata.name)
			errs.push(`${cm.metadata.namespace}: ConfigMap name did not ` +
			    'change with its content, pods would not roll');
		const bk = Object.keys(b.data).filter((k) =>
		    k !== 'DOTPROXY_UPSTREAM');
		for (const k of bk)
			if (b.data[k] !== cm.data[k])
				errs.push(`${cm.metadata.namespace}: ${k} changed too`);
	}
	const strip = (l) => JSON.stringify(l.filter((x) => x.kind !==
	    'ConfigMap').map((x) => JSON.stringify(x)
	    .replace(/dotproxy-config-[0-9a-f]{10}/g, 'dotproxy-config')));
	if (strip(base) !== strip(q))
		errs.push('objects other than the ConfigMaps differ');
	return errs;
}

function nsLevel(list, ns) {
	const n = list.find((x) => x.kind === 'Namespace' &&
	    x.metadata.name === ns);
	return n && n.metadata.labels &&
	    n.metadata.labels['pod-security.kubernetes.io/enforce'];
}

function pssErrors(list) {
	const errs = [];
	if (list.length === 0)
		return ['the top-level kustomization did not render'];
	for (const d of list)
		for (const spec of kz.podSpecs(d)) {
			const lvl = nsLevel(list, d.metadata.namespace);
			const w = `${d.kind}/${d.metadata.namespace}/${d.metadata.name}`;
			if (!['privileged', 'baseline', 'restricted'].includes(lvl)) {
				errs.push(`${w}: namespace has no enforce label`);
				continue;
			}
			for (const v of pss.violations(lvl, spec))
				errs.push(`${w}: ${lvl}: ${v}`);
		}
	return errs;
}

function pssClaims(list) {
	const errs = [];
	for (const d of list)
		for (const spec of kz.podSpecs(d)) {
			const ns = d.metadata.namespace;
			const w = `${d.kind}/${ns}/${d.metadata.name}`;
			const hasInit = (spec.initContainers || []).some((c) =>
			    /dotproxy-init$/.test((c.command || []).join(' ')) &&
			    !(c.args || []).includes('--validate'));
			if (hasInit) {
				if (nsLevel(list, ns) !== 'privileged')
					errs.push(`${w}: sidecar mode needs a privileged ` +
					    'namespace');
				/* Only NET_ADMIN on dotproxy-init keeps it from baseline,
				 * and only that container from restricted. */
				const b = pss.baseline(spec);
				if (b.length !== 1 || !/dotproxy-init: adds capability NET_ADMIN$/.test(b[0]))
					errs.push(`${w}: baseline violations other than ` +
					    `NET_ADMIN: ${JSON.stringify(b)}`);
				const r = pss.restricted(spec).filter((v) =>
				    !/^container dotproxy-init: /.test(v));
				if (r.length)
					errs.push(`${w}: restricted violations outside ` +
					    `dotproxy-init: ${JSON.stringify(r)}`);
			} else {
				if (nsLevel(list, ns) !== 'restricted')
					errs.push(`${w}: namespace should enforce restricted`);
				const r = pss.restricted(spec);
				if (r.length)
					errs.push(`${w}: not restricted: ${JSON.stringify(r)}`);
			}
		}
	return errs;
}

process.exitCode = main();
