'use strict';
/*
 * Assertions about how the examples deploy dotproxy: privileges, start
 * order, probes and the flags each mode relies on. Each function takes the
 * rendered objects of one mode and returns a list of failure messages.
 */
const { podSpecs, podMeta, containersOf } = require('./kustomize');
const path = require('path');

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
 * 'sidecar-cni' (the CNI plugin installs the redirect), 'node-local' (the
 * node's resolver: dotproxy-init --node-local; a DaemonSet without it is
 * checked as such too), or null when it has no dotproxy. */
function modeOf(o) {
	const spec = podSpecs(o)[0];
	if (!spec)
		return null;
	const inits = arr(spec.initContainers);
	/* Before the sidecar test: this init is dotproxy-init too. */
	if (inits.some(isNodeLocalInit))
		return 'node-local';
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

/* The node-local addresses: the link-local one NodeLocal DNSCache uses, and
 * the kube-dns Service IP from the Service environment. On an IPv6 cluster
 * (components/ipv6) the operator's own address and bracketed listens. */
const NODE_LOCAL_IP = '169.254.20.10';
const KUBE_DNS = '$(KUBE_DNS_SERVICE_HOST)';

function isNodeLocalInit(c) {
	return isInit(c) && arr(c.args).includes('--node-local');
}

/* Node-local mode, NodeLocal DNSCache style: a hostNetwork DaemonSet in
 * kube-system whose init container (root, NET_ADMIN only) puts the
 * addresses on the node, and whose proxy (root, NET_BIND_SERVICE only)
 * listens on exactly those addresses; kube-dns-upstream in front of
 * CoreDNS. No NetworkPolicy: it does not apply to hostNetwork pods. */
function checkNodeLocal(ds, objs) {
	const e = [];
	const spec = ds.spec.template.spec;
	const ns = ds.metadata.namespace;
	const podSeccomp = ((spec.securityContext || {}).seccompProfile || {}).type;
	/* hardened(), but a pod-level RuntimeDefault profile counts. */
	const hard = (c) => {
		const x = [];
		hardened(c, x);
		e.push(...x.filter((m) => !(/seccompProfile/.test(m) &&
		    podSeccomp === 'RuntimeDefault' &&
		    !(sc(c).seccompProfile || {}).type)));
	};
	const caps = (c, want) => {
		const add = arr((sc(c).capabilities || {}).add);
		if (JSON.stringify(add) !== JSON.stringify([want]))
			e.push(`${c.name}: must add exactly [${want}] ` +
			    `(adds ${JSON.stringify(add)})`);
	};
	if (ds.kind !== 'DaemonSet')
		e.push(`must be a DaemonSet, not a ${ds.kind}: one per node`);
	if (ns !== 'kube-system')
		e.push(`namespace must be kube-system (is ${ns}): next to kube-dns, ` +
		    'whose Service environment gives the addresses');
	if (spec.hostNetwork !== true)
		e.push('hostNetwork must be true: the addresses and rules are ' +
		    'the node\'s');
	if (spec.priorityClassName !== 'system-node-critical')
		e.push('priorityClassName must be system-node-critical (DNS for ' +
		    'the node\'s pods)');
	if (spec.dnsPolicy !== 'Default')
		e.push('dnsPolicy must be Default: the node\'s resolv.conf, never ' +
		    'the addresses this pod serves');
	const ru = (ds.spec.updateStrategy || {}).rollingUpdate || {};
	if ((ds.spec.updateStrategy || {}).type === 'OnDelete' ||
	    String(ru.maxSurge) !== '1' || String(ru.maxUnavailable) !== '0')
		e.push('updateStrategy must be RollingUpdate with maxSurge 1 and ' +
		    'maxUnavailable 0 (the new pod starts before the old stops)');

	const inits = arr(spec.initContainers);
	const init = inits.find(isNodeLocalInit);
	const proxy = arr(spec.containers).find(isProxy);
	if (!init) {
		e.push('no dotproxy-init --node-local init container');
	} else {
		hard(init);
		caps(init, 'NET_ADMIN');
		if (uidOf(init, spec) !== 0)
			e.push(`${init.name}: must run as UID 0`);
		if (init.restartPolicy !== undefined)
			e.push(`${init.name}: must be a regular init container`);
		const nl = optValues(init, 'node-local', 'DOTPROXY_INIT_NODE_LOCAL');
		const addrs = nl.flatMap((v) => String(v).split(','));
		if (!addrs.includes(KUBE_DNS) || addrs.length !== 2)
			e.push(`${init.name}: --node-local must be the node-local ` +
			    `address and ${KUBE_DNS}`);
		const up = optValues(init, 'node-local-upstream',
		    'DOTPROXY_INIT_NODE_LOCAL_UPSTREAM');
		if (JSON.stringify(up) !== '["$(KUBE_DNS_UPSTREAM_SERVICE_HOST)"]')
			e.push(`${init.name}: --node-local-upstream must be ` +
			    '$(KUBE_DNS_UPSTREAM_SERVICE_HOST)');
	}
	for (const c of inits)
		if (c !== init)
			e.push(`${c.name}: unexpected init container`);
	if (!proxy) {
		e.push('no dotproxy container');
		return [...new Set(e)];
	}
	for (const c of arr(spec.containers))
		if (c !== proxy)
			noCaps(c, e);
	hard(proxy);
	caps(proxy, 'NET_BIND_SERVICE');
	if (uidOf(proxy, spec) !== 0)
		e.push(`${proxy.name}: must run as UID 0 (port 53 without file ` +
		    'capabilities)');
	if (hasFlag(proxy, 'transparent', 'DOTPROXY_TRANSPARENT'))
		e.push(`${proxy.name}: no --transparent in node-local mode`);
	/* hostNetwork makes every declared port a host port, and the
	 * scheduler puts no two pods with one host port on a node: the
	 * surge pod of an update would wait for ever. */
	for (const c of arr(spec.initContainers).concat(arr(spec.containers)))
		if (arr(c.ports).length > 0)
			e.push(`${c.name}: declares ports (${arr(c.ports).map((p) =>
			    p.containerPort).join(', ')}): in the node's network ` +
			    'they are host ports, and the surge pod of an update ' +
			    'can never be scheduled next to the old one');
	/* The handover: a socket in a node directory both pods mount. */
	const ho = optValues(proxy, 'handover-socket',
	    'DOTPROXY_HANDOVER_SOCKET');
	const hoMount = ho.length !== 1 ? undefined : arr(proxy.volumeMounts)
	    .find((m) => path.posix.dirname(ho[0]) === m.mountPath);
	const hoVol = hoMount && arr(spec.volumes).find((v) =>
	    v.name === hoMount.name);
	if (ho.length !== 1)
		e.push(`${proxy.name}: needs --handover-socket (the old pod of ` +
		    'an update hands its sockets to the new one)');
	else if (!hoMount || hoMount.readOnly)
		e.push(`${proxy.name}: the handover socket ${ho[0]} must be in ` +
		    'a writable volume mounted at its directory');
	else if (!hoVol || !hoVol.hostPath ||
	    !['Directory', 'DirectoryOrCreate'].includes(hoVol.hostPath.type))
		e.push(`${proxy.name}: the handover socket's volume ` +
		    `${hoMount.name} must be a hostPath directory (an emptyDir ` +
		    'is one pod\'s own; the old and the new pod must share it)');
	resources(proxy, e);
	localZone(proxy, e);
	upstreamFromConfig(proxy, objs, ns, e);

	/* Exactly the init container's addresses, port 53, never a wildcard:
	 * the bypass rules look for a socket bound to the address itself. */
	const listen = optValues(proxy, 'listen', 'DOTPROXY_LISTEN');
	const nlAddrs = init ? optValues(init, 'node-local',
	    'DOTPROXY_INIT_NODE_LOCAL').flatMap((v) => String(v).split(',')) : [];
	/* One family: the kube-dns IP is IPv6 where the other address is. */
	const v6 = nlAddrs.some((a) => a.includes(':'));
	const fmt = (a) => (a.includes(':') || (v6 && a === KUBE_DNS) ?
	    `[${a}]` : a) + ':53';
	const wantListen = nlAddrs.map(fmt).sort();
	if (JSON.stringify([...listen].sort()) !== JSON.stringify(wantListen))
		e.push(`${proxy.name}: must --listen exactly ` +
		    `${wantListen.join(' ') || 'the node-local addresses'} ` +
		    `(has ${listen.join(' ')})`);
	const local = nlAddrs.find((a) => a !== KUBE_DNS);
	if (local && !local.includes(':') && local !== NODE_LOCAL_IP)
		e.push(`${init.name}: the IPv4 node-local address must be ` +
		    `${NODE_LOCAL_IP} (as NodeLocal DNSCache)`);
	const rc = optValues(proxy, 'resolv-conf', 'DOTPROXY_RESOLV_CONF');
	const irc = init ? optValues(init, 'node-local-resolv-conf',
	    'DOTPROXY_INIT_NODE_LOCAL_RESOLV_CONF') : [];
	if (rc.length !== 1 || rc[0] !== irc[0])
		e.push(`${proxy.name}: --resolv-conf must be the file the init ` +
		    'container writes (--node-local-resolv-conf)');

	/* Metrics on the node IP, not a wildcard. */
	const metrics = optValues(proxy, 'metrics', 'DOTPROXY_METRICS');
	if (metrics.length !== 1 ||
	    !/^(\$\(HOST_IP\)|\[\$\(HOST_IP\)\]):9253$/.test(metrics[0]))
		e.push(`${proxy.name}: metrics must be $(HOST_IP):9253 ` +
		    `(or [$(HOST_IP)]:9253; has ${metrics.join(' ')})`);
	const hi = arr(proxy.env).findIndex((x) => x.name === 'HOST_IP' &&
	    x.valueFrom && x.valueFrom.fieldRef &&
	    x.valueFrom.fieldRef.fieldPath === 'status.hostIP');
	const mi = arr(proxy.env).findIndex((x) => x.name === 'DOTPROXY_METRICS');
	if (hi < 0 || (mi >= 0 && mi < hi))
		e.push(`${proxy.name}: HOST_IP must come from status.hostIP, ` +
		    'before DOTPROXY_METRICS');
	/* By number: the pod declares no port to name. */
	for (const k of ['startupProbe', 'readinessProbe'])
		if (!proxy[k] || !proxy[k].httpGet ||
		    proxy[k].httpGet.path !== '/readyz' ||
		    proxy[k].httpGet.port !== 9253)
			e.push(`${proxy.name}: ${k} must GET /readyz on 9253`);
	const lv = (proxy.livenessProbe || {}).tcpSocket;
	if (!lv || lv.port !== 53 || !local || lv.host !== local)
		e.push(`${proxy.name}: livenessProbe must be a TCP connect to ` +
		    `${local || NODE_LOCAL_IP}:53`);
	if ((ds.spec.template.metadata.labels || {})['dotproxy/mode'] !==
	    'node-local')
		e.push('pod label dotproxy/mode must be node-local (the ' +
		    'PodMonitor selects on it)');

	/* kube-dns-upstream: CoreDNS behind a second Service, no pinned IP. */
	const up = objs.find((o) => o.kind === 'Service' &&
	    o.metadata.name === 'kube-dns-upstream');
	if (!up) {
		e.push('no Service kube-dns-upstream');
	} else {
		const s = 'Service/kube-dns-upstream';
		if (up.metadata.namespace !== ns)
			e.push(`${s}: must be in ${ns}, next to the DaemonSet`);
		if (JSON.stringify(up.spec.selector || {}) !==
		    '{"k8s-app":"kube-dns"}')
			e.push(`${s}: selector must be exactly k8s-app: kube-dns`);
		if (up.spec.clusterIP !== undefined)
			e.push(`${s}: fixes clusterIP ${up.spec.clusterIP}`);
		if (up.spec.internalTrafficPolicy !== undefined)
			e.push(`${s}: no internalTrafficPolicy (CoreDNS runs on ` +
			    'few nodes)');
		for (const proto of ['UDP', 'TCP'])
			if (!arr(up.spec.ports).some((p) => p.port === 53 &&
			    (p.protocol || 'TCP') === proto))
				e.push(`${s}: no port 53/${proto}`);
	}
	/* What the old design had and this one must not. */
	for (const o of objs) {
		const w = `${o.kind}/${o.metadata.name}`;
		if (o.metadata.namespace === ns && o.kind === 'NetworkPolicy')
			e.push(`${w}: NetworkPolicy does not apply to hostNetwork pods`);
		if (o.kind === 'Namespace' && o.metadata.name === ns)
			e.push(`${w}: node-local must not create or relabel ${ns}`);
		if (o.kind === 'Service' && o.spec && o.spec.internalTrafficPolicy)
			e.push(`${w}: internalTrafficPolicy belongs to no node-local ` +
			    'Service');
		if (podSpecs(o).some((ps) => ps.dnsPolicy === 'None'))
			e.push(`${w}: dnsPolicy None; pods keep ClusterFirst and the ` +
			    'kube-dns IP');
	}
	return [...new Set(e)];
}

module.exports = { modeOf, checkSidecar, checkCni, checkNodeLocal,
	isProxy, optValues, PROXY_UID };
