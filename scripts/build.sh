#!/bin/sh
# Configure (once) and build dcrun in ./build.  Safe to run again.
set -e
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build
