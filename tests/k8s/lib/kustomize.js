'use strict';
/*
 * A small, strict stand-in for `kubectl kustomize`, for the subset the
 * examples use (kustomize itself is not installable offline here):
 * resources (files and directories), components, namespace,
 * configMapGenerator (literals; behavior create/merge/replace) and images.
 * Any other field is an error, so the examples cannot quietly grow a feature
 * this renderer would ignore.
 *
 * As kustomize does, a generated ConfigMap gets a content-hash suffix and the
 * references to it (envFrom, env valueFrom, volumes) in the same namespace
 * are rewritten. The suffix is our own hash, not kustomize's byte-for-byte.
 */
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

const KUSTOMIZATION = {
	apiVersion: 'kustomize.config.k8s.io/v1beta1',
	kind: 'Kustomization',
};
const COMPONENT = {
	apiVersion: 'kustomize.config.k8s.io/v1alpha1',
	kind: 'Component',
};
const FIELDS = ['apiVersion', 'kind', 'namespace', 'resources', 'components',
	'configMapGenerator', 'images'];
const GEN_FIELDS = ['name', 'namespace', 'behavior', 'literals'];
const IMAGE_FIELDS = ['name', 'newName', 'newTag', 'digest'];
const CLUSTER_SCOPED = new Set(['Namespace']);
const HASH = Symbol('needsHash');
const ORIG = Symbol('originalName');

function isKustomizationFile(file) {
	return path.basename(file) === 'kustomization.yaml';
}

function load(dir) {
	const file = path.join(dir, 'kustomization.yaml');
	if (!fs.existsSync(file))
		throw new Error(`${dir}: no kustomization.yaml`);
	const k = yaml.load(fs.readFileSync(file, 'utf8'));
	if (k === null || typeof k !== 'object' || Array.isArray(k))
		throw new Error(`${file}: not a mapping`);
	return { file, k };
}

/* Structural errors of one kustomization.yaml (keys, types, paths). */
function lint(dir) {
	const errs = [];
	let file, k;
	try {
		({ file, k } = load(dir));
	} catch (e) {
		return [e.message];
	}
	const isComp = k.kind === COMPONENT.kind;
	const want = isComp ? COMPONENT : KUSTOMIZATION;
	if (k.apiVersion !== want.apiVersion || k.kind !== want.kind)
		errs.push(`${file}: apiVersion/kind must be ${want.apiVersion} ` +
		    `${want.kind} (got ${k.apiVersion} ${k.kind})`);
	for (const key of Object.keys(k))
		if (!FIELDS.includes(key))
			errs.push(`${file}: unsupported or unknown field "${key}"`);
	for (const key of ['resources', 'components', 'configMapGenerator', 'images'])
		if (k[key] !== undefined && !Array.isArray(k[key]))
			errs.push(`${file}: ${key} must be a list`);
	for (const r of k.resources || []) {
		const p = path.resolve(dir, String(r));
		if (!fs.existsSync(p))
			errs.push(`${file}: resource ${r} does not exist`);
		else if (fs.statSync(p).isDirectory() &&
		    !fs.existsSync(path.join(p, 'kustomization.yaml')))
			errs.push(`${file}: resource ${r} has no kustomization.yaml`);
	}
	for (const c of k.components || []) {
		const p = path.resolve(dir, String(c));
		if (!fs.existsSync(path.join(p, 'kustomization.yaml')))
			errs.push(`${file}: component ${c} has no kustomization.yaml`);
	}
	for (const g of k.configMapGenerator || []) {
		for (const key of Object.keys(g || {}))
			if (!GEN_FIELDS.includes(key))
				errs.push(`${file}: configMapGenerator: unknown field "${key}"`);
		if (!g || typeof g.name !== 'string')
			errs.push(`${file}: configMapGenerator entry without a name`);
		if (g && g.behavior !== undefined &&
		    !['create', 'merge', 'replace'].includes(g.behavior))
			errs.push(`${file}: configMapGenerator: bad behavior ${g.behavior}`);
		for (const l of (g && g.literals) || [])
			if (typeof l !== 'string' || !/^[A-Za-z0-9_.-]+=/.test(l))
				errs.push(`${file}: configMapGenerator: bad literal ${l}`);
	}
	for (const i of k.images || []) {
		for (const key of Object.keys(i || {}))
			if (!IMAGE_FIELDS.includes(key))
				errs.push(`${file}: images: unknown field "${key}"`);
		if (!i || typeof i.name !== 'string')
			errs.push(`${file}: images entry without a name`);
	}
	return errs;
}

function id(o) {
	return `${o.kind}/${(o.metadata && o.metadata.namespace) || ''}/` +
	    `${o[ORIG] || o.metadata.name}`;
}

function podSpecs(o) {
	if (o.kind === 'Pod')
		return [o.spec];
	if (o.spec && o.spec.template && o.spec.template.spec)
		return [o.spec.template.spec];
	return [];
}

function containersOf(spec) {
	return [...(spec.initContainers || []), ...(spec.containers || [])];
}

function literalsToData(lits) {
	const data = {};
	for (const l of lits || []) {
		const i = l.indexOf('=');
		data[l.slice(0, i)] = l.slice(i + 1);
	}
	return data;
}

function generate(list, k, file) {
	for (const g of k.configMapGenerator || []) {
		const ns = g.namespace || k.namespace;
		const behavior = g.behavior || 'create';
		const want = `ConfigMap/${ns || ''}/${g.name}`;
		const old = list.find((o) => id(o) === want);
		const data = literalsToData(g.literals);
		if (behavior === 'create') {
			if (old)
				throw new Error(`${file}: ${want} already exists`);
			const cm = {
				apiVersion: 'v1',
				kind: 'ConfigMap',
				metadata: { name: g.name },
				data,
			};
			if (ns)
				cm.metadata.namespace = ns;
			cm[HASH] = true;
			list.push(cm);
		} else {
			if (!old)
				throw new Error(`${file}: behavior ${behavior}: ` +
				    `no ${want} to ${behavior}`);
			old.data = behavior === 'merge' ?
			    { ...(old.data || {}), ...data } : data;
		}
	}
}

function setNamespace(list, ns) {
	for (const o of list) {
		if (CLUSTER_SCOPED.has(o.kind))
			continue;
		o.metadata = o.metadata || {};
		o.metadata.namespace = ns;
	}
}

function setImages(list, images) {
	for (const o of list)
		for (const spec of podSpecs(o))
			for (const c of containersOf(spec)) {
				const m = /^([^@:]+(?::[0-9]+\/[^@:]+)?)(?::([^@]+))?(?:@(.+))?$/
				    .exec(c.image || '');
				if (!m)
					continue;
				const img = images.find((i) => i.name === m[1]);
				if (!img)
					continue;
				let out = img.newName || m[1];
				if (img.digest)
					out += `@${img.digest}`;
				else if (img.newTag)
					out += `:${img.newTag}`;
				else if (m[2])
					out += `:${m[2]}`;
				c.image = out;
			}
}

function build(dir, want, stack) {
	const { file, k } = load(dir);
	const real = fs.realpathSync(dir);
	if (stack.includes(real))
		throw new Error(`${file}: cycle through ${dir}`);
	if (k.kind !== want.kind)
		throw new Error(`${file}: expected a ${want.kind}, found ${k.kind}`);
	const errs = lint(dir);
	if (errs.length)
		throw new Error(errs.join('; '));
	const next = [...stack, real];
	let list = [];
	for (const r of k.resources || []) {
		const p = path.resolve(dir, r);
		let got;
		if (fs.statSync(p).isDirectory())
			got = build(p, KUSTOMIZATION, next);
		else
			got = yaml.loadAll(fs.readFileSync(p, 'utf8'))
			    .filter((d) => d !== null && d !== undefined);
		for (const o of got) {
			if (list.some((x) => id(x) === id(o)))
				throw new Error(`${file}: ${id(o)} appears twice`);
			list.push(o);
		}
	}
	for (const c of k.components || [])
		list = applyComponent(path.resolve(dir, c), list, next);
	generate(list, k, file);
	if (k.namespace)
		setNamespace(list, k.namespace);
	if (k.images)
		setImages(list, k.images);
	return list;
}

function applyComponent(dir, list, stack) {
	const { file, k } = load(dir);
	if (k.kind !== COMPONENT.kind)
		throw new Error(`${file}: listed as a component but is a ${k.kind}`);
	const errs = lint(dir);
	if (errs.length)
		throw new Error(errs.join('; '));
	for (const r of k.resources || [])
		list.push(...build(path.resolve(dir, r), KUSTOMIZATION, stack));
	generate(list, k, file);
	if (k.namespace)
		setNamespace(list, k.namespace);
	if (k.images)
		setImages(list, k.images);
	return list;
}

/* Hash suffixes and the references to them, once, at the top. */
function finish(list) {
	const renames = new Map();
	for (const o of list) {
		if (!o[HASH])
			continue;
		const h = crypto.createHash('sha256')
		    .update(JSON.stringify({ kind: o.kind, data: o.data }))
		    .digest('hex').slice(0, 10);
		o[ORIG] = o.metadata.name;
		o.metadata.name = `${o.metadata.name}-${h}`;
		renames.set(`${o.metadata.namespace || ''}/${o[ORIG]}`,
		    o.metadata.name);
	}
	const fix = (ns, ref) => {
		if (ref && renames.has(`${ns}/${ref.name}`))
			ref.name = renames.get(`${ns}/${ref.name}`);
	};
	for (const o of list) {
		const ns = (o.metadata && o.metadata.namespace) || '';
		for (const spec of podSpecs(o)) {
			for (const c of containersOf(spec)) {
				for (const e of c.envFrom || [])
					fix(ns, e.configMapRef);
				for (const e of c.env || [])
					fix(ns, e.valueFrom && e.valueFrom.configMapKeyRef);
			}
			for (const v of spec.volumes || [])
				fix(ns, v.configMap);
		}
	}
	return list;
}

/* Renders the kustomization in dir to a list of plain objects. */
function render(dir) {
	const list = finish(build(dir, KUSTOMIZATION, []));
	return JSON.parse(JSON.stringify(list));
}

module.exports = { render, lint, isKustomizationFile, podSpecs, containersOf };
