#!/usr/bin/env bash
# Builds the dotproxy image and checks it in a real Docker engine, with no
# image registry and no public address: the base image comes from debootstrap
# (cached), the DoT upstream is a local unbound container with a throw-away CA.
#
#   tests/docker/docker-ci.sh        (root; about 2-4 minutes the first time)
#
# Checks: image build, size (< 20 MB), non-root user, the SBOM inside; the standalone proxy;
# init + proxy sharing one namespace (docker run --network container:); the
# compose demo with compose.local.yaml (DoT answers and compose service names);
# docker-compose config on both files. The Cloudflare default is only validated.
#
# Installs docker.io, docker-compose and debootstrap with apt when missing and
# starts dockerd by hand when none is running. Whatever it started or added
# (dockerd, containers, networks, volumes, images, nftables tables, links,
# forwarding sysctls) is removed or restored on exit, even on failure.
#
# Exit status: 0 every check passed; 1 a check failed; 77 Docker cannot run
# here (the line starting "SKIP:" says why). Environment:
#   DOCKER_CI_WORK   logs directory (default build/docker-ci)
#   DOCKER_CI_CACHE  base rootfs cache (default /var/cache/dotproxy-ci)
#   DOCKER_CI_KEEP=1 keep the built images (and dockerd's data) for debugging
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
WORK=${DOCKER_CI_WORK:-$ROOT/build/docker-ci}
CACHE=${DOCKER_CI_CACHE:-/var/cache/dotproxy-ci}
BASE_IMAGE=debian:bookworm-slim
RUN=dpci$$
IMG=dotproxy:$RUN
UP_IMG=dotproxy-demo-upstream:$RUN
NET=${RUN}-net
VOL=${RUN}-ca
PROJECT=$RUN
AUTH=upstream.dotproxy.test
T0=$SECONDS

passed=0 failed=0
results=()
STARTED_DOCKERD=0 DOCKERD_PID=''
POLICY_RC_ADDED=0
IMAGES_BEFORE='' IMAGES_RECORDED=0
TABLES_BEFORE='' LINKS_BEFORE='' NETNS_MOUNTED_BEFORE=0
SYSCTL_SAVED=()
BRNF_LOADED_BEFORE=1

say() { printf '=== [%3ds] %s\n' "$((SECONDS - T0))" "$*"; }
skip_out() {
	echo "SKIP: $*"
	exit 77
}

# check NAME CMD...: runs one check, records "ok - NAME" or "not ok - NAME".
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		results+=("ok - $name")
		echo "ok - $name"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
	else
		failed=$((failed + 1))
		results+=("not ok - $name")
		echo "not ok - $name (exit $rc)"
		printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'
	fi
	return "$rc"
}

# ---------------------------------------------------------------- docker

# The Debian 20.10 client: the newer one sometimes earlier on PATH lacks buildx.
docker_bin() {
	if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}
dk() { "$DOCKER" "$@"; }
dc() {
	DOTPROXY_IMAGE=$IMG DOTPROXY_UPSTREAM_IMAGE=$UP_IMG DEBIAN_IMAGE=$BASE_IMAGE \
		docker-compose --ansi never -p "$PROJECT" \
		-f examples/compose/compose.yaml -f examples/compose/compose.local.yaml "$@"
}

install_packages() {
	local missing=() p
	command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || missing+=(docker.io containerd runc tini)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v docker-compose >/dev/null || missing+=(docker-compose)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	[ "${#missing[@]}" -gt 0 ] || return 0
	command -v apt-get >/dev/null || skip_out "no docker engine and no apt-get to install one"
	say "installing ${missing[*]}"
	# No init system here: keep the packages from starting their services.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		POLICY_RC_ADDED=1
	fi
	if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
			install -y -qq --no-install-recommends "${missing[@]}"; } \
		>"$WORK/apt.log" 2>&1; then
		tail -n 20 "$WORK/apt.log"
		skip_out "apt-get could not install ${missing[*]} (log: $WORK/apt.log)"
	fi
	if [ "$POLICY_RC_ADDED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_RC_ADDED=0
	fi
	for p in dockerd docker-compose debootstrap; do
		command -v "$p" >/dev/null || skip_out "$p still missing after apt-get install"
	done
}

save_sysctl() {
	local k=$1 f=/proc/sys/${1//.//}
	[ -r "$f" ] && SYSCTL_SAVED+=("$k=$(cat "$f")")
}

start_dockerd() {
	local dns mtu dev i
	if dk info >/dev/null 2>&1; then
		say "using the docker engine already running (left as it is)"
		return 0
	fi
	command -v dockerd >/dev/null || skip_out "dockerd is not installed"
	# Never let dockerd fall back to public resolvers: give it the host's own.
	dns=$(awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" { print $2; exit }' \
		/etc/resolv.conf)
	[ -n "$dns" ] || skip_out "no non-loopback nameserver in /etc/resolv.conf for dockerd --dns"
	dev=$(ip route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	mtu=$(cat "/sys/class/net/${dev:-none}/mtu" 2>/dev/null || echo 1500)
	[ "$mtu" -lt 1500 ] 2>/dev/null || mtu=1500

	# What dockerd leaves behind, to undo it afterwards.
	TABLES_BEFORE=$(nft list tables 2>/dev/null | sort)
	LINKS_BEFORE=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort)
	findmnt /var/run/docker/netns/default >/dev/null 2>&1 && NETNS_MOUNTED_BEFORE=1
	[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || BRNF_LOADED_BEFORE=0
	save_sysctl net.ipv4.ip_forward
	save_sysctl net.ipv6.conf.all.forwarding
	save_sysctl net.ipv6.conf.default.forwarding
	save_sysctl net.bridge.bridge-nf-call-iptables
	save_sysctl net.bridge.bridge-nf-call-ip6tables
	# With forwarding already on, dockerd leaves the FORWARD policy at ACCEPT
	# (it switches it to DROP only when it has to turn forwarding on itself).
	sysctl -qw net.ipv4.ip_forward=1

	say "starting dockerd --dns $dns --mtu $mtu"
	STARTED_DOCKERD=1
	# Its own session: a Ctrl-C or a timeout signalling this script's process
	# group must not stop dockerd before cleanup has removed what it made.
	setsid dockerd --dns "$dns" --mtu "$mtu" >"$WORK/dockerd.log" 2>&1 </dev/null &
	DOCKERD_PID=$!
	for ((i = 0; i < 120; i++)); do
		dk info >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.5
	done
	if ! dk info >/dev/null 2>&1; then
		tail -n 15 "$WORK/dockerd.log"
		skip_out "dockerd did not start (no permission, cgroups or storage driver?); log: $WORK/dockerd.log"
	fi
	dk info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}'
}

# Leftovers of an earlier run that was killed before its cleanup (names and
# tags dpci<pid>): removed so they do not pile up.
remove_stale() {
	local x
	for x in $(dk ps -aq --filter 'name=^dpci[0-9]'); do dk rm -f "$x"; done
	for x in $(dk network ls -q --filter 'name=^dpci[0-9]'); do dk network rm "$x"; done
	for x in $(dk volume ls -q --filter 'name=^dpci[0-9]'); do dk volume rm "$x"; done
	for x in $(dk images --format '{{.Repository}}:{{.Tag}}' |
		grep -E '^(dotproxy|dotproxy-demo-upstream):dpci[0-9]+$'); do
		dk rmi "$x"
	done
	return 0
}

# Base image without a registry: debootstrap minbase, cached as a tarball.
ensure_base() {
	local tar=$CACHE/debian-bookworm-minbase.tar mirror rootfs=$WORK/rootfs
	dk image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
	if [ ! -s "$tar" ]; then
		mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
		[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
		[ -n "$mirror" ] || { echo "cannot find the Debian mirror apt uses"; return 1; }
		say "debootstrap --variant=minbase bookworm ($mirror), cached in $tar"
		mkdir -p "$CACHE"
		debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
			>"$WORK/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$WORK/debootstrap.log"; return 1; }
		rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
			"$rootfs/etc/hostname"
		: >"$rootfs/etc/resolv.conf"
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
			rm -f "$rootfs/etc/apt/sources.list"
		fi
		tar -C "$rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar" || return 1
		remove_rootfs
	fi
	say "docker import $tar as $BASE_IMAGE"
	dk import -c 'CMD ["bash"]' - "$BASE_IMAGE" <"$tar" >/dev/null
}

remove_rootfs() {
	local rootfs=$WORK/rootfs m
	[ -d "$rootfs" ] || return 0
	# An interrupted debootstrap can leave proc/sys/dev mounted inside.
	findmnt -rn -o TARGET | grep "^$rootfs/" | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	rm -rf --one-file-system "$rootfs"
}

# ---------------------------------------------------------------- helpers

# wait_healthy CONTAINER [SECONDS]
wait_healthy() {
	local c=$1 n=${2:-60} s i
	for ((i = 0; i < n * 2; i++)); do
		s=$(dk inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null)
		case $s in
		*" healthy") return 0 ;;
		exited* | dead* | *unhealthy) break ;;
		esac
		sleep 0.5
	done
	echo "container $c is not healthy: $s"
	dk logs --tail 20 "$c" 2>&1
	return 1
}

# expect_line TEXT REGEX: TEXT has a line matching REGEX.
expect_line() {
	grep -Eq -- "$2" <<<"$1" || { echo "expected a line matching: $2"; return 1; }
}

# ---------------------------------------------------------------- checks

c_compose_config_default() {
	DOTPROXY_IMAGE=$IMG DEBIAN_IMAGE=$BASE_IMAGE \
		docker-compose -f examples/compose/compose.yaml config -q
}
c_compose_config_local() { dc config -q; }

c_build() {
	local rev
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	DOCKER_BUILDKIT=0 dk build --build-arg VERSION="$(cat VERSION)" \
		--build-arg REVISION="$rev" -t "$IMG" . >"$WORK/build.log" 2>&1 ||
		{ tail -n 40 "$WORK/build.log"; return 1; }
	sed -n '/^staged:/,/[[:space:]]\/out$/p' "$WORK/build.log"
}

c_build_upstream() {
	DOCKER_BUILDKIT=0 dk build -t "$UP_IMG" examples/compose/upstream \
		>"$WORK/build-upstream.log" 2>&1 ||
		{ tail -n 40 "$WORK/build-upstream.log"; return 1; }
}

c_size() {
	local size
	size=$(dk image inspect -f '{{.Size}}' "$IMG") || return 1
	echo "image size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
	[ "$size" -lt 20000000 ]
}

c_nonroot() {
	local user ver
	user=$(dk image inspect -f '{{.Config.User}}' "$IMG") || return 1
	echo "image user: $user"
	[ "$user" = "15353:15353" ] || return 1
	ver=$(dk run --rm "$IMG" --version) || return 1
	echo "dotproxy --version: $ver"
	dk run --rm --entrypoint /usr/local/bin/dotproxy-init "$IMG" --version
}

c_labels() {
	local l
	for l in title description source licenses version; do
		dk image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$l\"}}" "$IMG" |
			sed "s/^/$l: /" | grep -v ': $' || { echo "label $l missing"; return 1; }
	done
}

# The SBOM and the licences the build stage put in the image (no shell in
# it: docker cp from a created, never started, container).
c_sbom() {
	local cid rc=0
	cid=$(dk create "$IMG") || return 1
	dk cp "$cid:/usr/share/doc/dotproxy/sbom.spdx.json" "$WORK/sbom.spdx.json" &&
		dk cp "$cid:/usr/share/doc/libnftnl-dev/copyright" "$WORK/libnftnl.copyright" || rc=1
	dk rm "$cid" >/dev/null
	[ "$rc" = 0 ] || return 1
	jq -r '.packages[] | "\(.name) \(.versionInfo) \(.licenseConcluded)"' "$WORK/sbom.spdx.json"
	jq -e '.spdxVersion == "SPDX-2.3" and
		any(.relationships[]; .spdxElementId == "SPDXRef-bin-dotproxy-cni" and
			.relationshipType == "STATIC_LINK" and .relatedSpdxElement == "SPDXRef-deb-libnftnl-dev") and
		any(.packages[]; .name == "dotproxy-cni" and .licenseConcluded == "GPL-2.0-or-later") and
		any(.packages[]; .name == "libssl3")' "$WORK/sbom.spdx.json" >/dev/null
}

c_upstream_start() {
	dk network create --subnet 203.0.113.0/24 "$NET" >/dev/null || return 1
	dk volume create "$VOL" >/dev/null || return 1
	dk run -d --name "$RUN-upstream" --network "$NET" --ip 203.0.113.53 \
		-e DOT_AUTH_NAME=$AUTH -v "$VOL:/shared" "$UP_IMG" >/dev/null || return 1
	wait_healthy "$RUN-upstream" 60
}

# The standalone proxy: its own namespace, port 53 without root thanks to
# ip_unprivileged_port_start, queried from the host over the bridge.
c_standalone() {
	local out
	dk run -d --name "$RUN-standalone" --network "$NET" --ip 203.0.113.10 \
		--read-only --cap-drop ALL --security-opt no-new-privileges:true \
		--sysctl net.ipv4.ip_unprivileged_port_start=53 \
		-e DOTPROXY_LISTEN=0.0.0.0:53 -v "$VOL:/shared:ro" "$IMG" \
		--upstream "203.0.113.53@853#$AUTH" --ca-file /shared/ca.pem >/dev/null || return 1
	wait_healthy "$RUN-standalone" 30 || return 1
	out=$(dig @203.0.113.10 +time=3 +tries=2 +short dot-only.test A) || return 1
	expect_line "udp: $out" '^udp: 203\.0\.113\.7$' || return 1
	out=$(dig @203.0.113.10 +tcp +time=3 +tries=2 +short dot-only.test A) || return 1
	expect_line "tcp: $out" '^tcp: 203\.0\.113\.7$'
}

# init + proxy + app in one namespace owned by a sleeping container.
c_pair() {
	local out
	dk run -d --name "$RUN-pod" --network "$NET" --user 65534:65534 --read-only \
		--cap-drop ALL "$BASE_IMAGE" bash -c "trap 'exit 0' TERM; sleep infinity & wait" \
		>/dev/null || return 1
	dk run -d --name "$RUN-proxy" --network "container:$RUN-pod" \
		--read-only --cap-drop ALL --security-opt no-new-privileges:true \
		-v "$VOL:/shared:ro" "$IMG" --transparent \
		--upstream "203.0.113.53@853#$AUTH" --ca-file /shared/ca.pem >/dev/null || return 1
	wait_healthy "$RUN-proxy" 30 || return 1
	echo "init:"
	dk run --rm --name "$RUN-init" --network "container:$RUN-pod" --no-healthcheck \
		--user 0:0 --cap-drop ALL --cap-add NET_ADMIN --read-only \
		--entrypoint /usr/local/bin/dotproxy-init "$IMG" || return 1
	echo "init --check:"
	dk run --rm --network "container:$RUN-pod" --no-healthcheck \
		--user 0:0 --cap-drop ALL --cap-add NET_ADMIN --read-only \
		--entrypoint /usr/local/bin/dotproxy-init "$IMG" --check || return 1
	# The probe address lies in the test's own network: never anywhere else.
	echo "init --validate (UID 1000, no capabilities):"
	dk run --rm --network "container:$RUN-pod" --no-healthcheck \
		--user 1000:1000 --cap-drop ALL --read-only \
		--entrypoint /usr/local/bin/dotproxy-init "$IMG" \
		--validate --validate-addr 203.0.113.254 || return 1
	out=$(dk run --rm --network "container:$RUN-pod" --user 1000:1000 "$BASE_IMAGE" \
		bash -c "cat /etc/resolv.conf | grep ^nameserver; getent ahosts dot-only.test; getent ahosts $RUN-upstream") ||
		{ echo "$out"; return 1; }
	printf '%s\n' "$out"
	expect_line "$out" '^nameserver 127\.0\.0\.11$' || return 1
	expect_line "$out" '^203\.0\.113\.7 ' || return 1
	expect_line "$out" '^203\.0\.113\.53 '
}

c_pair_upstream_log() {
	local log
	log=$(dk logs "$RUN-upstream" 2>&1 | grep 'dot-only\.test\. ')
	printf '%s\n' "$log"
	expect_line "$log" 'info: 203\.0\.113\.[0-9]+ dot-only\.test\. A IN'
}

c_compose_up() {
	dc up -d --no-build >"$WORK/compose-up.log" 2>&1 ||
		{ cat "$WORK/compose-up.log"; return 1; }
	cat "$WORK/compose-up.log"
}

c_compose_app() {
	local id rc out
	id=$(dc ps -q app) || return 1
	[ -n "$id" ] || { echo "no app container"; return 1; }
	rc=$(timeout 120 "$DOCKER" wait "$id") || return 1
	out=$(dc logs --no-color app 2>&1)
	printf '%s\n' "$out"
	echo "app exit code: $rc"
	[ "$rc" = 0 ]
}

c_compose_dot() {
	local out
	out=$(dc logs --no-color app 2>&1)
	expect_line "$out" 'dot-only\.test -> 203\.0\.113\.7$' || return 1
	out=$(dc logs --no-color upstream 2>&1 | grep 'dot-only\.test\. ')
	printf '%s\n' "$out"
	expect_line "$out" 'info: 198\.51\.100\.[0-9]+ dot-only\.test\. A IN'
}

c_compose_names() {
	local out
	out=$(dc logs --no-color app 2>&1)
	grep -E ' (upstream|pod) -> ' <<<"$out"
	expect_line "$out" 'upstream -> 198\.51\.100\.53$' || return 1
	expect_line "$out" 'pod -> 198\.51\.100\.[0-9]+$'
}

# The proxy's own counters, read from the host inside the pod's namespace:
# names went upstream over DoT, and local ones to the embedded DNS.
c_compose_metrics() {
	local pid out
	pid=$(dk inspect -f '{{.State.Pid}}' "$(dc ps -q pod)") || return 1
	out=$(nsenter -t "$pid" -n curl -fsS --max-time 5 http://127.0.0.1:9153/metrics) || return 1
	out=$(grep -E '^dotproxy_(upstream_answers_total|local_queries_total|captured_queries_total)' <<<"$out")
	printf '%s\n' "$out"
	expect_line "$out" '^dotproxy_upstream_answers_total\{.*\} [1-9]' || return 1
	expect_line "$out" '^dotproxy_local_queries_total\{.*\} [1-9]'
}

c_compose_states() {
	local init proxy
	init=$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(dc ps -q init)") || return 1
	proxy=$(dk inspect -f '{{.State.Health.Status}} user={{.Config.User}} ro={{.HostConfig.ReadonlyRootfs}} capdrop={{.HostConfig.CapDrop}}' \
		"$(dc ps -q proxy)") || return 1
	echo "init: $init; proxy: $proxy"
	[ "$init" = "exited 0" ] && [[ $proxy == "healthy user=15353:15353 ro=true capdrop=[ALL]" ]]
}

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$? id t l kv k v
	trap - EXIT INT TERM
	say "cleanup"
	if [ -n "${DOCKER:-}" ] && dk info >/dev/null 2>&1; then
		dc down -v --remove-orphans -t 5 >/dev/null 2>&1
		for id in $(dk ps -aq --filter "name=$RUN"); do
			dk rm -f "$id" >/dev/null 2>&1
		done
		dk network rm "$NET" >/dev/null 2>&1
		dk volume rm "$VOL" >/dev/null 2>&1
		if [ "${DOCKER_CI_KEEP:-0}" != 1 ]; then
			dk rmi "$IMG" "$UP_IMG" >/dev/null 2>&1
			# Every image this run added (build stages, the imported base),
			# only on an engine it started itself: nobody else uses it.
			if [ "$STARTED_DOCKERD" = 1 ] && [ "$IMAGES_RECORDED" = 1 ]; then
				for t in 1 2 3; do
					for id in $(dk images -aq --no-trunc | sort -u); do
						grep -qx "$id" <<<"$IMAGES_BEFORE" || dk rmi -f "$id" >/dev/null 2>&1
					done
				done
			fi
		fi
	fi
	if [ "$STARTED_DOCKERD" = 1 ] && [ -n "$DOCKERD_PID" ]; then
		local kids
		kids=$(pgrep -P "$DOCKERD_PID" 2>/dev/null)
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for ((t = 0; t < 60; t++)); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$DOCKERD_PID" 2>/dev/null
		wait "$DOCKERD_PID" 2>/dev/null
		for id in $kids; do # containerd, started by this dockerd
			kill -0 "$id" 2>/dev/null && kill -TERM "$id" 2>/dev/null
		done
		sleep 1
		for id in $kids; do kill -KILL "$id" 2>/dev/null; done
		# Tables dockerd made (ip nat, ip filter, ...), then its links.
		while read -r t fam name; do
			[ "$t" = table ] || continue
			grep -qxF "table $fam $name" <<<"$TABLES_BEFORE" ||
				nft delete table "$fam" "$name" 2>/dev/null ||
				echo "warning: could not delete table $fam $name"
		done < <(nft list tables 2>/dev/null)
		while read -r l; do
			case $l in docker0 | br-* | veth*) ;; *) continue ;; esac
			grep -qxF "$l" <<<"$LINKS_BEFORE" || ip link delete "$l" 2>/dev/null
		done < <(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
		if [ "$NETNS_MOUNTED_BEFORE" = 0 ] && findmnt /var/run/docker/netns/default >/dev/null 2>&1; then
			umount /var/run/docker/netns/default 2>/dev/null
		fi
		if [ "$BRNF_LOADED_BEFORE" = 0 ] && [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
			modprobe -r br_netfilter 2>/dev/null ||
				{ sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 2>/dev/null; }
		fi
		for kv in "${SYSCTL_SAVED[@]}"; do
			k=${kv%%=*} v=${kv#*=}
			sysctl -qw "$k=$v" 2>/dev/null || echo "warning: could not restore $k=$v"
		done
	fi
	[ "$POLICY_RC_ADDED" = 1 ] && rm -f /usr/sbin/policy-rc.d
	remove_rootfs
	if [ "$STARTED_DOCKERD" = 1 ]; then
		echo "after cleanup: nft tables: [$(nft list tables 2>/dev/null | tr '\n' ' ')]," \
			"ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)," \
			"docker0: $(ip link show docker0 >/dev/null 2>&1 && echo present || echo absent)"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------- main

[ "$(id -u)" -eq 0 ] || skip_out "needs root (it installs and starts dockerd)"
mkdir -p "$WORK" || exit 1
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_packages
DOCKER=$(docker_bin)
[ -n "$DOCKER" ] || skip_out "no docker client"
start_dockerd
remove_stale >/dev/null 2>&1
IMAGES_BEFORE=$(dk images -aq --no-trunc | sort -u) && IMAGES_RECORDED=1

say "compose files"
check "compose: config -q compose.yaml (Cloudflare default, never started)" c_compose_config_default
check "compose: config -q compose.yaml + compose.local.yaml" c_compose_config_local

say "base image"
if ! check "base: $BASE_IMAGE present (debootstrap + docker import, no registry)" ensure_base; then
	echo "cannot go on without the base image"
else
	say "image"
	if check "image: docker build (multi-stage, FROM scratch)" c_build; then
		check "image: size below 20 MB" c_size
		check "image: runs as non-root 15353:15353, --version works" c_nonroot
		check "image: OCI labels" c_labels
		check "image: SBOM and licences inside" c_sbom
		say "local DoT upstream"
		if check "upstream: docker build examples/compose/upstream" c_build_upstream &&
			check "upstream: container healthy on 203.0.113.53 (throw-away CA)" c_upstream_start; then
			say "docker run: standalone and pair"
			check "run: standalone proxy on :53 as non-root answers over UDP and TCP" c_standalone
			check "run: init + proxy + app in one namespace (DoT answer, container names)" c_pair
			check "run: upstream query log shows the app's name" c_pair_upstream_log
			say "compose demo (compose.yaml + compose.local.yaml)"
			if check "compose: up -d" c_compose_up; then
				check "compose: app exits 0" c_compose_app
				check "compose: app got DoT answers (dot-only.test, upstream query log)" c_compose_dot
				check "compose: compose service names still resolve" c_compose_names
				check "compose: proxy metrics show DoT and local-zone answers" c_compose_metrics
				check "compose: init exited 0, proxy healthy, non-root, read-only" c_compose_states
			fi
			dc logs --no-color >"$WORK/compose.log" 2>&1
		fi
	fi
fi

echo
echo "docker-ci summary ($((SECONDS - T0)) s):"
printf '  %s\n' "${results[@]}"
echo "docker-ci: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
