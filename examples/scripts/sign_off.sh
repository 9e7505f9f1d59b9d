#!/bin/sh
# The editor's sign-off for the launch announcement: run it with `evman trigger editor-sign-off`.
set -eu
mkdir -p state
date -u +%Y-%m-%dT%H:%M:%SZ > state/editor-signed-off
echo "signed off"
