#!/usr/bin/env bash
# Post a JSON file to Gridline intake, signed with an integrator key (curl + openssl).
#
#   GRIDLINE_KEY_ID=key_... GRIDLINE_KEY_SECRET=... ./sign.sh report.json [PATH]
#
# PATH is the path to post to, with its query string if any (default /v1/reports; also
# /v1/reports:batch, and either with ?validate_only=true). GRIDLINE_INTAKE_URL is intake's
# address (default http://127.0.0.1:8001). Prints intake's answer, then `HTTP <status>`; exits
# non-zero unless the status is 2xx. The walk-through is docs/integrators/README.md.
#
# openssl takes the secret on its command line, where other users of the machine can see it
# (ps); on a shared host, sign with sign.py or Sign.java instead.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '3,9s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
body_file=$1
path=${2:-/v1/reports}
url=${GRIDLINE_INTAKE_URL:-http://127.0.0.1:8001}

timestamp=$(date +%s)
# 32 hex digits: within the 8-64 letters, digits, - or _ intake accepts, and never repeated.
nonce=$(openssl rand -hex 16)
# -r prints "<hex> *<file>": the first field is the lower-case hex SHA-256 of the file's bytes.
body_sha256=$(openssl dgst -sha256 -r "$body_file" | cut -d' ' -f1)
# Five lines joined by LF with no LF at the end: printf, not echo, which would add one.
signature=$(
  printf '%s\n%s\n%s\n%s\n%s' POST "$path" "$timestamp" "$nonce" "$body_sha256" |
    openssl dgst -sha256 -hmac "$GRIDLINE_KEY_SECRET" -r | cut -d' ' -f1
)

# --data-binary sends the file's bytes unchanged (-d would strip its newlines): the bytes
# hashed above are the bytes sent.
curl --silent --show-error --fail-with-body \
  --write-out '\nHTTP %{http_code}\n' \
  -X POST "$url$path" \
  -H 'Content-Type: application/json' \
  -H "X-Gridline-Key: $GRIDLINE_KEY_ID" \
  -H "X-Gridline-Timestamp: $timestamp" \
  -H "X-Gridline-Nonce: $nonce" \
  -H "X-Gridline-Signature: $signature" \
  --data-binary "@$body_file"
