'use strict';
/*
 * The Pod Security Standards checks that matter for these examples,
 * evaluated on a pod spec (https://kubernetes.io/docs/concepts/security/
 * pod-security-standards/). Not the whole admission controller: host
 * namespaces, privileged, capabilities, hostPath, host ports, seccomp,
 * sysctls (baseline) and privilege escalation, non-root, drop ALL, seccomp
 * required, volume types (restricted). Returns the list of violations.
 */

const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE',
	'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP',
	'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced',
	'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
	'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range',
	'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time',
	'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
	'net.ipv4.tcp_keepalive_probes']);
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir',
	'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

function all(spec) {
	return [...(spec.initContainers || []), ...(spec.containers || []),
		...(spec.ephemeralContainers || [])];
}

function baseline(spec) {
	const v = [];
	const psc = spec.securityContext || {};
	for (const h of ['hostNetwork', 'hostPID', 'hostIPC'])
		if (spec[h])
			v.push(`${h}: true`);
	for (const vol of spec.volumes || [])
		if (vol.hostPath)
			v.push(`volume ${vol.name}: hostPath`);
	for (const s of psc.sysctls || [])
		if (!SAFE_SYSCTLS.has(s.name))
			v.push(`sysctl ${s.name} is not safe`);
	if (psc.seccompProfile && psc.seccompProfile.type === 'Unconfined')
		v.push('pod seccompProfile Unconfined');
	for (const c of all(spec)) {
		const sc = c.securityContext || {};
		if (sc.privileged)
			v.push(`container ${c.name}: privileged`);
		for (const cap of (sc.capabilities && sc.capabilities.add) || [])
			if (!BASELINE_CAPS.has(cap))
				v.push(`container ${c.name}: adds capability ${cap}`);
		for (const p of c.ports || [])
			if (p.hostPort)
				v.push(`container ${c.name}: hostPort ${p.hostPort}`);
		if (sc.seccompProfile && sc.seccompProfile.type === 'Unconfined')
			v.push(`container ${c.name}: seccompProfile Unconfined`);
		if (sc.procMount && sc.procMount !== 'Default')
			v.push(`container ${c.name}: procMount ${sc.procMount}`);
	}
	return v;
}

function restricted(spec) {
	const v = baseline(spec);
	const psc = spec.securityContext || {};
	for (const vol of spec.volumes || []) {
		const type = Object.keys(vol).find((k) => k !== 'name');
		if (!RESTRICTED_VOLUMES.includes(type))
			v.push(`volume ${vol.name}: type ${type}`);
	}
	if (psc.runAsUser === 0)
		v.push('pod runAsUser 0');
	for (const c of all(spec)) {
		const sc = c.securityContext || {};
		const caps = sc.capabilities || {};
		if (sc.allowPrivilegeEscalation !== false)
			v.push(`container ${c.name}: allowPrivilegeEscalation not false`);
		const nonRoot = sc.runAsNonRoot !== undefined ?
		    sc.runAsNonRoot : psc.runAsNonRoot;
		if (nonRoot !== true)
			v.push(`container ${c.name}: runAsNonRoot not true`);
		if (sc.runAsUser === 0)
			v.push(`container ${c.name}: runAsUser 0`);
		if (!(caps.drop || []).includes('ALL'))
			v.push(`container ${c.name}: capabilities.drop lacks ALL`);
		for (const cap of caps.add || [])
			if (cap !== 'NET_BIND_SERVICE')
				v.push(`container ${c.name}: adds capability ${cap}`);
		const sp = sc.seccompProfile || psc.seccompProfile;
		if (!sp || !['RuntimeDefault', 'Localhost'].includes(sp.type))
			v.push(`container ${c.name}: seccompProfile not ` +
			    'RuntimeDefault/Localhost');
	}
	return [...new Set(v)];
}

/* Violations of level ('privileged' | 'baseline' | 'restricted'). */
function violations(level, spec) {
	if (level === 'restricted')
		return restricted(spec);
	if (level === 'baseline')
		return baseline(spec);
	return [];
}

module.exports = { violations, baseline, restricted };
