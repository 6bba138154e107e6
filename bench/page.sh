#!/usr/bin/env bash
# The receiver's CPU with the fleet page left open on ten laptops (issue 14): a real
# `cis490 serve` (tokens file, loopback) over a 300-host data folder that ends now
# (bench/pagedata), first idle for DURATION (the baseline), then with CLIENTS
# clients, each signed in through the sign-in form with a session of its own, loading
# GET / (gzipped, as a browser does) every INTERVAL, their first loads spread evenly
# over SPREAD seconds (default: the interval, as laptops opened at random times),
# for DURATION again. Reports the receiver's CPU time (utime+stime from
# /proc/PID/stat) in seconds and in % of one core for both phases, and the clients'
# load times and page weight. See bench/README.md.
#
#   bench/page.sh [-b BIN] [-n CLIENTS] [-i SECONDS] [-s SECONDS] [-H HOSTS]
#   DURATION=60 bench/page.sh      # a shorter try (seconds per phase; default 300)
#
#   -b  the cis490 binary (default /tmp/bench-cis490; go build -o /tmp/bench-cis490 ./cmd/cis490)
#   -n  clients (default 10)   -i  seconds between a client's loads (default 60)
#   -s  seconds the clients' loads are spread over (default -i; 0: all at once)
#   -H  hosts in the fleet (default 300)
#
# Exit codes: 0 done, 1 a check failed (a load not 200, the receiver died or logged
# a token), 2 usage or a missing tool.
set -euo pipefail

bin=/tmp/bench-cis490 clients=10 interval=60 hosts=300 spread=
duration=${DURATION:-300}
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "b:n:i:s:H:h" opt; do
  case $opt in
    b) bin=$OPTARG ;; n) clients=$OPTARG ;; i) interval=$OPTARG ;; s) spread=$OPTARG ;; H) hosts=$OPTARG ;; *) usage ;;
  esac
done
spread=${spread:-$interval}
[[ $clients =~ ^[1-9][0-9]?$ ]] || { echo "page: -n wants 1 to 99 clients" >&2; exit 2; }
[[ $interval =~ ^[1-9][0-9]{0,3}$ ]] || { echo "page: -i wants 1 to 9999 seconds" >&2; exit 2; }
[[ $spread =~ ^[0-9]{1,4}$ ]] || { echo "page: -s wants 0 to 9999 seconds" >&2; exit 2; }
[[ $hosts =~ ^[1-9][0-9]{0,4}$ ]] || { echo "page: -H wants 1 to 99999 hosts" >&2; exit 2; }
[[ $duration =~ ^[1-9][0-9]{0,4}$ ]] || { echo "page: DURATION wants whole seconds, 1 to 99999" >&2; exit 2; }
command -v curl >/dev/null || { echo "page: curl is not installed (Debian: apt-get install curl)" >&2; exit 2; }
command -v go >/dev/null || { echo "page: go is needed to write the data folder (go run ./bench/pagedata)" >&2; exit 2; }
[[ -x $bin ]] || { echo "page: $bin is not executable; go build -o $bin ./cmd/cis490" >&2; exit 2; }
clk_tck=$(getconf CLK_TCK)
here=$(cd "$(dirname "$0")" && pwd)

# The receiver sees none of this machine's cis490 configuration or state.
for v in $(compgen -e); do
  case $v in CIS490_* | XDG_* | STATE_DIRECTORY | JOURNAL_STREAM) unset "$v" ;; esac
done
tmp=$(mktemp -d /tmp/cis490-bench-page.XXXXXX)
pid='' loaders=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local p
  for p in "${loaders[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export XDG_CONFIG_HOME=$tmp XDG_STATE_HOME=$tmp
cd "$tmp" # whatever a tool leaves behind stays in the temporary folder

data=$tmp/data
(cd "$here/.." && go run ./bench/pagedata -dir "$data" -hosts "$hosts")
printf 'host = "pi"\n' >"$tmp/lab-host.toml"
"$bin" serve --config "$tmp/lab-host.toml" --log-format json --listen 127.0.0.1:0 \
  --data-dir "$data" --tokens-file "$data/tokens.toml" 2>"$tmp/receiver.log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"message":"receiver listening".*/\1/p' "$tmp/receiver.log" | head -n1)
  [[ -n $addr ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $addr ]]; then
  echo "page: the receiver did not start; its log:" >&2
  cat "$tmp/receiver.log" >&2
  exit 1
fi
url=http://$addr

cpu_ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; }

# signin DIR: a session in DIR/jar, through the sign-in form (the token is read from
# its file by curl: it is on no command line).
signin() {
  local d=$1 csrf code
  mkdir -p "$d"
  curl -sS -c "$d/jar" -b "$d/jar" -o "$d/signin.html" "$url/signin"
  csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$d/signin.html" | head -n1)
  [[ -n $csrf ]] || { echo "page: no CSRF token on the sign-in form" >&2; return 1; }
  code=$(curl -sS -c "$d/jar" -b "$d/jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "csrf=$csrf" --data-urlencode "token@$data/admin.token" --data-urlencode "next=/" "$url/signin")
  [[ $code == 303 ]] || { echo "page: sign-in answered $code, not 303" >&2; return 1; }
}

# load DIR: one GET / with DIR's session; appends "code seconds bytes" to DIR/loads.
load() {
  curl -sS -b "$1/jar" -H 'Accept-Encoding: gzip' -o /dev/null \
    -w '%{http_code} %{time_total} %{size_download}\n' "$url/" >>"$1/loads"
}

# client DIR OFFSET END: loads every interval from OFFSET seconds on, until END (epoch s).
client() {
  local d=$1 next
  next=$(awk -v s="$EPOCHREALTIME" -v o="$2" 'BEGIN {printf "%.3f", s + o}')
  while awk -v n="$next" -v e="$3" 'BEGIN {exit !(n < e)}'; do
    sleep "$(awk -v n="$next" -v s="$EPOCHREALTIME" 'BEGIN {d = n - s; if (d < 0) d = 0; printf "%.3f", d}')"
    load "$d"
    next=$(awk -v n="$next" -v i="$interval" 'BEGIN {printf "%.3f", n + i}')
  done
}

for c in $(seq "$clients"); do signin "$tmp/client$c"; done
# Warm up, unmeasured: the first evaluation and the page cache of the index files.
for c in $(seq "$clients"); do load "$tmp/client$c"; done
rm -f "$tmp"/client*/loads

echo "$(date -u +%FT%TZ)  $("$bin" version 2>/dev/null | head -n1 || true)  nproc $(nproc)  receiver pid $pid on $addr  $(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/loadavg /')"
echo "$hosts hosts, $(cat "$data"/index/*.jsonl | wc -l) index lines; $clients clients every ${interval}s spread over ${spread}s, ${duration}s per phase"

# phase NAME: the receiver's CPU over duration seconds, while what runs runs.
phase() {
  local before after
  before=$(cpu_ticks)
  sleep "$duration"
  after=$(cpu_ticks)
  awk -v t=$((after - before)) -v hz="$clk_tck" -v d="$duration" -v n="$1" \
    'BEGIN {printf "%-8s receiver CPU %7.2f s over %d s = %5.2f %% of one core\n", n, t / hz, d, t / hz / d * 100}'
}

phase idle
end=$(awk -v s="$EPOCHREALTIME" -v d="$duration" 'BEGIN {printf "%.3f", s + d}')
for c in $(seq "$clients"); do
  off=$(awk -v c="$c" -v n="$clients" -v s="$spread" 'BEGIN {printf "%.3f", (c - 1) * s / n}')
  client "$tmp/client$c" "$off" "$end" &
  loaders+=($!)
done
phase loaded
for p in "${loaders[@]}"; do wait "$p" || true; done
loaders=()

failed=0
cat "$tmp"/client*/loads >"$tmp/loads" 2>/dev/null || : >"$tmp/loads"
n=$(wc -l <"$tmp/loads")
bad=$(awk '$1 != 200' "$tmp/loads" | wc -l)
if ((n == 0 || bad > 0)); then
  echo "page: $bad of $n loads were not 200" >&2
  failed=1
fi
if ((n > 0)); then
  sort -n -k2 "$tmp/loads" | awk -v n="$n" '
    {t[NR] = $2; b += $3}
    END {
      p50 = int(n * 0.5) + 1; p99 = int(n * 0.99) + 1; if (p99 > n) p99 = n
      printf "loads    %d, each %.1f KB as sent; load time p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
        n, b / n / 1024, t[p50] * 1000, t[p99] * 1000, t[n] * 1000
    }'
fi
kill -0 "$pid" 2>/dev/null || { echo "page: the receiver died; its log:" >&2; tail -n 20 "$tmp/receiver.log" >&2; exit 1; }
if grep -qF "$(tr -d '\n' <"$data/admin.token")" "$tmp/receiver.log"; then
  echo "page: the admin token is in the receiver's log" >&2
  failed=1
fi
if grep -q '"level":"error"' "$tmp/receiver.log"; then
  echo "page: the receiver logged errors:" >&2
  grep '"level":"error"' "$tmp/receiver.log" | head -n 5 >&2
  failed=1
fi
exit "$failed"
