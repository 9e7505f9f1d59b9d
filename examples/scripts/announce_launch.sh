#!/bin/sh
# Put the launch announcement on the production site.
set -eu
mkdir -p site/production
echo '<h1>We launched</h1>' > site/production/launch.html
echo "launch announcement published"
