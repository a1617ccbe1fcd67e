#!/bin/bash
# Entrypoint of the compose demo's local DoT upstream. At every start it makes a
# throw-away CA and a server certificate for DOT_AUTH_NAME, publishes only the
# CA (DOT_CA_DIR/ca.pem, a volume the proxy mounts read-only), then runs unbound
# in the foreground with its query log on stderr (docker logs).
# "dot-upstream healthcheck" succeeds once the CA is published and port 853 is open.
set -euo pipefail

auth=${DOT_AUTH_NAME:-upstream.dotproxy.test}
share=${DOT_CA_DIR:-/shared}
pki=/run/dot-upstream

# Healthy: the CA is published and unbound listens on TCP port 853 (0x0355).
# Read from /proc rather than connecting, which would log a failed handshake.
if [ "${1:-}" = healthcheck ]; then
	[ -s "$share/ca.pem" ] &&
		awk '$2 ~ /:0355$/ && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
	exit
fi

mkdir -p "$pki" "$share"
rm -f "$share/ca.pem"
cd "$pki"
{
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
	openssl req -x509 -new -key ca.key -subj "/CN=dotproxy compose demo CA" \
		-days 7 -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
	openssl req -new -key server.key -subj "/CN=$auth" -out server.csr
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=DNS:$auth" >server.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-days 7 -extfile server.ext -out server.pem
} >openssl.log 2>&1 || { cat openssl.log >&2; exit 1; }
rm -f ca.key server.csr
cp ca.pem "$share/ca.pem.tmp"
chmod 0644 "$share/ca.pem.tmp"
mv "$share/ca.pem.tmp" "$share/ca.pem"
echo "dot-upstream: CA published at $share/ca.pem, certificate for $auth" >&2
exec unbound -d -c /etc/unbound/dot-upstream.conf
