//! The training loop: epochs of seeded mini-batches, per-epoch test metrics, sample grids,
//! atomic checkpoints, resume, interruption and a guard against non-finite losses.
//!
//! A run lives in one folder:
//! - `config.json`: the [`TrainConfig`] (everything needed to rebuild the model),
//! - `checkpoint.safetensors`: the latest checkpoint (weights, BatchNorm statistics, optimiser
//!   state, EMA weights; metadata: kind, epoch, step, configuration),
//! - `metrics.csv` and `metrics.jsonl`: one row per epoch, train and test,
//! - `samples_epoch_NNN.png` and `samples.png`: images from fixed latents after every epoch;
//!   for a flow also `samples_temperature_epoch_NNN.png` and `samples_temperature.png`, the same
//!   latents at its sampling temperature,
//! - `reconstructions_epoch_NNN.png` and `reconstructions.png` (VAEs): test images and their
//!   reconstructions side by side.
//!
//! Determinism: the model's initial weights come from `seed`; each step draws its noise from a
//! generator seeded by `(seed, global step)`, and the batch order depends only on
//! `(seed, epoch)`. So a run resumed from any checkpoint (even one written mid-epoch on an
//! interruption) continues exactly as the uninterrupted run would, with the same thread count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{s, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointError};
use crate::data::{self, Batcher, DataError, Splits};
use crate::image::{self, GridOptions, ImageError};
use crate::metrics::{MetricsError, MetricsLog};
use crate::models::{normal, Losses, Model, ModelConfig, ModelError, ModelKind, StepInfo};

/// The configuration file in a run folder.
pub const CONFIG_FILE: &str = "config.json";
/// The latest checkpoint in a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Images in each sample grid.
pub const SAMPLE_COUNT: usize = 64;
/// Test images shown in each reconstruction grid.
pub const RECON_COUNT: usize = 32;

/// Metadata key of the partial epoch sums in a mid-epoch checkpoint.
const PARTIAL_KEY: &str = "tinygen.partial_epoch";

/// Everything a run is made of; saved as `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model's architecture and losses.
    pub model: ModelConfig,
    /// `--data` as given: an IDX folder, a digits CSV file, or a built-in data set's name
    /// (`builtin:mnist`, `builtin:digits`); `None` for the default, the built-in MNIST-10k (see
    /// [`TrainConfig::load_data`] for runs written when the default was the 8x8 digits).
    pub data: Option<PathBuf>,
    /// Total epochs.
    pub epochs: u64,
    /// Seed of weights, batch order and noise.
    pub seed: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Use only the first N training images.
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    pub limit_test: Option<usize>,
}

impl TrainConfig {
    /// Loads the data this configuration names ([`data::load`]), applies the limits and the
    /// model's pixel range. A configuration without `data` whose model takes 8x8 images was
    /// written when the built-in 8x8 digits were the default, and still loads them (the default
    /// now, MNIST-10k, is 28x28).
    pub fn load_data(&self) -> Result<Splits, DataError> {
        let splits = match self.data.as_deref() {
            None if (self.model.height, self.model.width) == (8, 8) => data::builtin_digits()?,
            given => data::load(given)?,
        };
        let splits = splits.take(
            self.limit_train.unwrap_or(usize::MAX),
            self.limit_test.unwrap_or(usize::MAX),
        );
        Ok(splits.with_range(self.model.kind.pixel_range()))
    }
}

/// Everything that can stop a run with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// Loading the data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building or restoring the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Reading or writing the checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing the metrics failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Writing a PNG failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid.
    #[error("{path}: {source}")]
    ConfigJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A loss became NaN or infinite.
    #[error(
        "loss {loss} became {value} at epoch {epoch}, step {step}; training stopped before the weights \
         changed. Try a lower learning rate (--lr); the last good checkpoint is in {dir}"
    )]
    NonFinite {
        /// Which loss.
        loss: &'static str,
        /// Its value.
        value: f64,
        /// Epoch (from 1).
        epoch: u64,
        /// Step within the epoch (from 1).
        step: usize,
        /// The run folder.
        dir: PathBuf,
    },
    /// `--resume` on a folder without a run.
    #[error("cannot resume: {path} does not exist; train without --resume first")]
    NothingToResume {
        /// The missing file.
        path: PathBuf,
    },
    /// `--resume` with another model than the run folder holds.
    #[error(
        "cannot resume {dir} as {requested}: it holds a {found} run; use --out for a new folder"
    )]
    WrongModel {
        /// The run folder.
        dir: PathBuf,
        /// The model on the command line.
        requested: ModelKind,
        /// The model in the folder.
        found: ModelKind,
    },
    /// A new run into a folder that already holds one.
    #[error("{dir} already holds a run ({CONFIG_FILE}); pass --resume to continue it, or choose another --out")]
    RunExists {
        /// The run folder.
        dir: PathBuf,
    },
    /// The training split cannot fill one batch.
    #[error(
        "the training set has {images} images, fewer than one batch of {batch}; lower --batch-size"
    )]
    TooFewImages {
        /// Images.
        images: usize,
        /// Batch size.
        batch: usize,
    },
}

/// What a run tells its observer (progress bar, log lines, tests).
pub trait Observer {
    /// Before the first step.
    fn start(&mut self, _info: &RunInfo) {}
    /// After each step: epoch (from 1), step within the epoch (from 1), and the step's losses.
    fn step(&mut self, _epoch: u64, _step: usize, _losses: &Losses) {}
    /// After each epoch.
    fn epoch(&mut self, _report: &EpochReport) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;
impl Observer for Silent {}

/// Sizes of a run, for progress displays.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Total epochs.
    pub epochs: u64,
    /// Epochs already completed (non-zero when resuming).
    pub start_epoch: u64,
    /// Steps already done in the epoch being resumed.
    pub start_step: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Training images.
    pub train_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Trainable parameters (all parts).
    pub parameters: usize,
}

/// One epoch's results.
#[derive(Debug, Clone)]
pub struct EpochReport {
    /// Epoch (from 1).
    pub epoch: u64,
    /// Mean training values over the epoch's images.
    pub train: Losses,
    /// Test values.
    pub test: Losses,
    /// Wall-clock seconds of the epoch's training steps (evaluation and files excluded).
    pub seconds: f64,
}

/// How a run ended without error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All epochs done.
    Finished {
        /// Epochs completed.
        epochs: u64,
    },
    /// Stopped by the stop flag; a checkpoint was written.
    Interrupted {
        /// Epoch (from 1) in which it stopped.
        epoch: u64,
        /// Steps done in that epoch.
        step: usize,
        /// The checkpoint.
        checkpoint: PathBuf,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TrainError + 'a {
    move |source| TrainError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            TrainError::NothingToResume { path: path.clone() }
        } else {
            TrainError::Io {
                action: "reading",
                path: path.clone(),
                source,
            }
        }
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::ConfigJson { path, source })
}

/// Loads a trained model from a run folder (`config.json` and the latest checkpoint), without
/// optimiser state, for export, sampling and verification.
pub fn load_run(dir: &Path) -> Result<(TrainConfig, Model), TrainError> {
    let cfg = read_config(dir)?;
    let mut ck = checkpoint::load_kind(&dir.join(CHECKPOINT_FILE), cfg.model.kind.name())?;
    let mut model = Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed))?;
    model.load_checkpoint(&mut ck, false)?;
    ck.finish()?;
    Ok((cfg, model))
}

/// A `SplitMix64` step: spreads `(seed, n)` over the seed space.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stream identifiers for the run's random numbers.
const STREAM_STEP: u64 = 0x5354_4550;
const STREAM_EVAL: u64 = 0x4556_414C;
const STREAM_SAMPLES: u64 = 0x5341_4D50;

/// The fixed latents of the sample grids, `(SAMPLE_COUNT, latent)`, from `seed`.
pub fn sample_latents(seed: u64, latent: usize) -> Array2<f32> {
    normal(
        &mut Xoshiro256PlusPlus::seed_from_u64(mix(seed ^ STREAM_SAMPLES, 0)),
        SAMPLE_COUNT,
        latent,
    )
}

/// Partial sums of an interrupted epoch, stored as f64 bit patterns so they round-trip exactly.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Partial {
    images: u64,
    sums: Vec<u64>,
}

/// A run: its folder, configuration, model and position.
pub struct Run {
    dir: PathBuf,
    cfg: TrainConfig,
    model: Model,
    /// Epochs completed.
    epoch: u64,
    /// Steps completed in all epochs.
    step: u64,
    /// Sums of the current epoch's training values and images so far (mid-epoch resume).
    partial: Option<Partial>,
}

impl Run {
    /// A fresh run in `dir` (created if needed; it must not hold a run already).
    pub fn create(dir: &Path, cfg: TrainConfig) -> Result<Run, TrainError> {
        if dir.join(CONFIG_FILE).exists() {
            return Err(TrainError::RunExists {
                dir: dir.to_path_buf(),
            });
        }
        let model = Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed))?;
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let path = dir.join(CONFIG_FILE);
        let json = serde_json::to_string_pretty(&cfg).map_err(|source| TrainError::ConfigJson {
            path: path.clone(),
            source,
        })?;
        checkpoint::write_atomic(&path, json.as_bytes()).map_err(io("writing", &path))?;
        Ok(Run {
            dir: dir.to_path_buf(),
            cfg,
            model,
            epoch: 0,
            step: 0,
            partial: None,
        })
    }

    /// Resumes the run in `dir` from its latest checkpoint, optimiser state included. `kind`, if
    /// given, must match the run's model; `epochs`, if given, replaces the total.
    pub fn resume(
        dir: &Path,
        kind: Option<ModelKind>,
        epochs: Option<u64>,
    ) -> Result<Run, TrainError> {
        let mut cfg = read_config(dir)?;
        if let Some(k) = kind.filter(|&k| k != cfg.model.kind) {
            return Err(TrainError::WrongModel {
                dir: dir.to_path_buf(),
                requested: k,
                found: cfg.model.kind,
            });
        }
        let ck_path = dir.join(CHECKPOINT_FILE);
        if !ck_path.exists() {
            return Err(TrainError::NothingToResume { path: ck_path });
        }
        let mut ck = checkpoint::load_kind(&ck_path, cfg.model.kind.name())?;
        let mut model = Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed))?;
        model.load_checkpoint(&mut ck, true)?;
        let (epoch, step) = (ck.epoch()?, ck.step()?);
        let partial = match ck.metadata.get(PARTIAL_KEY) {
            Some(text) => {
                Some(
                    serde_json::from_str(text).map_err(|source| TrainError::ConfigJson {
                        path: ck_path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        ck.finish()?;
        if let Some(e) = epochs {
            if e != cfg.epochs {
                cfg.epochs = e;
                let path = dir.join(CONFIG_FILE);
                let json = serde_json::to_string_pretty(&cfg).map_err(|source| {
                    TrainError::ConfigJson {
                        path: path.clone(),
                        source,
                    }
                })?;
                checkpoint::write_atomic(&path, json.as_bytes()).map_err(io("writing", &path))?;
            }
        }
        Ok(Run {
            dir: dir.to_path_buf(),
            cfg,
            model,
            epoch,
            step,
            partial,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably (e.g. for sampling after training).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> u64 {
        self.epoch
    }

    fn save_checkpoint(&self, partial: Option<&Partial>) -> Result<PathBuf, TrainError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let (tensors, steps) = self.model.checkpoint_tensors();
        let mut meta =
            checkpoint::metadata(self.cfg.model.kind.name(), self.epoch, self.step, &self.cfg)?;
        meta.extend(steps.into_iter().map(|(k, v)| (k, v.to_string())));
        if let Some(p) = partial {
            let json = serde_json::to_string(p).map_err(|source| TrainError::ConfigJson {
                path: path.clone(),
                source,
            })?;
            meta.insert(PARTIAL_KEY.to_string(), json);
        }
        let refs: Vec<(String, Vec<usize>, &[f32])> = tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone(), t.data.as_slice()))
            .collect();
        checkpoint::save(&path, &refs, &meta)?;
        Ok(path)
    }

    fn write_images(
        &mut self,
        epoch: u64,
        z: &Array2<f32>,
        test: &data::Dataset,
    ) -> Result<(), TrainError> {
        let (h, w) = (self.cfg.model.height, self.cfg.model.width);
        let range = self.model.output_range();
        let opts = GridOptions::for_images(h, w, 8, range);
        let samples = self.model.generate(z.view());
        let grid = image::grid(samples.view(), h, w, &opts)?;
        image::write_png(
            &self.dir.join(format!("samples_epoch_{epoch:03}.png")),
            &grid,
        )?;
        image::write_png(&self.dir.join("samples.png"), &grid)?;
        if let Some(cool) = self.model.generate_at_temperature(z.view()) {
            let grid = image::grid(cool.view(), h, w, &opts)?;
            image::write_png(
                &self
                    .dir
                    .join(format!("samples_temperature_epoch_{epoch:03}.png")),
                &grid,
            )?;
            image::write_png(&self.dir.join("samples_temperature.png"), &grid)?;
        }
        let n = RECON_COUNT.min(test.len());
        if n > 0 {
            let originals = test.images.slice(s![..n, ..]);
            if let Some(rec) = self.model.reconstruct(originals) {
                let opts = GridOptions::for_images(h, w, 4, range);
                let img = image::comparison(originals, rec.view(), h, w, &opts)?;
                image::write_png(
                    &self
                        .dir
                        .join(format!("reconstructions_epoch_{epoch:03}.png")),
                    &img,
                )?;
                image::write_png(&self.dir.join("reconstructions.png"), &img)?;
            }
        }
        Ok(())
    }

    /// Trains until `config().epochs` epochs are done or `stop` is set (checked before every
    /// step; then a checkpoint is written and [`Outcome::Interrupted`] returned).
    pub fn train(
        &mut self,
        splits: &Splits,
        stop: &AtomicBool,
        obs: &mut dyn Observer,
    ) -> Result<Outcome, TrainError> {
        let cfg = self.cfg.clone();
        let has_bn = matches!(cfg.model.kind, ModelKind::Gan | ModelKind::Dcgan);
        // BatchNorm statistics of a one-image batch are meaningless: GANs drop the short last batch.
        let mut batcher = Batcher::new(&splits.train, cfg.batch_size, cfg.seed)?.drop_last(has_bn);
        let steps = batcher.batches_per_epoch();
        if steps == 0 {
            return Err(TrainError::TooFewImages {
                images: splits.train.len(),
                batch: cfg.batch_size,
            });
        }
        let mut metrics = MetricsLog::open(&self.dir)?;
        let z_fixed = sample_latents(cfg.seed, cfg.model.latent);
        let parameters = self
            .model
            .checkpoint_tensors()
            .0
            .iter()
            .filter(|t| {
                !t.name.starts_with("optim.")
                    && !t.name.starts_with("ema.")
                    && !t.name.contains("running_")
            })
            .map(|t| t.data.len())
            .sum();
        let start_step = (self.step - self.epoch * steps as u64) as usize;
        obs.start(&RunInfo {
            epochs: cfg.epochs,
            start_epoch: self.epoch,
            start_step,
            steps_per_epoch: steps,
            train_images: splits.train.len(),
            test_images: splits.test.len(),
            parameters,
        });
        let names = self.model.train_names();
        while self.epoch < cfg.epochs {
            let epoch = self.epoch;
            batcher.start_epoch(epoch);
            let skip = (self.step - epoch * steps as u64) as usize;
            for _ in 0..skip {
                batcher.next_batch();
            }
            let partial = self.partial.take().unwrap_or_default();
            let mut sums: Vec<f64> = partial.sums.iter().map(|&b| f64::from_bits(b)).collect();
            sums.resize(names.len(), 0.0);
            let mut images = partial.images;
            let started = Instant::now();
            for s in skip..steps {
                if stop.load(Ordering::SeqCst) {
                    let p = Partial {
                        images,
                        sums: sums.iter().map(|v| v.to_bits()).collect(),
                    };
                    let checkpoint = self.save_checkpoint(Some(&p))?;
                    return Ok(Outcome::Interrupted {
                        epoch: epoch + 1,
                        step: s,
                        checkpoint,
                    });
                }
                let Some(batch) = batcher.next_batch() else {
                    break;
                };
                let n = batch.len();
                let mut rng =
                    Xoshiro256PlusPlus::seed_from_u64(mix(cfg.seed ^ STREAM_STEP, self.step));
                let info = StepInfo {
                    epoch_progress: epoch as f64 + s as f64 / steps as f64,
                };
                let losses = self
                    .model
                    .train_step(batch.images, info, &mut rng)
                    .map_err(|e| TrainError::NonFinite {
                        loss: e.loss,
                        value: e.value,
                        epoch: epoch + 1,
                        step: s + 1,
                        dir: self.dir.clone(),
                    })?;
                for (sum, (_, v)) in sums.iter_mut().zip(losses.iter()) {
                    *sum += v * n as f64;
                }
                images += n as u64;
                self.step += 1;
                obs.step(epoch + 1, s + 1, &losses);
            }
            let seconds = started.elapsed().as_secs_f64();
            let mean: Vec<f64> = sums.iter().map(|s| s / images.max(1) as f64).collect();
            let mut values = [0.0; 8];
            values[..mean.len()].copy_from_slice(&mean);
            let train = Losses { names, values };
            let mut eval_rng =
                Xoshiro256PlusPlus::seed_from_u64(mix(cfg.seed ^ STREAM_EVAL, epoch));
            let test = self
                .model
                .evaluate(splits.test.images.view(), &mut eval_rng);
            self.epoch += 1;
            self.write_images(self.epoch, &z_fixed, &splits.test)?;
            let train_names: Vec<String> = names.iter().map(|n| format!("train_{n}")).collect();
            let test_names: Vec<String> = names.iter().map(|n| format!("test_{n}")).collect();
            let mut row: Vec<(&str, f64)> = Vec::new();
            row.extend(
                train_names
                    .iter()
                    .map(String::as_str)
                    .zip(train.iter().map(|(_, v)| v)),
            );
            row.extend(
                test_names
                    .iter()
                    .map(String::as_str)
                    .zip(test.iter().map(|(_, v)| v)),
            );
            row.push(("seconds", seconds));
            metrics.log(self.epoch, &row)?;
            self.save_checkpoint(None)?;
            obs.epoch(&EpochReport {
                epoch: self.epoch,
                train,
                test,
                seconds,
            });
        }
        Ok(Outcome::Finished { epochs: self.epoch })
    }
}
