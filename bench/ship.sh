#!/usr/bin/env bash
# End-to-end shipping benchmarks (issue 3), against a real receiver on loopback:
#   1. one 512 MiB file, and 8 files of 64 MiB, as a ratio of Go's SHA-256 speed over
#      the same files measured in the same run (the client hashes before it sends);
#   2. 1000 files of 10 KB: files per second, against a curl loop doing the same PUTs
#      (sha256sum + curl per file, a new connection each).
# Usage: bash bench/ship.sh [runs]   (default 3; prints one line per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)"; exit 1; }
work=$(mktemp -d /tmp/cis490-bench-ship-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/cis490" ./cmd/cis490
go build -o "$work/sha256file" ./bench/sha256file

"$work/cis490" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log-format json \
  2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"receiver listening".*/\1/p' "$work/serve.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
url="http://$addr"

# ship_dir DIR HOST -> seconds taken by one `cis490 ship` of DIR's files as HOST. Each
# call needs its own HOST: the receiver answers a host's repeat "duplicate" unread.
ship_dir() {
  local src=$1 host=$2 spool="$work/spool-$2"
  mkdir -p "$spool/outbox"
  cp -l "$src"/* "$spool/outbox/"
  cat >"$work/host.toml" <<TOML
host = "$host"
[receiver]
url = "$url"
[ship]
spool_dir = "$spool"
TOML
  local t0 t1
  t0=$(date +%s.%N)
  "$work/cis490" --config "$work/host.toml" --log-level warn ship >/dev/null
  t1=$(date +%s.%N)
  rm -rf "$spool"
  echo "$t1 - $t0" | bc -l
}

mkdir -p "$work/one" "$work/eight" "$work/small"
head -c 512M /dev/urandom >"$work/one/big.tar"
for i in $(seq 8); do head -c 64M /dev/urandom >"$work/eight/part-$i.tar"; done
for i in $(seq -w 1000); do head -c 10000 /dev/urandom >"$work/small/ep-$i.tar"; done

printf '%-28s %10s %10s %8s\n' measurement MB/s sha-MB/s ratio
for r in $(seq "$runs"); do
  for set in one eight; do
    sha=$("$work/sha256file" "$work/$set"/*)
    secs=$(ship_dir "$work/$set" "ship-$set-$r")
    mbs=$(echo "536.870912 / $secs" | bc -l)
    printf '%-28s %10.0f %10.0f %8.2f\n' "ship $set ($r)" "$mbs" "$sha" "$(echo "$mbs / $sha" | bc -l)"
  done
  secs=$(ship_dir "$work/small" "ship-small-$r")
  ship_fps=$(echo "1000 / $secs" | bc -l)
  t0=$(date +%s.%N)
  for f in "$work"/small/*; do
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    curl -sS -o /dev/null -f -X PUT --data-binary @"$f" -H "X-Cis490-Host: curl-$r" \
      -H "X-Cis490-Episode: $(basename "$f")" -H "X-Cis490-Sha256: $sum" "$url/v1/episodes"
  done
  t1=$(date +%s.%N)
  curl_fps=$(echo "1000 / ($t1 - $t0)" | bc -l)
  printf '%-28s %10.0f files/s  curl loop %6.0f files/s  ratio %5.2f\n' "ship 1000x10KB ($r)" "$ship_fps" "$curl_fps" \
    "$(echo "$ship_fps / $curl_fps" | bc -l)"
done
