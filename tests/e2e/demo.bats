#!/usr/bin/env bats
# make demo (examples/demo.sh), run as a user would, non-interactively: what
# it claims must be what happened. Round 2 repeats round 1's lookups and is
# answered entirely from the proxy's cache (the PATH column and the proxy's
# query log say so, and the upstreams' own query logs gain nothing); the
# stand-in resolvers answer NXDOMAIN and NODATA with their zone's SOA, so
# the ndots:5 search-list expansions are cached too; and the demo leaves
# nothing behind, also when it is stopped half-way.

bats_require_minimum_version 1.5.0

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}
ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	(cd "$ROOT" && bash examples/demo.sh) >"$BATS_FILE_TMPDIR/out" 2>&1 </dev/null
	echo $? >"$BATS_FILE_TMPDIR/rc"
}

out() { cat "$BATS_FILE_TMPDIR/out"; }

# The table rows of round N: from its header to its count line.
rows() {
	out | awk -v r="== round $1:" -v e="round $1: queries" '
		index($0, r) == 1 { on = 1; getline; next }
		index($0, e) == 1 { on = 0 }
		on && NF'
}

# The demo's own namespaces and scratch directory, from its output.
demo_ns() { out | sed -n 's/^== namespaces: \(dpdemo-[0-9]*\)-pod .*/\1/p'; }
demo_dir() { out | sed -n 's|^CA: \(/tmp/dpdemo\.[^/]*\)/ca.pem$|\1|p'; }

# Nothing of the demo with prefix $1 and scratch directory $2 is left.
assert_gone() {
	local ns=$1 dir=$2
	[ -n "$ns" ] && [ -n "$dir" ]
	if ip netns list | grep -q "^$ns-"; then
		echo "namespaces left: $(ip netns list | grep "^$ns-")"
		return 1
	fi
	[ ! -e "/etc/netns/$ns-pod" ] || { echo "/etc/netns/$ns-pod left"; return 1; }
	[ ! -e "$dir" ] || { echo "$dir left"; return 1; }
	if pgrep -f "$dir/" >/dev/null; then
		echo "processes left:"; pgrep -af "$dir/"
		return 1
	fi
}

@test "demo: runs to the end and exits 0" {
	[ "$(cat "$BATS_FILE_TMPDIR/rc")" -eq 0 ] || { out; false; }
	out | grep -q '^== done: tearing down'
}

@test "demo: round 1 takes both paths, over TLS and to the local resolver" {
	rows 1 >"$BATS_TEST_TMPDIR/r1"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/r1")" -eq 17 ] || { cat "$BATS_TEST_TMPDIR/r1"; false; }
	grep -q '^whoami\.test .* 203\.0\.113\.1 .* DoT upstream ' "$BATS_TEST_TMPDIR/r1"
	grep -q '^web\.ns\.svc\.cluster\.local .* 198\.51\.100\.10 .* local resolver ' \
		"$BATS_TEST_TMPDIR/r1"
	# No row contradicts the proxy's log.
	run ! grep -q '??' "$BATS_TEST_TMPDIR/r1"
	run ! grep -q 'no answer' "$BATS_TEST_TMPDIR/r1"
}

@test "demo: round 2 is answered from the cache, every lookup" {
	rows 2 >"$BATS_TEST_TMPDIR/r2"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/r2")" -eq 17 ] || { cat "$BATS_TEST_TMPDIR/r2"; false; }
	# Every row: the right answer, PATH cache, nothing forwarded.
	# shellcheck disable=SC2016 # awk program
	run -0 awk '
		!/ cache +0 local, 0 DoT, [1-9][0-9]* cache$/ { print "not cached: " $0; bad = 1 }
		/whoami\.test/ && !/ 203\.0\.113\.1 / { print "wrong: " $0; bad = 1 }
		/^web/ && !/ 198\.51\.100\.10 / { print "wrong: " $0; bad = 1 }
		/^big\.test/ && !/\(100 addrs/ { print "wrong: " $0; bad = 1 }
		END { exit bad }' "$BATS_TEST_TMPDIR/r2"
}

@test "demo: the upstreams' own query logs gain nothing in round 2" {
	local r1 r2 d1 b1
	r1=$(out | grep '^round 1: queries that reached the upstreams')
	r2=$(out | grep '^round 2: queries that reached the upstreams')
	echo "$r1"; echo "$r2"
	[[ $r2 == *"DoT unbound 0 (big.test AAAA: 0), kube-dns 0" ]]
	d1=$(sed -n 's/.*DoT unbound \([0-9]*\) .*/\1/p' <<<"$r1")
	b1=$(sed -n 's/.*big\.test AAAA: \([0-9]*\)).*/\1/p' <<<"$r1")
	# Round 1 did reach them; a negative answer is asked for once, not
	# once per client and search-list expansion (12 times before SOAs).
	[ "$d1" -gt 0 ]
	[ "$b1" -ge 1 ] && [ "$b1" -le 2 ]
	[[ $r1 =~ kube-dns\ [1-9][0-9]*$ ]]
	# The DoT upstream never saw a cluster.local name.
	out | grep -q '^cluster.local names seen by the DoT upstream: 0$'
}

@test "demo: NODATA and NXDOMAIN answers carry the zone's SOA" {
	run -0 grep -E '^big\.test AAAA: NOERROR; authority: test\. [0-9]+ SOA$' \
		<(out)
	run -0 grep -E '^whoami\.test\.ns\.svc\.cluster\.local A: NXDOMAIN; authority: cluster\.local\. [0-9]+ SOA$' \
		<(out)
}

@test "demo: leaves no namespace, process or file behind" {
	assert_gone "$(demo_ns)" "$(demo_dir)"
}

# Stops a second demo with signal $1 once round 1 has begun; it must exit
# with 128+signal and clean up.
interrupt_demo() {
	local sig=$1 code=$2 pid i f=$BATS_TEST_TMPDIR/out rc=0 ns dir
	# Job control on: a background job of a non-interactive shell would
	# otherwise start with SIGINT ignored, as no user's demo does.
	set -m
	(cd "$ROOT" && exec bash examples/demo.sh) >"$f" 2>&1 </dev/null &
	pid=$!
	set +m
	for ((i = 0; i < 300; i++)); do
		grep -q '^== round 1:' "$f" && break
		sleep 0.1
	done
	grep -q '^== round 1:' "$f" || { kill -TERM "$pid"; cat "$f"; false; }
	ns=$(sed -n 's/^== namespaces: \(dpdemo-[0-9]*\)-pod .*/\1/p' "$f")
	dir=$(sed -n 's|^CA: \(/tmp/dpdemo\.[^/]*\)/ca.pem$|\1|p' "$f")
	ip netns list | grep -q "^$ns-pod"
	kill -"$sig" "$pid"
	wait "$pid" || rc=$?
	cat "$f"
	[ "$rc" -eq "$code" ]
	if grep -q '^== done' "$f"; then echo "ran to the end"; return 1; fi
	assert_gone "$ns" "$dir"
}

@test "demo: Ctrl-C half-way still tears everything down" {
	interrupt_demo INT 130
	grep -q '^interrupted: cleaning up' "$BATS_TEST_TMPDIR/out"
}

@test "demo: SIGTERM half-way still tears everything down" {
	interrupt_demo TERM 143
}
