#!/usr/bin/env bash
# Builds each fuzz target with clang's libFuzzer plus ASan and UBSan and
# runs it for a while on a scratch copy of its corpus.
#   tests/fuzz/libfuzzer.sh [SECONDS] [TARGET...]   (default 60, all targets)
# Crashers land in $OUT/<target>/ (default /tmp/dotproxy-fuzz); copy the
# ones worth keeping into tests/fuzz/corpus/<target>/ once fixed.
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
mkdir -p "$OUT"
srcs=(proxy/errors.c proxy/log.c proxy/buf.c proxy/dns.c)
rc=0
for t in "${targets[@]}"; do
	bin=$OUT/fuzz_$t
	"$CLANG" -std=c17 -D_GNU_SOURCE -g -O1 -I. \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o "$bin" "tests/fuzz/fuzz_$t.c" "${srcs[@]}"
	mkdir -p "$OUT/$t/corpus" "$OUT/$t/artifacts"
	cp -n tests/fuzz/corpus/"$t"/* "$OUT/$t/corpus/" 2>/dev/null || true
	echo "# fuzz_$t for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -max_len=65535 -print_final_stats=1 \
		-artifact_prefix="$OUT/$t/artifacts/" "$OUT/$t/corpus" \
		2>"$OUT/$t/log"; then
		echo "fuzz_$t FAILED: see $OUT/$t/log and $OUT/$t/artifacts/"
		rc=1
	fi
	grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$OUT/$t/log" || true
done
exit $rc
