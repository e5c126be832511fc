//! `tinygen verify`: arguments, the table and the exit status; the work (and the links and
//! tolerances) is [`tinygen::verify`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tinygen::verify::{verify_dir, VerifyOptions};

/// Options of `tinygen verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks every model pair in DIR: NAME.tgm against NAME.onnx (runtime f32 vs tract-onnx, relative
1e-5) and NAME.int8.tgm against NAME.int8.onnx (runtime int8 vs tract-onnx, bit-exact under the
default scale rule). With --run, also the trainer's forward pass against the float ONNX of the
generator. Exits with status 1 if any link fails.

Example:
  tinygen export runs/vae --int8 && tinygen verify runs/vae/export --run runs/vae")]
pub struct Args {
    /// Export folder (written by `tinygen export`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Random inputs per link.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub n: usize,

    /// Seed of the random inputs (z ~ N(0, 1), the runtime's sampler).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// The run folder the models were exported from: also check the trainer against the ONNX.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
}

/// Runs `tinygen verify`.
pub fn run(args: Args) -> Result<ExitCode> {
    let report = verify_dir(&VerifyOptions {
        dir: args.dir,
        n: args.n,
        seed: args.seed,
        run: args.run,
    })?;

    println!("{} inputs per link, seed {}", report.n, report.seed);
    println!(
        "{:<28} {:<40} {:>12} {:>24} {:>18}  result",
        "link", "files", "max |diff|", "figure", "tolerance"
    );
    for r in &report.rows {
        let result = match r.pass {
            Some(true) => "ok",
            Some(false) => "FAIL",
            None => "reported",
        };
        println!(
            "{:<28} {:<40} {:>12.3e} {:>24} {:>18}  {result}",
            r.link, r.files, r.max_diff, r.figure, r.tolerance
        );
    }
    for row in &report.quality {
        let (stem, q) = (&row.stem, &row.quality);
        println!(
            "int8 vs f32 ({stem}.int8.tgm vs {stem}.tgm, runtime, these {} inputs): PSNR {:.2} dB \
             (peak {}), RMS error {:.3e}, max |error| {:.3e} ({:.2} output steps)",
            report.n, q.psnr_db, q.peak, q.rmse, q.max_error, q.max_error_steps
        );
    }
    let failed = report.failed();
    if failed > 0 {
        eprintln!(
            "error: {failed} of {} links failed their tolerance",
            report.rows.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("all {} links within tolerance", report.judged());
    Ok(ExitCode::SUCCESS)
}
