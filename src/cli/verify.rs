//! `tinygen verify`: runs the verification chain on an export folder with fresh random inputs and
//! prints the largest difference of every link.
//!
//! Links and tolerances (DESIGN.md, "Verification chain"):
//! - runtime f32 (`NAME.tgm`) vs tract on `NAME.onnx`: `max |runtime - tract| / max |tract|`
//!   at most [`F32_REL_TOL`]. Both compute in f32 and add the same products in different orders
//!   (and use different tanh/sigmoid approximations, about 2e-7 apart), so they differ by a few
//!   units of f32 roundoff of the output's magnitude; a layout or operator mistake gives errors
//!   of order one.
//! - runtime int8 (`NAME.int8.tgm`) vs tract on `NAME.int8.onnx`: under the default scale rule
//!   every dequantised output must be equal (0 differing values). The dequantised output is
//!   `(q - zp) * s` with a power-of-two `s` in both, exact in f32, so equal floats mean equal
//!   int8 values. With `--free-scales` bit-exactness is not promised (one step per layer, which
//!   can grow through later layers), so the figure is printed but not judged here; the tests
//!   check those models layer by layer.
//! - with `--run RUN`: the trainer's eval-mode forward vs tract on the float ONNX of the
//!   generator, [`F32_REL_TOL`] as above.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use prost::Message;
use tinygen_export::onnx::proto::ModelProto;
use tinygen_runtime::model::{Kind, Precision};
use tinygen_runtime::rng::Rng;
use tinygen_trainer::train::TrainConfig;

use super::files::{self, ModelFile, Tract};

/// Largest allowed `max |a - b| / max |reference|` between two f32 implementations.
pub const F32_REL_TOL: f64 = 1e-5;

/// Options of `tinygen verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks every model pair in DIR: NAME.tgm against NAME.onnx (runtime f32 vs tract-onnx, relative
1e-5) and NAME.int8.tgm against NAME.int8.onnx (runtime int8 vs tract-onnx, bit-exact under the
default scale rule). With --run, also the trainer's forward pass against the float ONNX of the
generator. Exits with status 1 if any link fails.

Example:
  tinygen export runs/vae --int8 && tinygen verify runs/vae/export --run runs/vae")]
pub struct Args {
    /// Export folder (written by `tinygen export`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Random inputs per link.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub n: usize,

    /// Seed of the random inputs (z ~ N(0, 1), the runtime's sampler).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// The run folder the models were exported from: also check the trainer against the ONNX.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
}

/// One line of the table.
struct Row {
    link: String,
    files: String,
    max_diff: f64,
    figure: String,
    tolerance: String,
    /// `None`: reported, not judged.
    pass: Option<bool>,
}

/// Runs `tinygen verify`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.n == 0 {
        bail!("--n 0: verification needs at least one input");
    }
    let dir = &args.dir;
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
    let run = match &args.run {
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
        let inputs = random_inputs(args.seed, args.n, model.latent_len());
        let dims = files::onnx_dims(model.input_shape());
        let want = tract.run_f32(&dims, args.n, &inputs)?;
        let got = files::run_runtime(&file, &inputs)?;
        if got.len() != want.len() {
            bail!(
                "{} gives {} values for {} inputs, {} gives {}",
                tgm.display(),
                got.len(),
                args.n,
                onnx_path.display(),
                want.len()
            );
        }
        let names = format!("{stem}.tgm / {stem}.onnx");
        match model.precision() {
            Precision::F32 => rows.push(relative_row("runtime f32 vs tract", names, &got, &want)),
            Precision::Int8 => {
                let (scale, _) = model.output_quantization().unwrap_or((1.0, 0));
                let free = free_scales(&onnx_path)?;
                rows.push(int8_row(names, &got, &want, scale, free));
            }
        }
        if let (Some((cfg, trained)), Precision::F32, Kind::Generator) =
            (&run, model.precision(), model.kind())
        {
            rows.push(trainer_row(
                cfg,
                trained.clone(),
                stem,
                &inputs,
                &want,
                args.n,
            )?);
        }
    }

    // Quality of each int8 model against its f32 twin on the same fresh inputs (reported, not
    // judged: how much int8 may lose is the user's call).
    let mut quality_lines = Vec::new();
    for stem in stems.iter().filter(|s| !s.ends_with(".int8")) {
        let int8_path = dir.join(format!("{stem}.int8.tgm"));
        if !int8_path.is_file() {
            continue;
        }
        let f32_file = ModelFile::open(&dir.join(format!("{stem}.tgm")))?;
        let int8_file = ModelFile::open(&int8_path)?;
        let inputs = random_inputs(args.seed, args.n, f32_file.model()?.latent_len());
        let q = super::export::quality(&f32_file, &int8_file, &inputs)?;
        quality_lines.push(format!(
            "int8 vs f32 ({stem}.int8.tgm vs {stem}.tgm, runtime, these {} inputs): PSNR {:.2} dB \
             (peak {}), RMS error {:.3e}, max |error| {:.3e} ({:.2} output steps)",
            args.n, q.psnr_db, q.peak, q.rmse, q.max_error, q.max_error_steps
        ));
    }

    println!("{} inputs per link, seed {}", args.n, args.seed);
    println!(
        "{:<28} {:<40} {:>12} {:>24} {:>18}  result",
        "link", "files", "max |diff|", "figure", "tolerance"
    );
    let mut failed = 0;
    for r in &rows {
        let result = match r.pass {
            Some(true) => "ok",
            Some(false) => {
                failed += 1;
                "FAIL"
            }
            None => "reported",
        };
        println!(
            "{:<28} {:<40} {:>12.3e} {:>24} {:>18}  {result}",
            r.link, r.files, r.max_diff, r.figure, r.tolerance
        );
    }
    for line in &quality_lines {
        println!("{line}");
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} of {} links failed their tolerance",
            rows.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "all {} links within tolerance",
        rows.iter().filter(|r| r.pass.is_some()).count()
    );
    Ok(ExitCode::SUCCESS)
}

/// `n` inputs of `len` values from the runtime's `N(0, 1)` sampler.
fn random_inputs(seed: u64, n: usize, len: usize) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut z = vec![0f32; n * len];
    rng.fill_gaussian(&mut z);
    z
}

fn relative_row(link: &str, files: String, got: &[f32], want: &[f32]) -> Row {
    let (d, s) = files::max_diff(got, want);
    let rel = if s > 0.0 { d / s } else { d };
    Row {
        link: link.into(),
        files,
        max_diff: d,
        figure: format!("{rel:.2e} relative"),
        tolerance: format!("{F32_REL_TOL:.0e} relative"),
        pass: Some(rel <= F32_REL_TOL),
    }
}

fn int8_row(files: String, got: &[f32], want: &[f32], scale: f32, free: bool) -> Row {
    let (d, _) = files::max_diff(got, want);
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
    Ok(relative_row(
        "trainer f32 vs tract",
        format!("run / {stem}.onnx"),
        &y,
        tract_out,
    ))
}

/// Whether a QDQ model was written with free scales (from its `doc_string`).
fn free_scales(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let m = ModelProto::decode(&bytes[..])
        .with_context(|| format!("{}: not an ONNX model", path.display()))?;
    let doc = m.graph.map(|g| g.doc_string).unwrap_or_default();
    Ok(doc.contains("free scales") || m.doc_string.contains("free scales"))
}
