#!/usr/bin/env bash
# Checks and unit-tests the alerts of examples/monitoring/rules/prometheusrule.yaml
# with promtool: the PrometheusRule's spec (the deployed object itself) is
# written out as a Prometheus rule file, `promtool check rules` lints it and
# `promtool test rules` runs examples/monitoring/rules/promtool/rules_test.yaml,
# which must show every alert firing at 0.2 queries/s and silent on a
# healthy idle and a healthy but imperfect proxy.
#
#   tests/k8s/rules.sh [--root EXAMPLES_DIR]
#
# Exit 0 when both pass; promtool's output is shown either way. Needs
# promtool (Debian: prometheus) and node with tests/k8s's packages.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../examples" && pwd)
if [ "${1:-}" = --root ]; then
	root=$(cd "$2" && pwd)
fi
command -v promtool >/dev/null 2>&1 || {
	echo "rules.sh: promtool not found (apt-get install prometheus)" >&2
	exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node "$here/extract-rules.js" "$root/monitoring/rules/prometheusrule.yaml" \
	>"$tmp/dotproxy.rules.yaml"
cp "$root/monitoring/rules/promtool/rules_test.yaml" "$tmp/"
promtool check rules "$tmp/dotproxy.rules.yaml"
node "$here/extract-rules.js" --check-tests "$root/monitoring/rules/promtool/rules_test.yaml" \
	"$root/monitoring/rules/prometheusrule.yaml"
echo "every alert has a firing (0.2 queries/s), a healthy-idle and a healthy-but-imperfect unit test"
(cd "$tmp" && promtool test rules rules_test.yaml)
