#!/usr/bin/env bash
# Installs what building and testing dotproxy need on Debian or Ubuntu.
# Idempotent: when every package is present it only checks and returns.
set -euo pipefail
pkgs=(build-essential pkg-config libssl-dev libmnl-dev libnftnl-dev openssl ca-certificates
	bats unbound dnsutils knot-dnsutils dnsperf iproute2 nftables procps psmisc
	curl jq shellcheck libc-bin libcap2-bin util-linux)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The unbound package starts a system resolver on port 53 where systemd runs;
# the tests run their own copies, so leave the system one as the admin had it.
echo "deps: done"
