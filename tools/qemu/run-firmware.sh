#!/usr/bin/env bash
# Builds and runs every firmware configuration of examples/firmware under QEMU; fails if any
# run fails (a run passes when the image's checksum equals the host's and, for the kernel
# benchmark, the fast int8 Dense kernel equals the reference kernel on the target).
#
# usage: tools/qemu/run-firmware.sh [CONFIG...]     (default: all; e.g. m4f-mlp-i8 m0-tiny-f32)
#
# Cores: Cortex-M4F (mps2-an386), M7 (mps2-an500), M33 (mps2-an505, Secure state), M3 without
# FPU or DSP extension (mps2-an385) and M0 (microbit); the table below names each configuration.
#
# Steps: install missing targets/tools (rustup targets of the selected configurations; apt-get
# only if QEMU/binutils are absent),
# build the QEMU instruction-count plugin; for m4f-trained-i8, train a small VAE on the built-in
# 8x8 digits with the tinygen CLI and export it with --int8; for m4f-flow-f32, train a small
# RealNVP flow there and export its generator (a graph with branches, f32); for
# m4f-imported-f32, import the PyTorch-exported DCGAN fixture with `tinygen import`; run the host generator (writes
# examples/firmware/models/: model files + expected checksums), then per configuration
# `cargo build --release` with FW_MODEL and run tools/qemu/measure.sh under `timeout`.
# Output: a summary table (Markdown), also written to $FW_OUT/summary.md.
# Environment: CARGO_TARGET_DIR (shared by the host generator and the firmware; the tinygen CLI
# goes to the workspace's target/ unless it is set), FW_OUT (default
# examples/firmware/target/runs), QEMU_TIMEOUT (seconds per run, default 300), TINYGEN (a tinygen
# binary to train and export with instead of building one).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tools/qemu"
FW="$ROOT/examples/firmware"
TDIR=${CARGO_TARGET_DIR:-$FW/target}
OUT=${FW_OUT:-$FW/target/runs}
mkdir -p "$OUT"

# name            target                     qemu cpu    machine     FW_MODEL         runtime features                codegen (-C)
# (each image compiles in only the parts of tinygen-runtime its model needs; the codegen column,
# `-` for none, is passed as RUSTFLAGS="-C OPT ..." with OPTs comma-separated: the M33's target
# leaves the optional DSP extension off, so its images turn it on, which also selects the
# runtime's DSP int8 kernels (runtime/build.rs). The M7 runs the M4F's thumbv7em images, which
# have the DSP extension already (`-C target-cpu=cortex-m7` would tune them for the M7: see
# BENCHMARKS.md). The M3 gets the portable kernels and soft-float f32.)
CONFIGS="
m4f-mlp-f32       thumbv7em-none-eabihf      cortex-m4   mps2-an386  mlp-f32          f32                             -
m4f-mlp-i8        thumbv7em-none-eabihf      cortex-m4   mps2-an386  mlp-i8           int8                            -
m4f-dcgan-f32     thumbv7em-none-eabihf      cortex-m4   mps2-an386  dcgan-f32        f32,conv-transpose2d            -
m4f-dcgan-i8      thumbv7em-none-eabihf      cortex-m4   mps2-an386  dcgan-i8         int8,conv-transpose2d           -
m4f-dense-kernel  thumbv7em-none-eabihf      cortex-m4   mps2-an386  dense-i8-kernel  int8                            -
m4f-trained-i8    thumbv7em-none-eabihf      cortex-m4   mps2-an386  trained-i8       int8                            -
m4f-flow-f32      thumbv7em-none-eabihf      cortex-m4   mps2-an386  flow-f32         f32,graph                       -
m4f-imported-f32  thumbv7em-none-eabihf      cortex-m4   mps2-an386  imported-f32     f32,conv-transpose2d,graph      -
m0-tiny-f32       thumbv6m-none-eabi         cortex-m0   microbit    tiny-f32         f32                             -
m0-tiny-i8        thumbv6m-none-eabi         cortex-m0   microbit    tiny-i8          int8                            -
m7-mlp-f32        thumbv7em-none-eabihf      cortex-m7   mps2-an500  mlp-f32          f32                             -
m7-mlp-i8         thumbv7em-none-eabihf      cortex-m7   mps2-an500  mlp-i8           int8                            -
m7-dcgan-f32      thumbv7em-none-eabihf      cortex-m7   mps2-an500  dcgan-f32        f32,conv-transpose2d            -
m7-dcgan-i8       thumbv7em-none-eabihf      cortex-m7   mps2-an500  dcgan-i8         int8,conv-transpose2d           -
m7-dense-kernel   thumbv7em-none-eabihf      cortex-m7   mps2-an500  dense-i8-kernel  int8                            -
m33-mlp-f32       thumbv8m.main-none-eabihf  cortex-m33  mps2-an505  mlp-f32          f32                             target-feature=+dsp
m33-mlp-i8        thumbv8m.main-none-eabihf  cortex-m33  mps2-an505  mlp-i8           int8                            target-feature=+dsp
m33-dcgan-f32     thumbv8m.main-none-eabihf  cortex-m33  mps2-an505  dcgan-f32        f32,conv-transpose2d            target-feature=+dsp
m33-dcgan-i8      thumbv8m.main-none-eabihf  cortex-m33  mps2-an505  dcgan-i8         int8,conv-transpose2d           target-feature=+dsp
m33-dense-kernel  thumbv8m.main-none-eabihf  cortex-m33  mps2-an505  dense-i8-kernel  int8                            target-feature=+dsp
m3-mlp-f32        thumbv7m-none-eabi         cortex-m3   mps2-an385  mlp-f32          f32                             -
m3-mlp-i8         thumbv7m-none-eabi         cortex-m3   mps2-an385  mlp-i8           int8                            -
m3-dcgan-f32      thumbv7m-none-eabi         cortex-m3   mps2-an385  dcgan-f32        f32,conv-transpose2d            -
m3-dcgan-i8       thumbv7m-none-eabi         cortex-m3   mps2-an385  dcgan-i8         int8,conv-transpose2d           -
m3-dense-kernel   thumbv7m-none-eabi         cortex-m3   mps2-an385  dense-i8-kernel  int8                            -
"
WANT=" $* "
selected() { [ "$WANT" = "  " ] || [[ "$WANT" == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------------------------
T0=$(date +%s)
if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-size >/dev/null; then
  echo "== installing qemu-system-arm and binutils-arm-none-eabi"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-arm binutils-arm-none-eabi >/dev/null
fi
INSTALLED=$(rustup target list --installed)
# The targets of the selected configurations (and the M0's, for the self-test of a full run).
TARGETS=$(while read -r NAME TARGET _; do
  [ -n "$NAME" ] && selected "$NAME" && echo "$TARGET"; done <<<"$CONFIGS"; echo thumbv6m-none-eabi)
for t in $(sort -u <<<"$TARGETS"); do
  grep -qx "$t" <<<"$INSTALLED" || rustup target add "$t"
done
"$HERE/build-plugin.sh" >/dev/null

# --- a trained model: tinygen train, tinygen export --int8 ---------------------------------
# The CLI is built as `cargo test --workspace` (CI's test step, which runs before this script)
# builds it, in the same target dir: same profile and features, so tract-onnx is not compiled a
# second time (a plain `cargo build` would resolve other features and rebuild it).
# Sets TINYGEN to that build unless it is given.
need_cli() {
  if [ -z "${TINYGEN:-}" ]; then
    echo "== tinygen CLI: cargo test --workspace --no-run"
    CLI_TDIR=${CARGO_TARGET_DIR:-$ROOT/target}
    ( cd "$ROOT" && CARGO_TARGET_DIR="$CLI_TDIR" cargo test --quiet --workspace --no-run )
    TINYGEN="$CLI_TDIR/debug/tinygen"
  fi
}
GEN_ARGS=()
if selected m4f-trained-i8; then
  need_cli
  echo "== trained model: tinygen train vae (built-in 8x8 digits, builtin:digits, 1 epoch) + export --int8"
  rm -rf "$OUT/trained-run" "$OUT/trained-export"
  "$TINYGEN" train vae --data builtin:digits --epochs 1 --seed 1 --threads 1 --out "$OUT/trained-run" \
    | sed 's/^/   /'
  "$TINYGEN" export "$OUT/trained-run" --int8 --out "$OUT/trained-export" | sed 's/^/   /'
  GEN_ARGS=(--from-file "trained-i8=$OUT/trained-export/decoder.int8.tgm")
fi
# --- a trained flow (the graph ops: Slice, Gather, Exp, Mul, Add, Sub, Concat): tinygen train flow
if selected m4f-flow-f32; then
  need_cli
  echo "== trained flow: tinygen train flow (builtin:digits, 4 couplings of width 64, 2 epochs) + export"
  rm -rf "$OUT/flow-run" "$OUT/flow-export"
  "$TINYGEN" train flow --data builtin:digits --epochs 2 --couplings 4 --hidden 64 --seed 1 \
    --threads 1 --out "$OUT/flow-run" | sed 's/^/   /'
  "$TINYGEN" export "$OUT/flow-run" --out "$OUT/flow-export" | sed 's/^/   /'
  GEN_ARGS+=(--from-file "flow-f32=$OUT/flow-export/generator.tgm")
fi
# --- a generator trained elsewhere: PyTorch's ONNX export of a DCGAN generator, tinygen import
if selected m4f-imported-f32; then
  need_cli
  echo "== imported generator: tinygen import export/tests/fixtures/dcgan_generator.onnx (PyTorch's exporter)"
  rm -rf "$OUT/imported"
  "$TINYGEN" import "$ROOT/export/tests/fixtures/dcgan_generator.onnx" --out "$OUT/imported" \
    | sed 's/^/   /'
  GEN_ARGS+=(--from-file "imported-f32=$OUT/imported/dcgan_generator.tgm")
fi

# --- models and expected checksums --------------------------------------------------------
echo "== host generator"
( cd "$ROOT" && CARGO_TARGET_DIR="$TDIR" cargo run --quiet --release \
    --manifest-path examples/firmware/host-gen/Cargo.toml -- "$FW/models" "${GEN_ARGS[@]}" )

# --- firmware runs ------------------------------------------------------------------------
ROWS=(); FAILED=()
while read -r -u 3 NAME TARGET CPU MACH MODEL FEATURES CODEGEN; do
  [ -n "$NAME" ] || continue
  selected "$NAME" || continue
  FLAGS=""
  [ "$CODEGEN" = "-" ] || FLAGS=$(tr ',' '\n' <<<"$CODEGEN" | sed 's/^/-C /' | paste -sd' ')
  echo "== $NAME: FW_MODEL=$MODEL${FLAGS:+ RUSTFLAGS=\"$FLAGS\"} cargo build --release --target $TARGET --no-default-features --features $FEATURES"
  if ! ( cd "$FW" && { [ -z "$FLAGS" ] || export RUSTFLAGS="$FLAGS"; } \
         && FW_MODEL=$MODEL CARGO_TARGET_DIR="$TDIR" cargo build --quiet --release \
           --target "$TARGET" --no-default-features --features "$FEATURES" ); then
    FAILED+=("$NAME (build)"); continue
  fi
  ELF="$OUT/$NAME.elf"
  cp "$TDIR/$TARGET/release/tinygen-firmware" "$ELF"
  MACS=$(sed -n 's/^pub const MACS: u64 = \([0-9]*\);/\1/p' "$FW/models/$MODEL.rs")
  set +e
  "$HERE/measure.sh" "$ELF" "$CPU" "$MACH" "$MACS" >"$OUT/$NAME.log" 2>&1
  RC=$?
  set -e
  grep -v '^|' "$OUT/$NAME.log" | sed 's/^/   /'
  M=$(grep '^measure:' "$OUT/$NAME.log" || echo "measure: flash=- static_ram=- stack=- insns=- insn_per_mac=-")
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$M"; }
  if [ "$RC" -eq 0 ]; then RES=PASS; elif [ "$RC" -eq 124 ]; then RES="TIMEOUT"; else RES="FAIL ($RC)"; fi
  [ "$RC" -eq 0 ] || FAILED+=("$NAME")
  # Flash beyond the embedded model (the runtime, the harness, the vector table).
  PAYLOAD="$FW/models/$MODEL.tgm"; [ -f "$PAYLOAD" ] || PAYLOAD="$FW/models/$MODEL.w.bin"
  MODEL_B=$(stat -c %s "$PAYLOAD")
  FL=$(get flash); OVER=-; [[ "$FL" =~ ^[0-9]+$ ]] && OVER=$(( FL - MODEL_B ))
  ARENA=$(sed -n 's/^pub const ARENA_BYTES: usize = \([0-9]*\);/\1/p' "$FW/models/$MODEL.rs")
  ROWS+=("| $NAME | $MODEL | $MODEL_B | $FL | $OVER | $(get static_ram) | ${ARENA:--} | $(get stack) | $MACS | $(get insns) | $(get insn_per_mac) | $RES |")
done 3<<<"$CONFIGS"

# The pass/fail machinery itself: with every expected value off by one bit, a run must fail.
if [ -z "$*" ]; then
  echo "== self-test: m0-tiny-f32 with FW_SELFTEST_FAIL=1 must exit 1"
  ( cd "$FW" && FW_SELFTEST_FAIL=1 FW_MODEL=tiny-f32 CARGO_TARGET_DIR="$TDIR" \
      cargo build --quiet --release --target thumbv6m-none-eabi --no-default-features --features f32 )
  cp "$TDIR/thumbv6m-none-eabi/release/tinygen-firmware" "$OUT/selftest-fail.elf"
  set +e
  timeout "${QEMU_TIMEOUT:-300}" qemu-system-arm -cpu cortex-m0 -machine microbit -nographic \
    -semihosting-config enable=on,target=native -kernel "$OUT/selftest-fail.elf" </dev/null >"$OUT/selftest-fail.log" 2>&1
  RC=$?
  set -e
  if [ "$RC" -eq 1 ] && grep -q '^FAIL' "$OUT/selftest-fail.log"; then
    echo "   ok: the corrupted expectation failed (exit 1)"
  else
    echo "   the corrupted expectation did not fail (exit $RC)"; FAILED+=("selftest-fail")
  fi
fi

{
  echo "| config | model | model bytes | flash (B) | flash - model (B) | static RAM (B) | arena (B) | inference stack (B) | MACs | insns | insn/MAC | result |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/summary.md"
echo "rustc: $(rustc --version)   qemu: $(qemu-system-arm --version | head -1)   time: $(( $(date +%s) - T0 )) s"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${FAILED[*]} (logs in $OUT)"
  exit 1
fi
echo "all firmware runs passed"
