#!/usr/bin/env bash
# Fetch the Apache Cassandra server jars pinned in deploy/cql/pom.xml from
# Maven Central into the cache (outside the repo):
#   ${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}/cassandra-<version>/libs
# Idempotent: once fetched (for this pom) it does nothing — no network, no
# mvn. Prints the libs dir on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=cql-fetch

POM="$HERE/pom.xml"
CASSANDRA_VERSION="$(qs_pom_property "$POM" cassandra.version)"
[[ -n "$CASSANDRA_VERSION" ]] || qs_die "no <cassandra.version> in $POM"
# The jamm agent jar is on the JVM command line (start.sh).
qs_maven_fetch "$POM" "$QS_CACHE_ROOT/cassandra-$CASSANDRA_VERSION" \
  "Apache Cassandra $CASSANDRA_VERSION" \
  "cassandra-all-$CASSANDRA_VERSION.jar" "jamm-*.jar"
