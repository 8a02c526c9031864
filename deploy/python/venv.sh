#!/usr/bin/env bash
# Creates (once) and prints the path of the Python interpreter of a venv
# holding deploy/python/requirements.txt:
#
#   PY="$(deploy/python/venv.sh)"
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/quickstore/venv-<hash>,
# keyed by the requirements' hash, so a changed pin makes a new one and an
# unchanged one is reused in milliseconds. It is built in a temporary
# directory and moved into place only when pip succeeded, so a failed or
# interrupted install never leaves a half venv behind. Fails loudly with
# what to install.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQ="$HERE/requirements.txt"
die() { echo "deploy/python/venv.sh: $*" >&2; exit 1; }

PYTHON="${QS_PYTHON3:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 \
  || die "python3 not found: install Python >= 3.9 (Debian: apt-get install -y python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$PYTHON" --version 2>&1) is too old: confluent-kafka needs Python >= 3.9"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "python3 -m venv needs the venv and ensurepip modules (Debian: apt-get install -y python3-venv)"

HASH="$( (cat "$REQ"; "$PYTHON" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-16)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/quickstore"
VENV="$CACHE/venv-$HASH"
if [[ -x "$VENV/bin/python" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi

mkdir -p "$CACHE"
# Built beside its final place and renamed when complete: a failed or
# interrupted install never leaves a half venv behind. (Only bin/python is
# used, which a rename does not break; the scripts' shebangs would be.)
TMP="$(mktemp -d "$CACHE/venv-tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "deploy/python/venv.sh: creating $VENV (confluent-kafka, fastavro, pyarrow, schemathesis; once)" >&2
"$PYTHON" -m venv "$TMP/venv" >&2 \
  || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
"$TMP/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=:all: -r "$REQ" >&2 \
  || die "pip could not install $REQ: it needs PyPI (or a mirror set with PIP_INDEX_URL) and wheels for this platform"
"$TMP/venv/bin/python" -c 'import confluent_kafka.schema_registry.avro, fastavro, pyarrow.parquet, schemathesis' >&2 \
  || die "the venv was installed but its packages do not import"
# Another run may have finished first: keep theirs.
mv -T "$TMP/venv" "$VENV" 2>/dev/null || [[ -x "$VENV/bin/python" ]] \
  || die "could not move the venv into $VENV"
echo "$VENV/bin/python"
