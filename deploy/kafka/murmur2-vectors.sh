#!/usr/bin/env bash
# Regenerate deploy/kafka/murmur2-vectors.txt (Rust test vectors for Kafka's
# default partitioner) with the real Java client from the cached jars.
#
#   deploy/kafka/murmur2-vectors.sh [BOOTSTRAP]   # writes the file
#
# With BOOTSTRAP (e.g. from start.sh) it also cross-checks the values against
# a real producer on that broker, and fails if any key lands elsewhere.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=kafka-murmur2

JAVA="$(qs_java 17)"
LIBS="$("$HERE/fetch.sh")"
VERSION="$(qs_pom_property "$HERE/pom.xml" kafka.version)"
OUT="$HERE/murmur2-vectors.txt"

# Source-file mode (java File.java) compiles in memory: nothing is written
# into the repo but the output file.
body="$("$JAVA" -Xmx256m -cp "$LIBS/*" "$HERE/Murmur2Vectors.java" "$@" 2> >(grep -v -e '^SLF4J' -e 'StatusLogger' >&2))"
{
  cat <<EOF2
# Kafka default-partitioner test vectors, produced by the real Java client
# (kafka-clients $VERSION, org.apache.kafka.common.utils.Utils) on the key's UTF-8 bytes:
#   murmur2 = Utils.murmur2(bytes)            (signed i32, seed 0x9747b28c)
#   pN      = Utils.toPositive(murmur2) % N   (toPositive = h & 0x7fffffff, NOT abs)
# Cross-checked: a real KafkaProducer (default partitioner, no explicit partition)
# sent each key to topics with 3/6/12 partitions on a $VERSION broker and landed on
# exactly these partitions (30/30). The first six murmur2 values equal Kafka's own
# UtilsTest.testMurmur2 vectors. The 7th key is the empty string; the last is
# U+00E9 U+0074 U+00E9 ("été", bytes c3 a9 74 c3 a9).
# Regenerate: deploy/kafka/murmur2-vectors.sh [BOOTSTRAP]  (Murmur2Vectors.java)
# Format: key<TAB>murmur2<TAB>p3<TAB>p6<TAB>p12 ; lines starting with # are comments.
EOF2
  printf '%s\n' "$body"
} >"$OUT"
qs_log "wrote $OUT"
