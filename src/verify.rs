//! The work of `tinygen verify`: runs the verification chain on an export folder with fresh
//! random inputs and returns the largest difference of every link.
//!
//! Links and tolerances:
//! - runtime f32 (`NAME.tgm`) vs tract on `NAME.onnx` run in float64 (every float tensor of the
//!   graph widened, [`check::float64_model`]): `max |runtime - exact| / max |exact|` at most
//!   [`F32_REL_TOL`]: the runtime's own f32 rounding, judged against the exact values.
//! - runtime f32 vs tract on `NAME.onnx` in f32: `max |runtime - tract| / max |tract|` at most
//!   [`F32_REL_TOL`] plus tract's own distance from the float64 values. Both compute in f32 and
//!   add the same products in different orders (and use different tanh/sigmoid approximations,
//!   about 2e-7 apart), so they differ by a few units of f32 roundoff of the output's
//!   magnitude; in a deep graph (a flow's eight couplings of exp and tanh) that roundoff
//!   compounds, and tract itself can be further than 1e-5 from the exact values, so the link
//!   allows for what tract's own error is measured to be. A layout or operator mistake gives
//!   errors of order one. When tract cannot run a graph in float64, this link is judged at
//!   [`F32_REL_TOL`] alone.
//! - runtime int8 (`NAME.int8.tgm`) vs tract on `NAME.int8.onnx`: under the default scale rule
//!   every dequantised output must be equal (0 differing values). The dequantised output is
//!   `(q - zp) * s` with a power-of-two `s` in both, exact in f32, so equal floats mean equal
//!   int8 values. With `--free-scales` bit-exactness is not promised (one step per layer, which
//!   can grow through later layers), so the figure is reported but not judged here; the tests
//!   check those models layer by layer.
//! - with a run folder: the trainer's eval-mode forward vs tract on the float ONNX of the
//!   generator in float64 (in f32 when float64 is not available), [`F32_REL_TOL`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use prost::Message;
use tinygen_export::check::{self, batch_dims, Tract};
use tinygen_export::onnx::proto::ModelProto;
use tinygen_runtime::model::{Part, Precision};
use tinygen_runtime::rng::Rng;
use tinygen_trainer::train::TrainConfig;

use crate::export::{quality, Quality};
use crate::files::{self, ModelFile};

/// Largest allowed `max |a - b| / max |reference|` between two f32 implementations.
pub const F32_REL_TOL: f64 = 1e-5;

/// What to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Export folder (written by `tinygen export`).
    pub dir: PathBuf,
    /// Random inputs per link.
    pub n: usize,
    /// Seed of the random inputs (z ~ N(0, 1), the runtime's sampler).
    pub seed: u64,
    /// The run folder the models were exported from: also check the trainer against the ONNX.
    pub run: Option<PathBuf>,
}

/// One link of the chain, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is compared ("runtime f32 vs tract").
    pub link: String,
    /// The files compared.
    pub files: String,
    /// `max |a - b|`.
    pub max_diff: f64,
    /// The judged figure ("3.1e-7 relative", "0/1024 differ, 0 steps").
    pub figure: String,
    /// The tolerance the figure is judged by.
    pub tolerance: String,
    /// `None`: reported, not judged.
    pub pass: Option<bool>,
}

/// int8 vs f32 quality of one model pair on the fresh inputs (reported, not judged).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRow {
    /// File stem of the f32 model (`decoder`).
    pub stem: String,
    /// The figures.
    pub quality: Quality,
}

/// The result of [`verify_dir`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Inputs per link.
    pub n: usize,
    /// Seed of the inputs.
    pub seed: u64,
    /// Every link, in file order.
    pub rows: Vec<Row>,
    /// int8 vs f32 for each model with an int8 twin.
    pub quality: Vec<QualityRow>,
}

impl VerifyReport {
    /// Links that failed their tolerance.
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.pass == Some(false)).count()
    }

    /// Links that were judged (passed or failed).
    pub fn judged(&self) -> usize {
        self.rows.iter().filter(|r| r.pass.is_some()).count()
    }
}

/// Checks every model pair in `opts.dir`: `NAME.tgm` against `NAME.onnx` (runtime f32 vs
/// tract-onnx) and `NAME.int8.tgm` against `NAME.int8.onnx` (runtime int8 vs tract-onnx), with
/// `opts.run` also the trainer against the float ONNX of the generator; and the int8 quality of
/// each int8 model against its f32 twin. A failed link is a row, not an error; errors are
/// files that cannot be read or run.
pub fn verify_dir(opts: &VerifyOptions) -> Result<VerifyReport> {
    if opts.n == 0 {
        bail!("--n 0: verification needs at least one input");
    }
    let dir = &opts.dir;
    if !dir.is_dir() {
        bail!(
            "export folder {} does not exist or is not a folder",
            dir.display()
        );
    }
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|f| f.strip_suffix(".tgm").map(str::to_owned))
        .collect();
    stems.sort();
    if stems.is_empty() {
        bail!(
            "{} holds no model file (*.tgm); run `tinygen export` into it first",
            dir.display()
        );
    }
    let run = match &opts.run {
        Some(r) => Some(files::open_run(r)?),
        None => None,
    };

    let mut rows = Vec::new();
    for stem in &stems {
        let tgm = dir.join(format!("{stem}.tgm"));
        let onnx_path = dir.join(format!("{stem}.onnx"));
        let file = ModelFile::open(&tgm)?;
        if !onnx_path.is_file() {
            bail!(
                "{} has no ONNX counterpart {}",
                tgm.display(),
                onnx_path.display()
            );
        }
        let tract = Tract::open(&onnx_path)?;
        let model = file.model()?;
        let inputs = random_inputs(opts.seed, opts.n, model.latent_len());
        // The ONNX's own input dims (an imported model may take `[N, 100, 1, 1]`), else the
        // exporter's convention for the runtime's input shape.
        let dims = std::fs::read(&onnx_path)
            .ok()
            .and_then(|b| check::onnx_input_dims(&b))
            .filter(|d| d.iter().product::<usize>() == model.latent_len())
            .unwrap_or_else(|| files::onnx_dims(model.input_shape()));
        let shape = batch_dims(opts.n, &dims);
        let want = tract.run_f32(&shape, &inputs)?;
        let got = files::run_runtime(&file, &inputs)?;
        if got.len() != want.len() {
            bail!(
                "{} gives {} values for {} inputs, {} gives {}",
                tgm.display(),
                got.len(),
                opts.n,
                onnx_path.display(),
                want.len()
            );
        }
        let names = format!("{stem}.tgm / {stem}.onnx");
        // The exact values, for an f32 model: tract on the same graph in float64.
        let exact = match model.precision() {
            Precision::F32 => float64_reference(&onnx_path, &shape, &inputs),
            Precision::Int8 => None,
        };
        match model.precision() {
            Precision::F32 => match &exact {
                Some(exact) => {
                    let (d, s) = check::max_diff(&want, exact);
                    let tract_err = if s > 0.0 { d / s } else { d };
                    rows.push(relative_row(
                        "runtime f32 vs tract float64",
                        format!("{stem}.tgm / {stem}.onnx in float64"),
                        &got,
                        exact,
                        F32_REL_TOL,
                    ));
                    let mut row = relative_row(
                        "runtime f32 vs tract",
                        names,
                        &got,
                        &want,
                        F32_REL_TOL + tract_err,
                    );
                    row.tolerance =
                        format!("{F32_REL_TOL:.0e} + tract's own {tract_err:.1e} from float64");
                    rows.push(row);
                }
                None => rows.push(relative_row(
                    "runtime f32 vs tract",
                    names,
                    &got,
                    &want,
                    F32_REL_TOL,
                )),
            },
            Precision::Int8 => {
                let (scale, _) = model.output_quantization().unwrap_or((1.0, 0));
                let free = free_scales(&onnx_path)?;
                rows.push(int8_row(names, &got, &want, scale, free));
            }
        }
        if let (Some((cfg, trained)), Precision::F32, Part::Generator) =
            (&run, model.precision(), model.part())
        {
            rows.push(trainer_row(
                cfg,
                trained.clone(),
                stem,
                &inputs,
                &want,
                exact.as_deref(),
                opts.n,
            )?);
        }
    }

    // Quality of each int8 model against its f32 twin on the same fresh inputs (reported, not
    // judged: how much int8 may lose is the user's call).
    let mut quality_rows = Vec::new();
    for stem in stems.iter().filter(|s| !s.ends_with(".int8")) {
        let int8_path = dir.join(format!("{stem}.int8.tgm"));
        if !int8_path.is_file() {
            continue;
        }
        let f32_file = ModelFile::open(&dir.join(format!("{stem}.tgm")))?;
        let int8_file = ModelFile::open(&int8_path)?;
        let inputs = random_inputs(opts.seed, opts.n, f32_file.model()?.latent_len());
        quality_rows.push(QualityRow {
            stem: stem.clone(),
            quality: quality(&f32_file, &int8_file, &inputs)?,
        });
    }

    Ok(VerifyReport {
        n: opts.n,
        seed: opts.seed,
        rows,
        quality: quality_rows,
    })
}

/// `n` inputs of `len` values from the runtime's `N(0, 1)` sampler.
fn random_inputs(seed: u64, n: usize, len: usize) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut z = vec![0f32; n * len];
    rng.fill_gaussian(&mut z);
    z
}

/// The f32 model's outputs on `inputs` from tract running its ONNX in float64
/// ([`check::float64_model`]), or `None` when tract cannot run that graph in float64 (the f32
/// links are then judged against tract in f32 alone).
fn float64_reference(onnx: &Path, shape: &[usize], inputs: &[f32]) -> Option<Vec<f64>> {
    let bytes = std::fs::read(onnx).ok()?;
    let wide = check::float64_model(&bytes).ok()?;
    let name = format!("{} in float64", onnx.display());
    let tract = Tract::load(&name, &wide, &check::Load::default()).ok()?;
    let x: Vec<f64> = inputs.iter().map(|&v| f64::from(v)).collect();
    tract.run_f64(shape, &x).ok()
}

fn relative_row<W: Copy + Into<f64>>(
    link: &str,
    files: String,
    got: &[f32],
    want: &[W],
    tol: f64,
) -> Row {
    let (d, s) = check::max_diff(got, want);
    let rel = if s > 0.0 { d / s } else { d };
    Row {
        link: link.into(),
        files,
        max_diff: d,
        figure: format!("{rel:.2e} relative"),
        tolerance: format!("{tol:.0e} relative"),
        pass: Some(rel <= tol),
    }
}

fn int8_row(files: String, got: &[f32], want: &[f32], scale: f32, free: bool) -> Row {
    let (d, _) = check::max_diff(got, want);
    // Equal dequantised floats are equal int8 values; `!=` also counts NaN.
    let differing = got.iter().zip(want).filter(|(a, b)| a != b).count();
    Row {
        link: format!("runtime int8 vs tract{}", if free { " (free)" } else { "" }),
        files,
        max_diff: d,
        figure: format!(
            "{differing}/{} differ, {:.0} steps",
            got.len(),
            d / f64::from(scale)
        ),
        tolerance: if free {
            "not judged".into()
        } else {
            "bit-exact".into()
        },
        pass: if free { None } else { Some(differing == 0) },
    }
}

fn trainer_row(
    cfg: &TrainConfig,
    mut trained: tinygen_trainer::models::Model,
    stem: &str,
    inputs: &[f32],
    tract_out: &[f32],
    exact: Option<&[f64]>,
    n: usize,
) -> Result<Row> {
    let latent = trained.latent();
    if inputs.len() != n * latent {
        bail!(
            "{stem}.onnx takes {} inputs, the run's {} has latent size {latent}: it was not exported from this run",
            inputs.len() / n,
            cfg.model.kind
        );
    }
    let z = Array2::from_shape_vec((n, latent), inputs.to_vec()).context("latent batch")?;
    let y = trained.generate(z.view());
    let y: Vec<f32> = y.iter().copied().collect();
    if y.len() != tract_out.len() {
        bail!(
            "the run's generator gives {} values, {stem}.onnx {}",
            y.len(),
            tract_out.len()
        );
    }
    Ok(match exact {
        Some(exact) => relative_row(
            "trainer f32 vs tract float64",
            format!("run / {stem}.onnx in float64"),
            &y,
            exact,
            F32_REL_TOL,
        ),
        None => relative_row(
            "trainer f32 vs tract",
            format!("run / {stem}.onnx"),
            &y,
            tract_out,
            F32_REL_TOL,
        ),
    })
}

/// Whether a QDQ model was written with free scales (from its `doc_string`).
fn free_scales(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let m = ModelProto::decode(&bytes[..])
        .with_context(|| format!("{}: not an ONNX model", path.display()))?;
    let doc = m.graph.map(|g| g.doc_string).unwrap_or_default();
    Ok(doc.contains("free scales") || m.doc_string.contains("free scales"))
}
