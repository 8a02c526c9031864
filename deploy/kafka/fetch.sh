#!/usr/bin/env bash
# Fetch the Apache Kafka broker + tools jars pinned in deploy/kafka/pom.xml
# from Maven Central into the cache (outside the repo):
#   ${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}/kafka-<version>/libs
# Idempotent: once the marker file is there (and matches the pom), it does
# nothing. Prints the libs dir on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=kafka-fetch

POM="$HERE/pom.xml"
KAFKA_VERSION="$(qs_pom_property "$POM" kafka.version)"
[[ -n "$KAFKA_VERSION" ]] || qs_die "no <kafka.version> in $POM"
KAFKA_HOME="$QS_CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.complete"
# The marker records the pom's checksum: editing the pom (say, a log4j bump
# with the same Kafka version) makes the next fetch redo the copy.
POM_SUM="$(sha256sum "$POM" | cut -d' ' -f1)"

is_complete() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$POM_SUM" ]]; }

do_fetch() {
  # Re-check under the lock: another process may have finished meanwhile.
  if is_complete; then return 0; fi
  qs_java 17 >/dev/null
  qs_require_mvn
  qs_log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  # Build in a scratch dir in the cache: Maven is pointed at a copy of the
  # pom so nothing (target/, etc.) is ever written into the repo.
  local work="$KAFKA_HOME/.fetch-work"
  rm -rf "$work" "$LIBS.tmp"
  mkdir -p "$work"
  cp "$POM" "$work/pom.xml"
  # -B: no progress bars in CI logs; -q: only errors (failures still print).
  # includeScope=runtime: compile+runtime deps, i.e. what the broker loads.
  # sed: Maven 3.8 prints stray ANSI resets even with -B; with pipefail the
  # `if` still sees mvn's exit status.
  if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" \
      -Dmaven.repo.local="$QS_M2_REPO" \
      "$QS_DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime \
      -DoutputDirectory="$LIBS.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    qs_die "mvn could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable? see errors above)"
  fi
  [[ -f "$LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] \
    || qs_die "fetch finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $LIBS.tmp"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  rm -rf "$work"
  printf '%s\n' "$POM_SUM" >"$MARKER"
  qs_log "done: $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | cut -f1)"
}

if ! is_complete; then
  qs_with_lock "$KAFKA_HOME.lock" do_fetch
fi
printf '%s\n' "$LIBS"
