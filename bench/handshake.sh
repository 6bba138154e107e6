#!/usr/bin/env bash
# The cost of the revocation check on the receiver's mTLS handshake (issue 12): the
# Go benchmark BenchmarkHandshake (internal/receiver) runs full TLS 1.3 handshakes
# with a client certificate from the lab's CA and the receiver's own TLS
# configuration, without and with the check (2000 revoked serials on file): each
# kind on its own (mtls, mtls+revocation; -count alternates them), and in pairs
# (paired: one of each per iteration in random order, each kind's median
# handshake), which a loaded machine disturbs far less. Prints the medians over the
# runs, the ratios, and the check alone.
# Usage: bash bench/handshake.sh [count]   (default 9)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-9}
out=$(go test -run '^$' -bench 'BenchmarkHandshake|BenchmarkRevokedCheck' -benchtime 2s -count "$count" ./internal/receiver)
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# metric NAME UNIT: the median over the runs of benchmark NAME's UNIT.
metric() { echo "$out" | awk -v n="$1" -v u="$2" '$1 ~ "^Benchmark"n"-[0-9]+$" {for (i=2;i<NF;i++) if ($(i+1)==u) print $i}' | median; }
plain=$(metric 'Handshake/mtls' handshakes/s)
checked=$(metric 'Handshake/mtls\\+revocation' handshakes/s)
printf 'runs: %s of each\n' "$count"
printf 'apart:  mtls %7.1f, mtls + revocation %7.1f handshakes/s; ratio %.3f\n' "$plain" "$checked" "$(awk -v a="$plain" -v b="$checked" 'BEGIN {print b/a}')"
printf 'paired: mtls %7.1f, mtls + revocation %7.1f handshakes/s; ratio %.3f (median of the runs'"'"' ratios; must be over 0.95)\n' \
  "$(metric Handshake/paired mtls-handshakes/s)" "$(metric Handshake/paired revocation-handshakes/s)" "$(metric Handshake/paired ratio)"
printf 'the check alone: %s ns per handshake (median)\n' "$(echo "$out" | awk '$1 ~ /^BenchmarkRevokedCheck/ {print $3}' | median)"
