#!/usr/bin/env bash
# Builds the dotproxy image for one architecture as an OCI image, without a
# container engine, from a (cross-)built tree; and joins images into one
# multi-architecture index (a manifest list).
#
#   scripts/image.sh build ARCH BUILD WORK   one image: WORK/rootfs, WORK/oci
#                                            (an OCI layout), WORK/sbom.spdx.json
#   scripts/image.sh index OUT WORK...       OUT: an OCI layout holding the images
#                                            of the WORKs under one image index
#   scripts/image.sh archive DIR OUT.tar     a layout as a deterministic tar
#
# No code of the target architecture runs: the root is assembled from the
# binaries (stripped with the cross binutils), the shared libraries their
# DT_NEEDED entries name (from the build machine's multiarch directories,
# i.e. Debian's arm64 packages for arm64), the dynamic loader, the CA
# bundle, /etc/passwd and /etc/group, the SBOM and the licences: what the
# Dockerfile's final stage holds, plus the SBOM. The image's settings (user,
# environment, entrypoint, health check, labels) are the Dockerfile's.
#
# Reproducible: file times are SOURCE_DATE_EPOCH (default: the last
# commit's time), owners 0, modes fixed, tar sorted, gzip without a name or
# time; the same tree gives the same digests.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSION:-$(cat "$root/VERSION")}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
revision=${REVISION:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
export LC_ALL=C

die() { echo "image.sh: $*" >&2; exit 1; }

# dtar DIR OUT: DIR's content as a tar any two runs write alike.
dtar() {
	tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf "$2" .
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# blob LAYOUT FILE: moves FILE into the layout's blobs; prints its digest.
blob() {
	local d
	d=$(sha "$2")
	mkdir -p "$1/blobs/sha256"
	mv "$2" "$1/blobs/sha256/$d"
	echo "$d"
}

arch_vars() {
	case $1 in
	amd64) triplet=x86_64-linux-gnu cross='' variant='' ;;
	arm64) triplet=aarch64-linux-gnu cross=aarch64-linux-gnu- variant=v8 ;;
	*) die "unknown architecture $1" ;;
	esac
}

# stage ARCH BUILD ROOTFS: the image's files.
stage() {
	local arch=$1 build=$2 r=$3 b f n l p seen=' ' queue=() interp d
	arch_vars "$arch"
	rm -rf "$r"
	mkdir -p "$r/usr/local/bin" "$r/etc/ssl/certs" "$r/usr/lib/ssl" "$r/usr/share/doc/dotproxy"
	for b in dotproxy dotproxy-init dotproxy-cni; do
		[ -f "$build/$b" ] || die "no $build/$b (make${cross:+ arm64})"
		"${cross}strip" --strip-unneeded -o "$r/usr/local/bin/$b" "$build/$b"
		queue+=("$build/$b")
		# The last binary with an interpreter names it (dotproxy-cni is
		# static and has none).
		d=$("${cross}readelf" -l "$build/$b" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
		[ -z "$d" ] || interp=$d
	done
	[ -n "$interp" ] || die "no binary names a program interpreter"
	# The loader where the binaries ask for it, the libraries where it looks.
	mkdir -p "$r$(dirname "$interp")"
	cp -L "$interp" "$r$interp"
	while [ "${#queue[@]}" -gt 0 ]; do
		f=${queue[0]} queue=("${queue[@]:1}")
		for n in $("${cross}readelf" -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			case $seen in *" $n "*) continue ;; esac
			seen+="$n "
			l=
			for d in "/lib/$triplet" "/usr/lib/$triplet"; do
				[ -e "$d/$n" ] && { l=$d/$n; break; }
			done
			[ -n "$l" ] || die "$n (needed by $f) not found in the $arch libraries"
			mkdir -p "$r/lib/$triplet"
			cp -L "$l" "$r/lib/$triplet/$n"
			queue+=("$l")
		done
	done
	cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
	ln -s /etc/ssl/certs/ca-certificates.crt "$r/usr/lib/ssl/cert.pem"
	printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' \
		'dotproxy:x:15353:15353:dotproxy:/:/sbin/nologin' \
		'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'dotproxy:x:15353:' 'nogroup:x:65534:' >"$r/etc/group"
	# The licences of what is shipped: ours and each package's copyright.
	cp "$root/LICENSE" "$r/usr/share/doc/dotproxy/LICENSE"
	bash "$root/scripts/sbom.sh" "$arch" "$build" "$r/usr/share/doc/dotproxy/sbom.spdx.json" "$r"
	for p in $(jq -r '.packages[] | select(.SPDXID | startswith("SPDXRef-deb-")) | .name' \
		"$r/usr/share/doc/dotproxy/sbom.spdx.json"); do
		mkdir -p "$r/usr/share/doc/$p"
		cp "/usr/share/doc/$p/copyright" "$r/usr/share/doc/$p/copyright"
	done
	find "$r" -type d -exec chmod 0755 {} +
	find "$r" -type f -exec chmod 0644 {} +
	find "$r/usr/local/bin" "$r/lib" "$r$interp" -type f -exec chmod 0755 {} +
}

# build ARCH BUILD WORK
build_image() {
	local arch=$1 build=$2 w=$3 o diff ldig lsize cdig csize mdig msize lic
	arch_vars "$arch"
	rm -rf "$w"
	mkdir -p "$w"
	stage "$arch" "$build" "$w/rootfs"
	cp "$w/rootfs/usr/share/doc/dotproxy/sbom.spdx.json" "$w/sbom.spdx.json"
	o=$w/oci
	mkdir -p "$o/blobs/sha256"
	dtar "$w/rootfs" "$w/layer.tar"
	diff=$(sha "$w/layer.tar")
	gzip -n -9 <"$w/layer.tar" >"$w/layer.tar.gz"
	rm -f "$w/layer.tar"
	lsize=$(stat -c %s "$w/layer.tar.gz")
	ldig=$(blob "$o" "$w/layer.tar.gz")
	# The image's licence: what the SBOM concludes for the whole of it.
	lic=$(jq -r '.packages[] | select(.SPDXID == "SPDXRef-image") | .licenseConcluded' "$w/sbom.spdx.json")
	jq -n -S --arg created "$created" --arg arch "$arch" --arg variant "$variant" \
		--arg diff "sha256:$diff" --arg v "$version" --arg rev "$revision" --arg lic "$lic" '{
		created: $created, architecture: $arch, os: "linux",
		config: {
			User: "15353:15353",
			Env: ["PATH=/usr/local/bin", "DOTPROXY_METRICS=127.0.0.1:9153",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
			Entrypoint: ["/usr/local/bin/dotproxy"],
			Healthcheck: {Test: ["CMD", "/usr/local/bin/dotproxy", "healthcheck"],
				Interval: 10000000000, Timeout: 3000000000, StartPeriod: 5000000000, Retries: 3},
			Labels: {
				"org.opencontainers.image.title": "dotproxy",
				"org.opencontainers.image.description": "Transparent DNS to DNS-over-TLS sidecar: dotproxy, dotproxy-init and dotproxy-cni",
				"org.opencontainers.image.source": "https://github.com/dotproxy/dotproxy",
				"org.opencontainers.image.licenses": $lic,
				"org.opencontainers.image.version": $v,
				"org.opencontainers.image.revision": $rev
			}
		},
		rootfs: {type: "layers", diff_ids: [$diff]},
		history: [{created: $created, created_by: "scripts/image.sh (SBOM: /usr/share/doc/dotproxy/sbom.spdx.json)"}]
	} + (if $variant != "" then {variant: $variant} else {} end)' >"$w/config.json"
	csize=$(stat -c %s "$w/config.json")
	cdig=$(blob "$o" "$w/config.json")
	jq -n -S --arg cdig "sha256:$cdig" --argjson csize "$csize" \
		--arg ldig "sha256:$ldig" --argjson lsize "$lsize" --arg v "$version" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cdig, size: $csize},
		layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ldig, size: $lsize}],
		annotations: {"org.opencontainers.image.version": $v}
	}' >"$w/manifest.oci.json"
	msize=$(stat -c %s "$w/manifest.oci.json")
	mdig=$(blob "$o" "$w/manifest.oci.json")
	# The manifest's descriptor, for the layout's index and the manifest list.
	jq -n -c -S --arg d "sha256:$mdig" --argjson s "$msize" --arg arch "$arch" --arg variant "$variant" '{
		mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
		platform: ({architecture: $arch, os: "linux"} + (if $variant != "" then {variant: $variant} else {} end))
	}' >"$w/descriptor.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
	jq -S --arg ref "$version-$arch" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [. + {annotations: {"org.opencontainers.image.ref.name": $ref}}]}' \
		"$w/descriptor.json" >"$o/index.json"
	# docker load (any version) reads manifest.json beside the OCI layout.
	jq -n -c --arg c "blobs/sha256/$cdig" --arg l "blobs/sha256/$ldig" --arg tag "dotproxy:$version-$arch" \
		'[{Config: $c, RepoTags: [$tag], Layers: [$l]}]' >"$o/manifest.json"
}

# index OUT WORK...: one layout, one image index over the WORKs' manifests.
build_index() {
	local out=$1 w size dig
	shift
	rm -rf "$out"
	mkdir -p "$out/blobs/sha256"
	for w in "$@"; do
		cp "$w"/oci/blobs/sha256/* "$out/blobs/sha256/"
	done
	cat "${@/%//descriptor.json}" | jq -s -S --arg v "$version" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json", manifests: .,
		annotations: {"org.opencontainers.image.version": $v}}' >"$out/list.json"
	size=$(stat -c %s "$out/list.json")
	dig=$(blob "$out" "$out/list.json")
	printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
	jq -n -S --arg d "sha256:$dig" --argjson s "$size" --arg ref "$version" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
			annotations: {"org.opencontainers.image.ref.name": $ref}}]}' >"$out/index.json"
}

case ${1:-} in
build) [ $# -eq 4 ] || die "usage: image.sh build ARCH BUILD WORK"; build_image "$2" "$3" "$4" ;;
index) [ $# -ge 3 ] || die "usage: image.sh index OUT WORK..."; out=$2; shift 2; build_index "$out" "$@" ;;
archive) [ $# -eq 3 ] || die "usage: image.sh archive DIR OUT.tar"; dtar "$2" "$3" ;;
*) die "usage: image.sh build|index|archive ..." ;;
esac
