#!/usr/bin/env bats
# make release (scripts/release.sh): two releases of the same commit, in two
# clean directories, are byte-identical; the tarballs hold what they should
# for their architecture; each image's binaries are of its architecture and
# answer --version (arm64 under qemu-user, inside the image's own root, so a
# library the image lacks fails); the manifest list names both images; the
# SBOMs list every library in the binaries with the version and licence of
# the Debian package it came from. Needs scripts/deps.sh cross; root (for
# chroot). No network, no container engine.

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-600}

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || return 1
	export ROOT=$PWD V REL_SKIP=""
	V=$(cat VERSION)
	# bats 1.8 fails a skip in setup_file: the reason goes to setup().
	if [ "$(id -u)" -ne 0 ]; then
		REL_SKIP="needs root (chroot into the images)"
		return 0
	fi
	if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
		REL_SKIP="no arm64 toolchain (scripts/deps.sh cross)"
		return 0
	fi
	# Release builds set their own flags (SANITIZE and OPT included), so the
	# sanitizer round builds and checks the same release.
	export REL=$BATS_FILE_TMPDIR
	RELEASE_UNRELEASED=1 RELEASE_DIR=$REL/a nice bash scripts/release.sh "$V" >"$REL/a.log" 2>&1 ||
		{ cat "$REL/a.log"; return 1; }
	RELEASE_UNRELEASED=1 RELEASE_DIR=$REL/b nice bash scripts/release.sh "$V" >"$REL/b.log" 2>&1 ||
		{ cat "$REL/b.log"; return 1; }
}

setup() {
	[ -z "$REL_SKIP" ] || skip "$REL_SKIP"
	cd "$ROOT" || return 1
	A=$REL/a
}

# layer_of OCI_TAR DIR: unpacks the image's one layer into DIR; prints the
# image configuration.
layer_of() {
	local t=$BATS_TEST_TMPDIR/oci.$RANDOM m c l
	mkdir -p "$t" "$2"
	tar -xf "$1" -C "$t"
	m=$(jq -r '.manifests[0].digest' "$t/index.json")
	c=$(jq -r '.config.digest' "$t/blobs/sha256/${m#sha256:}")
	l=$(jq -r '.layers[0].digest' "$t/blobs/sha256/${m#sha256:}")
	tar -xzf "$t/blobs/sha256/${l#sha256:}" -C "$2"
	cat "$t/blobs/sha256/${c#sha256:}"
}

@test "release: two builds of one commit in clean directories are byte-identical" {
	local f n=0
	diff <(cd "$REL/a" && ls) <(cd "$REL/b" && ls)
	for f in "$REL"/a/*; do
		cmp "$f" "$REL/b/${f##*/}"
		n=$((n + 1))
	done
	[ "$n" -eq 10 ]
	(cd "$A" && sha256sum -c --quiet SHA256SUMS)
	[ "$(wc -l <"$A/SHA256SUMS")" -eq 9 ]
}

@test "release: each tarball holds its architecture's binaries, man pages, licences, SBOM" {
	local arch machine t b
	for arch in amd64 arm64; do
		case $arch in amd64) machine='X86-64' ;; arm64) machine=AArch64 ;; esac
		t=$BATS_TEST_TMPDIR/$arch
		mkdir -p "$t"
		tar -xzf "$A/dotproxy-$V-linux-$arch.tar.gz" -C "$t"
		d=$t/dotproxy-$V-linux-$arch
		for b in dotproxy dotproxy-init dotproxy-cni; do
			readelf -h "$d/bin/$b" | grep -q "Machine:.*$machine"
			[ -f "$d/share/man/man8/$b.8" ]
			grep -q "^\.TH .* \"dotproxy $V\"" "$d/share/man/man8/$b.8"
		done
		cmp "$d/LICENSE" LICENSE
		cmp "$d/sbom.spdx.json" "$A/dotproxy-$V-linux-$arch.spdx.json"
		[ -s "$d/licenses/libnftnl-dev.copyright" ]
		# Owners and times are fixed, whoever built it.
		! tar -tvzf "$A/dotproxy-$V-linux-$arch.tar.gz" | grep -v ' 0/0 '
	done
	tar -tzf "$A/dotproxy-$V.tar.gz" | grep -qx "dotproxy-$V/proxy/main.c"
}

@test "images: each image's binaries are of its architecture and answer --version" {
	local arch machine r cfg b out rev
	rev=$(git rev-parse --short HEAD)
	for arch in amd64 arm64; do
		r=$BATS_TEST_TMPDIR/root-$arch
		cfg=$(layer_of "$A/dotproxy-$V-linux-$arch.oci.tar" "$r")
		[ "$(jq -r .architecture <<<"$cfg")" = "$arch" ]
		[ "$(jq -r .os <<<"$cfg")" = linux ]
		[ "$(jq -r .config.User <<<"$cfg")" = 15353:15353 ]
		[ "$(jq -c .config.Entrypoint <<<"$cfg")" = '["/usr/local/bin/dotproxy"]' ]
		case $arch in
		amd64) machine='X86-64' emu=() ;;
		arm64)
			machine=AArch64
			# qemu-user inside the image's root: only the image's libraries.
			cp "$(command -v qemu-aarch64-static)" "$r/qemu"
			emu=(/qemu)
			;;
		esac
		for b in dotproxy dotproxy-init dotproxy-cni; do
			readelf -h "$r/usr/local/bin/$b" | grep -q "Machine:.*$machine"
			out=$(chroot "$r" "${emu[@]}" "/usr/local/bin/$b" --version)
			echo "$arch $b: $out"
			[[ $out == "$b $V"* ]]
		done
		[[ $(chroot "$r" "${emu[@]}" /usr/local/bin/dotproxy --version) == "dotproxy $V ($rev)" ]]
		cmp "$r/usr/share/doc/dotproxy/sbom.spdx.json" "$A/dotproxy-$V-linux-$arch.spdx.json"
	done
}

@test "images: the manifest list names both platforms, and every blob is what its name says" {
	local t=$BATS_TEST_TMPDIR/multi idx f
	mkdir -p "$t"
	tar -xf "$A/dotproxy-$V.oci.tar" -C "$t"
	jq -e '.imageLayoutVersion == "1.0.0"' "$t/oci-layout"
	idx=$(jq -r '.manifests[0] | select(.mediaType == "application/vnd.oci.image.index.v1+json") | .digest' "$t/index.json")
	[ -n "$idx" ]
	[ "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$t/index.json")" = "$V" ]
	[ "$(jq -r '[.manifests[].platform | .architecture + (.variant // "" | if . != "" then "/" + . else . end)] | join(" ")' \
		"$t/blobs/sha256/${idx#sha256:}")" = "amd64 arm64/v8" ]
	for f in "$t"/blobs/sha256/*; do
		[ "$(sha256sum "$f" | cut -d' ' -f1)" = "${f##*/}" ]
	done
	# Each manifest of the list is the one of the per-architecture archive.
	for arch in amd64 arm64; do
		mkdir -p "$t/$arch"
		tar -xf "$A/dotproxy-$V-linux-$arch.oci.tar" -C "$t/$arch"
		jq -e --arg d "$(jq -r '.manifests[0].digest' "$t/$arch/index.json")" \
			'[.manifests[].digest] | index($d) != null' "$t/blobs/sha256/${idx#sha256:}"
		# docker load reads the manifest.json beside the layout.
		jq -e '.[0].Layers | length == 1' "$t/$arch/manifest.json"
	done
}

@test "sbom: every library in the binaries, with its package's version and licence" {
	local arch s b n lib p machine
	for arch in amd64 arm64; do
		s=$A/dotproxy-$V-linux-$arch.spdx.json
		jq -e '.spdxVersion == "SPDX-2.3" and .dataLicense == "CC0-1.0"' "$s"
		# Every relationship joins elements the document defines.
		jq -e '([.packages[].SPDXID] + ["SPDXRef-DOCUMENT"]) as $ids |
			[.relationships[] | .spdxElementId, .relatedSpdxElement] | all(. as $x | $ids | index($x) != null)' "$s"
		# Every package has a real licence and the version dpkg has installed.
		jq -e '[.packages[] | select(.licenseConcluded == "NOASSERTION" or .licenseConcluded == "")] | length == 0' "$s"
		while read -r p ver; do
			# Architecture-independent ones (the CA bundle) have no :arch.
			[ "$(dpkg-query -W -f='${Version}' "$p:$arch" 2>/dev/null ||
				dpkg-query -W -f='${Version}' "$p")" = "$ver" ]
		done < <(jq -r '.packages[] | select(.SPDXID | startswith("SPDXRef-deb-")) | "\(.name) \(.versionInfo)"' "$s")
		# Every shared library the image ships is in the SBOM.
		r=$BATS_TEST_TMPDIR/root-$arch
		layer_of "$A/dotproxy-$V-linux-$arch.oci.tar" "$r" >/dev/null
		for lib in "$r"/lib/*/*.so.*; do
			n=${lib##*/}
			case $arch in amd64) machine=x86_64 ;; arm64) machine=aarch64 ;; esac
			p=$(dpkg-query -S "/usr/lib/$machine-linux-gnu/$n" "/lib/$machine-linux-gnu/$n" 2>/dev/null | head -1 | cut -d: -f1)
			[ -n "$p" ]
			jq -e --arg p "$p" '[.packages[].name] | index($p) != null' "$s" >/dev/null ||
				{ echo "$arch: $n ($p) missing from the SBOM"; return 1; }
		done
		# The links, and the licence of each binary.
		# dotproxy-cni is static: libc too (the cross toolchain's on arm64).
		case $arch in amd64) libc=SPDXRef-deb-libc6-dev ;; arm64) libc=SPDXRef-deb-libc6-dev-arm64-cross ;; esac
		jq -e --arg libc "$libc" '[.relationships[] | select(.spdxElementId == "SPDXRef-bin-dotproxy-cni" and .relationshipType == "STATIC_LINK") | .relatedSpdxElement] | sort == ([$libc, "SPDXRef-deb-libjansson-dev", "SPDXRef-deb-libnftnl-dev"] | sort)' "$s"
		jq -e '[.relationships[] | select(.spdxElementId == "SPDXRef-bin-dotproxy" and .relationshipType == "DYNAMIC_LINK") | .relatedSpdxElement] | contains(["SPDXRef-deb-libssl3", "SPDXRef-deb-libmnl0", "SPDXRef-deb-libseccomp2", "SPDXRef-deb-libc6"])' "$s"
		jq -e '.packages[] | select(.name == "dotproxy-cni") | .licenseConcluded == "GPL-2.0-or-later" and .licenseDeclared == "MIT"' "$s"
		jq -e '.packages[] | select(.name == "dotproxy") | .licenseConcluded == "MIT"' "$s"
		jq -e '.packages[] | select(.name == "libnftnl-dev") | .licenseConcluded == "GPL-2.0-or-later"' "$s"
		jq -e '.packages[] | select(.name == "libssl3") | .licenseConcluded == "Apache-2.0"' "$s"
		jq -e '.packages[] | select(.name == "libseccomp2") | .licenseConcluded == "LGPL-2.1-only"' "$s"
		# The image says the same in its label.
		jq -e --arg l "$(jq -r '.packages[] | select(.SPDXID == "SPDXRef-image") | .licenseConcluded' "$s")" \
			'.config.Labels["org.opencontainers.image.licenses"] == $l and ($l | contains("GPL-2.0-or-later"))' \
			<(layer_of "$A/dotproxy-$V-linux-$arch.oci.tar" "$BATS_TEST_TMPDIR/x-$arch")
	done
}

@test "release notes: the CHANGELOG section of the version" {
	local c=$BATS_TEST_TMPDIR/CHANGELOG.md
	printf '%s\n' '# Changelog' '' '## [Unreleased]' '' '- next' '' '## [1.2.0] - 2026-01-02' '' \
		'### Fixed' '' '- a thing' '' '## [1.1.0] - 2025-12-01' '' '- older' '' \
		'[1.2.0]: https://example.invalid' >"$c"
	run bash scripts/release.sh --notes 1.2.0 "$c"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' '## [1.2.0] - 2026-01-02' '' '### Fixed' '' '- a thing')" ]
	run bash scripts/release.sh --notes 1.1.0 "$c"
	[ "${lines[1]}" = "- older" ]
	run bash scripts/release.sh --notes 1.3.0 "$c"
	[ "$status" -ne 0 ]
	# No section for the version: no release (unless told to use Unreleased).
	run env RELEASE_DIR="$BATS_TEST_TMPDIR/none" bash scripts/release.sh 9.9.9
	[ "$status" -eq 1 ]
	[[ $output == *"no '## [9.9.9]' section"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/none" ]
	run bash scripts/release.sh 1.2
	[ "$status" -eq 2 ]
	grep -q "^# dotproxy $V" "$A/RELEASE-NOTES.md"
	grep -q "^### Added" "$A/RELEASE-NOTES.md"
}
