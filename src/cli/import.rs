//! `tinygen import`: arguments and the summary; the work is [`tinygen::import`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;
use tinygen::import::{import_file, ImportRunOptions};
use tinygen_export::graph::Part;
use tinygen_runtime::model::OutputRange;

/// `--output-range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RangeArg {
    /// Pixels in [0, 1] (black 0).
    ZeroOne,
    /// Pixels in [-1, 1] (black -1).
    MinusOneOne,
}

/// `--part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartArg {
    /// A generator or decoder (latent in, image out).
    Generator,
    /// A VAE decoder (the same as generator).
    Decoder,
}

/// Options of `tinygen import`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads a decoder or generator trained elsewhere (PyTorch's or another exporter's ONNX: Gemm, MatMul,
Conv, ConvTranspose, BatchNormalization folded into the layer before it, the activations, Add, Mul,
Concat, reshapes and the shape arithmetic around them), writes into --out NAME.tgm (the runtime's
f32 model file), NAME.onnx (a copy of the original), model.rs and import-report.md, and checks
NAME.tgm against tract-onnx running the original on --n latents before it returns (1e-5
relative). With --int8 also NAME.int8.tgm and the QDQ graph NAME.int8.onnx, calibrated on --calib
latents, checked against tract-onnx bit for bit, with the int8-vs-f32 PSNR. A node the runtime
cannot run is reported by name, op type and reason. NAME is the ONNX file's stem.

Examples:
  tinygen import dcgan_generator.onnx --out fw/dcgan
  tinygen import dcgan_generator.onnx --out fw/dcgan --int8 --calib 512
  tinygen import decoder.onnx --out imported --output-range zero-one   # no final sigmoid")]
pub struct Args {
    /// The ONNX file.
    #[arg(value_name = "FILE.onnx")]
    pub onnx: PathBuf,

    /// Output folder (created if needed). Default: the ONNX file's stem beside it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// What the model is.
    #[arg(long, value_enum, default_value_t = PartArg::Generator)]
    pub part: PartArg,

    /// The output's range when the graph does not end in Tanh ([-1, 1]) or Sigmoid ([0, 1]).
    #[arg(long, value_enum, value_name = "RANGE")]
    pub output_range: Option<RangeArg>,

    /// Also the int8 model: NAME.int8.tgm and its QDQ graph NAME.int8.onnx, checked against
    /// each other bit for bit (power-of-two scales).
    #[arg(long)]
    pub int8: bool,

    /// Latents z ~ N(0, 1) that calibrate the int8 activation ranges (seed --seed + 1).
    #[arg(long, value_name = "N", default_value_t = tinygen::export::DEFAULT_CALIBRATION)]
    pub calib: usize,

    /// Latents the verification runs.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub n: usize,

    /// Seed of those latents.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
}

/// Runs `tinygen import`.
pub fn run(args: Args) -> Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.onnx.file_stem().unwrap_or_default();
        args.onnx.with_file_name(stem)
    });
    let opts = ImportRunOptions {
        onnx: args.onnx,
        out,
        part: match args.part {
            PartArg::Generator | PartArg::Decoder => Part::Generator,
        },
        output_range: args.output_range.map(|r| match r {
            RangeArg::ZeroOne => OutputRange::ZeroOne,
            RangeArg::MinusOneOne => OutputRange::MinusOneOne,
        }),
        n: args.n,
        seed: args.seed,
        int8: args.int8.then_some(args.calib),
    };
    let done = import_file(&opts)?;
    let imp = &done.imported;
    println!(
        "imported {} ({} nodes, {} parameters, inputs {}, output {}, range {:?}) into {}",
        opts.onnx.display(),
        imp.dag.nodes.len(),
        imp.dag.parameter_count(),
        imp.dag
            .inputs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        imp.output_shape,
        imp.output_range,
        done.out.display()
    );
    println!("{:<24} {:>12} {:>12}", "file", "bytes", "arena bytes");
    for f in &done.files {
        let arena = f.arena_bytes.map(|a| a.to_string()).unwrap_or_default();
        println!("{:<24} {:>12} {arena:>12}", f.name, f.bytes);
    }
    println!(
        "verified: runtime f32 vs tract-onnx on the original, {} latents: {}",
        done.n,
        done.check.describe()
    );
    if let Some(i) = &done.int8 {
        let q = &i.export.quality;
        println!(
            "verified: runtime int8 vs tract-onnx on {}.int8.onnx, {} latents: {} of {} values differ (bit-exact)",
            done.name, done.n, i.differing, i.compared
        );
        println!(
            "int8 vs f32 on {} {}: PSNR {:.2} dB, max |error| {:.3e} ({:.2} output steps)",
            i.calibration.inputs.len(),
            i.calibration.what,
            q.psnr_db,
            q.max_error,
            q.max_error_steps
        );
    }
    println!("report: {}", done.out.join("import-report.md").display());
    Ok(ExitCode::SUCCESS)
}
