#!/bin/sh
# goreleaser before-hook: gzip the man pages for the .deb (Debian installs them
# compressed): the commands' in section 1, lab-host.toml's in 5. -n leaves name and
# time out of the header, so the bytes depend only on the page. dist/ is git-ignored;
# goreleaser itself writes to dist/release/.
set -eu
rm -rf dist/man
mkdir -p dist/man
for page in man/*.1 man/*.5; do
  gzip -9 -n -c "$page" >"dist/man/${page#man/}.gz"
done
