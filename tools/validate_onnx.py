#!/usr/bin/env python3
"""Independent check of exported ONNX models: the official checker and onnxruntime.

Usage: validate_onnx.py DIR

Cases for the test models are written by the Rust tests (no Python needed there):
    CASES=$(mktemp -d)
    TINYGEN_ONNX_CASES="$CASES" cargo test -p tinygen-export --test onnx_tract
    python3 tools/validate_onnx.py "$CASES"
Requirements: tools/requirements.txt (onnx, onnxruntime, numpy).

For every `*.onnx` under DIR (recursively):
  1. `onnx.checker.check_model(model, full_check=True)` (also runs strict shape inference);
  2. the model's header is what the exporter promises: IR version 8, opset 13 of the default
     domain, every attribute with its `type` set, initializers stored in `raw_data`;
  3. if a validation case `NAME.case.json` sits next to it (written by
     `tinygen_export::onnx::write_validation_case`), the model runs in onnxruntime on the case's
     inputs and each listed output is compared with the expected values:
       - float32: max |ort - expected| / max |expected| <= FLOAT_REL_TOL (1e-5). The expected
         values come from tract-onnx (f32); both runtimes accumulate in f32 in different orders,
         so they differ by a few units of f32 roundoff of the output's magnitude. Normalising by
         the largest |expected| keeps outputs near zero from inflating the figure.
       - int8: bit-exact (every value equal).
     A case marked `"onnxruntime_optimization": "disable_all"` (a QDQ graph whose every
     Quantize/DequantizeLinear pair must round as the operators define) runs with onnxruntime's
     graph optimizations off: its fusions of QDQ element-wise ops into quantized kernels skip
     or change roundings. What the optimized session gives is reported beside it (not failed).
     Without a case file the model still runs in onnxruntime on zeros, to prove it loads.

Prints one table row per model and exits with status 1 if anything failed.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort

FLOAT_REL_TOL = 1e-5
IR_VERSION = 8
OPSET = 13
DTYPES = {"float32": np.float32, "int8": np.int8}


def header_problems(model):
    problems = []
    if model.ir_version != IR_VERSION:
        problems.append(f"ir_version {model.ir_version} != {IR_VERSION}")
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if default != [OPSET]:
        problems.append(f"default-domain opset {default} != [{OPSET}]")
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.UNDEFINED:
                problems.append(f"node {node.name}: attribute {a.name} has no type")
    for t in model.graph.initializer:
        if not t.raw_data:
            problems.append(f"initializer {t.name} not in raw_data")
    return problems


def read_tensor(case_dir, spec):
    data = np.fromfile(case_dir / spec["file"], dtype=DTYPES[spec["dtype"]])
    return data.reshape(spec["shape"])


def zeros_for(value_info, batch=2):
    t = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else batch for d in t.shape.dim]
    return np.zeros(dims, dtype=onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))


def compare(spec, got, want):
    """Returns (figure, ok, description)."""
    if got.shape != want.shape:
        return float("inf"), False, f"shape {got.shape} != {want.shape}"
    if spec["dtype"] == "int8":
        if got.dtype != np.int8:
            return float("inf"), False, f"dtype {got.dtype}, expected int8"
        diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
        mismatches = int(np.count_nonzero(diff))
        return float(diff.max(initial=0)), mismatches == 0, f"{mismatches}/{want.size} int8 differ"
    scale = float(np.max(np.abs(want.astype(np.float64)), initial=0.0))
    err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
    rel = err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))
    return rel, rel <= FLOAT_REL_TOL, f"rel {rel:.2e} (abs {err:.2e})"


def validate(path):
    """Returns a list of table rows (model, stage/output, figure, status, note)."""
    rows = []
    name = path.name[: -len(".onnx")]
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker raises several exception types
        return [(name, "checker", "-", "FAIL", str(e).splitlines()[0][:100])]
    problems = header_problems(model)
    rows.append((name, "checker", "-", "FAIL" if problems else "ok", "; ".join(problems)[:100]))

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        return rows + [(name, "onnxruntime load", "-", "FAIL", str(e).splitlines()[0][:100])]

    case_path = path.with_name(name + ".case.json")
    case = json.loads(case_path.read_text()) if case_path.exists() else None
    optimized = sess
    if case is not None and case.get("onnxruntime_optimization") == "disable_all":
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    if case is None:
        feeds = {i.name: zeros_for(i) for i in model.graph.input}
        try:
            sess.run(None, feeds)
            rows.append((name, "ort run (zeros)", "-", "ok", "no case file"))
        except Exception as e:
            rows.append((name, "ort run (zeros)", "-", "FAIL", str(e).splitlines()[0][:100]))
        return rows

    feeds = {s["name"]: read_tensor(path.parent, s) for s in case["inputs"]}
    out_names = [o.name for o in sess.get_outputs()]
    wanted = [s for s in case["outputs"]]
    missing = [s["name"] for s in wanted if s["name"] not in out_names]
    if missing:
        return rows + [(name, "outputs", "-", "FAIL", f"model lacks outputs {missing}")]
    try:
        results = sess.run([s["name"] for s in wanted], feeds)
    except Exception as e:
        return rows + [(name, "ort run", "-", "FAIL", str(e).splitlines()[0][:100])]
    for spec, got in zip(wanted, results):
        want = read_tensor(path.parent, spec)
        figure, ok, note = compare(spec, got, want)
        kind = "exact" if spec["dtype"] == "int8" else "rel"
        rows.append((name, f"{spec['name']} ({spec['dtype']}, {kind})", f"{figure:.2e}", "ok" if ok else "FAIL", note))
    if optimized is not sess:
        for spec, got in zip(wanted, optimized.run([s["name"] for s in wanted], feeds)):
            figure, ok, note = compare(spec, got, read_tensor(path.parent, spec))
            rows.append((name, f"{spec['name']} (optimized ort)", f"{figure:.2e}", "info", note))
    return rows


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = pathlib.Path(argv[1])
    models = sorted(root.rglob("*.onnx"))
    if not models:
        print(f"no *.onnx under {root}", file=sys.stderr)
        return 1
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}; "
          f"float tolerance {FLOAT_REL_TOL:g} of max|expected|, int8 exact")
    rows = []
    for m in models:
        rows.extend(validate(m))
    header = ("model", "check", "figure", "status", "note")
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(5)]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for r in rows:
        print(line(r))
    failed = [r for r in rows if r[3] not in ("ok", "info")]
    checks = [r for r in rows if r[3] != "info"]
    print(f"{len(models)} models, {len(checks)} checks, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
