#!/usr/bin/env bash
# Bring the real servers the integration tests need up or down.
#
#   deploy/test-env.sh up     # fetch (cached) + start; prints `export ...` lines
#   deploy/test-env.sh down   # stop what `up` started, remove its run dirs
#   deploy/test-env.sh status # show what is running
#
# `up` writes ${QS_RUN_DIR:-/tmp/quickstore-run}/test-env, e.g.
#   export QS_KAFKA_BOOTSTRAP=127.0.0.1:23456
# so a test run does:  deploy/test-env.sh up && . /tmp/quickstore-run/test-env
# (or:  eval "$(deploy/test-env.sh up)"). `up` is idempotent: if its broker is
# still running it just re-prints the env.
#
# Schema registry: none is started. No Confluent-compatible registry could be
# installed from the reachable package registries (see deploy/README.md). If
# QS_SCHEMA_REGISTRY_URL is already set in the environment (a registry you run
# yourself), `up` copies it into the env file unchanged.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$HERE/lib/common.sh"
export QS_LOG_TAG=test-env

ENV_FILE="$QS_RUN_ROOT/test-env"
# A fixed instance name, so `down` stops exactly what `up` started and never
# a broker some other test started with deploy/kafka/start.sh.
KAFKA_NAME="${QS_TEST_ENV_NAME:-test-env}"
KAFKA_RUN="$QS_RUN_ROOT/kafka-$KAFKA_NAME"

kafka_running() {
  [[ -f "$KAFKA_RUN/kafka.pid" && -f "$KAFKA_RUN/env" ]] \
    && qs_pid_alive "$(cat "$KAFKA_RUN/kafka.pid")"
}

up() {
  mkdir -p "$QS_RUN_ROOT"
  local bootstrap
  if kafka_running; then
    qs_log "kafka already running in $KAFKA_RUN"
    bootstrap="$(sed -n 's/^QS_KAFKA_BOOTSTRAP=//p' "$KAFKA_RUN/env")"
  else
    "$HERE/kafka/fetch.sh" >/dev/null
    bootstrap="$("$HERE/kafka/start.sh" "$KAFKA_NAME" | tail -n 1)"
    bootstrap="${bootstrap#QS_KAFKA_BOOTSTRAP=}"
  fi
  [[ "$bootstrap" =~ ^127\.0\.0\.1:[0-9]+$ ]] || qs_die "unexpected bootstrap '$bootstrap'"
  {
    printf 'export QS_KAFKA_BOOTSTRAP=%s\n' "$bootstrap"
    if [[ -n "${QS_SCHEMA_REGISTRY_URL:-}" ]]; then
      printf 'export QS_SCHEMA_REGISTRY_URL=%q\n' "$QS_SCHEMA_REGISTRY_URL"
    fi
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  qs_log "env written to $ENV_FILE"
  cat "$ENV_FILE"
}

down() {
  if [[ -d "$KAFKA_RUN" ]]; then
    "$HERE/kafka/stop.sh" "$KAFKA_RUN"
  else
    qs_log "kafka: nothing running in $KAFKA_RUN"
  fi
  rm -f "$ENV_FILE"
}

status() {
  if kafka_running; then
    qs_log "kafka: running, pid $(cat "$KAFKA_RUN/kafka.pid"), $(head -n 1 "$KAFKA_RUN/env")"
  else
    qs_log "kafka: not running"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) qs_die "usage: $0 up|down|status" ;;
esac
