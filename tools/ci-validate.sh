#!/usr/bin/env bash
# Independent validation of every exported ONNX model: the Rust tests write validation cases
# (model, inputs, tract-onnx's outputs) into a directory, then tools/validate_onnx.py runs the
# official checker (check_model, full_check) and onnxruntime on each and compares: float outputs
# within 1e-5 relative, int8 outputs bit-exact.
#
# Usage: tools/ci-validate.sh [CASES_DIR]     (default: a fresh temporary directory)
# Needs: python3 with tools/requirements.txt (onnx, onnxruntime, numpy); set PYTHON to use another
# interpreter, e.g. PYTHON=.venv/bin/python.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cases="${1:-$(mktemp -d -t tinygen-onnx-cases.XXXXXX)}"
python="${PYTHON:-python3}"
mkdir -p "$cases"
rm -f "$cases"/*.onnx "$cases"/*.case.json "$cases"/*.bin

cd "$root"
if ! "$python" -c 'import onnx, onnxruntime, numpy' 2>/dev/null; then
    echo "error: $python lacks onnx, onnxruntime or numpy; pip install -r tools/requirements.txt" >&2
    exit 2
fi

echo "== writing validation cases into $cases"
# The exporter's own models (hand-built graphs), the branched test graphs (f32 and QDQ int8) and
# the trained models of every kind. Selected
# with --workspace, as the README's `cargo test --workspace` builds: the same packages give the
# same features, so nothing is compiled again (`-p` would resolve tract-onnx's dependencies with
# other features and rebuild it).
TINYGEN_ONNX_CASES="$cases" cargo test --workspace --test onnx_tract --test graph_tract --test e2e_chain

count=$(find "$cases" -name '*.case.json' | wc -l)
if [ "$count" -eq 0 ]; then
    echo "error: no validation cases were written into $cases" >&2
    exit 1
fi
echo "== validating $count cases with the ONNX checker and onnxruntime"
"$python" tools/validate_onnx.py "$cases"
