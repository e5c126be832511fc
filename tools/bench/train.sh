#!/usr/bin/env bash
# The training-quality runs of BENCHMARKS.md "Training", one model per call:
#   tools/bench/train.sh vae     # pytorch/examples VAE recipe, 10 epochs, seed 1, 1 thread
#   tools/bench/train.sh gan     # MLP GAN, defaults, 20 epochs, 1 thread
#   tools/bench/train.sh dcgan   # DCGAN, defaults, 20 epochs, 1 thread
# Writes the run folder LOG/train-MODEL (metrics.csv, samples.png, ...), the console output
# LOG/train-MODEL.log, and copies the final 8x8 sample grid to docs/MODEL-samples.png.
# Environment: DATA (MNIST folder, default ../shared/data/mnist from the repo root),
#   CARGO_TARGET_DIR (where tinygen is built), LOG (default ../bench-logs from the repo root), THREADS (default 1).
# NO_BUILD=1 skips the cargo build (use the binary already there). At most two at once on a
# 2-core machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${1:?usage: train.sh vae|gan|dcgan}
data=${DATA:-$root/../shared/data/mnist}
log=${LOG:-$root/../bench-logs}
threads=${THREADS:-1}
target=${CARGO_TARGET_DIR:-$root/target}
case $model in
  vae) epochs=10 ;;
  gan | dcgan) epochs=20 ;;
  *) echo "unknown model $model" >&2; exit 2 ;;
esac
mkdir -p "$log"
cd "$root"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p tinygen
out=$log/train-$model
rm -rf "$out"
{
  echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC')  cpu $(lscpu | sed -n 's/^Model name: *//p')" \
    " threads $threads  uptime:$(uptime | sed 's/.*load average/ load average/')"
  echo "+ tinygen train $model --data $data --epochs $epochs --seed 1 --threads $threads --out $out"
  "$target/release/tinygen" train "$model" --data "$data" --epochs "$epochs" --seed 1 \
    --threads "$threads" --out "$out"
  echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC')  uptime:$(uptime | sed 's/.*load average/ load average/')"
} > "$out.log" 2>&1
cp "$out/samples.png" "docs/$model-samples.png"
cat "$out/metrics.csv"
