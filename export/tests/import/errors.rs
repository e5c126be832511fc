//! Every construct the importer cannot map is an error naming the node (or input, initializer,
//! output), and no input makes it panic.

use super::build::*;
use tinygen_export::import::{import_onnx, ImportError, ImportOptions, Limit};
use tinygen_export::onnx::proto::{NodeProto, TensorProto};
use tinygen_export::OutputRange;

fn opts() -> ImportOptions {
    ImportOptions {
        output_range: Some(OutputRange::Unbounded),
        ..Default::default()
    }
}

/// Imports a model of one input `z` `[N, dims]` and `nodes` ending in `x`.
fn import(dims: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Result<(), ImportError> {
    import_onnx(
        &model(13, vec![value("z", dims)], value("x", &[]), nodes, inits),
        &opts(),
    )
    .map(|_| ())
}

/// The error names `node` and reports `limit`.
fn assert_limit(r: Result<(), ImportError>, node: &str, limit: Limit) {
    let e = r.expect_err("the import should fail");
    assert_eq!(e.limit(), Some(limit), "{e}");
    assert_eq!(e.node(), Some(node), "{e}");
    assert!(e.to_string().contains(node), "{e}");
}

fn conv(name: &str, attrs: Vec<tinygen_export::onnx::proto::AttributeProto>) -> Vec<NodeProto> {
    vec![node("Conv", name, &["z", "w"], &["x"], attrs)]
}

fn w(dims: &[i64]) -> Vec<TensorProto> {
    let n = dims.iter().product::<i64>() as usize;
    vec![f32_raw("w", dims, &values(n, 1))]
}

#[test]
fn convolution_forms_the_runtime_cannot_run_are_named() {
    let r = import(
        &[2, 5, 5],
        conv("/g/Conv", vec![int("group", 2)]),
        w(&[2, 1, 3, 3]),
    );
    assert_limit(r, "/g/Conv", Limit::Group);
    let r = import(
        &[1, 5, 5],
        conv("/d/Conv", vec![ints("dilations", &[2, 2])]),
        w(&[1, 1, 3, 3]),
    );
    assert_limit(r, "/d/Conv", Limit::Dilation);
    let r = import(
        &[1, 5, 5],
        conv("/p/Conv", vec![ints("pads", &[0, 0, 1, 1])]),
        w(&[1, 1, 3, 3]),
    );
    assert_limit(r, "/p/Conv", Limit::AsymmetricPadding);
    let r = import(
        &[1, 5, 5],
        conv("/s/Conv", vec![string("auto_pad", "SAME_UPPER")]),
        w(&[1, 1, 2, 2]),
    );
    assert_limit(r, "/s/Conv", Limit::AutoPad);
    let r = import(&[1, 5], conv("/c1/Conv", vec![]), w(&[1, 1, 3]));
    assert_limit(r, "/c1/Conv", Limit::ConvRank);
    // SAME padding that splits evenly is accepted.
    import(
        &[1, 5, 5],
        conv("/same/Conv", vec![string("auto_pad", "SAME_UPPER")]),
        w(&[1, 1, 3, 3]),
    )
    .unwrap();
}

#[test]
fn shape_and_broadcast_limits_are_named() {
    // A reshape that moves the batch.
    let r = import(
        &[6],
        vec![node("Reshape", "/Reshape", &["z", "s"], &["x"], vec![])],
        vec![i64_typed("s", &[2], &[6, 1])],
    );
    assert_limit(r, "/Reshape", Limit::BatchAxis);
    // Flatten at axis 0.
    let r = import(
        &[2, 3],
        vec![node(
            "Flatten",
            "/Flatten",
            &["z"],
            &["x"],
            vec![int("axis", 0)],
        )],
        vec![],
    );
    assert_limit(r, "/Flatten", Limit::BatchAxis);
    // Rank 4 per sample.
    let r = import(
        &[16],
        vec![node("Reshape", "/r5", &["z", "s"], &["x"], vec![])],
        vec![i64_typed("s", &[5], &[-1, 2, 2, 2, 2])],
    );
    assert_limit(r, "/r5", Limit::Rank);
    // Concat along the height.
    let r = import(
        &[2, 2, 2],
        vec![node(
            "Concat",
            "/cat",
            &["z", "z"],
            &["x"],
            vec![int("axis", 2)],
        )],
        vec![],
    );
    assert_limit(r, "/cat", Limit::Axis);
    // A constant that varies along the width.
    let r = import(
        &[2, 1, 3],
        vec![node("Add", "/add", &["z", "k"], &["x"], vec![])],
        vec![f32_raw("k", &[3], &[1.0, 2.0, 3.0])],
    );
    assert_limit(r, "/add", Limit::Broadcast);
    // Weights computed at run time.
    let r = import(
        &[3],
        vec![node("MatMul", "/mm", &["z", "z"], &["x"], vec![])],
        vec![],
    );
    assert_limit(r, "/mm", Limit::RuntimeOperand);
    let r = import(
        &[3],
        vec![node(
            "Gemm",
            "/ta",
            &["z", "w"],
            &["x"],
            vec![int("transA", 1)],
        )],
        w(&[3, 3]),
    );
    assert_limit(r, "/ta", Limit::RuntimeOperand);
    // A batched matrix product.
    let r = import(
        &[2, 3],
        vec![node("MatMul", "/bmm", &["z", "w"], &["x"], vec![])],
        w(&[3, 4]),
    );
    assert_limit(r, "/bmm", Limit::MatMulRank);
    // An activation of a constant.
    let r = import(
        &[3],
        vec![
            node("Relu", "/relu", &["w"], &["r"], vec![]),
            node("Add", "/a", &["z", "r"], &["x"], vec![]),
        ],
        w(&[3]),
    );
    assert_limit(r, "/relu", Limit::ConstantOperand);
}

#[test]
fn graph_inputs_the_runtime_cannot_take_are_named() {
    let m = |inputs| {
        model(
            13,
            inputs,
            value("x", &[]),
            vec![node("Relu", "r", &["z"], &["x"], vec![])],
            vec![],
        )
    };
    let e = import_onnx(&m(vec![value_typed("z", &[3], 1, Some(4))]), &opts()).unwrap_err();
    assert_eq!(
        (e.limit(), e.node()),
        (Some(Limit::Batch), Some("z")),
        "{e}"
    );
    let e = import_onnx(&m(vec![value_typed("z", &[3], 7, None)]), &opts()).unwrap_err();
    assert_eq!(e.limit(), Some(Limit::ElementType), "{e}");
    let e = import_onnx(
        &m(vec![value("z", &[3]), value("a", &[1]), value("b", &[1])]),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(
        (e.limit(), e.node()),
        (Some(Limit::Inputs), Some("b")),
        "{e}"
    );
    let e = import_onnx(&m(vec![value("z", &[-1])]), &opts()).unwrap_err();
    assert!(
        matches!(e, ImportError::Input { ref name, .. } if name == "z"),
        "{e}"
    );
}

#[test]
fn malformed_nodes_and_attributes_are_named() {
    let r = import(
        &[3],
        vec![node("Softmax", "/sm", &["z"], &["x"], vec![])],
        vec![],
    );
    let e = r.unwrap_err();
    assert!(
        matches!(e, ImportError::UnsupportedOp { ref node, ref op, .. } if node == "/sm" && op == "Softmax"),
        "{e}"
    );
    // An unmapped operator is named as such whatever its inputs are.
    let r = import(
        &[3],
        vec![node("CastLike", "/cl", &["w", "z"], &["x"], vec![])],
        w(&[3]),
    );
    assert!(
        matches!(r, Err(ImportError::UnsupportedOp { ref node, .. }) if node == "/cl"),
        "{r:?}"
    );
    let mut n = node("Relu", "/custom", &["z"], &["x"], vec![]);
    n.domain = "com.example".into();
    assert!(matches!(
        import(&[3], vec![n], vec![]),
        Err(ImportError::UnsupportedOp { .. })
    ));
    // alpha written as an integer.
    let e = import(
        &[3],
        vec![node(
            "LeakyRelu",
            "/lr",
            &["z"],
            &["x"],
            vec![int("alpha", 1)],
        )],
        vec![],
    )
    .unwrap_err();
    assert!(
        matches!(e, ImportError::Attribute { ref node, ref attribute, .. } if node == "/lr" && attribute == "alpha"),
        "{e}"
    );
    assert!(e.to_string().contains("FLOAT"), "{e}");
    // An input nobody computes; an unnamed node is named by its index and output.
    let e = import(
        &[3],
        vec![node("Relu", "", &["nope"], &["x"], vec![])],
        vec![],
    )
    .unwrap_err();
    assert_eq!(e.node(), Some("#0 -> x"), "{e}");
    // Dropout's mask read later.
    let e = import(
        &[3],
        vec![
            node("Dropout", "/drop", &["z"], &["d", "mask"], vec![]),
            node("Add", "/use", &["d", "mask"], &["x"], vec![]),
        ],
        vec![],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("/drop") && e.node() == Some("/use"),
        "{e}"
    );
    // Weights that do not fit the input.
    let e = import(
        &[4],
        vec![node(
            "Gemm",
            "/fc",
            &["z", "w"],
            &["x"],
            vec![int("transB", 1)],
        )],
        w(&[2, 3]),
    )
    .unwrap_err();
    assert!(
        matches!(e, ImportError::Node { ref node, .. } if node == "/fc"),
        "{e}"
    );
    // A huge ConstantOfShape.
    let e = import(
        &[3],
        vec![
            node("ConstantOfShape", "/big", &["s"], &["c"], vec![]),
            node("Add", "/a", &["z", "c"], &["x"], vec![]),
        ],
        vec![i64_typed("s", &[2], &[1 << 40, 1 << 40])],
    )
    .unwrap_err();
    assert_eq!(e.node(), Some("/big"), "{e}");
}

#[test]
fn initializers_outputs_and_ranges_are_checked() {
    let relu = || vec![node("Relu", "r", &["z"], &["x"], vec![])];
    let mut ext = f32_raw("w", &[1], &[1.0]);
    ext.data_location = 1;
    ext.raw_data.clear();
    assert!(
        matches!(import(&[3], relu(), vec![ext]), Err(ImportError::ExternalData { ref name }) if name == "w")
    );
    let short = f32_raw("w", &[4], &[1.0]);
    assert!(
        matches!(import(&[3], relu(), vec![short]), Err(ImportError::Initializer { ref name, .. }) if name == "w")
    );
    let huge = TensorProto {
        name: "w".into(),
        dims: vec![i64::MAX, 2],
        data_type: 1,
        ..Default::default()
    };
    assert!(matches!(
        import(&[3], relu(), vec![huge]),
        Err(ImportError::Initializer { .. })
    ));
    // No final Tanh or Sigmoid and no range given.
    let onnx = model(13, vec![value("z", &[3])], value("x", &[3]), relu(), vec![]);
    let e = import_onnx(&onnx, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, ImportError::OutputRange { .. }), "{e}");
    assert!(e.to_string().contains("output_range"), "{e}");
    // The output is the input.
    let onnx = model(13, vec![value("z", &[3])], value("z", &[3]), vec![], vec![]);
    assert!(matches!(
        import_onnx(&onnx, &opts()),
        Err(ImportError::Output { .. })
    ));
    // An unknown opset version.
    let onnx = model(99, vec![value("z", &[3])], value("x", &[3]), relu(), vec![]);
    assert!(matches!(
        import_onnx(&onnx, &opts()),
        Err(ImportError::Opset { version: 99, .. })
    ));
}

#[test]
fn arbitrary_bytes_and_damaged_models_never_panic() {
    assert!(matches!(
        import_onnx(b"not a model", &opts()),
        Err(ImportError::Decode { .. })
    ));
    let nodes = vec![
        node(
            "Conv",
            "/c",
            &["z", "w"],
            &["c"],
            vec![ints("pads", &[1, 1, 1, 1])],
        ),
        node("Shape", "/s", &["c"], &["s"], vec![]),
        node("Reshape", "/r", &["c", "s"], &["x"], vec![]),
    ];
    let good = model(
        13,
        vec![value("z", &[1, 4, 4])],
        value("x", &[]),
        nodes,
        w(&[2, 1, 3, 3]),
    );
    import_onnx(&good, &opts()).unwrap();
    // xorshift, seeded: truncations and byte flips of a valid model, then random bytes.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for n in 0..good.len() {
        let _ = import_onnx(&good[..n], &opts());
    }
    for _ in 0..4000 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let _ = import_onnx(&b, &opts());
    }
    for _ in 0..2000 {
        let b: Vec<u8> = (0..next() % 200).map(|_| next() as u8).collect();
        let _ = import_onnx(&b, &opts());
    }
}

#[test]
fn extreme_attribute_and_dimension_values_never_panic() {
    use prost::Message;
    use tinygen_export::onnx::proto::ModelProto;
    // Every integer of the model's attributes, initializer dimensions and input dimensions
    // replaced in turn by extreme values.
    let nodes = vec![
        node(
            "ConvTranspose",
            "/t",
            &["z", "w"],
            &["t"],
            vec![
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[2, 2]),
                ints("output_padding", &[1, 1]),
            ],
        ),
        node("Shape", "/s", &["t"], &["s"], vec![]),
        node("Gather", "/g", &["s", "i"], &["n"], vec![int("axis", 0)]),
        node("Unsqueeze", "/u", &["n"], &["n1"], vec![ints("axes", &[0])]),
        node(
            "Concat",
            "/c",
            &["n1", "rest"],
            &["shape"],
            vec![int("axis", 0)],
        ),
        node("Reshape", "/r", &["t", "shape"], &["f"], vec![]),
        node("Gemm", "/fc", &["f", "fc"], &["x"], vec![int("transB", 1)]),
    ];
    let mut inits = w(&[2, 1, 3, 3]);
    inits.push(i64_typed("i", &[], &[0]));
    inits.push(i64_typed("rest", &[1], &[-1]));
    inits.push(f32_raw("fc", &[3, 16], &values(48, 2)));
    let good = model(
        11,
        vec![value("z", &[2, 2, 2])],
        value("x", &[3]),
        nodes,
        inits,
    );
    import_onnx(&good, &opts()).unwrap();
    let m = ModelProto::decode(&good[..]).unwrap();
    let extremes = [0, -1, 2, 65_536, 1 << 40, i64::MAX, i64::MIN];
    let mut tried = 0;
    for site in 0.. {
        let mut hit = false;
        for &x in &extremes {
            let mut m2 = m.clone();
            let g = m2.graph.as_mut().unwrap();
            let mut k = 0;
            let mut visit = |v: &mut i64| {
                if k == site {
                    *v = x;
                    hit = true;
                }
                k += 1;
            };
            for n in &mut g.node {
                for a in &mut n.attribute {
                    a.ints.iter_mut().for_each(&mut visit);
                    if let Some(i) = a.i.as_mut() {
                        visit(i);
                    }
                }
            }
            for t in &mut g.initializer {
                t.dims.iter_mut().for_each(&mut visit);
                t.int64_data.iter_mut().for_each(&mut visit);
            }
            let _ = import_onnx(&m2.encode_to_vec(), &opts());
            tried += 1;
        }
        if !hit {
            break;
        }
    }
    assert!(tried > 100, "{tried}");
}
