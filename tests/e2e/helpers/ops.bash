# shellcheck shell=bash
# Variables here are used by ops.bats (SC2034).
# shellcheck disable=SC2034
# Helpers for tests/e2e/ops.bats: the proxy's operations side (HTTP
# /metrics, /livez, /readyz, healthcheck, signals, logs). Loaded after
# helpers/world, whose state files ($W_DIR/proxy.*) and namespaces it uses.
#
#   ops_start_proxy ARGS    start_proxy with --metrics on 127.0.0.1:9153
#   ops_start_from_file F ARGS  same, but upstream and CA come only from F
#   http_get PATH           GET in the pod ns; sets $http_code, $http_body
#   scrape FILE             /metrics into FILE (fails unless 200)
#   mval FILE SERIES        value of one series ("name{labels}") in FILE
#   mdelta A B SERIES       its change from scrape A to scrape B
#   wait_rc SECONDS         waits for the proxy's exit status, prints it
#   dot2_start / dot2_stop  a second DoT unbound on 192.0.2.4@853
#   slow_start N / slow_stop  N silent or dribbling HTTP clients

OPS_METRICS=127.0.0.1:9153
OPS_UP=192.0.2.2@853#dot.test
OPS_UP2=192.0.2.4@853#dot.test

ops_start_proxy() {
	local i
	start_proxy --metrics "$OPS_METRICS" "$@" || return 1
	# The metrics listener is bound after the DNS listeners.
	for ((i = 0; i < 50; i++)); do
		pod ss -lntH "sport = :${OPS_METRICS##*:}" | grep -q "$OPS_METRICS" &&
			return 0
		sleep 0.1
	done
	echo "no metrics listener on $OPS_METRICS after 5 s" >&2
	show_proxy_log >&2
	return 1
}

# start_proxy adds --upstream and --ca-file flags unless the arguments have
# them, and flags beat the --config file. For reload tests the file must be
# the only source: W_NO_DEFAULT_UPSTREAM=1 turns those defaults off.
ops_start_from_file() {
	local file=$1
	shift
	W_NO_DEFAULT_UPSTREAM=1 ops_start_proxy --config "$file" "$@"
}

# GET http://$OPS_METRICS$1 from the pod namespace. Sets http_code (000 when
# no HTTP answer came) and http_body. Extra curl arguments may follow.
http_get() {
	local path=$1 f=$W_DIR/http.body
	shift
	rm -f "$f"
	http_code=$(pod curl -sS -o "$f" -w '%{http_code}' --max-time 5 "$@" \
		"http://$OPS_METRICS$path" 2>"$W_DIR/http.err") || true
	http_body=$(cat "$f" 2>/dev/null) || http_body=
	[ -n "$http_code" ] || http_code=000
}

# Scrapes /metrics into FILE (and FILE.hdr for the headers).
scrape() {
	local code
	code=$(pod curl -sS -D "$1.hdr" -o "$1" -w '%{http_code}' --max-time 5 \
		"http://$OPS_METRICS/metrics") || {
		echo "scrape: curl failed"
		return 1
	}
	[ "$code" = 200 ] || {
		echo "scrape: HTTP $code"
		return 1
	}
}

# The value of one series, given exactly as exposed: mval FILE 'name{a="b"}'.
# Prints nothing when the series is absent.
mval() {
	awk -v s="$2" '$1 == s { print $2; exit }' "$1"
}

# mdelta BEFORE AFTER SERIES: after - before (an absent series counts as 0
# before, and must exist after).
mdelta() {
	local a b
	a=$(mval "$1" "$3")
	b=$(mval "$2" "$3")
	[ -n "$b" ] || {
		echo "series $3 missing from the scrape" >&2
		return 1
	}
	awk -v a="${a:-0}" -v b="$b" 'BEGIN { printf "%d\n", b - a }'
}

# assert_delta BEFORE AFTER SERIES WANT
assert_delta() {
	local d
	d=$(mdelta "$1" "$2" "$3") || w_fail "no series $3" || return 1
	[ "$d" = "$4" ] || w_fail "$3 moved by $d, want $4" || return 1
}

# Waits up to $1 s for the proxy's exit status (after a signal) and prints
# it; prints "running" if it did not exit.
wait_rc() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		if [ -s "$W_DIR/proxy.rc" ]; then
			cat "$W_DIR/proxy.rc"
			return 0
		fi
		sleep 0.1
	done
	echo running
}

# dotproxy healthcheck from the pod namespace; extra args after --.
healthcheck() {
	pod env DOTPROXY_METRICS="$OPS_METRICS" timeout 10 "${W_BIN:-$DOTPROXY}" \
		healthcheck "$@"
}

ms_now() {
	echo $(($(date +%s%N) / 1000000))
}

# Polls the proxy log for a fixed string for up to $2 s.
wait_log() {
	local i
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		grep -qF -- "$1" "$(proxy_log)" && return 0
		sleep 0.1
	done
	return 1
}

# A second DoT unbound on 192.0.2.4@853 (same certificate, so the proxy
# authenticates it as dot.test), answering whoami.test A 203.0.113.2.
dot2_start() {
	up ip addr add 192.0.2.4/24 dev veth1 2>/dev/null || true
	unbound_start unbound-dot2 dot 192.0.2.4 -- 203.0.113.2
}

# Ends the second unbound (kill_tracked: only if it is still ours).
dot2_stop() {
	unbound_stop unbound-dot2
}

# N slow HTTP clients on the metrics port, from the pod namespace: the even
# ones connect and stay silent, the odd ones send an unfinished request one
# byte every 200 ms. Their PIDs go to $W_DIR/slow.pids.
slow_start() {
	local n=$1 i script
	: >"$W_DIR/slow.pids"
	for ((i = 0; i < n; i++)); do
		if ((i % 2)); then
			# shellcheck disable=SC2016
			script='exec 3<>"/dev/tcp/${1%:*}/${1#*:}" || exit 1
				printf -v req "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
				for ((k = 0; k < ${#req}; k++)); do
					printf "%s" "${req:k:1}" >&3 2>/dev/null || exit 0
					sleep 0.2
				done
				while printf a >&3 2>/dev/null; do sleep 0.2; done'
		else
			# shellcheck disable=SC2016
			script='exec 3<>"/dev/tcp/${1%:*}/${1#*:}" || exit 1
				exec sleep 60'
		fi
		ip netns exec "$W_POD" bash -c "$script" slow "$OPS_METRICS" \
			</dev/null >/dev/null 2>&1 3>&- &
		echo $! >>"$W_DIR/slow.pids"
		disown $!
	done
}

slow_stop() {
	local pid
	[ -f "$W_DIR/slow.pids" ] || return 0
	while read -r pid; do
		case $(cat "/proc/$pid/comm" 2>/dev/null) in
		bash | sleep | ip) kill -KILL "$pid" 2>/dev/null || true ;;
		esac
	done <"$W_DIR/slow.pids"
	rm -f "$W_DIR/slow.pids"
}

# Established TCP connections to the metrics port, seen from the clients.
slow_conns() {
	pod ss -tnH state established "dport = :${OPS_METRICS##*:}" | wc -l
}

# The same, seen from the proxy: connections it holds open.
slow_conns_held() {
	pod ss -tnH state established "sport = :${OPS_METRICS##*:}" | wc -l
}

# Checks of the text exposition that promtool does not make: one HELP and
# one TYPE per family, TYPE before the family's samples, only the dotproxy_
# prefix, counters end in _total, histogram buckets cumulative with a +Inf
# bucket equal to _count, build_info is 1, and no label that could carry a
# query name. Prints one line per problem, nothing when clean.
expo_problems() {
	awk '
	function fam(n) {
		if (n in type) return n
		b = n; sub(/_(bucket|sum|count)$/, "", b)
		if (type[b] == "histogram") return b
		return n
	}
	/^# HELP / { if (help[$3]++) print "two HELP lines for " $3; next }
	/^# TYPE / {
		if ($3 in type) print "two TYPE lines for " $3
		type[$3] = $4
		if ($4 == "counter" && $3 !~ /_total$/) print "counter without _total: " $3
		next
	}
	/^#/ || /^$/ { next }
	{
		name = $1; sub(/\{.*/, "", name)
		# The standard process_* families keep their client-library names.
		if (name !~ /^dotproxy_/ && name !~ /^process_(cpu_seconds_total|open_fds|max_fds|resident_memory_bytes|start_time_seconds)$/)
			print "name without the dotproxy_ prefix: " name
		f = fam(name)
		if (!(f in type)) print "sample before its TYPE: " $1
		if ($1 ~ /[{,](name|qname|query|domain)="/) print "query-name label: " $1
		if (name == "dotproxy_build_info" && $2 != "1") print "build_info is " $2
		key = $1
		if (name ~ /_bucket$/) {
			le = key; sub(/.*le="/, "", le); sub(/".*/, "", le)
			sub(/,?le="[^"]*"/, "", key); sub(/_bucket\{/, "{", key)
			sub(/\{\}$/, "", key)
			if (key in last && $2 + 0 < last[key]) print "bucket not cumulative: " $1
			last[key] = $2 + 0
			if (le == "+Inf") inf[key] = $2
		} else if (name ~ /_count$/ && type[f] == "histogram") {
			sub(/_count/, "", key)
			cnt[key] = $2
		}
	}
	END {
		for (k in cnt) {
			if (!(k in inf)) print "no +Inf bucket for " k
			else if (inf[k] != cnt[k]) print "+Inf bucket " inf[k] " != _count " cnt[k] " for " k
		}
		for (k in inf) if (!(k in cnt)) print "no _count for " k
	}' "$1"
}
