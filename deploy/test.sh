#!/usr/bin/env bash
# The one command that runs every QuickStore test, real servers included:
#
#   deploy/test.sh
#
# 1. checks the prerequisites (fails loudly with what to install),
# 2. fetches (cached) and starts, in parallel, a real Apache Kafka broker and
#    a real CQL node (Apache Cassandra 5.0, for the read side) on loopback,
# 3. starts a Confluent-REST schema registry on loopback (see below),
# 4. builds the workspace once, validates the deployment files
#    (docker-compose.yml, the Helm chart, the Dockerfile's build steps; the
#    validators are fetched once into the cache, see deploy/tools/), makes
#    (cached) the Python venv the decoder checks and the API fuzz run
#    (schemathesis) use (deploy/python), then
#    fmt, clippy -D warnings, every test (unit, conformance on both
#    event-log adapters, processor crash tests, five roles in five
#    processes, ops and export tests decoded by confluent-kafka, the
#    whole-system benchmark in --quick mode), and `bench orders --quick`,
# 5. stops what it started, whatever happened.
#
# Schema registry: no real Confluent-compatible registry can be installed
# from the package registries this project may use (deploy/README.md says
# what was tried), so the suite serves QuickStore's embedded registry over
# the Confluent REST subset (`quickstore registry serve`) and runs the HTTP
# client's tests against that. Set QS_SCHEMA_REGISTRY_URL to use a real one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# A run directory of our own: servers this run starts (and stops) never
# collide with a developer's brokers or another test run.
QS_RUN_DIR="${QS_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/quickstore-test.XXXXXX")}"
export QS_RUN_DIR
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$ROOT/deploy/lib/common.sh"
export QS_LOG_TAG=test

need() {
  command -v "$1" >/dev/null 2>&1 || qs_die "$1 not found: $2"
}
need cargo "install Rust with rustup (https://rustup.rs), stable >= 1.90"
need cc "install a C compiler (Debian: apt-get install -y build-essential); librdkafka is built from source"
need make "install make (Debian: apt-get install -y build-essential)"
need curl "install curl (Debian: apt-get install -y curl)"
need go "install Go >= 1.22 (https://go.dev/dl/; Debian: apt-get install -y golang): it builds helm and compose-check, which validate the deployment files"
need python3 "install Python 3 with venv (Debian: apt-get install -y python3 python3-venv)"
qs_java 17 >/dev/null
qs_require_mvn

STARTED_REGISTRY_PID=""
cleanup() {
  local status=$?
  if [[ -n "$STARTED_REGISTRY_PID" ]]; then
    kill "$STARTED_REGISTRY_PID" 2>/dev/null || true
  fi
  "$ROOT/deploy/test-env.sh" down >/dev/null 2>&1 || true
  rm -rf "$QS_RUN_DIR" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT INT TERM

T0=$(date +%s)
# The deployment validators (cached after the first run) download and build
# while the servers start and the workspace compiles.
TOOLS_ENV="$(mktemp)"
"$ROOT/deploy/tools/fetch-tools.sh" >"$TOOLS_ENV" 2>"$TOOLS_ENV.log" &
TOOLS_PID=$!
qs_log "starting a real Kafka broker and a real CQL node (first run downloads them from Maven Central)"
"$ROOT/deploy/test-env.sh" up >/dev/null
# shellcheck disable=SC1091
source "$QS_RUN_ROOT/test-env"
export QS_KAFKA_BOOTSTRAP QS_CQL_CONTACT_POINTS
qs_log "kafka at $QS_KAFKA_BOOTSTRAP, cql at $QS_CQL_CONTACT_POINTS ($(( $(date +%s) - T0 ))s)"

qs_log "building the workspace (once; tests reuse it)"
cargo build --locked --workspace --all-targets

if [[ -z "${QS_SCHEMA_REGISTRY_URL:-}" ]]; then
  REG_DIR="$(mktemp -d "$QS_RUN_ROOT/registry-XXXXXX")"
  ./target/debug/quickstore registry serve --listen 127.0.0.1:0 --url-file "$REG_DIR/url" \
    >"$REG_DIR/log" 2>&1 &
  STARTED_REGISTRY_PID=$!
  for _ in $(seq 1 100); do
    [[ -s "$REG_DIR/url" ]] && break
    sleep 0.1
  done
  [[ -s "$REG_DIR/url" ]] || { cat "$REG_DIR/log" >&2; qs_die "the schema registry did not start"; }
  QS_SCHEMA_REGISTRY_URL="$(cat "$REG_DIR/url")"
  export QS_SCHEMA_REGISTRY_URL
  curl -fsS "$QS_SCHEMA_REGISTRY_URL/subjects" >/dev/null \
    || qs_die "the schema registry at $QS_SCHEMA_REGISTRY_URL does not answer"
fi
qs_log "schema registry at $QS_SCHEMA_REGISTRY_URL"

qs_log "deployment files: docker-compose.yml, the Helm chart, the Dockerfile's steps ($(( $(date +%s) - T0 ))s)"
wait "$TOOLS_PID" || { cat "$TOOLS_ENV.log" >&2; qs_die "fetching the deployment validators failed"; }
# shellcheck disable=SC1090
source "$TOOLS_ENV"
"$ROOT/deploy/tools/validate-deploy.sh" ./target/debug/quickstore

# The standard non-Rust decoders the suite checks our topics with
# (confluent-kafka + fastavro, pyarrow) and schemathesis, which fuzzes both
# HTTP APIs (quickstore/tests/api_fuzz.rs): a venv cached per requirements hash.
qs_log "python venv for the decoder checks (deploy/python; cached)"
need python3 "install Python >= 3.9 with venv (Debian: apt-get install -y python3 python3-venv)"
QS_PYTHON="$("$ROOT/deploy/python/venv.sh")" || qs_die "deploy/python/venv.sh failed (see above)"
export QS_PYTHON

qs_log "format and lints ($(( $(date +%s) - T0 ))s)"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

qs_log "tests, real Kafka at $QS_KAFKA_BOOTSTRAP, real CQL node at $QS_CQL_CONTACT_POINTS ($(( $(date +%s) - T0 ))s)"
cargo test --locked --workspace --no-fail-fast

# The whole-system benchmark (`quickstore bench --quick`, both targets,
# report.json + report.md + plots, the processor's memory as `bench memory`
# measures it) runs inside `cargo test` above
# (quickstore/tests/bench_report.rs); it measures with the same code as
# `bench log`, `bench projections` and `bench memory`. The closed-loop
# `bench orders` is the one it does not cover.
qs_log "benchmark, quick mode (checks the report, not the numbers)"
./target/debug/quickstore bench orders --quick

qs_log "all tests passed in $(( $(date +%s) - T0 ))s"
