//! `tinygen sample`: arguments and output; the work is [`tinygen::sample`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tinygen::sample::{sample_png, SampleOptions};

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
    let opts = SampleOptions {
        model: args.model,
        seed: args.seed,
        n: args.n,
        png: args.png,
        cols: args.cols,
    };
    let done = sample_png(&opts)?;
    println!(
        "{} images from {} ({:?}, seed {}) -> {}",
        done.n,
        opts.model.display(),
        done.precision,
        opts.seed,
        opts.png.display()
    );
    Ok(ExitCode::SUCCESS)
}
