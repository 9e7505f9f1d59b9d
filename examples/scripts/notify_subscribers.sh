#!/bin/sh
# Tell subscribers the site was published: one message each into outbox/ (nothing is sent).
set -eu
mkdir -p outbox
stories=$(grep -c '<li>' site/production/index.html || true)
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sent=0
for to in $(grep -v '^#' subscribers.txt); do
    printf 'Date: %s\nTo: %s\nSubject: %s new stories are live\n\nRead them at https://example.org/\n\n' \
        "$stamp" "$to" "$stories" >> outbox/notifications.txt
    sent=$((sent + 1))
done
echo "queued $sent notification(s) in outbox/notifications.txt"
