#!/usr/bin/env bash
# What hostile or broken clients cost the receiver, before and after a change: builds
# cis490 at OLD (a commit, in a temporary git worktree) and from this working tree,
# and runs bench/limits against each: peak RSS, peak FDs and heartbeat latency under
# 300 dripping uploads, 5000 idle connections, and both. See bench/README.md.
#
#   bench/limits.sh OLD [bench/limits flags, e.g. -runs 3 -for 30s]
#
# The new binary runs with GOMEMLIMIT=48MiB, as cis490-receiver.service runs it; the
# old one as its own unit ran it (no GOMEMLIMIT). Both with ulimit -n 4096.
# Exit codes: 0 done, 1 a run failed, 2 usage.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
old=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# The client needs a descriptor per connection: 5300 and more.
ulimit -n "$(ulimit -Hn)"

git -C "$repo" worktree add --detach "$work/old" "$old" >/dev/null
(cd "$work/old" && go build -o "$work/cis490-old" ./cmd/cis490)
(cd "$repo" && go build -o "$work/cis490-new" ./cmd/cis490 && go build -o "$work/limits" ./bench/limits)

echo "== before: $(git -C "$repo" rev-parse --short "$old")"
"$work/limits" -bin "$work/cis490-old" "$@"
echo "== after: this working tree, GOMEMLIMIT=48MiB"
GOMEMLIMIT=48MiB "$work/limits" -bin "$work/cis490-new" "$@"
