#!/usr/bin/env bash
# Offline validation of every kustomization under examples/: each one
# rendered by the real kustomize (`kubectl kustomize`), every document and
# every rendered object against the Kubernetes schema (kubernetes-models,
# plus the prometheus-operator CRDs), unknown keys rejected, and the
# security settings, start order, fence and monitoring of each dotproxy mode
# asserted.
#
#   tests/k8s/validate.sh                 all checks; exit 1 on any failure
#   tests/k8s/validate.sh --only sidecar  one group (see validate.js)
#   tests/k8s/validate.sh --root DIR      check a copy of examples/ instead
#   tests/k8s/validate.sh --render kubernetes/sidecar   print a rendering
#
# Needs node and npm, and kubectl for everything past the per-file checks
# (without it those are skipped, said so, and the exit status is 3).
# Installs the pinned packages (package-lock.json) into tests/k8s/node_modules
# with `npm ci` the first time; that is the only network use (the npm
# registry).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

for t in node npm; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "validate.sh: $t not found (apt-get install nodejs npm)" >&2
		exit 2
	fi
done

# Reinstall when node_modules is missing or older than the lock file.
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
	echo "validate.sh: npm ci in $here" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

exec node "$here/validate.js" "$@"
