#!/usr/bin/env bash
# make release VERSION=x.y.z: everything a release publishes, reproducibly.
#
#   scripts/release.sh [VERSION]           (default: the file VERSION)
#   scripts/release.sh --notes VERSION [CHANGELOG]   print that version's section
#
# Builds from the committed tree (git archive HEAD), never from the work
# tree, so what is released is what the commit holds, and writes to
# RELEASE_DIR (default build/release):
#
#   dotproxy-V.tar.gz                    the source
#   dotproxy-V-linux-ARCH.tar.gz         amd64 and arm64: bin/ (stripped),
#                                        share/man/man8/, LICENSE, README.md,
#                                        CHANGELOG.md, SECURITY.md, docs/,
#                                        sbom.spdx.json, licenses/ of the
#                                        libraries in the binaries
#   dotproxy-V-linux-ARCH.oci.tar        the image per architecture (OCI layout;
#                                        docker load reads it too)
#   dotproxy-V-linux-ARCH.spdx.json      its SBOM (also inside the image)
#   dotproxy-V.oci.tar                   both images under one image index
#                                        (the manifest list), for skopeo/crane/oras
#   RELEASE-NOTES.md                     the CHANGELOG.md section of V
#   SHA256SUMS                           of all the above
#
# Reproducible: SOURCE_DATE_EPOCH is the commit's time; the compiler maps
# the build path away (-ffile-prefix-map); tars are sorted with fixed times,
# owners and modes; gzip stores no name or time. Two runs on the same
# commit give byte-identical files (tests/e2e/release.bats).
#
# A release needs a "## [V]" section in CHANGELOG.md; RELEASE_UNRELEASED=1
# takes "## [Unreleased]" instead (for trying the procedure).
# Needs scripts/deps.sh cross (the arm64 toolchain and libraries).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

# notes VERSION FILE: the Keep a Changelog section "## [VERSION]", from its
# heading to the next "## [" heading, with trailing blank lines dropped.
notes() {
	awk -v v="$1" '
		/^## \[/ { if (p) exit; if (index($0, "## [" v "]") == 1) p = 1 }
		p { lines[++n] = $0 }
		END { while (n > 0 && lines[n] ~ /^[[:space:]]*$/) n--; for (i = 1; i <= n; i++) print lines[i]; if (!p) exit 1 }
	' "$2"
}

if [ "${1:-}" = --notes ]; then
	notes "$2" "${3:-$root/CHANGELOG.md}"
	exit
fi

version=${1:-$(cat "$root/VERSION")}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
	{ echo "release: VERSION '$version' is not x.y.z" >&2; exit 2; }
cd "$root"
git rev-parse --verify -q HEAD >/dev/null || { echo "release: not a git checkout" >&2; exit 2; }
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	echo "release: the work tree has uncommitted changes; releasing HEAD ($(git rev-parse --short HEAD)) without them" >&2

export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
rev=$(git rev-parse --short HEAD)
out=${RELEASE_DIR:-$root/build/release}
work=${RELEASE_WORK:-$out.work}
name=dotproxy-$version
export LC_ALL=C TZ=UTC

dtar() {
	tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf - "$2" | gzip -n -9 >"$3"
}

# The release notes first: no section, no release.
if ! notes "$version" CHANGELOG.md >/dev/null; then
	if [ "${RELEASE_UNRELEASED:-0}" = 1 ] && notes Unreleased CHANGELOG.md >/dev/null; then
		echo "release: CHANGELOG.md has no [$version] section; using [Unreleased]" >&2
		notes_version=Unreleased
	else
		echo "release: CHANGELOG.md has no '## [$version]' section (rename [Unreleased] first)" >&2
		exit 1
	fi
else
	notes_version=$version
fi

rm -rf "$out" "$work"
mkdir -p "$out" "$work"
src=$work/$name
mkdir -p "$src"
git archive --format=tar HEAD | tar -x -C "$src"
echo "$version" >"$src/VERSION"
find "$src" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dtar "$work" "$name" "$out/$name.tar.gz"

# The same flags for both architectures, whatever the caller's environment
# says; the build path is mapped to the source tarball's name.
mk=(make -C "$src" -j"${RELEASE_JOBS:-2}" VERSION="$version" GIT_REV="$rev" SANITIZE= WERROR=1
	OPT='-O2 -g' CFLAGS="-ffile-prefix-map=$src=$name" LDFLAGS= BUILD=build)
echo "release: building $name ($rev) for amd64 and arm64" >&2
"${mk[@]}" -s all man
"${mk[@]}" -s arm64

for arch in amd64 arm64; do
	case $arch in
	amd64) b=$src/build cross= ;;
	arm64) b=$src/build/arm64 cross=aarch64-linux-gnu- ;;
	esac
	# The image (and its SBOM) first: the tarball carries the same SBOM.
	img=$work/image-$arch
	VERSION=$version REVISION=$rev bash "$src/scripts/image.sh" build "$arch" "$b" "$img"
	bash "$src/scripts/image.sh" archive "$img/oci" "$out/$name-linux-$arch.oci.tar"
	cp "$img/sbom.spdx.json" "$out/$name-linux-$arch.spdx.json"

	t=$work/tar-$arch/$name-linux-$arch
	mkdir -p "$t/bin" "$t/share/man/man8" "$t/licenses"
	for p in dotproxy dotproxy-init dotproxy-cni; do
		"${cross}strip" --strip-unneeded -o "$t/bin/$p" "$b/$p"
		chmod 0755 "$t/bin/$p"
	done
	install -m 0644 "$src"/build/man/*.8 "$t/share/man/man8/"
	install -m 0644 "$src/LICENSE" "$src/README.md" "$src/CHANGELOG.md" "$src/SECURITY.md" "$t/"
	mkdir -p "$t/docs"
	install -m 0644 "$src"/docs/*.md "$t/docs/"
	install -m 0644 "$img/sbom.spdx.json" "$t/sbom.spdx.json"
	for p in $(jq -r '.packages[] | select(.SPDXID | startswith("SPDXRef-deb-")) | .name' "$img/sbom.spdx.json"); do
		install -m 0644 "/usr/share/doc/$p/copyright" "$t/licenses/$p.copyright"
	done
	find "$t" -type d -exec chmod 0755 {} +
	find "$t" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dtar "$work/tar-$arch" "$name-linux-$arch" "$out/$name-linux-$arch.tar.gz"
done

bash "$src/scripts/image.sh" index "$work/index" "$work/image-amd64" "$work/image-arm64"
bash "$src/scripts/image.sh" archive "$work/index" "$out/$name.oci.tar"

{
	echo "# dotproxy $version"
	echo
	if [ "$notes_version" = Unreleased ]; then
		notes Unreleased CHANGELOG.md | sed "1s/.*/## [$version] (from [Unreleased])/"
	else
		notes "$version" CHANGELOG.md
	fi
	echo
	echo "Built from commit $rev; SHA256SUMS lists every file. dotproxy-cni links libnftnl"
	echo "(GPL-2.0-or-later) statically and is distributed under GPL-2.0-or-later; the sources"
	echo "are MIT. The SBOMs (SPDX 2.3) name every library in each binary and image."
	# The GPL wants the source of what is linked in: say which one it is.
	jq -r '.packages[] | select(.licenseConcluded | startswith("GPL")) |
		select(.SPDXID | startswith("SPDXRef-deb-")) | "GPL code inside, its corresponding source: \(.sourceInfo | sub("; licence.*"; ""))."' \
		"$work/image-amd64/sbom.spdx.json" | sort -u
} >"$out/RELEASE-NOTES.md"

(cd "$out" && sha256sum -- *.md *.json *.tar *.tar.gz >SHA256SUMS)
[ "${RELEASE_KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
echo "release: $out" >&2
(cd "$out" && cat SHA256SUMS)
