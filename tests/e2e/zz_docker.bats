#!/usr/bin/env bats
# The container image and the compose demo, as bats tests: setup_file runs
# tests/docker/docker-ci.sh once (it installs Docker with apt if needed, starts
# dockerd, builds, runs, and removes or restores everything it added), and
# each test reports one of its checks. Named zz_ so that it runs after every
# other e2e file: nothing dockerd touches can disturb them.
# Skipped, with the reason printed, when Docker cannot run on this machine
# (the script exits 77) or when DOTPROXY_DOCKER_TESTS=0.

setup_file() {
	DCI_OUT=$BATS_FILE_TMPDIR/docker-ci.out
	DCI_RC=$BATS_FILE_TMPDIR/docker-ci.rc
	export DCI_OUT DCI_RC
	if [ "${DOTPROXY_DOCKER_TESTS:-1}" = 0 ]; then
		echo "SKIP: disabled by DOTPROXY_DOCKER_TESTS=0" >"$DCI_OUT"
		echo 77 >"$DCI_RC"
		return 0
	fi
	timeout 1500 "$BATS_TEST_DIRNAME/../docker/docker-ci.sh" >"$DCI_OUT" 2>&1
	echo $? >"$DCI_RC"
}

# dci NAME: passes when docker-ci.sh printed "ok - NAME"; otherwise shows
# that check's output (or the end of the run if the check never ran).
dci() {
	local name=$1 rc reason
	rc=$(cat "$DCI_RC" 2>/dev/null || echo none)
	if [ "$rc" = 77 ]; then
		reason=$(sed -n 's/^SKIP: //p' "$DCI_OUT" | head -n 1)
		skip "${reason:-docker cannot run here}"
	fi
	grep -qxF "ok - $name" "$DCI_OUT" && return 0
	if grep -qF "not ok - $name (" "$DCI_OUT"; then
		awk -v n="not ok - $name (" 'index($0, n) == 1 { on = 1; print; next }
			on && /^#/ { print; next } { on = 0 }' "$DCI_OUT"
	else
		echo "check did not run: $name (docker-ci.sh exit $rc); end of its output:"
		tail -n 40 "$DCI_OUT"
	fi
	return 1
}

@test "docker: compose.yaml validates (Cloudflare default, never started)" {
	dci "compose: config -q compose.yaml (Cloudflare default, never started)"
}

@test "docker: compose.yaml + compose.local.yaml validates" {
	dci "compose: config -q compose.yaml + compose.local.yaml"
}

@test "docker: base image from debootstrap, no registry" {
	dci "base: debian:bookworm-slim present (debootstrap + docker import, no registry)"
}

@test "docker: image builds (multi-stage, FROM scratch)" {
	dci "image: docker build (multi-stage, FROM scratch)"
}

@test "docker: image is below 20 MB" {
	dci "image: size below 20 MB"
}

@test "docker: image runs as non-root 15353:15353" {
	dci "image: runs as non-root 15353:15353, --version works"
}

@test "docker: image has OCI labels" {
	dci "image: OCI labels"
}

@test "docker: image carries its SBOM and the licences" {
	dci "image: SBOM and licences inside"
}

@test "docker: local DoT upstream image builds and gets healthy" {
	dci "upstream: docker build examples/compose/upstream"
	dci "upstream: container healthy on 203.0.113.53 (throw-away CA)"
}

@test "docker: standalone proxy answers over UDP and TCP" {
	dci "run: standalone proxy on :53 as non-root answers over UDP and TCP"
}

@test "docker: init + proxy in one namespace capture an unmodified app" {
	dci "run: init + proxy + app in one namespace (DoT answer, container names)"
	dci "run: upstream query log shows the app's name"
}

@test "docker: compose demo runs to completion" {
	dci "compose: up -d"
	dci "compose: app exits 0"
	dci "compose: init exited 0, proxy healthy, non-root, read-only"
}

@test "docker: compose app gets DoT answers" {
	dci "compose: app got DoT answers (dot-only.test, upstream query log)"
	dci "compose: proxy metrics show DoT and local-zone answers"
}

@test "docker: compose service names still resolve" {
	dci "compose: compose service names still resolve"
}

@test "docker: docker-ci.sh passed and restored the host" {
	local rc
	rc=$(cat "$DCI_RC" 2>/dev/null || echo none)
	[ "$rc" != 77 ] || skip "$(sed -n 's/^SKIP: //p' "$DCI_OUT" | head -n 1)"
	sed -n '/^docker-ci summary/,$p' "$DCI_OUT"
	[ "$rc" = 0 ]
	if grep '^warning: could not' "$DCI_OUT"; then
		return 1
	fi
}
