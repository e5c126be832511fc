//! Model file round trips: graph -> `.tgm` -> `Model::parse` -> run, compared with the
//! runtime's plain reference kernels composed directly on the graph (f32) or the quantized graph
//! (int8).

use tinygen_export::quant::{self, QLayer, QuantGraph, QuantOptions};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_export::{Conv, ConvSpec, Graph, Layer, Part, Shape};
use tinygen_runtime::kernels::{reference, ConvGeom, Requant};
use tinygen_runtime::model::{Activation, Model, Precision};
use tinygen_runtime::rng::Rng;

/// f32 runtime vs f32 reference: the fast kernels may sum in another order; for these sizes
/// (at most 72 terms of magnitude below 1) reordering moves results by a few ulp of the sum.
const F32_TOL: f32 = 1e-5;

fn weights(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn conv(rng: &mut Rng, i: usize, o: usize, k: usize, s: usize, p: usize, op: usize) -> Conv {
    Conv {
        spec: ConvSpec {
            in_ch: i,
            out_ch: o,
            kernel: (k, k),
            stride: (s, s),
            pad: (p, p),
            output_padding: (op, op),
        },
        weight: weights(rng, i * o * k * k, 0.4),
        bias: weights(rng, o, 0.1),
    }
}

fn mlp_decoder(seed: u64) -> Graph {
    let mut r = Rng::seed_from_u64(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(8),
        layers: vec![
            Layer::Dense {
                inputs: 8,
                outputs: 32,
                weight: weights(&mut r, 256, 0.5),
                bias: weights(&mut r, 32, 0.1),
            },
            Layer::Relu,
            Layer::Dense {
                inputs: 32,
                outputs: 49,
                weight: weights(&mut r, 32 * 49, 0.3),
                bias: weights(&mut r, 49, 0.1),
            },
            Layer::Sigmoid,
            Layer::Reshape {
                to: Shape::chw(1, 7, 7),
            },
        ],
    }
}

fn dcgan_like(seed: u64) -> Graph {
    let mut r = Rng::seed_from_u64(seed);
    Graph {
        part: Part::Generator,
        input: Shape::flat(8),
        layers: vec![
            Layer::Dense {
                inputs: 8,
                outputs: 36,
                weight: weights(&mut r, 8 * 36, 0.5),
                bias: weights(&mut r, 36, 0.1),
            },
            Layer::Reshape {
                to: Shape::chw(4, 3, 3),
            },
            Layer::Relu,
            Layer::ConvTranspose2d(conv(&mut r, 4, 3, 4, 2, 1, 0)),
            Layer::LeakyRelu { alpha: 0.2 },
            Layer::Conv2d(conv(&mut r, 3, 2, 3, 1, 1, 0)),
            Layer::Relu,
            Layer::ConvTranspose2d(conv(&mut r, 2, 1, 3, 2, 1, 1)),
            Layer::Tanh,
        ],
    }
}

fn geom(
    c_in: Shape,
    c_out: Shape,
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
) -> ConvGeom {
    ConvGeom {
        in_ch: c_in.c,
        in_h: c_in.h,
        in_w: c_in.w,
        out_ch: c_out.c,
        out_h: c_out.h,
        out_w: c_out.w,
        k_h: k.0,
        k_w: k.1,
        stride_h: s.0,
        stride_w: s.1,
        pad_h: p.0,
        pad_w: p.1,
    }
}

/// Every layer's output by the reference kernels, straight from the graph.
fn reference_f32(g: &Graph, z: &[f32]) -> Vec<Vec<f32>> {
    let shapes = g.shapes().unwrap();
    let mut x = z.to_vec();
    let mut outs = Vec::new();
    for (i, layer) in g.layers.iter().enumerate() {
        let (si, so) = (shapes[i], shapes[i + 1]);
        let mut y = vec![f32::NAN; so.len()];
        match layer {
            Layer::Dense { weight, bias, .. } => reference::dense_f32(weight, bias, &x, &mut y),
            Layer::Conv2d(c) => reference::conv2d_f32(
                &geom(si, so, c.spec.kernel, c.spec.stride, c.spec.pad),
                &c.weight,
                &c.bias,
                &x,
                &mut y,
            ),
            Layer::ConvTranspose2d(c) => reference::conv_transpose2d_f32(
                &geom(si, so, c.spec.kernel, c.spec.stride, c.spec.pad),
                &c.weight,
                &c.bias,
                &x,
                &mut y,
            ),
            other => {
                y = x.clone();
                match other {
                    Layer::Relu => reference::relu_f32(&mut y),
                    Layer::LeakyRelu { alpha } => reference::leaky_relu_f32(&mut y, *alpha),
                    Layer::Tanh => reference::tanh_f32(&mut y),
                    Layer::Sigmoid => reference::sigmoid_f32(&mut y),
                    _ => {}
                }
            }
        }
        outs.push(y.clone());
        x = y;
    }
    outs
}

/// Every layer's int8 output by the reference kernels, straight from the quantized graph.
fn reference_i8(q: &QuantGraph, z: &[f32]) -> Vec<Vec<i8>> {
    let shapes = q.shapes().unwrap();
    let mut x: Vec<i8> = z.iter().map(|&v| q.input.quantize(v)).collect();
    let mut outs = Vec::new();
    for (i, layer) in q.layers.iter().enumerate() {
        let (si, so) = (shapes[i], shapes[i + 1]);
        let mut y = vec![0i8; so.len()];
        let rq = |l: &quant::QLinear| Requant {
            in_zero_point: i32::from(l.input.zero_point),
            out_zero_point: i32::from(l.output.zero_point),
            multiplier: &[],
            shift: &[],
            min: l.min,
            max: l.max,
        };
        match layer {
            QLayer::Dense { q: l, .. } => {
                let rq = Requant {
                    multiplier: &l.multiplier,
                    shift: &l.shift,
                    ..rq(l)
                };
                reference::dense_i8(&l.weight, &l.bias, &x, &rq, &mut y)
            }
            QLayer::Conv2d { conv: c, q: l } => {
                let rq = Requant {
                    multiplier: &l.multiplier,
                    shift: &l.shift,
                    ..rq(l)
                };
                reference::conv2d_i8(
                    &geom(si, so, c.kernel, c.stride, c.pad),
                    &l.weight,
                    &l.bias,
                    &x,
                    &rq,
                    &mut y,
                )
            }
            QLayer::ConvTranspose2d { conv: c, q: l } => {
                let rq = Requant {
                    multiplier: &l.multiplier,
                    shift: &l.shift,
                    ..rq(l)
                };
                reference::conv_transpose2d_i8(
                    &geom(si, so, c.kernel, c.stride, c.pad),
                    &l.weight,
                    &l.bias,
                    &x,
                    &rq,
                    &mut y,
                )
            }
            QLayer::Activation { table, .. } => {
                y = x.clone();
                reference::lut_i8(&mut y, table);
            }
            QLayer::Reshape { .. } => y = x.clone(),
        }
        outs.push(y.clone());
        x = y;
    }
    outs
}

fn latents(seed: u64, n: usize, len: usize) -> Vec<Vec<f32>> {
    let mut r = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut z = vec![0.0; len];
            r.fill_gaussian(&mut z);
            z
        })
        .collect()
}

fn check_f32_round_trip(g: &Graph) {
    let file = AlignedBytes::new(&tgm::write_f32(g).unwrap());
    let model = Model::parse(&file).unwrap();
    assert_eq!(model.precision(), Precision::F32);
    assert_eq!(model.op_count(), g.layers.len());
    let out_shape = g.output_shape().unwrap();
    assert_eq!(
        (
            model.output_shape().c,
            model.output_shape().h,
            model.output_shape().w
        ),
        (out_shape.c, out_shape.h, out_shape.w)
    );
    // Arena: at most two buffers of the largest activation (the ping-pong plan) plus 3 bytes of
    // alignment slack, and at least the largest activation.
    let max = g.shapes().unwrap().iter().map(Shape::len).max().unwrap();
    assert!(
        model.arena_bytes() <= 8 * max + 3,
        "{}",
        model.arena_bytes()
    );
    assert!(
        model.arena_bytes() >= 4 * max + 3,
        "{}",
        model.arena_bytes()
    );
    for z in latents(3, 5, model.latent_len()) {
        let expected = reference_f32(g, &z);
        // Misalign the arena on purpose: the runtime aligns inside it.
        let mut arena = vec![0u8; model.arena_bytes() + 1];
        let mut out = vec![f32::NAN; model.output_len()];
        let mut seen = Vec::new();
        model
            .run_inspect(&z, &mut arena[1..], &mut out, &mut |i, a| {
                if let Activation::F32(x) = a {
                    seen.push((i, x.to_vec()));
                }
            })
            .unwrap();
        assert_eq!(seen.len(), g.layers.len());
        for ((i, got), want) in seen.iter().zip(&expected) {
            assert_eq!(got.len(), want.len(), "layer {i}");
            for (a, b) in got.iter().zip(want) {
                assert!(
                    (a - b).abs() <= F32_TOL,
                    "layer {i}: runtime {a} vs reference {b}"
                );
            }
        }
        for (a, b) in out.iter().zip(expected.last().unwrap()) {
            assert!(
                (a - b).abs() <= F32_TOL,
                "output: runtime {a} vs reference {b}"
            );
        }
    }
}

#[test]
fn f32_mlp_decoder_round_trip_matches_reference() {
    check_f32_round_trip(&mlp_decoder(1));
}

#[test]
fn f32_dcgan_like_round_trip_matches_reference() {
    check_f32_round_trip(&dcgan_like(2));
}

#[test]
fn model_rs_states_the_arena() {
    let bytes = tgm::write_f32(&mlp_decoder(1)).unwrap();
    let file = AlignedBytes::new(&bytes);
    let model = Model::parse(&file).unwrap();
    let text = tgm::model_rs(&model, "decoder.tgm");
    assert!(
        text.contains(&format!(
            "pub const ARENA_BYTES: usize = {};",
            model.arena_bytes()
        )),
        "{text}"
    );
    assert!(text.contains("pub const LATENT_LEN: usize = 8;"), "{text}");
    assert!(
        text.contains(&format!("pub const MODEL_BYTES: usize = {};", bytes.len())),
        "{text}"
    );
}

#[test]
fn generate_samples_the_same_latents_as_the_rng() {
    let g = mlp_decoder(4);
    let file = AlignedBytes::new(&tgm::write_f32(&g).unwrap());
    let model = Model::parse(&file).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut a = vec![0.0; model.output_len()];
    let mut b = vec![0.0; model.output_len()];
    model
        .generate(&mut Rng::seed_from_u64(9), &mut arena, &mut a)
        .unwrap();
    let mut z = vec![0.0; model.latent_len()];
    Rng::seed_from_u64(9).fill_gaussian(&mut z);
    model.run(&z, &mut arena, &mut b).unwrap();
    assert_eq!(a, b, "same kernels on the same latents give the same bits");
    let mut px = vec![0u8; model.output_len()];
    model
        .generate_u8(&mut Rng::seed_from_u64(9), &mut arena, &mut px)
        .unwrap();
    for (p, v) in px.iter().zip(&a) {
        assert_eq!(*p, (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8);
    }
}

fn check_int8_round_trip(g: &Graph, options: QuantOptions) -> QuantGraph {
    let z_len = g.input.len();
    let q = quant::quantize(g, &latents(11, 64, z_len), &options).unwrap();
    let file = AlignedBytes::new(&tgm::write_int8(&q).unwrap());
    let model = Model::parse(&file).unwrap();
    assert_eq!(model.precision(), Precision::Int8);
    let max = q.shapes().unwrap().iter().map(Shape::len).max().unwrap();
    assert!(model.arena_bytes() <= 2 * max.div_ceil(4) * 4 + 3);
    assert!(model.arena_bytes() >= max + 3);
    for z in latents(12, 8, z_len) {
        let expected = reference_i8(&q, &z);
        let sim = quant::simulate(&q, &z).unwrap();
        assert_eq!(sim.layers.len(), q.layers.len());
        for (i, (got, want)) in sim.layers.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "layer {i}: runtime int8 vs reference kernels");
        }
        let last = expected.last().unwrap();
        for (o, &qv) in sim.output.iter().zip(last) {
            assert_eq!(o.to_bits(), q.output.dequantize(qv).to_bits());
        }
    }
    q
}

#[test]
fn int8_mlp_decoder_round_trip_is_bit_exact_with_reference() {
    check_int8_round_trip(&mlp_decoder(5), QuantOptions::default());
}

#[test]
fn int8_dcgan_like_round_trip_is_bit_exact_with_reference() {
    let q = check_int8_round_trip(&dcgan_like(6), QuantOptions::default());
    // Dense, Reshape (ReLU folded), ConvT, LeakyReLU table, Conv (ReLU folded), ConvT, tanh table.
    let kinds: Vec<&str> = q
        .layers
        .iter()
        .map(|l| match l {
            QLayer::Dense { .. } => "dense",
            QLayer::Conv2d { .. } => "conv",
            QLayer::ConvTranspose2d { .. } => "convt",
            QLayer::Activation { .. } => "lut",
            QLayer::Reshape { .. } => "reshape",
        })
        .collect();
    assert_eq!(
        kinds,
        ["dense", "reshape", "convt", "lut", "conv", "convt", "lut"]
    );
}

#[test]
fn int8_free_scales_round_trip_is_bit_exact_with_reference() {
    check_int8_round_trip(&dcgan_like(7), QuantOptions { free_scales: true });
}

fn linear_layers(q: &QuantGraph) -> Vec<&quant::QLinear> {
    q.layers
        .iter()
        .filter_map(|l| match l {
            QLayer::Dense { q, .. }
            | QLayer::Conv2d { q, .. }
            | QLayer::ConvTranspose2d { q, .. } => Some(q),
            _ => None,
        })
        .collect()
}

fn is_power_of_two(x: f32) -> bool {
    x > 0.0 && x.is_normal() && x.to_bits() & 0x7F_FFFF == 0
}

#[test]
fn snapped_requantization_is_exact_round_half_even() {
    let q = quant::quantize(
        &dcgan_like(8),
        &latents(13, 32, 8),
        &QuantOptions::default(),
    )
    .unwrap();
    assert!(is_power_of_two(q.input.scale));
    let mut r = Rng::seed_from_u64(14);
    for l in linear_layers(&q) {
        assert!(is_power_of_two(l.input.scale) && is_power_of_two(l.output.scale));
        for (c, ((&s_w, &m), &n)) in l
            .weight_scale
            .iter()
            .zip(&l.multiplier)
            .zip(&l.shift)
            .enumerate()
        {
            // 7-bit mantissa: s_w * 2^k is an integer below 128 for some k.
            let mantissa = (s_w.to_bits() & 0x7F_FFFF) | 0x80_0000;
            assert!(
                mantissa.trailing_zeros() >= 17,
                "channel {c}: weight scale {s_w} has more than 7 bits"
            );
            // Every product below is exact in f64 (|acc| < 2^21, 7-bit mantissas, powers of two).
            let ratio = f64::from(l.input.scale) * f64::from(s_w) / f64::from(l.output.scale);
            for _ in 0..2000 {
                let acc = (r.next_u32() >> 11) as i32 - (1 << 20);
                let exact = (f64::from(acc) * ratio).round_ties_even();
                let got = tinygen_runtime::kernels::requantize(acc, m, n);
                assert_eq!(f64::from(got), exact, "acc {acc}, m {m}, n {n}");
            }
            // Ties round to even: acc * ratio = k + 1/2 exactly for acc = (2k + 1) / (2 ratio)
            // whenever that is an integer.
            let half = 0.5 / ratio;
            if half.fract() == 0.0 && half < 1e6 {
                for k in 0..4 {
                    let acc = ((2 * k + 1) as f64 * half) as i32;
                    let got = tinygen_runtime::kernels::requantize(acc, m, n);
                    assert_eq!(got % 2, 0, "tie {acc} * {ratio} rounded to odd {got}");
                }
            }
        }
    }
}

#[test]
fn free_scale_multipliers_are_q31_mantissas_of_the_ratio() {
    let q = quant::quantize(
        &dcgan_like(9),
        &latents(15, 32, 8),
        &QuantOptions { free_scales: true },
    )
    .unwrap();
    for l in linear_layers(&q) {
        for ((&s_w, &m), &n) in l.weight_scale.iter().zip(&l.multiplier).zip(&l.shift) {
            let ratio = f64::from(l.input.scale) * f64::from(s_w) / f64::from(l.output.scale);
            let back = f64::from(m) * 2f64.powi(-i32::from(n));
            assert!((1 << 30..=i32::MAX).contains(&m), "{m}");
            // One rounding of a 31-bit mantissa: relative error at most 2^-31.
            assert!(
                (back - ratio).abs() <= ratio * 2f64.powi(-31),
                "{back} vs {ratio}"
            );
        }
    }
}

#[test]
fn activation_tables_follow_the_formula() {
    // q_out = sat(round_half_even(f(s_in * (q - zp_in)) / s_out) + zp_out), checked in f64 with
    // std's functions; f32 libm and f64 may only disagree where f / s_out is within 1e-3 of a
    // rounding tie, so those entries are skipped (and counted).
    let q = quant::quantize(
        &dcgan_like(10),
        &latents(16, 32, 8),
        &QuantOptions::default(),
    )
    .unwrap();
    let mut checked = 0;
    for l in &q.layers {
        let QLayer::Activation {
            f,
            input,
            output,
            table,
        } = l
        else {
            continue;
        };
        for v in -128i32..=127 {
            let x = f64::from(input.scale) * f64::from(v - i32::from(input.zero_point));
            let y = match f {
                quant::Activation::Relu => x.max(0.0),
                quant::Activation::LeakyRelu { alpha } => {
                    if x < 0.0 {
                        f64::from(*alpha) * x
                    } else {
                        x
                    }
                }
                quant::Activation::Tanh => x.tanh(),
                quant::Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                quant::Activation::Exp => x.exp(),
            };
            let t = y / f64::from(output.scale);
            if (t.fract().abs() - 0.5).abs() < 1e-3 {
                continue;
            }
            let want =
                (t.round_ties_even() + f64::from(output.zero_point)).clamp(-128.0, 127.0) as i8;
            assert_eq!(table[usize::from(v as i8 as u8)], want, "{f:?} at q = {v}");
            checked += 1;
        }
    }
    assert!(checked > 400, "only {checked} table entries checked");
}

#[test]
fn int8_output_is_close_to_f32() {
    // The int8 model against the f32 model on latents it was not calibrated on. The bounds are
    // quality targets, not derived error bounds: PSNR of at least 40 dB over the [-1, 1] range
    // (rms error below 1% of the range) and no output further than 8 steps of the output scale
    // (2^-7); a wrong zero point, scale or table misses both by far. Measured: PSNR 52.3 dB,
    // max error 3.5 steps.
    let g = dcgan_like(11);
    let q = quant::quantize(&g, &latents(17, 256, 8), &QuantOptions::default()).unwrap();
    let f_file = AlignedBytes::new(&tgm::write_f32(&g).unwrap());
    let q_file = AlignedBytes::new(&tgm::write_int8(&q).unwrap());
    let (fm, qm) = (
        Model::parse(&f_file).unwrap(),
        Model::parse(&q_file).unwrap(),
    );
    let mut arena = vec![0u8; fm.arena_bytes().max(qm.arena_bytes())];
    let (mut a, mut b) = (vec![0.0; fm.output_len()], vec![0.0; qm.output_len()]);
    let (mut max_err, mut sq) = (0f32, 0f64);
    let zs = latents(18, 32, 8);
    for z in &zs {
        fm.run(z, &mut arena, &mut a).unwrap();
        qm.run(z, &mut arena, &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            max_err = max_err.max((x - y).abs());
            sq += f64::from(x - y).powi(2);
        }
    }
    let mse = sq / (zs.len() * a.len()) as f64;
    // PSNR over the [-1, 1] range (peak-to-peak 2).
    let psnr = 10.0 * (4.0 / mse).log10();
    eprintln!(
        "int8 vs f32: max abs error {max_err}, PSNR {psnr:.1} dB, output scale {}",
        q.output.scale
    );
    assert!(psnr >= 40.0, "PSNR {psnr} dB");
    assert!(max_err <= 8.0 * q.output.scale, "max error {max_err}");
}

#[test]
fn quantize_rejects_missing_or_misshapen_calibration() {
    let g = mlp_decoder(1);
    let err = quant::quantize(&g, &[], &QuantOptions::default()).unwrap_err();
    assert!(matches!(err, quant::QuantError::NoCalibration), "{err}");
    let err =
        quant::quantize(&g, &[vec![0.0; 8], vec![0.0; 7]], &QuantOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            quant::QuantError::LatentLength {
                index: 1,
                expected: 8,
                got: 7
            }
        ),
        "{err}"
    );
}
