#!/usr/bin/env bats
# dotproxy basics: UDP and TCP over IPv4 and IPv6 answered over DoT,
# truncation for small-buffer and no-EDNS clients, EDNS handling.
# Each test gets a fresh proxy that must exit 0 on SIGTERM afterwards.

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
setup() { start_proxy; }
teardown() { proxy_test_teardown; }

@test "UDP over IPv4 is answered over DoT" {
	run q whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
}

@test "TCP over IPv4 is answered over DoT" {
	run q +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
}

@test "UDP over IPv6 is answered over DoT" {
	run q6 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
}

@test "TCP over IPv6 is answered over DoT" {
	run q6 +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
}

@test "kdig over UDP and TCP, IPv4 and IPv6, answers with the query ID" {
	local a t
	for a in 127.0.0.1 ::1; do
		for t in +notcp +tcp; do
			run pod timeout 10 kdig @"$a" -p "$W_PROXY_PORT" "$t" +retry=0 \
				+time=5 whoami.test A
			[ "$status" -eq 0 ] || w_fail "kdig @$a $t exit $status"
			grep -q 'status: NOERROR' <<<"$output" || w_fail "kdig @$a $t: not NOERROR"
			grep -Eq 'whoami\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+203\.0\.113\.1' \
				<<<"$output" || w_fail "kdig @$a $t: no DoT answer"
		done
	done
}

@test "a name that does not exist is NXDOMAIN, passed through" {
	run q nosuchname.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_status NXDOMAIN
}

@test "UDP client with a 512-byte buffer gets TC=1 and at most 512 bytes" {
	local size
	run q +bufsize=512 +ignore big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_status NOERROR
	has_tc || w_fail "want the tc flag"
	size=$(msg_size)
	[ -n "$size" ] && [ "$size" -le 512 ] || w_fail "got $size bytes, want <= 512"
}

@test "UDP client with a 1232-byte buffer gets a 1637-byte answer truncated" {
	local size
	run q +bufsize=1232 +ignore big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	has_tc || w_fail "want the tc flag"
	size=$(msg_size)
	[ -n "$size" ] && [ "$size" -le 1232 ] || w_fail "got $size bytes, want <= 1232"
}

@test "truncated over UDP, dig retries over TCP and gets all 100 records" {
	run q big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	grep -q 'Truncated, retrying in TCP mode' <<<"$output" ||
		w_fail "want dig to see TC over UDP first"
	assert_status NOERROR
	[ "$(answer_count)" = 100 ] || w_fail "want ANSWER: 100"
	[ "$(grep -Ec '^big\.test\.[[:space:]].*IN[[:space:]]+A[[:space:]]+203\.0\.113\.' <<<"$output")" = 100 ] ||
		w_fail "want 100 A records listed"
}

@test "TCP client gets the whole 1637-byte answer" {
	run q +tcp big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	[ "$(answer_count)" = 100 ] || w_fail "want ANSWER: 100"
	[ "$(msg_size)" -gt 1232 ] || w_fail "want more than 1232 bytes"
	! has_tc || w_fail "no tc over TCP"
}

@test "client without EDNS gets an answer with no OPT record" {
	run q +noedns whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	! grep -q 'OPT PSEUDOSECTION' <<<"$output" || w_fail "want no OPT in the answer"
}

@test "client without EDNS gets big answers truncated to 512 bytes, no OPT" {
	local size
	run q +noedns +ignore big.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	has_tc || w_fail "want the tc flag"
	size=$(msg_size)
	[ -n "$size" ] && [ "$size" -le 512 ] || w_fail "got $size bytes, want <= 512"
	! grep -q 'OPT PSEUDOSECTION' <<<"$output" || w_fail "want no OPT in the answer"
}

@test "client with EDNS gets an OPT record back" {
	run q +edns=0 whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
	grep -q 'OPT PSEUDOSECTION' <<<"$output" || w_fail "want an OPT in the answer"
}
