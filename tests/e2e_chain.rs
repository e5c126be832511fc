//! The verification chain (the links of `tinygen::verify`) on trained models of every kind:
//! each model is trained for a few steps on the built-in 8x8 digits, loaded back from its run
//! folder, and every part it can export (decoder/generator, encoder, discriminator) goes through
//!
//! 1. trainer forward (f32) == the float ONNX in tract-onnx (generators; the trainer has no
//!    public eval forward for encoders and discriminators), relative [`F32_REL_TOL`];
//! 2. runtime f32 (the `.tgm`) == tract on the same ONNX and inputs, relative [`F32_REL_TOL`];
//! 3. runtime int8 (the int8 `.tgm`, every intermediate through `run_inspect`) == tract on the QDQ
//!    ONNX, layer by layer (each layer's QDQ model fed the runtime's int8 input), bit-exact under
//!    the default scale rule; and the whole QDQ model's dequantised output == the runtime's;
//! 4. with free scales, layer by layer within [`FREE_SCALE_TOL`] step.
//!
//! With `TINYGEN_ONNX_CASES=DIR` every model is also written as a validation case (inputs and
//! tract's outputs) for `tools/validate_onnx.py` (checker + onnxruntime).

mod common;

use common::*;
use tinygen_export::check::{batch_dims, rel_err, run_model_file, Tract};
use tinygen_export::graph::{Graph, Part};
use tinygen_export::onnx::{export_f32, export_qdq, export_qdq_per_layer, to_onnx_qdq, QdqOptions};
use tinygen_export::quant::{
    batch_tensor, quantize, simulate, QuantGraph, QuantOptions, Simulation,
};
use tinygen_export::tgm;
use tinygen_testkit::CaseTensor;
use tinygen_trainer::models::{Model, ModelKind};

/// Largest allowed |tract - runtime| per layer in int8 steps with free scales: the device
/// requantizes with a Q31 multiplier, tract with `round_half_even(f32 product / s_out)`, so a value
/// near a rounding tie may land one step apart.
const FREE_SCALE_TOL: i32 = 1;

/// Samples compared per part.
const BATCH: usize = 8;
/// Calibration inputs for the int8 ranges.
const CALIBRATION: usize = 64;

/// Inputs for a part: latents `N(0, 1)` for a generator, test images for the others.
fn inputs(part: Part, g: &Graph, images: &ndarray::Array2<f32>, n: usize, seed: u64) -> Vec<f32> {
    match part {
        Part::Generator => gaussian(seed, n, g.input.len()),
        _ => {
            assert!(images.nrows() >= n, "enough test images");
            images
                .rows()
                .into_iter()
                .take(n)
                .flat_map(|r| r.to_vec())
                .collect()
        }
    }
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::Generator => "decoder",
        Part::Encoder => "encoder",
        Part::Discriminator => "discriminator",
    }
}

/// Layer-by-layer comparison of the runtime's int8 activations with the per-layer QDQ models in
/// tract; returns (values compared, the largest difference in steps, values that differ).
fn per_layer(
    q: &QuantGraph,
    name: &str,
    sims: &[Simulation],
    write_cases: bool,
) -> (usize, i32, usize) {
    let (mut total, mut worst, mut off) = (0, 0, 0);
    let models = export_qdq_per_layer(q, name).expect("per-layer QDQ models");
    assert_eq!(models.len(), q.layers.len());
    for (i, m) in models.iter().enumerate() {
        let input = batch_tensor(sims, i);
        let want = batch_tensor(sims, i + 1);
        let in_dims = batch_dims(sims.len(), &m.inputs[0].dims);
        let got = Tract::from_bytes(&m.bytes)
            .expect("tract loads the model")
            .run_i8(&in_dims, &input)
            .expect("tract runs");
        assert_eq!(got.len(), want.len(), "{name} layer {i}: output length");
        for (a, b) in got.iter().zip(&want) {
            let d = (i32::from(*a) - i32::from(*b)).abs();
            worst = worst.max(d);
            off += usize::from(d != 0);
        }
        total += want.len();
        if write_cases {
            let case_name = format!("{name}.layer{i}");
            case(
                &case_name,
                &m.bytes,
                &[CaseTensor::i8(&m.inputs[0].name, &in_dims, input)],
                &[CaseTensor::i8(
                    &m.outputs[0].name,
                    &batch_dims(sims.len(), &m.outputs[0].dims),
                    got,
                )],
            );
        }
    }
    (total, worst, off)
}

fn check_kind(kind: ModelKind) {
    let dir = scratch(&format!("chain-{kind}"));
    // Four steps of 64 images: trained weights (BatchNorm statistics included), quickly.
    let (cfg, mut model): (_, Model) = train(&dir, tiny_config(kind, 1, Some(256)));
    let images = cfg.load_data().expect("data").test.images;
    for &part in model.parts() {
        let g = model.graph(part).expect("the part lowers to a graph");
        let name = format!("e2e-{kind}-{}", part_name(part));
        let len = g.input.len();
        let x = inputs(part, &g, &images, BATCH, 1);

        // Float ONNX in tract.
        let f = export_f32(&g, &name).expect("float ONNX");
        let in_dims = batch_dims(BATCH, &f.inputs[0].dims);
        let want = Tract::from_bytes(&f.bytes)
            .expect("tract loads the model")
            .run_f32(&in_dims, &x)
            .expect("tract runs");
        case(
            &name,
            &f.bytes,
            &[CaseTensor::f32(&f.inputs[0].name, &in_dims, x.clone())],
            &[CaseTensor::f32(
                &f.outputs[0].name,
                &batch_dims(BATCH, &f.outputs[0].dims),
                want.clone(),
            )],
        );

        // 1. trainer == tract.
        if part == Part::Generator {
            let z = ndarray::Array2::from_shape_vec((BATCH, len), x.clone()).unwrap();
            let y: Vec<f32> = model.generate(z.view()).iter().copied().collect();
            let err = rel_err(&y, &want).expect("comparable outputs");
            println!("{name:>28}: trainer f32 vs tract      {err:.2e} relative");
            assert!(
                err <= F32_REL_TOL,
                "{name}: trainer vs tract {err:.3e} > {F32_REL_TOL:e}"
            );
        }

        // 2. runtime f32 == tract.
        let f32_file = tgm::write_f32(&g).expect("f32 model file");
        let got = run_model_file(&f32_file, &x).expect("the runtime runs");
        let err = rel_err(&got, &want).expect("comparable outputs");
        println!("{name:>28}: runtime f32 vs tract      {err:.2e} relative");
        assert!(
            err <= F32_REL_TOL,
            "{name}: runtime f32 vs tract {err:.3e} > {F32_REL_TOL:e}"
        );

        // 3. runtime int8 == tract on the QDQ ONNX, bit-exact.
        let calibration: Vec<Vec<f32>> =
            inputs(part, &g, &images, CALIBRATION.min(images.nrows()), 2)
                .chunks_exact(len)
                .map(<[f32]>::to_vec)
                .collect();
        let q = quantize(&g, &calibration, &QuantOptions::default()).expect("quantized");
        let int8_file = tgm::write_int8(&q).expect("int8 model file");
        let sims: Vec<Simulation> = x
            .chunks_exact(len)
            .map(|z| simulate(&q, z).expect("runtime int8"))
            .collect();
        // The runtime's own `run` gives the same output as its inspected run.
        let device = run_model_file(&int8_file, &x).expect("the runtime runs");
        let inspected: Vec<f32> = sims.iter().flat_map(|s| s.output.clone()).collect();
        assert!(
            device
                .iter()
                .zip(&inspected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: run vs run_inspect"
        );
        let qdq = to_onnx_qdq(&q, &format!("{name}.int8")).expect("QDQ ONNX");
        let whole = Tract::from_bytes(&qdq)
            .expect("tract loads the model")
            .run_f32(&in_dims, &x)
            .expect("tract runs");
        // Dequantised outputs `(q - zp) * 2^-k` are exact in f32: equal floats are equal int8 values.
        let differ = device.iter().zip(&whole).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ,
            0,
            "{name}: whole QDQ model vs runtime int8: {differ} of {} outputs differ",
            whole.len()
        );
        // The whole QDQ model with every int8 tensor as an extra output: tract's int8 tensors equal
        // the runtime's, and the validation case lists them all, so onnxruntime is checked bit for
        // bit on each. (Without the extra outputs onnxruntime's full graph optimisation fuses the
        // QDQ chains into its own int8 kernels, which round differently: up to 1.5 output steps on
        // the MLP decoders, 0 with ORT_ENABLE_BASIC.)
        let debug = export_qdq(
            &q,
            &format!("{name}.int8"),
            &QdqOptions {
                debug_outputs: true,
            },
        )
        .expect("QDQ ONNX");
        let outs = Tract::from_bytes(&debug.bytes)
            .expect("tract loads the model")
            .run_all_f32(&in_dims, &x)
            .expect("tract runs");
        assert_eq!(
            outs.len(),
            q.layers.len() + 2,
            "float output, z.q and one int8 tensor per layer"
        );
        let mut expected = vec![CaseTensor::f32(
            &debug.outputs[0].name,
            &batch_dims(BATCH, &debug.outputs[0].dims),
            whole,
        )];
        for (k, t) in outs.iter().enumerate().skip(1) {
            let got = t.as_i8().expect("an int8 tensor").to_vec();
            let want = batch_tensor(&sims, k - 1);
            assert!(
                got == want,
                "{name}: int8 tensor {} of the whole QDQ model differs from the runtime's",
                debug.outputs[k].name
            );
            expected.push(CaseTensor::i8(
                &debug.outputs[k].name,
                &batch_dims(BATCH, &debug.outputs[k].dims),
                got,
            ));
        }
        case(
            &format!("{name}.int8"),
            &debug.bytes,
            &[CaseTensor::f32(&f.inputs[0].name, &in_dims, x.clone())],
            &expected,
        );
        let (total, worst, off) = per_layer(&q, &format!("{name}.int8"), &sims, true);
        println!("{name:>28}: runtime int8 vs tract QDQ {off} of {total} int8 values differ (layer by layer)");
        assert_eq!(
            worst, 0,
            "{name}: runtime int8 vs tract QDQ, {off} of {total} values differ, by up to {worst}"
        );
        assert!(total > 0);

        // 4. free scales: within one step per layer.
        let qf = quantize(&g, &calibration, &QuantOptions { free_scales: true })
            .expect("quantized, free scales");
        let sims: Vec<Simulation> = x
            .chunks_exact(len)
            .map(|z| simulate(&qf, z).expect("runtime int8"))
            .collect();
        let (total, worst, off) = per_layer(&qf, &format!("{name}.int8free"), &sims, false);
        println!("{name:>28}: free scales, layer by layer: {off} of {total} values differ, max {worst} step");
        assert!(
            worst <= FREE_SCALE_TOL,
            "{name}: free scales, a layer differs by {worst} steps"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vae_chain() {
    check_kind(ModelKind::Vae);
}

#[test]
fn vae_conv_chain() {
    check_kind(ModelKind::VaeConv);
}

#[test]
fn gan_chain() {
    check_kind(ModelKind::Gan);
}

#[test]
fn dcgan_chain() {
    check_kind(ModelKind::Dcgan);
}

#[test]
fn vaegan_chain() {
    check_kind(ModelKind::VaeGan);
}
