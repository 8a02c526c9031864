#!/usr/bin/env bash
# Fetch the Apache Cassandra server jars pinned in deploy/cql/pom.xml from
# Maven Central into the cache (outside the repo):
#   ${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}/cassandra-<version>/libs
# Idempotent: once the marker file is there (and matches the pom), it does
# nothing (no network, no mvn). Prints the libs dir on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=cql-fetch

POM="$HERE/pom.xml"
CASSANDRA_VERSION="$(qs_pom_property "$POM" cassandra.version)"
[[ -n "$CASSANDRA_VERSION" ]] || qs_die "no <cassandra.version> in $POM"
CASSANDRA_HOME="$QS_CACHE_ROOT/cassandra-$CASSANDRA_VERSION"
LIBS="$CASSANDRA_HOME/libs"
MARKER="$CASSANDRA_HOME/.complete"
# The marker records the pom's checksum: editing the pom (an exclusion, a
# logging bump) makes the next fetch redo the copy.
POM_SUM="$(sha256sum "$POM" | cut -d' ' -f1)"

is_complete() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$POM_SUM" ]]; }

do_fetch() {
  # Re-check under the lock: another process may have finished meanwhile.
  if is_complete; then return 0; fi
  qs_java 17 >/dev/null
  qs_require_mvn
  qs_log "fetching Apache Cassandra $CASSANDRA_VERSION jars from Maven Central into $LIBS"
  # Maven works on a copy of the pom in the cache, so nothing (target/, ...)
  # is ever written into the repo.
  local work="$CASSANDRA_HOME/.fetch-work"
  rm -rf "$work" "$LIBS.tmp"
  mkdir -p "$work"
  cp "$POM" "$work/pom.xml"
  # Same invocation as deploy/kafka/fetch.sh (see the comments there).
  if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" \
      -Dmaven.repo.local="$QS_M2_REPO" \
      "$QS_DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime \
      -DoutputDirectory="$LIBS.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    qs_die "mvn could not fetch Cassandra $CASSANDRA_VERSION (is Maven Central reachable? see errors above)"
  fi
  [[ -f "$LIBS.tmp/cassandra-all-$CASSANDRA_VERSION.jar" ]] \
    || qs_die "fetch finished but cassandra-all-$CASSANDRA_VERSION.jar is missing in $LIBS.tmp"
  compgen -G "$LIBS.tmp/jamm-*.jar" >/dev/null \
    || qs_die "fetch finished but the jamm agent jar (jamm-*.jar) is missing in $LIBS.tmp"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  rm -rf "$work"
  printf '%s\n' "$POM_SUM" >"$MARKER"
  qs_log "done: $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | cut -f1)"
}

if ! is_complete; then
  qs_with_lock "$CASSANDRA_HOME.lock" do_fetch
fi
printf '%s\n' "$LIBS"
