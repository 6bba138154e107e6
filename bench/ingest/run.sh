#!/usr/bin/env bash
# bench/ingest/run.sh: one upload's ingest speed of the real `cis490 serve`, side by
# side with a hash-only sink (bench/ingest/sink) and restic's rest-server, all three
# fed by the same client (curl -T, HTTP/1.1 over loopback, plain http) from the same
# body on tmpfs, interleaved round by round; then N uploads at once.
#
#   bash bench/ingest/run.sh [-n 5] [-s 512M] [-c 4] [-d /var/tmp] [-b BIN]
#                            [-x NAME=BIN]... [-r REST_SERVER_GIT_DIR] [-w 2]
#
#   -n  rounds (each: every server once with 1 upload, then once with -c at once)
#   -s  body size (head -c syntax; 512M = 512 MiB)
#   -c  uploads at once in the concurrent phase (0: skip it)
#   -d  where the servers' data folders go (a real disk, not tmpfs; its file system
#       is printed)
#   -b  the cis490 binary (default: built from this tree)
#   -x  another cis490 binary measured as another server named NAME (before/after
#       comparisons in one run); repeatable
#   -r  restic/rest-server's git directory (default: the fetch tool's mirror); built
#       once into /var/tmp/cis490-tools/rest-server-<commit>
#   -w  seconds to wait after `sync` before each measurement
#   -q  ratios are also given over the rounds where neither measurement had more
#       than this many cores (0.25) of "others"
#   -S  FILE: only summarise the per-measurement lines of an earlier run
#       (INGEST_RESULTS=FILE: where a run keeps them; /tmp/ingest-results.tsv)
#
# Per measurement it prints MB/s (10^6 bytes), the server's CPU seconds per GB
# (utime+stime from /proc/<pid>/stat), curl's CPU s/GB (/usr/bin/time), "others"
# (cores kept busy meanwhile by everything else on the machine, from /proc/stat), and
# the server's peak RSS so far (VmHWM: in the concurrent phase's column, the peak over
# the whole run). The summary gives medians (min–max) and the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=5 size=512M conc=4 datadir=/var/tmp bin='' settle=2 quiet_max=0.25 only_summary=''
keep=${INGEST_RESULTS:-/tmp/ingest-results.tsv}
restsrc=${REST_SERVER_SRC:-/work/.mirror/restic+rest-server/repo}
extra=()
while getopts n:s:c:d:b:x:r:w:q:S: opt; do
  case $opt in
  n) runs=$OPTARG ;;
  s) size=$OPTARG ;;
  c) conc=$OPTARG ;;
  d) datadir=$OPTARG ;;
  b) bin=$OPTARG ;;
  x) extra+=("$OPTARG") ;;
  r) restsrc=$OPTARG ;;
  w) settle=$OPTARG ;;
  q) quiet_max=$OPTARG ;;
  S) only_summary=$OPTARG ;;
  *) sed -n '2,26p' "$0" >&2; exit 2 ;;
  esac
done
# --- summary ----------------------------------------------------------------------
# summ [FORMAT] [count]: median (min–max) of the numbers on stdin; "count" adds how many.
summ() { sort -g | awk -v f="${1:-%.3f}" -v count="${2:-}" '{a[NR] = $1} END{
  if (NR == 0) { print "–"; exit }
  m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
  printf f " (" f "–" f "%s)\n", m, a[1], a[NR], count ? ", " NR " rounds" : "" }'; }
ratio() { # A KA B KB COLUMN [Q]: per round, A's column over B's; with Q, only the
  # rounds where neither measurement had others above Q cores
  awk -F'\t' -v a="$1" -v ka="$2" -v b="$3" -v kb="$4" -v c="$5" -v q="${6:-1e9}" '
    $2 == a && $3 == ka {p[$1] = $c; po[$1] = $7} $2 == b && $3 == kb {r[$1] = $c; ro[$1] = $7}
    END{for (i in p) if (i in r && r[i] > 0 && po[i] <= q && ro[i] <= q) print p[i] / r[i]}' "$results" |
    summ %.3f "${6:+count}"
}
col() { awk -F'\t' -v n="$1" -v k="$2" -v c="$3" '$2 == n && $3 == k {print $c}' "$results"; }

summary() {
  local n name k q=$quiet_max
  n=$(awk -F'\t' '{print $1}' "$results" | sort -u | wc -l)
  k=$(awk -F'\t' '$3 > 1 {print $3; exit}' "$results")
  mapfile -t names < <(awk -F'\t' '!seen[$2]++ {print $2}' "$results")
  echo
  echo "medians (min–max) over $n rounds; ratios are taken within each round"
  echo "| server | 1 upload, MB/s | CPU s/GB | client CPU s/GB | others, cores | ${k:-N} at once, MB/s | CPU s/GB | peak RSS, MB |"
  echo '|---|---|---|---|---|---|---|---|'
  for name in "${names[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(col "$name" 1 4 | summ %.0f)" \
      "$(col "$name" 1 5 | summ %.2f)" "$(col "$name" 1 6 | summ %.2f)" "$(col "$name" 1 7 | summ %.2f)" \
      "$(col "$name" "${k:-0}" 4 | summ %.0f)" "$(col "$name" "${k:-0}" 5 | summ %.2f)" "$(col "$name" "${k:-0}" 8 | summ %.1f)"
  done
  echo
  echo "| ratio, per round | all $n rounds | rounds where both had others ≤ $q cores |"
  echo '|---|---|---|'
  for name in "${names[@]}"; do
    case $name in sink | rest) continue ;; esac
    echo "| $name / sink, 1 upload | $(ratio "$name" 1 sink 1 4) | $(ratio "$name" 1 sink 1 4 "$q") |"
    echo "| $name / rest-server, 1 upload | $(ratio "$name" 1 rest 1 4) | $(ratio "$name" 1 rest 1 4 "$q") |"
    echo "| $name CPU s/GB / sink's | $(ratio "$name" 1 sink 1 5) | $(ratio "$name" 1 sink 1 5 "$q") |"
    [ -n "$k" ] && echo "| $name $k at once / 1 upload | $(ratio "$name" "$k" "$name" 1 4) | – |"
    [ "$name" != receiver ] && echo "| receiver / $name, 1 upload | $(ratio receiver 1 "$name" 1 4) | $(ratio receiver 1 "$name" 1 4 "$q") |"
  done
  echo "| rest-server / sink, 1 upload | $(ratio rest 1 sink 1 4) | $(ratio rest 1 sink 1 4 "$q") |"
  echo "| rest-server CPU s/GB / sink's | $(ratio rest 1 sink 1 5) | $(ratio rest 1 sink 1 5 "$q") |"
}

if [ -n "$only_summary" ]; then
  results=$only_summary
  summary
  exit
fi

for tool in curl ss /usr/bin/time git go sha256sum; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian: curl, iproute2, time, git; Go)" >&2; exit 1; }
done

tmpfs=/dev/shm
[ "$(stat -f -c %T "$tmpfs" 2>/dev/null)" = tmpfs ] || { echo "$tmpfs is not a tmpfs: the body must come from memory" >&2; exit 1; }
fstype=$(findmnt -no FSTYPE -T "$datadir")
[ "$fstype" != tmpfs ] || { echo "-d $datadir is a tmpfs: give a folder on a real disk" >&2; exit 1; }

work=$(mktemp -d "$datadir/cis490-ingest-XXXXXX")
bodydir=$(mktemp -d "$tmpfs/cis490-ingest-XXXXXX")
pids=()
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -d "$work" ]; then
    mkdir -p "$work.logs" && cp "$work"/*.log "$work.logs/" 2>/dev/null &&
      echo "the servers' logs are in $work.logs" >&2
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$bodydir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries ---------------------------------------------------------------------
if [ -z "$bin" ]; then
  bin=$work/cis490
  go build -o "$bin" ./cmd/cis490
fi
go build -o "$work/sink" ./bench/ingest/sink
restcommit=$(git -C "$restsrc" rev-parse HEAD) || { echo "no rest-server git directory at $restsrc (fetch github:restic/rest-server, or -r DIR)" >&2; exit 1; }
rest=/var/tmp/cis490-tools/rest-server-${restcommit:0:12}
if [ ! -x "$rest" ]; then
  mkdir -p /var/tmp/cis490-tools
  git clone -q "$restsrc" "$work/rest-src"
  git -C "$work/rest-src" checkout -q "$restcommit"
  (cd "$work/rest-src" && GOFLAGS=-mod=mod go build -o "$rest.new" ./cmd/rest-server) && mv "$rest.new" "$rest"
  rm -rf "$work/rest-src"
fi

# --- the body ---------------------------------------------------------------------
body=$bodydir/body.tar
head -c "$size" /dev/urandom >"$body"
bytes=$(stat -c %s "$body")
sha=$(sha256sum "$body" | cut -d' ' -f1)

# --- servers ----------------------------------------------------------------------
declare -A addr pid kind
names=()
printf '' >"$work/empty.toml"

start_cis490() { # NAME BIN
  local name=$1 b=$2 log=$work/$1.log a=
  env -i PATH="$PATH" HOME="$work" XDG_CONFIG_HOME="$work" XDG_STATE_HOME="$work" \
    "$b" serve --config "$work/empty.toml" --log-format json --listen 127.0.0.1:0 \
    --data-dir "$work/data-$name" 2>"$log" &
  pid[$name]=$! kind[$name]=cis490
  pids+=($!)
  for _ in $(seq 100); do
    a=$(sed -n 's/.*"addr":"\([^"]*\)".*"receiver listening".*/\1/p; s/.*"receiver listening".*"addr":"\([^"]*\)".*/\1/p' "$log" | head -1)
    [ -n "$a" ] && break
    sleep 0.1
  done
  [ -n "$a" ] || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
  addr[$name]=$a
  names+=("$name")
}

start_cis490 receiver "$bin"
for x in "${extra[@]}"; do start_cis490 "${x%%=*}" "${x#*=}"; done

"$work/sink" -listen 127.0.0.1:0 >"$work/sink.log" 2>&1 &
pid[sink]=$! kind[sink]=sink
pids+=($!)
for _ in $(seq 100); do grep -q '^listening' "$work/sink.log" && break; sleep 0.1; done
addr[sink]=$(sed -n 's/^listening //p' "$work/sink.log")
[ -n "${addr[sink]}" ] || { echo "the sink did not start:" >&2; cat "$work/sink.log" >&2; exit 1; }
names+=(sink)

mkdir -p "$work/data-rest"
"$rest" --no-auth --path "$work/data-rest" --listen 127.0.0.1:0 >"$work/rest.log" 2>&1 &
pid[rest]=$! kind[rest]=rest
pids+=($!)
for _ in $(seq 100); do
  addr[rest]=$(ss -Hltnp 2>/dev/null | awk -v p="pid=${pid[rest]}," 'index($0, p) {print $4; exit}')
  [ -n "${addr[rest]}" ] && break
  sleep 0.1
done
[ -n "${addr[rest]}" ] || { echo "rest-server did not start:" >&2; cat "$work/rest.log" >&2; exit 1; }
for i in $(seq "$(( conc > 1 ? conc : 1 ))"); do
  curl -fsS -X POST "http://${addr[rest]}/r$i/?create=true" >/dev/null
done
names+=(rest)

# --- measuring --------------------------------------------------------------------
ticks=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
now() { date +%s.%N; }

# put NAME I TAG: one upload with curl; prints "status seconds".
put() {
  local name=$1 i=$2 tag=$3 url
  local hdr=(-H 'Expect:' -H 'Content-Type: application/octet-stream')
  case ${kind[$name]} in
  cis490) url=http://${addr[$name]}/v1/episodes
    hdr+=(-H "X-Cis490-Host: ingest-$tag-$i" -H "X-Cis490-Episode: body.tar" -H "X-Cis490-Sha256: $sha") ;;
  sink) url=http://${addr[$name]}/upload; hdr+=(-H "X-Cis490-Sha256: $sha") ;;
  rest) url=http://${addr[$name]}/r$i/data/$sha; hdr+=(-X POST) ;; # restic saves blobs with POST
  esac
  /usr/bin/time -f '%U %S' -o "$work/time-$i" \
    curl -sS -o "$work/answer-$i" -w '%{http_code} %{time_total}\n' "${hdr[@]}" -T "$body" "$url"
}

# forget NAME: removes what the last uploads stored.
forget() {
  case ${kind[$1]} in
  cis490) rm -f "$work/data-$1/episodes/"ingest-*/* ;; # not the folders: the receiver knows they exist
  rest) rm -f "$work/data-rest"/r*/data/*/"$sha" ;;
  esac
}

# measure NAME K ROUND: K uploads at once; appends a line to results.tsv.
measure() {
  local name=$1 k=$2 round=$3 p=${pid[$1]} want=201 i
  [ "${kind[$name]}" = rest ] && want=200
  sync
  sleep "$settle"
  local c0 b0 t0 c1 b1 t1
  c0=$(cpu_ticks "$p") b0=$(busy_ticks) t0=$(now)
  local jobs=()
  for i in $(seq "$k"); do put "$name" "$i" "$round-$k" >"$work/out-$i" & jobs+=($!); done
  for i in "${jobs[@]}"; do wait "$i" || true; done
  t1=$(now) c1=$(cpu_ticks "$p") b1=$(busy_ticks)
  local hwm status secs client=0 maxsecs=0
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$p/status")
  for i in $(seq "$k"); do
    read -r status secs <"$work/out-$i" || true
    if [ "$status" != "$want" ]; then
      echo "$name, round $round, upload $i: HTTP $status, want $want:" >&2
      cat "$work/answer-$i" >&2
      exit 1
    fi
    if [ "${kind[$name]}" != rest ] && ! grep -q "\"sha256\":\"$sha\"" "$work/answer-$i"; then
      echo "$name, round $round, upload $i: answer without the body's sha256:" >&2
      cat "$work/answer-$i" >&2
      exit 1
    fi
    maxsecs=$(awk -v a="$maxsecs" -v b="$secs" 'BEGIN{print (b > a) ? b : a}')
    client=$(awk -v c="$client" -v u="$(cat "$work/time-$i")" 'BEGIN{split(u, x, " "); print c + x[1] + x[2]}')
  done
  forget "$name"
  # One upload: curl's own time (no process start); several: the wall time to the last.
  [ "$k" = 1 ] && wall=$maxsecs || wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
  awk -v n="$name" -v k="$k" -v r="$round" -v B="$bytes" -v w="$wall" -v c0="$c0" -v c1="$c1" \
    -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v tk="$ticks" -v cl="$client" -v hwm="$hwm" 'BEGIN{
      gb = k * B / 1e9; srv = (c1 - c0) / tk
      others = ((b1 - b0) / tk - srv - cl) / (t1 - t0); if (others < 0) others = 0
      printf "%s\t%s\t%d\t%.1f\t%.3f\t%.3f\t%.2f\t%.1f\n", r, n, k, gb * 1000 / w, srv / gb, cl / gb, others, hwm / 1000
    }' | tee -a "$work/results.tsv" | awk -F'\t' '{
      printf "round %-3s %-10s %d at once  %7.1f MB/s  server %.3f CPU s/GB  client %.3f  others %.2f cores  peak RSS %.1f MB\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
}

echo "data folders in $work ($fstype on $(df --output=source "$datadir" | tail -1)); body $bytes bytes on $tmpfs; sha256 $sha"
echo "receiver $bin ($("$bin" version 2>/dev/null | head -1)); rest-server ${restcommit:0:12}; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for name in "${names[@]}"; do echo "  $name on ${addr[$name]} (pid ${pid[$name]})"; done

# A warm-up upload each, not reported: first connections, first page faults.
for name in "${names[@]}"; do put "$name" 1 warm >/dev/null; forget "$name"; done

# Round r starts at server r mod N, so no server always follows the same one.
n=${#names[@]}
for r in $(seq "$runs"); do
  for j in $(seq 0 $((n - 1))); do measure "${names[$(( (r - 1 + j) % n ))]}" 1 "$r"; done
  if [ "$conc" -gt 1 ]; then
    for j in $(seq 0 $((n - 1))); do measure "${names[$(( (r - 1 + j) % n ))]}" "$conc" "$r"; done
  fi
done
for name in "${names[@]}"; do
  if ! kill -0 "${pid[$name]}" 2>/dev/null; then echo "$name died; its log:" >&2; cat "$work/$name.log" >&2; exit 1; fi
done
if grep -h '"level":"error"' "$work"/*.log 2>/dev/null | head -5 | grep -q .; then
  echo "a receiver logged errors:" >&2; grep -h '"level":"error"' "$work"/*.log | head -5 >&2; exit 1
fi

cp "$work/results.tsv" "$keep"
results=$keep
summary
echo
echo "per-measurement lines: $keep (round, server, at once, MB/s, server CPU s/GB, client CPU s/GB, others, peak RSS MB); bash $0 -S $keep summarises it again"
