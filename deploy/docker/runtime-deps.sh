#!/usr/bin/env bash
# What the runtime image adds to debian:bookworm-slim. The binary links
# only libc, libm, libgcc_s and libz dynamically (TLS is rustls; librdkafka
# is static); the script test checks that list against `ldd`.
#
#   runtime-deps.sh          install (as root, in the image)
#   runtime-deps.sh --check  check the packages are installed here
#   runtime-deps.sh --list   print the packages
set -euo pipefail
PACKAGES=(ca-certificates zlib1g)

case ${1:-} in
  --list)
    printf '%s\n' "${PACKAGES[@]}"
    ;;
  --check)
    for p in "${PACKAGES[@]}"; do
      dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || { echo "runtime-deps: $p is not installed" >&2; exit 1; }
    done
    echo "runtime-deps: ${PACKAGES[*]} installed"
    ;;
  *)
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    rm -rf /var/lib/apt/lists/*
    ;;
esac
