#!/bin/sh
# Generate ./configure from configure.ac; run once after cloning.
set -e
cd "$(dirname "$0")"
autoreconf --force --install --symlink
echo "Now run ./configure && make"
