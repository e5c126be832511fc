//! The work of `tinygen sample`: generates images with the runtime on the host, exactly as a
//! device would (the runtime's sampler seeded with a seed, `generate_u8`), and writes them as a
//! PNG grid.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use tinygen_runtime::model::{Dims, Part, Precision};
use tinygen_runtime::rng::Rng;
use tinygen_trainer::data::PixelRange;
use tinygen_trainer::image::{self, GridOptions};

use crate::files::ModelFile;

/// What to sample, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOptions {
    /// A generator model file (`.tgm`, f32 or int8).
    pub model: PathBuf,
    /// Seed of the sampler.
    pub seed: u64,
    /// Number of images.
    pub n: usize,
    /// Output PNG file.
    pub png: PathBuf,
    /// Images per row.
    pub cols: usize,
}

/// What [`sample_png`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Images in the grid.
    pub n: usize,
    /// Precision of the model file.
    pub precision: Precision,
    /// Shape of one image.
    pub image: Dims,
}

/// Fails unless `file` holds a generator (a decoder or GAN generator), naming the file.
pub fn require_generator(file: &ModelFile) -> Result<()> {
    let part = file.model()?.part();
    if part != Part::Generator {
        bail!(
            "{} holds {} ({part:?}), not a generator: only a decoder or generator can sample",
            file.path.display(),
            match part {
                Part::Encoder => "an encoder",
                _ => "a discriminator",
            },
        );
    }
    Ok(())
}

/// Generates `n` outputs of the generator in `file` with the runtime, as a device does: latents
/// from the runtime's sampler seeded with `seed`, outputs as u8 pixels (`generate_u8`), returned
/// as `v / 255` in `[0, 1]`, one image per row (`(n, output_len)`).
pub fn generate(file: &ModelFile, n: usize, seed: u64) -> Result<Array2<f32>> {
    require_generator(file)?;
    let model = file.model()?;
    let pixels = model.output_len();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut rng = Rng::seed_from_u64(seed);
    let mut images = Array2::<f32>::zeros((n, pixels));
    let mut out = vec![0u8; pixels];
    for mut row in images.rows_mut() {
        model
            .generate_u8(&mut rng, &mut arena, &mut out)
            .map_err(|e| anyhow::anyhow!("{}: runtime error: {e}", file.path.display()))?;
        // v / 255 maps back to the same gray level in a grid (`round(v / 255 * 255) = v`).
        for (dst, &p) in row.iter_mut().zip(&out) {
            *dst = f32::from(p) / 255.0;
        }
    }
    Ok(images)
}

/// Generates `opts.n` grayscale images from `opts.model` with [`generate`] and writes them to
/// `opts.png` as a grid of `opts.cols` columns.
pub fn sample_png(opts: &SampleOptions) -> Result<SampleSummary> {
    if opts.n == 0 || opts.cols == 0 {
        bail!("--n and --cols must be at least 1");
    }
    let file = ModelFile::open(&opts.model)?;
    require_generator(&file)?;
    let model = file.model()?;
    let shape = model.output_shape();
    if shape.c != 1 {
        bail!(
            "{} outputs {} channels of {}x{}; sample writes grayscale images (1 channel)",
            opts.model.display(),
            shape.c,
            shape.h,
            shape.w
        );
    }
    let images = generate(&file, opts.n, opts.seed)?;
    let grid = GridOptions::for_images(shape.h, shape.w, opts.cols, PixelRange::ZeroOne);
    image::write_grid(&opts.png, images.view(), shape.h, shape.w, &grid)
        .with_context(|| format!("writing {}", opts.png.display()))?;
    Ok(SampleSummary {
        n: opts.n,
        precision: model.precision(),
        image: shape,
    })
}
