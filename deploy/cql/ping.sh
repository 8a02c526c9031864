#!/usr/bin/env bash
# Check that a CQL node answers the native protocol, not just that its port
# is open. Pure bash (/dev/tcp) + coreutils: no driver, no cqlsh, no python.
#
#   deploy/cql/ping.sh [HOST:]PORT     # HOST defaults to 127.0.0.1
#
# Speaks CQL native protocol v4 on one connection:
#   OPTIONS  -> expects SUPPORTED   (the protocol layer is up)
#   STARTUP  -> expects READY       (no authenticator in the way)
#   QUERY "SELECT release_version FROM system.local" at ONE
#            -> expects a RESULT    (the node serves reads of its own tables)
# On success prints the server's release_version (e.g. 5.0.9) and exits 0.
# Otherwise prints why on stderr and exits 1. Knob: QS_CQL_PING_TIMEOUT
# (seconds per reply, default 5).
set -euo pipefail

TIMEOUT="${QS_CQL_PING_TIMEOUT:-5}"
target="${1:?usage: $0 [HOST:]PORT}"
if [[ "$target" == *:* ]]; then
  host="${target%:*}" port="${target##*:}"
else
  host=127.0.0.1 port="$target"
fi

fail() { printf '[cql-ping] %s:%s: %s\n' "$host" "$port" "$*" >&2; exit 1; }

# hex of a string; hex -> bytes (on stdout); hex -> bytes on fd 3
hex_of() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# shellcheck disable=SC2001  # a per-pair rewrite, not a plain substitution
unhex() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")"; }
send_hex() { unhex "$1" >&3; }
# [string] (short length) and [long string] (int length), hex-encoded
str_hex() { printf '%04x%s' "${#1}" "$(hex_of "$1")"; }
long_str_hex() { printf '%08x%s' "${#1}" "$(hex_of "$1")"; }

# frame OPCODE STREAM BODY_HEX: a v4 request frame (version 0x04, no flags).
send_frame() {
  local body="$3"
  send_hex "$(printf '0400%04x%02x%08x%s' "$2" "$1" $(( ${#body} / 2 )) "$body")"
}

# read_frame -> sets R_OP (2 hex digits) and R_BODY (hex) from the next
# response frame; fails on a timeout or a non-v4-response header.
read_bytes_hex() {
  timeout "$TIMEOUT" head -c "$1" <&3 | od -An -v -tx1 | tr -d ' \n'
}
read_frame() {
  local hdr len
  hdr="$(read_bytes_hex 9)" || true
  (( ${#hdr} == 18 )) || fail "no complete reply within ${TIMEOUT}s (got '${hdr}')"
  [[ "${hdr:0:2}" == 84 ]] || fail "not a CQL v4 response (header $hdr)"
  R_OP="${hdr:8:2}"
  len=$(( 16#${hdr:10:8} ))
  R_BODY=""
  if (( len > 0 )); then
    R_BODY="$(read_bytes_hex "$len")" || true
    (( ${#R_BODY} == 2 * len )) || fail "short reply body (${#R_BODY}/2 of $len bytes)"
  fi
}
# An ERROR body is [int code][string message].
error_text() {
  local msg_len=$(( 16#${R_BODY:8:4} ))
  printf 'error 0x%s: %s' "${R_BODY:0:8}" "$(unhex "${R_BODY:12:$(( 2 * msg_len ))}")"
}
expect() { # expect OPCODE WHAT
  if [[ "$R_OP" == 00 ]]; then fail "$2: $(error_text)"; fi
  [[ "$R_OP" == "$1" ]] || fail "$2: unexpected opcode 0x$R_OP (wanted 0x$1)"
}

{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || fail "connection refused"
trap 'exec 3>&- 3<&-' EXIT

# OPTIONS (0x05) -> SUPPORTED (0x06)
send_frame 0x05 1 ""
read_frame
expect 06 OPTIONS

# STARTUP (0x01) {CQL_VERSION: 3.0.0} -> READY (0x02)
send_frame 0x01 2 "0001$(str_hex CQL_VERSION)$(str_hex 3.0.0)"
read_frame
expect 02 STARTUP

# QUERY (0x07): consistency ONE (0x0001), flags 0x02 = skip_metadata, so the
# Rows result is: kind(4) flags(4) columns(4) rows(4) then [bytes] cells.
send_frame 0x07 3 "$(long_str_hex 'SELECT release_version FROM system.local')000102"
read_frame
expect 08 QUERY
[[ "${R_BODY:0:8}" == 00000002 ]] || fail "QUERY: result kind 0x${R_BODY:0:8}, wanted Rows"
rows=$(( 16#${R_BODY:24:8} ))
(( rows == 1 )) || fail "QUERY: system.local has $rows rows"
vlen=$(( 16#${R_BODY:32:8} ))
printf '%s\n' "$(unhex "${R_BODY:40:$(( 2 * vlen ))}")"
