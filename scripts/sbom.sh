#!/usr/bin/env bash
# Writes the SPDX 2.3 (JSON) software bill of materials of one build.
#
#   scripts/sbom.sh ARCH BUILD OUT [ROOTFS]
#
# ARCH is amd64 or arm64, BUILD the build directory holding the three
# binaries (not stripped), OUT the file to write, ROOTFS (optional) the
# staged image root whose other files (the CA bundle) are listed too.
#
# Every library in the binaries is found from the build itself, not from a
# list kept by hand: the shared ones from each binary's DT_NEEDED entries,
# resolved in the architecture's multiarch directories; the static ones
# from the link line the Makefile uses (-l names between -Wl,-Bstatic and
# -Wl,-Bdynamic, or archive paths). Each file is traced to the Debian
# package that installed it (dpkg -S), whose version comes from dpkg-query
# and whose licence from its /usr/share/doc/PKG/copyright (machine-readable
# DEP-5 where the package has it). Relationships say which binary links
# what, statically or dynamically. dotproxy's own sources are MIT; a binary
# that links GPL code statically is a combined work, distributed under the
# GPL, and the SBOM says so (licenseConcluded) with the reason (comment).
#
# Environment: VERSION (default: the file VERSION), SOURCE_DATE_EPOCH
# (default: the last commit's time) for the document's creation time, so
# that the same build gives the same bytes.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: sbom.sh ARCH BUILD OUT [ROOTFS]" >&2; exit 2; }
arch=$1 build=$2 out=$3 rootfs=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSION:-$(cat "$root/VERSION")}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
case $arch in
amd64) triplet=x86_64-linux-gnu readelf=readelf ;;
arm64) triplet=aarch64-linux-gnu readelf=aarch64-linux-gnu-readelf ;;
*) echo "sbom.sh: unknown architecture $arch" >&2; exit 2 ;;
esac
# The cross toolchain keeps its C library (libc.a of a static binary) apart.
libdirs=("/lib/$triplet" "/usr/lib/$triplet" /lib /usr/lib "/usr/$triplet/lib")

die() { echo "sbom.sh: $*" >&2; exit 1; }

# find_lib NAME: the file a library name (libfoo.so.1, libfoo.a) is in.
find_lib() {
	local d
	for d in "${libdirs[@]}"; do
		[ -e "$d/$1" ] && { printf '%s\n' "$d/$1"; return 0; }
	done
	return 1
}

# owner FILE: the Debian package (name:arch) that installed FILE. dpkg
# knows a file under the path it was packaged with: with merged /usr that
# may be /lib/... or /usr/lib/..., so all are tried.
owner() {
	local f=$1 real p
	real=$(readlink -f "$f")
	for p in "$f" "$real" "/usr${real#/usr}" "${real#/usr}"; do
		# "pkg:arch: /path" or "pkg: /path": everything before ": ".
		dpkg-query -S "$p" 2>/dev/null | head -1 | sed 's/: .*//' | grep . && return 0
	done
	return 1
}

# spdx_licence PKG: the package's licence as an SPDX expression, from its
# copyright file: DEP-5's "Files: *" paragraph (or the header's License),
# Debian's short names mapped to SPDX; otherwise recognised from the text.
# What a package ships of its source, where that is not "Files: *": the
# CA bundle is made from Mozilla's certdata.txt (the rest is scripts).
declare -A shipped=([ca-certificates]=mozilla/certdata.txt)
spdx_licence() {
	local f=/usr/share/doc/$1/copyright lic text
	[ -r "$f" ] || { echo NOASSERTION; return; }
	if head -1 "$f" | grep -q '^Format: .*copyright-format'; then
		lic=$(awk -v want="${shipped[$1]:-*}" '
			/^$/ { infiles = 0; header_done = 1 }
			!header_done && /^License:/ { sub(/^License: */, ""); hdr = $0 }
			/^Files:/ { infiles = (index(" " substr($0, 7) " ", " " want " ") > 0) }
			infiles && /^License:/ { sub(/^License: */, ""); print; exit }
			END { if (hdr != "") print hdr }' "$f" | head -1)
		# The stand-alone paragraph of that licence says whether "or later".
		text=$(awk -v l="$lic" '$0 == "License: " l { p = 1; next } p && /^ / { print; next } { p = 0 }' "$f")
	else
		text=$(cat "$f")
		if grep -q 'GNU Lesser General Public' <<<"$text"; then lic=LGPL-2.1
		elif grep -q 'GNU General Public License' <<<"$text"; then lic=GPL-2
		else lic=''
		fi
	fi
	local later=''
	grep -qi 'any later version' <<<"$text" && later=1
	case $lic in
	GPL-2+ | GPL-2.0+) echo GPL-2.0-or-later ;;
	GPL-2 | GPL-2.0) [ -n "$later" ] && echo GPL-2.0-or-later || echo GPL-2.0-only ;;
	LGPL-2.1+) echo LGPL-2.1-or-later ;;
	LGPL-2.1) [ -n "$later" ] && echo LGPL-2.1-or-later || echo LGPL-2.1-only ;;
	Expat) echo MIT ;;
	Apache-2.0 | MIT | MPL-2.0 | BSD-3-clause | BSD-2-clause) echo "${lic/clause/Clause}" ;;
	*) echo NOASSERTION ;;
	esac
}

# pkg_json PKG:ARCH KIND: one SPDX package for a Debian package; the
# library, not its -dev package, is what is in the binary: both come from
# one source package, named with its version.
pkg_json() {
	local p=$1 name ver src srcver a home lic
	IFS=$'\t' read -r name ver src srcver a home < <(dpkg-query -W \
		-f='${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\t${Homepage}\n' "$p")
	lic=$(spdx_licence "$name")
	jq -n --arg id "SPDXRef-deb-$name" --arg name "$name" --arg ver "$ver" \
		--arg src "$src" --arg srcver "$srcver" --arg a "$a" --arg home "${home:-NOASSERTION}" \
		--arg lic "$lic" --arg kind "$2" '{
		SPDXID: $id, name: $name, versionInfo: $ver,
		supplier: "Organization: Debian", downloadLocation: "NOASSERTION",
		homepage: $home, filesAnalyzed: false,
		licenseConcluded: $lic, licenseDeclared: $lic, copyrightText: "NOASSERTION",
		sourceInfo: ("Debian source package \($src) \($srcver); licence from /usr/share/doc/\($name)/copyright"),
		primaryPackagePurpose: $kind,
		externalRefs: [{referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
			referenceLocator: "pkg:deb/debian/\($name)@\($ver | @uri)?arch=\($a)&distro=debian-\(env.DEBIAN_VERSION_ID)"}]
	}'
}

export DEBIAN_VERSION_ID
DEBIAN_VERSION_ID=$(sed -n "s/^VERSION_ID=\"\?\([^\"]*\)\"\?$/\1/p" /etc/os-release)

declare -A pkgs=()    # package name:arch -> purpose
rels=()               # "A TYPE B" SPDX relationships
bin_pkgs=()           # the binaries' SPDX packages (JSON)

# static_libs VAR: the archives the Makefile's VAR links statically (-L
# directories on the link line are searched first).
static_libs() {
	local t static=0 saved=("${libdirs[@]}")
	for t in $(make -s -C "$root" --no-print-directory BUILD="$build" print-"$1"); do
		case $t in
		-L*) t=${t#-L}; [[ $t == /* ]] || t=$root/$t; libdirs=("$t" "${libdirs[@]}") ;;
		-Wl,-Bstatic | -static) static=1 ;;
		-Wl,-Bdynamic) static=0 ;;
		*.a) [[ $t == /* ]] && printf '%s\n' "$t" || printf '%s\n' "$root/$t" ;;
		-l*) [ "$static" = 1 ] && { find_lib "lib${t#-l}.a" || die "no lib${t#-l}.a for $arch"; } ;;
		esac
	done
	libdirs=("${saved[@]}")
}

# local_json ARCHIVE: an archive built here from source, not by a package,
# is described by ARCHIVE.sbom beside it: lines name=, version=, license=
# (SPDX), source= (where its source came from).
local_json() {
	local m=$1.sbom name
	[ -r "$m" ] || die "$1: no Debian package owns it and there is no $m (name=, version=, license=, source=)"
	name=$(sed -n 's/^name=//p' "$m")
	jq -n -R --arg id "SPDXRef-src-$name" '
		[inputs | select(test("^[a-z]+=")) | capture("^(?<key>[a-z]+)=(?<value>.*)$")] | from_entries as $m |
		{SPDXID: $id, name: $m.name, versionInfo: $m.version, supplier: "NOASSERTION",
		 downloadLocation: ($m.source // "NOASSERTION"), filesAnalyzed: false,
		 licenseConcluded: $m.license, licenseDeclared: $m.license, copyrightText: "NOASSERTION",
		 sourceInfo: "built from source by the dotproxy build", primaryPackagePurpose: "LIBRARY"}' <"$m"
}
local_pkgs=()

for b in dotproxy dotproxy-init dotproxy-cni; do
	bin=$build/$b
	[ -f "$bin" ] || die "no $bin"
	case $b in
	dotproxy) var=PROXY_LIBS ;;
	dotproxy-init) var=INIT_LIBS ;;
	dotproxy-cni) var=CNI_LIBS ;;
	esac
	id=SPDXRef-bin-$b
	gpl_static=()
	rels+=("SPDXRef-image CONTAINS $id")
	# Static archives: linked into the binary itself.
	while read -r a; do
		[ -n "$a" ] || continue
		if p=$(owner "$a"); then
			pkgs[$p]=LIBRARY
			l=$(spdx_licence "${p%%:*}") ref=SPDXRef-deb-${p%%:*}
		else
			j=$(local_json "$a")
			p=$(jq -r .name <<<"$j") l=$(jq -r .licenseConcluded <<<"$j") ref=$(jq -r .SPDXID <<<"$j")
			local_pkgs+=("$j")
		fi
		rels+=("$id STATIC_LINK $ref")
		case $l in GPL-*) gpl_static+=("${p%%:*}") ;; esac
	done < <(static_libs "$var")
	# Shared libraries, and theirs in turn (the image ships them all).
	queue=("$bin") seen=" "
	interp=$($readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	while [ "${#queue[@]}" -gt 0 ]; do
		f=${queue[0]} queue=("${queue[@]:1}")
		for n in $($readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			case $seen in *" $n "*) continue ;; esac
			seen+="$n "
			l=$(find_lib "$n") || die "$n (needed by $f) not found for $arch"
			queue+=("$l")
			p=$(owner "$l") || die "$l: no Debian package owns it"
			pkgs[$p]=LIBRARY
			rels+=("$id DYNAMIC_LINK SPDXRef-deb-${p%%:*}")
		done
	done
	if [ -n "$interp" ]; then
		p=$(owner "$interp") || die "$interp: no Debian package owns it"
		pkgs[$p]=LIBRARY
		rels+=("$id DYNAMIC_LINK SPDXRef-deb-${p%%:*}")
	elif ! $readelf -d "$bin" | grep -q '(NEEDED)'; then
		# A static executable holds the C library itself (libc.a).
		l=$(find_lib libc.a) || die "libc.a (linked into $b) not found for $arch"
		p=$(owner "$l") || die "$l: no Debian package owns it"
		pkgs[$p]=LIBRARY
		rels+=("$id STATIC_LINK SPDXRef-deb-${p%%:*}")
	fi
	if [ "${#gpl_static[@]}" -gt 0 ]; then
		concl=GPL-2.0-or-later
		comment="dotproxy's sources are MIT. This binary links ${gpl_static[*]} (GPL-2.0-or-later) statically: it is a combined work, distributed under the terms of GPL-2.0-or-later."
	else
		concl=MIT
		comment="dotproxy's sources, MIT; the libraries it loads at run time keep their own licences (listed)."
	fi
	bin_pkgs+=("$(jq -n --arg id "$id" --arg b "$b" --arg v "$version" --arg a "$arch" \
		--arg concl "$concl" --arg comment "$comment" --arg sum "$(sha256sum "$bin" | cut -d' ' -f1)" '{
		SPDXID: $id, name: $b, versionInfo: $v, supplier: "Organization: dotproxy",
		downloadLocation: "https://github.com/dotproxy/dotproxy", filesAnalyzed: false,
		checksums: [{algorithm: "SHA256", checksumValue: $sum}],
		licenseDeclared: "MIT", licenseConcluded: $concl, copyrightText: "NOASSERTION",
		comment: $comment, primaryPackagePurpose: "APPLICATION",
		externalRefs: [{referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
			referenceLocator: "pkg:github/dotproxy/dotproxy@\($v)"}]
	}')")
done

# What else the image holds from the build stage's packages (the CA bundle).
if [ -n "$rootfs" ]; then
	f=/etc/ssl/certs/ca-certificates.crt
	if [ -e "$rootfs$f" ]; then
		# Generated by update-ca-certificates, so owned by no package.
		p=$(owner "$f") || p=ca-certificates
		pkgs[$p]=DATA
		rels+=("SPDXRef-image CONTAINS SPDXRef-deb-${p%%:*}")
	fi
fi

lib_pkgs=()
[ "${#local_pkgs[@]}" -eq 0 ] || mapfile -t lib_pkgs < <(printf '%s\n' "${local_pkgs[@]}" | jq -c . | sort -u)
for p in $(printf '%s\n' "${!pkgs[@]}" | sort); do
	lib_pkgs+=("$(pkg_json "$p" "${pkgs[$p]}")")
done
# Libraries reached from several binaries appear once; relations too.
mapfile -t rels < <(printf '%s\n' "${rels[@]}" | sort -u)

name=dotproxy-$version-linux-$arch
{
	printf '%s\n' "${bin_pkgs[@]}" "${lib_pkgs[@]}" | jq -s .
	printf '%s\n' "${rels[@]}" | jq -R 'split(" ") | {spdxElementId: .[0], relationshipType: .[1], relatedSpdxElement: .[2]}' | jq -s .
} | jq -s --arg name "$name" --arg created "$created" --arg v "$version" --arg a "$arch" '
	.[0] as $pk | .[1] as $rel |
	{
		spdxVersion: "SPDX-2.3", dataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		name: $name,
		documentNamespace: "https://github.com/dotproxy/dotproxy/releases/\($v)/\($name).spdx.json",
		creationInfo: {created: $created, creators: ["Tool: dotproxy scripts/sbom.sh"]},
		packages: ([{
			SPDXID: "SPDXRef-image", name: "dotproxy image linux/\($a)", versionInfo: $v,
			supplier: "Organization: dotproxy", downloadLocation: "https://github.com/dotproxy/dotproxy",
			filesAnalyzed: false, primaryPackagePurpose: "CONTAINER",
			licenseDeclared: "MIT",
			licenseConcluded: ([$pk[].licenseConcluded] | unique | map(select(. != "NOASSERTION")) | join(" AND ")),
			copyrightText: "NOASSERTION"
		}] + $pk),
		relationships: ([{spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-image"}] + $rel)
	}' >"$out.tmp"
mv "$out.tmp" "$out"
