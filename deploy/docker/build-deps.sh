#!/usr/bin/env bash
# Build tools the image's build stage needs beyond the rust image: cmake
# (librdkafka is built from its bundled sources) and a C++ compiler.
#
#   build-deps.sh          install what is missing (as root, in the image)
#   build-deps.sh --check  only check that they are there (the script test)
set -euo pipefail
PACKAGES=(cmake g++ make pkg-config)
TOOLS=(cmake g++ make pkg-config)

missing=()
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${1:-} == --check ]]; then
  if ((${#missing[@]})); then
    echo "build-deps: missing ${missing[*]} (apt-get install ${PACKAGES[*]})" >&2
    exit 1
  fi
  echo "build-deps: ${TOOLS[*]} present"
  exit 0
fi
if ((${#missing[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
  rm -rf /var/lib/apt/lists/*
fi
