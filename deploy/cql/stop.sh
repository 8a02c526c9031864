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

qs_stop_runs cql cassandra.pid conf/cassandra.yaml "$@"
