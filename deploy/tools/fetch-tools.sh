#!/usr/bin/env bash
# Fetches (once, cached) the tools that validate the deployment files, and
# prints `export` lines for them:
#   QS_HELM            helm (built with `go install` from the Go module proxy)
#   QS_COMPOSE_CHECK   deploy/tools/compose-check (compose-go, the loader
#                      Docker Compose itself uses; no Docker engine needed)
#   QS_K8S_VALIDATE    kubernetes-validate (PyPI; carries the Kubernetes
#                      JSON schemas, so validation needs no network)
#
#   eval "$(deploy/tools/fetch-tools.sh)"
#
# Cache: $QS_CACHE_ROOT/tools (see deploy/lib/common.sh). Needs go >= 1.22
# and python3 with venv; a missing one is named with what to install.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=tools

HELM_VERSION=v3.16.4
K8S_VALIDATE_VERSION=1.31.0
TOOLS="$QS_CACHE_ROOT/tools"
mkdir -p "$TOOLS"

command -v go >/dev/null 2>&1 \
  || qs_die "go not found: install Go >= 1.22 (https://go.dev/dl/, or Debian: apt-get install -y golang)"
command -v python3 >/dev/null 2>&1 \
  || qs_die "python3 not found: install Python 3 (Debian: apt-get install -y python3 python3-venv)"

# Go's module and build caches in our cache dir: a CI machine that keeps it
# fetches nothing again.
export GOMODCACHE="$TOOLS/go-mod" GOCACHE="$TOOLS/go-build" GOFLAGS=-mod=mod

helm="$TOOLS/helm-$HELM_VERSION/helm"
if [[ ! -x $helm ]]; then
  qs_log "building helm $HELM_VERSION from the Go module proxy (once; a few minutes)"
  GOBIN="$TOOLS/helm-$HELM_VERSION" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 \
    || qs_die "go install helm failed (is proxy.golang.org reachable? GOPROXY=$(go env GOPROXY))"
fi

# Rebuilt when its source changes (keyed by the sources' hash).
src_hash=$(cat "$HERE/compose-check/go.mod" "$HERE/compose-check/go.sum" "$HERE/compose-check/main.go" | sha256sum | cut -c1-16)
compose_check="$TOOLS/compose-check-$src_hash/compose-check"
if [[ ! -x $compose_check ]]; then
  qs_log "building compose-check (compose-go) (once)"
  (cd "$HERE/compose-check" && go build -o "$compose_check" .) >&2 \
    || qs_die "building deploy/tools/compose-check failed"
fi

venv="$TOOLS/venv-k8s-validate-$K8S_VALIDATE_VERSION"
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  qs_log "installing kubernetes-validate $K8S_VALIDATE_VERSION from PyPI (once)"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 \
    || qs_die "python3 -m venv failed: install the venv module (Debian: apt-get install -y python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$K8S_VALIDATE_VERSION" >&2 \
    || qs_die "pip install kubernetes-validate failed (is pypi.org reachable?)"
fi

echo "export QS_HELM=$helm"
echo "export QS_COMPOSE_CHECK=$compose_check"
echo "export QS_K8S_VALIDATE=$venv/bin/kubernetes-validate"
