# Namespaces for the dotproxy-init tests. Each test gets a fresh "pod"
# namespace (where the rules go) and an "up" namespace holding the "real"
# DNS server, joined by one veth, documentation addresses only:
#   pod vp 192.0.2.2/24 2001:db8::2/64  <->  up vu 192.0.2.1/24 2001:db8::1/64
# Nothing routes anywhere else. Background processes and namespaces are
# removed in init_ns_teardown, which runs even when a test fails.

INIT_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# $BUILD as make and tests/run.sh use it (relative to the root, or absolute).
case ${BUILD:-build} in
/*) INIT_BUILD=${BUILD} ;;
*) INIT_BUILD=$INIT_ROOT/${BUILD:-build} ;;
esac
INIT_BIN=${INIT_BIN:-$INIT_BUILD/dotproxy-init}
ECHO_DNS=${ECHO_DNS:-$INIT_BUILD/tools/echo_dns}
# shellcheck disable=SC2034 # used by the .bats files
PROXY_UID=15353 APP_UID=1000
# Plain UDP query, one try, short timeout, no EDNS: what a stub would send.
DIG=(dig +tries=1 +time=2 +noedns +nocookie)

init_ns_setup() {
	[ -x "$INIT_BIN" ] || { echo "no $INIT_BIN (make all)" >&2; return 1; }
	[ -x "$ECHO_DNS" ] || { echo "no $ECHO_DNS (make build/tools/echo_dns)" >&2; return 1; }
	NSP="dpi-$$-$BATS_TEST_NUMBER"
	POD="$NSP-pod"
	UP="$NSP-up"
	# Every name this file's tests made, for init_ns_leftovers (bats
	# runs each test in its own process, so $$ cannot find them).
	echo "$POD $UP" >>"$BATS_FILE_TMPDIR/init-ns.made"
	BG_PIDS=()
	TMPD=$(mktemp -d "${BATS_TMPDIR:-/tmp}/dpi.XXXXXX")
	ip netns add "$POD"
	ip netns add "$UP"
	ip -n "$POD" link set lo up
	ip -n "$UP" link set lo up
	ip link add vp netns "$POD" type veth peer name vu netns "$UP"
	ip -n "$POD" addr add 192.0.2.2/24 dev vp
	ip -n "$UP" addr add 192.0.2.1/24 dev vu
	ip -n "$POD" addr add 2001:db8::2/64 dev vp nodad
	ip -n "$UP" addr add 2001:db8::1/64 dev vu nodad
	ip -n "$POD" link set vp up
	ip -n "$UP" link set vu up
}

init_ns_teardown() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	ip netns del "$POD" 2>/dev/null || true
	ip netns del "$UP" 2>/dev/null || true
	rm -rf "$TMPD"
}

# init_ns_leftovers: prints the namespaces this file's tests made that
# still exist (for teardown_file); prints nothing if none do.
init_ns_leftovers() {
	local made ns
	[ -f "$BATS_FILE_TMPDIR/init-ns.made" ] || return 0
	made=$(tr ' ' '\n' <"$BATS_FILE_TMPDIR/init-ns.made")
	for ns in $(ip netns list | awk '{ print $1 }'); do
		if printf '%s\n' "$made" | grep -qxF -- "$ns"; then
			echo "$ns"
		fi
	done
}

# in_pod CMD...: runs CMD as root inside the pod namespace.
in_pod() {
	ip netns exec "$POD" "$@"
}

# as_uid UID CMD...: runs CMD inside the pod as UID (and GID), no groups.
as_uid() {
	local uid=$1
	shift
	ip netns exec "$POD" setpriv --reuid "$uid" --regid "$uid" \
		--clear-groups "$@"
}

# start_bg NAME NS UID CMD...: starts CMD in NS as UID (root: 0) with
# output in $TMPD/NAME.log, remembers its pid, waits until it logs
# "listening" (2 s at most).
start_bg() {
	local name=$1 ns=$2 uid=$3
	shift 3
	if [ "$uid" -eq 0 ]; then
		ip netns exec "$ns" "$@" >"$TMPD/$name.log" 2>&1 3>&- &
	else
		ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" \
			--clear-groups "$@" >"$TMPD/$name.log" 2>&1 3>&- &
	fi
	BG_PIDS+=("$!")
	for _ in $(seq 40); do
		grep -q listening "$TMPD/$name.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$name did not start:" >&2
	cat "$TMPD/$name.log" >&2
	return 1
}

# The stand-ins: the proxy (SERVFAIL, as the proxy UID, on 127.0.0.1 and
# ::1) and the real server in "up" (REFUSED), so an answer's rcode says
# which one answered.
start_fake_proxy() {
	start_bg proxy4 "$POD" "$PROXY_UID" "$ECHO_DNS" -r 2 127.0.0.1 15353
	start_bg proxy6 "$POD" "$PROXY_UID" "$ECHO_DNS" -r 2 ::1 15353
}

start_real_server() {
	start_bg real4 "$UP" 0 "$ECHO_DNS" -r 5 192.0.2.1 53
	start_bg real6 "$UP" 0 "$ECHO_DNS" -r 5 2001:db8::1 53
}

# rcode_of UID SERVER [dig args...]: prints the status dig saw (SERVFAIL:
# the proxy answered, REFUSED: the real server did) or "noanswer".
rcode_of() {
	local uid=$1 server=$2 out
	shift 2
	out=$(as_uid "$uid" "${DIG[@]}" "$@" "@$server" example.test 2>&1) || true
	if [[ $out =~ status:\ ([A-Z]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo noanswer
	fi
}

# The pod's table with counters and handles stripped.
pod_table() {
	in_pod nft list table inet dotproxy |
		sed -e 's/counter packets [0-9]* bytes [0-9]*/counter/' \
			-e 's/ # handle [0-9]*//'
}
