#!/usr/bin/env bash
# Builds the QEMU instruction-count plugin: tools/qemu/build/libinsncount.so
# usage: tools/qemu/build-plugin.sh        (prints the path of the plugin)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/build"
mkdir -p "$OUT"
SO="$OUT/libinsncount.so"
if [ ! -f "$SO" ] || [ "$HERE/insncount.c" -nt "$SO" ]; then
  "${CC:-gcc}" -O2 -Wall -Wextra -shared -fPIC -o "$SO" "$HERE/insncount.c"
fi
echo "$SO"
