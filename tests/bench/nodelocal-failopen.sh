#!/usr/bin/env bash
# nodelocal-failopen.sh - time to fail open in node-local mode, N runs.
#
# Runs the test "time to fail open after kill -9 of the only proxy" of
# tests/e2e/nodelocal.bats (network namespaces, root) RUNS times and
# reports, for the kube-dns IP and the link-local address, the time from
# kill -9 of the only node-local dotproxy to the first answer from the
# fallback (CoreDNS through kube-proxy's DNAT), as min / median / max in
# ms. tests/tools/failopen_probe.py takes each figure: one query every
# 2 ms, so the resolution is about 2 ms plus a round trip.
#
# Usage: tests/bench/nodelocal-failopen.sh [RUNS]   (default 5)

set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-5}
[ "$(id -u)" -eq 0 ] || { echo "nodelocal-failopen.sh: needs root" >&2; exit 1; }
command -v bats >/dev/null || { echo "nodelocal-failopen.sh: bats is missing" >&2; exit 1; }
OUT=$(mktemp "${TMPDIR:-/tmp}/nl-failopen.XXXXXX")
trap 'rm -f "$OUT"' EXIT

for ((r = 1; r <= RUNS; r++)); do
	bats -f 'time to fail open' "$ROOT/tests/e2e/nodelocal.bats" >>"$OUT" 2>&1 ||
		{ echo "run $r failed:" >&2; tail -n 20 "$OUT" >&2; exit 1; }
done
sed -n 's/^# fail-open after kill -9, pod -> \([0-9.]*\): failopen_ms=\([0-9.]*\).*/\1 \2/p' "$OUT" |
	sort -k1,1 -k2,2n | awk -v runs="$RUNS" '
	{ v[$1, ++n[$1]] = $2 }
	END {
		printf "time to fail open after kill -9 (%d runs, ms): min / median / max\n", runs
		for (a in n) {
			k = n[a]
			med = k % 2 ? v[a, (k + 1) / 2] : (v[a, k / 2] + v[a, k / 2 + 1]) / 2
			printf "  pod -> %-15s %6.1f / %6.1f / %6.1f\n", a, v[a, 1], med, v[a, k]
		}
	}'
