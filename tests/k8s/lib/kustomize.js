'use strict';
/*
 * kustomize, the real one: `kubectl kustomize DIR` renders a kustomization
 * (kubectl embeds kustomize; it needs no cluster and no network). This
 * module finds every kustomization under a directory, reads what each one
 * refers to, and renders them.
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

const NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

function isKustomizationFile(file) {
	return NAMES.includes(path.basename(file));
}

/* Every kustomization file under dir, sorted; node_modules skipped. */
function findKustomizations(dir) {
	const out = [];
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, e.name);
		if (e.isDirectory() && e.name !== 'node_modules' && e.name[0] !== '.')
			out.push(...findKustomizations(p));
		else if (e.isFile() && isKustomizationFile(p))
			out.push(p);
	}
	return out.sort();
}

/* The kustomization in file, parsed; throws on a YAML error. */
function load(file) {
	const k = yaml.load(fs.readFileSync(file, 'utf8'));
	if (!k || typeof k !== 'object')
		throw new Error('empty or not a mapping');
	return k;
}

function isComponent(k) {
	return k.kind === 'Component';
}

/* What a kustomization refers to, as absolute paths: resource files,
 * resource directories, component directories and patch files. */
function refs(file, k) {
	const dir = path.dirname(file);
	const abs = (p) => path.resolve(dir, p);
	const r = { files: [], dirs: [], components: [], patches: [] };
	for (const x of k.resources || []) {
		if (typeof x !== 'string' || /^[a-z]+:\/\//.test(x))
			continue;
		const p = abs(x);
		if (fs.existsSync(p) && fs.statSync(p).isDirectory())
			r.dirs.push(p);
		else
			r.files.push(p);
	}
	for (const x of k.components || [])
		if (typeof x === 'string')
			r.components.push(abs(x));
	for (const x of k.patches || [])
		if (x && typeof x.path === 'string')
			r.patches.push(abs(x.path));
	for (const x of k.patchesStrategicMerge || [])
		if (typeof x === 'string' && !x.includes('\n'))
			r.patches.push(abs(x));
	for (const x of k.patchesJson6902 || [])
		if (x && typeof x.path === 'string')
			r.patches.push(abs(x.path));
	return r;
}

/* kubectl, if there is one: { ok, version } or { ok: false, why }. */
function kubectlInfo() {
	const r = spawnSync('kubectl', ['version', '--client', '-o', 'json'],
	    { encoding: 'utf8' });
	if (r.error)
		return { ok: false, why: `kubectl not found (${r.error.code})` };
	if (r.status !== 0)
		return { ok: false, why: `kubectl version failed: ${r.stderr.trim()}` };
	try {
		const v = JSON.parse(r.stdout);
		return { ok: true, version: `kubectl ${v.clientVersion.gitVersion}, ` +
		    `kustomize ${v.kustomizeVersion || '?'}` };
	} catch (e) {
		return { ok: true, version: 'kubectl (version unknown)' };
	}
}

/* Renders dir with kubectl kustomize: the list of objects. Throws with
 * kustomize's own message when it fails. */
function render(dir) {
	const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8',
		maxBuffer: 64 << 20 });
	if (r.error)
		throw new Error(`kubectl: ${r.error.message}`);
	if (r.status !== 0) {
		const msg = r.stderr.trim().split('\n').map((l) =>
		    l.replace(/^E\d{4} [0-9:.]+ +\d+ [a-z_.]+:\d+\] /, ''))
		    .join(' / ');
		throw new Error(msg || `kubectl kustomize exited ${r.status}`);
	}
	return yaml.loadAll(r.stdout).filter((d) => d !== null && d !== undefined);
}

function podSpecs(o) {
	if (!o || !o.spec)
		return [];
	if (o.kind === 'Pod')
		return [o.spec];
	if (o.kind === 'CronJob' && o.spec.jobTemplate && o.spec.jobTemplate.spec &&
	    o.spec.jobTemplate.spec.template)
		return [o.spec.jobTemplate.spec.template.spec];
	if (o.spec.template && o.spec.template.spec)
		return [o.spec.template.spec];
	return [];
}

/* The pod template's metadata (labels, annotations), or {}. */
function podMeta(o) {
	if (o.kind === 'Pod')
		return o.metadata || {};
	if (o.kind === 'CronJob')
		return ((o.spec.jobTemplate || {}).spec || {}).template ?
		    o.spec.jobTemplate.spec.template.metadata || {} : {};
	return (o.spec && o.spec.template && o.spec.template.metadata) || {};
}

function containersOf(spec) {
	return [...(spec.initContainers || []), ...(spec.containers || [])];
}

module.exports = { findKustomizations, load, isComponent, refs, render,
	kubectlInfo, isKustomizationFile, podSpecs, podMeta, containersOf };
