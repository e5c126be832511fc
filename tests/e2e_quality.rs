//! int8 output quality of a trained VAE decoder (the last link of the verification chain): the int8
//! model file against the f32 model file, both run by the runtime on the same latents.
//!
//! PSNR = 10 log10(1 / MSE) over [0, 1] outputs. The ceiling is set by the output quantisation
//! alone: a sigmoid output in [0, 1] gets the power-of-two scale 2^-7, whose rounding error
//! (uniform, step 2^-7) has MSE 2^-14 / 12, i.e. 52.9 dB. Weight and activation quantisation
//! lose more; [`PSNR_FLOOR_DB`] is the level below which int8 digits visibly differ from f32 ones
//! (an RMS error above 1/32 of the range, about 8 gray levels).

mod common;

use common::*;
use tinygen_export::check::run_model_file;
use tinygen_export::graph::Part;
use tinygen_export::quant::{quantize, QuantOptions};
use tinygen_export::tgm;
use tinygen_trainer::models::ModelKind;

/// Smallest acceptable int8-vs-f32 PSNR of the trained VAE decoder (see the module docs).
const PSNR_FLOOR_DB: f64 = 30.0;

/// Latents in the comparison, as in BENCHMARKS.md.
const LATENTS: usize = 1000;

#[test]
fn trained_vae_decoder_int8_psnr_is_above_the_floor() {
    let dir = scratch("quality-vae");
    // Four epochs on the 1,498 built-in digits (the full recipe's widths): a decoder that
    // draws digits, so its activations have realistic ranges.
    let (_, model) = train(&dir, tiny_config(ModelKind::Vae, 4, None));
    let g = model.graph(Part::Generator).unwrap();
    let latent = g.input.len();
    let calibration: Vec<Vec<f32>> = gaussian(100, 512, latent)
        .chunks_exact(latent)
        .map(<[f32]>::to_vec)
        .collect();
    let q = quantize(&g, &calibration, &QuantOptions::default()).unwrap();
    let z = gaussian(200, LATENTS, latent);
    let a = run_model_file(&tgm::write_f32(&g).unwrap(), &z).unwrap();
    let b = run_model_file(&tgm::write_int8(&q).unwrap(), &z).unwrap();
    let mse = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    let max = a.iter().zip(&b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    let psnr = 10.0 * (1.0 / mse).log10();
    println!("trained VAE decoder (8x8), int8 vs f32 on {LATENTS} latents: PSNR {psnr:.2} dB, max |error| {max:.4}");
    assert!(
        psnr.is_finite() && psnr >= PSNR_FLOOR_DB,
        "PSNR {psnr:.2} dB < {PSNR_FLOOR_DB} dB"
    );
    std::fs::remove_dir_all(&dir).ok();
}
