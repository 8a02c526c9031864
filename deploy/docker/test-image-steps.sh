#!/usr/bin/env bash
# The Dockerfile's build steps as a plain script test (no Docker engine on
# the CI machine). It checks that:
#   1. every RUN of the Dockerfile calls a script of deploy/docker/ (so
#      running those scripts here runs every build step), and every COPY
#      from the build context names a file that exists;
#   2. build-deps.sh --check: the build stage's tools are there;
#   3. build.sh lays out the runtime files (with QS_BUILD_PROFILE=dev: the
#      debug build the suite already made, with its feature set, so not a
#      second compile), and every
#      `COPY --from=build /out/…` source exists in that layout;
#   4. the binary needs no shared library beyond libc6/libgcc-s1 and the
#      packages runtime-deps.sh installs (ldd + dpkg -S);
#   5. the laid-out binary runs (--version, the probe a healthcheck uses).
#
#   deploy/docker/test-image-steps.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
fail() { echo "test-image-steps: $*" >&2; exit 1; }

# 1. The Dockerfile's instructions, continuation lines joined.
mapfile -t instructions < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -Ev '^\s*(#|$)')
runs=0
for line in "${instructions[@]}"; do
  read -r op rest <<<"$line"
  case ${op^^} in
    RUN)
      runs=$((runs + 1))
      cmd=$(sed -E 's/--mount=[^ ]+//g' <<<"$rest" | xargs)
      script=${cmd%% *}
      case $script in
        deploy/docker/*.sh) [[ -x $script ]] || fail "RUN calls $script, which is not an executable file" ;;
        /tmp/*.sh) grep -q "COPY deploy/docker/$(basename "$script") $script" Dockerfile \
            || fail "RUN calls $script, not copied from deploy/docker/" ;;
        *) fail "RUN must call a deploy/docker/*.sh script (tested here), got: $cmd" ;;
      esac
      ;;
    COPY)
      if [[ $rest != --from=* ]]; then
        src=$(sed -E 's/--[a-z]+=[^ ]+//g' <<<"$rest" | xargs | awk '{print $1}')
        [[ -e $src ]] || fail "COPY $src: no such file in the build context"
      fi
      ;;
  esac
done
((runs >= 3)) || fail "expected the build-deps, build and runtime-deps RUN steps, found $runs"
echo "test-image-steps: $runs RUN steps, each a deploy/docker script"

# 2. Build tools.
deploy/docker/build-deps.sh --check

# 3. The layout.
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
QS_BUILD_PROFILE=${QS_BUILD_PROFILE:-dev} QS_BUILD_SCOPE=${QS_BUILD_SCOPE:-workspace} \
  deploy/docker/build.sh "$OUT"
while read -r src; do
  [[ -e $OUT${src#/out} ]] || fail "COPY --from=build $src: build.sh did not produce it"
done < <(grep -E '^COPY --from=build' Dockerfile | sed -E 's/--[a-z]+=[^ ]+//g' | awk '{print $2}')
echo "test-image-steps: build.sh produced every file the runtime stage copies"

# 4. Shared libraries → packages.
BIN=$OUT/usr/local/bin/quickstore
allowed=" libc6 libgcc-s1 $(deploy/docker/runtime-deps.sh --list | tr '\n' ' ') "
while read -r lib; do
  pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) \
    || pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
  [[ -n $pkg ]] || fail "$lib (needed by quickstore) belongs to no Debian package here"
  [[ $allowed == *" $pkg "* ]] \
    || fail "quickstore needs $lib from $pkg: add $pkg to deploy/docker/runtime-deps.sh"
done < <(ldd "$BIN" | awk '/=>/ {print $3} !/=>/ && /^\s*\// {print $1}' | grep -v '^$')
deploy/docker/runtime-deps.sh --check
echo "test-image-steps: every shared library comes from libc6, libgcc-s1 or runtime-deps.sh"

# 5. It runs.
"$BIN" --version
"$BIN" probe --help >/dev/null
if "$BIN" probe http://127.0.0.1:9/readyz 2>/dev/null; then
  fail "probe of a closed port succeeded"
fi
echo "test-image-steps: ok"
