# shellcheck shell=bash
# lib.sh - sourced by the benchmark scripts: the processes they start, free
# ports on loopback and a throw-away certificate. The caller defines die().

declare -A STARTED=()	# pid -> label: only these are ever signalled

# start_bg LABEL LOGFILE CMD... -> LAST_PID
start_bg() {
	local label=$1 logf=$2
	shift 2
	"$@" >"$logf" 2>&1 </dev/null &
	LAST_PID=$!
	STARTED[$LAST_PID]=$label
}

# stop_pid PID [TENTHS]: SIGTERM, then SIGKILL after TENTHS tenths of a
# second (default 50); only a PID this script started.
stop_pid() {
	local pid=$1 tenths=${2:-50} i
	[ -n "${STARTED[$pid]:-}" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 1; i <= tenths; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			[ "$i" = "$tenths" ] && kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		done
	fi
	wait "$pid" 2>/dev/null
	unset "STARTED[$pid]"
}

# stop_all: every process still running that this script started.
stop_all() {
	local pid
	for pid in "${!STARTED[@]}"; do stop_pid "$pid"; done
}

declare -A TAKEN=()
port_busy() {
	ss -Hlntu 2>/dev/null | awk '{print $5}' | grep -qE "[:.]$1\$"
}
# free_port START -> the first free port at or above START, never the same
# one twice
free_port() {
	local p
	for ((p = $1; p < $1 + 200; p++)); do
		[ -n "${TAKEN[$p]:-}" ] && continue
		port_busy "$p" && continue
		TAKEN[$p]=1
		echo "$p"
		return 0
	done
	return 1
}

# make_certs DIR SNI LOG: DIR/ca.pem, a throw-away CA, and DIR/server.pem
# and DIR/server.key for SNI and 127.0.0.1, signed by it; openssl's output
# goes to LOG.
make_certs() {
	local d=$1 sni=$2 log=$3
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 \
	    -subj "/CN=dotproxy bench throw-away CA" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" >"$log" 2>&1 ||
		die "openssl: CA failed"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=$sni" \
	    >>"$log" 2>&1 || die "openssl: CSR failed"
	cat >"$d/server.ext" <<EOF
subjectAltName=DNS:$sni,IP:127.0.0.1
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
EOF
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
	    -CAcreateserial -out "$d/server.pem" -days 30 -extfile "$d/server.ext" \
	    >>"$log" 2>&1 || die "openssl: signing failed"
}
