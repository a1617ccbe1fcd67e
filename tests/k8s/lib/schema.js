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
const path = require('path');

/* apiVersion/kind -> [class module, schema module]. Only what the examples
 * use; anything else is reported rather than silently skipped. */
const KINDS = {
	'v1/Namespace': ['v1/Namespace', 'IoK8sApiCoreV1Namespace'],
	'v1/ConfigMap': ['v1/ConfigMap', 'IoK8sApiCoreV1ConfigMap'],
	'v1/Service': ['v1/Service', 'IoK8sApiCoreV1Service'],
	'v1/Pod': ['v1/Pod', 'IoK8sApiCoreV1Pod'],
	'apps/v1/Deployment': ['apps/v1/Deployment', 'IoK8sApiAppsV1Deployment'],
	'apps/v1/DaemonSet': ['apps/v1/DaemonSet', 'IoK8sApiAppsV1DaemonSet'],
};

const PKG_ROOT = path.resolve(path.dirname(
    require.resolve('kubernetes-models/v1/Namespace')), '..');

function kindKey(obj) {
	return `${obj.apiVersion}/${obj.kind}`;
}

function known(obj) {
	return Object.prototype.hasOwnProperty.call(KINDS, kindKey(obj));
}

function modelClass(obj) {
	const [mod] = KINDS[kindKey(obj)];
	const m = require(`kubernetes-models/${mod}`);
	return m[obj.kind];
}

function schemaFunc(obj) {
	const [, schema] = KINDS[kindKey(obj)];
	return require(path.join(PKG_ROOT, '_schemas', `${schema}.js`)).validate;
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

module.exports = { schemaErrors, unknownKeys, known, KINDS };
