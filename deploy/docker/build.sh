#!/usr/bin/env bash
# Builds the quickstore binary and lays out the runtime image's files under
# OUT (copied to / of the runtime stage):
#   OUT/usr/local/bin/quickstore
#   OUT/var/lib/quickstore/          (QS_DATA_DIR; the Dockerfile gives it to uid 10001)
#
#   build.sh OUT              release build (what the Dockerfile runs)
#   QS_BUILD_PROFILE=dev build.sh OUT
#                             the debug build the test suite already has
#                             (same steps, no second compile in CI)
#   QS_BUILD_SCOPE=workspace  build what `cargo build --workspace --all-targets`
#                             builds (the suite's build; see below)
set -euo pipefail
OUT=${1:?usage: build.sh OUT_DIR}
PROFILE=${QS_BUILD_PROFILE:-release}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# `-p quickstore --bin quickstore` alone resolves features without the
# dev-dependencies' (serde's, platform's `testing`, ...), so after the
# suite's `--workspace --all-targets` build it recompiles most of the graph
# into the same target dir: minutes of CI and gigabytes of disk (a CI run
# once died of a full disk here). The suite asks for its own scope, which
# is a no-op after its build and leaves its binary in place.
case ${QS_BUILD_SCOPE:-binary} in
  binary) scope=(-p quickstore --bin quickstore) ;;
  workspace) scope=(--workspace --all-targets) ;;
  *) echo "build: QS_BUILD_SCOPE must be binary or workspace, got ${QS_BUILD_SCOPE}" >&2; exit 2 ;;
esac
cargo build --locked --profile "$PROFILE" "${scope[@]}"
case $PROFILE in
  dev) dir=debug ;;
  *) dir=$PROFILE ;;
esac
target=${CARGO_TARGET_DIR:-target}

install -d "$OUT/usr/local/bin" "$OUT/var/lib/quickstore"
install -m 0755 "$target/$dir/quickstore" "$OUT/usr/local/bin/quickstore"
echo "build: $OUT/usr/local/bin/quickstore ($PROFILE)"
