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
set -euo pipefail
OUT=${1:?usage: build.sh OUT_DIR}
PROFILE=${QS_BUILD_PROFILE:-release}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

cargo build --locked --profile "$PROFILE" -p quickstore --bin quickstore
case $PROFILE in
  dev) dir=debug ;;
  *) dir=$PROFILE ;;
esac
target=${CARGO_TARGET_DIR:-target}

install -d "$OUT/usr/local/bin" "$OUT/var/lib/quickstore"
install -m 0755 "$target/$dir/quickstore" "$OUT/usr/local/bin/quickstore"
echo "build: $OUT/usr/local/bin/quickstore ($PROFILE)"
