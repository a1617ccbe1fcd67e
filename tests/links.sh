#!/usr/bin/env bash
# Every relative link in the project's Markdown lands: the file (or
# directory) exists, and a #fragment is the anchor GitHub makes of one of
# the target page's headings (lower case, punctuation but '-' and '_'
# dropped, spaces to '-'; headings inside code fences do not count). The
# docs were split from one README into docs/*.md, so a section that moves
# must take its links along. Exits 1 naming each broken link.
set -u
cd "$(dirname "$0")/.." || exit 2

# anchors FILE: the anchors of FILE's headings, one a line.
anchors() {
	awk '/^```/ { f = !f; next } !f && /^#+ / { sub(/^#+ /, ""); print }' "$1" |
		tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

bad=0
mapfile -t pages < <(git ls-files '*.md' 2>/dev/null)
[ "${#pages[@]}" -gt 0 ] || pages=(README.md docs/*.md examples/*/README.md)
for page in "${pages[@]}"; do
	dir=$(dirname "$page")
	# Links outside code fences and code spans: ](target) with no scheme.
	# shellcheck disable=SC2016 # the backquotes are Markdown's
	while read -r link; do
		case $link in
		*://* | mailto:*) continue ;;
		esac
		path=${link%%#*} frag=
		[ "$path" = "$link" ] || frag=${link#*#}
		if [ -z "$path" ]; then
			target=$page
		else
			target=$dir/$path
		fi
		if [ ! -e "$target" ]; then
			echo "  $page: ($link): no $target"
			bad=1
		elif [ -n "$frag" ] && ! anchors "$target" | grep -qxF -- "$frag"; then
			echo "  $page: ($link): no heading #$frag in $target"
			bad=1
		fi
	done < <(awk '/^```/ { f = !f; next } !f' "$page" | sed -E 's/`[^`]*`//g' |
		grep -oE '\]\([^)[:space:]]+\)' | sed -E 's/^\]\(//; s/\)$//')
done
[ "$bad" -eq 0 ] && echo "every relative link in ${#pages[@]} Markdown files lands"
exit "$bad"
