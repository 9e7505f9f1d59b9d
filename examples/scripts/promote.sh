#!/bin/sh
# Promote the site from one stage to the next: promote.sh develop test | promote.sh test production
set -eu
from=$1
to=$2
test -s "site/$from/index.html" || { echo "nothing to promote: site/$from/index.html is missing"; exit 1; }
mkdir -p "site/$to"
cp "site/$from/index.html" "site/$to/index.html.tmp"
mv "site/$to/index.html.tmp" "site/$to/index.html"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) run ${EVMAN_RUN_ID:-manual}: $from -> $to" >> "site/$to/PROMOTIONS"
echo "promoted $from to $to"
