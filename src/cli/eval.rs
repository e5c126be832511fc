//! `tinygen eval`: sample quality, likelihood and device cost of a trained run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tinygen::eval::{self, EvalOptions, MAX_IW_SAMPLES};

/// Options of `tinygen eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes RUN/eval/eval.json and pictures (samples.png, nearest.png, interpolation.png; VAEs also
reconstructions.png, and manifold.png for a 2-D latent; int8-samples.png when the run has an
int8 export in RUN/export). The evaluation classifier is trained on the run's training split on
first use and cached in --classifier-dir.

Examples:
  tinygen eval runs/vae
  tinygen eval runs/dcgan --samples 10000 --seed 3
  tinygen eval runs/vae --iw-samples 5000 --iw-images 1000")]
pub struct Args {
    /// Run folder written by `tinygen train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,

    /// Generated images compared with as many held-out images (capped at the held-out split).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub samples: usize,

    /// Seed of the latents (the runtime's sampler; the int8 model sees the same latents).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,

    /// Importance samples per held-out image for the VAE's NLL estimate (1 to 5000).
    #[arg(long, value_name = "K", default_value_t = 1000)]
    pub iw_samples: usize,

    /// Held-out images the VAE's ELBO and NLL are computed on.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub iw_images: usize,

    /// Folder of the cached evaluation classifier. Default: `classifiers` beside RUN.
    #[arg(long, value_name = "DIR")]
    pub classifier_dir: Option<PathBuf>,

    /// Do not evaluate the int8 model file even if the run has one.
    #[arg(long)]
    pub no_int8: bool,
}

/// Runs `tinygen eval`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.iw_samples == 0 || args.iw_samples > MAX_IW_SAMPLES {
        anyhow::bail!(
            "--iw-samples {}: give between 1 and {MAX_IW_SAMPLES} importance samples per image",
            args.iw_samples
        );
    }
    let mut opts = EvalOptions::new(&args.run);
    opts.samples = args.samples;
    opts.seed = args.seed;
    opts.iw_samples = args.iw_samples;
    opts.iw_images = args.iw_images;
    opts.skip_int8 = args.no_int8;
    if let Some(d) = args.classifier_dir {
        opts.classifier_dir = d;
    }
    let mut log = |s: &str| println!("{s}");
    let r = eval::evaluate(&opts, &mut log)?;
    println!(
        "{}: FD {:.2} (floor {:.2}), precision {:.3}, recall {:.3}, coverage {}/{}; written to {}",
        r.run,
        r.float.fd,
        r.fd_floor,
        r.float.precision,
        r.float.recall,
        r.float.coverage,
        r.float.classes,
        args.run
            .join(eval::EVAL_DIR)
            .join(eval::EVAL_JSON)
            .display()
    );
    Ok(ExitCode::SUCCESS)
}
