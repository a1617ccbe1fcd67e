#!/usr/bin/env bash
# Runs the test suites and ends with one line: "N passed, N failed".
#   tests/run.sh unit   C unit tests, fuzz corpus replay, header and ban lint
#   tests/run.sh e2e    the bats end-to-end suite (root, network namespaces)
#   tests/run.sh all    both
# BUILD (default build) names the build directory. E2E_FILTER limits bats
# to the files whose names match it. Exits non-zero when anything failed.
set -u
shopt -s lastpipe
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
what=${1:-all}
passed=0 failed=0 skipped=0
failures=()

# Reads TAP on stdin, echoes it, and adds its results to the totals.
tally() {
	local name=$1 line p=0 f=0 s=0
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		"not ok "*) f=$((f + 1)); failures+=("$name: ${line#not ok }") ;;
		"ok "*"# skip"*|"ok "*"# SKIP"*) s=$((s + 1)) ;;
		"ok "*) p=$((p + 1)) ;;
		esac
	done
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# Runs one command that is a single test: passes when it exits 0.
single() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1)); echo "ok - $name"
	else
		failed=$((failed + 1)); failures+=("$name")
		echo "not ok - $name"; printf '%s\n' "$out" | sed 's/^/#   /'
	fi
}

run_unit() {
	local t rc f target
	echo "# unit tests"
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		echo "# $(basename "$t")"
		{ "$t"; rc=$?; [ "$rc" -eq 0 ] || echo "not ok - $(basename "$t") exited $rc"; } 2>&1 \
			| tally "$(basename "$t")"
	done
	echo "# fuzz corpus replay"
	for f in "$BUILD"/fuzz/replay_*; do
		[ -x "$f" ] || continue
		target=${f##*/replay_}
		single "fuzz corpus $target" "$f" tests/fuzz/corpus/"$target"
	done
	echo "# lint"
	single "headers compile alone" make -s check-headers
	single "no banned functions" make -s check-banned
	single "shellcheck: every script and bats file" shellcheck_all
}

# Every shell script the project ships or tests with, and the bats files.
shellcheck_all() {
	local files=()

	mapfile -t files < <(git ls-files '*.sh' '*.bash' '*.bats' .ci/run 2>/dev/null)
	[ "${#files[@]}" -gt 0 ] || files=(.ci/run scripts/*.sh tests/*.sh tests/*/*.sh \
		tests/e2e/*.bats tests/e2e/helpers/*.bash examples/*.sh)
	shellcheck -x "${files[@]}"
}

run_e2e() {
	local files=()
	echo "# end-to-end (bats)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok - e2e needs root for network namespaces"
		failed=$((failed + 1)); return
	fi
	for f in tests/e2e/*.bats; do
		[ -f "$f" ] || continue
		[[ -z "${E2E_FILTER:-}" || $f == *"$E2E_FILTER"* ]] && files+=("$f")
	done
	[ "${#files[@]}" -gt 0 ] || return
	bats --tap "${files[@]}" 2>&1 | tally bats
}

case $what in
unit) run_unit ;;
e2e) run_e2e ;;
all) run_unit; run_e2e ;;
*) echo "usage: $0 unit|e2e|all" >&2; exit 2 ;;
esac

if [ "$failed" -gt 0 ]; then
	echo "# failed:"
	printf '#   %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed ($skipped skipped, reasons above)"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
