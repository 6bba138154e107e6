#!/usr/bin/env bash
# cis490 update on loopback (issue 13): a real receiver in open mode with
# serve.update.public_keys, releases signed by `cis490 release sign` and sent by
# `cis490 release publish --remote`, and a lab host whose binary is a temp copy of the
# old build. Each update run is the whole command: the target, the signature, the
# download (hashed as it arrives), fsync, the smoke test, doctor before and after, the
# rename, state.json. Binaries are padded with zeros past their end (the ELF loader
# ignores them) to 15 MB and 60 MB, so peak RSS can be compared across sizes.
# Usage: bash bench/update.sh [runs]   (default 9; prints median, min and max)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
work=$(mktemp -d /tmp/cis490-bench-update-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
B=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
C=cccccccccccccccccccccccccccccccccccccccc
build() { go build -trimpath -ldflags "-s -w -X github.com/cis490/cis490/internal/buildinfo.commit=$1 -X github.com/cis490/cis490/internal/buildinfo.version=bench" -o "$2" ./cmd/cis490; }
build $A "$work/old"
build $B "$work/new15" && truncate -s $((15 << 20)) "$work/new15"
build $C "$work/new60" && truncate -s $((60 << 20)) "$work/new60"
cis() { "$work/old" "$@"; }
export HOME=$work XDG_CONFIG_HOME=$work/.config # after go build, whose module cache is under HOME

pub=$(cis release keygen --out "$work/release.key" --unencrypted 2>/dev/null)
cat >"$work/pi.toml" <<TOML
[serve]
listen = "127.0.0.1:0"
data_dir = "$work/data"
[serve.update]
public_keys = "$pub"
TOML
"$work/old" --config "$work/pi.toml" serve --log-format json 2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"receiver listening".*/\1/p' "$work/serve.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
printf '[receiver]\nurl = "http://%s"\n' "$addr" >"$work/laptop.toml"

# dist COMMIT BINARY: goreleaser's layout around one linux/amd64 binary.
dist() {
  local d=$work/dist-$1
  mkdir -p "$d/cis490_linux_amd64_v1"
  cp "$2" "$d/cis490_linux_amd64_v1/cis490"
  printf '{"project_name":"cis490","version":"bench","commit":"%s"}' "$1" >"$d/metadata.json"
  printf '[{"name":"cis490","path":"dist/release/cis490_linux_amd64_v1/cis490","type":"Binary","goos":"linux","goarch":"amd64"}]' >"$d/artifacts.json"
  cis release sign "$d" --key "$work/release.key" --seq "$3" >/dev/null
  echo "$d"
}
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
summary() { sort -n | awk -v what="$1" -v unit="$2" '{v[NR]=$1} END {
  m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2
  printf "%s, %d runs: median %s %s, min %s, max %s\n", what, NR, m, unit, v[1], v[NR]}'; }

d15=$(dist $B "$work/new15" 10)
d60=$(dist $C "$work/new60" 11)
echo "publish --remote, 15 MB: $(ms cis --config "$work/laptop.toml" release publish "$d15" --remote) ms (signing: $(ms cis release sign "$d15" --key "$work/release.key" --seq 10) ms)"
echo "publish --remote, 60 MB: $(ms cis --config "$work/laptop.toml" release publish "$d60" --remote) ms"

mkdir -p "$work/host/bin" "$work/host/spool/outbox"
cat >"$work/lab.toml" <<TOML
host = "lab-07"
[receiver]
url = "http://$addr"
[ship]
spool_dir = "$work/host/spool"
[update]
public_keys = "$pub"
state_dir = "$work/host/state"
TOML
# one COMMIT: reset the host to the old binary, update to COMMIT; prints "ms rss_kB".
one() {
  rm -rf "$work/host/state"
  cp "$work/old" "$work/host/bin/cis490"
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$work/host/bin/cis490" --config "$work/lab.toml" --log-format json update --to "$1" >/dev/null 2>"$work/update.log" ||
    { cat "$work/update.log"; exit 1; }
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(cat "$work/rss")"
}
for size in 15:$B 60:$C; do
  for _ in $(seq "$runs"); do one "${size#*:}"; done >"$work/runs"
  awk '{print $1}' "$work/runs" | summary "update to a ${size%%:*} MB binary: wall" ms
  awk '{print $2}' "$work/runs" | summary "update to a ${size%%:*} MB binary: peak RSS of cis490 update" kB
done

# Already on the target: the host runs C, which the receiver names (highest seq).
cp "$work/new60" "$work/host/bin/cis490"
# CPU from getrusage (time(1) counts in 10 ms steps).
for _ in $(seq "$runs"); do
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.1f" % ((r.ru_utime + r.ru_stime) * 1000))' "$work/host/bin/cis490" --config "$work/lab.toml" update
done | summary "no-op update (already on the target): user+sys CPU" ms
for _ in $(seq "$runs"); do
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.1f" % ((r.ru_utime + r.ru_stime) * 1000))' "$work/host/bin/cis490" --config "$work/lab.toml" version
done | summary "baseline: cis490 version (start and exit): user+sys CPU" ms
