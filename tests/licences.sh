#!/usr/bin/env bash
# The licence papers against the built binaries: for each binary, which
# libraries it holds (a defined symbol of theirs: linked in statically) or
# loads (a NEEDED entry: shared), mapped to their SPDX licences (Debian 12's
# /usr/share/doc/<package>/copyright), plus MIT for our code and glibc's
# LGPL-2.1-or-later; the Dockerfile's per-binary label and the README's
# licence table must give exactly that set, and the image label the union
# plus the CA bundle's MPL-2.0. Prints what it found; exits 1 on any
# difference. BUILD names the build directory (default build).
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
bad=0

# library: NEEDED soname prefix, a symbol only it defines, SPDX id. For
# libmnl a symbol that init/cni_mnl.c (our own subset of its API, MIT) does
# not define, so that only the real library counts as linked in.
LIBS=(
	"libssl libssl.so SSL_CTX_new Apache-2.0"
	"libcrypto libcrypto.so EVP_DigestInit_ex Apache-2.0"
	"libmnl libmnl.so mnl_nlmsg_fprintf LGPL-2.1-or-later"
	"libseccomp libseccomp.so seccomp_init LGPL-2.1-only"
	"libnftnl libnftnl.so nftnl_rule_alloc GPL-2.0-or-later"
	"jansson libjansson.so json_loads MIT"
)

# The AND-terms of an SPDX expression, sorted and unique, one a line.
terms() {
	tr -s ' ' '\n' <<<"$1" | grep -vx 'AND' | grep . | sort -u
}

# The Dockerfile's value of LABEL key $1.
label() {
	sed -n "s/^.*[[:space:]]$1=\"\\([^\"]*\\)\".*$/\\1/p" Dockerfile | head -n 1
}

all=""
for bin in dotproxy dotproxy-init dotproxy-cni; do
	f=$BUILD/$bin
	if [ ! -x "$f" ]; then
		echo "no $f (make all)"
		exit 1
	fi
	needed=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
	defined=$(nm --defined-only "$f" 2>/dev/null | awk '{ print $NF }')
	want="MIT LGPL-2.1-or-later"	# our code; glibc
	have=""
	for l in "${LIBS[@]}"; do
		read -r name so sym spdx <<<"$l"
		if grep -q "^$so" <<<"$needed"; then
			have+=" $name(shared)"
		elif grep -qx "$sym" <<<"$defined"; then
			have+=" $name(static)"
		else
			continue
		fi
		want+=" $spdx"
	done
	echo "$bin:$have"
	got=$(label "io.github.dotproxy.licenses.$bin")
	if [ "$(terms "$want")" != "$(terms "$got")" ]; then
		echo "  Dockerfile label io.github.dotproxy.licenses.$bin=\"$got\"," \
			"but it links: $(terms "$want" | paste -sd ' ')"
		bad=1
	fi
	# shellcheck disable=SC2016 # the backquotes are README's
	row=$(grep -F "| \`$bin\` |" README.md | sed -n 's/.*| `\([^`]*AND[^`]*\)`.*/\1/p' | head -n 1)
	if [ "$(terms "$want")" != "$(terms "$row")" ]; then
		echo "  README licence table says \"$row\" for $bin"
		bad=1
	fi
	all+=" $want"
done
grep -q 'ca-certificates.crt' Dockerfile && all+=" MPL-2.0"
img=$(label org.opencontainers.image.licenses)
echo "image: $(terms "$all" | paste -sd ' ')"
if [ "$(terms "$all")" != "$(terms "$img")" ]; then
	echo "  Dockerfile org.opencontainers.image.licenses=\"$img\""
	bad=1
fi
if ! tr -s ' \n' ' ' <README.md | grep -qF "licenses=\"$img\""; then
	echo "  README does not give the image label \"$img\""
	bad=1
fi
exit "$bad"
