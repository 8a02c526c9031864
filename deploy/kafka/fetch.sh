#!/usr/bin/env bash
# Fetch the Apache Kafka broker + tools jars pinned in deploy/kafka/pom.xml
# from Maven Central into the cache (outside the repo):
#   ${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}/kafka-<version>/libs
# Idempotent: once fetched (for this pom) it does nothing — no network, no
# mvn. Prints the libs dir on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=kafka-fetch

POM="$HERE/pom.xml"
KAFKA_VERSION="$(qs_pom_property "$POM" kafka.version)"
[[ -n "$KAFKA_VERSION" ]] || qs_die "no <kafka.version> in $POM"
qs_maven_fetch "$POM" "$QS_CACHE_ROOT/kafka-$KAFKA_VERSION" \
  "Apache Kafka $KAFKA_VERSION" "kafka_2.13-$KAFKA_VERSION.jar"
