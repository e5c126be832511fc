//! `tinygen sample`: generates images with the runtime on the host, exactly as a device would
//! (the runtime's sampler seeded with `--seed`, `generate_u8`), and writes them as a PNG grid.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use tinygen_runtime::model::Kind;
use tinygen_runtime::rng::Rng;
use tinygen_trainer::data::PixelRange;
use tinygen_trainer::image::{self, GridOptions};

use super::files::ModelFile;

/// Options of `tinygen sample`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The latents come from the runtime's sampler (xoshiro128++ and Box-Muller) seeded with --seed, so
a device running the same model file with the same seed produces the same pixels.

Example:
  tinygen sample runs/vae/export/decoder.int8.tgm --seed 7 --n 64 --png samples.png")]
pub struct Args {
    /// A generator model file (`.tgm`, f32 or int8) written by `tinygen export`.
    #[arg(value_name = "MODEL.tgm")]
    pub model: PathBuf,

    /// Seed of the sampler.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,

    /// Number of images.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub n: usize,

    /// Output PNG file.
    #[arg(long, value_name = "FILE")]
    pub png: PathBuf,

    /// Images per row.
    #[arg(long, value_name = "C", default_value_t = 8)]
    pub cols: usize,
}

/// Runs `tinygen sample`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.n == 0 || args.cols == 0 {
        bail!("--n and --cols must be at least 1");
    }
    let file = ModelFile::open(&args.model)?;
    let model = file.model()?;
    if model.kind() != Kind::Generator {
        bail!(
            "{} holds {} ({:?}), not a generator: only a decoder or generator can sample",
            args.model.display(),
            match model.kind() {
                Kind::Encoder => "an encoder",
                _ => "a discriminator",
            },
            model.kind()
        );
    }
    let shape = model.output_shape();
    if shape.c != 1 {
        bail!(
            "{} outputs {} channels of {}x{}; sample writes grayscale images (1 channel)",
            args.model.display(),
            shape.c,
            shape.h,
            shape.w
        );
    }
    let pixels = model.output_len();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut rng = Rng::seed_from_u64(args.seed);
    let mut images = Array2::<f32>::zeros((args.n, pixels));
    let mut out = vec![0u8; pixels];
    for mut row in images.rows_mut() {
        model
            .generate_u8(&mut rng, &mut arena, &mut out)
            .map_err(|e| anyhow::anyhow!("{}: runtime error: {e}", args.model.display()))?;
        // v / 255 maps back to the same gray level in the grid (`round(v / 255 * 255) = v`).
        for (dst, &p) in row.iter_mut().zip(&out) {
            *dst = f32::from(p) / 255.0;
        }
    }
    let opts = GridOptions::for_images(shape.h, shape.w, args.cols, PixelRange::ZeroOne);
    image::write_grid(&args.png, images.view(), shape.h, shape.w, &opts)
        .with_context(|| format!("writing {}", args.png.display()))?;
    println!(
        "{} images from {} ({:?}, seed {}) -> {}",
        args.n,
        args.model.display(),
        model.precision(),
        args.seed,
        args.png.display()
    );
    Ok(ExitCode::SUCCESS)
}
