#!/usr/bin/env bash
# bench/s3/run.sh: episode uploads to `cis490 serve` with serve.storage.backend fs
# against s3 (versitygw, posix backend, on the same disk), same client (curl -T), side
# by side in one run (issue 15). s3 is the default (one PutObject a body, checked by
# the store's SHA-256); s3mp is single_put_max = 0 (multipart uploads of 8 MiB parts).
# Usage:
#
#   go build -o /tmp/cis490-s3-bench ./cmd/cis490
#   bash bench/s3/run.sh /tmp/cis490-s3-bench [size_mib=512] [runs=3]
#
# Per run and backend: one upload, then 4 at once (different content, hosts lab-01…04),
# each against a fresh receiver, whose peak RSS (VmHWM) is read before it stops. Also
# the staging alternative (receive into tmp/ as fs does, then one PutObject of that
# file): the fs upload's time plus curl's signed PUT of the same file to versitygw.
# Prints every measurement and the medians; needs curl, jq, versitygw
# ($CIS490_VERSITYGW or /var/tmp/cis490-tools/bin/versitygw, see .ci/install-versitygw).
set -euo pipefail

bin=${1:?usage: bench/s3/run.sh /path/to/cis490 [size_mib] [runs]}
size_mib=${2:-512}
runs=${3:-3}
vgw=${CIS490_VERSITYGW:-/var/tmp/cis490-tools/bin/versitygw}
ak=benchkey
sk=bench-secret-$RANDOM$RANDOM
region=us-east-1
bucket=bench

work=$(mktemp -d /var/tmp/cis490-bench-s3.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; } # kB
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listens on $1" >&2; return 1; }

echo "== bodies: 4 x ${size_mib} MiB of /dev/urandom in $work"
declare -a sha
for i in 1 2 3 4; do
  head -c "${size_mib}M" /dev/urandom >"$work/body$i"
  sha[i]=$(sha256sum "$work/body$i" | cut -d' ' -f1)
done
bytes=$(stat -c %s "$work/body1")

echo "== versitygw posix ${VGW_POSIX_FLAGS:-} in $work/vgw"
mkdir -p "$work/vgw"
vport=$(port)
# $VGW_POSIX_FLAGS: more flags of versitygw's posix backend, e.g. --data-integrity-etag
# (ETags from the checksum sent, instead of an MD5 of every byte).
# shellcheck disable=SC2086
"$vgw" --access "$ak" --secret "$sk" --port "127.0.0.1:$vport" --quiet --keep-alive posix ${VGW_POSIX_FLAGS:-} "$work/vgw" >"$work/vgw.log" 2>&1 &
vpid=$!
pids+=("$vpid")
wait_port "$vport"
# curl 7.88 signs, but sends no x-amz-content-sha256 of its own: the body goes unsigned.
s3=(--aws-sigv4 "aws:amz:$region:s3" --user "$ak:$sk" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
curl -sSf "${s3[@]}" -X PUT "http://127.0.0.1:$vport/$bucket" -o /dev/null
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ak" "$sk" >"$work/creds"
chmod 600 "$work/creds"

# serve MODE RUN: starts a receiver, sets rport and rpid.
serve() {
  local mode=$1 run=$2 cfg="$work/$1-$2.toml"
  rport=$(port)
  rm -rf "$work/data"
  printf '[serve]\nlisten = "127.0.0.1:%s"\ndata_dir = "%s"\nmin_free_bytes = "1GiB"\n' "$rport" "$work/data" >"$cfg"
  if [ "$mode" != fs ]; then
    printf '[serve.storage]\nbackend = "s3"\nendpoint = "http://127.0.0.1:%s"\nbucket = "%s"\nprefix = "run-%s"\ncredentials_file = "%s"\n' \
      "$vport" "$bucket" "$run" "$work/creds" >>"$cfg"
  fi
  [ "$mode" != s3mp ] || echo 'single_put_max = 0' >>"$cfg"
  env -i PATH="$PATH" HOME="$work" "$bin" --config "$cfg" serve 2>>"$work/serve.log" &
  rpid=$!
  wait_port "$rport"
}

stop() {
  kill -TERM "$rpid"
  wait "$rpid" || { echo "receiver exited with $?" >&2; exit 1; }
}

# upload MODE I: one PUT of body I with curl -T, to the receiver or (direct) straight
# to versitygw as one PutObject; prints its seconds.
upload() {
  local mode=$1 i=$2 out
  if [ "$mode" = direct ]; then
    out=$(curl -sS -o "$work/answer$i" -w '%{http_code} %{time_total}' "${s3[@]}" -T "$work/body$i" -H 'Expect:' \
      "http://127.0.0.1:$vport/$bucket/direct/lab-0$i/${sha[$i]}")
    [ "${out%% *}" = 200 ] || { echo "direct put $i: $out $(cat "$work/answer$i")" >&2; exit 1; }
  else
    out=$(curl -sS -o "$work/answer$i" -w '%{http_code} %{time_total}' -T "$work/body$i" -H 'Expect:' \
      -H "X-Cis490-Host: lab-0$i" -H "X-Cis490-Episode: ep-$i.tar" -H "X-Cis490-Sha256: ${sha[$i]}" \
      "http://127.0.0.1:$rport/v1/episodes")
    [ "${out%% *}" = 201 ] || { echo "upload $i: $out $(cat "$work/answer$i")" >&2; exit 1; }
  fi
  echo "${out#* }"
}

clear_store() {
  rm -rf "$work/data" "$work/vgw/$bucket/"* "$work/vgw/$bucket/".[!.]* 2>/dev/null || true
  sync
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
tck=$(getconf CLK_TCK)

# phase MODE RUN N: N uploads at once against a fresh receiver (none for direct);
# appends "run mode n seconds rss_kB receiver_cpu_s store_cpu_s" to results.
phase() {
  local mode=$1 run=$2 n=$3 t0 t rss=0 rc0=0 rc1=0 vc0 vc1 i
  clear_store
  [ "$mode" = direct ] || serve "$mode" "$run"
  [ "$mode" = direct ] || rc0=$(cpu "$rpid")
  vc0=$(cpu "$vpid")
  t0=$(now)
  if [ "$n" = 1 ]; then
    upload "$mode" 1 >/dev/null
  else
    local up=()
    for i in $(seq "$n"); do upload "$mode" "$i" >/dev/null & up+=($!); done
    for p in "${up[@]}"; do wait "$p" || { echo "an upload of $n failed" >&2; exit 1; }; done
  fi
  t=$(echo "$(now) - $t0" | bc -l)
  vc1=$(cpu "$vpid")
  if [ "$mode" != direct ]; then
    rc1=$(cpu "$rpid")
    rss=$(hwm "$rpid")
    stop
  fi
  if [ "$mode" = fs ] && [ "$n" = 1 ]; then
    # the staging alternative: the file fs just stored, then PUT as one object
    local t1 code
    t1=$(now)
    code=$(curl -sS -o /dev/null -w '%{http_code}' "${s3[@]}" -T "$work/data/episodes/lab-01/${sha[1]}" -H 'Expect:' \
      "http://127.0.0.1:$vport/$bucket/staged/${sha[1]}")
    [ "$code" = 200 ] || { echo "staged PutObject: $code" >&2; exit 1; }
    echo "$run staging 1 $(echo "$t + $(now) - $t1" | bc -l) 0 0 0" >>"$results"
  fi
  echo "$run $mode $n $t $rss $(echo "($rc1 - $rc0) / $tck" | bc -l) $(echo "($vc1 - $vc0) / $tck" | bc -l)" >>"$results"
  printf 'run %s %-6s %s at once %6.2f s %7.1f MB/s  receiver rss %5.1f MB, cpu %5.2f s/GB  store cpu %5.2f s/GB\n' "$run" "$mode" "$n" "$t" \
    "$(echo "$n * $bytes / $t / 1000000" | bc -l)" "$(echo "$rss / 1000" | bc -l)" \
    "$(echo "($rc1 - $rc0) / $tck / ($n * $bytes / 1000000000)" | bc -l)" "$(echo "($vc1 - $vc0) / $tck / ($n * $bytes / 1000000000)" | bc -l)"
}

results="$work/results"
: >"$results"
for run in $(seq "$runs"); do
  for mode in fs s3 s3mp direct; do
    phase "$mode" "$run" 1
    phase "$mode" "$run" 4
  done
done
vgw_rss=$(hwm "$vpid")

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { awk -v mode="$1" -v n="$2" -v col="$3" '$2==mode && $3==n {print $col}' "$results" | median; }
mbs() { echo "$2 * $bytes / $(m "$1" "$2" 4) / 1000000" | bc -l; }
ratio() { echo "$(m "$2" "$3" 4) / $(m "$1" "$3" 4)" | bc -l; } # time of $2 / time of $1: $1's speed over $2's
echo
echo "== medians of $runs runs, ${size_mib} MiB each (MB = 10^6 bytes); direct: curl -T straight to versitygw"
printf '%-28s %8s %8s %8s %8s | %7s %7s %9s\n' "" fs s3 s3mp direct s3/fs s3mp/fs s3/direct
for n in 1 4; do
  printf '%-28s %8.1f %8.1f %8.1f %8.1f | %7.2f %7.2f %9.2f\n' "$n at once, MB/s" "$(mbs fs $n)" "$(mbs s3 $n)" "$(mbs s3mp $n)" "$(mbs direct $n)" \
    "$(ratio s3 fs $n)" "$(ratio s3mp fs $n)" "$(ratio s3 direct $n)"
done
for n in 1 4; do
  printf '%-28s %8.1f %8.1f %8.1f\n' "receiver peak RSS $n, MB" "$(echo "$(m fs $n 5)/1000" | bc -l)" "$(echo "$(m s3 $n 5)/1000" | bc -l)" "$(echo "$(m s3mp $n 5)/1000" | bc -l)"
done
for n in 1 4; do
  gb=$(echo "$n * $bytes / 1000000000" | bc -l)
  printf '%-28s %8.2f %8.2f %8.2f %8s\n' "receiver cpu s/GB, $n" "$(echo "$(m fs $n 6)/$gb" | bc -l)" "$(echo "$(m s3 $n 6)/$gb" | bc -l)" "$(echo "$(m s3mp $n 6)/$gb" | bc -l)" "-"
  printf '%-28s %8.2f %8.2f %8.2f %8.2f\n' "store cpu s/GB, $n" "$(echo "$(m fs $n 7)/$gb" | bc -l)" "$(echo "$(m s3 $n 7)/$gb" | bc -l)" "$(echo "$(m s3mp $n 7)/$gb" | bc -l)" "$(echo "$(m direct $n 7)/$gb" | bc -l)"
done
printf 'staging alternative (fs upload, then one PutObject of the stored file), 1 upload: %.1f MB/s, %.2f times the time of s3 streamed\n' \
  "$(mbs staging 1)" "$(ratio s3 staging 1)"
printf 'versitygw peak RSS %.1f MB\n' "$(echo "$vgw_rss/1000" | bc -l)"
ok() { [ "$(echo "$1" | bc -l)" = 1 ] && echo ok || echo MISS; }
printf 'targets: s3/fs >= 0.8 (1: %s, 4: %s); receiver peak RSS with 4 at once < 64 MB (%s)\n' \
  "$(ok "$(ratio s3 fs 1) >= 0.8")" "$(ok "$(ratio s3 fs 4) >= 0.8")" "$(ok "$(m s3 4 5) < 64000 && $(m s3mp 4 5) < 64000")"
