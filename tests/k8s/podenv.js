#!/usr/bin/env node
'use strict';
/*
 * What the kubelet would run for one container of a rendered workload:
 * its command, its arguments and its environment, with envFrom ConfigMaps
 * (from the same rendering), downward-API fields and $(VAR) references
 * resolved as Kubernetes resolves them. For tests that run the real
 * binaries with what the manifests build.
 *
 *   kubectl kustomize DIR >r.yaml
 *   node podenv.js r.yaml KIND/NAME CONTAINER [FIELD=VALUE]...
 *
 * FIELD=VALUE gives a downward-API field, e.g. status.podIP=2001:db8::2;
 * env:NAME=VALUE a variable of the Service environment the kubelet adds
 * (enableServiceLinks), e.g. env:KUBE_DNS_SERVICE_HOST=198.51.100.10:
 * defined before envFrom and env, which override it.
 * Prints JSON: {"command": [...], "args": [...], "env": [["K","V"], ...]},
 * env in the container's order (envFrom first, later entries winning).
 * Exits 1 naming what cannot be resolved (a field not given, a missing
 * ConfigMap that is not optional).
 */
const fs = require('fs');
const yaml = require('js-yaml');

const [file, which, cname, ...fields] = process.argv.slice(2);
if (!file || !which || !cname) {
	process.stderr.write('usage: podenv.js RENDERED KIND/NAME CONTAINER [FIELD=VALUE]...\n');
	process.exit(2);
}
function die(msg) {
	process.stderr.write(`podenv.js: ${msg}\n`);
	process.exit(1);
}
const given = new Map(fields.filter((f) => !f.startsWith('env:'))
    .map((f) => {
	const i = f.indexOf('=');
	return [f.slice(0, i), f.slice(i + 1)];
    }));
const services = fields.filter((f) => f.startsWith('env:')).map((f) => {
	const i = f.indexOf('=');
	return [f.slice(4, i), f.slice(i + 1)];
});
const objs = yaml.loadAll(fs.readFileSync(file, 'utf8')).filter(Boolean);
const [kind, name] = which.split('/');
const w = objs.find((o) => o.kind === kind && o.metadata.name === name);
if (!w)
	die(`no ${which} in ${file}`);
const spec = w.kind === 'Pod' ? w.spec : w.spec.template.spec;
const c = [...(spec.initContainers || []), ...(spec.containers || [])]
    .find((x) => x.name === cname);
if (!c)
	die(`${which} has no container ${cname}`);
const ns = w.metadata.namespace;

/* $(VAR) from what is defined so far; $$(VAR) is a literal $(VAR), and an
 * undefined reference stays as written (the kubelet's rules). */
function expand(s, env) {
	return String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
	    (m, v) => (m === '$$' ? '$' : (env.has(v) ? env.get(v) : m)));
}

const env = new Map(spec.enableServiceLinks === false ? [] : services);
for (const ef of c.envFrom || []) {
	const ref = ef.configMapRef;
	if (!ref)
		die(`${cname}: envFrom other than configMapRef`);
	const cm = objs.find((o) => o.kind === 'ConfigMap' &&
	    o.metadata.name === ref.name && o.metadata.namespace === ns);
	if (!cm) {
		if (ref.optional)
			continue;
		die(`${cname}: ConfigMap ${ref.name} not in the rendering`);
	}
	for (const [k, v] of Object.entries(cm.data || {}))
		env.set((ef.prefix || '') + k, String(v));
}
for (const e of c.env || []) {
	let v;
	if (e.valueFrom) {
		const f = e.valueFrom.fieldRef && e.valueFrom.fieldRef.fieldPath;
		if (!f)
			die(`${cname}: ${e.name}: only fieldRef is supported`);
		if (!given.has(f))
			die(`${cname}: ${e.name} needs ${f}=VALUE`);
		v = given.get(f);
	} else {
		v = expand(e.value === undefined ? '' : e.value, env);
	}
	env.delete(e.name);
	env.set(e.name, v);
}
process.stdout.write(JSON.stringify({
	command: (c.command || []).map((a) => expand(a, env)),
	args: (c.args || []).map((a) => expand(a, env)),
	env: [...env.entries()],
}) + '\n');
