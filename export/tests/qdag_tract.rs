//! The graph quantiser ([`quantize_dag`]) on branched graphs (a residual block, an affine
//! coupling, a permutation, a convolutional block with a skip concatenation): its int8 model
//! file matches tract-onnx on its QDQ graph bit for bit on fresh inputs, and stays close to the
//! f32 graph.

use tinygen_export::check::{Load, Tract};
use tinygen_export::dag::{Dag, DagNode, Op, Operand};
use tinygen_export::graph::{Conv, ConvSpec, Layer, Part, Shape};
use tinygen_export::onnx::qdq_graph::to_onnx_qdq_graph;
use tinygen_export::qdag::{quantize_dag, QOp};
use tinygen_export::quant::QLayer;
use tinygen_export::tgm::AlignedBytes;
use tinygen_runtime::kernels::graph::Binary;
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;
use tinygen_testkit::graphs::{graphs, sample_inputs};

fn gaussian(seed: u64, n: usize, len: usize) -> Vec<Vec<f32>> {
    let mut r = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut z = vec![0.0; len];
            r.fill_gaussian(&mut z);
            z
        })
        .collect()
}

fn weights(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = Rng::seed_from_u64(seed);
    let mut w = vec![0.0; n];
    r.fill_gaussian(&mut w);
    w.iter().map(|v| v * scale).collect()
}

/// Dense to an image, ReLU, ConvTranspose, then the upsampled features beside a second
/// ConvTranspose of them (a skip concatenation), a 1x1 Conv and Tanh.
fn conv_skip() -> Dag {
    let convt = |seed, cin, cout| {
        Layer::ConvTranspose2d(Conv {
            spec: ConvSpec::square(cin, cout, 4, 2, 1),
            weight: weights(seed, cin * cout * 16, 0.2),
            bias: weights(seed + 1, cout, 0.1),
        })
    };
    let node = |input, op| DagNode { input, op };
    Dag {
        part: Part::Generator,
        inputs: vec![Shape::flat(6)],
        nodes: vec![
            node(
                0,
                Op::Layer(Layer::Dense {
                    inputs: 6,
                    outputs: 32,
                    weight: weights(1, 6 * 32, 0.5),
                    bias: weights(2, 32, 0.1),
                }),
            ), // 1
            node(
                1,
                Op::Layer(Layer::Reshape {
                    to: Shape::chw(8, 2, 2),
                }),
            ), // 2
            node(2, Op::Layer(Layer::Relu)),    // 3 (folded)
            node(3, Op::Layer(convt(3, 8, 4))), // 4: [4, 4, 4]
            node(4, Op::Layer(Layer::LeakyRelu { alpha: 0.2 })), // 5
            node(
                5,
                Op::Layer(Layer::Conv2d(Conv {
                    spec: ConvSpec::square(4, 4, 3, 1, 1),
                    weight: weights(5, 4 * 4 * 9, 0.3),
                    bias: weights(6, 4, 0.1),
                })),
            ), // 6
            node(6, Op::Binary(Binary::Add, Operand::Tensor(5))), // 7: residual
            node(7, Op::Concat(5)),             // 8: [8, 4, 4]
            node(
                8,
                Op::Layer(Layer::Conv2d(Conv {
                    spec: ConvSpec::square(8, 1, 1, 1, 0),
                    weight: weights(7, 8, 0.4),
                    bias: vec![0.05],
                })),
            ), // 9
            node(9, Op::Layer(Layer::Tanh)),    // 10
        ],
    }
}

/// Every single-input graph of the test kit, and the convolutional block.
fn cases() -> Vec<(String, Dag)> {
    let mut v: Vec<(String, Dag)> = graphs()
        .into_iter()
        .filter(|g| g.inputs.len() == 1)
        .map(|g| (g.name.to_owned(), g.dag()))
        .collect();
    v.push(("conv_skip".into(), conv_skip()));
    v
}

#[test]
fn quantized_graphs_match_tract_bit_for_bit() {
    for (name, dag) in cases() {
        let len = dag.inputs[0].len();
        let q = quantize_dag(&dag, &gaussian(1, 64, len)).unwrap();
        let file = AlignedBytes::new(&q.write_int8().unwrap());
        let model = Model::parse(&file).unwrap();
        let f32_file = AlignedBytes::new(&dag.write_f32().unwrap());
        let f32_model = Model::parse(&f32_file).unwrap();
        let onnx = to_onnx_qdq_graph(&q, &name).unwrap();
        let tract = Tract::load(&name, &onnx, &Load::default()).unwrap();
        let mut dims = vec![1];
        dims.extend(if dag.inputs[0].h == 1 && dag.inputs[0].w == 1 {
            vec![len]
        } else {
            let s = dag.inputs[0];
            vec![s.c, s.h, s.w]
        });
        let mut distinct = std::collections::BTreeSet::new();
        let mut worst: f64 = 0.0;
        // Fresh inputs, not the calibration set; some beyond its range, which saturate.
        for (i, z) in gaussian(7, 24, len).iter().enumerate() {
            let z: Vec<f32> = z.iter().map(|v| v * (1.0 + i as f32 / 12.0)).collect();
            let want = tract.run_f32(&dims, &z).unwrap();
            let mut arena = vec![0u8; model.arena_bytes()];
            let mut got = vec![0f32; model.output_len()];
            model.run(&z, &mut arena, &mut got).unwrap();
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{name}: input {i}"
            );
            distinct.extend(got.iter().map(|v| v.to_bits()));
        }
        for z in gaussian(8, 12, len) {
            let run = |m: &Model<'_>| {
                let mut arena = vec![0u8; m.arena_bytes()];
                let mut out = vec![0f32; m.output_len()];
                m.run(&z, &mut arena, &mut out).unwrap();
                out
            };
            let (a, b) = (run(&model), run(&f32_model));
            let err: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .sum();
            let sig: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
            worst = worst.max((err / sig).sqrt());
        }
        eprintln!("{name}: int8 vs f32 {worst:.4} (rms error / rms f32)");
        assert!(
            distinct.len() > 8,
            "{name}: {} distinct values",
            distinct.len()
        );
        // Within the calibrated range int8 stays near the float graph: 0.03 to 0.09 here (the
        // deepest, conv_skip, loses most: five requantised layers and a concatenation that
        // moves one input to a coarser scale); a layout or scale mistake gives errors of
        // order one.
        assert!(worst < 0.15, "{name}: int8 vs f32 {worst}");
    }
}

#[test]
fn a_relu_after_a_layer_folds_into_its_clamp() {
    let q = quantize_dag(&conv_skip(), &gaussian(1, 16, 6)).unwrap();
    // Dense, Reshape, ConvTranspose: the ReLU is gone, the Dense clamps at its zero point.
    assert_eq!(q.nodes.len(), conv_skip().nodes.len() - 1);
    let QOp::Layer(QLayer::Dense { q: dense, .. }) = &q.nodes[0].op else {
        panic!("{:?}", q.nodes[0].op)
    };
    assert!(dense.relu);
    assert_eq!(dense.min, dense.output.zero_point);
    assert!(matches!(q.nodes[1].op, QOp::Layer(QLayer::Reshape { .. })));
    // The ConvTranspose reads the reshape's tensor (renumbered past the dropped ReLU).
    assert_eq!(q.nodes[2].input, 2);
    // The residual block's first Dense is read by its ReLU alone: it folds.
    let res = graphs().into_iter().find(|g| g.name == "residual").unwrap();
    let q = quantize_dag(&res.dag(), &gaussian(2, 16, 12)).unwrap();
    assert_eq!(q.nodes.len(), 3);
    // A Dense read by its ReLU and by something else keeps the ReLU as a table.
    let mut dag = res.dag();
    dag.nodes.truncate(2); // 1: Dense, 2: ReLU
    dag.nodes.push(DagNode {
        input: 2,
        op: Op::Binary(Binary::Add, Operand::Tensor(1)),
    });
    let q = quantize_dag(&dag, &gaussian(2, 16, 12)).unwrap();
    assert_eq!(q.nodes.len(), 3);
    let QOp::Layer(QLayer::Dense { q: dense, .. }) = &q.nodes[0].op else {
        panic!("{:?}", q.nodes[0].op)
    };
    assert!(!dense.relu);
    assert!(matches!(
        q.nodes[1].op,
        QOp::Layer(QLayer::Activation { .. })
    ));
}

#[test]
fn bad_calibration_and_second_inputs_are_refused() {
    let dag = conv_skip();
    let e = quantize_dag(&dag, &[]).unwrap_err();
    assert!(e.to_string().contains("calibration"), "{e}");
    let e = quantize_dag(&dag, &[vec![0.0; 5]]).unwrap_err();
    assert!(e.to_string().contains("5 values"), "{e}");
    let cond = graphs().into_iter().find(|g| g.inputs.len() == 2).unwrap();
    let x = sample_inputs(&cond, 0);
    let e = quantize_dag(&cond.dag(), &[x[0].clone()]).unwrap_err();
    assert!(e.to_string().contains("2 inputs"), "{e}");
}
