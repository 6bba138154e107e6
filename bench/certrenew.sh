#!/usr/bin/env bash
# Wall time of `cis490 cert renew` on loopback (issue 12): a real receiver made the
# lab's CA by `cis490 ca init`, with mTLS; one bootstrap (no certificate yet: the
# token alone), then renewals with --force (the current certificate and the token).
# Each run is the whole command: start, a new P-256 key, the CSR's POST, writing the
# staged pair, the handshake and GET /v1/whoami with it, the rename into place.
# Usage: bash bench/certrenew.sh [runs]   (default 15; prints the median, min and max)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
work=$(mktemp -d /tmp/cis490-bench-certrenew-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/cis490" ./cmd/cis490
export HOME=$work XDG_CONFIG_HOME=$work/.config
cis() { "$work/cis490" --config "$work/pi.toml" "$@"; }

cat >"$work/pi.toml" <<TOML
host = "pi"
[serve]
listen = "127.0.0.1:0"
data_dir = "$work/data"
tokens_file = "$work/tokens.toml"
TOML
cis ca init --name localhost --name 127.0.0.1 >/dev/null
cat >>"$work/pi.toml" <<TOML
[serve.tls]
cert_file = "$work/data/ca/server.pem"
key_file = "$work/data/ca/server.pem"
client_ca_file = "$work/data/ca/ca.pem"
TOML
cis token new --host lab-07 >"$work/lab-07.token" 2>/dev/null
cis serve --log-format json 2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"receiver listening".*/\1/p' "$work/serve.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
cat >"$work/lab.toml" <<TOML
host = "lab-07"
[receiver]
url = "https://$addr"
ca_file = "$work/data/ca/ca.pem"
cert_file = "$work/client.pem"
key_file = "$work/client.pem"
token_file = "$work/lab-07.token"
TOML

ms() { local t0 t1; t0=$(date +%s%N); "$work/cis490" --config "$work/lab.toml" "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
summary() { sort -n | awk -v what="$1" '{v[NR]=$1} END {
  m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2
  printf "%s, %d runs: median %s ms, min %s ms, max %s ms\n", what, NR, m, v[1], v[NR]}'; }
echo "bootstrap (token alone): $(ms cert renew) ms"
for _ in $(seq "$runs"); do ms cert renew --force; done | summary "renewal (certificate and token)"
for _ in $(seq "$runs"); do ms version; done | summary "baseline: cis490 version (start and exit)"
