#!/usr/bin/env bash
# Builds each fuzz target with clang's libFuzzer plus ASan and UBSan and
# fuzzes it, niced, one target at a time (one core), on a scratch copy of
# its corpus.
#   tests/fuzz/libfuzzer.sh [SECONDS] [TARGET...]   (default 60, all targets)
# SECONDS is the time per target. With PLATEAU=S a target instead runs
# until its coverage (libFuzzer's "cov", edges) has not grown for S seconds
# and it has run MIN seconds (default S); SECONDS is then a cap. Runs go in
# slices of SLICE seconds (default 60) so each slice reports its counts.
# With MERGE=1 the inputs that add edges (-use_counters=0, so the corpus
# stays small) are merged into
# tests/fuzz/corpus/<target>/ at the end (named fuzzed-<sha1>).
# Each target's totals go to $OUT/<target>/summary and stdout; crashers
# land in $OUT/<target>/artifacts/ (default OUT /tmp/dotproxy-fuzz). Exits
# non-zero if any target found something.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f##*/fuzz_}
		targets+=("${t%.c}")
	done
fi
CLANG=${CLANG:-clang}
OUT=${OUT:-/tmp/dotproxy-fuzz}
PLATEAU=${PLATEAU:-0}
MIN=${MIN:-$PLATEAU}
SLICE=${SLICE:-60}
MERGE=${MERGE:-0}
mkdir -p "$OUT"
# The pure layer: the Makefile's PURE_OBJS (what the replay builds link);
# a target's extra sources are named in a "// fuzz-srcs:" line of its file.
read -r -a pure < <(sed -n 's/^PURE_OBJS *:= .*,\([a-z_ ]*\))$/\1/p' Makefile)
[ "${#pure[@]}" -gt 0 ] || { echo "no PURE_OBJS in the Makefile" >&2; exit 2; }
srcs=()
for m in "${pure[@]}"; do
	srcs+=("proxy/$m.c")
done
rc=0
for t in "${targets[@]}"; do
	src=tests/fuzz/fuzz_$t.c
	if [ ! -f "$src" ]; then
		echo "fuzz_$t: no $src" >&2
		rc=1
		continue
	fi
	read -r -a named < <(sed -n 's|^// fuzz-srcs: ||p' "$src") || true
	extra=()
	for f in "${named[@]}"; do	# a module of the pure layer is there already
		[[ " ${srcs[*]} " == *" $f "* ]] || extra+=("$f")
	done
	bin=$OUT/fuzz_$t
	"$CLANG" -std=c17 -D_GNU_SOURCE -g -O1 -I. \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o "$bin" "$src" "${srcs[@]}" "${extra[@]}" -lmnl
	dir=$OUT/$t
	mkdir -p "$dir/corpus" "$dir/artifacts"
	cp -n tests/fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null || true
	echo "# fuzz_$t: ${secs}s, plateau ${PLATEAU}s, corpus $(find "$dir/corpus" -type f | wc -l) files"
	start=$(date +%s) grown=$start cov=0 execs=0 found=0 slices=0
	: >"$dir/log"
	while :; do
		now=$(date +%s)
		left=$((start + secs - now))
		[ "$left" -gt 0 ] || break
		if [ "$PLATEAU" -gt 0 ] && [ $((now - grown)) -ge "$PLATEAU" ] &&
			[ $((now - start)) -ge "$MIN" ]; then
			break
		fi
		[ "$left" -lt "$SLICE" ] || left=$SLICE
		slices=$((slices + 1))
		if ! nice -n 19 "$bin" -max_total_time="$left" -max_len=65535 \
			-print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
			"$dir/corpus" >"$dir/slice.log" 2>&1; then
			found=1
		fi
		cat "$dir/slice.log" >>"$dir/log"
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/slice.log" | tail -n 1)
		execs=$((execs + ${n:-0}))
		c=$(grep -oE ' cov: [0-9]+' "$dir/slice.log" | awk '{print $2}' | sort -n | tail -n 1)
		if [ "${c:-0}" -gt "$cov" ]; then
			cov=$c grown=$(date +%s)
		fi
		if [ "$found" -ne 0 ]; then
			echo "fuzz_$t FOUND something: see $dir/log and $dir/artifacts/"
			rc=1
			break
		fi
	done
	ran=$(($(date +%s) - start))
	files=$(find "$dir/corpus" -type f | wc -l)
	summary="target=$t seconds=$ran slices=$slices execs=$execs cov=$cov last_growth_after=$((grown - start))s corpus=$files found=$found"
	if [ "$MERGE" = 1 ] && [ "$found" -eq 0 ]; then
		rm -rf "$dir/merge" && mkdir -p "$dir/merge"
		before=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
		cp tests/fuzz/corpus/"$t"/* "$dir/merge/" 2>/dev/null || true
		nice -n 19 "$bin" -merge=1 -use_counters=0 -max_len=65535 "$dir/merge" "$dir/corpus" \
			>"$dir/merge.log" 2>&1
		for f in "$dir/merge"/*; do
			b=${f##*/}
			[ -e tests/fuzz/corpus/"$t"/"$b" ] || cp "$f" tests/fuzz/corpus/"$t"/fuzzed-"$b"
		done
		after=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
		summary="$summary merged=$((after - before))"
	fi
	echo "$summary" | tee "$dir/summary"
done
exit $rc
