//! The `tinygen` command line.
mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train small generative models, export them, and run them on microcontrollers.
#[derive(Parser)]
#[command(name = "tinygen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a VAE and GANs, export, verify, evaluate and compare them: the whole tool in one
    /// command.
    Quickstart(cli::quickstart::Args),
    /// Train a model (vae, vae-conv, gan, dcgan, vaegan, flow) into a run folder.
    Train(cli::train::Args),
    /// Export a trained part as ONNX and model files (f32, and int8 with --int8).
    Export(cli::export::Args),
    /// Import a generator trained elsewhere (ONNX) as a runtime model file, verified against
    /// tract-onnx.
    Import(cli::import::Args),
    /// Check an export folder: runtime vs tract-onnx (f32 and int8), and the trainer with --run.
    Verify(cli::verify::Args),
    /// Generate images from a model file with the runtime, as a PNG grid.
    Sample(cli::sample::Args),
    /// Measure a trained run or a model file: sample quality (FD, precision, recall, coverage),
    /// likelihood (runs of VAEs and flows), and what int8 costs.
    Eval(cli::eval::Args),
    /// Write a report (HTML and markdown) of evaluated runs side by side.
    Compare(cli::compare::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Quickstart(args) => cli::quickstart::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Import(args) => cli::import::run(args),
        Command::Verify(args) => cli::verify::run(args),
        Command::Sample(args) => cli::sample::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Compare(args) => cli::compare::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
