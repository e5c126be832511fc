//! ONNX import: models in the forms PyTorch writes (built by hand from the prost messages) and
//! models the crate's own writers produce are imported, written as model files and run in the
//! runtime; the outputs match tract-onnx on the original ONNX within `REL_TOL`. The errors name
//! the node that cannot be imported (`errors.rs`).

mod build;
mod errors;

use build::*;
use tinygen_export::check::{rel_err, Load, Tract};
use tinygen_export::dag::{Dag, Op};
use tinygen_export::import::{import_onnx, ImportOptions, Imported};
use tinygen_export::tgm::AlignedBytes;
use tinygen_export::{Conv, ConvSpec, Graph, Layer, OutputRange, Part, Shape};
use tinygen_runtime::model::Model;

/// f32 against tract: both accumulate in f32 in different orders (and the importer folds
/// BatchNormalization into the weights), so they differ by a few units of roundoff of the
/// output's magnitude.
const REL_TOL: f64 = 1e-5;

/// Runs the imported model's file in the runtime on `x` (one or two inputs).
fn run_imported(imp: &Imported, x: &[Vec<f32>]) -> Vec<f32> {
    let file = AlignedBytes::new(&imp.write_f32().unwrap());
    let model = Model::parse(&file).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![f32::NAN; model.output_len()];
    match x {
        [z] => model.run(z, &mut arena, &mut out).unwrap(),
        [z, c] => model.run_conditional(z, c, &mut arena, &mut out).unwrap(),
        _ => unreachable!(),
    }
    out
}

/// Imports `onnx`, then compares the runtime with tract on inputs of ONNX dims `dims` (batch
/// 1 included) for a few seeds. Returns the import.
fn check(name: &str, onnx: &[u8], opts: &ImportOptions, dims: &[Vec<usize>]) -> Imported {
    let imp = import_onnx(onnx, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let tract = Tract::load(name, onnx, &Load::default()).unwrap();
    for seed in 0..4 {
        let x: Vec<Vec<f32>> = dims
            .iter()
            .enumerate()
            .map(|(k, d)| values(d.iter().product(), seed * 7 + k as u32))
            .collect();
        let inputs: Vec<(&[usize], &[f32])> = dims
            .iter()
            .zip(&x)
            .map(|(d, v)| (d.as_slice(), v.as_slice()))
            .collect();
        let want = tract.run_f32_inputs(&inputs).unwrap();
        let got = run_imported(&imp, &x);
        let err = rel_err(&got, &want).unwrap();
        assert!(err <= REL_TOL, "{name} seed {seed}: relative error {err:e}");
    }
    imp
}

fn ops(dag: &Dag) -> Vec<&'static str> {
    dag.nodes
        .iter()
        .map(|n| match &n.op {
            Op::Layer(l) => l.name(),
            Op::Binary(..) => "Binary",
            Op::Exp => "Exp",
            Op::Concat(_) => "Concat",
            Op::Slice { .. } => "Slice",
            Op::Gather(_) => "Gather",
        })
        .collect()
}

#[test]
fn pytorch_linear_generator_with_gemm_trans_b_and_batch_norm() {
    // nn.Linear(6, 12) -> LeakyReLU(0.2) -> nn.Linear(12, 10) -> BatchNorm1d -> ReLU
    //   -> nn.Linear(10, 5) -> Tanh
    let nodes = vec![
        node(
            "Gemm",
            "/fc1/Gemm",
            &["z", "fc1.weight", "fc1.bias"],
            &["/fc1/Gemm_output_0"],
            vec![float("alpha", 1.0), float("beta", 1.0), int("transB", 1)],
        ),
        node(
            "LeakyRelu",
            "/act1/LeakyRelu",
            &["/fc1/Gemm_output_0"],
            &["a1"],
            vec![float("alpha", 0.2)],
        ),
        node(
            "Gemm",
            "/fc2/Gemm",
            &["a1", "fc2.weight", "fc2.bias"],
            &["h2"],
            vec![int("transB", 1)],
        ),
        node(
            "BatchNormalization",
            "/bn/BatchNormalization",
            &[
                "h2",
                "bn.weight",
                "bn.bias",
                "bn.running_mean",
                "bn.running_var",
            ],
            &["b2"],
            vec![float("epsilon", 1e-5), float("momentum", 0.9)],
        ),
        node("Relu", "/act2/Relu", &["b2"], &["a2"], vec![]),
        node(
            "Gemm",
            "/fc3/Gemm",
            &["a2", "fc3.weight", "fc3.bias"],
            &["h3"],
            vec![int("transB", 1), float("alpha", 0.5), float("beta", 2.0)],
        ),
        node("Tanh", "/out/Tanh", &["h3"], &["x"], vec![]),
    ];
    let var: Vec<f32> = values(10, 9).iter().map(|v| v.abs() + 0.5).collect();
    let inits = vec![
        f32_raw("fc1.weight", &[12, 6], &values(72, 1)),
        f32_raw("fc1.bias", &[12], &values(12, 2)),
        f32_raw("fc2.weight", &[10, 12], &values(120, 3)),
        f32_raw("fc2.bias", &[10], &values(10, 4)),
        f32_raw("bn.weight", &[10], &values(10, 5)),
        f32_raw("bn.bias", &[10], &values(10, 6)),
        f32_raw("bn.running_mean", &[10], &values(10, 7)),
        f32_raw("bn.running_var", &[10], &var),
        f32_raw("fc3.weight", &[5, 10], &values(50, 8)),
        f32_typed("fc3.bias", &[5], &values(5, 10)),
    ];
    let onnx = model(17, vec![value("z", &[6])], value("x", &[5]), nodes, inits);
    let imp = check("linear", &onnx, &ImportOptions::default(), &[vec![1, 6]]);
    // BatchNormalization is folded into /fc2/Gemm.
    assert_eq!(
        ops(&imp.dag),
        ["Dense", "LeakyRelu", "Dense", "Relu", "Dense", "Tanh"]
    );
    assert_eq!((imp.latent, imp.output_shape), (6, Shape::flat(5)));
    assert_eq!(imp.output_range, OutputRange::MinusOneOne);
}

#[test]
fn matmul_followed_by_add_is_one_dense_layer() {
    // Keras-style: MatMul with a [K, M] kernel, then Add of the bias, Sigmoid.
    let nodes = vec![
        node(
            "MatMul",
            "dense/MatMul",
            &["z", "dense/kernel"],
            &["mm"],
            vec![],
        ),
        node(
            "Add",
            "dense/BiasAdd",
            &["mm", "dense/bias"],
            &["pre"],
            vec![],
        ),
        node("Sigmoid", "dense/Sigmoid", &["pre"], &["x"], vec![]),
    ];
    let inits = vec![
        f32_typed("dense/kernel", &[4, 7], &values(28, 1)),
        f32_typed("dense/bias", &[7], &values(7, 2)),
    ];
    let onnx = model(13, vec![value("z", &[4])], value("x", &[7]), nodes, inits);
    let imp = check("matmul", &onnx, &ImportOptions::default(), &[vec![1, 4]]);
    assert_eq!(ops(&imp.dag), ["Dense", "Sigmoid"]);
    assert_eq!(imp.output_range, OutputRange::ZeroOne);
}

#[test]
fn a_weight_transposed_before_matmul_is_folded() {
    // torch.export-style Linear: Transpose(weight [M, K]) -> MatMul -> Add(bias) -> Tanh.
    let nodes = vec![
        node(
            "Transpose",
            "/fc/t",
            &["fc.weight"],
            &["wt"],
            vec![ints("perm", &[1, 0])],
        ),
        node("MatMul", "/fc/MatMul", &["z", "wt"], &["mm"], vec![]),
        node("Add", "/fc/Add", &["bias", "mm"], &["pre"], vec![]),
        node("Tanh", "/Tanh", &["pre"], &["x"], vec![]),
    ];
    let inits = vec![
        f32_raw("fc.weight", &[5, 3], &values(15, 1)),
        f32_raw("bias", &[5], &values(5, 2)),
    ];
    let onnx = model(18, vec![value("z", &[3])], value("x", &[5]), nodes, inits);
    let imp = check(
        "transposed",
        &onnx,
        &ImportOptions::default(),
        &[vec![1, 3]],
    );
    assert_eq!(ops(&imp.dag), ["Dense", "Tanh"]);
}

fn bn(
    prefix: &str,
    input: &str,
    output: &str,
    c: usize,
    seed: u32,
) -> (
    tinygen_export::onnx::proto::NodeProto,
    Vec<tinygen_export::onnx::proto::TensorProto>,
) {
    let n = |s: &str| format!("{prefix}.{s}");
    let var: Vec<f32> = values(c, seed + 3).iter().map(|v| v * v + 0.3).collect();
    (
        node(
            "BatchNormalization",
            &format!("/{prefix}/BatchNormalization"),
            &[
                input,
                &n("weight"),
                &n("bias"),
                &n("running_mean"),
                &n("running_var"),
            ],
            &[output],
            vec![float("epsilon", 1e-5)],
        ),
        vec![
            f32_raw(&n("weight"), &[c as i64], &values(c, seed)),
            f32_raw(&n("bias"), &[c as i64], &values(c, seed + 1)),
            f32_raw(&n("running_mean"), &[c as i64], &values(c, seed + 2)),
            f32_raw(&n("running_var"), &[c as i64], &var),
        ],
    )
}

#[test]
fn conv_and_conv_transpose_with_batch_norm_fold_into_the_layers() {
    // x [N, 2, 6, 6] -> Conv 3x3 pad 1 -> BN -> ReLU -> ConvTranspose 4x4 s2 p1 -> BN -> Tanh
    let (bn1, mut p1) = bn("bn1", "c1", "b1", 3, 10);
    let (bn2, p2) = bn("bn2", "t2", "b2", 2, 20);
    let nodes = vec![
        node(
            "Conv",
            "/conv1/Conv",
            &["z", "conv1.weight", "conv1.bias"],
            &["c1"],
            vec![
                ints("dilations", &[1, 1]),
                int("group", 1),
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[1, 1]),
            ],
        ),
        bn1,
        node("Relu", "/relu/Relu", &["b1"], &["r1"], vec![]),
        node(
            "ConvTranspose",
            "/up/ConvTranspose",
            &["r1", "up.weight"],
            &["t2"],
            vec![
                ints("kernel_shape", &[4, 4]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[2, 2]),
                ints("output_padding", &[0, 0]),
                string("auto_pad", "NOTSET"),
            ],
        ),
        bn2,
        node("Tanh", "/Tanh", &["b2"], &["x"], vec![]),
    ];
    p1.extend(p2);
    p1.push(f32_raw("conv1.weight", &[3, 2, 3, 3], &values(54, 1)));
    p1.push(f32_raw("conv1.bias", &[3], &values(3, 2)));
    p1.push(f32_raw("up.weight", &[3, 2, 4, 4], &values(96, 3)));
    let onnx = model(
        17,
        vec![value("z", &[2, 6, 6])],
        value("x", &[2, 12, 12]),
        nodes,
        p1,
    );
    let imp = check(
        "conv_bn",
        &onnx,
        &ImportOptions::default(),
        &[vec![1, 2, 6, 6]],
    );
    assert_eq!(ops(&imp.dag), ["Conv2d", "Relu", "ConvTranspose2d", "Tanh"]);
    assert_eq!(imp.output_shape, Shape::chw(2, 12, 12));
}

#[test]
fn batch_norm_with_nothing_before_it_is_a_per_channel_mul_and_add() {
    let (bn1, inits) = bn("bn", "z", "x", 3, 1);
    let onnx = model(
        15,
        vec![value("z", &[3, 2, 2])],
        value("x", &[3, 2, 2]),
        vec![bn1],
        inits,
    );
    let opts = ImportOptions {
        output_range: Some(OutputRange::Unbounded),
        ..Default::default()
    };
    let imp = check("bn_alone", &onnx, &opts, &[vec![1, 3, 2, 2]]);
    assert_eq!(ops(&imp.dag), ["Binary", "Binary"]);
}

#[test]
fn a_reshape_fed_by_shape_gather_unsqueeze_concat_is_folded() {
    // x = fc(z).view(z.size(0), 4, 2, 2) with a dynamic batch, as torch.onnx writes it.
    let nodes = vec![
        node(
            "Gemm",
            "/fc/Gemm",
            &["z", "fc.weight", "fc.bias"],
            &["h"],
            vec![int("transB", 1)],
        ),
        node("Shape", "/Shape", &["z"], &["s"], vec![]),
        node(
            "Constant",
            "/Constant",
            &[],
            &["zero"],
            vec![tensor_attr("value", i64_typed("", &[], &[0]))],
        ),
        node(
            "Gather",
            "/Gather",
            &["s", "zero"],
            &["n"],
            vec![int("axis", 0)],
        ),
        node(
            "Constant",
            "/Constant_1",
            &[],
            &["axes"],
            vec![tensor_attr("value", i64_typed("", &[1], &[0]))],
        ),
        node("Unsqueeze", "/Unsqueeze", &["n", "axes"], &["n1"], vec![]),
        node("Cast", "/Cast", &["rest32"], &["rest"], vec![int("to", 7)]),
        node(
            "Concat",
            "/Concat",
            &["n1", "rest"],
            &["shape"],
            vec![int("axis", 0)],
        ),
        node(
            "Reshape",
            "/Reshape",
            &["h", "shape"],
            &["img"],
            vec![int("allowzero", 0)],
        ),
        node(
            "ConvTranspose",
            "/up/ConvTranspose",
            &["img", "up.weight", "up.bias"],
            &["t"],
            vec![
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                ints("kernel_shape", &[3, 3]),
                ints("output_padding", &[1, 1]),
            ],
        ),
        node("Sigmoid", "/Sigmoid", &["t"], &["x"], vec![]),
    ];
    let inits = vec![
        f32_raw("fc.weight", &[16, 5], &values(80, 1)),
        f32_raw("fc.bias", &[16], &values(16, 2)),
        i32_typed("rest32", &[3], &[4, 2, 2]),
        f32_raw("up.weight", &[4, 1, 3, 3], &values(36, 3)),
        f32_raw("up.bias", &[1], &[0.1]),
    ];
    let onnx = model(
        13,
        vec![value("z", &[5])],
        value("x", &[1, 4, 4]),
        nodes,
        inits,
    );
    let imp = check(
        "dynamic_reshape",
        &onnx,
        &ImportOptions::default(),
        &[vec![1, 5]],
    );
    assert_eq!(
        ops(&imp.dag),
        ["Dense", "Reshape", "ConvTranspose2d", "Sigmoid"]
    );
    assert_eq!(imp.output_dims, [1, 4, 4]);
}

#[test]
fn flatten_dropout_and_identity_only_move_shapes() {
    // A decoder from an image: Conv -> Flatten -> Dropout -> Identity -> Gemm (no transB) ->
    // Unsqueeze/Squeeze round trip, unbounded output.
    let nodes = vec![
        node(
            "Conv",
            "/enc/Conv",
            &["z", "w"],
            &["c"],
            vec![ints("strides", &[2, 2])],
        ),
        node("Flatten", "/Flatten", &["c"], &["f"], vec![int("axis", 1)]),
        node(
            "Dropout",
            "/drop/Dropout",
            &["f"],
            &["d", "mask"],
            vec![float("ratio", 0.5)],
        ),
        node("Identity", "/Identity", &["d"], &["i"], vec![]),
        node("Gemm", "/fc/Gemm", &["i", "fc.w", "fc.b"], &["g"], vec![]),
        node(
            "Unsqueeze",
            "/Unsqueeze",
            &["g"],
            &["u"],
            vec![ints("axes", &[2])],
        ),
        node(
            "Squeeze",
            "/Squeeze",
            &["u"],
            &["x"],
            vec![ints("axes", &[-1])],
        ),
    ];
    let inits = vec![
        f32_raw("w", &[2, 1, 3, 3], &values(18, 1)),
        f32_typed("fc.w", &[8, 3], &values(24, 2)),
        f32_raw("fc.b", &[1, 3], &values(3, 3)),
    ];
    let onnx = model(
        11,
        vec![value("z", &[1, 5, 5])],
        value("x", &[3]),
        nodes,
        inits,
    );
    let opts = ImportOptions {
        output_range: Some(OutputRange::Unbounded),
        part: Part::Generator,
    };
    let imp = check("flatten", &onnx, &opts, &[vec![1, 1, 5, 5]]);
    assert_eq!(ops(&imp.dag), ["Conv2d", "Dense"]);
    assert_eq!(imp.output_range, OutputRange::Unbounded);
}

#[test]
fn a_conditional_generator_takes_the_condition_as_second_input() {
    // cat([z, onehot]) -> Gemm -> Add(residual from a second Gemm) -> Sub constant -> Tanh
    let nodes = vec![
        node(
            "Concat",
            "/Concat",
            &["z", "y"],
            &["zc"],
            vec![int("axis", 1)],
        ),
        node(
            "Gemm",
            "/a/Gemm",
            &["zc", "a.w", "a.b"],
            &["ha"],
            vec![int("transB", 1)],
        ),
        node(
            "Gemm",
            "/b/Gemm",
            &["zc", "b.w"],
            &["hb"],
            vec![int("transB", 1)],
        ),
        node("Add", "/Add", &["ha", "hb"], &["s"], vec![]),
        node("Sub", "/Sub", &["one", "s"], &["d"], vec![]),
        node("Mul", "/Mul", &["d", "half"], &["m"], vec![]),
        node("Div", "/Div", &["m", "two"], &["q"], vec![]),
        node("Tanh", "/Tanh", &["q"], &["x"], vec![]),
    ];
    let inits = vec![
        f32_raw("a.w", &[6, 7], &values(42, 1)),
        f32_raw("a.b", &[6], &values(6, 2)),
        f32_raw("b.w", &[6, 7], &values(42, 3)),
        f32_raw("one", &[], &[1.0]),
        f32_raw("half", &[1, 6], &values(6, 4)),
        f32_raw("two", &[1], &[2.0]),
    ];
    let onnx = model(
        13,
        vec![value("z", &[4]), value("y", &[3])],
        value("x", &[6]),
        nodes,
        inits,
    );
    let imp = check(
        "conditional",
        &onnx,
        &ImportOptions::default(),
        &[vec![1, 4], vec![1, 3]],
    );
    assert_eq!((imp.latent, imp.condition), (4, Some(3)));
}

#[test]
fn exporter_graphs_round_trip_through_onnx() {
    // Dag -> ONNX -> import: the same outputs as the original graph's model file.
    for g in tinygen_testkit::graphs::graphs() {
        let dag = g.dag();
        let onnx = dag.to_onnx_f32(g.name).unwrap();
        let opts = ImportOptions {
            output_range: Some(dag.output_range()),
            ..Default::default()
        };
        let dims: Vec<Vec<usize>> = dag
            .inputs
            .iter()
            .map(|s| {
                if s.h == 1 && s.w == 1 {
                    vec![1, s.c]
                } else {
                    vec![1, s.c, s.h, s.w]
                }
            })
            .collect();
        let imp = check(g.name, &onnx, &opts, &dims);
        let file = AlignedBytes::new(&dag.write_f32().unwrap());
        let original = Model::parse(&file).unwrap();
        for seed in 0..4 {
            let x = tinygen_testkit::graphs::sample_inputs(&g, seed);
            let mut arena = vec![0u8; original.arena_bytes()];
            let mut want = vec![0f32; original.output_len()];
            match &x[..] {
                [z] => original.run(z, &mut arena, &mut want).unwrap(),
                [z, c] => original
                    .run_conditional(z, c, &mut arena, &mut want)
                    .unwrap(),
                _ => unreachable!(),
            }
            let err = rel_err(&run_imported(&imp, &x), &want).unwrap();
            assert!(err <= REL_TOL, "{} seed {seed}: {err:e}", g.name);
        }
    }
}

#[test]
fn a_chain_round_trips_through_onnx() {
    let convt = |i: usize, o: usize, seed: u32| Conv {
        spec: ConvSpec::square(i, o, 4, 2, 1),
        weight: values(i * o * 16, seed),
        bias: values(o, seed + 1),
    };
    let g = Graph {
        part: Part::Generator,
        input: Shape::flat(8),
        layers: vec![
            Layer::Dense {
                inputs: 8,
                outputs: 4 * 3 * 3,
                weight: values(288, 1),
                bias: values(36, 2),
            },
            Layer::Reshape {
                to: Shape::chw(4, 3, 3),
            },
            Layer::LeakyRelu { alpha: 0.2 },
            Layer::ConvTranspose2d(convt(4, 2, 3)),
            Layer::Relu,
            Layer::ConvTranspose2d(convt(2, 1, 5)),
            Layer::Tanh,
        ],
    };
    let onnx = tinygen_export::onnx::to_onnx_f32(&g, "dcgan").unwrap();
    let imp = check("dcgan", &onnx, &ImportOptions::default(), &[vec![1, 8]]);
    assert_eq!(imp.dag, Dag::from_chain(&g));
    let want = tinygen_export::tgm::write_f32(&g).unwrap();
    assert!(imp.write_f32().unwrap() == want, "the model files differ");
}
