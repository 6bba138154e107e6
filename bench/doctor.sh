#!/usr/bin/env bash
# Wall time of `cis490 doctor` against a healthy receiver on loopback (target: < 1 s).
# Uses hyperfine when installed (apt-get install hyperfine), else 20 timed runs.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/cis490-bench-doctor-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/cis490" ./cmd/cis490
"$work/cis490" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log-format json 2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"receiver listening".*/\1/p' "$work/serve.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
mkdir -p "$work/spool"/{outbox,sent,rejected}
cat >"$work/host.toml" <<TOML
host = "bench-doctor"
[receiver]
url = "http://$addr"
[ship]
spool_dir = "$work/spool"
TOML
cmd="$work/cis490 --config $work/host.toml doctor --json"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs 50 "$cmd"
else
  for _ in $(seq 20); do
    t0=$(date +%s%N); $cmd >/dev/null || true; t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | sort -n | awk '{a[NR]=$1} END {print "median " a[int((NR+1)/2)] " ms over " NR " runs"}'
fi
