#!/usr/bin/env bash
# Builds the board examples (examples/boards/*) as a firmware engineer would: `cargo build
# --release` in each folder, for the board's target (its .cargo/config.toml names it), and
# prints each image's size. Fails if any build fails. Nothing is flashed: each example's
# README says how.
#
# usage: tools/boards/build.sh [BOARD...]     (default: all: rp2040 nrf52840)
# Installs the rustup targets the boards need. Environment: CARGO_TARGET_DIR (default: each
# board's own target/; when set, board B builds into $CARGO_TARGET_DIR/boards-B).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BOARDS=${*:-rp2040 nrf52840}

# board     target
TARGETS="
rp2040      thumbv6m-none-eabi
nrf52840    thumbv7em-none-eabihf
"
target_of() { awk -v b="$1" '$1==b {print $2}' <<<"$TARGETS"; }

INSTALLED=$(rustup target list --installed)
for b in $BOARDS; do
  t=$(target_of "$b")
  [ -n "$t" ] || { echo "unknown board $b (known: $(awk 'NF {printf "%s ", $1}' <<<"$TARGETS"))" >&2; exit 2; }
  grep -qx "$t" <<<"$INSTALLED" || rustup target add "$t"
done

SIZE=arm-none-eabi-size
if ! command -v "$SIZE" >/dev/null; then
  SIZE=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size
fi

ROWS=()
for b in $BOARDS; do
  t=$(target_of "$b")
  dir="$ROOT/examples/boards/$b"
  tdir=${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/boards-$b}
  tdir=${tdir:-$dir/target}
  echo "== $b: cargo build --release (target $t)"
  ( cd "$dir" && CARGO_TARGET_DIR="$tdir" cargo build --release --locked )
  elf="$tdir/$t/release/tinygen-$b"
  # flash = code, constants and .data's initial values (the model file is in .rodata);
  # static RAM = .data + .bss (the arena is in .bss), before the stack.
  read -r FLASH RAM < <("$SIZE" -A "$elf" | awk '
    $1==".vector_table"||$1==".boot2"||$1==".text"||$1==".rodata" {f+=$2}
    $1==".data" {d+=$2}
    $1==".bss"||$1==".uninit" {b+=$2}
    END {print f+d, d+b}')
  ROWS+=("| $b | $t | $FLASH | $RAM |")
done

echo "| board | target | flash (B) | static RAM (B) |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo "all board examples built"
