//! `tinygen quickstart`: the whole tool in one command. Trains a VAE and GANs on the built-in
//! data (or `--data`), exports each generator (ONNX, f32 and int8 model files), verifies the
//! exports against tract-onnx, samples through the runtime, evaluates every model and writes
//! the comparison report.
//!
//! The models train at the same time, one per core, each on one thread (so each run is
//! deterministic for its seed, as `tinygen train --threads 1`), while the evaluation
//! classifier trains beside them. A folder that already holds a finished quickstart run is
//! reused: every run resumes from its checkpoint (finished runs are not retrained), so an
//! interrupted quickstart continues where it stopped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tinygen_trainer::data::Splits;
use tinygen_trainer::eval::Classifier;
use tinygen_trainer::models::{ModelConfig, ModelKind};
use tinygen_trainer::train::{
    EpochReport, Observer, Outcome, Run, RunInfo, TrainConfig, CONFIG_FILE,
};

use crate::eval::{self, EvalOptions, EvalReport, Reference};
use crate::export::{export_run, ExportOptions};
use crate::files;
use crate::report::{self, CompareOptions, Entry};
use crate::sample::{sample_png, SampleOptions};
use crate::verify::{verify_dir, VerifyOptions};

/// One model the quickstart trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// The model.
    pub kind: ModelKind,
    /// Epochs.
    pub epochs: u64,
}

/// What the quickstart does.
#[derive(Debug, Clone)]
pub struct QuickstartOptions {
    /// `--data` (`None`: the built-in MNIST-10k).
    pub data: Option<PathBuf>,
    /// The output folder: one run folder per model, `classifiers/`, `report/`.
    pub out: PathBuf,
    /// The models and their epochs, longest first (they are started in this order).
    pub jobs: Vec<Job>,
    /// Seed of every run and of the evaluation latents.
    pub seed: u64,
    /// Use only the first N training images (`None`: all).
    pub limit_train: Option<usize>,
    /// Use only the first N held-out images (`None`: all).
    pub limit_test: Option<usize>,
    /// Generated images per model in the evaluation.
    pub samples: usize,
    /// Importance samples per image for the VAE's NLL.
    pub iw_samples: usize,
    /// Held-out images for the VAE's NLL.
    pub iw_images: usize,
    /// Models trained at the same time (one thread each).
    pub workers: usize,
}

impl QuickstartOptions {
    /// The defaults: DCGAN for 12 epochs, MLP GAN for 20, VAE for 20 on the built-in data
    /// (8,000 training images), two at a time.
    pub fn new(out: &Path) -> QuickstartOptions {
        QuickstartOptions {
            data: None,
            out: out.to_path_buf(),
            jobs: vec![
                Job {
                    kind: ModelKind::Dcgan,
                    epochs: 12,
                },
                Job {
                    kind: ModelKind::Vae,
                    epochs: 20,
                },
                Job {
                    kind: ModelKind::Gan,
                    epochs: 20,
                },
            ],
            seed: 1,
            limit_train: None,
            limit_test: None,
            samples: 5000,
            iw_samples: 500,
            iw_images: 500,
            workers: 2,
        }
    }
}

/// What the quickstart made.
#[derive(Debug, Clone)]
pub struct QuickstartSummary {
    /// The run folders, in job order.
    pub runs: Vec<PathBuf>,
    /// The evaluations, in job order.
    pub evals: Vec<EvalReport>,
    /// Verification links that failed (0 when every export matches tract).
    pub verify_failed: usize,
    /// Verification links judged.
    pub verify_judged: usize,
    /// `report/report.html`.
    pub report_html: PathBuf,
    /// `report/report.md`.
    pub report_md: PathBuf,
    /// Wall-clock seconds of the whole quickstart.
    pub seconds: f64,
}

/// Prints every epoch of a run with its model's name in front.
struct Prefixed<'a> {
    name: &'static str,
    epochs: u64,
    log: &'a (dyn Fn(&str) + Sync),
}

impl Observer for Prefixed<'_> {
    fn start(&mut self, info: &RunInfo) {
        self.epochs = info.epochs;
        (self.log)(&format!(
            "[{}] {} training images, {} steps per epoch, {} parameters{}",
            self.name,
            info.train_images,
            info.steps_per_epoch,
            info.parameters,
            if info.start_epoch > 0 {
                format!(", resuming after epoch {}", info.start_epoch)
            } else {
                String::new()
            }
        ));
    }

    fn epoch(&mut self, r: &EpochReport) {
        let losses: Vec<String> = r.test.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
        (self.log)(&format!(
            "[{}] epoch {}/{} ({:.1} s): test {}",
            self.name,
            r.epoch,
            self.epochs,
            r.seconds,
            losses.join("  ")
        ));
    }
}

/// Trains (or resumes) one job into `out/<kind>`.
fn train_job(
    opts: &QuickstartOptions,
    job: Job,
    splits: &Splits,
    stop: &AtomicBool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf> {
    let dir = opts.out.join(job.kind.name());
    let mut run = if dir.join(CONFIG_FILE).is_file() {
        Run::resume(&dir, Some(job.kind), Some(job.epochs))
            .with_context(|| format!("resuming {}", dir.display()))?
    } else {
        let cfg = TrainConfig {
            model: ModelConfig::defaults(job.kind, splits.height(), splits.width()),
            data: opts.data.clone(),
            epochs: job.epochs,
            seed: opts.seed,
            batch_size: if job.kind.has_discriminator() {
                64
            } else {
                128
            },
            limit_train: opts.limit_train,
            limit_test: opts.limit_test,
        };
        Run::create(&dir, cfg).with_context(|| format!("starting a run in {}", dir.display()))?
    };
    let splits = run
        .config()
        .load_data()
        .with_context(|| format!("loading the data of {}", dir.display()))?;
    let mut obs = Prefixed {
        name: job.kind.name(),
        epochs: job.epochs,
        log,
    };
    match run
        .train(&splits, stop, &mut obs)
        .with_context(|| format!("training {} in {}", job.kind, dir.display()))?
    {
        Outcome::Finished { .. } => Ok(dir),
        Outcome::Interrupted { checkpoint, .. } => bail!(
            "interrupted; checkpoint saved to {}. Run the same quickstart command again to continue",
            checkpoint.display()
        ),
    }
}

/// Work for the training threads.
enum Task {
    Train(Job),
    Classifier,
}

/// Runs the quickstart; `log` receives every progress line (from several threads).
pub fn quickstart(
    opts: &QuickstartOptions,
    stop: &AtomicBool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<QuickstartSummary> {
    let started = Instant::now();
    if opts.jobs.is_empty() {
        bail!("nothing to train: the quickstart needs at least one model");
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let splits = tinygen_trainer::data::load(opts.data.as_deref())
        .context("loading the data set (--data)")?
        .take(
            opts.limit_train.unwrap_or(usize::MAX),
            opts.limit_test.unwrap_or(usize::MAX),
        );
    log(&format!(
        "data: {} ({} training and {} held-out images of {}x{})",
        splits.train.name,
        splits.train.len(),
        splits.test.len(),
        splits.height(),
        splits.width()
    ));
    let classifier_dir = opts.out.join("classifiers");

    // Train the models and the classifier, `workers` at a time.
    let tasks: Mutex<VecDeque<Task>> = Mutex::new(
        opts.jobs
            .iter()
            .take(1)
            .map(|&j| Task::Train(j))
            .chain(std::iter::once(Task::Classifier))
            .chain(opts.jobs.iter().skip(1).map(|&j| Task::Train(j)))
            .collect(),
    );
    let runs: Mutex<Vec<(ModelKind, Result<PathBuf>)>> = Mutex::new(Vec::new());
    let classifier: Mutex<Option<Result<Classifier>>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| loop {
                let Some(task) = tasks.lock().ok().and_then(|mut q| q.pop_front()) else {
                    return;
                };
                match task {
                    Task::Train(job) => {
                        let r = train_job(opts, job, &splits, stop, log);
                        if let Ok(mut v) = runs.lock() {
                            v.push((job.kind, r));
                        }
                    }
                    Task::Classifier => {
                        let mut line = |s: &str| log(&format!("[classifier] {s}"));
                        let r = eval::load_classifier(&classifier_dir, &splits, &mut line);
                        if let Ok(mut c) = classifier.lock() {
                            *c = Some(r);
                        }
                    }
                }
            });
        }
    });
    let mut classifier = classifier
        .into_inner()
        .map_err(|_| anyhow!("a training thread panicked"))?
        .ok_or_else(|| anyhow!("the classifier was not trained"))??;
    let mut trained = runs
        .into_inner()
        .map_err(|_| anyhow!("a training thread panicked"))?;
    let mut dirs = Vec::new();
    for job in &opts.jobs {
        let i = trained
            .iter()
            .position(|(k, _)| *k == job.kind)
            .ok_or_else(|| anyhow!("{} was not trained", job.kind))?;
        dirs.push(trained.swap_remove(i).1?);
    }
    log(&format!(
        "training done after {:.0} s",
        started.elapsed().as_secs_f64()
    ));

    // Export, verify and sample every generator.
    let (mut failed, mut judged) = (0, 0);
    for dir in &dirs {
        let mut e = ExportOptions::new(dir);
        e.int8 = true;
        e.seed = opts.seed;
        let summary = export_run(&e)?;
        let v = verify_dir(&VerifyOptions {
            dir: summary.out.clone(),
            n: 64,
            seed: opts.seed,
            run: Some(dir.clone()),
        })?;
        failed += v.failed();
        judged += v.judged();
        let quality = summary
            .int8
            .as_ref()
            .map(|q| format!(", int8 vs f32 PSNR {:.1} dB", q.quality.psnr_db))
            .unwrap_or_default();
        log(&format!(
            "[{}] exported to {} ({} MACs per sample{quality}); verified against tract-onnx: {} of {} links pass",
            summary.kind,
            summary.out.display(),
            summary.macs,
            v.judged() - v.failed(),
            v.judged()
        ));
        for (ext, png) in [("tgm", "runtime-f32.png"), ("int8.tgm", "runtime-int8.png")] {
            let model = summary.out.join(format!("{}.{ext}", summary.name));
            sample_png(&SampleOptions {
                model,
                seed: opts.seed,
                n: 64,
                png: dir.join(png),
                cols: 8,
            })?;
        }
    }

    // Evaluate every model against the same held-out images, then compare.
    let reference = Reference::new(&mut classifier, &splits, opts.samples)?;
    log(&format!(
        "evaluating on {} held-out images (classifier accuracy {:.2}%, FD floor {:.2})",
        reference.images.nrows(),
        100.0 * classifier.test_accuracy(),
        reference.fd_floor
    ));
    let mut evals = Vec::new();
    for dir in &dirs {
        let (cfg, mut model) = files::open_run(dir)?;
        let mut eopts = EvalOptions::new(dir);
        eopts.samples = opts.samples;
        eopts.seed = opts.seed;
        eopts.iw_samples = opts.iw_samples;
        eopts.iw_images = opts.iw_images;
        eopts.classifier_dir = classifier_dir.clone();
        let name = cfg.model.kind.name();
        let mut line = |s: &str| log(&format!("[{name}] {s}"));
        let r = eval::evaluate_loaded(
            &eopts,
            &cfg,
            &mut model,
            &splits,
            &mut classifier,
            &reference,
            &mut line,
            Instant::now(),
        )?;
        evals.push(r);
    }
    let entries: Vec<Entry> = dirs
        .iter()
        .zip(&evals)
        .map(|(dir, e)| Entry {
            label: e.kind.clone(),
            run: dir.clone(),
            eval: e.clone(),
            curves: report::Curves::read(dir),
        })
        .collect();
    let report_dir = opts.out.join("report");
    let report_html = report::write_report(
        &entries,
        &CompareOptions {
            out: report_dir.clone(),
            command: format!(
                "tinygen quickstart --out {}{}",
                opts.out.display(),
                opts.data
                    .as_ref()
                    .map(|d| format!(" --data {}", d.display()))
                    .unwrap_or_default()
            ),
        },
    )?;
    Ok(QuickstartSummary {
        runs: dirs,
        evals,
        verify_failed: failed,
        verify_judged: judged,
        report_html,
        report_md: report_dir.join("report.md"),
        seconds: started.elapsed().as_secs_f64(),
    })
}
