#!/usr/bin/env bash
# Builds a man page from a hand-written template and a program's own --help.
#
#   scripts/man.sh TEMPLATE OUT CMD...
#   scripts/man.sh --options CMD...     (the option names --help lists, one a line)
#
# CMD is the help command, e.g. "build/dotproxy --help" or, for the CNI
# installer, "build/dotproxy-cni install --help". The template (man/*.8.in)
# holds the parts a person writes (NAME, SYNOPSIS, DESCRIPTION, EXIT
# STATUS, ENVIRONMENT, FILES, EXAMPLES); its line ".\" @OPTIONS@" becomes
# the OPTIONS section, made from the help text, which the program prints
# from its option table. So the man page cannot list an option, a default
# or a range that --help does not: both come from one table, and
# tests/release/man.bats checks the configuration reference against it.
#
# Help layouts understood (both in use):
#   "Heading:"                 a group of options (becomes .SS)
#   "  --name ARG"             an option; its text follows indented deeper
#   "  --name ARG   text"      an option with its text on the same line
# Anything else in the help (usage, prose) is left to the template.
# @VERSION@ and @DATE@ in the template become $VERSION and the date of
# SOURCE_DATE_EPOCH (default: the last commit), so the page is reproducible.
set -euo pipefail

# Reads help text on stdin and writes the OPTIONS section's body (roff).
# awk does the layout work: which lines are headings, tags and text.
options_roff() {
	awk '
	function flush() { if (tag != "") { print ".TP"; print tag; if (text != "") print text } tag = ""; text = "" }
	function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); if (s ~ /^[.\x27]/) s = "\\&" s; return s }
	function add(s) { sub(/^ +/, "", s); text = (text == "" ? esc(s) : text "\n" esc(s)) }
	# A heading is remembered and printed only if options follow it.
	/^[A-Z][A-Za-z ,()-]*:$/ { flush(); heading = substr($0, 1, length($0) - 1); next }
	/^  -/ {
		flush()
		if (heading != "") { print ".SS " esc(heading); heading = "" }
		line = substr($0, 3)
		# "tag   text" on one line: two or more spaces separate them.
		if (match(line, /  +[^ ]/)) {
			t = substr(line, 1, RSTART - 1); rest = substr(line, RSTART)
		} else {
			t = line; rest = ""
		}
		tag = "\\fB" esc(t) "\\fR"
		if (rest != "") add(rest)
		next
	}
	/^   +[^ ]/ { if (tag != "") { add($0); next } }
	{ flush(); heading = "" }
	END { flush() }
	'
}

if [ "${1:-}" = --options ]; then
	shift
	"$@" | awk '/^  -/ { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z0-9-]+,?$/) { sub(/,$/, "", $i); print $i } }' |
		sort -u
	exit 0
fi

[ $# -ge 3 ] || { echo "usage: man.sh TEMPLATE OUT CMD..." >&2; exit 2; }
template=$1 out=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSION:-$(cat "$root/VERSION")}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
date=$(LC_ALL=C date -u -d "@$epoch" +%Y-%m-%d)

help=$("$@")
[ -n "$help" ] || { echo "man.sh: '$*' printed no help" >&2; exit 1; }
body=$(printf '%s\n' "$help" | options_roff)
[ -n "$body" ] || { echo "man.sh: no options found in the help of '$*'" >&2; exit 1; }

tmp=$out.tmp
mkdir -p "$(dirname "$out")"
while IFS= read -r line; do
	if [ "$line" = '.\" @OPTIONS@' ]; then
		printf '.SH OPTIONS\n%s\n' "$body"
	else
		line=${line//@VERSION@/$version}
		printf '%s\n' "${line//@DATE@/$date}"
	fi
done <"$template" >"$tmp"
mv "$tmp" "$out"
