//! `tinygen quickstart`: train, export, verify, sample, evaluate and compare in one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tinygen::quickstart::{quickstart, QuickstartOptions};

/// Options of `tinygen quickstart`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Trains a DCGAN, a VAE and an MLP GAN (two at a time, one thread each) beside the evaluation
classifier, exports each generator (ONNX, f32 and int8 model files), verifies the exports
against tract-onnx, samples through the runtime, evaluates every model and writes the
comparison report to OUT/report/report.html. Running it again on the same --out continues
where it stopped.

Examples:
  tinygen quickstart                          # built-in MNIST-10k, into quickstart/
  tinygen quickstart --data ~/fashion-mnist --out fashion")]
pub struct Args {
    /// Training data: a folder of IDX files or a digits CSV file. Default: the built-in
    /// MNIST-10k (8,000 training and 2,000 held-out images of 28x28).
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,

    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "quickstart")]
    pub out: PathBuf,

    /// Seed of every run and of the evaluation.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Epochs of the DCGAN, the VAE and the MLP GAN (in that order).
    #[arg(long, value_name = "D,V,G", value_delimiter = ',')]
    pub epochs: Option<Vec<u64>>,

    /// Use only the first N training images.
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,

    /// Use only the first N held-out images.
    #[arg(long, value_name = "N")]
    pub limit_test: Option<usize>,

    /// Generated images per model in the evaluation.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub samples: usize,
}

/// Runs `tinygen quickstart`.
pub fn run(args: Args) -> Result<ExitCode> {
    tinygen_trainer::gemm::set_num_threads(1);
    let mut opts = QuickstartOptions::new(&args.out);
    opts.data = args.data.clone();
    opts.seed = args.seed;
    opts.limit_train = args.limit_train;
    opts.limit_test = args.limit_test;
    opts.samples = args.samples;
    if let Some(e) = &args.epochs {
        if e.len() != opts.jobs.len() {
            anyhow::bail!(
                "--epochs takes {} numbers, the epochs of the DCGAN, the VAE and the MLP GAN (e.g. --epochs 12,20,20); got {}",
                opts.jobs.len(),
                e.len()
            );
        }
        for (job, &n) in opts.jobs.iter_mut().zip(e) {
            if n == 0 {
                anyhow::bail!("--epochs: every model needs at least one epoch");
            }
            job.epochs = n;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: saving checkpoints after this step (Ctrl-C again to quit at once)"
            );
        })
        .context("installing the Ctrl-C handler")?;
    }
    let log = |s: &str| println!("{s}");
    let s = quickstart(&opts, &stop, &log)?;
    println!();
    println!("done in {:.0} s ({:.1} min)", s.seconds, s.seconds / 60.0);
    for (run, e) in s.runs.iter().zip(&s.evals) {
        println!(
            "  {:<10} FD {:>7.2}  precision {:.3}  recall {:.3}  coverage {}/{}   {}",
            e.kind,
            e.float.fd,
            e.float.precision,
            e.float.recall,
            e.float.coverage,
            e.float.classes,
            run.display()
        );
    }
    println!(
        "verification: {} of {} links pass (runtime vs tract-onnx, f32 and int8)",
        s.verify_judged - s.verify_failed,
        s.verify_judged
    );
    println!("report: {}", s.report_md.display());
    println!("open:   xdg-open {}", s.report_html.display());
    Ok(if s.verify_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
