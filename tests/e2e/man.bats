#!/usr/bin/env bats
# The man pages, --help and the configuration reference cannot drift: the
# man pages' OPTIONS are made from the binaries' --help (scripts/man.sh),
# and here every option --help lists must be in the man page and in the
# reference tables (docs/configuration.md once it exists, the README until
# then) with the same default, and nothing else. make install puts the
# binaries and the pages under PREFIX in DESTDIR.

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || return 1
	export ROOT=$PWD B=${BUILD:-build}
	make -s "$B/dotproxy" "$B/dotproxy-init" "$B/dotproxy-cni" man >/dev/null
}

setup() {
	cd "$ROOT" || return 1
	REF=README.md
	[ ! -f docs/configuration.md ] || REF=docs/configuration.md
}

# help_opts BIN [ARGS]: the options the help lists.
help_opts() { bash scripts/man.sh --options "$B/$1" "${@:2}"; }

# man_opts PAGE: the options in the page's OPTIONS section (.TP tags).
man_opts() {
	awk '/^\.TP$/ { getline; print }' "$1" | sed 's/\\-/-/g; s/\\f[BRI]//g' |
		grep -oE '(^|[ ,])--[a-z0-9-]+' | sed 's/^[ ,]*//' | sort -u
}

# ref_opts: the options in the first column of the reference's tables.
ref_opts() {
	grep -E '^\| `--' "$REF" | cut -d'|' -f2 | grep -oE -- '--[a-z0-9-]+' | sort -u
}

@test "man pages: each lists exactly the options its --help lists" {
	local b args
	for b in dotproxy dotproxy-init dotproxy-cni; do
		args=(--help)
		[ "$b" != dotproxy-cni ] || args=(install --help)
		[ -n "$(help_opts "$b" "${args[@]}")" ]
		diff -u <(help_opts "$b" "${args[@]}") <(man_opts "$B/man/$b.8")
	done
}

@test "man pages: each option's text is its --help text" {
	# The whole OPTIONS section is regenerated and compared, so a default,
	# a range or an environment name cannot differ either.
	local b args out
	for b in dotproxy dotproxy-init dotproxy-cni; do
		args=(--help)
		[ "$b" != dotproxy-cni ] || args=(install --help)
		out=$BATS_TEST_TMPDIR/$b.8
		bash scripts/man.sh "man/$b.8.in" "$out" "$B/$b" "${args[@]}"
		cmp "$out" "$B/man/$b.8"
		# One help line, a default, is in the page word for word.
		"$B/$b" "${args[@]}" | grep -m1 -E '^ +.*default' |
			sed -E 's/^ *//; s/^-.*  +//; s/-/\\-/g' >"$out.line"
		[ -s "$out.line" ]
		grep -qF -f "$out.line" "$B/man/$b.8"
	done
	grep -qxF 'Range 100..60000 ms. Default: 3000 ms.' "$B/man/dotproxy.8"
}

@test "man pages: the CNI plugin keys of --help are in dotproxy-cni(8)" {
	local keys k
	keys=$("$B/dotproxy-cni" --help | sed -n '/Keys:/,/^$/p' | sed 's/.*Keys://' |
		grep -oE '[a-zA-Z]+[A-Z][a-zA-Z]*|ipv6|namespaces' | sort -u)
	[ -n "$keys" ]
	for k in $keys; do
		grep -q "^\.BR* $k" "$B/man/dotproxy-cni.8" || { echo "key $k missing"; return 1; }
	done
}

@test "man pages: man(1) renders them without a warning" {
	local b out
	command -v man >/dev/null || skip "man-db not installed"
	for b in dotproxy dotproxy-init dotproxy-cni; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$B/man/$b.8" 2>&1 >/dev/null)
		[ -z "$out" ] || { echo "$b: $out"; return 1; }
		LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$B/man/$b.8" 2>/dev/null | grep -q '^OPTIONS'
	done
}

@test "configuration reference: the options of dotproxy and dotproxy-init, no more, no fewer" {
	diff -u <(sort -u <(help_opts dotproxy --help) <(help_opts dotproxy-init --help)) <(ref_opts)
}

@test "configuration reference: every default of dotproxy is the one --help prints" {
	local opt want got n=0
	while read -r opt want; do
		got=$(grep -E "^\| \`${opt}[ \`]" "$REF" | head -1 | cut -d'|' -f3 | grep -oE '[0-9]+' | head -1)
		[ "$want" = "${got:-none}" ] || { echo "$opt: --help says $want, $REF says ${got:-none}"; return 1; }
		n=$((n + 1))
	done < <("$B/dotproxy" --help | awk '
		/^  --/ { opt = $1 }
		/Default: / && opt != "" {
			d = substr($0, index($0, "Default: "))
			if (match(d, /[0-9]+/)) print opt, substr(d, RSTART, RLENGTH)
			opt = ""
		}')
	[ "$n" -ge 15 ]
}

@test "configuration reference: the installer's options of dotproxy-cni are named" {
	local o
	for o in $(help_opts dotproxy-cni install --help); do
		grep -qF -- "\`$o" "$REF" || { echo "$o missing from $REF"; return 1; }
	done
}

@test "make install: binaries and man pages under PREFIX in DESTDIR" {
	local d=$BATS_TEST_TMPDIR/stage
	make -s install DESTDIR="$d" PREFIX=/usr >/dev/null
	for b in dotproxy dotproxy-init dotproxy-cni; do
		[ -x "$d/usr/bin/$b" ]
		[ "$(stat -c %a "$d/usr/share/man/man8/$b.8")" = 644 ]
		cmp "$d/usr/share/man/man8/$b.8" "$B/man/$b.8"
	done
	"$d/usr/bin/dotproxy" --version | grep -q "^dotproxy $(cat VERSION)"
	make -s install DESTDIR="$d/default" >/dev/null
	[ -x "$d/default/usr/local/bin/dotproxy" ]
	[ -f "$d/default/usr/local/share/man/man8/dotproxy-init.8" ]
}
