#!/usr/bin/env bash
# Bring the real servers the integration tests need up or down: an Apache
# Kafka broker (the event log) and a CQL node (Apache Cassandra 5.0, the read
# side's store; see deploy/README.md for why not ScyllaDB).
#
#   deploy/test-env.sh up     # fetch (cached) + start; prints `export ...` lines
#   deploy/test-env.sh down   # stop what `up` started, remove its run dirs
#   deploy/test-env.sh status # show what is running
#
# `up` writes ${QS_RUN_DIR:-/tmp/quickstore-run}/test-env, e.g.
#   export QS_KAFKA_BOOTSTRAP=127.0.0.1:23456
#   export QS_CQL_CONTACT_POINTS=127.0.0.1:24567
# so a test run does:  deploy/test-env.sh up && . /tmp/quickstore-run/test-env
# (or:  eval "$(deploy/test-env.sh up)"). `up` is idempotent: a server of its
# that is still running is reused, and only a missing one is started. The two
# servers start in parallel (~5-15 s each on 2 cores once fetched).
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
# a server some other test started with deploy/kafka/start.sh or
# deploy/cql/start.sh.
ENV_NAME="${QS_TEST_ENV_NAME:-test-env}"
KAFKA_RUN="$QS_RUN_ROOT/kafka-$ENV_NAME"
CQL_RUN="$QS_RUN_ROOT/cql-$ENV_NAME"

kafka_running() {
  [[ -f "$KAFKA_RUN/kafka.pid" && -f "$KAFKA_RUN/env" ]] \
    && qs_pid_alive "$(cat "$KAFKA_RUN/kafka.pid")"
}

cql_running() {
  [[ -f "$CQL_RUN/cassandra.pid" && -f "$CQL_RUN/env" ]] \
    && qs_pid_alive "$(cat "$CQL_RUN/cassandra.pid")"
}

# env_value FILE KEY -> the value of KEY=... in a run dir's env file.
env_value() { sed -n "s/^$2=//p" "$1"; }

up() {
  mkdir -p "$QS_RUN_ROOT"
  local bootstrap="" contact="" kafka_pid="" cql_pid="" failed=""
  local out reuse_kafka=0 reuse_cql=0
  if kafka_running; then
    qs_log "kafka already running in $KAFKA_RUN"
    bootstrap="$(env_value "$KAFKA_RUN/env" QS_KAFKA_BOOTSTRAP)"
    reuse_kafka=1
  fi
  if cql_running; then
    contact="$(env_value "$CQL_RUN/env" QS_CQL_CONTACT_POINTS)"
    # Alive is not enough for reuse: it must still answer CQL.
    "$HERE/cql/ping.sh" "$contact" >/dev/null \
      || qs_die "the CQL node in $CQL_RUN is running but does not answer CQL at $contact (logs: $CQL_RUN/logs/system.log); run '$0 down', then '$0 up'"
    qs_log "cql node already running in $CQL_RUN"
    reuse_cql=1
  fi
  # Fetch first, one after the other (no-ops once cached): the two fetches
  # share one local Maven repository, and Maven 3.8 does not lock it.
  (( reuse_kafka )) || "$HERE/kafka/fetch.sh" >/dev/null
  (( reuse_cql )) || "$HERE/cql/fetch.sh" >/dev/null

  out="$(mktemp -d "$QS_RUN_ROOT/.test-env-up.XXXXXX")"
  # shellcheck disable=SC2064  # expand $out now
  trap "rm -rf '$out'" EXIT
  if (( ! reuse_kafka )); then
    "$HERE/kafka/start.sh" "$ENV_NAME" >"$out/kafka" &
    kafka_pid=$!
  fi
  if (( ! reuse_cql )); then
    "$HERE/cql/start.sh" "$ENV_NAME" >"$out/cql" &
    cql_pid=$!
  fi

  # Wait for both before judging either, so a failure never leaves a start
  # script running unattended.
  if [[ -n "$kafka_pid" ]]; then
    if wait "$kafka_pid"; then
      bootstrap="$(tail -n 1 "$out/kafka")"
      bootstrap="${bootstrap#QS_KAFKA_BOOTSTRAP=}"
    else
      failed+=" kafka"
    fi
  fi
  if [[ -n "$cql_pid" ]]; then
    if wait "$cql_pid"; then
      contact="$(tail -n 1 "$out/cql")"
      contact="${contact#QS_CQL_CONTACT_POINTS=}"
    else
      failed+=" cql"
    fi
  fi
  [[ -z "$failed" ]] \
    || qs_die "could not start:$failed (see the errors above; whatever did start is left running: '$0 down' stops it)"
  [[ "$bootstrap" =~ ^127\.0\.0\.1:[0-9]+$ ]] || qs_die "unexpected bootstrap '$bootstrap'"
  [[ "$contact" =~ ^127\.0\.0\.1:[0-9]+$ ]] || qs_die "unexpected CQL contact point '$contact'"
  {
    printf 'export QS_KAFKA_BOOTSTRAP=%s\n' "$bootstrap"
    printf 'export QS_CQL_CONTACT_POINTS=%s\n' "$contact"
    if [[ -n "${QS_SCHEMA_REGISTRY_URL:-}" ]]; then
      printf 'export QS_SCHEMA_REGISTRY_URL=%q\n' "$QS_SCHEMA_REGISTRY_URL"
    fi
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  qs_log "env written to $ENV_FILE"
  cat "$ENV_FILE"
}

down() {
  local pids=()
  # Both stop in parallel: each waits for its server's own shutdown.
  if [[ -d "$KAFKA_RUN" ]]; then
    "$HERE/kafka/stop.sh" "$KAFKA_RUN" &
    pids+=($!)
  else
    qs_log "kafka: nothing running in $KAFKA_RUN"
  fi
  if [[ -d "$CQL_RUN" ]]; then
    "$HERE/cql/stop.sh" "$CQL_RUN" &
    pids+=($!)
  else
    qs_log "cql: nothing running in $CQL_RUN"
  fi
  local pid rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  rm -f "$ENV_FILE"
  return "$rc"
}

status() {
  local rc=0 contact version
  if kafka_running; then
    qs_log "kafka: running, pid $(cat "$KAFKA_RUN/kafka.pid"), $(head -n 1 "$KAFKA_RUN/env")"
  else
    qs_log "kafka: not running"
    rc=1
  fi
  if cql_running; then
    contact="$(env_value "$CQL_RUN/env" QS_CQL_CONTACT_POINTS)"
    if version="$("$HERE/cql/ping.sh" "$contact")"; then
      qs_log "cql: running, pid $(cat "$CQL_RUN/cassandra.pid"), QS_CQL_CONTACT_POINTS=$contact, Cassandra $version"
    else
      qs_log "cql: pid $(cat "$CQL_RUN/cassandra.pid") alive but not answering CQL at $contact"
      rc=1
    fi
  else
    qs_log "cql: not running"
    rc=1
  fi
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) qs_die "usage: $0 up|down|status" ;;
esac
