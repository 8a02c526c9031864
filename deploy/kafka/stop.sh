#!/usr/bin/env bash
# Stop brokers started by deploy/kafka/start.sh.
#
#   deploy/kafka/stop.sh [RUN_DIR|NAME ...]
#
# With no argument: every ${QS_RUN_DIR:-/tmp/quickstore-run}/kafka-* run dir.
# SIGTERM (controlled shutdown), then SIGKILL after $QS_STOP_TIMEOUT seconds
# (default 30). Removes the run dir afterwards unless KEEP=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=kafka-stop

qs_stop_runs kafka kafka.pid config/server.properties "$@"
