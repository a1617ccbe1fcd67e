'use strict';
/*
 * Assertions about how the examples deploy dotproxy: privileges, start
 * order, probes and the flags each mode relies on. Each function takes the
 * rendered objects of one mode and returns a list of failure messages.
 */
const { podSpecs } = require('./kustomize');

const PROXY_UID = 15353;

function arr(x) {
	return Array.isArray(x) ? x : [];
}

function envValue(c, name) {
	const e = arr(c.env).find((x) => x.name === name);
	return e ? e.value : undefined;
}

/* Values of --name (as "--name V" or "--name=V") in args, plus env twin. */
function optValues(c, name, env) {
	const out = [];
	const a = arr(c.args);
	for (let i = 0; i < a.length; i++) {
		if (a[i] === `--${name}` && i + 1 < a.length)
			out.push(a[i + 1]);
		else if (String(a[i]).startsWith(`--${name}=`))
			out.push(String(a[i]).slice(name.length + 3));
	}
	const ev = envValue(c, env);
	if (ev !== undefined)
		out.push(...String(ev).split(','));
	return out;
}

function hasFlag(c, name, env) {
	return arr(c.args).includes(`--${name}`) ||
	    ['1', 'true', 'yes', 'on'].includes(String(envValue(c, env)));
}

function isInit(c) {
	const cmd = arr(c.command).join(' ');
	return /dotproxy-init$/.test(cmd) && !arr(c.args).includes('--validate');
}

function isValidate(c) {
	return /dotproxy-init$/.test(arr(c.command).join(' ')) &&
	    arr(c.args).includes('--validate');
}

function isProxy(c) {
	return /(^|\/)dotproxy(:|@|$)/.test(c.image || '') &&
	    (c.command === undefined ||
	     /dotproxy$/.test(arr(c.command).join(' ')));
}

function sc(c) {
	return c.securityContext || {};
}

/* Container-level security settings every dotproxy container shares. */
function hardened(c, errs) {
	const s = sc(c);
	if (s.allowPrivilegeEscalation !== false)
		errs.push(`${c.name}: allowPrivilegeEscalation must be false`);
	if (s.privileged === true)
		errs.push(`${c.name}: must not be privileged`);
	if (s.readOnlyRootFilesystem !== true)
		errs.push(`${c.name}: readOnlyRootFilesystem must be true`);
	if (!s.seccompProfile || s.seccompProfile.type !== 'RuntimeDefault')
		errs.push(`${c.name}: seccompProfile must be RuntimeDefault`);
	const caps = s.capabilities || {};
	if (JSON.stringify(arr(caps.drop)) !== '["ALL"]')
		errs.push(`${c.name}: capabilities.drop must be exactly [ALL]`);
}

function noCaps(c, errs) {
	const caps = sc(c).capabilities || {};
	if (arr(caps.add).length)
		errs.push(`${c.name}: must add no capability (adds ` +
		    `${arr(caps.add).join(',')})`);
}

/* The container port a probe points at, by name or number. */
function probePort(c, probe) {
	const p = probe.httpGet.port;
	const cp = arr(c.ports).find((x) => x.name === p ||
	    x.containerPort === p);
	return cp ? cp.containerPort : undefined;
}

/* startupProbe + readinessProbe on /readyz, livenessProbe on /livez. */
function probes(c, errs) {
	const metrics = optValues(c, 'metrics', 'DOTPROXY_METRICS');
	const want = { startupProbe: '/readyz', readinessProbe: '/readyz',
		livenessProbe: '/livez' };
	if (metrics.length !== 1)
		errs.push(`${c.name}: needs exactly one --metrics/DOTPROXY_METRICS` +
		    ` (has ${metrics.length})`);
	const [host, port] = metrics.length ?
	    [metrics[0].replace(/:[0-9]+$/, ''), Number(metrics[0].split(':').pop())] :
	    ['', 0];
	for (const [k, p] of Object.entries(want)) {
		const probe = c[k];
		if (!probe) {
			errs.push(`${c.name}: no ${k}`);
			continue;
		}
		if (probe.httpGet) {
			if (probe.httpGet.path !== p)
				errs.push(`${c.name}: ${k} must GET ${p}, ` +
				    `not ${probe.httpGet.path}`);
			if (probePort(c, probe) !== port)
				errs.push(`${c.name}: ${k} port is not the metrics ` +
				    `port ${port}`);
			/* kubelet connects to the pod IP, not to loopback. */
			if (!['0.0.0.0', '[::]'].includes(host))
				errs.push(`${c.name}: ${k} uses httpGet but metrics ` +
				    `listens on ${host}, unreachable from the kubelet`);
		} else if (probe.exec) {
			const cmd = arr(probe.exec.command);
			if (!/dotproxy$/.test(cmd[0] || '') || cmd[1] !== 'healthcheck' ||
			    (cmd[2] !== undefined && !cmd[2].endsWith(p)) ||
			    (cmd[2] === undefined && p !== '/readyz'))
				errs.push(`${c.name}: ${k} exec must be ` +
				    `"dotproxy healthcheck http://...${p}"`);
		} else {
			errs.push(`${c.name}: ${k} must be httpGet or exec`);
		}
	}
}

function resources(c, errs) {
	const r = c.resources || {};
	if (!r.requests || !r.requests.cpu || !r.requests.memory)
		errs.push(`${c.name}: needs cpu and memory requests`);
	if (!r.limits || !r.limits.memory)
		errs.push(`${c.name}: needs a memory limit`);
}

function localZone(c, errs) {
	if (!optValues(c, 'local-zone', 'DOTPROXY_LOCAL_ZONE')
	    .some((z) => z.replace(/\.$/, '') === 'cluster.local'))
		errs.push(`${c.name}: needs --local-zone cluster.local`);
}

/* The upstream is set in one place: the dotproxy-config ConfigMap. */
function upstreamFromConfig(c, objs, ns, errs) {
	if (optValues(c, 'upstream', 'DOTPROXY_UPSTREAM').length)
		errs.push(`${c.name}: sets the upstream itself; it belongs in ` +
		    'the dotproxy-config ConfigMap');
	const ref = arr(c.envFrom).map((e) => e.configMapRef)
	    .find((r) => r && /^dotproxy-config(-[a-z0-9]+)?$/.test(r.name));
	if (!ref) {
		errs.push(`${c.name}: no envFrom configMapRef dotproxy-config`);
		return;
	}
	const cm = objs.find((o) => o.kind === 'ConfigMap' &&
	    o.metadata.name === ref.name && o.metadata.namespace === ns);
	if (!cm)
		errs.push(`${c.name}: ConfigMap ${ref.name} not in ${ns}`);
	else if (!cm.data || !cm.data.DOTPROXY_UPSTREAM)
		errs.push(`ConfigMap ${ref.name}: no DOTPROXY_UPSTREAM`);
}

function uidOf(c, spec) {
	const s = sc(c);
	if (s.runAsUser !== undefined)
		return s.runAsUser;
	return (spec.securityContext || {}).runAsUser;
}

/* Sidecar mode: init, native sidecar, validate, app. */
function checkSidecar(objs) {
	const errs = [];
	const pods = objs.filter((o) => podSpecs(o).some((s) =>
	    arr(s.initContainers).some(isInit)));
	if (pods.length === 0)
		return ['no workload with a dotproxy-init init container'];
	for (const o of pods) {
		const spec = podSpecs(o)[0];
		const where = `${o.kind}/${o.metadata.name}`;
		const inits = arr(spec.initContainers);
		const iInit = inits.findIndex(isInit);
		const iProxy = inits.findIndex(isProxy);
		const iVal = inits.findIndex(isValidate);
		const init = inits[iInit];
		const proxy = inits[iProxy];
		const e = [];

		/* dotproxy-init: NET_ADMIN and nothing else; regular init. */
		hardened(init, e);
		const add = arr((sc(init).capabilities || {}).add);
		if (JSON.stringify(add) !== '["NET_ADMIN"]')
			e.push(`${init.name}: must add exactly [NET_ADMIN] ` +
			    `(adds ${JSON.stringify(add)})`);
		if (init.restartPolicy !== undefined)
			e.push(`${init.name}: must be a regular init container`);
		if (arr(spec.containers).some(isProxy) ||
		    arr(spec.containers).some(isInit))
			e.push('dotproxy belongs in initContainers, not containers');

		/* The sidecar. */
		if (!proxy) {
			e.push('no dotproxy sidecar among the init containers');
		} else {
			if (iProxy < iInit)
				e.push(`${proxy.name}: must start after ${init.name}`);
			if (proxy.restartPolicy !== 'Always')
				e.push(`${proxy.name}: restartPolicy must be Always ` +
				    '(native sidecar)');
			hardened(proxy, e);
			noCaps(proxy, e);
			const s = sc(proxy);
			if (s.runAsNonRoot !== true)
				e.push(`${proxy.name}: runAsNonRoot must be true`);
			if (s.runAsUser !== PROXY_UID || s.runAsGroup !== PROXY_UID)
				e.push(`${proxy.name}: container-level runAsUser and ` +
				    `runAsGroup must be ${PROXY_UID}`);
			probes(proxy, e);
			resources(proxy, e);
			localZone(proxy, e);
			if (!hasFlag(proxy, 'transparent', 'DOTPROXY_TRANSPARENT'))
				e.push(`${proxy.name}: needs --transparent`);
			for (const l of optValues(proxy, 'listen', 'DOTPROXY_LISTEN'))
				if (!/^(127\.|\[::1\])/.test(l))
					e.push(`${proxy.name}: listens on ${l}; transparent ` +
					    'use must stay on loopback');
			upstreamFromConfig(proxy, objs, o.metadata.namespace, e);
			/* dotproxy-init must exclude the sidecar's UID and redirect
			 * to its port. */
			const uid = optValues(init, 'proxy-uid', 'DOTPROXY_INIT_PROXY_UID');
			const port = optValues(init, 'proxy-port',
			    'DOTPROXY_INIT_PROXY_PORT');
			if (String(uid[0] || PROXY_UID) !== String(s.runAsUser))
				e.push(`${init.name}: --proxy-uid ${uid[0]} is not the ` +
				    `sidecar's UID ${s.runAsUser}`);
			const listen = optValues(proxy, 'listen', 'DOTPROXY_LISTEN');
			const lport = listen.length ?
			    listen[0].split(':').pop() : '15353';
			if (String(port[0] || 15353) !== lport)
				e.push(`${init.name}: --proxy-port ${port[0]} is not the ` +
				    `sidecar's port ${lport}`);
		}

		/* The capture check, after the sidecar, before the app. */
		const val = inits[iVal];
		if (!val) {
			e.push('no dotproxy-init --validate init container');
		} else {
			if (iVal < iProxy)
				e.push(`${val.name}: must run after the sidecar`);
			if (val.restartPolicy !== undefined)
				e.push(`${val.name}: must be a regular init container`);
			hardened(val, e);
			noCaps(val, e);
			const u = uidOf(val, spec);
			if (sc(val).runAsNonRoot !== true || !u || u === PROXY_UID)
				e.push(`${val.name}: must run as a non-root UID other ` +
				    `than ${PROXY_UID}`);
		}

		/* Everyone else: no capability, never the proxy's UID. */
		for (const c of [...inits, ...arr(spec.containers)]) {
			if (c === init)
				continue;
			noCaps(c, e);
			if (c !== proxy && uidOf(c, spec) === PROXY_UID)
				e.push(`${c.name}: runs as ${PROXY_UID}, whose DNS is ` +
				    'never captured');
		}
		if ((spec.securityContext || {}).runAsUser === PROXY_UID)
			e.push(`pod-level runAsUser ${PROXY_UID} would exempt the app`);
		if (spec.hostNetwork)
			e.push('hostNetwork would put the rules in the node namespace');
		errs.push(...[...new Set(e)].map((m) => `${where}: ${m}`));
	}
	return errs;
}

/* Node-local mode: DaemonSet + Service (internalTrafficPolicy Local). */
function checkNodeLocal(objs) {
	const errs = [];
	const dss = objs.filter((o) => o.kind === 'DaemonSet');
	if (dss.length === 0)
		return ['no DaemonSet'];
	for (const ds of dss) {
		const spec = ds.spec.template.spec;
		const where = `DaemonSet/${ds.metadata.name}`;
		const e = [];
		const cs = [...arr(spec.initContainers), ...arr(spec.containers)];
		for (const c of cs) {
			noCaps(c, e);
			if (isInit(c))
				e.push(`${c.name}: node-local mode has no dotproxy-init`);
		}
		if (spec.hostNetwork)
			e.push('must not use hostNetwork');
		if (spec.dnsPolicy !== undefined && spec.dnsPolicy !== 'ClusterFirst')
			e.push('dnsPolicy must be ClusterFirst: the local-zone ' +
			    'fallback is the proxy\'s resolv.conf (kube-dns)');
		const proxy = arr(spec.containers).find(isProxy);
		if (!proxy) {
			errs.push(`${where}: no dotproxy container`);
			continue;
		}
		hardened(proxy, e);
		const uid = uidOf(proxy, spec);
		const nonRoot = sc(proxy).runAsNonRoot ??
		    (spec.securityContext || {}).runAsNonRoot;
		if (nonRoot !== true || !uid)
			e.push(`${proxy.name}: must run as a non-root UID`);
		for (const p of arr(proxy.ports))
			if (p.hostPort)
				e.push(`${proxy.name}: hostPort ${p.hostPort}`);
		probes(proxy, e);
		resources(proxy, e);
		localZone(proxy, e);
		upstreamFromConfig(proxy, objs, ds.metadata.namespace, e);
		/* Listen on the pod IP exactly: the original destination of a
		 * Service-routed query is then recognised as the proxy itself. */
		const listen = optValues(proxy, 'listen', 'DOTPROXY_LISTEN');
		const podIP = arr(proxy.env).find((x) => x.name === 'POD_IP');
		if (listen.length !== 1 || !/^\$\(POD_IP\):[0-9]+$/.test(listen[0]))
			e.push(`${proxy.name}: must --listen $(POD_IP):PORT only`);
		if (!podIP || !podIP.valueFrom || !podIP.valueFrom.fieldRef ||
		    podIP.valueFrom.fieldRef.fieldPath !== 'status.podIP')
			e.push(`${proxy.name}: POD_IP must come from status.podIP`);
		const lport = listen.length ? Number(listen[0].split(':').pop()) : 0;
		if (lport < 1024)
			e.push(`${proxy.name}: port ${lport} needs a capability`);

		/* The Service in front of it. */
		const labels = (ds.spec.template.metadata || {}).labels || {};
		const svcs = objs.filter((o) => o.kind === 'Service' &&
		    o.metadata.namespace === ds.metadata.namespace &&
		    Object.entries(o.spec.selector || {}).every(([k, v]) =>
			labels[k] === v));
		if (svcs.length !== 1)
			e.push(`needs exactly one Service selecting it (found ${svcs.length})`);
		for (const svc of svcs) {
			const s = `Service/${svc.metadata.name}`;
			if (svc.spec.internalTrafficPolicy !== 'Local')
				e.push(`${s}: internalTrafficPolicy must be Local`);
			if (!svc.spec.clusterIP || svc.spec.clusterIP === 'None')
				e.push(`${s}: needs a fixed clusterIP for dnsConfig`);
			for (const proto of ['UDP', 'TCP']) {
				const sp = arr(svc.spec.ports).find((p) => p.port === 53 &&
				    (p.protocol || 'TCP') === proto);
				if (!sp) {
					e.push(`${s}: no port 53/${proto}`);
					continue;
				}
				const cp = arr(proxy.ports).find((p) =>
				    (p.name === sp.targetPort || p.containerPort ===
				    sp.targetPort) && (p.protocol || 'TCP') === proto);
				if (!cp || cp.containerPort !== lport)
					e.push(`${s}: 53/${proto} does not reach ` +
					    `${proxy.name}'s ${lport}/${proto}`);
			}
			/* Clients that opt in name the Service IP. */
			const clients = objs.filter((o) => podSpecs(o).some((ps) =>
			    ps.dnsPolicy === 'None'));
			for (const cl of clients) {
				const ps = podSpecs(cl)[0];
				const dc = ps.dnsConfig || {};
				const w = `${cl.kind}/${cl.metadata.name}`;
				if (!arr(dc.nameservers).includes(svc.spec.clusterIP))
					e.push(`${w}: dnsConfig.nameservers lacks ` +
					    `${svc.spec.clusterIP}`);
				for (const d of ['svc.cluster.local', 'cluster.local'])
					if (!arr(dc.searches).includes(d))
						e.push(`${w}: dnsConfig.searches lacks ${d}`);
			}
		}
		errs.push(...[...new Set(e)].map((m) => `${where}: ${m}`));
	}
	return errs;
}

module.exports = { checkSidecar, checkNodeLocal, PROXY_UID };
