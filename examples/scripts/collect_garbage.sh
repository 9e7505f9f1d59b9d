#!/bin/sh
# Garbage-collect: drafts untouched for DRAFT_DAYS days, and all but the newest KEEP_BUILDS builds.
set -eu
days=${DRAFT_DAYS:-30}
keep=${KEEP_BUILDS:-5}
removed=0
for draft in $(find drafts -name '*.md' -mtime +"$days"); do
    rm -f "$draft"
    echo "removed old draft $draft"
    removed=$((removed + 1))
done
if [ -d site/builds ]; then
    for build in $(ls -1 site/builds | sort -rn | tail -n +"$((keep + 1))"); do
        rm -rf "site/builds/$build"
        removed=$((removed + 1))
    done
fi
echo "garbage collected: $removed item(s) removed"
