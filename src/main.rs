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
    /// Train a model (vae, vae-conv, gan, dcgan, vaegan) into a run folder.
    Train(cli::train::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cli::train::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
