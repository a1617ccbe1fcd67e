#!/usr/bin/env bash
# Runs the test suites and ends with one line: "N passed, N failed".
#   tests/run.sh unit   C unit tests, fuzz corpus replay, header, ban and licence lint
#   tests/run.sh e2e    the bats end-to-end suite (root, network namespaces)
#   tests/run.sh all    both
#   tests/run.sh unit-arm64  the unit tests and replays only, each binary run
#                       through $EMU (make check-arm64: BUILD=build/arm64,
#                       EMU=qemu-aarch64-static)
# BUILD (default build) names the build directory. E2E_FILTER limits bats
# to the files whose names match it. Exits non-zero when anything failed.
#
# Nothing passes by being absent. The runner knows what should run from the
# sources: every tests/unit/*/test_*.c must have its binary, every
# tests/fuzz/fuzz_*.c its replay binary and a non-empty corpus, every bats
# file its tests. Each TAP stream must carry a plan ("1..N") and exactly N
# results; the bats plan must equal the number of @test lines in the files
# given to it; a command's non-zero exit without a failing result is a
# failure too. Any difference is counted as a failure and named.
#
# Nothing passes by skipping either, where it counts: in the release round
# (CI=1 or CI=true as CI services set it, or DOTPROXY_RELEASE=1 as .ci/run
# does) a skipped test is a failure unless tests/allowed-skips names it and
# its reason. Every skip is listed at the end, allowed or not.
set -u
shopt -s lastpipe nullglob
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
what=${1:-all}
passed=0 failed=0 skipped=0
failures=()
skips=()	# "KEY|REASON" of each skipped test
ALLOWED_SKIPS=${ALLOWED_SKIPS:-tests/allowed-skips}
release=0
case ${DOTPROXY_RELEASE:-}:${CI:-} in
1:* | *:1 | *:[Tt]rue | *:TRUE) release=1 ;;
esac

# Counts one failure that is not a TAP result of its own.
fail() {
	failed=$((failed + 1)); failures+=("$1")
	echo "not ok - $1"
}

# Remembers one skipped result of suite $1 (TAP line $2) for judge_skips,
# keyed "SUITE: DESCRIPTION" ("SUITE" alone when it has none).
note_skip() {
	local re='^ok[[:space:]]+[0-9]+[[:space:]]*-?[[:space:]]*(.*)#[[:space:]]*[Ss][Kk][Ii][Pp][A-Za-z]*[[:space:]]*(.*)$'
	local desc='' reason=''
	if [[ $2 =~ $re ]]; then
		desc=${BASH_REMATCH[1]} reason=${BASH_REMATCH[2]}
	fi
	desc=${desc%"${desc##*[![:space:]]}"}
	skips+=("$1${desc:+: $desc}|$reason")
}

# Reads TAP on stdin, echoes it, and adds its results to the totals. Then
# checks the stream against its plan and, if given, the expected count.
# Sets tally_results and tally_failed for the caller.
tally() {
	local name=$1 expect=${2:-} line p=0 f=0 s=0 plan=
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		"not ok "*) f=$((f + 1)); failures+=("$name: ${line#not ok }") ;;
		"ok "*"# skip"*|"ok "*"# SKIP"*)
			s=$((s + 1)); note_skip "$name" "$line" ;;
		"ok "*) p=$((p + 1)) ;;
		1..*)
			if [ -n "$plan" ]; then
				plan=bad
			else
				plan=${line#1..}; plan=${plan%%[!0-9]*}
			fi
			;;
		esac
	done
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	tally_results=$((p + f + s)) tally_failed=$f
	if [ -z "$plan" ]; then
		fail "$name: no TAP plan (1..N): it ran $tally_results"
	elif [ "$plan" = bad ]; then
		fail "$name: more than one TAP plan"
	elif [ "$plan" -ne "$tally_results" ]; then
		fail "$name: planned $plan, ran $tally_results"
	fi
	if [ -n "$expect" ] && [ -n "$plan" ] && [ "$plan" != bad ] &&
		[ "$plan" -ne "$expect" ]; then
		fail "$name: planned $plan, but the files hold $expect tests"
	fi
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

# Replays a fuzz corpus: there must be one, and every file in it must run.
replay() {
	local bin=$1 dir=$2 files out n
	files=$(find "$dir" -maxdepth 1 -type f 2>/dev/null | wc -l)
	if [ "$files" -eq 0 ]; then
		echo "no corpus: $dir is missing or empty"
		return 1
	fi
	out=$(${EMU:+"$EMU"} "$bin" "$dir" 2>&1) || { printf '%s\n' "$out"; return 1; }
	n=$(printf '%s\n' "$out" | sed -n 's/^replay: \([0-9]*\) inputs ran$/\1/p')
	if [ "${n:-x}" != "$files" ]; then
		printf '%s\n' "$out"
		echo "replayed ${n:-no} inputs of the $files in $dir"
		return 1
	fi
	echo "$n inputs"
}

run_unit() {
	local src t name rc target bin tmp line
	tmp=$(mktemp) || exit 2
	echo "# unit tests"
	for src in tests/unit/proxy/test_*.c tests/unit/init/test_*.c; do
		name=$(basename "$src" .c)
		t=$BUILD/tests/$name
		if [ ! -x "$t" ]; then
			fail "$name: not built (no $t; make check builds it)"
			continue
		fi
		# qemu-user emulates neither seccomp filters nor NETLINK_SOCK_DIAG
		# (the loop check of fe_tcp uses it; test_handover checks the
		# handover under the filter): these run natively only.
		if [ -n "${EMU:-}" ] && [[ " test_sandbox test_nl test_fe_tcp test_handover " == *" $name "* ]]; then
			skipped=$((skipped + 1))
			line="ok - $name # SKIP under ${EMU##*/}: needs seccomp or sock_diag, which qemu-user lacks"
			echo "$line"
			skips+=("$name (${EMU##*/})|${line#*# SKIP }")
			continue
		fi
		echo "# $name"
		${EMU:+"$EMU"} "$t" >"$tmp" 2>&1
		rc=$?
		tally "$name" <"$tmp"
		if [ "$rc" -ne 0 ] && [ "$tally_failed" -eq 0 ]; then
			fail "$name: exited $rc with no failing test"
		fi
	done
	echo "# fuzz corpus replay"
	for src in tests/fuzz/fuzz_*.c; do
		target=${src##*/fuzz_}; target=${target%.c}
		bin=$BUILD/fuzz/replay_$target
		if [ ! -x "$bin" ]; then
			fail "fuzz corpus $target: not built (no $bin)"
			continue
		fi
		single "fuzz corpus $target" replay "$bin" tests/fuzz/corpus/"$target"
	done
	rm -f "$tmp"
	[ "${1:-}" = nolint ] && return
	echo "# lint"
	single "headers compile alone" make -s check-headers
	single "no banned functions" make -s check-banned
	single "licence labels and README match what each binary links" \
		bash tests/licences.sh
	single "every relative link in the Markdown lands" bash tests/links.sh
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
	local files=() f expect=0 rc
	echo "# end-to-end (bats)"
	if [ "$(id -u)" -ne 0 ]; then
		fail "e2e needs root for network namespaces"
		return
	fi
	if ! command -v bats >/dev/null; then
		fail "e2e: bats is not installed (make deps)"
		return
	fi
	for f in tests/e2e/*.bats; do
		[[ -z "${E2E_FILTER:-}" || $f == *"$E2E_FILTER"* ]] || continue
		files+=("$f")
		expect=$((expect + $(grep -c '^[[:space:]]*@test[[:space:]]' "$f")))
	done
	if [ "${#files[@]}" -eq 0 ]; then
		fail "e2e: E2E_FILTER='${E2E_FILTER:-}' matches no file in tests/e2e"
		return
	fi
	bats --tap "${files[@]}" 2>&1 | tally bats "$expect"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && [ "$tally_failed" -eq 0 ]; then
		fail "bats exited $rc with no failing test"
	fi
}

# make fuzz itself: every libFuzzer target builds (clang, ASan, UBSan) and
# runs for a second on a scratch copy of its corpus.
run_fuzz_build() {
	local out
	echo "# libFuzzer build"
	if ! command -v "${CLANG:-clang}" >/dev/null; then
		fail "libFuzzer build: clang is not installed (scripts/deps.sh fuzz)"
		return
	fi
	out=$(mktemp -d)
	single "make fuzz: every target builds and runs for 1 s" \
		env OUT="$out" bash tests/fuzz/libfuzzer.sh 1
	rm -rf "$out"
}

# Lists every skip with its verdict. In the release round a skip that no
# line of $ALLOWED_SKIPS matches (TEST glob over the key, REASON glob over
# the reason) is a failure; elsewhere it is only named.
judge_skips() {
	local sk key reason line t r why ok said='' entries=()
	[ "${#skips[@]}" -gt 0 ] || return 0
	if [ -f "$ALLOWED_SKIPS" ]; then
		while IFS= read -r line; do
			case $line in '#'* | '') continue ;; esac
			if [[ $line != *" | "*" | "?* ]]; then
				fail "$ALLOWED_SKIPS: not TEST | REASON | WHY: $line"
				continue
			fi
			entries+=("$line")
		done <"$ALLOWED_SKIPS"
	elif [ "$release" -eq 1 ]; then
		fail "release round: $ALLOWED_SKIPS is missing"
	fi
	if [ "$release" -eq 1 ]; then
		echo "# skipped (release round: only what $ALLOWED_SKIPS names may skip):"
	else
		echo "# skipped (not the release round, so none fails):"
	fi
	for sk in "${skips[@]}"; do
		key=${sk%%|*} reason=${sk#*|} ok=
		for line in "${entries[@]}"; do
			t=${line%% | *} r=${line#* | } why=${r#* | } r=${r%% | *}
			# shellcheck disable=SC2053 # globs on purpose
			if [[ $key == $t && $reason == $r ]]; then
				ok=$why
				break
			fi
		done
		if [ -n "$ok" ] && [[ $said == *"|$ok|"* ]]; then
			echo "#   $key (skip: $reason): allowed (as above)"
		elif [ -n "$ok" ]; then
			echo "#   $key (skip: $reason): allowed: $ok"
			said+="|$ok|"
		elif [ "$release" -eq 1 ]; then
			fail "skipped in the release round, not on $ALLOWED_SKIPS: $key (skip: $reason)"
		else
			echo "#   $key (skip: $reason): not allowed in the release round"
		fi
	done
}

case $what in
unit) run_unit ;;
unit-arm64) run_unit nolint ;;
e2e) run_e2e ;;
all) run_unit; run_fuzz_build; run_e2e ;;
*) echo "usage: $0 unit|e2e|all" >&2; exit 2 ;;
esac
judge_skips

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
