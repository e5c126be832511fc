#!/usr/bin/env python3
"""Writes the ONNX project's node test cases for the operators the importer maps.

Usage: onnx-node-cases.py DIR [OP ...]

For each operator (by default the list OPERATORS below), in a fresh Python process per operator
(the generators of `onnx.backend.test.case.node` register cases in module-level state, and some
operators' generators import others), `onnx.backend.test.case.node.collect_testcases(OP)` gives
the cases; each case is written as

    DIR/OP/CASE/model.onnx
    DIR/OP/CASE/test_data_set_K/input_J.pb    the remaining graph inputs, ONNX TensorProto
    DIR/OP/CASE/test_data_set_K/output_J.pb   the expected outputs, ONNX TensorProto

which is the layout of the ONNX backend test data. Cases named `*_expanded*` (the operator's
function body written out in other operators) are left out. The Rust test
`export/tests/onnx_node_cases.rs` (`TINYGEN_ONNX_NODE_CASES=DIR`) imports every case and runs it.

Weights become initializers: graph inputs that hold weights in a model are initializers, and
the runtime takes only the latent (and a condition) at run time. Which inputs (by position)
become initializers, from the case's own arrays:
    Gemm: B, C (1, 2)          MatMul: B (1)
    Conv: W, B (1, 2)          ConvTranspose: W, B (1, 2)
    BatchNormalization: scale, B, input_mean, input_var (1..4)
    Reshape: shape (1)
The others (Relu, LeakyRelu, Sigmoid, Tanh, Flatten: one input; Add, Mul, Concat: every input
is data) keep all their inputs as graph inputs.

Requirements: the `onnx` wheel (tested with 1.23) and numpy.
"""

import os
import subprocess
import sys

OPERATORS = [
    "Gemm", "MatMul", "Conv", "ConvTranspose", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "BatchNormalization", "Add", "Mul", "Concat", "Reshape", "Flatten",
]

# Input positions turned into initializers, per operator.
WEIGHTS = {
    "Gemm": {1, 2},
    "MatMul": {1},
    "Conv": {1, 2},
    "ConvTranspose": {1, 2},
    "BatchNormalization": {1, 2, 3, 4},
    "Reshape": {1},
}


def write_operator(op, out_dir):
    """Writes the cases of one operator (run in its own process)."""
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.case.node import collect_testcases

    # `*_expanded*` cases run the operator's function body (Where, Less, Max, CastLike, ...),
    # not the operator: the importer maps the operator itself, so they are left out.
    cases = [c for c in collect_testcases(op) if c.kind == "node" and "_expanded" not in c.name]
    weights = WEIGHTS.get(op, set())
    for case in cases:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        graph = model.graph
        inputs = list(graph.input)
        case_dir = os.path.join(out_dir, op, case.name)
        os.makedirs(case_dir, exist_ok=True)
        # Graph input position -> index into the node's input list.
        node_inputs = list(graph.node[0].input) if len(graph.node) == 1 else []
        frozen = set()
        for k, vi in enumerate(inputs):
            pos = node_inputs.index(vi.name) if vi.name in node_inputs else k
            if pos in weights:
                frozen.add(k)
        datasets = case.data_sets or []
        if frozen and datasets:
            first_inputs = datasets[0][0]
            for k in sorted(frozen):
                graph.initializer.append(numpy_helper.from_array(first_inputs[k], inputs[k].name))
            keep = [vi for k, vi in enumerate(inputs) if k not in frozen]
            del graph.input[:]
            graph.input.extend(keep)
        onnx.save(model, os.path.join(case_dir, "model.onnx"))
        for d, (ins, outs) in enumerate(datasets):
            data_dir = os.path.join(case_dir, f"test_data_set_{d}")
            os.makedirs(data_dir, exist_ok=True)
            j = 0
            for k, x in enumerate(ins):
                if k in frozen:
                    continue
                t = numpy_helper.from_array(x, inputs[k].name)
                with open(os.path.join(data_dir, f"input_{j}.pb"), "wb") as f:
                    f.write(t.SerializeToString())
                j += 1
            for k, y in enumerate(outs):
                t = numpy_helper.from_array(y, graph.output[k].name)
                with open(os.path.join(data_dir, f"output_{k}.pb"), "wb") as f:
                    f.write(t.SerializeToString())
            # Frozen weights differ between data sets only if the case says so: keep the first.
            if frozen and d > 0:
                break
    print(f"{op}: {len(cases)} cases", file=sys.stderr)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--one":
        write_operator(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_dir = sys.argv[1]
    ops = sys.argv[2:] or OPERATORS
    os.makedirs(out_dir, exist_ok=True)
    for op in ops:
        subprocess.run([sys.executable, "-W", "ignore", __file__, "--one", op, out_dir], check=True)


if __name__ == "__main__":
    main()
