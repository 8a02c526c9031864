#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a cluster:
#   1. docker-compose.yml loads under the Compose Specification (compose-go,
#      what `docker compose config` runs), with and without the `full`
#      profile, and a file with a broken reference is refused (the checker
#      checks);
#   2. every quickstore command in it (and in the chart) parses with the
#      real CLI (`quickstore … --help`);
#   3. the Helm chart lints, renders with several value sets, and every
#      rendered object validates strictly against the Kubernetes 1.31 JSON
#      schemas (kubernetes-validate); a broken object is refused; the
#      KafkaTopic objects (Strimzi's CRD schema is not published as a file
#      in a reachable registry) are checked for their required shape;
#   4. the Dockerfile's build steps run as a script (test-image-steps.sh).
#
#   deploy/tools/validate-deploy.sh [path/to/quickstore]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source deploy/lib/common.sh
export QS_LOG_TAG=deploy-check
QUICKSTORE=${1:-$ROOT/target/debug/quickstore}
[[ -x $QUICKSTORE ]] || qs_die "$QUICKSTORE not built (cargo build -p quickstore)"
if [[ -z ${QS_HELM:-} || -z ${QS_COMPOSE_CHECK:-} || -z ${QS_K8S_VALIDATE:-} ]]; then
  eval "$(deploy/tools/fetch-tools.sh)"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

parses() { # a quickstore argument list (JSON array) parses with the CLI
  local where=$1 json=$2
  mapfile -t args < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$json")
  "$QUICKSTORE" "${args[@]}" --help >/dev/null 2>"$WORK/err" \
    || qs_die "$where: \`quickstore ${args[*]}\` does not parse: $(cat "$WORK/err")"
}

# 1 + 2: compose.
"$QS_COMPOSE_CHECK" docker-compose.yml >"$WORK/compose.txt"
"$QS_COMPOSE_CHECK" -profile full docker-compose.yml >>"$WORK/compose.txt"
grep -q 'kafka-3' "$WORK/compose.txt" || qs_die "the full profile has no kafka-3"
for svc in command-api sagas projectors query-api kafka schema-registry scylla; do
  grep -E "^  $svc\s" "$WORK/compose.txt" | grep -q healthcheck \
    || qs_die "docker-compose.yml: $svc has no healthcheck"
done
sed 's/condition: service_healthy }/condition: service_healthy }/; s/kafka: { condition: service_healthy }/kafka-nope: { condition: service_healthy }/' \
  docker-compose.yml >"$WORK/broken-compose.yml"
if "$QS_COMPOSE_CHECK" "$WORK/broken-compose.yml" >/dev/null 2>&1; then
  qs_die "compose-check accepted a depends_on on a service that does not exist"
fi
while IFS=$'\t' read -r svc json; do
  parses "docker-compose.yml service $svc" "$json"
done < <("$QS_COMPOSE_CHECK" -commands-of quickstore docker-compose.yml)
qs_log "docker-compose.yml: valid (default and full profiles), every quickstore command parses"

# 3: Helm.
CHART=deploy/helm/quickstore
"$QS_HELM" lint --strict "$CHART" >"$WORK/lint" 2>&1 || { cat "$WORK/lint" >&2; qs_die "helm lint failed"; }
render() { "$QS_HELM" template qs "$CHART" --kube-version 1.31.0 "$@"; }
render >"$WORK/default.yaml"
render --set strimzi.enabled=true --set ops.serviceMonitor.enabled=true \
  --set secrets.authSigningKey=pem --set secrets.kafkaSaslUsername=u --set secrets.kafkaSaslPassword=p \
  --set config.kafkaSecurityProtocol=SASL_SSL --set config.kafkaSaslMechanism=SCRAM-SHA-512 \
  --set config.topicPrefix=prod. --set roles.queryApi.autoscaling.enabled=false >"$WORK/full.yaml"
render --set secrets.existingSecret=mine --set initJob.enabled=false --set roles.sagas.enabled=false \
  --set serviceAccount.create=false >"$WORK/minimal.yaml"
for f in default full minimal; do
  # Kubernetes' own kinds, strictly (unknown fields refused).
  python3 - "$WORK/$f.yaml" "$WORK/$f.k8s.yaml" "$WORK/$f.crd.json" <<'PY'
import json, sys
docs = [d for d in open(sys.argv[1]).read().split("\n---") if d.strip() and "kind:" in d]
k8s, crds = [], []
for d in docs:
    (crds if "kafka.strimzi.io/" in d or "monitoring.coreos.com/" in d else k8s).append(d)
open(sys.argv[2], "w").write("\n---".join(k8s))
json.dump(crds, open(sys.argv[3], "w"))
PY
  "$QS_K8S_VALIDATE" --strict --quiet -k 1.31.0 "$WORK/$f.k8s.yaml" \
    || qs_die "helm template ($f values) does not validate against Kubernetes 1.31"
done
grep -q "kind: HorizontalPodAutoscaler" "$WORK/default.yaml" || qs_die "no HPA rendered"
grep -q "kind: PodDisruptionBudget" "$WORK/default.yaml" || qs_die "no PDB rendered"
for role in command-api command-processor sagas projectors query-api; do
  grep -q "name: qs-quickstore-$role$" "$WORK/default.yaml" || qs_die "no Deployment for $role"
done
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n' >"$WORK/bad.yaml"
if "$QS_K8S_VALIDATE" --strict --quiet "$WORK/bad.yaml" >/dev/null 2>&1; then
  qs_die "kubernetes-validate accepted replicas: two"
fi
python3 - "$WORK/full.yaml" <<'PY'
import re, sys
docs = [d for d in open(sys.argv[1]).read().split("\n---") if "kind: KafkaTopic" in d]
# One per topic the chart lists (quickstore/tests/deploy_files.rs holds
# that list to the code's topics); 31 since auth.revocations (ADR 0022).
assert len(docs) == 31, f"expected 31 KafkaTopics, got {len(docs)}"
for d in docs:
    name = re.search(r"^  name: (\S+)$", d, re.M).group(1)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
    assert re.search(r"^apiVersion: kafka.strimzi.io/v1beta2$", d, re.M), name
    assert re.search(r"^    strimzi.io/cluster: \S+$", d, re.M), name
    assert re.search(r"^  topicName: prod\.\S+$", d, re.M), name
    assert re.search(r"^  partitions: [1-9][0-9]*$", d, re.M), name
    assert re.search(r"^  replicas: [1-9][0-9]*$", d, re.M), name
    assert re.search(r'^    cleanup.policy: "(delete|compact)"$', d, re.M), name
PY
grep -A3 -- "- serve" "$WORK/default.yaml" | grep -A1 -- "- --role" | grep -Eo '(command-api|command-processor|sagas|projectors|query-api)$' | sort -u >"$WORK/roles"
while read -r role; do
  parses "helm chart ($role)" "[\"serve\",\"--role\",\"$role\",\"--instance\",\"x\"]"
done <"$WORK/roles"
[[ $(wc -l <"$WORK/roles") == 5 ]] || qs_die "the chart runs $(wc -l <"$WORK/roles") roles, expected 5"
for args in '["topics","apply"]' '["schema","apply"]' '["registry","register"]'; do
  parses "helm init job" "$args"
done
qs_log "helm chart: lints, renders (3 value sets), validates against Kubernetes 1.31; KafkaTopics well-formed"

# 4: the image's build steps.
deploy/docker/test-image-steps.sh >&2
qs_log "deployment files: all checks passed"
