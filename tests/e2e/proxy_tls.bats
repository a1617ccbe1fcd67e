#!/usr/bin/env bats
# dotproxy and upstream TLS authentication (RFC 8310 strict profile): an
# untrusted CA or a wrong auth name gives SERVFAIL, never the answer, never
# plain DNS, and a log line saying why.

load helpers/world

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}

setup_file() { world_file_setup; }
teardown_file() { world_teardown; }
setup() { :; }
teardown() { proxy_test_teardown; }

@test "certificate from an untrusted CA: SERVFAIL within the timeout, log says why" {
	local t0 t1
	start_proxy --ca-file "$W_OTHER_CA"
	t0=$(date +%s%N)
	run q whoami.test A
	t1=$(date +%s%N)
	[ "$status" -eq 0 ] || w_fail "dig exit $status (no answer?)"
	assert_status SERVFAIL
	! grep -q '203\.0\.113\.1\|198\.51\.100\.53' <<<"$output" || w_fail "got an answer"
	[ "$(((t1 - t0) / 1000000))" -le 4000 ] || w_fail "SERVFAIL took more than 4 s"
	grep -Eiq 'certificate|verify' "$(proxy_log)" ||
		w_fail "want a log line about the certificate"
}

@test "wrong auth name: SERVFAIL, log says why" {
	start_proxy --upstream "192.0.2.2@853#wrong.test"
	run q whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status (no answer?)"
	assert_status SERVFAIL
	! grep -q '203\.0\.113\.1\|198\.51\.100\.53' <<<"$output" || w_fail "got an answer"
	grep -Eiq 'hostname|name mismatch|verify' "$(proxy_log)" ||
		w_fail "want a log line about the name"
}

@test "wrong auth name over TCP: SERVFAIL too" {
	start_proxy --upstream "192.0.2.2@853#wrong.test"
	run q +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status (no answer?)"
	assert_status SERVFAIL
}

@test "right CA and name over an IPv6 upstream answers" {
	start_proxy --upstream "2001:db8::2@853#dot.test"
	run q whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status"
	assert_dot_answer
}

@test "a TLS failure is retried fresh: the next query also gets SERVFAIL, not a hang" {
	start_proxy --ca-file "$W_OTHER_CA"
	run q whoami.test A
	assert_status SERVFAIL
	run q +tcp whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status (no answer?)"
	assert_status SERVFAIL
}

# The base64 SHA-256 of a certificate's SubjectPublicKeyInfo.
spki_pin() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64
}

@test "SPKI pin of the server's key: answered, and the pin holds on a resumed session" {
	local pin
	pin=$(spki_pin "$W_DIR/pki/server.pem")
	start_proxy --upstream "192.0.2.2@853#dot.test^$pin" --idle-timeout 300
	run q whoami.test A
	assert_dot_answer
	sleep 0.8	# the idle connection closes; the next one resumes
	run q whoami.test A
	assert_dot_answer
	grep -q 'msg="upstream connected".*resumed=yes' "$(proxy_log)" ||
		w_fail "want a resumed TLS session on the second connection"
}

@test "SPKI pin only, no auth name: the pin alone authenticates" {
	local pin
	pin=$(spki_pin "$W_DIR/pki/server.pem")
	start_proxy --upstream "192.0.2.2@853^$pin" --ca-file "$W_OTHER_CA"
	run q whoami.test A
	assert_dot_answer
}

@test "wrong SPKI pin (a backup pin that is not the server's): SERVFAIL, log says why" {
	local pin
	pin=$(spki_pin "$W_OTHER_CA")
	start_proxy --upstream "192.0.2.2@853#dot.test^$pin"
	run q whoami.test A
	[ "$status" -eq 0 ] || w_fail "dig exit $status (no answer?)"
	assert_status SERVFAIL
	grep -Eiq 'pin mismatch' "$(proxy_log)" || w_fail "want a log line about the pin"
}
