'use strict';
/*
 * Assertions about how the examples deploy dotproxy: privileges, start
 * order, probes and the flags each mode relies on. Each function takes the
 * rendered objects of one mode and returns a list of failure messages.
 */
const { podSpecs, podMeta, containersOf } = require('./kustomize');

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

/* The metrics address names the pod IP: "$(POD_IP):PORT" with POD_IP from
 * the downward API (status.podIP). */
function podIPEnv(c) {
	const e = arr(c.env).find((x) => x.name === 'POD_IP');
	return !!(e && e.valueFrom && e.valueFrom.fieldRef &&
	    e.valueFrom.fieldRef.fieldPath === 'status.podIP');
}

/* startupProbe + readinessProbe on /readyz, livenessProbe on /livez, and
 * the metrics listener on the pod IP only: reachable by the kubelet and
 * Prometheus, but no wildcard socket. */
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
	if (['0.0.0.0', '[::]', '*', ''].includes(host))
		errs.push(`${c.name}: metrics listens on ${host || 'every address'}; ` +
		    'bind it to the pod IP ($(POD_IP)) where it is scraped');
	else if (/^(\$\(POD_IP\)|\[\$\(POD_IP\)\])$/.test(host) && !podIPEnv(c))
		errs.push(`${c.name}: metrics uses $(POD_IP) but POD_IP is not ` +
		    'status.podIP (or is defined after DOTPROXY_METRICS)');
	const ipIdx = arr(c.env).findIndex((x) => x.name === 'POD_IP');
	const mIdx = arr(c.env).findIndex((x) => x.name === 'DOTPROXY_METRICS');
	if (ipIdx >= 0 && mIdx >= 0 && mIdx < ipIdx)
		errs.push(`${c.name}: DOTPROXY_METRICS refers to POD_IP before it ` +
		    'is defined (the kubelet expands only earlier variables)');
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
			if (/^(127\.|\[::1\]|localhost)/.test(host))
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

/* Which way a workload runs dotproxy: 'sidecar' (dotproxy-init, NET_ADMIN),
 * 'sidecar-cni' (the CNI plugin installs the redirect), 'node-local' (a
 * DaemonSet serving other pods), or null when it has no dotproxy. */
function modeOf(o) {
	const spec = podSpecs(o)[0];
	if (!spec)
		return null;
	const inits = arr(spec.initContainers);
	if (inits.some(isInit))
		return 'sidecar';
	if (inits.some(isProxy) || inits.some(isValidate))
		return 'sidecar-cni';
	if (o.kind === 'DaemonSet' && arr(spec.containers).some(isProxy))
		return 'node-local';
	return null;
}

/* What both sidecar modes share: the native sidecar after any
 * dotproxy-init, the capture check after it, no capability outside
 * dotproxy-init, nobody else on the proxy's UID. */
function sidecarCommon(o, objs, e) {
	const spec = podSpecs(o)[0];
	const inits = arr(spec.initContainers);
	const iInit = inits.findIndex(isInit);
	const iProxy = inits.findIndex(isProxy);
	const iVal = inits.findIndex(isValidate);
	const init = inits[iInit];
	const proxy = inits[iProxy];

	if (arr(spec.containers).some(isProxy) ||
	    arr(spec.containers).some(isInit))
		e.push('dotproxy belongs in initContainers, not containers');
	if (!proxy) {
		e.push('no dotproxy sidecar among the init containers');
	} else {
		if (init && iProxy < iInit)
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
		/* Port names are unique in a pod: the app may have "metrics". */
		const names = new Map();
		for (const c of containersOf(spec))
			for (const p of arr(c.ports))
				if (p.name) {
					if (names.has(p.name))
						e.push(`port name ${p.name} is used by ` +
						    `${names.get(p.name)} and ${c.name}`);
					names.set(p.name, c.name);
				}
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
	/* The workload's own init containers come after the check, so that
	 * they already have captured DNS. */
	inits.forEach((c, i) => {
		if (c !== init && c !== proxy && c !== val && i < iVal)
			e.push(`${c.name}: runs before ${val ? val.name :
			    'the capture check'}, without working DNS`);
	});

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
		e.push('hostNetwork would put the redirect in the node namespace');
	return { init, proxy, val };
}

/* Sidecar mode with dotproxy-init: NET_ADMIN there and nowhere else. */
function checkSidecar(o, objs) {
	const e = [];
	const { init, proxy } = sidecarCommon(o, objs, e);
	hardened(init, e);
	const add = arr((sc(init).capabilities || {}).add);
	if (JSON.stringify(add) !== '["NET_ADMIN"]')
		e.push(`${init.name}: must add exactly [NET_ADMIN] ` +
		    `(adds ${JSON.stringify(add)})`);
	if (init.restartPolicy !== undefined)
		e.push(`${init.name}: must be a regular init container`);
	if (arr(podSpecs(o)[0].initContainers).indexOf(init) !== 0)
		e.push(`${init.name}: must be the first init container (any ` +
		    'before it has no captured DNS, or none at all after it)');
	if (proxy) {
		/* dotproxy-init must exclude the sidecar's UID and redirect to
		 * its port. */
		const s = sc(proxy);
		const uid = optValues(init, 'proxy-uid', 'DOTPROXY_INIT_PROXY_UID');
		const port = optValues(init, 'proxy-port', 'DOTPROXY_INIT_PROXY_PORT');
		if (String(uid[0] || PROXY_UID) !== String(s.runAsUser))
			e.push(`${init.name}: --proxy-uid ${uid[0]} is not the ` +
			    `sidecar's UID ${s.runAsUser}`);
		const listen = optValues(proxy, 'listen', 'DOTPROXY_LISTEN');
		const lport = listen.length ? listen[0].split(':').pop() : '15353';
		if (String(port[0] || 15353) !== lport)
			e.push(`${init.name}: --proxy-port ${port[0]} is not the ` +
			    `sidecar's port ${lport}`);
	}
	if ((podMeta(o).labels || {})['dotproxy/mode'] !== 'sidecar')
		e.push('pod label dotproxy/mode must be sidecar (the PodMonitor ' +
		    'selects on it)');
	return [...new Set(e)];
}

/* Sidecar mode with the CNI plugin: the annotation that asks the plugin
 * for the redirect, and no capability anywhere in the pod. */
function checkCni(o, objs) {
	const e = [];
	sidecarCommon(o, objs, e);
	const spec = podSpecs(o)[0];
	const meta = podMeta(o);
	if ((meta.annotations || {})['dotproxy/capture'] !== 'true')
		e.push('pod annotation dotproxy/capture must be "true" (the CNI ' +
		    'plugin installs the redirect only for annotated pods)');
	if ((meta.labels || {})['dotproxy/mode'] !== 'sidecar-cni')
		e.push('pod label dotproxy/mode must be sidecar-cni');
	for (const c of containersOf(spec))
		noCaps(c, e);
	return [...new Set(e)];
}

/* Node-local mode: DaemonSet behind a Service (internalTrafficPolicy
 * Local), fenced by a NetworkPolicy, critical priority. base: this render
 * is the node-local base, where no clusterIP may be fixed. */
function checkNodeLocal(ds, objs, base) {
	const e = [];
	const spec = ds.spec.template.spec;
	const ns = ds.metadata.namespace;
	for (const c of containersOf(spec)) {
		noCaps(c, e);
		if (isInit(c))
			e.push(`${c.name}: node-local mode has no dotproxy-init`);
	}
	if (spec.hostNetwork)
		e.push('must not use hostNetwork');
	if (spec.priorityClassName !== 'system-node-critical')
		e.push('priorityClassName must be system-node-critical (DNS for ' +
		    'the node\'s pods)');
	if (spec.dnsPolicy !== undefined && spec.dnsPolicy !== 'ClusterFirst')
		e.push('dnsPolicy must be ClusterFirst: the local-zone ' +
		    'fallback is the proxy\'s resolv.conf (kube-dns)');
	const proxy = arr(spec.containers).find(isProxy);
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
	upstreamFromConfig(proxy, objs, ns, e);
	/* Listen on the pod IP exactly: the original destination of a
	 * Service-routed query is then recognised as the proxy itself. */
	const listen = optValues(proxy, 'listen', 'DOTPROXY_LISTEN');
	if (listen.length !== 1 ||
	    !/^(\$\(POD_IP\)|\[\$\(POD_IP\)\]):[0-9]+$/.test(listen[0]))
		e.push(`${proxy.name}: must --listen $(POD_IP):PORT ` +
		    '(or [$(POD_IP)]:PORT) only');
	if (!podIPEnv(proxy))
		e.push(`${proxy.name}: POD_IP must come from status.podIP`);
	const lport = listen.length ? Number(listen[0].split(':').pop()) : 0;
	if (lport < 1024)
		e.push(`${proxy.name}: port ${lport} needs a capability`);
	const metrics = optValues(proxy, 'metrics', 'DOTPROXY_METRICS');
	const mport = metrics.length ? Number(metrics[0].split(':').pop()) : 0;
	if ((ds.spec.template.metadata.labels || {})['dotproxy/mode'] !==
	    'node-local')
		e.push('pod label dotproxy/mode must be node-local (the ' +
		    'PodMonitor selects on it)');

	/* The Service in front of it. */
	const labels = (ds.spec.template.metadata || {}).labels || {};
	const selects = (sel) => Object.entries(sel || {}).every(([k, v]) =>
	    labels[k] === v);
	const svcs = objs.filter((o) => o.kind === 'Service' &&
	    o.metadata.namespace === ns && selects(o.spec.selector));
	if (svcs.length !== 1)
		e.push(`needs exactly one Service selecting it (found ${svcs.length})`);
	for (const svc of svcs) {
		const s = `Service/${svc.metadata.name}`;
		if (svc.spec.internalTrafficPolicy !== 'Local')
			e.push(`${s}: internalTrafficPolicy must be Local`);
		if (base && svc.spec.clusterIP !== undefined)
			e.push(`${s}: the base fixes clusterIP ${svc.spec.clusterIP}; ` +
			    'pin it in an overlay (it must fit the cluster\'s ' +
			    'Service CIDR)');
		if (svc.spec.clusterIP === 'None')
			e.push(`${s}: a headless Service has no address for dnsConfig`);
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
		/* Clients that opt in name the Service IP, which must be pinned. */
		const clients = objs.filter((o) => podSpecs(o).some((ps) =>
		    ps.dnsPolicy === 'None'));
		for (const cl of clients) {
			const ps = podSpecs(cl)[0];
			const dc = ps.dnsConfig || {};
			const w = `${cl.kind}/${cl.metadata.name}`;
			if (!svc.spec.clusterIP)
				e.push(`${w}: names a nameserver, but ${s} has no ` +
				    'pinned clusterIP');
			else if (!arr(dc.nameservers).includes(svc.spec.clusterIP))
				e.push(`${w}: dnsConfig.nameservers lacks ` +
				    `${svc.spec.clusterIP}`);
			for (const d of ['svc.cluster.local', 'cluster.local'])
				if (!arr(dc.searches).includes(d))
					e.push(`${w}: dnsConfig.searches lacks ${d}`);
		}
	}

	/* The fence: DNS from the cluster's pods only, metrics from the
	 * monitoring namespace only. */
	e.push(...fenceErrors(ds, objs, lport, mport));
	return [...new Set(e)];
}

/* Whether a NetworkPolicy peer is "any pod in any namespace" / "the
 * monitoring namespace". */
function allPods(peer) {
	return peer.namespaceSelector && !peer.ipBlock &&
	    Object.keys(peer.namespaceSelector).length === 0 &&
	    (!peer.podSelector || Object.keys(peer.podSelector).length === 0);
}

function monitoringNs(peer) {
	const sel = peer.namespaceSelector || {};
	return !peer.ipBlock && !peer.podSelector &&
	    JSON.stringify(sel.matchLabels || {}) ===
	    '{"kubernetes.io/metadata.name":"monitoring"}' && !sel.matchExpressions;
}

function portMatches(p, port, proto) {
	return (p.protocol || 'TCP') === proto &&
	    (p.port === undefined || p.port === port ||
	     (p.endPort !== undefined && p.port <= port && port <= p.endPort));
}

function fenceErrors(ds, objs, dnsPort, metricsPort) {
	const e = [];
	const labels = ds.spec.template.metadata.labels || {};
	const ns = ds.metadata.namespace;
	const pols = objs.filter((o) => o.kind === 'NetworkPolicy' &&
	    o.metadata.namespace === ns &&
	    Object.entries((o.spec.podSelector || {}).matchLabels || {})
		.every(([k, v]) => labels[k] === v) &&
	    !(o.spec.podSelector || {}).matchExpressions);
	const ingress = pols.filter((p) => arr(p.spec.policyTypes).length === 0 ||
	    arr(p.spec.policyTypes).includes('Ingress'));
	if (ingress.length === 0)
		return ['no NetworkPolicy isolates its pods for ingress: the ' +
		    'resolver on the pod IP would be open to anything that ' +
		    'reaches the pod network'];
	const rules = ingress.flatMap((p) => arr(p.spec.ingress));
	const want = [[dnsPort, 'UDP'], [dnsPort, 'TCP'], [metricsPort, 'TCP']];
	for (const r of rules) {
		if (!r.from || r.from.length === 0)
			e.push('a NetworkPolicy ingress rule admits every source');
		const ports = arr(r.ports);
		for (const peer of arr(r.from)) {
			/* An ipBlock is the nodes' network (hostNetwork
			 * clients), never the world. */
			if (peer.ipBlock && /\/0$/.test(peer.ipBlock.cidr || ''))
				e.push(`NetworkPolicy admits ipBlock ${peer.ipBlock.cidr}`);
			const openPorts = want.filter(([port, proto]) =>
			    ports.length === 0 || ports.some((p) =>
				portMatches(p, port, proto)));
			for (const [port, proto] of openPorts) {
				if (port === metricsPort && !monitoringNs(peer))
					e.push(`metrics ${port}/${proto} is open to ` +
					    `${JSON.stringify(peer)}, not only the ` +
					    'monitoring namespace');
				if (port === dnsPort && !allPods(peer) &&
				    !monitoringNs(peer) && !peer.ipBlock)
					e.push(`DNS ${port}/${proto} is admitted from ` +
					    `${JSON.stringify(peer)}`);
			}
		}
	}
	for (const [port, proto] of want.slice(0, 2))
		if (!rules.some((r) => arr(r.from).some(allPods) &&
		    arr(r.ports).some((p) => portMatches(p, port, proto))))
			e.push(`DNS ${port}/${proto} is not admitted from the ` +
			    'cluster\'s pods');
	if (!rules.some((r) => arr(r.from).some(monitoringNs) &&
	    arr(r.ports).some((p) => portMatches(p, metricsPort, 'TCP'))))
		e.push(`metrics ${metricsPort}/TCP is not admitted from the ` +
		    'monitoring namespace');
	return e;
}

module.exports = { modeOf, checkSidecar, checkCni, checkNodeLocal,
	isProxy, PROXY_UID };
