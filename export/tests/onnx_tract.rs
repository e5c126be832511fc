//! The exported float ONNX runs in tract-onnx and matches a plain f64 forward pass.
//!
//! Every model is built with seeded random weights (uniform, scaled by `1/sqrt(fan_in)` so that
//! activations stay of order one), run in tract on random latents, and compared with the f64
//! reference forward below.
//!
//! Tolerance: [`REL_TOL`] = 1e-5, measured as `max_i |tract_i - ref_i| / max_i |ref_i|` over the
//! whole output tensor (the batch included). tract computes in f32 (unit roundoff 6e-8); the
//! rounding error of a dot product of length K is of order `sqrt(K) * 6e-8 * sum |w x|`, which
//! with these weight scales is a few 1e-7 of the output's magnitude for K up to 1024. A per-element
//! relative error would be meaningless where an output crosses zero, so the error is normalised by
//! the largest output magnitude. The ONNX/tract layout conventions (transposed Gemm weight, ConvTranspose
//! weight `[C_in, C_out, kH, kW]`, pad order, `output_padding` at the end) would each produce errors
//! of order one if wrong.

use tinygen_export::check::{batch_dims, rel_err, CheckError, Load, Plan, Tract};
use tinygen_export::onnx::{self, export_f32, export_f32_per_layer, to_onnx_f32, OnnxModel};
use tinygen_export::{Conv, ConvSpec, Graph, Layer, Part, Shape};
use tinygen_testkit::reference::layer_f64;
use tinygen_testkit::{write_validation_case, CaseTensor};

/// Largest allowed `max |tract - ref| / max |ref|` (see the module documentation).
const REL_TOL: f64 = 1e-5;

// ---------------------------------------------------------------------------------------------
// Seeded random numbers (SplitMix64).

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

fn dense(rng: &mut Rng, inputs: usize, outputs: usize) -> Layer {
    let s = 1.0 / (inputs as f32).sqrt();
    Layer::Dense {
        inputs,
        outputs,
        weight: rng.vec(inputs * outputs, s),
        bias: rng.vec(outputs, s),
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    rng: &mut Rng,
    in_ch: usize,
    out_ch: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize),
    output_padding: (usize, usize),
    transposed: bool,
) -> Layer {
    let fan_in = if transposed {
        // each output of a stride-s transposed convolution sums about in_ch * k / s^2 terms
        in_ch * kernel.0 * kernel.1 / (stride.0 * stride.1)
    } else {
        in_ch * kernel.0 * kernel.1
    };
    let s = 1.0 / (fan_in.max(1) as f32).sqrt();
    let c = Conv {
        spec: ConvSpec {
            in_ch,
            out_ch,
            kernel,
            stride,
            pad,
            output_padding,
        },
        weight: rng.vec(in_ch * out_ch * kernel.0 * kernel.1, s),
        bias: rng.vec(out_ch, s),
    };
    if transposed {
        Layer::ConvTranspose2d(c)
    } else {
        Layer::Conv2d(c)
    }
}

// ---------------------------------------------------------------------------------------------
// The models under test.

/// VAE decoder 20-400-784, ReLU, sigmoid.
fn mlp_decoder(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(20),
        layers: vec![
            dense(&mut r, 20, 400),
            Layer::Relu,
            dense(&mut r, 400, 784),
            Layer::Sigmoid,
        ],
    }
}

/// DCGAN-like generator: Dense -> 64x7x7 -> ReLU -> ConvT k4 s2 p1 -> LeakyReLU -> ConvT -> tanh.
fn dcgan_generator(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(16),
        layers: vec![
            dense(&mut r, 16, 64 * 7 * 7),
            Layer::Reshape {
                to: Shape::chw(64, 7, 7),
            },
            Layer::Relu,
            conv(&mut r, 64, 32, (4, 4), (2, 2), (1, 1), (0, 0), true),
            Layer::LeakyRelu { alpha: 0.2 },
            conv(&mut r, 32, 1, (4, 4), (2, 2), (1, 1), (0, 0), true),
            Layer::Tanh,
        ],
    }
}

/// Discriminator: Conv s2 -> LeakyReLU -> explicit flatten -> Dense -> logit.
fn conv_discriminator(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Discriminator,
        input: Shape::chw(1, 28, 28),
        layers: vec![
            conv(&mut r, 1, 16, (4, 4), (2, 2), (1, 1), (0, 0), false),
            Layer::LeakyRelu { alpha: 0.2 },
            conv(&mut r, 16, 8, (3, 3), (2, 2), (1, 1), (0, 0), false),
            Layer::LeakyRelu { alpha: 0.2 },
            Layer::Reshape {
                to: Shape::flat(8 * 7 * 7),
            },
            dense(&mut r, 8 * 7 * 7, 1),
        ],
    }
}

/// Encoder: Conv s2 -> LeakyReLU -> Dense straight on the 4-D tensor (the writer inserts the
/// flatten) -> [mu, logvar].
fn conv_encoder(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Encoder,
        input: Shape::chw(1, 12, 12),
        layers: vec![
            conv(&mut r, 1, 6, (4, 4), (2, 2), (1, 1), (0, 0), false),
            Layer::LeakyRelu { alpha: 0.1 },
            dense(&mut r, 6 * 6 * 6, 2 * 5),
        ],
    }
}

/// ConvTranspose with output_padding, a non-square kernel and unequal strides and pads, straight
/// after a Dense (the writer inserts the unflatten), then a non-square Conv.
fn odd_convolutions(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(8),
        layers: vec![
            dense(&mut r, 8, 3 * 5 * 4),
            Layer::Reshape {
                to: Shape::chw(3, 5, 4),
            },
            // h: 2*(5-1) + 1 + 3 - 2 = 10, w: 3*(4-1) + 2 + 2 - 0 = 13
            conv(&mut r, 3, 2, (3, 2), (2, 3), (1, 0), (1, 2), true),
            Layer::Sigmoid,
            // h: (10 - 2)/1 + 1 = 9, w: (13 + 2 - 3)/2 + 1 = 7
            conv(&mut r, 2, 2, (2, 3), (1, 2), (0, 1), (0, 0), false),
            Layer::Tanh,
        ],
    }
}

/// A 1x1 "image" from a Dense goes into a ConvTranspose: rank changes on a flat shape.
fn dense_into_convt(seed: u64) -> Graph {
    let mut r = Rng(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(4),
        layers: vec![
            dense(&mut r, 4, 6),
            Layer::Relu,
            conv(&mut r, 6, 3, (3, 3), (1, 1), (0, 0), (0, 0), true),
            Layer::Sigmoid,
        ],
    }
}

fn all_models() -> Vec<(&'static str, Graph)> {
    vec![
        ("mlp_decoder", mlp_decoder(1)),
        ("dcgan_generator", dcgan_generator(2)),
        ("conv_discriminator", conv_discriminator(3)),
        ("conv_encoder", conv_encoder(4)),
        ("odd_convolutions", odd_convolutions(5)),
        ("dense_into_convt", dense_into_convt(6)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Plain f64 reference forward pass: `tinygen_testkit::reference`.

/// Activations of every layer for a batch: `result[i]` enters layer `i`, `result[L]` is the output.
fn ref_forward_all(g: &Graph, z: &[f32], batch: usize) -> Vec<Vec<f64>> {
    let shapes = g.shapes().unwrap();
    let mut acts = vec![z.iter().map(|&v| v as f64).collect::<Vec<_>>()];
    for (i, layer) in g.layers.iter().enumerate() {
        let in_len = shapes[i].len();
        let prev = &acts[i];
        assert_eq!(prev.len(), batch * in_len);
        let next: Vec<f64> = prev
            .chunks_exact(in_len)
            .flat_map(|x| layer_f64(layer, shapes[i], x))
            .collect();
        acts.push(next);
    }
    acts
}

// ---------------------------------------------------------------------------------------------
// tract.

/// tract's two execution paths, decluttered only and fully optimised; both must agree.
fn load(bytes: &[u8]) -> Result<[Tract; 2], CheckError> {
    let with = |plan| {
        Tract::load(
            "model",
            bytes,
            &Load {
                plan,
                input_shape: None,
            },
        )
    };
    Ok([with(Plan::Decluttered)?, with(Plan::Optimized)?])
}

/// The first output of a float run: its shape and values.
fn run_f32(model: &Tract, dims: &[usize], x: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let out = model.run_all_f32(dims, x).expect("tract runs");
    let y = out[0].as_f32().expect("a float output").to_vec();
    (out[0].shape.clone(), y)
}

/// Runs the whole model in both tract paths for `batch` random samples; returns the worst error.
fn check_model(
    name: &str,
    g: &Graph,
    model: &OnnxModel,
    runs: &[Tract; 2],
    batch: usize,
    seed: u64,
) -> f64 {
    let input = &model.inputs[0];
    let output = &model.outputs[0];
    let z = Rng(seed).vec(batch * input.sample_len(), 1.0);
    let want = ref_forward_all(g, &z, batch).pop().unwrap();
    let mut worst = 0.0f64;
    for (path, run) in ["decluttered", "optimized"].iter().zip(runs) {
        let (shape, y) = run_f32(run, &batch_dims(batch, &input.dims), &z);
        assert_eq!(
            shape,
            batch_dims(batch, &output.dims),
            "{name} ({path}) output shape"
        );
        let err = rel_err(&y, &want).expect("comparable outputs");
        println!(
            "{name:>20} batch {batch}: {path:>11} max|tract - f64 ref| / max|ref| = {err:.2e}"
        );
        assert!(
            err <= REL_TOL,
            "{name} ({path}, batch {batch}): relative error {err:.3e} > {REL_TOL:.0e}"
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
fn float_models_match_the_f64_reference_in_tract() {
    for (name, g) in all_models() {
        let model = export_f32(&g, name).unwrap();
        assert_eq!(
            model.bytes,
            to_onnx_f32(&g, name).unwrap(),
            "{name}: export is deterministic"
        );
        let runs = load(&model.bytes).unwrap();
        check_model(name, &g, &model, &runs, 3, 100);
    }
}

#[test]
fn one_model_serves_every_batch_size() {
    for (name, g) in [
        ("mlp_decoder", mlp_decoder(11)),
        ("dcgan_generator", dcgan_generator(12)),
    ] {
        let model = export_f32(&g, name).unwrap();
        let runs = load(&model.bytes).unwrap();
        for (batch, seed) in [(1, 7), (5, 8), (2, 9)] {
            check_model(name, &g, &model, &runs, batch, seed);
        }
    }
}

#[test]
fn the_output_declares_its_shape_and_the_batch_is_symbolic() {
    let g = dcgan_generator(3);
    let bytes = to_onnx_f32(&g, "g").unwrap();
    let (input, output) = Tract::typed_io_shapes("g", &bytes).unwrap();
    assert_eq!(input, "N,16");
    assert_eq!(output, "N,1,28,28");
    assert_eq!(onnx::input_name(Part::Generator), "z");
    assert_eq!(onnx::output_name(Part::Discriminator), "logit");
}

#[test]
fn per_layer_models_match_the_reference_layer_by_layer() {
    let batch = 2;
    for (name, g) in all_models() {
        let z = Rng(31).vec(batch * g.input.len(), 1.0);
        let acts = ref_forward_all(&g, &z, batch);
        let models = export_f32_per_layer(&g, name).unwrap();
        assert_eq!(models.len(), g.layers.len());
        for (i, m) in models.iter().enumerate() {
            assert_eq!(m.layers, i..i + 1);
            let [_, opt] = load(&m.bytes).unwrap();
            let x: Vec<f32> = acts[i].iter().map(|&v| v as f32).collect();
            let (shape, y) = run_f32(&opt, &batch_dims(batch, &m.inputs[0].dims), &x);
            assert_eq!(
                shape,
                batch_dims(batch, &m.outputs[0].dims),
                "{name} layer {i}"
            );
            // the reference layer applied to the same f32-rounded input
            let shapes = g.shapes().unwrap();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let want: Vec<f64> = x64
                .chunks_exact(shapes[i].len())
                .flat_map(|s| layer_f64(&g.layers[i], shapes[i], s))
                .collect();
            let err = rel_err(&y, &want).expect("comparable outputs");
            assert!(
                err <= REL_TOL,
                "{name} layer {i} ({}): relative error {err:.3e}",
                g.layers[i].name()
            );
        }
    }
}

/// Writes every float model, random latents and tract's outputs as validation cases for
/// `tools/validate_onnx.py` into `$TINYGEN_ONNX_CASES` (or a directory under the target's tmp).
#[test]
fn validation_cases_for_the_float_models() {
    let dir = std::env::var_os("TINYGEN_ONNX_CASES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-cases"));
    let batch = 3;
    for (name, g) in all_models() {
        let model = export_f32(&g, name).unwrap();
        let [_, opt] = load(&model.bytes).unwrap();
        let (input, output) = (&model.inputs[0], &model.outputs[0]);
        let z = Rng(77).vec(batch * input.sample_len(), 1.0);
        let in_dims = batch_dims(batch, &input.dims);
        let (shape, y) = run_f32(&opt, &in_dims, &z);
        let case = write_validation_case(
            &dir,
            &format!("f32_{name}"),
            &model.bytes,
            &[CaseTensor::f32(&input.name, &in_dims, z)],
            &[CaseTensor::f32(&output.name, &shape, y)],
        )
        .unwrap();
        let json = std::fs::read_to_string(&case).unwrap();
        assert!(
            json.contains(&format!("\"name\": \"{}\"", output.name)),
            "{json}"
        );
        let expected = std::fs::metadata(dir.join(format!("f32_{name}.out0.bin")))
            .unwrap()
            .len();
        assert_eq!(expected as usize, shape.iter().product::<usize>() * 4);
    }
}

// ---------------------------------------------------------------------------------------------
// int8 QDQ models against the integer-only simulation of the device (`quant::simulate`).
//
// Tolerance: none. With the default (snapped) scales every int8 tensor of tract's run must equal
// the simulation's bit for bit (a power-of-two rescale is exact in f32, and both round half to
// even); the float output is the dequantised last int8
// tensor, `(q - zp) * s` with a power-of-two `s`, exact in f32 in both.

mod int8 {
    use super::*;
    use prost::Message;
    use tinygen_export::onnx::proto::ModelProto;
    use tinygen_export::onnx::{export_qdq, export_qdq_per_layer, to_onnx_qdq, QdqOptions};
    use tinygen_export::quant::{
        batch_tensor, quantize, simulate, QuantGraph, QuantOptions, Simulation,
    };

    fn quantized(g: &Graph, seed: u64) -> QuantGraph {
        let mut r = Rng(seed);
        let calibration: Vec<Vec<f32>> = (0..32).map(|_| r.vec(g.input.len(), 1.0)).collect();
        quantize(g, &calibration, &QuantOptions::default()).unwrap()
    }

    fn simulate_batch(q: &QuantGraph, z: &[f32], sample: usize) -> Vec<Simulation> {
        z.chunks_exact(sample)
            .map(|x| simulate(q, x).unwrap())
            .collect()
    }

    /// Number of differing values.
    fn mismatches(got: &[i8], want: &[i8]) -> usize {
        assert_eq!(got.len(), want.len());
        got.iter().zip(want).filter(|(a, b)| a != b).count()
    }

    #[test]
    fn whole_qdq_models_match_the_simulation_on_every_int8_tensor() {
        let batch = 3;
        for (name, g) in all_models() {
            let q = quantized(&g, 40);
            let model = export_qdq(
                &q,
                name,
                &QdqOptions {
                    debug_outputs: true,
                },
            )
            .unwrap();
            let plain = to_onnx_qdq(&q, name).unwrap();
            let plain = ModelProto::decode(&plain[..]).unwrap().graph.unwrap();
            assert_eq!(
                plain.output.len(),
                1,
                "{name}: only the float output without debug outputs"
            );
            assert_eq!(model.outputs.len(), q.layers.len() + 2);
            let input = &model.inputs[0];
            let z = Rng(41).vec(batch * input.sample_len(), 1.0);
            let sims = simulate_batch(&q, &z, input.sample_len());
            for (path, run) in ["decluttered", "optimized"]
                .iter()
                .zip(load(&model.bytes).unwrap())
            {
                let out = run
                    .run_all_f32(&batch_dims(batch, &input.dims), &z)
                    .unwrap();
                // outputs: [float output, z.q, layer 0, ..., layer L-1]
                let zq = batch_tensor(&sims, 0);
                let got = out[1].as_i8().unwrap();
                assert_eq!(mismatches(got, &zq), 0, "{name} ({path}): quantized input");
                let mut total = 0;
                for i in 0..q.layers.len() {
                    let want = batch_tensor(&sims, i + 1);
                    let got = out[2 + i].as_i8().unwrap();
                    let bad = mismatches(got, &want);
                    assert_eq!(
                        bad,
                        0,
                        "{name} ({path}): layer {i} ({}) differs on {bad} of {} int8 values",
                        model.outputs[2 + i].name,
                        want.len()
                    );
                    total += want.len();
                }
                let want: Vec<f32> = sims.iter().flat_map(|s| s.output.clone()).collect();
                let y = out[0].as_f32().unwrap();
                let worst = y
                    .iter()
                    .zip(&want)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                // (q - zp) * 2^-k is exact in f32, so the dequantised outputs are equal.
                assert!(
                    worst <= 0.0,
                    "{name} ({path}): dequantised output differs by {worst:e}"
                );
                println!("{name:>20} int8 QDQ ({path:>11}): {total} int8 values, 0 mismatches");
            }
        }
    }

    #[test]
    fn per_layer_qdq_models_match_the_simulation() {
        let batch = 2;
        for (name, g) in all_models() {
            let q = quantized(&g, 50);
            let z = Rng(51).vec(batch * g.input.len(), 1.0);
            let sims = simulate_batch(&q, &z, g.input.len());
            let models = export_qdq_per_layer(&q, name).unwrap();
            assert_eq!(models.len(), q.layers.len());
            for (i, m) in models.iter().enumerate() {
                let input = batch_tensor(&sims, i);
                let want = batch_tensor(&sims, i + 1);
                let [_, opt] = load(&m.bytes).unwrap();
                let got = opt
                    .run_i8(&batch_dims(batch, &m.inputs[0].dims), &input)
                    .unwrap();
                let bad = mismatches(&got, &want);
                assert_eq!(
                    bad,
                    0,
                    "{name} layer {i} ({}): {bad} of {} int8 values differ",
                    m.outputs[0].name,
                    want.len()
                );
            }
        }
    }

    /// With free (unsnapped) scales the device requantizes with a Q31 multiplier while tract
    /// computes `round_half_even(f32 product / s_out)`: fed the same int8 input, one layer may
    /// differ by one quantisation step ([`FREE_SCALE_TOL`]) on values near a rounding tie.
    #[test]
    fn per_layer_qdq_models_with_free_scales_are_within_one_step() {
        /// Largest allowed |tract - simulation| in int8 steps, per layer, with free scales.
        const FREE_SCALE_TOL: i32 = 1;
        let batch = 4;
        for (name, g) in all_models() {
            let mut r = Rng(70);
            let calibration: Vec<Vec<f32>> = (0..32).map(|_| r.vec(g.input.len(), 1.0)).collect();
            let q = quantize(&g, &calibration, &QuantOptions { free_scales: true }).unwrap();
            let z = Rng(71).vec(batch * g.input.len(), 1.0);
            let sims = simulate_batch(&q, &z, g.input.len());
            let (mut off, mut total) = (0, 0);
            for (i, m) in export_qdq_per_layer(&q, name).unwrap().iter().enumerate() {
                let input = batch_tensor(&sims, i);
                let want = batch_tensor(&sims, i + 1);
                let [_, opt] = load(&m.bytes).unwrap();
                let got = opt
                    .run_i8(&batch_dims(batch, &m.inputs[0].dims), &input)
                    .unwrap();
                for (a, b) in got.iter().zip(&want) {
                    let d = (i32::from(*a) - i32::from(*b)).abs();
                    assert!(d <= FREE_SCALE_TOL, "{name} layer {i}: {a} vs {b}");
                    off += usize::from(d != 0);
                }
                total += want.len();
            }
            println!(
                "{name:>20} int8 QDQ, free scales, per layer: {off} of {total} values one step off"
            );
        }
    }

    /// Validation cases for `tools/validate_onnx.py`: float input, tract's float output and every
    /// int8 tensor (compared exactly by the validator). Before a case is written, tract's int8
    /// tensors must equal the runtime's (the model file's) bit for bit and its float output the
    /// runtime's dequantised output, so a case never records a disagreement as the truth.
    #[test]
    fn validation_cases_for_the_int8_models() {
        let dir = std::env::var_os("TINYGEN_ONNX_CASES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-cases")
            });
        let batch = 3;
        for (name, g) in all_models() {
            let q = quantized(&g, 60);
            let model = export_qdq(
                &q,
                name,
                &QdqOptions {
                    debug_outputs: true,
                },
            )
            .unwrap();
            let [_, opt] = load(&model.bytes).unwrap();
            let input = &model.inputs[0];
            let in_dims = batch_dims(batch, &input.dims);
            let z = Rng(61).vec(batch * input.sample_len(), 1.0);
            let out = opt.run_all_f32(&in_dims, &z).unwrap();
            let mut expected = Vec::new();
            for (e, t) in model.outputs.iter().zip(out.iter()) {
                let dims = batch_dims(batch, &e.dims);
                expected.push(match e.elem {
                    onnx::ElemType::F32 => {
                        CaseTensor::f32(&e.name, &dims, t.as_f32().unwrap().to_vec())
                    }
                    onnx::ElemType::I8 => {
                        CaseTensor::i8(&e.name, &dims, t.as_i8().unwrap().to_vec())
                    }
                });
            }
            let sims = simulate_batch(&q, &z, input.sample_len());
            assert_eq!(
                expected.len(),
                2 + q.layers.len(),
                "{name}: output, z.q, every layer"
            );
            let runtime_out: Vec<f32> = sims.iter().flat_map(|s| s.output.clone()).collect();
            assert_eq!(
                out[0].as_f32().unwrap(),
                &runtime_out[..],
                "{name}: tract's float output against the runtime's"
            );
            for (k, t) in out.iter().enumerate().skip(1) {
                let want = batch_tensor(&sims, k - 1);
                let bad = mismatches(t.as_i8().unwrap(), &want);
                assert_eq!(
                    bad, 0,
                    "{name}: int8 tensor {k}, {bad} values differ from the runtime's"
                );
            }
            let json = write_validation_case(
                &dir,
                &format!("int8_{name}"),
                &model.bytes,
                &[CaseTensor::f32(&input.name, &in_dims, z)],
                &expected,
            )
            .unwrap();
            let written = std::fs::read_to_string(&json).unwrap();
            assert_eq!(
                written.matches(".bin").count(),
                1 + expected.len(),
                "{name}: the case lists the input and every expected tensor"
            );
            assert_eq!(
                std::fs::read(dir.join(format!("int8_{name}.onnx"))).unwrap(),
                model.bytes
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The float64 reference `tinygen verify` judges f32 models against.

/// Every model, written as float ONNX and widened to float64 (`check::float64_model`, which
/// also rewrites Gemm, Sigmoid and LeakyRelu for tract's float64 kernels), runs in tract and
/// matches the plain f64 forward pass to f64 rounding; f32 tract is 1e-7-ish from it.
#[test]
fn the_float64_graph_matches_the_f64_reference() {
    for (name, g) in all_models() {
        let batch = 3;
        let z = Rng(40).vec(batch * g.input.len(), 1.5);
        let m = export_f32(&g, name).unwrap();
        let dims = batch_dims(batch, &m.inputs[0].dims);
        let want = ref_forward_all(&g, &z, batch).pop().unwrap();
        let wide = tinygen_export::check::float64_model(&m.bytes).unwrap();
        let tract = Tract::load(name, &wide, &Load::default()).unwrap();
        let x: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
        let got = tract.run_f64(&dims, &x).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(
            err < 1e-12,
            "{name}: float64 tract {err:e} from the f64 reference"
        );
    }
}

/// A Gemm with every attribute the rewrite handles: `alpha * A' * B' + beta * C` with both
/// operands transposed, then LeakyRelu and Sigmoid, against the formula in f64.
#[test]
fn the_float64_rewrite_keeps_gemm_attributes() {
    use prost::Message;
    use tinygen_export::onnx::proto::{
        tensor_shape_proto::Dimension, type_proto, AttributeProto, AttributeType, DataType,
        GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
        TypeProto, ValueInfoProto,
    };
    let (n, k, m) = (2usize, 3usize, 4usize);
    let mut r = Rng(9);
    let (a, b, c) = (r.vec(k * n, 1.0), r.vec(m * k, 1.0), r.vec(m, 1.0));
    let init = |name: &str, dims: &[usize], v: &[f32]| TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    };
    let info = |name: &str, dims: &[usize]| {
        ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            denotation: String::new(),
                            value: Some(
                                tinygen_export::onnx::proto::tensor_shape_proto::dimension::Value::DimValue(d as i64),
                            ),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    }
    };
    let attr = |name: &str, i: Option<i64>, f: Option<f32>| AttributeProto {
        name: name.into(),
        i,
        f,
        r#type: if i.is_some() {
            AttributeType::Int as i32
        } else {
            AttributeType::Float as i32
        },
        ..Default::default()
    };
    let node = |op: &str, input: &[&str], out: &str, attribute| NodeProto {
        input: input.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![out.into()],
        name: out.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "gemm".into(),
            node: vec![
                node(
                    "Gemm",
                    &["a", "b", "c"],
                    "y",
                    vec![
                        attr("transA", Some(1), None),
                        attr("transB", Some(1), None),
                        attr("alpha", None, Some(0.5)),
                        attr("beta", None, Some(-2.0)),
                    ],
                ),
                node(
                    "LeakyRelu",
                    &["y"],
                    "l",
                    vec![attr("alpha", None, Some(0.3))],
                ),
                node("Sigmoid", &["l"], "s", vec![]),
            ],
            initializer: vec![init("b", &[m, k], &b), init("c", &[m], &c)],
            input: vec![info("a", &[k, n])],
            output: vec![info("s", &[n, m])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let wide = tinygen_export::check::float64_model(&model.encode_to_vec()).unwrap();
    let tract = Tract::load("gemm", &wide, &Load::default()).unwrap();
    let x: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let got = tract.run_f64(&[k, n], &x).unwrap();
    for i in 0..n {
        for j in 0..m {
            let dot: f64 = (0..k)
                .map(|p| f64::from(a[p * n + i]) * f64::from(b[j * k + p]))
                .sum();
            let y = 0.5 * dot - 2.0 * f64::from(c[j]);
            let l = if y < 0.0 { f64::from(0.3f32) * y } else { y };
            let want = 1.0 / (1.0 + (-l).exp());
            let g = got[i * m + j];
            assert!((g - want).abs() < 1e-12, "[{i}, {j}]: {g} vs {want}");
        }
    }
}
