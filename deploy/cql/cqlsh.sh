#!/usr/bin/env bash
# cqlsh against the test CQL node, for poking at it by hand.
#
#   deploy/cql/cqlsh.sh                        # interactive
#   deploy/cql/cqlsh.sh -e "DESCRIBE KEYSPACES"
#   deploy/cql/cqlsh.sh -f schema.cql
#
# Which node: the first entry of $QS_CQL_CONTACT_POINTS if set, else the one
# `deploy/test-env.sh up` started (<run root>/cql-${QS_TEST_ENV_NAME:-test-env}).
# The binary distribution's cqlsh is not on Maven Central; this uses
# ScyllaDB's packaging of the same Python cqlsh from PyPI (scylla-cqlsh,
# which speaks to Cassandra as well), installed once into a venv in the
# cache: <cache>/cqlsh-<version>. Needs python3 with the venv module.
# Not used by the test suite (deploy/cql/ping.sh is the readiness check).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=cqlsh

# Pinned (scylla-cqlsh's own dependency, the driver, too).
CQLSH_VERSION=6.0.40
DRIVER_VERSION=3.29.12
VENV="$QS_CACHE_ROOT/cqlsh-$CQLSH_VERSION"
MARKER="$VENV/.complete"
PINS="scylla-cqlsh==$CQLSH_VERSION scylla-driver==$DRIVER_VERSION"

install_cqlsh() {
  [[ -f "$MARKER" && "$(cat "$MARKER")" == "$PINS" ]] && return 0
  command -v python3 >/dev/null 2>&1 \
    || qs_die "python3 not found. Install it (Debian: apt-get install -y python3 python3-venv)."
  qs_log "installing $PINS from PyPI into $VENV (once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV" \
    || qs_die "python3 -m venv failed. Install the venv module (Debian: apt-get install -y python3-venv)."
  # shellcheck disable=SC2086  # PINS is a list
  "$VENV/bin/pip" install -q --disable-pip-version-check $PINS >&2 \
    || qs_die "pip could not install $PINS (is PyPI reachable? see errors above)"
  printf '%s\n' "$PINS" >"$MARKER"
}
qs_with_lock "$VENV.lock" install_cqlsh

contact="${QS_CQL_CONTACT_POINTS:-}"
if [[ -z "$contact" ]]; then
  env_file="$QS_RUN_ROOT/cql-${QS_TEST_ENV_NAME:-test-env}/env"
  [[ -f "$env_file" ]] \
    || qs_die "no CQL node: QS_CQL_CONTACT_POINTS is unset and $env_file does not exist (start one: deploy/test-env.sh up)"
  contact="$(sed -n 's/^QS_CQL_CONTACT_POINTS=//p' "$env_file")"
fi
contact="${contact%%,*}"
[[ "$contact" =~ ^(.+):([0-9]+)$ ]] || qs_die "cannot parse contact point '$contact' (want HOST:PORT)"
exec "$VENV/bin/cqlsh" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$@"
