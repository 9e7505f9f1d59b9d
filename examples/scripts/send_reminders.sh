#!/bin/sh
# Email reminders: nudge the authors of drafts still waiting (written to outbox/, nothing is sent).
set -eu
mkdir -p outbox
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
count=0
for draft in drafts/*.md; do
    [ -e "$draft" ] || continue
    printf '%s reminder: %s is still a draft\n' "$stamp" "$draft" >> outbox/reminders.txt
    count=$((count + 1))
done
echo "queued $count reminder(s)"
