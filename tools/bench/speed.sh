#!/usr/bin/env bash
# Seconds per training epoch, tinygen against the PyTorch re-implementations, same machine and
# thread count; plus matrixmultiply's sgemm peak on the VAE's shapes.
#
# Usage: tools/bench/speed.sh [THREADS] [GAN_STEPS]
#   THREADS    threads on both sides (tinygen --threads, torch.set_num_threads); default 1
#   GAN_STEPS  time this many steps of the GANs (first GAN_STEPS*64 training images) and
#              extrapolate to the 937-step epoch; 0 = full epochs; default 200
# Environment: DATA (MNIST folder, default ../shared/data/mnist from the repo root),
#   PY (a Python with torch and numpy; create one with
#       python3 -m venv ENV && ENV/bin/pip install torch numpy),
#   NO_BUILD=1 (use the binaries already built), CARGO_TARGET_DIR (where tinygen is built), LOG (output folder, default ../bench-logs from the repo root).
# Each tinygen run trains 2 epochs (of GAN_STEPS steps for the GANs) and reports the second,
# so the first epoch is the warm-up; "seconds" in metrics.csv excludes evaluation and files.
# PyTorch: 20 untimed warm-up steps, then one timed epoch; data are in memory as tensors.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-1}
steps=${2:-200}
data=${DATA:-$root/../shared/data/mnist}
py=${PY:-python3}
log=${LOG:-$root/../bench-logs}
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$log"
cd "$root"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p tinygen
bin=$target/release/tinygen
[ -n "${NO_BUILD:-}" ] || (cd tools/bench/sgemm-peak && cargo build --release -q)
sgemm=${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR}
sgemm=${sgemm:-tools/bench/sgemm-peak/target}/release/sgemm-peak

machine() {
  echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC')  cpu $(lscpu | sed -n 's/^Model name: *//p')" \
    " threads $threads  uptime:$(uptime | sed 's/.*load average/ load average/')"
}

# Second epoch's seconds from a run folder's metrics.csv.
epoch2() {
  awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="seconds") c=i} NR==3{print $c}' "$1/metrics.csv"
}

tinygen_run() { # model out extra-args...
  local model=$1 out=$2; shift 2
  rm -rf "$out"
  machine
  echo "+ tinygen train $model --data $data --epochs 2 --seed 1 --threads $threads --out $out $*"
  "$bin" train "$model" --data "$data" --epochs 2 --seed 1 --threads "$threads" --out "$out" "$@" \
    > "$out.log" 2>&1
  echo "tinygen $model: epoch 2 seconds $(epoch2 "$out")"
}

{
  machine
  echo "+ sgemm-peak --threads $threads"
  "$sgemm" --threads "$threads"

  tinygen_run vae "$log/speed-vae-t$threads"
  machine
  echo "+ $py tools/bench/torch_vae.py --data $data --threads $threads --epochs 1"
  "$py" tools/bench/torch_vae.py --data "$data" --threads "$threads" --epochs 1

  for m in gan dcgan; do
    if [ "$steps" -gt 0 ]; then
      tinygen_run "$m" "$log/speed-$m-t$threads" --limit-train $((steps * 64))
      echo "tinygen $m: $steps steps timed; x 937/$steps for the epoch"
      torch_steps=(--steps "$steps")
    else
      tinygen_run "$m" "$log/speed-$m-t$threads"
      torch_steps=()
    fi
    machine
    echo "+ $py tools/bench/torch_$m.py --data $data --threads $threads ${torch_steps[*]}"
    "$py" "tools/bench/torch_$m.py" --data "$data" --threads "$threads" "${torch_steps[@]}"
  done
  machine
} 2>&1 | tee "$log/speed-t$threads.txt"
