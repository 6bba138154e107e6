#!/usr/bin/env bash
# Heartbeat load on a real `cis490 serve` (open mode, loopback), read against GET
# /healthz measured in the same run: requests/s, the share of answers with the right
# status, and the receiver's CPU time per 1000 requests (utime+stime from
# /proc/PID/stat, in milliseconds). Every heartbeat also appends an index line; the
# script counts them. See bench/README.md.
#
#   bench/heartbeat.sh [-b BIN] [-d 10s] [-t 2] [-c 16] [-r 2] [-p]
#
#   -b  the cis490 binary (default /tmp/bench-cis490; go build -o /tmp/bench-cis490 ./cmd/cis490)
#   -d  wrk duration per measurement    -t  wrk threads    -c  wrk connections
#   -r  rounds of (healthz, heartbeat)  -p  pin wrk to CPU 0 and the receiver to CPU 1
#
# Exit codes: 0 done, 1 a check failed (wrong statuses, receiver died), 2 usage or a
# missing tool.
set -euo pipefail

bin=/tmp/bench-cis490 duration=10s threads=2 conns=16 rounds=2 pin=0
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "b:d:t:c:r:ph" opt; do
  case $opt in
    b) bin=$OPTARG ;; d) duration=$OPTARG ;; t) threads=$OPTARG ;; c) conns=$OPTARG ;;
    r) rounds=$OPTARG ;; p) pin=1 ;; *) usage ;;
  esac
done
[[ $rounds =~ ^[1-9]$ ]] || { echo "heartbeat: -r wants 1 to 9 rounds" >&2; exit 2; }
[[ $duration =~ ^[1-9][0-9]?s$ ]] || { echo "heartbeat: -d wants 1s to 99s" >&2; exit 2; }
[[ $threads =~ ^[1-9]$ && $conns =~ ^[1-9][0-9]{0,2}$ ]] || { echo "heartbeat: -t 1-9, -c 1-999" >&2; exit 2; }

if ! command -v wrk >/dev/null; then
  echo "heartbeat: wrk is not installed. On Debian/Ubuntu: sudo apt-get install wrk" >&2
  echo "  (elsewhere: https://github.com/wg/wrk, 'make' and put wrk on PATH)" >&2
  exit 2
fi
[[ -x $bin ]] || { echo "heartbeat: $bin is not executable; go build -o $bin ./cmd/cis490" >&2; exit 2; }
clk_tck=$(getconf CLK_TCK)
here=$(cd "$(dirname "$0")" && pwd)
wrk_pin=() rcv_pin=()
if ((pin)); then
  command -v taskset >/dev/null || { echo "heartbeat: -p needs taskset (util-linux)" >&2; exit 2; }
  wrk_pin=(taskset -c 0) rcv_pin=(taskset -c 1)
fi

# The receiver sees none of this machine's cis490 configuration or state.
for v in $(compgen -e); do
  case $v in CIS490_* | XDG_* | STATE_DIRECTORY | JOURNAL_STREAM) unset "$v" ;; esac
done
tmp=$(mktemp -d /tmp/cis490-bench-heartbeat.XXXXXX)
pid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
: >"$tmp/lab-host.toml"
export XDG_CONFIG_HOME=$tmp XDG_STATE_HOME=$tmp

"${rcv_pin[@]}" "$bin" serve --config "$tmp/lab-host.toml" --log-format json \
  --listen 127.0.0.1:0 --data-dir "$tmp/data" 2>"$tmp/receiver.log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"message":"receiver listening".*/\1/p' "$tmp/receiver.log" | head -n1)
  [[ -n $addr ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $addr ]]; then
  echo "heartbeat: the receiver did not start; its log:" >&2
  cat "$tmp/receiver.log" >&2
  exit 1
fi

cpu_ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; }
index_lines() {
  local n=0 f
  for f in "$tmp"/data/index/*.jsonl; do
    [[ -e $f ]] && n=$((n + $(wc -l <"$f")))
  done
  echo "$n"
}

# measure NAME METHOD PATH STATUS [HOST]: one wrk run; appends a result row.
results=()
failed=0
measure() {
  local name=$1 method=$2 path=$3 status=$4 host=${5:-}
  local before after lines_before lines_after out rps got other non2xx extra=()
  [[ -n $host ]] && extra=("$host")
  before=$(cpu_ticks) lines_before=$(index_lines)
  out=$("${wrk_pin[@]}" wrk -t"$threads" -c"$conns" -d"$duration" -s "$here/heartbeat.lua" \
    "http://$addr$path" -- "$method" "$status" "${extra[@]}")
  after=$(cpu_ticks) lines_after=$(index_lines)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  read -r got other < <(sed -n 's/^STATUS expected=[0-9]* got=\([0-9]*\) other=\([0-9]*\)$/\1 \2/p' <<<"$out") || true
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  local errs
  errs=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' <<<"$out")
  [[ -n $rps && -n $got ]] || { echo "heartbeat: could not read wrk's output:" >&2; echo "$out" >&2; exit 1; }
  if ((other > 0 || got == 0)) || [[ -n $non2xx || -n $errs ]]; then
    echo "heartbeat: $name: $other answers were not $status (non-2xx: ${non2xx:-0}; socket errors: ${errs:-none})" >&2
    failed=1
  fi
  local cpu_ms_per_1k
  cpu_ms_per_1k=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$got" 'BEGIN {printf "%.1f", t / hz / n * 1000 * 1000}')
  results+=("$name $rps $got $other $cpu_ms_per_1k $((lines_after - lines_before))")
  printf '%-10s %10.0f req/s  %8d x %s, %d other  receiver CPU %6s ms per 1000 requests  index +%d lines\n' \
    "$name" "$rps" "$got" "$status" "$other" "$cpu_ms_per_1k" $((lines_after - lines_before))
}

echo "$(date -u +%FT%TZ)  $("$bin" version 2>/dev/null | head -n1 || true)  nproc $(nproc)  receiver pid $pid on $addr  $(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/loadavg /')"
echo "wrk -t$threads -c$conns -d$duration per measurement, $rounds rounds$( ((pin)) && echo ', wrk on CPU 0, receiver on CPU 1')"
# Unmeasured: the first seconds of a fresh receiver (and of wrk) were the noisiest.
"${wrk_pin[@]}" wrk -t1 -c4 -d2s "http://$addr/healthz" >/dev/null
for round in $(seq "$rounds"); do
  echo "round $round"
  measure healthz GET /healthz 200
  measure heartbeat POST /v1/heartbeat 204 lab-01
done
kill -0 "$pid" 2>/dev/null || { echo "heartbeat: the receiver died; its log:" >&2; tail -n 20 "$tmp/receiver.log" >&2; exit 1; }
if grep -q '"level":"error"' "$tmp/receiver.log"; then
  echo "heartbeat: the receiver logged errors:" >&2
  grep '"level":"error"' "$tmp/receiver.log" | head -n 5 >&2
  failed=1
fi

echo
echo "summary (heartbeat against healthz, per round):"
printf '%s\n' "${results[@]}" | awk '
  $1 == "healthz"   { hr = $2; hc = $5 }
  $1 == "heartbeat" { n++; printf "round %d: heartbeat %.0f req/s = %.2f of healthz (%.0f); receiver CPU per request %.2fx healthz (%.1f vs %.1f ms per 1000); index lines %d for %d answers\n", n, $2, $2 / hr, hr, $5 / hc, $5, hc, $6, $3 }'
exit "$failed"
