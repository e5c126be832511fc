//! The work of `tinygen import`: turns a generator or decoder trained in another framework (an
//! ONNX file) into the runtime's model file, then checks the result against tract-onnx running
//! the original ONNX before it returns.
//!
//! The output folder holds `NAME.tgm` (f32), `NAME.onnx` (a copy of the original, so `tinygen
//! verify DIR` and `sample` treat the folder like an export), `model.rs` and
//! `import-report.md`; `NAME` is the ONNX file's stem.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tinygen_export::check::{batch_dims, float64_model, rel_err, Load, Tract};
use tinygen_export::graph::Part;
use tinygen_export::import::{import_onnx, ImportOptions, Imported};
use tinygen_export::tgm;
use tinygen_runtime::model::OutputRange;
use tinygen_runtime::rng::Rng;

use crate::export::{
    graph_int8_section, latent_calibration, model_rs_file, write_int8_graph, Calibration,
    Int8Export, Quantized, WrittenFile,
};
use crate::files::{self, ModelFile};

/// Largest relative difference allowed between the runtime and tract on the original ONNX (both
/// add the same products in different orders; see `BENCHMARKS.md`).
pub const REL_TOL: f64 = 1e-5;

/// What to import, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRunOptions {
    /// The ONNX file.
    pub onnx: PathBuf,
    /// Output folder (created if needed).
    pub out: PathBuf,
    /// What the model is.
    pub part: Part,
    /// The output range when the graph does not end in Tanh or Sigmoid.
    pub output_range: Option<OutputRange>,
    /// Inputs the verification runs (latents `N(0, 1)` from the runtime's sampler).
    pub n: usize,
    /// Seed of those inputs.
    pub seed: u64,
    /// Also write the int8 model (`NAME.int8.onnx`, `NAME.int8.tgm`), calibrated on this many
    /// latents (seed `seed + 1`, so the verification's latents are fresh).
    pub int8: Option<usize>,
}

/// The int8 half of an import and its check.
#[derive(Debug, Clone)]
pub struct ImportInt8 {
    /// The int8 model and its quality against the f32 one on the calibration latents.
    pub export: Int8Export,
    /// The calibration set.
    pub calibration: Calibration,
    /// Output values compared, runtime int8 vs tract on the QDQ graph, and how many differed.
    pub compared: usize,
    /// Of those, how many differ (must be 0).
    pub differing: usize,
}

/// What `import` did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// File stem of the outputs.
    pub name: String,
    /// The output folder.
    pub out: PathBuf,
    /// The imported graph and its facts.
    pub imported: Imported,
    /// Every file written, in order.
    pub files: Vec<WrittenFile>,
    /// Runtime f32 vs tract on the original ONNX (in f32 and float64), over the inputs.
    pub check: F32Check,
    /// Inputs compared.
    pub n: usize,
    /// The int8 model, with `--int8`.
    pub int8: Option<ImportInt8>,
}

/// Imports `opts.onnx` into `opts.out` and verifies the model file against tract-onnx on the
/// original file; fails (naming the file and the node, or the figure) if either step does.
pub fn import_file(opts: &ImportRunOptions) -> Result<ImportSummary> {
    if opts.n == 0 {
        bail!("--n 0: the verification needs at least one input");
    }
    let bytes = std::fs::read(&opts.onnx)
        .with_context(|| format!("reading ONNX file {}", opts.onnx.display()))?;
    let name = opts
        .onnx
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_suffix(".int8").unwrap_or(s).to_owned())
        .with_context(|| format!("{}: the file name has no usable stem", opts.onnx.display()))?;
    let imported = import_onnx(
        &bytes,
        &ImportOptions {
            part: opts.part,
            output_range: opts.output_range,
        },
    )
    .with_context(|| format!("importing {}", opts.onnx.display()))?;

    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    let onnx_copy = out.join(format!("{name}.onnx"));
    if std::fs::canonicalize(&opts.onnx).ok() != std::fs::canonicalize(&onnx_copy).ok() {
        std::fs::write(&onnx_copy, &bytes)
            .with_context(|| format!("writing {}", onnx_copy.display()))?;
    }
    files.push(WrittenFile {
        name: format!("{name}.onnx"),
        bytes: bytes.len(),
        arena_bytes: None,
    });
    let tgm_bytes = imported
        .write_f32()
        .with_context(|| format!("writing {name}.tgm from {}", opts.onnx.display()))?;
    let tgm_path = out.join(format!("{name}.tgm"));
    std::fs::write(&tgm_path, &tgm_bytes)
        .with_context(|| format!("writing {}", tgm_path.display()))?;
    let file = ModelFile::open(&tgm_path)?;
    let model = file.model()?;
    files.push(WrittenFile {
        name: format!("{name}.tgm"),
        bytes: tgm_bytes.len(),
        arena_bytes: Some(model.arena_bytes()),
    });
    let mut rs = vec![(
        format!("{name}.tgm"),
        tgm::model_rs(&model, &format!("{name}.tgm")),
    )];

    let check = verify(&opts.onnx, &bytes, &imported, &file, opts)?;
    if !check.passes() {
        bail!(
            "{}: the runtime differs from tract-onnx on the original model: {} (relative, over \
             {} inputs); the model file is in {} for inspection",
            opts.onnx.display(),
            check.describe(),
            opts.n,
            tgm_path.display()
        );
    }
    let int8 = match opts.int8 {
        Some(calib) => {
            let (done, rs_int8) = import_int8(opts, &name, &imported, &file, calib, &mut files)?;
            rs.push(rs_int8);
            Some(done)
        }
        None => None,
    };
    let rs = model_rs_file("import", &rs);
    write(&mut files, out, "model.rs", rs.as_bytes())?;
    let report = report(opts, &name, &imported, &files, &check, int8.as_ref());
    write(&mut files, out, "import-report.md", report.as_bytes())?;
    Ok(ImportSummary {
        name,
        out: out.clone(),
        imported,
        files,
        check,
        n: opts.n,
        int8,
    })
}

/// Quantises the imported graph on `calib` latents, writes `NAME.int8.onnx` and
/// `NAME.int8.tgm` (returning its `model.rs` block), and checks the int8 model file against tract-onnx on the QDQ graph over
/// `opts.n` fresh latents: every output must be equal, or the import fails.
fn import_int8(
    opts: &ImportRunOptions,
    name: &str,
    imported: &Imported,
    f32_file: &ModelFile,
    calib: usize,
    files: &mut Vec<WrittenFile>,
) -> Result<(ImportInt8, (String, String))> {
    if calib == 0 {
        bail!("--calib 0: int8 calibration needs at least one latent");
    }
    let calibration = latent_calibration(imported.latent, calib, opts.seed.wrapping_add(1));
    let (export, rs) = write_int8_graph(
        &imported.dag,
        imported.output_range,
        &calibration,
        &opts.out,
        name,
        f32_file,
        files,
    )
    .with_context(|| format!("the int8 model of {}", opts.onnx.display()))?;
    let qdq_path = opts.out.join(format!("{name}.int8.onnx"));
    let tract = Tract::open(&qdq_path)?;
    let file = ModelFile::open(&opts.out.join(format!("{name}.int8.tgm")))?;
    let model = file.model()?;
    let mut rng = Rng::seed_from_u64(opts.seed);
    let mut z = vec![0f32; opts.n * imported.latent];
    rng.fill_gaussian(&mut z);
    let dims = batch_dims(opts.n, &files::onnx_dims(model.input_shape()));
    let want = tract
        .run_f32(&dims, &z)
        .with_context(|| format!("running {} in tract-onnx", qdq_path.display()))?;
    let got = files::run_runtime(&file, &z)?;
    let differing =
        got.iter().zip(&want).filter(|(a, b)| a != b).count() + got.len().abs_diff(want.len());
    if differing != 0 {
        bail!(
            "{}: the int8 model file differs from tract-onnx on {} in {differing} of {} outputs \
             (they must be equal); both are in {} for inspection",
            opts.onnx.display(),
            qdq_path.display(),
            got.len(),
            opts.out.display()
        );
    }
    Ok((
        ImportInt8 {
            export,
            calibration,
            compared: got.len(),
            differing,
        },
        rs,
    ))
}

fn write(files: &mut Vec<WrittenFile>, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    files.push(WrittenFile {
        name: name.to_owned(),
        bytes: bytes.len(),
        arena_bytes: None,
    });
    Ok(())
}

/// The largest relative difference between the runtime on the model file and tract on the
/// original ONNX, over `opts.n` inputs (a latent `N(0, 1)`, and a one-hot condition cycling
/// through its classes when the model has one), one sample at a time.
fn verify(
    path: &Path,
    bytes: &[u8],
    imported: &Imported,
    file: &ModelFile,
    opts: &ImportRunOptions,
) -> Result<F32Check> {
    let name = path.display().to_string();
    let tract = Tract::load(&name, bytes, &Load::default())
        .with_context(|| format!("loading {} in tract-onnx", path.display()))?;
    let model = file.model()?;
    let mut rng = Rng::seed_from_u64(opts.seed);
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut got = vec![0f32; model.output_len()];
    let dims: Vec<Vec<usize>> = imported
        .input_dims
        .iter()
        .map(|d| std::iter::once(1).chain(d.iter().copied()).collect())
        .collect();
    // The exact values: tract on the same graph in float64, when it can run it (one input).
    let exact = match imported.condition {
        None => float64_model(bytes).ok().and_then(|wide| {
            Tract::load(&format!("{name} in float64"), &wide, &Load::default()).ok()
        }),
        Some(_) => None,
    };
    let mut check = F32Check::default();
    for i in 0..opts.n {
        let mut z = vec![0f32; imported.latent];
        rng.fill_gaussian(&mut z);
        let mut x = vec![z];
        if let Some(c) = imported.condition {
            let mut one_hot = vec![0f32; c];
            one_hot[i % c] = 1.0;
            x.push(one_hot);
        }
        match x.as_slice() {
            [z] => model.run(z, &mut arena, &mut got),
            [z, c] => model.run_conditional(z, c, &mut arena, &mut got),
            _ => unreachable!("a latent and at most one condition"),
        }
        .map_err(|e| anyhow::anyhow!("{}: running the model file: {e}", file.path.display()))?;
        let inputs: Vec<(&[usize], &[f32])> = dims
            .iter()
            .zip(&x)
            .map(|(d, v)| (d.as_slice(), v.as_slice()))
            .collect();
        let want = tract
            .run_f32_inputs(&inputs)
            .with_context(|| format!("running {} in tract-onnx", path.display()))?;
        check.vs_tract = check.vs_tract.max(rel_err(&got, &want)?);
        if let Some(t) = &exact {
            let z: Vec<f64> = x[0].iter().map(|&v| f64::from(v)).collect();
            let e = t
                .run_f64(&dims[0], &z)
                .with_context(|| format!("running {} in float64 in tract-onnx", path.display()))?;
            let (vs, tr) = (rel_err(&got, &e)?, rel_err(&want, &e)?);
            let (a, b) = check.exact.unwrap_or((0.0, 0.0));
            check.exact = Some((a.max(vs), b.max(tr)));
        }
    }
    Ok(check)
}

/// The f32 model file against tract on the original ONNX: in f32, and in float64 (the exact
/// values) when tract can run the graph in float64. As in `tinygen verify`, the runtime must be
/// within [`REL_TOL`] of the exact values and within [`REL_TOL`] plus tract's own distance
/// from them of tract in f32; without float64, within [`REL_TOL`] of tract in f32.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct F32Check {
    /// Largest relative difference, runtime vs tract in f32.
    pub vs_tract: f64,
    /// Largest relative differences from tract in float64: the runtime's, and tract f32's.
    pub exact: Option<(f64, f64)>,
}

impl F32Check {
    /// Whether the model file passes.
    pub fn passes(&self) -> bool {
        match self.exact {
            Some((runtime, tract)) => runtime <= REL_TOL && self.vs_tract <= REL_TOL + tract,
            None => self.vs_tract <= REL_TOL,
        }
    }

    /// The figures in words.
    pub fn describe(&self) -> String {
        match self.exact {
            Some((runtime, tract)) => format!(
                "{runtime:.3e} from the float64 values (allowed {REL_TOL:e}), {:.3e} from \
                 tract in f32 (allowed {REL_TOL:e} + tract's own {tract:.1e})",
                self.vs_tract
            ),
            None => format!(
                "{:.3e} from tract in f32 (allowed {REL_TOL:e})",
                self.vs_tract
            ),
        }
    }
}

fn report(
    opts: &ImportRunOptions,
    name: &str,
    imp: &Imported,
    files: &[WrittenFile],
    check: &F32Check,
    int8: Option<&ImportInt8>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Import report: `{name}`\n");
    let _ = writeln!(
        s,
        "Source `{}`: {:?}, inputs {}, output `{}` {} (range {:?}), {} nodes, {} parameters, \
         {} multiply-accumulates per sample.\n",
        opts.onnx.display(),
        imp.dag.part,
        imp.input_names
            .iter()
            .zip(&imp.dag.inputs)
            .map(|(n, s)| format!("`{n}` {s}"))
            .collect::<Vec<_>>()
            .join(", "),
        imp.output_name,
        imp.output_shape,
        imp.output_range,
        imp.dag.nodes.len(),
        imp.dag.parameter_count(),
        imp.dag.macs().unwrap_or(0)
    );
    let _ = writeln!(
        s,
        "Verified: runtime f32 (`{name}.tgm`) against tract-onnx on the original file, {} inputs \
         (seed {}): {}.\n",
        opts.n,
        opts.seed,
        check.describe()
    );
    if let Some(i) = int8 {
        let _ = writeln!(
            s,
            "Verified: runtime int8 (`{name}.int8.tgm`) against tract-onnx on the QDQ graph \
             (`{name}.int8.onnx`), the same {} inputs: {} of {} output values differ (must be 0).\n",
            opts.n, i.differing, i.compared
        );
    }
    let _ = writeln!(
        s,
        "## Files\n\n| file | bytes | arena bytes |\n|---|---|---|"
    );
    for f in files {
        let arena = f
            .arena_bytes
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(s, "| `{}` | {} | {arena} |", f.name, f.bytes);
    }
    let _ = writeln!(s, "| `import-report.md` | this file | - |");
    let _ = writeln!(
        s,
        "\n## Nodes\n\n| # | op | reads | parameters |\n|---|---|---|---|"
    );
    let n_in = imp.dag.inputs.len();
    for (k, node) in imp.dag.nodes.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            n_in + k,
            node.op.name(),
            node.input,
            node.op.parameters()
        );
    }
    if let Some(ImportInt8 {
        export: Int8Export {
            graph: Quantized::Graph(q),
            quality,
        },
        calibration,
        ..
    }) = int8
    {
        graph_int8_section(&mut s, q, calibration, quality);
    }
    s
}
