#!/usr/bin/env bash
# Start a single-node Apache Cassandra 5.0 (the CQL node the read side's
# tests talk to through the `scylla` crate) on free loopback ports.
#
#   deploy/cql/start.sh [NAME]
#   deploy/cql/start.sh --resume RUN_DIR
#
# NAME (or $QS_CQL_NAME) names the run dir
# ${QS_RUN_DIR:-/tmp/quickstore-run}/cql-NAME; without it a random one is
# made. Runs fetch.sh first (a no-op when the cache is complete).
# Ready = deploy/cql/ping.sh gets through OPTIONS/STARTUP/QUERY on the CQL
# port (a real protocol exchange, not just an open port). Then the last
# stdout line is  QS_CQL_CONTACT_POINTS=127.0.0.1:<port>  and <run dir>/env
# holds the same (plus QS_CQL_RUN_DIR).
#
# --resume restarts a node that deploy/cql/stop.sh stopped with KEEP=1: same
# run dir, same ports, same data (the read side's outage test stops the node
# and brings it back this way).
#
# Env knobs: QS_CQL_START_TIMEOUT (s, default 180), QS_CQL_HEAP (max heap,
# default 768m), QS_CQL_JVM_OPTS (extra JVM flags, split on spaces, last so
# they win), JAVA_HOME.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=cql-start

TIMEOUT="${QS_CQL_START_TIMEOUT:-180}"
HEAP="${QS_CQL_HEAP:-768m}"
RESUME=""
if [[ "${1:-}" == "--resume" ]]; then
  RESUME="${2:?usage: start.sh --resume RUN_DIR}"
  [[ -f "$RESUME/conf/cassandra.yaml" ]] || qs_die "$RESUME has no conf/cassandra.yaml: not a stopped node's run dir"
  NAME=""
else
  NAME="${1:-${QS_CQL_NAME:-}}"
fi

JAVA="$(qs_java 17)"
LIBS="$("$HERE/fetch.sh")"
JAMM="$(compgen -G "$LIBS/jamm-*.jar" | head -n 1)" \
  || qs_die "no jamm-*.jar in $LIBS (remove $(dirname "$LIBS")/.complete and fetch again)"

mkdir -p "$QS_RUN_ROOT"
if [[ -n "$RESUME" ]]; then
  RUN="$(cd "$RESUME" && pwd)"
  if [[ -f "$RUN/cassandra.pid" ]] && qs_pid_alive "$(cat "$RUN/cassandra.pid")"; then
    qs_die "the CQL node in $RUN is still running (pid $(cat "$RUN/cassandra.pid"))"
  fi
elif [[ -n "$NAME" ]]; then
  [[ "$NAME" =~ ^[A-Za-z0-9._-]+$ ]] || qs_die "bad name '$NAME' (use [A-Za-z0-9._-])"
  RUN="$QS_RUN_ROOT/cql-$NAME"
  if [[ -f "$RUN/cassandra.pid" ]] && qs_pid_alive "$(cat "$RUN/cassandra.pid")"; then
    qs_die "a CQL node named '$NAME' is already running (pid $(cat "$RUN/cassandra.pid")); stop it first: $HERE/stop.sh $RUN"
  fi
  rm -rf "$RUN"
  mkdir -p "$RUN"
else
  RUN="$(mktemp -d "$QS_RUN_ROOT/cql-XXXXXX")"
fi
mkdir -p "$RUN/conf" "$RUN/logs"

write_config() {
  local storage_port="$1" cql_port="$2"
  sed -e "s/@STORAGE_PORT@/$storage_port/g" -e "s/@CQL_PORT@/$cql_port/g" \
    "$HERE/cassandra.yaml.template" >"$RUN/conf/cassandra.yaml"
  if grep -q '@[A-Z_]*@' "$RUN/conf/cassandra.yaml"; then
    qs_die "unreplaced placeholder in $RUN/conf/cassandra.yaml: $(grep -o '@[A-Z_]*@' "$RUN/conf/cassandra.yaml" | head -n 1)"
  fi

  # Logs go to files in the run dir, not the console. system.log is the one
  # to read when something goes wrong. No shutdown hook: Cassandra stops
  # logback itself at the end of its own shutdown.
  cat >"$RUN/conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.FileAppender">
    <file>$RUN/logs/system.log</file>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{0} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="SYSTEMLOG" />
  </root>
</configuration>
EOF
}

# The JVM flags of Cassandra 5.0's conf/jvm-server.options and
# conf/jvm17-server.options (the binary distribution's bin/cassandra reads
# them; Maven Central has only the jars), less the ones for big production
# boxes (AlwaysPreTouch, UseNUMA, a 16m G1 region size).
jvm_flags() {
  printf '%s\n' \
    -ea -da:net.openhft... \
    -Xss256k \
    -XX:+UseThreadPriorities \
    -XX:+UseTLAB -XX:+ResizeTLAB \
    -XX:+PerfDisableSharedMem \
    -Djava.net.preferIPv4Stack=true \
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 \
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 \
    -XX:InitiatingHeapOccupancyPercent=70 \
    -Djdk.attach.allowAttachSelf=true \
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED \
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED \
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED \
    --add-exports java.sql/java.sql=ALL-UNNAMED \
    --add-exports java.base/java.lang.ref=ALL-UNNAMED \
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED \
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED \
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED \
    --add-opens java.base/java.lang.module=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED \
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens java.base/java.io=ALL-UNNAMED \
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED \
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED \
    --add-opens java.base/java.util=ALL-UNNAMED \
    -Dio.netty.tryReflectionSetAccessible=true \
    -Dio.netty.allocator.useCacheForAllThreads=true \
    -Dio.netty.allocator.maxOrder=11
}

# One start attempt with fresh ports. Sets PORT_CLASH=1 if a port was taken
# between our pick and the bind (the caller retries with new ports), dies on
# any other failure. (Status via a variable, not the return code: a function
# called as `f || ...` runs with `set -e` disabled.)
PORT_CLASH=0
start_once() {
  local storage_port cql_port deadline pid version started=$SECONDS
  local -a flags extra=()
  PORT_CLASH=0
  if [[ -n "$RESUME" ]]; then
    storage_port="$(sed -n 's/^storage_port: *//p' "$RUN/conf/cassandra.yaml")"
    cql_port="$(sed -n 's/^native_transport_port: *//p' "$RUN/conf/cassandra.yaml")"
    [[ -n "$storage_port" && -n "$cql_port" ]] || qs_die "no ports in $RUN/conf/cassandra.yaml"
    rm -f "$RUN/cassandra.pid"
  else
    storage_port="$(qs_free_port)"
    cql_port="$(qs_free_port "$storage_port")"
    rm -rf "$RUN/data" "$RUN/logs"/* "$RUN/cassandra.pid"
    write_config "$storage_port" "$cql_port"
  fi
  mapfile -t flags < <(jvm_flags)
  if [[ -n "${QS_CQL_JVM_OPTS:-}" ]]; then
    # shellcheck disable=SC2206  # word splitting is the point
    extra=(${QS_CQL_JVM_OPTS})
  fi

  qs_log "starting Cassandra on 127.0.0.1:$cql_port (storage :$storage_port), heap $HEAP"
  # cassandra-env.sh's settings that matter here: glibc arena cap (RSS),
  # the jamm agent (memtable/cache sizing), no JMX port (nothing here uses
  # nodetool, and it would be a third port to pick). Startup shortcuts for a
  # lone node: no wait for gossip to settle, and a short ring delay.
  # -XX:+ExitOnOutOfMemoryError: a broken node must die, not hang a test run.
  MALLOC_ARENA_MAX=4 qs_launch "$RUN/cassandra.pid" "$RUN/logs/stdout.log" \
    "$JAVA" -Xms256m -Xmx"$HEAP" "${flags[@]}" \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -javaagent:"$JAMM" \
    -Dcassandra-foreground=yes \
    -Dcassandra.config="file://$RUN/conf/cassandra.yaml" \
    -Dcassandra.storagedir="$RUN/data" \
    -Dcassandra.logdir="$RUN/logs" \
    -Dlogback.configurationFile="$RUN/conf/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 \
    "${extra[@]}" \
    -cp "$LIBS/*" org.apache.cassandra.service.CassandraDaemon
  pid="$(cat "$RUN/cassandra.pid")"

  deadline=$(( SECONDS + TIMEOUT ))
  while (( SECONDS < deadline )); do
    if ! qs_pid_alive "$pid"; then
      # Storage port: "... is in use by another process"; CQL port: "Failed
      # to bind port N" / BindException "Address already in use".
      if grep -qsE "is in use by another process|Address already in use|Failed to bind port" \
          "$RUN/logs/system.log" "$RUN/logs/stdout.log"; then
        qs_log "port race lost (address already in use)"
        PORT_CLASH=1
        return 0
      fi
      tail -n 60 "$RUN/logs/system.log" "$RUN/logs/stdout.log" >&2 2>/dev/null || true
      qs_die "Cassandra exited during startup (run dir kept: $RUN)"
    fi
    if qs_port_in_use "$cql_port" \
        && version="$(QS_CQL_PING_TIMEOUT=5 "$HERE/ping.sh" "127.0.0.1:$cql_port" 2>>"$RUN/logs/ping.log")"; then
      printf 'QS_CQL_CONTACT_POINTS=127.0.0.1:%s\nQS_CQL_RUN_DIR=%s\n' "$cql_port" "$RUN" >"$RUN/env"
      qs_log "Cassandra $version ready after $(( SECONDS - started ))s; run dir $RUN"
      printf 'QS_CQL_CONTACT_POINTS=127.0.0.1:%s\n' "$cql_port"
      return 0
    fi
    sleep 0.5
  done
  tail -n 60 "$RUN/logs/system.log" "$RUN/logs/stdout.log" >&2 2>/dev/null || true
  qs_stop_pid "$pid" "$RUN/conf/cassandra.yaml" 10 "cql $(basename "$RUN")"
  qs_die "Cassandra not ready within ${TIMEOUT}s (log tail above; run dir kept: $RUN)"
}

for attempt in 1 2 3; do
  start_once
  (( PORT_CLASH )) || exit 0
  [[ -z "$RESUME" ]] || qs_die "port $cql_port or $storage_port was taken while the node was down (run dir kept: $RUN)"
  qs_log "attempt $attempt failed on a port clash, retrying with new ports"
done
qs_die "could not bind free ports after 3 attempts (run dir kept: $RUN)"
