//! The `tinygen` command line.
use anyhow::Result;
use clap::Parser;

/// Train small generative models, export them, and run them on microcontrollers.
#[derive(Parser)]
#[command(name = "tinygen", version, about)]
struct Cli {}

fn main() -> Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
