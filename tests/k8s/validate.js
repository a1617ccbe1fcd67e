#!/usr/bin/env node
'use strict';
/*
 * Offline validation of every kustomization under examples/ (see
 * tests/k8s/validate.sh). Kustomizations are found, not listed: a new
 * directory with a kustomization.yaml is rendered and checked like the rest.
 *
 *   node validate.js [--root DIR] [--only GROUP,...]   run the checks
 *   node validate.js [--root DIR] --render SUBDIR       print what
 *                                                       kubectl kustomize makes
 *
 * DIR is the examples directory (default: the repository's examples/).
 * Groups:
 *   yaml        every manifest and kustomization file parses; manifests have
 *               apiVersion, kind, metadata.name
 *   schema      every manifest document against the Kubernetes 1.33 schema
 *               (and the prometheus-operator CRDs)
 *   strict      no key the schema does not know
 *   kustomize   every Kustomization renders with `kubectl kustomize`; the
 *               rendered objects pass schema and strict too; every file and
 *               component is used
 *   sidecar     workloads with dotproxy-init (privileged mode)
 *   sidecar-cni workloads with the sidecar and no dotproxy-init (CNI mode)
 *   node-local  dotproxy-init --node-local and the proxy: a hostNetwork
 *               DaemonSet in kube-system, kube-dns-upstream, no fence
 *   pss         the Pod Security level of each namespace admits its pods,
 *               and is the one docs/kubernetes.md states for the mode
 *   monitoring  the PodMonitor scrapes every dotproxy pod next to it
 *   overlay     overlays/quad9 changes only the upstream (and the egress
 *               policy's addresses for it)
 *   egress      injected pods may send DoT only to their upstreams, DNS
 *               only to kube-dns, nothing else on 53 or 853
 * Prints one "ok"/"not ok" line per check and exits 1 if any failed, 3 if
 * kubectl is missing (render groups skipped, everything else checked).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const yaml = require('js-yaml');
const { schemaErrors, unknownKeys } = require('./lib/schema');
const kz = require('./lib/kustomize');
const dp = require('./lib/dotproxy');
const pss = require('./lib/pss');
const rl = require('./lib/relabel');

const GROUPS = ['yaml', 'schema', 'strict', 'kustomize', 'sidecar',
	'sidecar-cni', 'node-local', 'pss', 'monitoring', 'overlay', 'egress'];
const RENDER_GROUPS = GROUPS.slice(3);

function usage(msg) {
	if (msg)
		process.stderr.write(`validate.js: ${msg}\n`);
	process.stderr.write('usage: validate.js [--root DIR] [--only ' +
	    `${GROUPS.join(',')}] | [--root DIR] --render SUBDIR\n`);
	process.exit(2);
}

function parseArgs(argv) {
	const o = {
		root: path.resolve(__dirname, '../../examples'),
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
	const kubectl = kz.kubectlInfo();

	if (o.render) {
		if (!kubectl.ok)
			usage(kubectl.why);
		const list = kz.render(path.resolve(o.root, o.render));
		process.stdout.write(list.map((x) => yaml.dump(x, { noRefs: true }))
		    .join('---\n'));
		return 0;
	}
	const want = (g) => o.only.includes(g);

	/* Every kustomization, what it refers to, and so which YAML files are
	 * manifests (resources) and which are patches. */
	const kfiles = kz.findKustomizations(o.root);
	const kust = new Map();
	const manifests = new Set();
	const patches = new Set();
	const usedComponents = new Set();
	for (const f of kfiles) {
		const entry = { file: f, dir: path.dirname(f), errs: [] };
		try {
			entry.k = kz.load(f);
			entry.refs = kz.refs(f, entry.k);
			entry.refs.files.forEach((x) => manifests.add(x));
			entry.refs.patches.forEach((x) => patches.add(x));
			entry.refs.components.forEach((x) => usedComponents.add(x));
		} catch (e) {
			entry.errs.push(e.message);
		}
		kust.set(entry.dir, entry);
		if (want('yaml'))
			report('yaml', rel(f), entry.errs);
	}

	/* yaml, schema, strict on every manifest file. */
	for (const f of [...manifests].sort()) {
		const errs = [];
		const docs = [];
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
				docs.push({ n, d });
			}
			if (n === 0)
				errs.push('no documents');
		} catch (e) {
			errs.push(e.code === 'ENOENT' ? 'listed in a kustomization ' +
			    'but does not exist' : e.message);
		}
		if (want('yaml'))
			report('yaml', rel(f), errs);
		for (const { n: i, d } of docs) {
			const name = `${rel(f)}#${i} ${d.kind}/${d.metadata.name}`;
			if (want('schema'))
				report('schema', name, schemaErrors(d));
			if (want('strict'))
				report('strict', name, unknownKeys(d).map((k) =>
				    `unknown key ${k}`));
		}
	}
	for (const f of [...patches].sort())
		if (want('yaml')) {
			const errs = [];
			try {
				yaml.loadAll(fs.readFileSync(f, 'utf8'));
			} catch (e) {
				errs.push(e.code === 'ENOENT' ? 'listed as a patch but ' +
				    'does not exist' : e.message);
			}
			report('yaml', `${rel(f)} (patch)`, errs);
		}

	if (!kubectl.ok) {
		const skipped = o.only.filter((g) => RENDER_GROUPS.includes(g));
		if (skipped.length)
			console.log(`# SKIP ${skipped.join(', ')}: ${kubectl.why}; ` +
			    'install kubectl (it embeds kustomize) to render the ' +
			    'kustomizations');
		console.log(`# k8s validation: ${passed} checks ok, ${failed} failed`);
		return failed ? 1 : (skipped.length ? 3 : 0);
	}
	if (o.only.some((g) => RENDER_GROUPS.includes(g)))
		console.log(`# rendering with ${kubectl.version}`);

	/* kustomize: render every Kustomization with the real tool. */
	const rendered = {};
	for (const [dir, entry] of kust) {
		if (!entry.k || kz.isComponent(entry.k))
			continue;
		const errs = [...entry.errs];
		let list = [];
		try {
			list = kz.render(dir);
			rendered[rel(dir)] = list;
			errs.push(...renderedErrors(list));
		} catch (e) {
			errs.push(`kubectl kustomize: ${e.message}`);
		}
		if (want('kustomize'))
			report('kustomize', `${rel(dir)} renders (${list.length} objects)`,
			    errs);
	}
	/* Injection components: rendered into a fixture with every workload
	 * kind, so each is proven to inject into all of them even when no
	 * example uses it yet. */
	const usedBy = new Map();
	for (const [dir, entry] of kust)
		for (const c of (entry.refs || { components: [] }).components)
			usedBy.set(c, [...(usedBy.get(c) || []), dir]);
	/* A component that only changes injected workloads (every patch
	 * selects by annotation or label, as components/ipv6) is rendered
	 * after each injection component instead of alone. */
	const fixtures = [];
	for (const [dir, entry] of kust) {
		if (!entry.k || !kz.isComponent(entry.k) || !injects(entry.k) ||
		    (usedBy.get(dir) || []).some((u) => kust.get(u) &&
			kust.get(u).k && kz.isComponent(kust.get(u).k)))
			continue;
		if (modifies(entry.k))
			for (const first of ['inject', 'inject-cni'])
				fixtures.push([dir, `fixture:${rel(dir)}+${first}`,
				    [path.resolve(dir, '..', first), dir]]);
		else
			fixtures.push([dir, `fixture:${rel(dir)}`, [dir]]);
	}
	for (const [dir, name, comps] of fixtures) {
		const errs = [];
		let list = [];
		try {
			list = renderFixture(comps);
			rendered[name] = list;
			errs.push(...renderedErrors(list));
			for (const kind of FIXTURE_KINDS) {
				const w = list.find((x) => x.kind === kind);
				if (!w || !dp.modeOf(w))
					errs.push(`${kind}: nothing injected`);
			}
			const svc = list.find((x) => x.kind === 'Service');
			if (!svc || canon(svc.spec) !== canon(FIXTURE_SERVICE.spec))
				errs.push('the Service was changed');
			const dep = list.find((x) => x.kind === 'Deployment');
			const own = dep ? kz.podSpecs(dep)[0].initContainers || [] : [];
			if (!own.length || own[own.length - 1].name !== 'migrate')
				errs.push('the workload\'s own init container is not last');
		} catch (e) {
			errs.push(`kubectl kustomize: ${e.message}`);
		}
		usedComponents.add(dir);
		if (want('kustomize'))
			report('kustomize', `${name.replace(/^fixture:/, '')} ` +
			    `injects into ${FIXTURE_KINDS.join(', ')}`, errs);
	}

	if (want('kustomize')) {
		/* Every YAML file in a kustomization directory is a resource or
		 * a patch of some kustomization; every component is used. */
		const stray = [];
		for (const dir of kust.keys())
			for (const e of fs.readdirSync(dir))
				if (/\.ya?ml$/.test(e) && !kz.isKustomizationFile(e)) {
					const p = path.join(dir, e);
					if (!manifests.has(p) && !patches.has(p))
						stray.push(`${rel(p)} is in no kustomization's ` +
						    'resources or patches');
				}
		report('kustomize', 'every file is used by a kustomization', stray);
		report('kustomize', 'every component is used', [...kust.values()]
		    .filter((x) => x.k && kz.isComponent(x.k) &&
			!usedComponents.has(x.dir))
		    .map((x) => `${rel(x.dir)} is in no kustomization's components`));
	}

	/* Every workload that runs dotproxy, in every render, by mode. */
	const byMode = { sidecar: [], 'sidecar-cni': [], 'node-local': [] };
	for (const [dir, list] of Object.entries(rendered))
		for (const x of list) {
			const m = dp.modeOf(x);
			if (m)
				byMode[m].push({ dir, o: x, list });
		}
	const checks = { sidecar: (w) => dp.checkSidecar(w.o, w.list),
		'sidecar-cni': (w) => dp.checkCni(w.o, w.list),
		'node-local': (w) => dp.checkNodeLocal(w.o, w.list) };
	for (const m of ['sidecar', 'sidecar-cni', 'node-local']) {
		if (!want(m))
			continue;
		for (const w of byMode[m]) {
			let errs;
			try {
				errs = checks[m](w);
			} catch (e) {
				errs = [`check crashed (malformed manifest?): ${e.message}`];
			}
			report(m, `${w.dir}: ${w.o.kind}/${w.o.metadata.name}`, errs);
		}
	}
	/* The two modes docs/kubernetes.md documents must exist; the CNI mode's
	 * component must render for every workload kind (an example using it
	 * may come from tests/e2e/k8s_manifests.bats). */
	/* egress: every injected workload of a render that has an egress
	 * policy for it (the examples do; a fixture need not). */
	if (want('egress'))
		for (const m of ['sidecar', 'sidecar-cni'])
			for (const w of byMode[m]) {
				const errs = egressErrors(w.o, w.list);
				if (errs !== null)
					report('egress', `${w.dir}: ${w.o.kind}/` +
					    `${w.o.metadata.name}`, errs);
			}
	if (want('egress'))
		for (const d of ['kubernetes/sidecar', 'kubernetes/sidecar-cni'])
			report('egress', `${d} fences its pods' egress`,
			    byModeHas(byMode, d) ? [] : [`no egress policy in ${d}`]);

	if (want('sidecar'))
		report('sidecar', 'kubernetes/sidecar has a sidecar workload',
		    byMode.sidecar.some((w) => w.dir === 'kubernetes/sidecar') ? [] :
		    ['no workload with dotproxy-init in kubernetes/sidecar']);
	if (want('node-local'))
		report('node-local', 'kubernetes/node-local has a DaemonSet',
		    byMode['node-local'].some((w) => w.dir ===
			'kubernetes/node-local') ? [] :
		    ['no dotproxy DaemonSet in kubernetes/node-local']);

	/* pss: per render, each pod whose Namespace is in the same render. */
	if (want('pss'))
		for (const [dir, list] of Object.entries(rendered)) {
			if (!list.some((x) => x.kind === 'Namespace'))
				continue;
			report('pss', `${dir}: each pod meets its namespace's enforce ` +
			    'level', pssErrors(list));
			report('pss', `${dir}: sidecar privileged (NET_ADMIN only), ` +
			    'CNI mode restricted, node-local privileged', pssClaims(list));
		}

	if (want('monitoring'))
		for (const [dir, list] of Object.entries(rendered)) {
			const errs = monitoringErrors(list);
			if (errs === null)
				continue;
			report('monitoring', `${dir}: the PodMonitor scrapes every ` +
			    'dotproxy pod', errs);
		}
	if (want('monitoring'))
		for (const d of ['kubernetes/sidecar', 'kubernetes/node-local'])
			report('monitoring', `${d} is scraped, and has no rule of ` +
			    'its own', [
				...((rendered[d] || []).some((x) => x.kind ===
				    'PodMonitor') ? [] : [`${d} renders no PodMonitor`]),
				/* The rules cover every namespace: a copy per
				 * namespace makes every alert fire once per copy. */
				...((rendered[d] || []).some((x) => x.kind ===
				    'PrometheusRule') ? [`${d} renders a ` +
				    'PrometheusRule: the rule is cluster-wide and ' +
				    'belongs in monitoring/rules only'] : []),
			    ]);
	if (want('monitoring')) {
		/* One PrometheusRule for the cluster, in the monitoring namespace;
		 * a render holding several copies would page once per copy. */
		const errs = [];
		for (const [dir, list] of Object.entries(rendered)) {
			const rules = list.filter((x) => x.kind === 'PrometheusRule');
			if (rules.length > 1)
				errs.push(`${dir} renders ${rules.length} PrometheusRules`);
		}
		const r = (rendered['monitoring/rules'] || [])
		    .filter((x) => x.kind === 'PrometheusRule');
		if (r.length !== 1)
			errs.push(`monitoring/rules renders ${r.length} PrometheusRules, not 1`);
		else if (r[0].metadata.namespace !== 'monitoring')
			errs.push('monitoring/rules puts the PrometheusRule in ' +
			    `${r[0].metadata.namespace}, not monitoring`);
		report('monitoring', 'one PrometheusRule for the cluster, in ' +
		    'monitoring/rules', errs);
	}

	if (want('overlay'))
		report('overlay', 'kubernetes/overlays/quad9 changes only the ' +
		    'upstream', overlayErrors(rendered['kubernetes/all'],
		    rendered['kubernetes/overlays/quad9']));

	console.log(`# k8s validation: ${passed} checks ok, ${failed} failed`);
	return failed ? 1 : 0;
}

/* JSON with sorted keys, to compare objects whatever their key order. */
function canon(x) {
	if (Array.isArray(x))
		return `[${x.map(canon).join(',')}]`;
	if (x && typeof x === 'object')
		return `{${Object.keys(x).sort().map((k) =>
		    `${JSON.stringify(k)}:${canon(x[k])}`).join(',')}}`;
	return JSON.stringify(x);
}

/* A component that patches workloads (Deployment, ... by target). */
/* Egress NetworkPolicies selecting the pods of w, in its namespace. */
function egressPolicies(w, list) {
	const labels = kz.podMeta(w).labels || {};
	return list.filter((o) => o.kind === 'NetworkPolicy' &&
	    o.metadata.namespace === w.metadata.namespace &&
	    (o.spec.policyTypes || []).includes('Egress') &&
	    matchesSelector(o.spec.podSelector || {}, labels));
}

function byModeHas(byMode, dir) {
	return ['sidecar', 'sidecar-cni'].some((m) => byMode[m].some((w) =>
	    w.dir === dir && egressPolicies(w.o, w.list).length > 0));
}

/* What may leave the pod on 53 and 853. null when no egress policy selects
 * it (nothing to check). */
function egressErrors(w, list) {
	const pols = egressPolicies(w, list);
	if (pols.length === 0)
		return null;
	const errs = [];
	const rules = pols.flatMap((p) => p.spec.egress || []);
	const covers = (r, port, proto) => !r.ports || r.ports.length === 0 ||
	    r.ports.some((p) => (p.protocol || 'TCP') === proto &&
		(p.port === undefined || p.port === port ||
		 (p.endPort !== undefined && p.port <= port && port <= p.endPort)));
	const kubeDns = (peer) => peer.podSelector &&
	    JSON.stringify((peer.podSelector.matchLabels || {})) ===
	    '{"k8s-app":"kube-dns"}' && peer.namespaceSelector;
	const host = (cidr) => cidr.replace(/\/(32|128)$/, '');
	/* The upstreams, from the ConfigMap the proxy reads. */
	const proxy = kz.containersOf(kz.podSpecs(w)[0]).find(dp.isProxy);
	const ref = (proxy.envFrom || []).map((e) => e.configMapRef)
	    .find((r) => r && /^dotproxy-config/.test(r.name));
	const cm = ref && list.find((o) => o.kind === 'ConfigMap' &&
	    o.metadata.name === ref.name &&
	    o.metadata.namespace === w.metadata.namespace);
	const ups = ((cm && cm.data && cm.data.DOTPROXY_UPSTREAM) || '')
	    .split(',').filter(Boolean).map((u) => {
		const m = /^(\[[^\]]+\]|[^@#^]+)(?:@([0-9]+))?/.exec(u.trim());
		return { ip: m[1].replace(/^\[|\]$/g, ''),
			port: m[2] ? Number(m[2]) : 853 };
	    });
	if (ups.length === 0)
		errs.push('no DOTPROXY_UPSTREAM to compare the policy with');
	for (const u of ups)
		if (!rules.some((r) => covers(r, u.port, 'TCP') && (r.to || [])
		    .some((p) => p.ipBlock && host(p.ipBlock.cidr) === u.ip)))
			errs.push(`upstream ${u.ip}:${u.port} is not admitted ` +
			    '(an ipBlock /32 or /128 per upstream, TCP)');
	for (const proto of ['UDP', 'TCP'])
		if (!rules.some((r) => covers(r, 53, proto) &&
		    (r.to || []).some(kubeDns)))
			errs.push(`DNS 53/${proto} to kube-dns is not admitted`);
	/* Nothing else on 53 or 853 (either protocol). */
	for (const [port, proto] of [[53, 'UDP'], [53, 'TCP'], [853, 'TCP'],
	    [853, 'UDP']])
		for (const r of rules) {
			if (!covers(r, port, proto))
				continue;
			const to = r.to || [];
			if (to.length === 0) {
				errs.push(`${port}/${proto} is admitted to anywhere`);
				continue;
			}
			for (const p of to) {
				const ok = port === 53 ? kubeDns(p) :
				    p.ipBlock && !p.ipBlock.except &&
				    ups.some((u) => u.ip === host(p.ipBlock.cidr));
				if (!ok)
					errs.push(`${port}/${proto} is admitted to ` +
					    JSON.stringify(p));
			}
		}
	return [...new Set(errs)];
}

function modifies(k) {
	return (k.patches || []).every((p) => p && p.target &&
	    (p.target.annotationSelector || p.target.labelSelector));
}

function injects(k) {
	return (k.patches || []).some((p) => p && p.target &&
	    /Deployment/.test(p.target.kind || '') &&
	    /Job/.test(p.target.kind || ''));
}

const FIXTURE_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'];
const FIXTURE_POD = {
	metadata: { labels: { app: 'fixture' } },
	spec: {
		securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
		initContainers: [{ name: 'migrate', image: 'app:1',
			securityContext: { runAsUser: 1000, runAsNonRoot: true,
				allowPrivilegeEscalation: false,
				capabilities: { drop: ['ALL'] } } }],
		containers: [{ name: 'app', image: 'app:1',
			ports: [{ name: 'metrics', containerPort: 8080 }],
			securityContext: { runAsUser: 1000, runAsNonRoot: true,
				allowPrivilegeEscalation: false,
				capabilities: { drop: ['ALL'] } } }],
	},
};
const FIXTURE_SERVICE = { apiVersion: 'v1', kind: 'Service',
	metadata: { name: 'fixture' },
	spec: { selector: { app: 'fixture' }, ports: [{ port: 80 }] } };

/* Renders the components dirs (in order) applied to one workload of every
 * kind. */
function renderFixture(dirs) {
	const dir = dirs[0];
	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dotproxy-k8s-'));
	try {
		const sel = { matchLabels: { app: 'fixture' } };
		const pod = (extra) => {
			const p = JSON.parse(JSON.stringify(FIXTURE_POD));
			Object.assign(p.spec, extra || {});
			return p;
		};
		const objs = [
			{ apiVersion: 'apps/v1', kind: 'Deployment',
				metadata: { name: 'fixture' },
				spec: { selector: sel, template: pod() } },
			{ apiVersion: 'apps/v1', kind: 'StatefulSet',
				metadata: { name: 'fixture' },
				spec: { selector: sel, serviceName: 'fixture',
					template: pod() } },
			{ apiVersion: 'apps/v1', kind: 'DaemonSet',
				metadata: { name: 'fixture' },
				spec: { selector: sel, template: pod() } },
			{ apiVersion: 'batch/v1', kind: 'Job',
				metadata: { name: 'fixture' },
				spec: { template: pod({ restartPolicy: 'Never' }) } },
			FIXTURE_SERVICE,
		];
		fs.writeFileSync(path.join(tmp, 'workloads.yaml'),
		    objs.map((o) => yaml.dump(o)).join('---\n'));
		fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), yaml.dump({
			apiVersion: 'kustomize.config.k8s.io/v1beta1',
			kind: 'Kustomization', namespace: 'fixture',
			/* The namespace's settings, which the components refer to
			 * and do not make. */
			resources: ['workloads.yaml',
			    path.relative(tmp, path.resolve(dir, '../../config'))],
			components: dirs.map((d) => path.relative(tmp, d)),
		}));
		return kz.render(tmp);
	} finally {
		fs.rmSync(tmp, { recursive: true, force: true });
	}
}

function renderedErrors(list) {
	const errs = [];
	const ids = new Set();
	for (const d of list) {
		const name = `${d.kind}/${(d.metadata || {}).namespace || ''}/` +
		    `${(d.metadata || {}).name}`;
		if (ids.has(name))
			errs.push(`${name} rendered twice`);
		ids.add(name);
		for (const e of schemaErrors(d))
			errs.push(`${name}: ${e}`);
		for (const k of unknownKeys(d))
			errs.push(`${name}: unknown key ${k}`);
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

function matchesSelector(sel, labels) {
	if (!sel)
		return false;
	for (const [k, v] of Object.entries(sel.matchLabels || {}))
		if (labels[k] !== v)
			return false;
	for (const x of sel.matchExpressions || []) {
		const has = Object.prototype.hasOwnProperty.call(labels, x.key);
		const vals = x.values || [];
		if ((x.operator === 'In' && !(has && vals.includes(labels[x.key]))) ||
		    (x.operator === 'NotIn' && has && vals.includes(labels[x.key])) ||
		    (x.operator === 'Exists' && !has) ||
		    (x.operator === 'DoesNotExist' && has))
			return false;
	}
	return true;
}

/* null when the render has no PodMonitor. */
function monitoringErrors(list) {
	const pms = list.filter((x) => x.kind === 'PodMonitor');
	if (pms.length === 0)
		return null;
	const errs = [];
	for (const pm of pms)
		for (const ep of pm.spec.podMetricsEndpoints || [])
			if (!(ep.relabelings || []).some((r) => r.targetLabel ===
			    'job' && r.replacement === 'dotproxy' &&
			    (r.action || 'replace') === 'replace'))
				errs.push(`PodMonitor ${pm.metadata.name}: endpoint ` +
				    `${ep.port || '(by number)'} does not set ` +
				    'job="dotproxy", which the rules select');
	for (const w of list) {
		if (!dp.modeOf(w))
			continue;
		const ns = w.metadata.namespace;
		const labels = kz.podMeta(w).labels || {};
		const pm = pms.find((p) => p.metadata.namespace === ns &&
		    matchesSelector(p.spec.selector, labels));
		const where = `${w.kind}/${w.metadata.name}`;
		if (!pm) {
			errs.push(`${where}: no PodMonitor in ${ns} selects its pods ` +
			    `(labels ${JSON.stringify(labels)})`);
			continue;
		}
		/* Discovery and relabeling as Prometheus does them, for a pod
		 * IP of each family: exactly one target, the proxy's metrics
		 * port, whether the pod names its ports or (node-local) has
		 * none. */
		const spec = kz.podSpecs(w)[0];
		const proxy = kz.containersOf(spec).find(dp.isProxy);
		const port = proxy ? (dp.optValues(proxy, 'metrics',
		    'DOTPROXY_METRICS')[0] || '').replace(/^.*:/, '') : '';
		for (const ip of ['192.0.2.10', '2001:db8::a']) {
			const ts = (pm.spec.podMetricsEndpoints || []).flatMap((ep) =>
			    rl.endpointTargets(ep, labels, spec, ip));
			const want = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
			const fam = ip.includes(':') ? 'IPv6' : 'IPv4';
			const ok = ts.filter((t) => proxy && t.__address__ === want &&
			    t.__meta_kubernetes_pod_container_name === proxy.name);
			if (ok.length !== 1)
				errs.push(`${where}: ${fam} pod: ${ok.length} targets ` +
				    `scrape the proxy at ${want} (want 1)`);
			for (const t of ts)
				if (!ok.includes(t))
					errs.push(`${where}: ${fam} pod: also scrapes ` +
					    `${t.__meta_kubernetes_pod_container_name} at ` +
					    t.__address__);
		}
	}
	return errs;
}

/* The proxy's ConfigMaps (dotproxy-config-HASH), not dotproxy-init's. */
function cms(list) {
	return (list || []).filter((x) => x.kind === 'ConfigMap' &&
	    /^dotproxy-config(-[a-z0-9]+)?$/.test(x.metadata.name));
}

function overlayErrors(base, q) {
	if (!base || !q)
		return ['kubernetes/all or kubernetes/overlays/quad9 did not render'];
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
	/* The egress policy's upstream addresses follow the upstream (the
	 * egress group checks that they match it). */
	const strip = (l) => JSON.stringify(l.filter((x) => x.kind !==
	    'ConfigMap').map((x) => (x.kind === 'NetworkPolicy' &&
	    x.metadata.name === 'dotproxy-egress' ? JSON.stringify(
		{ ...x, spec: { ...x.spec, egress: x.spec.egress.slice(1) } }) :
	    JSON.stringify(x))
	    .replace(/dotproxy-config-[0-9a-z]{10}/g, 'dotproxy-config')));
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

function inRenderedNs(list, d) {
	return list.some((x) => x.kind === 'Namespace' &&
	    x.metadata.name === d.metadata.namespace);
}

function pssErrors(list) {
	const errs = [];
	for (const d of list) {
		if (!inRenderedNs(list, d))
			continue;
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
	}
	return errs;
}

function pssClaims(list) {
	const errs = [];
	for (const d of list) {
		if (!inRenderedNs(list, d))
			continue;
		const mode = dp.modeOf(d);
		/* Claims are about dotproxy's modes; any other pod (an example
		 * client, the CNI plugin's installer) only has to meet its
		 * namespace's level (pssErrors). */
		if (!mode)
			continue;
		for (const spec of kz.podSpecs(d)) {
			const ns = d.metadata.namespace;
			const w = `${d.kind}/${ns}/${d.metadata.name}`;
			if (mode === 'sidecar') {
				if (nsLevel(list, ns) !== 'privileged')
					errs.push(`${w}: sidecar mode needs a privileged ` +
					    'namespace');
				/* Only NET_ADMIN on dotproxy-init keeps it from baseline,
				 * and only that container from restricted. */
				const b = pss.baseline(spec);
				if (b.length !== 1 ||
				    !/dotproxy-init: adds capability NET_ADMIN$/.test(b[0]))
					errs.push(`${w}: baseline violations other than ` +
					    `NET_ADMIN: ${JSON.stringify(b)}`);
				const r = pss.restricted(spec).filter((v) =>
				    !/^container dotproxy-init: /.test(v));
				if (r.length)
					errs.push(`${w}: restricted violations outside ` +
					    `dotproxy-init: ${JSON.stringify(r)}`);
			} else if (mode === 'node-local') {
				/* hostNetwork and root with capabilities: privileged
				 * only, which kube-system is (and node-local never
				 * creates or relabels it). */
				if (nsLevel(list, ns) !== 'privileged')
					errs.push(`${w}: node-local needs a privileged ` +
					    'namespace (hostNetwork, root, NET_ADMIN)');
			} else {
				if (nsLevel(list, ns) !== 'restricted')
					errs.push(`${w}: namespace should enforce restricted`);
				const r = pss.restricted(spec);
				if (r.length)
					errs.push(`${w}: not restricted: ${JSON.stringify(r)}`);
			}
		}
	}
	return errs;
}

process.exitCode = main();
