#!/bin/sh
# Sync media to the CDN. The (pretend) CDN is flaky: the first attempt of every third sync
# times out, and on every 25th sync it is down for good. A failed attempt leaves its lock
# behind; the event's `prepare` (rm -f state/sync-media.lock) clears it before each retry.
set -eu
mkdir -p state
n=$(cat state/sync-media.count 2>/dev/null || echo 0)
if [ "${EVMAN_ATTEMPT:-1}" = 1 ]; then
    n=$((n + 1))
    echo "$n" > state/sync-media.count
fi
if [ -e state/sync-media.lock ]; then
    echo "sync $n: state/sync-media.lock is held (an earlier attempt did not finish)"
    exit 75
fi
touch state/sync-media.lock
if [ $((n % 25)) = 7 ]; then
    echo "sync $n attempt ${EVMAN_ATTEMPT:-1}: CDN unreachable"
    exit 75
fi
if [ $((n % 3)) = 1 ] && [ "${EVMAN_ATTEMPT:-1}" = 1 ]; then
    echo "sync $n attempt 1: CDN timed out"
    exit 75
fi
rm -f state/sync-media.lock
echo "sync $n attempt ${EVMAN_ATTEMPT:-1}: media in sync"
