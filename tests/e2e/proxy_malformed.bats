#!/usr/bin/env bats
# dotproxy and malformed input: every bad message gets FORMERR (or NOTIMP)
# with its own ID, or no answer, and a normal query right after it still
# works. Over TCP the connection is answered FORMERR or closed. A burst of
# garbage does not stop the process; the proxy still exits 0 on SIGTERM.

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
setup() { start_proxy; }
teardown() { proxy_test_teardown; }

HDR1="beef 0100 0001 0000 0000 0000"	# ID beef, RD, QDCOUNT=1
QWHOAMI="06 77686f616d69 04 74657374 00 0001 0001"

# hex of N bytes 'a'
a_bytes() {
	local i s=
	for ((i = 0; i < $1; i++)); do s+=61; done
	echo "$s"
}

udp() {
	run dnsraw -w "${WAIT:-1500}" udp 127.0.0.1 "$W_PROXY_PORT" "$1"
}

tcp() {
	run dnsraw "$@"
}

# $output from dnsraw: an answer with rcode $1, QR set and ID beef.
expect_rcode() {
	[ "$status" -eq 0 ] || w_fail "no answer, want rcode $1" || return 1
	[ "$(raw_field id)" = beef ] || w_fail "wrong ID" || return 1
	[ "$(raw_field qr)" = 1 ] || w_fail "QR not set" || return 1
	[ "$(raw_field rcode)" = "$1" ] || w_fail "want rcode $1" || return 1
}

expect_no_answer() {
	{ [ "$status" -eq 1 ] && grep -qx timeout <<<"$output"; } ||
		w_fail "want no answer"
}

# After a bad message, the proxy is alive and answers normally (UDP, TCP).
still_works() {
	proxy_alive || w_fail "the proxy died" || return 1
	run q whoami.test A
	assert_dot_answer || return 1
	run q +tcp whoami.test A
	assert_dot_answer
}

@test "UDP: a 0-byte datagram gets no answer" {
	WAIT=1000 udp ""
	expect_no_answer
	still_works
}

@test "UDP: a 5-byte datagram gets no answer" {
	WAIT=1000 udp "beef010000"
	expect_no_answer
	still_works
}

@test "UDP: a message with QR set gets no answer" {
	WAIT=1000 udp "beef 8100 0001 0000 0000 0000 $QWHOAMI"
	expect_no_answer
	still_works
}

@test "UDP: QDCOUNT=0 gets FORMERR" {
	udp "beef 0100 0000 0000 0000 0000"
	expect_rcode 1
	still_works
}

@test "UDP: QDCOUNT=2 gets FORMERR" {
	udp "beef 0100 0002 0000 0000 0000 $QWHOAMI $QWHOAMI"
	expect_rcode 1
	still_works
}

@test "UDP: a compression pointer loop gets FORMERR" {
	# The question name at offset 12 points to itself.
	udp "$HDR1 c00c 0001 0001"
	expect_rcode 1
	still_works
}

@test "UDP: a two-pointer loop gets FORMERR" {
	# 12: label "a" then a pointer to 12 again.
	udp "$HDR1 01 61 c00c 0001 0001"
	expect_rcode 1
	still_works
}

@test "UDP: a forward compression pointer gets FORMERR" {
	# The name at 12 points forward to 18, where "test" sits.
	udp "$HDR1 c012 0001 0001 04 74657374 00"
	expect_rcode 1
	still_works
}

@test "UDP: a label of 64 bytes gets FORMERR" {
	udp "$HDR1 40 $(a_bytes 64) 04 74657374 00 0001 0001"
	expect_rcode 1
	still_works
}

@test "UDP: a name longer than 255 bytes gets FORMERR" {
	local l
	l="3f $(a_bytes 63)"
	udp "$HDR1 $l $l $l $l $l 00 0001 0001"
	expect_rcode 1
	still_works
}

@test "UDP: a question cut short gets FORMERR" {
	udp "$HDR1 06 77686f616d69 04 7465"
	expect_rcode 1
	still_works
}

@test "UDP: opcode STATUS gets NOTIMP" {
	udp "beef 1100 0001 0000 0000 0000 $QWHOAMI"
	expect_rcode 4
	still_works
}

@test "UDP: random garbage (fixed seeds) gets FORMERR/NOTIMP or nothing" {
	local seed len hex id
	for seed in $(seq 1 20); do
		len=$((12 + (seed * 37) % 200))
		hex=$("$DNSRAW" garbage "$seed" "$len")
		WAIT=500 udp "$hex"
		id=${hex:0:4}
		if [ "$status" -eq 0 ]; then
			echo "seed $seed: $(head -n 1 <<<"$output")"
			[ "$(raw_field id)" = "$id" ] || w_fail "seed $seed: wrong ID"
			[ "$(raw_field qr)" = 1 ] || w_fail "seed $seed: QR not set"
			case $(raw_field rcode) in
			1|4) ;;
			*) w_fail "seed $seed: want FORMERR or NOTIMP" ;;
			esac
		else
			expect_no_answer
			echo "seed $seed: no answer"
		fi
		proxy_alive || w_fail "the proxy died on seed $seed"
	done
	still_works
}

@test "UDP: 2000 garbage datagrams do not stop the proxy" {
	run dnsraw burst 127.0.0.1 "$W_PROXY_PORT" 2000 42
	[ "$status" -eq 0 ] || w_fail "burst failed"
	sleep 0.3
	still_works
}

@test "TCP: a zero length prefix: closed or FORMERR" {
	tcp -w 3000 -n 1 tcp 127.0.0.1 "$W_PROXY_PORT" "0000"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" || [ "$(raw_field rcode)" = 1 ] ||
		w_fail "want the connection closed or FORMERR"
	still_works
}

@test "TCP: an absurd length prefix then close: the connection is closed" {
	tcp -w 3000 -s tcp 127.0.0.1 "$W_PROXY_PORT" "ffff beef 0100 0001"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" || w_fail "want the connection closed"
	still_works
}

@test "TCP: a framed QDCOUNT=0 message: FORMERR or closed" {
	tcp -w 3000 -n 1 tcp 127.0.0.1 "$W_PROXY_PORT" "000c beef 0100 0000 0000 0000 0000"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" || [ "$(raw_field rcode)" = 1 ] ||
		w_fail "want the connection closed or FORMERR"
	still_works
}

@test "TCP: a FORMERR answer pending and a zero length prefix in one write: closed, nothing freed twice" {
	# The FORMERR is queued for the client in the same pass that the bad
	# frame closes it: the queued write must not outlive the client (a
	# sanitizer build aborts here otherwise, and teardown sees it). No
	# half-close (-s): the zero prefix alone must end the connection.
	tcp -w 3000 tcp 127.0.0.1 "$W_PROXY_PORT" "000c beef 0100 0000 0000 0000 0000 0000"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" ||
		w_fail "want the connection closed by the proxy, not left open"
	sleep 0.3
	still_works
}

@test "TCP: a framed pointer loop: FORMERR or closed" {
	tcp -w 3000 -n 1 tcp 127.0.0.1 "$W_PROXY_PORT" "0010 $HDR1 c00c 0001 0001"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" || [ "$(raw_field rcode)" = 1 ] ||
		w_fail "want the connection closed or FORMERR"
	still_works
}

@test "TCP: framed garbage then close: answered or closed, never left hanging" {
	local seed hex len
	for seed in 3 5 8; do
		len=$((20 + seed * 11))
		hex=$(printf '%04x' "$len")$("$DNSRAW" garbage "$seed" "$len")
		tcp -w 3000 -s tcp 127.0.0.1 "$W_PROXY_PORT" "$hex"
		[ "$status" -eq 0 ] || w_fail "dnsraw failed"
		echo "seed $seed: $(tail -n 1 <<<"$output")"
		grep -Eqx 'eof|reset' <<<"$output" ||
			w_fail "seed $seed: want the connection closed"
		if grep -q '^reply' <<<"$output"; then
			case $(raw_field rcode) in
			1|4) ;;
			*) w_fail "seed $seed: want FORMERR or NOTIMP" ;;
			esac
		fi
	done
	still_works
}

@test "TCP: unframed garbage then close does not stop the proxy" {
	tcp -w 3000 -s tcp 127.0.0.1 "$W_PROXY_PORT" "$("$DNSRAW" garbage 99 700)"
	[ "$status" -eq 0 ] || w_fail "dnsraw failed"
	grep -Eqx 'eof|reset' <<<"$output" || w_fail "want the connection closed"
	still_works
}
