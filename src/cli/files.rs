//! Shared by `export`, `verify` and `sample`: opening run folders, model files and ONNX files
//! with errors that name the file, and running ONNX models in tract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tinygen_export::tgm::AlignedBytes;
use tinygen_runtime::model::{Dims, Model};
use tinygen_trainer::models::Model as TrainedModel;
use tinygen_trainer::train::{load_run, TrainConfig, CHECKPOINT_FILE, CONFIG_FILE};
use tract_onnx::prelude::*;

/// Loads the trained model of a run folder, with a message naming the folder for a missing
/// folder, a folder that is not a run, or a checkpoint that does not match `config.json`.
pub fn open_run(dir: &Path) -> Result<(TrainConfig, TrainedModel)> {
    if !dir.exists() {
        bail!("run folder {} does not exist", dir.display());
    }
    if !dir.is_dir() {
        bail!(
            "{} is not a folder; expected a run folder written by `tinygen train`",
            dir.display()
        );
    }
    for file in [CONFIG_FILE, CHECKPOINT_FILE] {
        if !dir.join(file).is_file() {
            bail!(
                "{} is not a run folder: it has no {file} (train one with `tinygen train ... --out {}`)",
                dir.display(),
                dir.display()
            );
        }
    }
    load_run(dir).with_context(|| format!("loading the run in {}", dir.display()))
}

/// A model file read into aligned memory; [`ModelFile::model`] parses it.
pub struct ModelFile {
    /// Where it was read from.
    pub path: PathBuf,
    bytes: AlignedBytes,
}

impl ModelFile {
    /// Reads and validates `path` (the runtime's parser, so every check the device makes).
    pub fn open(path: &Path) -> Result<ModelFile> {
        let raw = std::fs::read(path)
            .with_context(|| format!("reading model file {}", path.display()))?;
        let file = ModelFile {
            path: path.to_path_buf(),
            bytes: AlignedBytes::new(&raw),
        };
        file.model()?;
        Ok(file)
    }

    /// The parsed model (already validated by [`ModelFile::open`]).
    pub fn model(&self) -> Result<Model<'_>> {
        Model::parse(&self.bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a valid model file: {e}", self.path.display()))
    }
}

/// Dimensions of one sample of a tensor in the ONNX models this project writes: `[F]` for a flat
/// shape, `[C, H, W]` otherwise.
pub fn onnx_dims(d: Dims) -> Vec<usize> {
    if d.h == 1 && d.w == 1 {
        vec![d.c]
    } else {
        vec![d.c, d.h, d.w]
    }
}

/// An ONNX model loaded and optimised by tract.
pub struct Tract {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
}

impl Tract {
    /// Loads `path` into tract (optimised plan).
    pub fn open(path: &Path) -> Result<Tract> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading ONNX file {}", path.display()))?;
        let plan = (|| -> TractResult<_> {
            tract_onnx::onnx()
                .model_for_read(&mut &bytes[..])?
                .into_optimized()?
                .into_runnable()
        })()
        .map_err(|e| anyhow::anyhow!("{}: tract-onnx cannot load it: {e:#}", path.display()))?;
        Ok(Tract {
            path: path.to_path_buf(),
            plan,
        })
    }

    /// Runs the model on `n` samples `x` (row-major, `n * prod(dims)` values) of per-sample shape
    /// `dims`; returns the first output flattened.
    pub fn run_f32(&self, dims: &[usize], n: usize, x: &[f32]) -> Result<Vec<f32>> {
        let shape: Vec<usize> = std::iter::once(n).chain(dims.iter().copied()).collect();
        let out = (|| -> TractResult<Vec<f32>> {
            let input = Tensor::from_shape(&shape, x)?;
            let out = self.plan.run(tvec!(input.into_tvalue()))?;
            Ok(out[0].try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        })()
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: running in tract-onnx failed: {e:#}",
                self.path.display()
            )
        })?;
        Ok(out)
    }
}

/// Runs `model` on each of the `n` inputs in `x` and returns the outputs concatenated.
pub fn run_runtime(file: &ModelFile, x: &[f32]) -> Result<Vec<f32>> {
    let model = file.model()?;
    let (k, m) = (model.latent_len(), model.output_len());
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; x.len() / k.max(1) * m];
    for (z, y) in x.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        model
            .run(z, &mut arena, y)
            .map_err(|e| anyhow::anyhow!("{}: runtime error: {e}", file.path.display()))?;
    }
    Ok(out)
}

/// `max |a - b|` and `max |b|` over two equally long slices.
pub fn max_diff(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0f64, 0.0f64), |(d, s), (&x, &y)| {
        let diff = (f64::from(x) - f64::from(y)).abs();
        // NaN anywhere must fail a comparison, never pass it.
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        (d.max(diff), s.max(f64::from(y).abs()))
    })
}
