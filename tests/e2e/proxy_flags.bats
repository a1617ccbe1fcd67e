#!/usr/bin/env bats
# dotproxy command line: bad flags exit 2 with exactly one line on stderr
# naming the option; --help and --version exit 0. Run inside the test pod
# namespace as the proxy UID, so a proxy that wrongly starts reaches nothing.

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-30}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }

# Runs the proxy; bats' $output gets its stderr only (hence the order of
# the redirections, which shellcheck would have swapped).
# shellcheck disable=SC2069
stderr_of() {
	pod timeout 10 setpriv --reuid "$W_PROXY_UID" --regid "$W_PROXY_UID" \
		--clear-groups "$W_BIN" "$@" 2>&1 >/dev/null
}

stdout_of() {
	pod timeout 10 setpriv --reuid "$W_PROXY_UID" --regid "$W_PROXY_UID" \
		--clear-groups "$W_BIN" "$@" 2>/dev/null
}

# Exit 2, one non-empty line on stderr that contains $1.
expect_usage_error() {
	echo "status $status, stderr:"
	echo "$output"
	[ "$status" -eq 2 ] || w_fail "want exit 2" || return 1
	[ -n "$output" ] || w_fail "want a line on stderr" || return 1
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ] ||
		w_fail "want exactly one line" || return 1
	grep -qF -- "$1" <<<"$output" || w_fail "want the line to name $1"
}

@test "--timeout abc exits 2 naming --timeout" {
	run stderr_of --timeout abc
	expect_usage_error --timeout
}

@test "--timeout 5 (below the minimum) exits 2 naming --timeout" {
	run stderr_of --timeout 5
	expect_usage_error --timeout
}

@test "--upstream without auth name or pin exits 2 naming --upstream" {
	run stderr_of --upstream 192.0.2.2
	expect_usage_error --upstream
}

@test "--listen nonsense exits 2 naming --listen" {
	run stderr_of --listen nonsense
	expect_usage_error --listen
}

@test "--bogus exits 2 naming --bogus" {
	run stderr_of --bogus
	expect_usage_error --bogus
}

@test "--timeout without a value exits 2 naming --timeout" {
	run stderr_of --timeout
	expect_usage_error --timeout
}

@test "DOTPROXY_TIMEOUT=abc exits 2 naming DOTPROXY_TIMEOUT" {
	# shellcheck disable=SC2069
	run pod timeout 10 env DOTPROXY_TIMEOUT=abc setpriv --reuid "$W_PROXY_UID" \
		--regid "$W_PROXY_UID" --clear-groups "$W_BIN" 2>&1 >/dev/null
	expect_usage_error DOTPROXY_TIMEOUT
}

@test "--help exits 0 and prints usage with the flags" {
	run stdout_of --help
	[ "$status" -eq 0 ] || w_fail "want exit 0"
	grep -qi usage <<<"$output" || w_fail "want a usage line"
	grep -q -- --upstream <<<"$output" || w_fail "want --upstream in the help"
	grep -q -- --ca-file <<<"$output" || w_fail "want --ca-file in the help"
}

@test "--version exits 0 and prints a version" {
	run stdout_of --version
	[ "$status" -eq 0 ] || w_fail "want exit 0"
	grep -Eq '[0-9]+\.[0-9]+' <<<"$output" || w_fail "want a version number"
}
