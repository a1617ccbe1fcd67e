'use strict';
/*
 * Kubernetes schema checks for one object, offline.
 *
 * schemaErrors(): the kubernetes-models class for apiVersion/kind, and its
 * validate(), which runs the ajv validator the package compiled from the
 * Kubernetes OpenAPI definitions (kubernetes-models 4.5.1: Kubernetes 1.33,
 * so initContainers[].restartPolicy, the native sidecar field, is known).
 *
 * unknownKeys(): those OpenAPI schemas do not forbid additional properties,
 * so a misspelled key (securityContxt) would pass. We run the same compiled
 * validator on a Proxy of the object and record every property it reads: the
 * validator reads each property its schema declares (and every key of a map
 * such as labels or resources.limits). A key the validator never read is not
 * in the schema, at whatever depth it sits.
 */
const fs = require('fs');
const path = require('path');

/* Third-party API groups and the npm package that models them; everything
 * else comes from kubernetes-models (the Kubernetes 1.33 API). */
const CRD_PACKAGES = {
	'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

function kindKey(obj) {
	return `${obj.apiVersion}/${obj.kind}`;
}

/* The module that holds the class for apiVersion/kind, or null. */
function modulePath(obj) {
	if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' ||
	    !/^[A-Za-z0-9.\/-]+$/.test(obj.apiVersion) ||
	    !/^[A-Za-z0-9]+$/.test(obj.kind))
		return null;
	const group = obj.apiVersion.includes('/') ?
	    obj.apiVersion.split('/')[0] : '';
	const pkg = CRD_PACKAGES[group] || 'kubernetes-models';
	try {
		return require.resolve(`${pkg}/${obj.apiVersion}/${obj.kind}`);
	} catch (e) {
		return null;
	}
}

function known(obj) {
	return modulePath(obj) !== null;
}

function modelClass(obj) {
	return require(modulePath(obj))[obj.kind];
}

/* The compiled ajv validator the class module uses: its source names the
 * schema module it requires (_schemas/<Name>.js). */
function schemaFunc(obj) {
	const mod = modulePath(obj);
	const m = /require\("([./]*_schemas\/[A-Za-z0-9]+\.js)"\)/.exec(
	    fs.readFileSync(mod, 'utf8'));
	if (!m)
		throw new Error(`no schema reference in ${mod}`);
	return require(path.resolve(path.dirname(mod), m[1])).validate;
}

/* Returns a list of messages; empty when the object is valid. */
function schemaErrors(obj) {
	if (!known(obj))
		return [`unsupported apiVersion/kind ${kindKey(obj)}`];
	const Cls = modelClass(obj);
	try {
		new Cls(obj).validate();
	} catch (e) {
		return [String(e.message || e)];
	}
	return [];
}

/* Returns the JSON paths of keys the schema does not declare. */
function unknownKeys(obj) {
	if (!known(obj))
		return [`/ (unsupported ${kindKey(obj)})`];
	const seen = new Map();
	const where = new Map();
	const proxies = new Map();
	const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

	function wrap(v, p) {
		if (v === null || typeof v !== 'object')
			return v;
		if (proxies.has(v))
			return proxies.get(v);
		seen.set(v, new Set());
		where.set(v, p);
		const px = new Proxy(v, {
			get(t, k, r) {
				const x = Reflect.get(t, k, r);
				if (typeof k !== 'string' || !own(t, k))
					return x;
				seen.get(t).add(k);
				return wrap(x, `${p}/${k}`);
			},
		});
		proxies.set(v, px);
		return px;
	}

	const fn = schemaFunc(obj);
	fn(wrap(obj, ''));
	const out = [];
	for (const [v, s] of seen) {
		if (Array.isArray(v))
			continue;
		for (const k of Object.keys(v))
			if (!s.has(k))
				out.push(`${where.get(v)}/${k}`);
	}
	/* Objects never reached (under an unknown key) are not listed again. */
	return out.sort();
}

module.exports = { schemaErrors, unknownKeys, known };
