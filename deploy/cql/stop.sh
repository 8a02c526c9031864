#!/usr/bin/env bash
# Stop CQL nodes started by deploy/cql/start.sh.
#
#   deploy/cql/stop.sh [RUN_DIR|NAME ...]
#
# With no argument: every ${QS_RUN_DIR:-/tmp/quickstore-run}/cql-* run dir.
# SIGTERM (Cassandra's shutdown hook drains: stops the CQL listener,
# flushes memtables), then SIGKILL after $QS_STOP_TIMEOUT seconds (default
# 30). Removes the run dir afterwards unless KEEP=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=cql-stop

TIMEOUT="${QS_STOP_TIMEOUT:-30}"

stop_one() {
  local run="$1" pid=""
  [[ -f "$run/cassandra.pid" ]] && pid="$(cat "$run/cassandra.pid")"
  # The pattern includes the run dir, so we never kill another test's node
  # (or an unrelated process that reused the pid).
  qs_stop_pid "$pid" "$run/conf/cassandra.yaml" "$TIMEOUT" "cql $(basename "$run")"
  if [[ "${KEEP:-0}" == 1 ]]; then
    qs_log "KEEP=1: leaving $run"
  else
    rm -rf "$run"
  fi
}

runs=()
if (( $# )); then
  for arg in "$@"; do
    if [[ -d "$arg" ]]; then runs+=("$(cd "$arg" && pwd)")
    elif [[ -d "$QS_RUN_ROOT/cql-$arg" ]]; then runs+=("$QS_RUN_ROOT/cql-$arg")
    else qs_die "no such run dir or name: $arg"
    fi
  done
else
  shopt -s nullglob
  runs=("$QS_RUN_ROOT"/cql-*)
fi
(( ${#runs[@]} )) || { qs_log "nothing to stop under $QS_RUN_ROOT"; exit 0; }
for run in "${runs[@]}"; do
  if [[ -d "$run" ]]; then stop_one "$run"; fi
done
