//! Lowering to the export graph: the folded graph computes what the eval-mode model computes.

use super::*;
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tinygen_export::OutputRange;

/// Plain f64 forward of one sample through the export graph (the layers' definitions).
fn reference_forward(graph: &Graph, z: &[f32]) -> Vec<f32> {
    let acts = tinygen_testkit::reference::forward_f64(graph, z);
    acts.last()
        .expect("layers")
        .iter()
        .map(|&v| v as f32)
        .collect()
}

fn randomise(bn: &mut BatchNorm, rng: &mut StdRng) {
    bn.gamma.mapv_inplace(|_| rng.random_range(0.5..1.5));
    bn.beta.mapv_inplace(|_| rng.random_range(-0.5..0.5));
}

/// Folding changes the order of f32 roundings (scale applied to the weights instead of
/// the outputs); through a few layers of O(1) activations that moves outputs by ~1e-6.
const FOLD_TOL: f32 = 1e-5;

#[test]
fn folded_graph_matches_eval_forward() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut bn0 = BatchNorm::new(12);
    let mut bn1 = BatchNorm::new(2);
    let mut bn2 = BatchNorm::new(3);
    randomise(&mut bn0, &mut rng);
    randomise(&mut bn1, &mut rng);
    randomise(&mut bn2, &mut rng);
    let mut model = Sequential::new("gen")
        .with("fc0", Linear::new(4, 12, true, &mut rng))
        .with("bn0", Module::BatchNorm1d(bn0))
        .with("act0", Activation::LeakyRelu(0.2))
        .with("drop", Dropout::new(0.3))
        .with("reshape", Reshape::chw(3, 2, 2))
        .with(
            "up",
            ConvTranspose2d::new(
                ConvSpec {
                    output_padding: (1, 1),
                    ..ConvSpec::square(3, 2, 3, 2, 1)
                },
                false,
                &mut rng,
            ),
        )
        .with("bn1", Module::BatchNorm2d(bn1))
        .with("act1", Activation::Relu)
        .with(
            "conv",
            Conv2d::new(ConvSpec::square(2, 3, 3, 1, 1), true, &mut rng),
        )
        .with("bn2", Module::BatchNorm2d(bn2))
        .with("act2", Activation::Tanh)
        .with("flat", Module::Flatten)
        .with("fc1", Linear::new(3 * 4 * 4, 5, true, &mut rng))
        .with("out", Activation::Sigmoid);
    // Train-mode passes give the running statistics values far from (0, 1).
    for _ in 0..20 {
        let x = ArrayD::from_shape_simple_fn(ndarray::IxDyn(&[16, 4]), || {
            rng.random_range(-2.0f32..3.0)
        });
        model.forward(x, Mode::Train, &mut rng);
    }
    let graph = model.to_graph(Part::Generator, Shape::flat(4)).unwrap();
    // Dense, LeakyRelu, Reshape, ConvT, Relu, Conv, Tanh, Reshape, Dense, Sigmoid.
    let names: Vec<&str> = graph.layers.iter().map(Layer::name).collect();
    assert_eq!(
        names,
        [
            "Dense",
            "LeakyRelu",
            "Reshape",
            "ConvTranspose2d",
            "Relu",
            "Conv2d",
            "Tanh",
            "Reshape",
            "Dense",
            "Sigmoid"
        ]
    );
    assert_eq!(graph.output_shape().unwrap(), Shape::flat(5));
    assert_eq!(graph.output_range(), OutputRange::ZeroOne);

    let z =
        ArrayD::from_shape_simple_fn(ndarray::IxDyn(&[8, 4]), || rng.random_range(-2.0f32..2.0));
    let y = model.infer(z.clone());
    let mut worst = 0.0f32;
    for (zs, ys) in z.outer_iter().zip(y.outer_iter()) {
        let want = reference_forward(&graph, zs.as_slice().unwrap());
        for (&g, &w) in ys.iter().zip(&want) {
            assert!((g - w).abs() <= FOLD_TOL, "{g} vs {w}");
            worst = worst.max((g - w).abs());
        }
    }
    // The outputs must vary, or the comparison says little.
    let (lo, hi) = y
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(hi - lo > 0.1, "{y}");
    eprintln!("folded graph vs eval forward: max abs difference {worst:.2e}");
}

#[test]
fn batchnorm_after_an_activation_is_refused() {
    let mut rng = StdRng::seed_from_u64(22);
    let model = Sequential::new("d")
        .with("fc", Linear::new(3, 4, true, &mut rng))
        .with("act", Activation::Relu)
        .with("bn", Module::BatchNorm1d(BatchNorm::new(4)));
    let err = model
        .to_graph(Part::Discriminator, Shape::flat(3))
        .unwrap_err();
    assert_eq!(err, NnError::UnfoldableBatchNorm { layer: "bn".into() });
}

#[test]
fn shape_errors_name_the_layer() {
    let mut rng = StdRng::seed_from_u64(23);
    let model = Sequential::new("e")
        .with("fc", Linear::new(3, 4, true, &mut rng))
        .with("fc2", Linear::new(5, 1, true, &mut rng));
    let err = model.output_shape(&[3]).unwrap_err();
    assert!(
        matches!(&err, NnError::ShapeMismatch { layer, .. } if layer == "fc2"),
        "{err}"
    );
}

#[test]
fn state_names_follow_pytorch() {
    let mut rng = StdRng::seed_from_u64(24);
    let mut model = Sequential::new("enc")
        .with("fc1", Linear::new(3, 4, true, &mut rng))
        .with("bn1", Module::BatchNorm1d(BatchNorm::new(4)))
        .with("act", Activation::Relu);
    let names: Vec<String> = model.state().into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "enc.fc1.weight",
            "enc.fc1.bias",
            "enc.bn1.weight",
            "enc.bn1.bias",
            "enc.bn1.running_mean",
            "enc.bn1.running_var"
        ]
    );
    let mut_names: Vec<String> = model.state_mut().into_iter().map(|t| t.name).collect();
    assert_eq!(names, mut_names);
    let params: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
    assert_eq!(
        params,
        [
            "enc.fc1.weight",
            "enc.fc1.bias",
            "enc.bn1.weight",
            "enc.bn1.bias"
        ]
    );
    assert_eq!(model.parameter_count(), 3 * 4 + 4 + 4 + 4);
}
