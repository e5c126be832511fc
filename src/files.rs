//! Opening run folders, model files and ONNX files with errors that name the file and say what
//! to do; shared by every command.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tinygen_export::check;
use tinygen_export::tgm::AlignedBytes;
use tinygen_runtime::model::{Dims, Model};
use tinygen_trainer::models::Model as TrainedModel;
use tinygen_trainer::train::{load_run, TrainConfig, CHECKPOINT_FILE, CONFIG_FILE};

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

/// Runs the model of `file` on each of the inputs in `x` (one after another) and returns the
/// outputs concatenated ([`check::run_runtime`], with errors naming the file).
pub fn run_runtime(file: &ModelFile, x: &[f32]) -> Result<Vec<f32>> {
    let model = file.model()?;
    check::run_runtime(&model, x)
        .map_err(|e| anyhow::anyhow!("{}: runtime error: {e}", file.path.display()))
}
