//! `tinygen export`: arguments, progress and the summary table; the work (lowering, the files,
//! calibration, the int8 quality) is [`tinygen::export`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tinygen::export::{export_run_with, ExportOptions, ExportStep, DEFAULT_CALIBRATION};
use tinygen_export::graph::Part;

/// `--part`: `decoder` (or `generator`), `encoder` or `discriminator`.
fn parse_part(s: &str) -> Result<Part, String> {
    match s {
        "decoder" | "generator" => Ok(Part::Generator),
        "encoder" => Ok(Part::Encoder),
        "discriminator" => Ok(Part::Discriminator),
        _ => Err(format!(
            "unknown part {s:?}; expected decoder (a GAN's generator), encoder or discriminator"
        )),
    }
}

/// Options of `tinygen export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes into --out: NAME.onnx (float ONNX, opset 13) and NAME.tgm (the runtime's f32 model file),
with --int8 also NAME.int8.onnx (QDQ ONNX) and NAME.int8.tgm, then model.rs (ARENA_BYTES and
sizes for each model file, for a firmware's build) and export-report.md (sizes, arena, parameters,
MACs, per-layer quantisation, int8-vs-f32 error). NAME is `decoder` (VAEs), `generator` (GANs),
`encoder` or `discriminator`.

Calibration: a generator is calibrated on --calib latents z ~ N(0, 1) drawn from --seed with the
runtime's sampler; an encoder or discriminator on the first --calib test images of the run's data.

Examples:
  tinygen export runs/vae --int8                 # runs/vae/export/decoder.{onnx,tgm,int8.onnx,int8.tgm}
  tinygen export runs/dcgan --out fw/model --int8 --calib 1000
  tinygen export runs/gan --part discriminator --out d")]
pub struct Args {
    /// Run folder written by `tinygen train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,

    /// Output folder (created if needed). Default: RUN/export.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Which part to export: decoder (the generator of a GAN; "generator" also works),
    /// encoder or discriminator.
    #[arg(long, value_name = "PART", value_parser = parse_part, default_value = "decoder")]
    pub part: Part,

    /// Also write the int8 model (NAME.int8.onnx, NAME.int8.tgm).
    #[arg(long)]
    pub int8: bool,

    /// Calibration inputs for the int8 activation ranges (and the int8-vs-f32 figures).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CALIBRATION)]
    pub calib: usize,

    /// Free activation and weight scales (closer ranges, but int8 ONNX runtimes may differ from
    /// the device by one step per layer). Default: the bit-exact scale rule.
    #[arg(long, requires = "int8")]
    pub free_scales: bool,

    /// Seed of the calibration latents.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
}

/// Runs `tinygen export`.
pub fn run(args: Args) -> Result<ExitCode> {
    let opts = ExportOptions {
        run: args.run,
        out: args.out,
        part: args.part,
        int8: args.int8,
        calib: args.calib,
        free_scales: args.free_scales,
        seed: args.seed,
    };
    let done = export_run_with(&opts, &mut |step| match step {
        ExportStep::Started {
            name,
            kind,
            graph,
            out,
        } => println!(
            "exporting the {name} of {} ({kind}, input {}, {} nodes) to {}",
            opts.run.display(),
            graph
                .inputs
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            graph.nodes.len(),
            out.display()
        ),
        ExportStep::Calibrating {
            calibration,
            free_scales,
        } => println!(
            "calibrating int8 on {} {} ({} scales)",
            calibration.inputs.len(),
            calibration.what,
            if free_scales { "free" } else { "bit-exact" }
        ),
        _ => {}
    })?;

    println!("{:<24} {:>12} {:>12}", "file", "bytes", "arena bytes");
    for f in &done.files {
        let arena = f.arena_bytes.map(|a| a.to_string()).unwrap_or_default();
        println!("{:<24} {:>12} {arena:>12}", f.name, f.bytes);
    }
    println!(
        "{} parameters, {} MACs per sample",
        done.parameters, done.macs
    );
    if let Some(int8) = &done.int8 {
        let q = &int8.quality;
        println!(
            "int8 vs f32 on {} {}: PSNR {:.2} dB, max |error| {:.3e} ({:.2} output steps)",
            done.calibration.inputs.len(),
            done.calibration.what,
            q.psnr_db,
            q.max_error,
            q.max_error_steps
        );
    }
    println!("report: {}", done.report.display());
    Ok(ExitCode::SUCCESS)
}
