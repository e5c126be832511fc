//! The work of `tinygen export`: lowers a trained part to the neutral graph and writes the float
//! ONNX, the f32 model file, optionally the int8 QDQ ONNX and int8 model file (calibrated on
//! latents or test images), `model.rs` and a report; returns what it wrote and the int8-vs-f32
//! quality for the command line to print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tinygen_export::check;
use tinygen_export::dag::Dag;
use tinygen_export::graph::{Graph, Part, Shape};
use tinygen_export::onnx;
use tinygen_export::onnx::qdq_graph::to_onnx_qdq_graph;
use tinygen_export::qdag::{quantize_dag, QOp, QuantDag};
use tinygen_export::quant::{self, QLayer, QLinear, QParams, QuantGraph, QuantOptions};
use tinygen_export::tgm;
use tinygen_runtime::model::OutputRange;
use tinygen_runtime::rng::Rng;
use tinygen_trainer::models::{Model, ModelError, ModelKind};
use tinygen_trainer::train::TrainConfig;

use crate::files::{self, ModelFile};

/// Calibration inputs used when `--calib` is not given.
pub const DEFAULT_CALIBRATION: usize = 512;

/// What to export, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Run folder written by `tinygen train`.
    pub run: PathBuf,
    /// Output folder (created if needed); `None`: `RUN/export`.
    pub out: Option<PathBuf>,
    /// The part to export.
    pub part: Part,
    /// Also write the int8 model (`NAME.int8.onnx`, `NAME.int8.tgm`).
    pub int8: bool,
    /// Calibration inputs for the int8 activation ranges (and the int8-vs-f32 figures).
    pub calib: usize,
    /// Free activation and weight scales instead of the bit-exact scale rule.
    pub free_scales: bool,
    /// Seed of the calibration latents.
    pub seed: u64,
}

impl ExportOptions {
    /// The defaults of `tinygen export RUN`: the decoder (generator), f32 only, into `RUN/export`.
    pub fn new(run: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions {
            run: run.into(),
            out: None,
            part: Part::Generator,
            int8: false,
            calib: DEFAULT_CALIBRATION,
            free_scales: false,
            seed: 0,
        }
    }

    /// The output folder: `out`, or `RUN/export`.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| self.run.join("export"))
    }
}

/// File stem of an exported part.
pub fn part_name(kind: ModelKind, part: Part) -> &'static str {
    match part {
        Part::Generator if kind.is_vae() => "decoder",
        Part::Generator => "generator",
        Part::Encoder => "encoder",
        Part::Discriminator => "discriminator",
    }
}

/// The name of a part on the command line (`--part`): "decoder" is the generator of a GAN too.
pub fn part_arg(part: Part) -> &'static str {
    match part {
        Part::Generator => "decoder",
        Part::Encoder => "encoder",
        Part::Discriminator => "discriminator",
    }
}

/// A step of an export in progress, for a caller that reports progress.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportStep<'a> {
    /// The part is lowered and checked; files are about to be written.
    Started {
        /// File stem of the part.
        name: &'static str,
        /// The run's model kind.
        kind: ModelKind,
        /// The graph being exported (a chain as a graph without branches).
        graph: &'a Dag,
        /// The output folder.
        out: &'a Path,
    },
    /// int8 calibration and quantisation start.
    Calibrating {
        /// The calibration set.
        calibration: &'a Calibration,
        /// Free scales (`true`) or the bit-exact rule.
        free_scales: bool,
    },
}

/// One file `export` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// File name inside the output folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: usize,
    /// For a model file, the arena it needs (bytes).
    pub arena_bytes: Option<usize>,
}

/// The calibration set and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The inputs, one vector per sample.
    pub inputs: Vec<Vec<f32>>,
    /// Where they came from, for the report ("latents z ~ N(0, 1), seed 0").
    pub what: String,
}

/// A quantised model: a chain, or a graph with branches.
#[derive(Debug, Clone)]
pub enum Quantized {
    /// A chain (the quantiser's free-scale option applies).
    Chain(QuantGraph),
    /// A graph with branches (power-of-two scales, bit-exact with its QDQ graph).
    Graph(QuantDag),
}

/// The int8 half of an export.
#[derive(Debug, Clone)]
pub struct Int8Export {
    /// The quantised graph written to `NAME.int8.onnx` and `NAME.int8.tgm`.
    pub graph: Quantized,
    /// int8 vs f32 on the calibration inputs.
    pub quality: Quality,
}

/// What `export` did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// File stem of the part (`decoder`, `generator`, `encoder`, `discriminator`).
    pub name: &'static str,
    /// The run's model kind.
    pub kind: ModelKind,
    /// The output folder.
    pub out: PathBuf,
    /// The exported graph (a chain as a graph without branches).
    pub graph: Dag,
    /// Every file written, in order.
    pub files: Vec<WrittenFile>,
    /// Trainable values of the graph ([`Graph::parameter_count`]).
    pub parameters: usize,
    /// Multiply-accumulates per sample ([`Graph::macs`]).
    pub macs: usize,
    /// The calibration set (used for int8 only).
    pub calibration: Calibration,
    /// The int8 model and its quality, with `int8`.
    pub int8: Option<Int8Export>,
    /// `export-report.md`.
    pub report: PathBuf,
}

/// Writes `bytes` to `dir/name` and records it.
fn write(
    files: &mut Vec<WrittenFile>,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    arena_bytes: Option<usize>,
) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    files.push(WrittenFile {
        name: name.to_owned(),
        bytes: bytes.len(),
        arena_bytes,
    });
    Ok(())
}

/// Writes the model file `dir/name`, reads it back through the runtime's parser, records it and
/// returns it with its `model.rs` block.
fn write_model_file(
    files: &mut Vec<WrittenFile>,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(ModelFile, (String, String))> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    let file = ModelFile::open(&path)?;
    let model = file.model()?;
    files.push(WrittenFile {
        name: name.to_owned(),
        bytes: bytes.len(),
        arena_bytes: Some(model.arena_bytes()),
    });
    let rs = (name.to_owned(), tgm::model_rs(&model, name));
    Ok((file, rs))
}

/// Exports as `tinygen export` does, silently; see [`export_run_with`].
pub fn export_run(opts: &ExportOptions) -> Result<ExportSummary> {
    export_run_with(opts, &mut |_| {})
}

/// Exports the part `opts.part` of the run `opts.run` into [`ExportOptions::out_dir`]:
/// `NAME.onnx`, `NAME.tgm`, with `int8` `NAME.int8.onnx` and `NAME.int8.tgm`, then `model.rs`
/// and `export-report.md`. `on_step` hears of each step as it starts.
pub fn export_run_with(
    opts: &ExportOptions,
    on_step: &mut dyn FnMut(ExportStep<'_>),
) -> Result<ExportSummary> {
    if opts.calib == 0 {
        bail!("calibration set is empty (--calib 0); give at least one input, e.g. --calib {DEFAULT_CALIBRATION}");
    }
    let (cfg, trained) = files::open_run(&opts.run)?;
    let kind = cfg.model.kind;
    let part = opts.part;
    if !trained.parts().contains(&part) {
        let have: Vec<&str> = trained.parts().iter().map(|&p| part_arg(p)).collect();
        bail!(
            "{}: a {kind} model has no {} to export; it has: {}",
            opts.run.display(),
            part_arg(part),
            have.join(", ")
        );
    }
    let name = part_name(kind, part);
    let graph = match trained.graph(part) {
        Ok(graph) => graph,
        Err(ModelError::NotAChain { .. }) => {
            return export_branched(opts, on_step, &cfg, &trained, name)
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "lowering the {name} of {} to the export graph",
                opts.run.display()
            )))
        }
    };
    graph.validate().with_context(|| {
        format!(
            "the {name} of {} is not a graph the exporter supports",
            opts.run.display()
        )
    })?;
    let out = opts.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let dag = Dag::from_chain(&graph);
    on_step(ExportStep::Started {
        name,
        kind,
        graph: &dag,
        out: &out,
    });

    let mut written = Vec::new();
    let onnx_f32 = onnx::to_onnx_f32(&graph, name).with_context(|| {
        format!("writing {name}.onnx: the ONNX writer cannot express the {name}")
    })?;
    write(&mut written, &out, &format!("{name}.onnx"), &onnx_f32, None)?;
    let tgm_f32 = tgm::write_f32(&graph)
        .with_context(|| format!("writing {name}.tgm: the runtime cannot express the {name}"))?;
    let (f32_file, rs_f32) =
        write_model_file(&mut written, &out, &format!("{name}.tgm"), &tgm_f32)?;
    let mut model_rs = vec![rs_f32];

    let calibration = calibration_inputs(&cfg, part, graph.input.len(), opts.calib, opts.seed)?;
    let mut int8 = None;
    if opts.int8 {
        on_step(ExportStep::Calibrating {
            calibration: &calibration,
            free_scales: opts.free_scales,
        });
        let q = quant::quantize(
            &graph,
            &calibration.inputs,
            &QuantOptions {
                free_scales: opts.free_scales,
            },
        )
        .with_context(|| format!("quantizing the {name} to int8"))?;
        let onnx_q = onnx::to_onnx_qdq(&q, &format!("{name}.int8")).with_context(|| {
            format!("writing {name}.int8.onnx: the QDQ writer cannot express the {name}")
        })?;
        write(
            &mut written,
            &out,
            &format!("{name}.int8.onnx"),
            &onnx_q,
            None,
        )?;
        let tgm_q = tgm::write_int8(&q).with_context(|| format!("writing {name}.int8.tgm"))?;
        let (file, rs_q) =
            write_model_file(&mut written, &out, &format!("{name}.int8.tgm"), &tgm_q)?;
        model_rs.push(rs_q);
        let flat: Vec<f32> = calibration.inputs.iter().flatten().copied().collect();
        let quality = quality(&f32_file, &file, &flat)?;
        int8 = Some(Int8Export {
            graph: Quantized::Chain(q),
            quality,
        });
    }

    let rs = model_rs_file("export", &model_rs);
    write(&mut written, &out, "model.rs", rs.as_bytes(), None)?;
    let report = report(
        opts,
        &cfg,
        name,
        &graph,
        &written,
        &calibration,
        int8.as_ref(),
    );
    finish(
        Finished {
            name,
            kind,
            graph: dag,
            calibration,
            int8,
        },
        out,
        written,
        &report,
    )
}

/// [`export_run_with`] for a part with branches (a flow's generator): the float ONNX and the
/// f32 model file of its [`Dag`], with `int8` the QDQ ONNX and int8 model file of the graph
/// quantiser ([`quantize_dag`]; power-of-two scales only), `model.rs` and the report. A graph
/// whose last node does not bound its output (a flow ends in the inverse logit's affine step)
/// gets the range of the model's pixels in its model files.
fn export_branched(
    opts: &ExportOptions,
    on_step: &mut dyn FnMut(ExportStep<'_>),
    cfg: &TrainConfig,
    trained: &Model,
    name: &'static str,
) -> Result<ExportSummary> {
    let kind = cfg.model.kind;
    if opts.int8 && opts.free_scales {
        bail!(
            "{}: the {kind} model's {name} is a graph with branches, which is quantised with \
             power-of-two scales only (bit-exact with its QDQ graph); drop --free-scales",
            opts.run.display()
        );
    }
    let dag = trained.dag(opts.part).with_context(|| {
        format!(
            "lowering the {name} of {} to the export graph",
            opts.run.display()
        )
    })?;
    let out = opts.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    on_step(ExportStep::Started {
        name,
        kind,
        graph: &dag,
        out: &out,
    });
    let mut written = Vec::new();
    let onnx_f32 = dag.to_onnx_f32(name).with_context(|| {
        format!("writing {name}.onnx: the ONNX writer cannot express the {name}")
    })?;
    write(&mut written, &out, &format!("{name}.onnx"), &onnx_f32, None)?;
    let mut program = dag
        .program_f32()
        .with_context(|| format!("the {name} of {} is not a valid graph", opts.run.display()))?;
    if program.range == OutputRange::Unbounded {
        program.range = kind.pixel_range().output_range();
    }
    let tgm_f32 = tgm::write_program(&program)
        .with_context(|| format!("writing {name}.tgm: the runtime cannot express the {name}"))?;
    let (f32_file, rs) = write_model_file(&mut written, &out, &format!("{name}.tgm"), &tgm_f32)?;
    let mut model_rs = vec![rs];
    let input_len = dag.inputs.first().map_or(0, Shape::len);
    let calibration = calibration_inputs(cfg, opts.part, input_len, opts.calib, opts.seed)?;
    let mut int8 = None;
    if opts.int8 {
        on_step(ExportStep::Calibrating {
            calibration: &calibration,
            free_scales: false,
        });
        let (q, rs) = write_int8_graph(
            &dag,
            program.range,
            &calibration,
            &out,
            name,
            &f32_file,
            &mut written,
        )?;
        model_rs.push(rs);
        int8 = Some(q);
    }
    let rs = model_rs_file("export", &model_rs);
    write(&mut written, &out, "model.rs", rs.as_bytes(), None)?;
    let report = branched_report(
        opts,
        cfg,
        name,
        &dag,
        program.range,
        &written,
        &calibration,
        int8.as_ref(),
    );
    finish(
        Finished {
            name,
            kind,
            graph: dag,
            calibration,
            int8,
        },
        out,
        written,
        &report,
    )
}

/// What an export produced, before its report is written.
struct Finished {
    name: &'static str,
    kind: ModelKind,
    graph: Dag,
    calibration: Calibration,
    int8: Option<Int8Export>,
}

/// Writes `export-report.md` into `out` and returns the summary of the whole export.
fn finish(
    done: Finished,
    out: PathBuf,
    mut written: Vec<WrittenFile>,
    report: &str,
) -> Result<ExportSummary> {
    write(
        &mut written,
        &out,
        "export-report.md",
        report.as_bytes(),
        None,
    )?;
    Ok(ExportSummary {
        name: done.name,
        kind: done.kind,
        report: out.join("export-report.md"),
        out,
        parameters: done.graph.parameter_count(),
        macs: done.graph.macs().unwrap_or(0),
        graph: done.graph,
        files: written,
        calibration: done.calibration,
        int8: done.int8,
    })
}

/// Quantises a graph with branches on `calibration` ([`quantize_dag`]), writes
/// `NAME.int8.onnx` (QDQ) and `NAME.int8.tgm` (output range `range`) into `out`, and measures
/// int8 against the f32 model file on the calibration inputs. Returns the int8 half and its
/// `model.rs` block.
pub fn write_int8_graph(
    dag: &Dag,
    range: OutputRange,
    calibration: &Calibration,
    out: &Path,
    name: &str,
    f32_file: &ModelFile,
    written: &mut Vec<WrittenFile>,
) -> Result<(Int8Export, (String, String))> {
    let mut q = quantize_dag(dag, &calibration.inputs)
        .with_context(|| format!("quantizing the {name} to int8"))?;
    q.output_range = range;
    let onnx_q = to_onnx_qdq_graph(&q, &format!("{name}.int8")).with_context(|| {
        format!("writing {name}.int8.onnx: the QDQ writer cannot express the {name}")
    })?;
    write(written, out, &format!("{name}.int8.onnx"), &onnx_q, None)?;
    let tgm_q = q
        .write_int8()
        .with_context(|| format!("writing {name}.int8.tgm"))?;
    let (file, rs) = write_model_file(written, out, &format!("{name}.int8.tgm"), &tgm_q)?;
    let flat: Vec<f32> = calibration.inputs.iter().flatten().copied().collect();
    let quality = quality(f32_file, &file, &flat)?;
    Ok((
        Int8Export {
            graph: Quantized::Graph(q),
            quality,
        },
        rs,
    ))
}

/// The int8 section of a report on a graph with branches: scales per node and int8 vs f32.
pub fn graph_int8_section(s: &mut String, q: &QuantDag, cal: &Calibration, quality: &Quality) {
    let n_in = q.inputs.len();
    let _ = writeln!(
        s,
        "\n## int8\n\nScales: bit-exact rule (power-of-two activation scales, weight scales with \
         a 7-bit mantissa). Calibration: {} {}. Input: {}. Output: {}.\n",
        cal.inputs.len(),
        cal.what,
        qp(q.quant[0]),
        qp(q.quant[q.output()])
    );
    let _ = writeln!(
        s,
        "Add, Sub, Mul and Concat dequantize their inputs, compute in f32 and quantize to their \
         output's scale; Slice, Gather and Reshape keep their input's. Tensors are numbered as in \
         the int8 graph (a ReLU folded into the layer before it has no tensor of its own).\n"
    );
    let _ = writeln!(
        s,
        "| tensor | op | input | output | weight scales | multipliers | shifts |\n|---|---|---|---|---|---|---|"
    );
    for (k, node) in q.nodes.iter().enumerate() {
        let t = n_in + k;
        let row = match &node.op {
            QOp::Layer(l) => qlayer_row(t, l, q.quant[node.input]),
            QOp::Graph(op) => format!(
                "| {t} | {} of {}{} | {} | {} | - | - | - |",
                op.name(),
                node.input,
                match op {
                    tinygen_export::dag::Op::Binary(_, tinygen_export::dag::Operand::Tensor(b))
                    | tinygen_export::dag::Op::Concat(b) => format!(" and {b}"),
                    _ => String::new(),
                },
                qp(q.quant[node.input]),
                qp(q.quant[t])
            ),
        };
        let _ = writeln!(s, "{row}");
    }
    quality_section(s, cal, quality, q.quant[q.output()].scale);
}

/// The int8-vs-f32 table of a report.
fn quality_section(s: &mut String, cal: &Calibration, quality: &Quality, output_scale: f32) {
    let _ = writeln!(
        s,
        "\n## int8 vs f32\n\nBoth model files run in the runtime on the {} calibration inputs ({}):\n\n\
         | figure | value |\n|---|---|\n\
         | PSNR (peak {}) | {:.2} dB |\n| RMS error | {:.3e} |\n| max abs error | {:.3e} |\n\
         | max abs error in output steps ({}) | {:.2} |",
        cal.inputs.len(),
        cal.what,
        quality.peak,
        quality.psnr_db,
        quality.rmse,
        quality.max_error,
        output_scale,
        quality.max_error_steps,
    );
}

/// One row of the int8 layer table: tensor or layer `i`, its input's quantisation `input`.
fn qlayer_row(i: usize, l: &QLayer, input: QParams) -> String {
    match l {
        QLayer::Dense { q, .. } => linear_row(i, "Dense", q),
        QLayer::Conv2d { q, .. } => linear_row(i, "Conv2d", q),
        QLayer::ConvTranspose2d { q, .. } => linear_row(i, "ConvTranspose2d", q),
        QLayer::Activation {
            f, input, output, ..
        } => format!(
            "| {i} | {f:?} (256-entry table) | {} | {} | - | - | - |",
            qp(*input),
            qp(*output)
        ),
        QLayer::Reshape { to } => format!(
            "| {i} | Reshape to {to} | {} | {} | - | - | - |",
            qp(input),
            qp(input)
        ),
    }
}

/// `export-report.md` of a graph with branches: files, sizes and one row per node.
#[allow(clippy::too_many_arguments)]
fn branched_report(
    opts: &ExportOptions,
    cfg: &TrainConfig,
    name: &str,
    dag: &Dag,
    range: OutputRange,
    written: &[WrittenFile],
    cal: &Calibration,
    int8: Option<&Int8Export>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Export report: `{name}`\n");
    let inputs: Vec<String> = dag.inputs.iter().map(Shape::to_string).collect();
    let _ = writeln!(
        s,
        "Run `{}` ({}, {}x{} images), part {:?}, a graph with branches of {} nodes, input {}, \
         output range {range:?}.\n",
        opts.run.display(),
        cfg.model.kind,
        cfg.model.height,
        cfg.model.width,
        dag.part,
        dag.nodes.len(),
        inputs.join(", "),
    );
    files_table(&mut s, written);
    let _ = writeln!(
        s,
        "\n{} parameters, {} multiply-accumulates per sample.\n",
        dag.parameter_count(),
        dag.macs().unwrap_or(0)
    );
    let _ = writeln!(
        s,
        "## Nodes\n\n| # | op | reads | output | parameters |\n|---|---|---|---|---|"
    );
    if let Ok(shapes) = dag.shapes() {
        let n_in = dag.inputs.len();
        for (k, node) in dag.nodes.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                n_in + k,
                node.op.name(),
                node.input,
                shapes[n_in + k],
                node.op.parameters()
            );
        }
    }
    match int8 {
        Some(Int8Export {
            graph: Quantized::Graph(q),
            quality,
        }) => graph_int8_section(&mut s, q, cal, quality),
        _ => {
            let _ = writeln!(s, "\nNo int8 model (pass `--int8`).");
        }
    }
    s
}

/// The files table of a report.
fn files_table(s: &mut String, written: &[WrittenFile]) {
    let _ = writeln!(
        s,
        "## Files\n\n| file | bytes | arena bytes |\n|---|---|---|"
    );
    for f in written {
        let arena = f
            .arena_bytes
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(s, "| `{}` | {} | {arena} |", f.name, f.bytes);
    }
}

/// `n` latents `z ~ N(0, 1)` of `len` values from the runtime's sampler seeded with `seed`.
pub fn latent_calibration(len: usize, n: usize, seed: u64) -> Calibration {
    let mut rng = Rng::seed_from_u64(seed);
    let inputs = (0..n)
        .map(|_| {
            let mut z = vec![0f32; len];
            rng.fill_gaussian(&mut z);
            z
        })
        .collect();
    Calibration {
        inputs,
        what: format!("latents z ~ N(0, 1), seed {seed}"),
    }
}

fn calibration_inputs(
    cfg: &TrainConfig,
    part: Part,
    input_len: usize,
    n: usize,
    seed: u64,
) -> Result<Calibration> {
    if part == Part::Generator {
        return Ok(latent_calibration(input_len, n, seed));
    }
    let splits = cfg
        .load_data()
        .context("loading the run's data set for the calibration images")?;
    let images = &splits.test.images;
    if images.ncols() != input_len {
        bail!(
            "the run's test images have {} pixels, the {:?} takes {} inputs",
            images.ncols(),
            part,
            input_len
        );
    }
    let inputs: Vec<Vec<f32>> = images
        .rows()
        .into_iter()
        .take(n)
        .map(|r| r.to_vec())
        .collect();
    if inputs.is_empty() {
        bail!("calibration set is empty: the run's test split has no images");
    }
    let what = format!("test images of the run's data set (first {})", inputs.len());
    Ok(Calibration { inputs, what })
}

/// int8-vs-f32 output quality, both through the runtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// PSNR of the int8 outputs against the f32 ones, peak = the output range's width.
    pub psnr_db: f64,
    /// Largest absolute difference.
    pub max_error: f64,
    /// The same in int8 output steps.
    pub max_error_steps: f64,
    /// Root mean square difference.
    pub rmse: f64,
    /// The peak used for the PSNR.
    pub peak: f64,
}

/// Runs the f32 and the int8 model file through the runtime on `inputs` (flat, one input after
/// another) and compares the outputs; the PSNR's peak is the width of the output range the
/// f32 file records.
pub fn quality(f32_file: &ModelFile, int8_file: &ModelFile, inputs: &[f32]) -> Result<Quality> {
    let range = f32_file.model()?.output_range();
    let a = files::run_runtime(f32_file, inputs)?;
    let b = files::run_runtime(int8_file, inputs)?;
    let (max_error, _) = check::max_diff(&b, &a);
    let mse = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    let peak = match range {
        OutputRange::ZeroOne => 1.0,
        OutputRange::MinusOneOne => 2.0,
        OutputRange::Unbounded => {
            let (lo, hi) = a
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(f64::from(v)), hi.max(f64::from(v)))
                });
            (hi - lo).max(f64::MIN_POSITIVE)
        }
    };
    let scale = int8_file
        .model()?
        .output_quantization()
        .map_or(1.0, |(s, _)| f64::from(s));
    Ok(Quality {
        psnr_db: 10.0 * (peak * peak / mse.max(f64::MIN_POSITIVE)).log10(),
        max_error,
        max_error_steps: max_error / scale,
        rmse: mse.sqrt(),
        peak,
    })
}

/// `model.rs` with one module of constants per model file, plus the largest arena at the top;
/// `command` is the command that writes it (`export`, `import`).
pub fn model_rs_file(command: &str, parts: &[(String, String)]) -> String {
    let mut s = format!(
        "// Generated by `tinygen {command}`; do not edit.\n\
         #![allow(dead_code)]\n\n",
    );
    let mut largest = 0usize;
    for (file, body) in parts {
        let module = file.trim_end_matches(".tgm").replace(['.', '-'], "_");
        let _ = writeln!(s, "/// Constants of `{file}`.\npub mod {module} {{");
        for line in body
            .lines()
            .filter(|l| !l.starts_with("// Generated") && !l.is_empty())
        {
            let _ = writeln!(s, "    {line}");
            if let Some(v) = line.strip_prefix("pub const ARENA_BYTES: usize = ") {
                largest = largest.max(v.trim_end_matches(';').parse().unwrap_or(0));
            }
        }
        s.push_str("}\n\n");
    }
    let _ = writeln!(
        s,
        "/// The largest arena any of the model files above needs (bytes, any alignment).\n\
         pub const ARENA_BYTES: usize = {largest};"
    );
    s
}

fn qp(p: QParams) -> String {
    format!("s={:e}, zp={}", p.scale, p.zero_point)
}

fn range_of<T: Copy + PartialOrd + std::fmt::Display>(v: &[T]) -> String {
    let mut it = v.iter().copied();
    let Some(first) = it.next() else {
        return "-".into();
    };
    let (lo, hi) = it.fold((first, first), |(lo, hi), x| {
        (if x < lo { x } else { lo }, if x > hi { x } else { hi })
    });
    if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}..{hi}")
    }
}

fn linear_row(i: usize, op: &str, q: &QLinear) -> String {
    let ws: Vec<f64> = q.weight_scale.iter().map(|&s| f64::from(s)).collect();
    let (lo, hi) = ws
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    format!(
        "| {i} | {op}{} | {} | {} | {lo:.3e}..{hi:.3e} | {} | {} |",
        if q.relu { " + Relu" } else { "" },
        qp(q.input),
        qp(q.output),
        range_of(&q.multiplier),
        range_of(&q.shift),
    )
}

fn report(
    opts: &ExportOptions,
    cfg: &TrainConfig,
    name: &str,
    g: &Graph,
    written: &[WrittenFile],
    cal: &Calibration,
    int8: Option<&Int8Export>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Export report: `{name}`\n");
    let _ = writeln!(
        s,
        "Run `{}` ({}, {}x{} images, latent {}), part {:?}, input {}, output range {:?}.\n",
        opts.run.display(),
        cfg.model.kind,
        cfg.model.height,
        cfg.model.width,
        cfg.model.latent,
        g.part,
        g.input,
        g.output_range()
    );
    files_table(&mut s, written);
    let _ = writeln!(
        s,
        "\n{} parameters, {} multiply-accumulates per sample.\n",
        g.parameter_count(),
        g.macs().unwrap_or(0)
    );
    let _ = writeln!(
        s,
        "## Layers\n\n| # | layer | output | parameters | MACs |\n|---|---|---|---|---|"
    );
    if let Ok(shapes) = g.shapes() {
        for (i, (l, io)) in g.layers.iter().zip(shapes.windows(2)).enumerate() {
            let _ = writeln!(
                s,
                "| {i} | {} | {} | {} | {} |",
                l.name(),
                io[1],
                l.parameters(),
                l.macs(io[0], io[1])
            );
        }
    }
    let Some(Int8Export {
        graph: Quantized::Chain(q),
        quality,
    }) = int8
    else {
        let _ = writeln!(s, "\nNo int8 model (pass `--int8`).");
        return s;
    };
    let _ = writeln!(
        s,
        "\n## int8\n\nScales: {}. Calibration: {} {}. Input `z`: {}. Output: {}.\n",
        if q.free_scales {
            "free (`--free-scales`; int8 ONNX runtimes may differ from the device by one step per layer)"
        } else {
            "bit-exact rule (power-of-two activation scales, weight scales with a 7-bit mantissa)"
        },
        cal.inputs.len(),
        cal.what,
        qp(q.input),
        qp(q.output)
    );
    let _ = writeln!(
        s,
        "Requantisation is `round_half_even((acc * multiplier) >> shift)` per output channel; weights \
         are symmetric per output channel (`w = weight_scale[c] * q`).\n"
    );
    let _ = writeln!(
        s,
        "| # | layer | input | output | weight scales | multipliers | shifts |\n|---|---|---|---|---|---|---|"
    );
    let shapes_q = std::iter::once(q.input).chain(q.layers.iter().scan(q.input, |cur, l| {
        *cur = match l {
            QLayer::Activation { output, .. } => *output,
            l => l.linear().map_or(*cur, |ql| ql.output),
        };
        Some(*cur)
    }));
    for ((i, l), input) in q.layers.iter().enumerate().zip(shapes_q) {
        let _ = writeln!(s, "{}", qlayer_row(i, l, input));
    }
    quality_section(&mut s, cal, quality, q.output.scale);
    let part_name = part_arg(opts.part);
    let out_dir = opts.out_dir();
    let _ = writeln!(
        s,
        "\nCommand: `tinygen export {} --part {} --out {} --int8 --calib {} --seed {}{}`",
        opts.run.display(),
        part_name,
        out_dir.display(),
        opts.calib,
        opts.seed,
        if opts.free_scales {
            " --free-scales"
        } else {
            ""
        }
    );
    s
}
