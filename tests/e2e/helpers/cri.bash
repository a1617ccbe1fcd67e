# shellcheck shell=bash disable=SC2154
# The container-runtime world, sourced by tests/e2e/cri.bats: Debian's
# containerd with its CRI plugin, started by the test, calls the CNI chain
# (Debian's bridge + host-local, then dotproxy-cni, put there by the
# installer) for pods that tests/tools/cri_client.py asks for the way the
# kubelet does.
#
#   up ns   (dpt-<id>-up)    world.bash's: unbound DoT 192.0.2.2@853 and
#                            plain 192.0.2.2@53 (the cluster's DNS), both
#                            logging every query; vnode 203.0.113.2/24,
#                            route to the pods via the node
#   node ns (dpt-<id>-node)  vup 203.0.113.254/24, forwarding on; the
#                            runtime's network namespace: containerd runs
#                            here (so the bridge cni0 198.51.100.1/24 the
#                            plugin makes is here), in a mount namespace
#                            of its own (unshare, propagation slave), so
#                            that none of its mounts reaches the host's
#   pods                     namespaces containerd makes; eth0
#                            198.51.100.x/24 from bridge + host-local,
#                            default route via the bridge; resolv.conf
#                            from the pod's DNSConfig: nameserver 192.0.2.2
#
# Everything containerd keeps is under $CRI_DIR ($W_DIR/cri): root, state,
# runc's root, its sockets, the CNI bin and conf directories, host-local's
# leases, the plugin's log, the pods' logs. Its containers run under the
# cgroup parent /$CRI_CG. cri_teardown removes every pod through the CRI,
# stops containerd, its shims, anything left in our cgroups, the network
# namespaces containerd made for our pods, the shims' sockets and the
# directory, even after a failure.
#
# The images come from no registry: cri_images assembles three image
# archives (docker-archive format, one layer each) and imports them with
# ctr: the pause image (tests/cri/pause.c, static), the project's image
# (the same files the Dockerfile's final stage holds: the three stripped
# binaries, the shared libraries they load, the CA bundle, passwd and
# group naming UID 15353; the same user, entrypoint and environment),
# and an app image (pause as its main process, tests/tools/gai with its
# libraries, run as UID 1000).

# shellcheck source=tests/e2e/helpers/world.bash
. "$(dirname "${BASH_SOURCE[0]}")/world.bash"

CNI_BIN=${CNI_BIN:-$W_BUILD/dotproxy-cni}
INIT_BIN=${INIT_BIN:-$W_BUILD/dotproxy-init}
GAI=${GAI:-$W_BUILD/tools/gai}
CNI_REF_DIR=${CNI_REF_DIR:-/usr/lib/cni}
CRI_CLIENT=${CRI_CLIENT:-$W_ROOT/tests/tools/cri_client.py}
# Debian's python3, the one python3-grpcio is installed for (an earlier
# python3 on PATH, e.g. pyenv's, has no grpc).
CRI_PYTHON=${CRI_PYTHON:-/usr/bin/python3}
CRI_PAUSE_SRC=$W_ROOT/tests/cri/pause.c
CRI_LIST=10-dpt-cri.conflist
CRI_NET=dpt-cri-net
CRI_IMG_PAUSE=dpt.test/pause:1
CRI_IMG_PROXY=dpt.test/dotproxy:e2e
CRI_IMG_APP=dpt.test/app:1

# Both unbounds log every query: a query's client address tells which pod
# it came from, and which resolver got it tells DoT from plain DNS.
W_UNBOUND_EXTRA_dot=("log-queries: yes")
W_UNBOUND_EXTRA_plain=("log-queries: yes")

# ---------------------------------------------------------------------------
# What this file assumes about the installer and the plugin, all here, so
# that a change of either is adjusted in one place.
#
# - The installer is `dotproxy-cni install` with --cni-bin-dir,
#   --cni-conf-dir, --plugin-config and --source, watching until a signal.
# - It is ready once `dotproxy-cni ready` finds its --ready-file, which it
#   writes once the first list in the conf dir ends with its entry
#   (cri_installer_ready checks both, as the DaemonSet's probe does).
# - On SIGTERM it leaves its entry and the binary in place (an upgrade-safe
#   installer; CRI_SIGTERM_KEEPS=1): the rolling-update test checks that
#   both stayed, and tears a pod down while the installer is away. With
#   CRI_SIGTERM_KEEPS=0 the test expects the old behaviour (both removed).
# - The plugin logs "ADD container=<sandbox id> pod=<ns>/<name> ..." and
#   "DEL container=<sandbox id> ..." lines to its logFile.
CRI_SIGTERM_KEEPS=${CRI_SIGTERM_KEEPS:-1}

cri_installer_start() {
	: >"$CRI_DIR/installer.pid"
	(
		"$CRI_DIR/src/dotproxy-cni" install --cni-bin-dir "$CRI_DIR/cni-bin" \
			--cni-conf-dir "$CRI_DIR/net.d" \
			--source "$CRI_DIR/src/dotproxy-cni" \
			--ready-file "$CRI_DIR/ready" \
			--plugin-config "$(jq -cn --arg log "$CRI_DIR/cni.log" \
				'{namespaces: [], logFile: $log}')" \
			</dev/null >>"$CRI_DIR/installer.log" 2>&1 &
		echo $! >"$CRI_DIR/installer.pid"
	) 3>&-
	cri_wait 100 cri_installer_ready ||
		{ echo "installer not ready; its log:" >&2; cat "$CRI_DIR/installer.log" >&2; return 1; }
}

cri_installer_ready() {
	"$CRI_DIR/src/dotproxy-cni" ready "$CRI_DIR/ready" >/dev/null 2>&1 &&
		[ -x "$CRI_DIR/cni-bin/dotproxy-cni" ] &&
		[ "$(jq -r '.plugins[-1].type' "$CRI_DIR/net.d/$CRI_LIST" 2>/dev/null)" = dotproxy-cni ]
}

# Stops the installer as a DaemonSet rollout does (SIGTERM) and waits.
cri_installer_stop() {
	local pid
	pid=$(cat "$CRI_DIR/installer.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	: >"$CRI_DIR/installer.pid"
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dotproxy-cni ] || return 0
	kill -TERM "$pid" 2>/dev/null
	w_wait_gone 100 "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
	w_wait_gone 20 "$pid"
	return 1
}
# ---------------------------------------------------------------------------

# cri_wait TENTHS CMD...: polls CMD every 0.1 s until it succeeds.
cri_wait() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# The CRI client on our containerd's socket.
cri() {
	timeout 150 "$CRI_PYTHON" "$CRI_CLIENT" "$CRI_DIR/containerd.sock" "$@"
}

ctrd_ctr() {
	timeout 120 ctr --address "$CRI_DIR/containerd.sock" -n k8s.io "$@"
}

cri_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) dpkg --print-architecture ;;
	esac
}

# The primary network's list, as a node's primary CNI writes it: bridge
# with host-local on a documentation range, then the jq filter EDIT (a
# rewrite by the primary CNI; "." for none).
cri_primary_conflist() {
	jq -n --arg name "$CRI_NET" --arg ipam "$CRI_DIR/ipam" '{
		cniVersion: "1.0.0",
		name: $name,
		plugins: [
			{type: "bridge", bridge: "cni0", isGateway: true, ipMasq: false,
			 hairpinMode: true,
			 ipam: {type: "host-local", dataDir: $ipam,
				ranges: [[{subnet: "198.51.100.0/24"}]],
				routes: [{dst: "0.0.0.0/0"}]}}
		]
	}' | jq "$1"
}

# cri_rootfs_libs DIR BINARY...: copies the shared libraries (and the
# loader) the binaries load into DIR, as the Dockerfile's build stage does.
cri_rootfs_libs() {
	local dir=$1 l
	shift
	for l in $(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u); do
		cp -L --parents "$l" "$dir/" || return 1
	done
}

# cri_image_tar REF ROOTFS CONFIG-JSON OUT: a docker-archive image of
# one layer (ROOTFS, owned by root) with the image config's "config"
# object CONFIG-JSON, named REF.
cri_image_tar() {
	local ref=$1 rootfs=$2 cfg=$3 out=$4 d diff cid
	d=$(mktemp -d "$CRI_DIR/img.XXXXXX") || return 1
	tar --numeric-owner --owner=0 --group=0 --sort=name -C "$rootfs" \
		-cf "$d/layer.tar" . || return 1
	diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
	jq -n --arg arch "$(cri_arch)" --arg diff "sha256:$diff" --argjson cfg "$cfg" \
		'{architecture: $arch, os: "linux", config: $cfg,
		  rootfs: {type: "layers", diff_ids: [$diff]}}' >"$d/config.json" || return 1
	cid=$(sha256sum "$d/config.json" | cut -d' ' -f1)
	mv "$d/config.json" "$d/$cid.json"
	jq -n --arg c "$cid.json" --arg ref "$ref" \
		'[{Config: $c, RepoTags: [$ref], Layers: ["layer.tar"]}]' >"$d/manifest.json"
	tar -C "$d" -cf "$out" manifest.json "$cid.json" layer.tar || return 1
	rm -rf "$d"
}

# The three images, built into $CRI_DIR/images and imported into
# containerd's k8s.io namespace (the one its CRI plugin uses).
cri_images() {
	local i=$CRI_DIR/images r b
	mkdir -p "$i"
	gcc -static -Os -o "$i/pause" "$CRI_PAUSE_SRC" || return 1

	r=$i/pause.root
	mkdir -p "$r"
	cp "$i/pause" "$r/pause"
	cri_image_tar "$CRI_IMG_PAUSE" "$r" \
		'{"Entrypoint": ["/pause"], "User": "65535:65535"}' "$i/pause.tar" || return 1

	# The project's image: what the Dockerfile's final stage holds.
	r=$i/proxy.root
	mkdir -p "$r/usr/local/bin" "$r/etc/ssl/certs" "$r/usr/lib/ssl"
	for b in dotproxy dotproxy-init dotproxy-cni; do
		strip --strip-unneeded -o "$r/usr/local/bin/$b" "$W_BUILD/$b" || return 1
	done
	cri_rootfs_libs "$r" "$W_BUILD/dotproxy" "$W_BUILD/dotproxy-init" \
		"$W_BUILD/dotproxy-cni" || return 1
	cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/" || return 1
	ln -s /etc/ssl/certs/ca-certificates.crt "$r/usr/lib/ssl/cert.pem"
	printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' \
		'dotproxy:x:15353:15353:dotproxy:/:/sbin/nologin' \
		'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'dotproxy:x:15353:' 'nogroup:x:65534:' >"$r/etc/group"
	cri_image_tar "$CRI_IMG_PROXY" "$r" '{
		"Entrypoint": ["/usr/local/bin/dotproxy"], "User": "15353:15353",
		"Env": ["DOTPROXY_METRICS=127.0.0.1:9153",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]}' \
		"$i/proxy.tar" || return 1

	# The application: knows nothing of the proxy; resolves with glibc.
	r=$i/app.root
	mkdir -p "$r/usr/local/bin" "$r/etc"
	cp "$i/pause" "$r/pause"
	cp "$GAI" "$r/usr/local/bin/gai" || return 1
	cri_rootfs_libs "$r" "$GAI" || return 1
	printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' \
		'app:x:1000:1000:app:/:/sbin/nologin' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'app:x:1000:' >"$r/etc/group"
	echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
	cri_image_tar "$CRI_IMG_APP" "$r" \
		'{"Entrypoint": ["/pause"], "User": "1000:1000"}' "$i/app.tar" || return 1

	for b in pause proxy app; do
		ctrd_ctr images import "$i/$b.tar" >>"$CRI_DIR/import.log" 2>&1 ||
			{ echo "ctr images import $b.tar failed:" >&2; cat "$CRI_DIR/import.log" >&2; return 1; }
	done
}

# containerd's configuration: everything under $CRI_DIR, CNI from our
# directories (one list, as a node has), no plugin that writes elsewhere.
cri_containerd_conf() {
	local d=$CRI_DIR
	cat >"$d/containerd.toml" <<-EOF
		version = 2
		root = "$d/root"
		state = "$d/state"
		disabled_plugins = ["io.containerd.internal.v1.opt",
		  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.tracing.processor.v1.otlp"]

		[grpc]
		  address = "$d/containerd.sock"

		[ttrpc]
		  address = "$d/containerd.sock.ttrpc"

		[debug]
		  level = "info"

		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$CRI_IMG_PAUSE"
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  disable_apparmor = true
		  # A test process may not lower its OOM score (no CAP_SYS_RESOURCE).
		  restrict_oom_score_adj = true
		  enable_selinux = false
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        Root = "$d/runc"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$d/cni-bin"
		    conf_dir = "$d/net.d"
		    max_conf_num = 1
	EOF
}

cri_containerd_pid() {
	cat "$CRI_DIR/containerd.pid" 2>/dev/null
}

# Starts containerd in the node namespace and a mount namespace of its
# own, and waits until its CRI service answers.
cri_containerd_start() {
	(
		unshare --mount --propagation slave \
			nsenter --net="/var/run/netns/$CRI_NODE" \
			containerd --config "$CRI_DIR/containerd.toml" \
			</dev/null >>"$CRI_DIR/containerd.log" 2>&1 &
		echo $! >"$CRI_DIR/containerd.pid"
	) 3>&-
	cri_wait 300 cri version >/dev/null && return 0
	echo "containerd's CRI does not answer; the end of its log:" >&2
	tail -n 30 "$CRI_DIR/containerd.log" >&2
	return 1
}

# Why containerd cannot run here, if it genuinely cannot (the tests then
# skip with that reason); nothing if it can. A missing package is not such
# a reason: scripts/deps.sh installs them, and their absence fails setup.
cri_cannot_run() {
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
	grep -qw overlay /proc/filesystems ||
		{ echo "the kernel has no overlay file system (containerd's snapshotter)"; return 0; }
	[ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ] ||
		{ echo "no cgroup file system at /sys/fs/cgroup (runc needs one)"; return 0; }
	return 0
}

# cri_setup: the world, the node, the CNI directories and the installer,
# containerd, the images.
cri_setup() {
	local b
	world_setup || return 1
	CRI_DIR=$W_DIR/cri
	CRI_NODE=${W_POD%-pod}-node
	CRI_CG=${W_POD%-pod}-pods
	export CRI_DIR CRI_NODE CRI_CG
	mkdir -p "$CRI_DIR"/{cni-bin,net.d,ipam,pods,logs,runc}
	: >"$CRI_DIR/netns-made"
	# The shims put their sockets in /run/containerd/s (fixed in
	# containerd 1.6); the directories go again if this run made them.
	[ -e /run/containerd ] || touch "$CRI_DIR/made-run-containerd"

	ip netns add "$CRI_NODE" || return 1
	echo "$CRI_NODE" >>"$W_DIR/netns"
	ip -n "$CRI_NODE" link set lo up
	ip -n "$CRI_NODE" link add vup type veth peer name vnode netns "$W_UP" || return 1
	ip -n "$CRI_NODE" addr add 203.0.113.254/24 dev vup
	ip -n "$W_UP" addr add 203.0.113.2/24 dev vnode
	ip -n "$CRI_NODE" link set vup up
	ip -n "$W_UP" link set vnode up
	ip -n "$CRI_NODE" route add 192.0.2.0/24 via 203.0.113.2 || return 1
	ip -n "$W_UP" route add 198.51.100.0/24 via 203.0.113.254 || return 1
	ip netns exec "$CRI_NODE" sysctl -qw net.ipv4.ip_forward=1 || return 1

	for b in bridge host-local loopback; do
		[ -x "$CNI_REF_DIR/$b" ] ||
			{ echo "no $CNI_REF_DIR/$b (containernetworking-plugins)" >&2; return 1; }
		ln -s "$CNI_REF_DIR/$b" "$CRI_DIR/cni-bin/$b"
	done
	# A private copy: a concurrent relink of build/ cannot change it.
	mkdir -p "$CRI_DIR/src"
	cp "$CNI_BIN" "$CRI_DIR/src/dotproxy-cni" || return 1
	cri_primary_conflist . >"$CRI_DIR/net.d/$CRI_LIST"
	cri_installer_start || return 1

	cri_containerd_conf
	cri_containerd_start || return 1
	cri_images || return 1
}

# cri_pod NAME CAPTURE: runs a pod sandbox as the kubelet
# does (namespace "apps", the pod's DNS config, cgroup parent /$CRI_CG),
# with the annotation dotproxy/capture: "true" when CAPTURE is true, and
# in it the proxy (the project's image, its CA mounted read-only) and an
# app container; waits until the proxy listens. Records in
# $CRI_DIR/pods/NAME.*: id, pause pid, ip, app container id.
cri_pod() {
	local name=$1 capture=$2 p ann='{}' id pid st cid
	p=$CRI_DIR/pods/$name
	[ "$capture" != true ] || ann='{"dotproxy/capture": "true"}'
	mkdir -p "$CRI_DIR/logs/$name"
	jq -n --arg name "$name" --arg logs "$CRI_DIR/logs/$name" \
		--arg cg "/$CRI_CG" --argjson ann "$ann" '{
		name: $name, uid: ("uid-" + $name), namespace: "apps",
		hostname: $name, log_directory: $logs, cgroup_parent: $cg,
		labels: {app: $name},
		annotations: ($ann + {"kubernetes.io/config.source": "api"}),
		dns: {servers: ["192.0.2.2"],
		      searches: ["apps.svc.cluster.local", "svc.cluster.local", "cluster.local"],
		      options: ["ndots:5"]}}' >"$p.pod.json"
	id=$(cri runp "$p.pod.json") || return 1
	echo "$id" >"$p.id"
	st=$(cri inspectp "$id") || return 1
	# The network namespace containerd made, for the teardown.
	jq -r '.info.info.runtimeSpec.linux.namespaces[] | select(.type == "network") | .path // empty' \
		<<<"$st" >>"$CRI_DIR/netns-made"
	pid=$(jq -r '.info.info.pid' <<<"$st")
	if [ -z "$pid" ] || [ "$pid" = null ]; then
		echo "no pid in the sandbox status" >&2
		return 1
	fi
	echo "$pid" >"$p.pid"
	jq -r '.ip' <<<"$st" >"$p.ip"

	jq -n --arg img "$CRI_IMG_PROXY" --arg ca "$W_CA" '{
		name: "dotproxy", image: $img, log_path: "dotproxy.log",
		args: ["--transparent", "--upstream", "192.0.2.2@853#dot.test",
		       "--ca-file", "/etc/dotproxy/ca.pem", "--local-zone", "cluster.local",
		       "--log-queries", "--timeout", "1500"],
		envs: {DOTPROXY_SHUTDOWN_GRACE: "0", DOTPROXY_CACHE_SIZE: "0"},
		mounts: [{host_path: $ca, container_path: "/etc/dotproxy/ca.pem", readonly: true}],
		readonly_rootfs: true, no_new_privs: true, drop_capabilities: ["ALL"]}' >"$p.proxy.json"
	cid=$(cri create "$id" "$p.proxy.json" "$p.pod.json") || return 1
	cri start "$cid" || return 1
	jq -n --arg img "$CRI_IMG_APP" '{
		name: "app", image: $img, log_path: "app.log",
		run_as_user: 1000, run_as_group: 1000,
		readonly_rootfs: true, no_new_privs: true, drop_capabilities: ["ALL"]}' >"$p.app.json"
	cid=$(cri create "$id" "$p.app.json" "$p.pod.json") || return 1
	cri start "$cid" || return 1
	echo "$cid" >"$p.app"
	cri_wait 100 cri_proxy_listens "$name" && return 0
	echo "the proxy in pod $name does not listen; its log:" >&2
	cat "$CRI_DIR/logs/$name/dotproxy.log" >&2
	return 1
}

cri_pod_id() { cat "$CRI_DIR/pods/$1.id"; }
cri_pod_pid() { cat "$CRI_DIR/pods/$1.pid"; }
cri_pod_ip() { cat "$CRI_DIR/pods/$1.ip"; }

# cri_in_pod NAME CMD...: runs CMD (a host program) in pod NAME's network
# namespace.
cri_in_pod() {
	local pid
	pid=$(cri_pod_pid "$1")
	shift
	nsenter --net="/proc/$pid/ns/net" "$@"
}

cri_proxy_listens() {
	cri_in_pod "$1" ss -lntH 'sport = :15353' | grep -qF 127.0.0.1:15353 &&
		cri_in_pod "$1" ss -lnuH 'sport = :15353' | grep -qF 127.0.0.1:15353
}

# cri_lookup NAME HOST: the app container of pod NAME resolves HOST with
# getaddrinfo (ExecSync, as a probe or kubectl exec runs it).
cri_lookup() {
	cri exec "$(cat "$CRI_DIR/pods/$1.app")" 20 /usr/local/bin/gai "$2"
}

# cri_hold NAME: a process of ours keeps pod NAME's network namespace
# alive after the runtime let go of it, so that what the teardown left
# in it can be looked at (cri_held CMD...).
cri_hold() {
	local pid
	pid=$(cri_pod_pid "$1")
	(
		nsenter --net="/proc/$pid/ns/net" sleep 600 </dev/null >/dev/null 2>&1 &
		echo $! >"$CRI_DIR/pods/$1.holder"
	) 3>&-
	w_track "$(cat "$CRI_DIR/pods/$1.holder")"
}

cri_held() {
	local name=$1 pid
	pid=$(cat "$CRI_DIR/pods/$name.holder")
	shift
	nsenter --net="/proc/$pid/ns/net" "$@"
}

cri_unhold() {
	local pid
	pid=$(cat "$CRI_DIR/pods/$1.holder" 2>/dev/null) || return 0
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$CRI_DIR/pods/$1.holder"
}

# StopPodSandbox then RemovePodSandbox, as the kubelet tears a pod down.
cri_pod_down() {
	local id
	id=$(cri_pod_id "$1") || return 1
	cri stopp "$id" || return 1
	cri rmp "$id" || return 1
}

# The plugin types of our list as containerd's CRI has loaded it (its
# Status), comma-separated: "bridge,dotproxy-cni".
cri_loaded_types() {
	cri status | jq -r --arg n "$CRI_NET" '.cniconfig | fromjson | .Networks[]
		| select(.Config.Name == $n) | [.Config.Plugins[].Network.type] | join(",")'
}

# containerd's CRI has loaded our list with the plugin last.
cri_loaded_ours() {
	[ "$(cri_loaded_types)" = bridge,dotproxy-cni ]
}

# The first plugin's configuration as containerd's CRI has loaded it.
cri_loaded_primary() {
	cri status | jq -c --arg n "$CRI_NET" '.cniconfig | fromjson | .Networks[]
		| select(.Config.Name == $n) | .Config.Plugins[0].Source | fromjson'
}

# The file host-local keeps for an address it leased.
cri_lease() {
	echo "$CRI_DIR/ipam/$CRI_NET/$1"
}

# ---- teardown ----

# PIDs of the shims our containerd started (their command line names our
# socket).
cri_shim_pids() {
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		tr '\0' ' ' 2>/dev/null <"$f" |
			grep -qF -- "-address $CRI_DIR/containerd.sock " && echo "$pid"
	done
}

cri_teardown() {
	local pid id pids=() f sock cg i
	[ -n "${CRI_DIR:-}" ] && [ -d "$CRI_DIR" ] || return 0
	pid=$(cri_containerd_pid)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		for id in $(cri pods 2>/dev/null); do
			cri stopp "$id" >/dev/null 2>&1
			cri rmp "$id" >/dev/null 2>&1
		done
	fi
	cri_installer_stop || true
	for f in "$CRI_DIR"/pods/*.holder; do
		[ -f "$f" ] || continue
		f=${f##*/}
		cri_unhold "${f%.holder}"
	done
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ]; then
		kill -TERM "$pid"
		w_wait_gone 100 "$pid" || { kill -KILL "$pid"; w_wait_gone 20 "$pid"; }
	fi
	# Shims (and what runs under them) that outlived a failed removal.
	for f in "$CRI_DIR"/state/io.containerd.runtime.v2.task/k8s.io/*/address; do
		[ -f "$f" ] || continue
		sock=$(sed 's|^unix://||' "$f")
		echo "$sock" >>"$CRI_DIR/shim-sockets"
	done
	mapfile -t pids < <(cri_shim_pids)
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for cg in /sys/fs/cgroup/*/"$CRI_CG" /sys/fs/cgroup/"$CRI_CG"; do
		[ -d "$cg" ] || continue
		for i in 1 2 3; do
			find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null |
				while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null && break
			sleep 0.2
		done
	done
	[ "${#pids[@]}" -eq 0 ] || w_wait_gone 50 "${pids[@]}" || true
	# The shims' sockets (a shim killed never removed its own).
	while read -r sock; do
		case $sock in
		/run/containerd/s/*) rm -f "$sock" ;;
		esac
	done 2>/dev/null <"$CRI_DIR/shim-sockets"
	if [ -e "$CRI_DIR/made-run-containerd" ]; then
		rmdir /run/containerd/s /run/containerd 2>/dev/null || true
	fi
	# The pods' network namespaces: mounted only in containerd's mount
	# namespace, but their mount points are files the host sees.
	while read -r f; do
		case $f in
		/var/run/netns/cni-* | /run/netns/cni-*) rm -f "$f" ;;
		esac
	done <"$CRI_DIR/netns-made"
	# Nothing of ours can be mounted in the host's namespace; if something
	# is (a containerd started without its own), it goes.
	findmnt -rn -o TARGET | grep -F "$CRI_DIR/" | sort -r |
		while read -r f; do umount -l "$f" 2>/dev/null; done
	return 0
}

cri_file_setup() {
	local b why
	[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; return 1; }
	for b in "$DOTPROXY" "$CNI_BIN" "$INIT_BIN" "$GAI"; do
		[ -x "$b" ] || { echo "no $b (make $b)" >&2; return 1; }
	done
	for b in containerd ctr runc unshare nsenter gcc strip jq unbound kdig; do
		command -v "$b" >/dev/null || { echo "no $b (scripts/deps.sh)" >&2; return 1; }
	done
	"$CRI_PYTHON" -c 'import grpc' || { echo "no python3-grpcio (scripts/deps.sh)" >&2; return 1; }
	why=$(cri_cannot_run)
	if [ -n "$why" ]; then
		echo "$why" >"$BATS_FILE_TMPDIR/skip"
		return 0
	fi
	nft -s list ruleset >"$BATS_FILE_TMPDIR/root.before" || return 1
	cri_setup || { cri_dump >&2; cri_teardown; world_teardown; return 1; }
}

cri_skip_if_cannot() {
	[ ! -s "$BATS_FILE_TMPDIR/skip" ] || skip "containerd cannot run here: $(cat "$BATS_FILE_TMPDIR/skip")"
}

# For failure output: the ends of the logs.
cri_dump() {
	local f
	for f in containerd.log installer.log cni.log; do
		[ -f "$CRI_DIR/$f" ] || continue
		echo "--- $f (last 25 lines)"
		tail -n 25 "$CRI_DIR/$f"
	done
}
