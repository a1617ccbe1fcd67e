#!/usr/bin/env bash
# dotproxy demo: a Kubernetes-like pod in two network namespaces, no
# internet needed. Run it as root: `make demo` (or bash examples/demo.sh).
#
#   pod ns       192.0.2.1   dotproxy-init's rules, dotproxy (UID 15353),
#                            unmodified clients (UID 1000); resolv.conf as a
#                            kubelet writes it (nameserver 192.0.2.2,
#                            search ns.svc.cluster.local ..., ndots:5)
#   upstream ns  192.0.2.2   unbound over TLS on :853 (the "public" DoT
#                            resolver, throw-away CA), and a plain unbound
#                            on :53 standing in for kube-dns
#
# The two resolvers give different answers for the same name (whoami.test
# is 203.0.113.1 over DoT, 198.51.100.53 from kube-dns), so the table shows
# which path every answer took, next to what the proxy's query log says.
# Everything is torn down on exit, error or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# $BUILD as make and tests/run.sh use it (relative to the checkout).
BUILD=${BUILD:-build}
case $BUILD in
/*) B=$BUILD ;;
*) B=$ROOT/$BUILD ;;
esac
DOTPROXY=$B/dotproxy
INIT=$B/dotproxy-init
GAI=$B/tools/gai
PROXY_UID=15353
APP_UID=1000
POD=dpdemo-$$-pod
UP=dpdemo-$$-up
DIR=
PIDS=()
WORKER=
MADE_ETC_NETNS=

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: must run as root: it creates network namespaces and" \
		"nftables rules inside them (try: sudo make demo)" >&2
	exit 1
fi
for tool in ip nft unbound dig openssl setpriv getent ss; do
	command -v "$tool" >/dev/null ||
		{ echo "demo.sh: $tool not found (make deps installs it)" >&2; exit 1; }
done

cleanup() {
	local pid i
	trap - EXIT INT TERM
	[ -z "$WORKER" ] || kill -TERM "$WORKER" 2>/dev/null || true
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 30; i++)); do
		for pid in "${PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && break
			pid=
		done
		[ -z "${pid:-}" ] && break
		sleep 0.1
	done
	for ns in "$POD" "$UP"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "/etc/netns/$POD"
	[ -z "$MADE_ETC_NETNS" ] || rmdir /etc/netns 2>/dev/null || true
	[ -z "$DIR" ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT
trap 'exit 143' TERM

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
pod() { ip netns exec "$POD" "$@"; }
up() { ip netns exec "$UP" "$@"; }
as_app() {
	ip netns exec "$POD" setpriv --reuid "$APP_UID" --regid "$APP_UID" \
		--clear-groups timeout 15 "$@"
}

if [ ! -x "$DOTPROXY" ] || [ ! -x "$INIT" ] || [ ! -x "$GAI" ]; then
	say "building dotproxy, dotproxy-init and the gai tool"
	make -C "$ROOT" BUILD="$BUILD" all "$BUILD/tools/gai"
fi

DIR=$(mktemp -d /tmp/dpdemo.XXXXXX)
chmod 0755 "$DIR"

say "namespaces: $POD (192.0.2.1) <-veth-> $UP (192.0.2.2)"
ip netns add "$POD"
ip netns add "$UP"
ip -n "$POD" link set lo up
ip -n "$UP" link set lo up
ip -n "$POD" link add veth0 type veth peer name veth1 netns "$UP"
ip -n "$POD" addr add 192.0.2.1/24 dev veth0
ip -n "$UP" addr add 192.0.2.2/24 dev veth1
ip -n "$POD" link set veth0 up
ip -n "$UP" link set veth1 up
# Lets a client address a resolver nobody runs; the redirect catches it.
ip -n "$POD" route add 203.0.113.0/24 via 192.0.2.2

[ -d /etc/netns ] || { mkdir /etc/netns && MADE_ETC_NETNS=1; }
mkdir -p "/etc/netns/$POD"
cat >"/etc/netns/$POD/resolv.conf" <<'EOF'
nameserver 192.0.2.2
search ns.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
EOF
echo "pod resolv.conf:"
sed 's/^/    /' "/etc/netns/$POD/resolv.conf"

say "throw-away CA and a certificate for dot.test"
(
	cd "$DIR"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -subj "/CN=dotproxy demo CA" -days 1 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout server.key -out server.csr -subj "/CN=dot.test"
	printf '%s\n' "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" \
		"subjectAltName=DNS:dot.test" >server.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 1 -extfile server.ext -out server.pem
	chmod 0644 ./*.pem ./*.key
) >"$DIR/openssl.log" 2>&1 || { cat "$DIR/openssl.log"; exit 1; }
echo "CA: $DIR/ca.pem"

# Both resolvers are authoritative-like for their zones (unbound "static"
# local zones) and, as real servers do, put the zone's SOA in the authority
# section of NXDOMAIN and NODATA answers: without it a negative answer may
# not be cached (RFC 2308 §5), and every search-list expansion that ndots:5
# makes would reach the resolver again. Negative TTL: min(SOA TTL, MINIMUM).
SOA_TEST="ns.test. hostmaster.test. 1 7200 1800 86400 300"
SOA_CLUSTER="ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 60"

# unbound_conf NAME KIND(dot|plain)
unbound_conf() {
	local name=$1 kind=$2 i
	{
		printf '%s\n' "server:" "verbosity: 0" "use-syslog: no" \
			"logfile: \"\"" "chroot: \"\"" "username: \"\"" \
			"directory: \"$DIR\"" "pidfile: \"$DIR/$name.pidfile\"" \
			"num-threads: 1" "interface-automatic: no" "do-ip6: no" \
			"access-control: 0.0.0.0/0 allow" \
			"module-config: \"iterator\"" "log-queries: yes" \
			"local-zone: \".\" refuse" "local-zone: \"test.\" static" \
			"local-data: \"test. 3600 IN SOA $SOA_TEST\""
		if [ "$kind" = dot ]; then
			printf '%s\n' "interface: 192.0.2.2@853" "tls-port: 853" \
				"tls-service-key: \"$DIR/server.key\"" \
				"tls-service-pem: \"$DIR/server.pem\"" \
				"local-data: \"whoami.test. 300 IN A 203.0.113.1\""
			for ((i = 1; i <= 100; i++)); do
				echo "local-data: \"big.test. 300 IN A 203.0.113.$i\""
			done
		else
			printf '%s\n' "interface: 192.0.2.2@53" \
				"local-data: \"whoami.test. 60 IN A 198.51.100.53\"" \
				"local-data: \"big.test. 60 IN A 198.51.100.99\"" \
				"local-zone: \"cluster.local.\" static" \
				"local-data: \"cluster.local. 60 IN SOA $SOA_CLUSTER\"" \
				"local-data: \"web.ns.svc.cluster.local. 60 IN A 198.51.100.10\""
		fi
		printf '%s\n' "remote-control:" "control-enable: no"
	} >"$DIR/$name.conf"
	unbound-checkconf "$DIR/$name.conf" >/dev/null
}

say "upstream: unbound DoT on 192.0.2.2:853, kube-dns stand-in on 192.0.2.2:53"
unbound_conf dot dot
unbound_conf kubedns plain
for name in dot kubedns; do
	up unbound -d -c "$DIR/$name.conf" </dev/null >"$DIR/$name.log" 2>&1 &
	PIDS+=("$!")
done
for ((i = 0; i < 100; i++)); do
	if pod dig @192.0.2.2 +tls +tls-ca="$DIR/ca.pem" +tls-hostname=dot.test \
		+short +time=1 +tries=1 whoami.test 2>/dev/null | grep -q 203.0.113.1 &&
		pod dig @192.0.2.2 +short +time=1 +tries=1 whoami.test 2>/dev/null |
		grep -q 198.51.100.53; then
		break
	fi
	[ "$i" -lt 99 ] || { echo "unbound did not come up:"; cat "$DIR"/*.log; exit 1; }
	sleep 0.1
done
echo "whoami.test is 203.0.113.1 over DoT, 198.51.100.53 from kube-dns"

say "dotproxy-init in the pod (redirect port 53 -> 15353, except UID $PROXY_UID)"
pod "$INIT"

say "dotproxy in the pod as UID $PROXY_UID"
# Local-zone answers are kept at most 5 s by default (cluster records
# change); the demo's second round may come later than that.
ARGS=(--transparent --local-zone cluster.local --log-queries
	--local-cache-max-ttl 60
	--upstream "192.0.2.2@853#dot.test" --ca-file "$DIR/ca.pem")
echo "dotproxy ${ARGS[*]}"
pod setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
	"$DOTPROXY" "${ARGS[@]}" </dev/null >"$DIR/proxy.log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 50; i++)); do
	grep -q 'msg="ready"' "$DIR/proxy.log" && break
	[ "$i" -lt 49 ] || { echo "dotproxy did not start:"; cat "$DIR/proxy.log"; exit 1; }
	sleep 0.1
done

# Addresses of the A records in dig output, comma-separated.
dig_addrs() {
	awk '$3 == "IN" && $4 == "A" { print $5 }' | paste -sd, -
}

# Shortens a list of addresses: "a,b,c" -> "a,b,c"; longer -> "a ...
# (N addresses)". A note ($2) goes into the parentheses.
short_list() {
	local IFS=, a
	read -r -a a <<<"$1"
	if [ "${#a[@]}" -le 3 ]; then
		echo "$1${2:+ ($2)}"
	else
		echo "${a[0]} ... (${#a[@]} addrs${2:+, $2})"
	fi
}

# The proxy's query lines since byte offset $1.
log_since() {
	tail -c +"$(($1 + 1))" "$DIR/proxy.log" | grep 'msg="query"' || true
}

# Counts the query lines since offset $1 that went out on path $2 (dot or
# local): answered by a resolver, not from the cache.
log_count() {
	log_since "$1" | grep " path=$2 " |
		grep -cE ' cache=(miss|expired|off)( |$)' || true
}

# Counts the query lines since offset $1 answered from the cache.
log_cached() {
	log_since "$1" | grep -cE ' cache=(hit|stale)( |$)' || true
}

# The path an answer took (OFFSET ADDR): the cache if the proxy's query log
# says every question of this lookup was answered from it; otherwise whose
# address came back (the two resolvers answer differently), checked against
# the log.
path_of() {
	local nd nl nc
	nd=$(log_count "$1" dot)
	nl=$(log_count "$1" local)
	nc=$(log_cached "$1")
	if [ "$nc" -gt 0 ] && [ "$nd" -eq 0 ] && [ "$nl" -eq 0 ]; then
		echo "cache"
		return
	fi
	case $2 in
	203.0.113.*)
		if [ "$nd" -gt 0 ]; then echo "DoT upstream"; else echo "?? (not in log)"; fi ;;
	198.51.100.*)
		if [ "$nd" -eq 0 ]; then echo "local resolver"; else echo "?? (DoT in log)"; fi ;;
	*) echo "-" ;;
	esac
}

row() {
	printf '%-25s %-18s %-38s %-15s %s\n' "$@"
}

# client NAME CLIENT-LABEL CMD...: runs CMD as the app, prints a table row.
client() {
	local name=$1 label=$2 off out addrs note='' first
	shift 2
	off=$(stat -c %s "$DIR/proxy.log")
	out=$(as_app "$@" 2>&1) || true
	case $label in
	getent*) addrs=$(awk '{ print $1 }' <<<"$out" | awk '!s[$0]++' | paste -sd, -) ;;
	gai*) addrs=$(awk '$2 != "error:" { print $2 }' <<<"$out") ;;
	dig*) addrs=$(dig_addrs <<<"$out")
		if grep -q 'Truncated, retrying in TCP' <<<"$out"; then
			note="TC->TCP"
		fi ;;
	esac
	sleep 0.05
	first=${addrs%%,*}
	row "$name" "$label" "$(short_list "${addrs:-no answer}" "$note")" \
		"$(path_of "$off" "$first")" \
		"$(log_count "$off" local) local, $(log_count "$off" dot) DoT, $(log_cached "$off") cache"
}

# Queries in an upstream unbound's own query log (dot or kubedns), and
# those for $2 (e.g. "big.test. AAAA").
upstream_count() {
	grep -c ' info: [0-9.]* [^ ]* [A-Z0-9]* IN$' "$DIR/$1.log" || true
}
upstream_count_of() {
	grep -c " info: [0-9.]* $2 IN\$" "$DIR/$1.log" || true
}

# round N: every lookup of the demo once, then what reached the upstreams
# during it, from their own query logs.
round() {
	local d0 k0 b0 d1 k1 b1 name
	d0=$(upstream_count dot)
	k0=$(upstream_count kubedns)
	b0=$(upstream_count_of dot "big.test. AAAA")
	say "round $1: unmodified clients as UID $APP_UID, through the pod's own resolv.conf"
	row NAME CLIENT ANSWER PATH "PROXY LOG: questions"
	for name in whoami.test web.ns.svc.cluster.local web big.test; do
		client "$name" "getent ahosts" getent ahosts "$name"
		client "$name" "gai (getaddrinfo)" "$GAI" "$name"
		client "$name" "dig (UDP)" dig +search +tries=1 +time=3 "$name" A
		client "$name" "dig +tcp" dig +search +tcp +tries=1 +time=3 "$name" A
		echo
	done
	client whoami.test "dig @203.0.113.99" dig @203.0.113.99 +tries=1 +time=3 whoami.test A
	sleep 0.2
	d1=$(upstream_count dot)
	k1=$(upstream_count kubedns)
	b1=$(upstream_count_of dot "big.test. AAAA")
	echo
	echo "round $1: queries that reached the upstreams (their own query logs):" \
		"DoT unbound $((d1 - d0)) (big.test AAAA: $((b1 - b0))), kube-dns $((k1 - k0))"
	ROUND_START=$d0 ROUND_END=$d1
}

# Everything the app does, in a child of this shell: the signal traps run
# while this shell waits for it, never in the middle of its command
# substitutions (bash 5.2 can then fail to parse the trap and exit 2).
lookups() {
	round 1
	cat <<'EOF'

PATH: whose answer came back (DoT gives 203.0.113.x, kube-dns 198.51.100.x),
checked against the proxy's query log; "cache" when the proxy answered every
question of the lookup itself. With ndots:5 every name first goes through
the search list: those *.cluster.local expansions are answered NXDOMAIN by
kube-dns in plain DNS ("local"); only the final external name goes over TLS.
Both resolvers put their zone's SOA in NXDOMAIN and NODATA answers, so the
proxy caches those too (RFC 2308): an expansion or an AAAA question that
found nothing is asked once, not once per client. The 100-record big.test
does not fit in UDP: the proxy sets TC and the client retries over TCP
(getaddrinfo also re-asks with a larger buffer, hence its higher counts).
"dig @203.0.113.99" asks a resolver that does not exist: the redirect still
catches it.
EOF

	say "what reached the DoT upstream in round 1 (its query log)"
	grep ' info: [0-9.]* [^ ]* [A-Z0-9]* IN$' "$DIR/dot.log" |
		sed -n "$((ROUND_START + 1)),${ROUND_END}p" |
		grep -o 'info: [0-9.]* [^ ]* [A-Z0-9]* IN' | sort | uniq -c |
		sed 's/^/    /' || true
	n=$(grep -c 'cluster\.local' "$DIR/dot.log" || true)
	echo "cluster.local names seen by the DoT upstream: $n"

	round 2
	echo "(the same lookups again: every answer from the proxy's cache, nothing new"
	echo "in either upstream's query log)"

	say "negative answers carry the zone's SOA (dig as UID $APP_UID, from the cache)"
	for q in "big.test AAAA" "whoami.test.ns.svc.cluster.local A"; do
		# shellcheck disable=SC2086 # name and type, split on purpose
		out=$(as_app dig +tries=1 +time=3 $q 2>&1) || true
		printf '%s: %s; authority: %s\n' "$q" \
			"$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")" \
			"$(awk '/AUTHORITY SECTION/ { a = 1; next } a && NF == 0 { a = 0 }
				a { print $1, $2, $4 }' <<<"$out" | paste -sd';' -)"
	done
	echo "(NODATA is NOERROR with no answer; TTLs counted down from the SOA's)"
}

lookups &
WORKER=$!
wait "$WORKER"
WORKER=

say "the pod's ruleset, with counters (nft list table inet dotproxy)"
pod nft list table inet dotproxy

say "done: tearing down"
