# shellcheck shell=bash
# Helpers for upgrade.bats: several dotproxy processes side by side in the
# world's pod namespace (helpers/world.bash), each with its own files
# $W_DIR/<name>.{log,pid,rc}, tracked for world_teardown.
#
#   upg_start NAME [ARGS...]  starts one as the proxy UID; waits for "ready"
#   upg_stop NAME [SIGNAL]    signals it (TERM) and prints its exit status
#   upg_alive NAME            true while it runs
#   upg_metric PORT SERIES    a sample's value from its /metrics (pod ns)
#   upg_dir                   a directory the proxy UID may write (sockets)

upg_dir() {
	local d=$W_DIR/run
	if [ ! -d "$d" ]; then
		mkdir -p "$d"
		chown "$W_PROXY_UID:$W_PROXY_UID" "$d"
	fi
	echo "$d"
}

upg_start() {
	local name=$1 log args=() i pid
	shift
	log=$W_DIR/$name.log
	w_has_flag --upstream "$@" || w_has_flag --config "$@" ||
		args+=(--upstream "192.0.2.2@853#dot.test")
	w_has_flag --ca-file "$@" || args+=(--ca-file "$W_CA")
	args+=(--log-level info --timeout 1500 "$@")
	echo "# dotproxy ${args[*]}" >"$log"
	chmod 0644 "$log"
	rm -f "$W_DIR/$name.pid" "$W_DIR/$name.rc"
	(
		ip netns exec "$W_POD" env DOTPROXY_SHUTDOWN_GRACE="${UPG_GRACE:-0}" \
			DOTPROXY_CACHE_SIZE=0 ${UPG_TASKSET:+taskset -c "$UPG_TASKSET"} \
			setpriv --reuid "$W_PROXY_UID" --regid "$W_PROXY_UID" --clear-groups \
			"$W_BIN" "${args[@]}" </dev/null >>"$log" 2>&1 &
		pid=$!
		echo "$pid" >"$W_DIR/$name.pid"
		# Not "wait; echo $?": under bats errexit a non-zero status would
		# end this watcher before it records the status.
		rc=0
		wait "$pid" || rc=$?
		echo "$rc" >"$W_DIR/$name.rc.tmp"
		mv "$W_DIR/$name.rc.tmp" "$W_DIR/$name.rc"
	) 3>&- >/dev/null 2>&1 &
	for ((i = 0; i < 50; i++)); do
		[ -s "$W_DIR/$name.pid" ] && break
		sleep 0.1
	done
	pid=$(cat "$W_DIR/$name.pid" 2>/dev/null)
	[ -n "$pid" ] || { echo "$name did not start" >&2; return 1; }
	w_track "$pid"
	for ((i = 0; i < 100; i++)); do
		grep -q 'msg="ready"' "$log" && return 0
		if [ -s "$W_DIR/$name.rc" ]; then
			echo "$name exited with $(cat "$W_DIR/$name.rc") at start" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$name not ready after 10 s" >&2
	tail -n 20 "$log" >&2
	return 1
}

upg_alive() {
	[ ! -s "$W_DIR/$1.rc" ] && kill -0 "$(cat "$W_DIR/$1.pid")" 2>/dev/null
}

upg_stop() {
	local name=$1 sig=${2:-TERM} i
	kill -"$sig" "$(cat "$W_DIR/$name.pid")" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		[ -s "$W_DIR/$name.rc" ] && break
		sleep 0.1
	done
	if [ ! -s "$W_DIR/$name.rc" ]; then
		kill -KILL "$(cat "$W_DIR/$name.pid")" 2>/dev/null
		echo 124
		return
	fi
	cat "$W_DIR/$name.rc"
}

# upg_metric PORT 'dotproxy_x{a="b"}': the value, or nothing.
upg_metric() {
	pod curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v s="$2" '$1 == s { print $2 }'
}

# Sum of every sample of a series (all label sets).
upg_metric_sum() {
	pod curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v s="$2" 'index($1, s "{") == 1 || $1 == s { t += $2 } END { print t + 0 }'
}

# dnsperf's figures from a file: upg_perf FILE sent|lost|noerror
upg_perf() {
	case $2 in
	sent) sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$1" ;;
	lost) sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$1" ;;
	completed) sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$1" ;;
	noerror) sed -n 's/^ *Response codes:.*NOERROR \([0-9]*\) .*/\1/p' "$1" ;;
	esac
}
