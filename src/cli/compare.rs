//! `tinygen compare`: a report of evaluated runs side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tinygen::report::{self, CompareOptions};

/// Options of `tinygen compare`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each RUN must have been evaluated (`tinygen eval RUN` writes RUN/eval/eval.json). Writes
report.html (self-contained: pictures and plots inline, opens offline) and report.md with the
pictures and plots beside it.

Example:
  tinygen eval runs/vae && tinygen eval runs/dcgan && tinygen compare runs/vae runs/dcgan --out report")]
pub struct Args {
    /// Evaluated run folders.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<PathBuf>,

    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
}

/// Runs `tinygen compare`.
pub fn run(args: Args) -> Result<ExitCode> {
    let entries = report::load_entries(&args.runs)?;
    let command = std::iter::once("tinygen compare".to_owned())
        .chain(args.runs.iter().map(|r| r.display().to_string()))
        .chain(["--out".to_owned(), args.out.display().to_string()])
        .collect::<Vec<_>>()
        .join(" ");
    let html = report::write_report(
        &entries,
        &CompareOptions {
            out: args.out.clone(),
            command,
        },
    )?;
    for f in report::findings(&entries) {
        println!("- {}", f.replace("**", ""));
    }
    println!("report: {} (and report.md beside it)", html.display());
    Ok(ExitCode::SUCCESS)
}
