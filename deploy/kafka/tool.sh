#!/usr/bin/env bash
# Run a Kafka command-line tool from the cached jars (the binary distribution's
# bin/*.sh scripts are not on Maven Central, their main classes are).
#
#   deploy/kafka/tool.sh topics --bootstrap-server 127.0.0.1:PORT --list
#   deploy/kafka/tool.sh console-producer --bootstrap-server ... --topic t
#   deploy/kafka/tool.sh console-consumer --bootstrap-server ... --topic t --from-beginning
#   deploy/kafka/tool.sh consumer-groups --bootstrap-server ... --list
#   deploy/kafka/tool.sh org.apache.kafka.tools.SomeOtherTool ...
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$HERE/../lib/common.sh"
export QS_LOG_TAG=kafka-tool

(( $# )) || qs_die "usage: $0 topics|console-producer|console-consumer|consumer-groups|configs|get-offsets|MAIN.CLASS [args...]"
tool="$1"
shift
case "$tool" in
  topics) main=org.apache.kafka.tools.TopicCommand ;;
  console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
  console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  configs) main=kafka.admin.ConfigCommand ;;
  get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
  transactions) main=org.apache.kafka.tools.TransactionsCommand ;;
  *.*) main="$tool" ;;
  *) qs_die "unknown tool '$tool'" ;;
esac

JAVA="$(qs_java 17)"
LIBS="$("$HERE/fetch.sh")"
# Client tools: small heap; tiered-compilation level 1 starts ~30% faster for
# these short-lived JVMs. Without a log4j2 config file log4j's default is
# ERROR-level to the console, which is what a CLI wants.
exec "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -cp "$LIBS/*" "$main" "$@"
