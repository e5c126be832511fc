//! `tinygen eval`: how good a trained generator is, measured on its run's data.
//!
//! For every model kind: the Frechet distance between generated and held-out images on the
//! evaluation classifier's features (with the train-vs-held-out distance as the floor),
//! improved precision and recall (Kynkaanniemi et al. 2019), class coverage, the KL divergence
//! of the generated class histogram from the held-out one, and the distance of samples to their
//! nearest training images (is it copying?). For VAEs also the test ELBO, the
//! importance-weighted NLL, the active latent units, reconstructions and a latent
//! interpolation, and for a 2-D latent the manifold. When the run has an int8 export, the same
//! sample metrics for the int8 model file run through the runtime on the same latents, so what
//! quantization costs is a quality figure.
//!
//! Everything lands in `RUN/eval/`: `eval.json` and the pictures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::{s, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tinygen_export::graph::Part;
use tinygen_runtime::model::{Dims, Precision};
use tinygen_runtime::rng::Rng as DeviceRng;
use tinygen_trainer::data::{PixelRange, Splits};
use tinygen_trainer::eval::{self as metrics, Classifier, ClassifierOptions, FeatureStats};
use tinygen_trainer::image::{self, GridOptions};
use tinygen_trainer::models::likelihood::LikelihoodReport;
use tinygen_trainer::models::{Model, ModelKind};
use tinygen_trainer::train::TrainConfig;

use crate::device::{self, DeviceCost};
use crate::files::{self, ModelFile};

/// The folder inside a run that `eval` writes.
pub const EVAL_DIR: &str = "eval";
/// The metrics file inside [`EVAL_DIR`].
pub const EVAL_JSON: &str = "eval.json";
/// Neighbours of the precision and recall manifolds (the paper's default).
pub const PR_NEIGHBOURS: usize = 3;
/// A class counts as covered when it receives at least this fraction of the samples.
pub const COVERAGE_FRACTION: f64 = 0.05;
/// Most importance samples per image `--iw-samples` accepts.
pub const MAX_IW_SAMPLES: usize = 5000;
/// Samples shown with their nearest training images.
const NEAREST_SHOWN: usize = 8;
/// Samples whose nearest-training distance is summarised.
const NEAREST_MEASURED: usize = 500;
/// Rows per generator call (bounds memory, not results).
const CHUNK: usize = 500;

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Generated images per model (also the number of held-out images compared, capped at
    /// the held-out split's size so both sets have the same size).
    pub samples: usize,
    /// Seed of the latents (the runtime's sampler, so the int8 file sees the same ones).
    pub seed: u64,
    /// Importance samples per image for the VAE's NLL estimate.
    pub iw_samples: usize,
    /// Held-out images the NLL and ELBO are computed on.
    pub iw_images: usize,
    /// Where the evaluation classifier is cached (trained there on first use).
    pub classifier_dir: PathBuf,
    /// Skip the int8 model even if the run has one.
    pub skip_int8: bool,
}

impl EvalOptions {
    /// Defaults for `run`: 5,000 samples, seed 0, 1,000 importance samples on 1,000 images,
    /// the classifier cached in a `classifiers` folder beside the run.
    pub fn new(run: &Path) -> EvalOptions {
        EvalOptions {
            run: run.to_path_buf(),
            samples: 5000,
            seed: 0,
            iw_samples: 1000,
            iw_images: 1000,
            classifier_dir: default_classifier_dir(run),
            skip_int8: false,
        }
    }
}

/// `classifiers/` in the folder that holds `run` (shared by the runs beside it).
pub fn default_classifier_dir(run: &Path) -> PathBuf {
    run.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("classifiers")
}

/// Sample-based metrics of one set of generated images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMetrics {
    /// Frechet distance to the held-out images on the classifier's features.
    pub fd: f64,
    /// Improved precision: the fraction of samples inside the held-out images' manifold.
    pub precision: f64,
    /// Improved recall: the fraction of held-out images inside the samples' manifold.
    pub recall: f64,
    /// Classes receiving at least [`COVERAGE_FRACTION`] of the samples.
    pub coverage: usize,
    /// Classes of the data set.
    pub classes: usize,
    /// `KL(generated class histogram || held-out class histogram)`, nats.
    pub class_kl: f64,
    /// Fraction of the samples the classifier puts in each class.
    pub class_histogram: Vec<f64>,
    /// Median pixel distance of samples to their nearest training image, divided by the same
    /// for held-out images: near 1 for a generator that draws new images, well below 1 for one
    /// that copies its training set.
    pub nearest_train_ratio: f64,
}

/// A VAE's likelihood figures, per image, in nats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeMetrics {
    /// Held-out images evaluated.
    pub images: usize,
    /// The negative ELBO (reconstruction + KL).
    pub elbo_loss: f64,
    /// Its reconstruction term.
    pub recon: f64,
    /// Its KL term.
    pub kl: f64,
    /// `(k, NLL estimate)` for a ladder of `k` up to `--iw-samples`.
    pub iw_nll: Vec<(usize, f64)>,
    /// Latent units whose posterior mean varies across the data (variance > 0.01).
    pub active_units: usize,
    /// Latent dimension.
    pub latent: usize,
}

impl VaeMetrics {
    /// The likelihood figures of `r` with the active units of a `latent`-dimensional latent.
    pub fn new(r: &LikelihoodReport, active_units: usize, latent: usize) -> Self {
        VaeMetrics {
            images: r.images,
            elbo_loss: r.elbo_loss,
            recon: r.recon,
            kl: r.kl,
            iw_nll: r.iw_nll.clone(),
            active_units,
            latent,
        }
    }
}

/// A flow's exact likelihood of held-out images: of the discrete 8-bit pixels (uniform
/// dequantization, one draw per pixel), per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowMetrics {
    /// Held-out images evaluated.
    pub images: usize,
    /// Negative log-likelihood, nats per image.
    pub nll: f64,
    /// The same in bits per dimension (pixel).
    pub bits_per_dim: f64,
}

/// The pictures `eval` drew, relative to the eval folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalImages {
    /// Samples of the float model.
    pub samples: String,
    /// Samples of the int8 model file on the same latents.
    pub int8_samples: Option<String>,
    /// Samples (left) and their nearest training images (right).
    pub nearest: String,
    /// Held-out images and their reconstructions (VAEs).
    pub reconstructions: Option<String>,
    /// Spherical interpolation between latents.
    pub interpolation: String,
    /// The decoded 2-D latent grid (2-D latents only).
    pub manifold: Option<String>,
}

/// Everything `eval` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The run folder.
    pub run: String,
    /// The model kind.
    pub kind: String,
    /// The data set's name.
    pub data: String,
    /// Image height and width.
    pub image: (usize, usize),
    /// Epochs trained (completed, from metrics.csv; the configured count without it).
    pub epochs: u64,
    /// Seconds of training steps over all epochs (from metrics.csv).
    pub train_seconds: f64,
    /// Trainable parameters of the generator (BatchNorm folded).
    pub parameters: usize,
    /// Generated (and held-out) images compared.
    pub samples: usize,
    /// Seed of the latents.
    pub seed: u64,
    /// Test accuracy of the evaluation classifier on the held-out split.
    pub classifier_accuracy: f64,
    /// The classifier file.
    pub classifier: String,
    /// Frechet distance of training images to held-out images: the best a model can expect.
    pub fd_floor: f64,
    /// Metrics of the float model.
    pub float: SampleMetrics,
    /// Metrics of the int8 model file, when the run has one.
    pub int8: Option<SampleMetrics>,
    /// The int8 model file evaluated.
    pub int8_file: Option<String>,
    /// Likelihood figures (VAEs).
    pub vae: Option<VaeMetrics>,
    /// Exact likelihood figures (flows).
    #[serde(default)]
    pub flow: Option<FlowMetrics>,
    /// Size and cost on the device.
    pub device: DeviceCost,
    /// Pictures.
    pub images: EvalImages,
    /// Seconds the evaluation took.
    pub eval_seconds: f64,
}

impl EvalReport {
    /// Reads `RUN/eval/eval.json`.
    pub fn load(run: &Path) -> Result<EvalReport> {
        let path = run.join(EVAL_DIR).join(EVAL_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}; evaluate the run first with `tinygen eval {}`",
                path.display(),
                run.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Progress lines of a long evaluation.
pub trait Log {
    /// One line.
    fn line(&mut self, s: &str);
}

impl<F: FnMut(&str)> Log for F {
    fn line(&mut self, s: &str) {
        self(s)
    }
}

/// The reference side of every comparison: the held-out images' features, statistics and
/// classes, computed once per data set.
pub struct Reference {
    /// Held-out images compared, in `[0, 1]`.
    pub images: Array2<f32>,
    /// Their features.
    pub features: Array2<f32>,
    /// Their feature statistics.
    pub stats: FeatureStats,
    /// Their class histogram (from the labels).
    pub histogram: Vec<f64>,
    /// Training images (for the nearest-neighbour pictures), in `[0, 1]`.
    pub train: Array2<f32>,
    /// FD of as many training images to the held-out ones.
    pub fd_floor: f64,
    /// Median distance of held-out images to their nearest training image.
    pub test_nearest_median: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median nearest-training distance of the first [`NEAREST_MEASURED`] rows of `images`.
fn nearest_median(images: ArrayView2<'_, f32>, train: ArrayView2<'_, f32>) -> f64 {
    let n = images.nrows().min(NEAREST_MEASURED);
    let nn = metrics::nearest_neighbours(images.slice(s![..n, ..]), train);
    median(nn.iter().map(|&(_, d)| f64::from(d)).collect())
}

impl Reference {
    /// The first `n` held-out images of `splits` (in `[0, 1]`) and as many training images.
    pub fn new(classifier: &mut Classifier, splits: &Splits, n: usize) -> Result<Reference> {
        let test = splits.test.clone().with_range(PixelRange::ZeroOne);
        let train = splits.train.clone().with_range(PixelRange::ZeroOne);
        let n = n.min(test.len()).min(train.len());
        if n < 2 * PR_NEIGHBOURS {
            bail!(
                "the held-out split of {} has {} images; evaluation needs at least {}",
                test.name,
                test.len(),
                2 * PR_NEIGHBOURS
            );
        }
        let images = test.images.slice(s![..n, ..]).to_owned();
        let features = classifier.features(images.view());
        let stats = FeatureStats::from_features(features.view());
        let train_features = classifier.features(train.images.slice(s![..n, ..]));
        let fd_floor =
            metrics::frechet_distance(&FeatureStats::from_features(train_features.view()), &stats);
        let test_nearest_median = nearest_median(images.view(), train.images.view());
        Ok(Reference {
            histogram: metrics::class_histogram(&test.labels[..n], classifier.classes()),
            images,
            features,
            stats,
            train: train.images,
            fd_floor,
            test_nearest_median,
        })
    }

    /// Metrics of generated images `x` (`(n, pixels)` in `[0, 1]`).
    pub fn measure(&self, classifier: &mut Classifier, x: ArrayView2<'_, f32>) -> SampleMetrics {
        let features = classifier.features(x);
        let stats = FeatureStats::from_features(features.view());
        let pr = metrics::precision_recall(self.features.view(), features.view(), PR_NEIGHBOURS);
        let classes = self.histogram.len();
        let hist = metrics::class_histogram(&classifier.predict(x), classes);
        SampleMetrics {
            fd: metrics::frechet_distance(&stats, &self.stats),
            precision: pr.precision,
            recall: pr.recall,
            coverage: metrics::coverage(&hist, COVERAGE_FRACTION),
            classes,
            class_kl: metrics::class_kl(&hist, &self.histogram),
            class_histogram: hist,
            nearest_train_ratio: nearest_median(x, self.train.view()) / self.test_nearest_median,
        }
    }
}

/// `n` latents from the runtime's sampler seeded with `seed`, `(n, latent)`.
pub fn device_latents(seed: u64, n: usize, latent: usize) -> Array2<f32> {
    let mut z = Array2::zeros((n, latent));
    let mut rng = DeviceRng::seed_from_u64(seed);
    if let Some(flat) = z.as_slice_mut() {
        rng.fill_gaussian(flat);
    }
    z
}

/// The trained model's images for latents `z`, mapped to `[0, 1]`.
pub fn generate_unit(model: &mut Model, z: ArrayView2<'_, f32>) -> Array2<f32> {
    let range = model.output_range();
    let mut out = Array2::zeros((z.nrows(), model.config().pixels()));
    for (i, chunk) in z.axis_chunks_iter(Axis(0), CHUNK).enumerate() {
        let y = model.generate(chunk);
        out.slice_mut(s![i * CHUNK..i * CHUNK + chunk.nrows(), ..])
            .assign(&y.mapv(|v| range.to_unit(v)));
    }
    out
}

/// A model file's outputs for latents `z`, mapped to `[0, 1]`.
pub fn runtime_unit(file: &ModelFile, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    let flat: Vec<f32> = z.iter().copied().collect();
    let y = files::run_runtime(file, &flat)?;
    let range = file.model()?.output_range();
    let pixels = y.len() / z.nrows().max(1);
    let mut out = Array2::from_shape_vec((z.nrows(), pixels), y)?;
    out.mapv_inplace(|v| range.to_unit(v));
    Ok(out)
}

/// Seconds of training in the run's `metrics.csv` (the `seconds` column summed).
pub fn train_seconds(run: &Path) -> f64 {
    metrics_column(run, "seconds").map_or(f64::NAN, |v| v.iter().sum())
}

/// Epochs the run completed: the rows of its `metrics.csv` (a run stopped early, by Ctrl-C or
/// a time limit, has fewer than it was configured for), if the file is there.
pub fn epochs_done(run: &Path) -> Option<u64> {
    metrics_column(run, "epoch").map(|v| v.len() as u64)
}

/// The values of one column of the run's `metrics.csv`, if the file and the column exist.
fn metrics_column(run: &Path, name: &str) -> Option<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).ok()?;
    let mut lines = text.lines();
    let col = lines.next()?.split(',').position(|c| c == name)?;
    Some(
        lines
            .filter_map(|l| l.split(',').nth(col)?.parse::<f64>().ok())
            .collect(),
    )
}

/// The int8 generator file of a run's default export folder, if it exists.
pub fn int8_file(run: &Path, kind: ModelKind) -> Option<PathBuf> {
    let name = if kind.is_vae() {
        "decoder"
    } else {
        "generator"
    };
    let p = run.join("export").join(format!("{name}.int8.tgm"));
    p.is_file().then_some(p)
}

/// Slerp between `a` and `b` at `t` (linear where they are nearly parallel).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(f64::MIN_POSITIVE)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    let t = f64::from(t);
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (wa * f64::from(x) + wb * f64::from(y)) as f32)
        .collect()
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Writes `images` (`(n, pixels)` in `[0, 1]`) as a grid into `dir/name`; returns `name`.
fn grid_png(
    dir: &Path,
    name: &str,
    images: ArrayView2<'_, f32>,
    (h, w): (usize, usize),
    cols: usize,
) -> Result<String> {
    let opts = GridOptions::for_images(h, w, cols, PixelRange::ZeroOne);
    let path = dir.join(name);
    image::write_grid(&path, images, h, w, &opts)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(name.to_owned())
}

/// Evaluates a run (see the module documentation); writes `RUN/eval/` and returns the report.
pub fn evaluate(opts: &EvalOptions, log: &mut dyn Log) -> Result<EvalReport> {
    let started = Instant::now();
    if opts.iw_samples == 0 || opts.iw_samples > MAX_IW_SAMPLES {
        bail!(
            "--iw-samples {}: give between 1 and {MAX_IW_SAMPLES} importance samples per image",
            opts.iw_samples
        );
    }
    check_samples(opts.samples)?;
    let (cfg, mut model) = files::open_run(&opts.run)?;
    let splits = cfg
        .load_data()
        .with_context(|| format!("loading the data set of the run in {}", opts.run.display()))?;
    let (mut classifier, reference) =
        load_reference(&opts.classifier_dir, &splits, opts.samples, log)?;
    evaluate_loaded(
        opts,
        &cfg,
        &mut model,
        &splits,
        &mut classifier,
        &reference,
        log,
        started,
    )
}

/// Fails unless `samples` is enough for precision and recall.
fn check_samples(samples: usize) -> Result<()> {
    if samples < 2 * PR_NEIGHBOURS {
        bail!(
            "--samples {samples}: give at least {} generated images",
            2 * PR_NEIGHBOURS
        );
    }
    Ok(())
}

/// The evaluation classifier of `splits` (cached in `classifier_dir`) and the reference of
/// `samples` held-out images, shared by a run and a model file.
fn load_reference(
    classifier_dir: &Path,
    splits: &Splits,
    samples: usize,
    log: &mut dyn Log,
) -> Result<(Classifier, Reference)> {
    let mut classifier = load_classifier(classifier_dir, splits, log)?;
    let reference = Reference::new(&mut classifier, splits, samples)?;
    let n = reference.images.nrows();
    log.line(&format!(
        "comparing {n} generated images with {n} held-out images of {} (FD floor, train vs held-out: {:.2})",
        splits.test.name, reference.fd_floor
    ));
    Ok((classifier, reference))
}

/// Loads the evaluation classifier for `splits` from `dir`, training it there if needed.
pub fn load_classifier(dir: &Path, splits: &Splits, log: &mut dyn Log) -> Result<Classifier> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut print = |s: &str| log.line(s);
    let train = splits.clone().with_range(PixelRange::ZeroOne);
    metrics::load_or_train(dir, &train, &ClassifierOptions::default(), &mut print)
        .with_context(|| format!("the evaluation classifier in {}", dir.display()))
}

/// [`evaluate`] with the run, data, classifier and reference already loaded (as `compare`
/// and `quickstart` share them between runs).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_loaded(
    opts: &EvalOptions,
    cfg: &TrainConfig,
    model: &mut Model,
    splits: &Splits,
    classifier: &mut Classifier,
    reference: &Reference,
    log: &mut dyn Log,
    started: Instant,
) -> Result<EvalReport> {
    let kind = cfg.model.kind;
    let (h, w) = (cfg.model.height, cfg.model.width);
    if classifier.image_size() != (h, w) {
        bail!(
            "the run in {} has {h}x{w} images but the evaluation classifier was trained on {}x{}",
            opts.run.display(),
            classifier.image_size().0,
            classifier.image_size().1
        );
    }
    let dir = opts.run.join(EVAL_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = reference.images.nrows();
    let FloatSamples {
        z,
        float,
        mut images,
    } = float_samples(
        &dir,
        (h, w),
        model.latent(),
        opts.seed,
        classifier,
        reference,
        &mut |z: ArrayView2<'_, f32>| Ok(generate_unit(model, z)),
        log,
    )?;

    let mut vae = None;
    if let Some(mut v) = model.sampling_vae() {
        let k = opts.iw_images.min(reference.images.nrows());
        let test = reference.images.slice(s![..k, ..]);
        log.line(&format!(
            "VAE likelihood on {k} held-out images with {} importance samples each",
            opts.iw_samples
        ));
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(opts.seed);
        let r = v.likelihood(test, opts.iw_samples, &mut rng);
        let (active, _) = v.active_units(reference.images.view());
        let m = VaeMetrics::new(&r, active, cfg.model.latent);
        log.line(&format!(
            "ELBO loss {:.2} nats, IW-NLL {:.2} nats (k = {}), {} of {} latent units active",
            m.elbo_loss,
            r.nll(),
            opts.iw_samples,
            m.active_units,
            m.latent
        ));
        let shown = 32.min(reference.images.nrows());
        let originals = reference.images.slice(s![..shown, ..]);
        let rec = v.reconstruct(originals);
        let opts_grid = GridOptions::for_images(h, w, 8, PixelRange::ZeroOne);
        let path = dir.join("reconstructions.png");
        image::write_comparison(&path, originals, rec.view(), h, w, &opts_grid)
            .with_context(|| format!("writing {}", path.display()))?;
        images.reconstructions = Some("reconstructions.png".into());
        vae = Some(m);
    }

    let mut flow = None;
    if let Model::Flow(f) = &mut *model {
        let test = reference.images.view();
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(opts.seed);
        let l: Vec<f64> = f.evaluate(test, &mut rng).iter().map(|(_, v)| v).collect();
        let m = FlowMetrics {
            images: test.nrows(),
            nll: l[0],
            bits_per_dim: l[1],
        };
        log.line(&format!(
            "exact likelihood of {} held-out images: NLL {:.2} nats per image, {:.4} bits/dim (discrete 8-bit pixels)",
            m.images, m.nll, m.bits_per_dim
        ));
        flow = Some(m);
    }

    let graph = model
        .dag(Part::Generator)
        .with_context(|| format!("lowering the generator of {}", opts.run.display()))?;
    let mut device = device::cost(&graph, &opts.run.join("export"));
    let mut int8 = None;
    let mut int8_name = None;
    if let (Some(path), false) = (int8_file(&opts.run, kind), opts.skip_int8) {
        let file = ModelFile::open(&path)?;
        int8 = Some(int8_samples(
            &dir,
            (h, w),
            &file,
            z.view(),
            &float,
            classifier,
            reference,
            &mut images,
            log,
        )?);
        int8_name = Some(path.display().to_string());
    }
    device.int8_evaluated = int8.is_some();
    let parameters = graph.parameter_count();
    let report = EvalReport {
        run: opts.run.display().to_string(),
        kind: kind.name().to_owned(),
        data: splits.test.name.clone(),
        image: (h, w),
        epochs: epochs_done(&opts.run).unwrap_or(cfg.epochs),
        train_seconds: train_seconds(&opts.run),
        parameters,
        samples: n,
        seed: opts.seed,
        classifier_accuracy: classifier.test_accuracy(),
        classifier: classifier
            .path()
            .map_or_else(|| "(not saved)".into(), |p| p.display().to_string()),
        fd_floor: reference.fd_floor,
        float,
        int8,
        int8_file: int8_name,
        vae,
        flow,
        device,
        images,
        eval_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join(EVAL_JSON), &report)?;
    Ok(report)
}

/// Writes `value` as pretty JSON to `path` (atomically).
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    tinygen_trainer::checkpoint::write_atomic(path, json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Images for latents `(n, latent)`, mapped to `[0, 1]`: the trained model's
/// ([`generate_unit`]) or a model file's ([`runtime_unit`]).
pub type Generate<'a> = dyn FnMut(ArrayView2<'_, f32>) -> Result<Array2<f32>> + 'a;

/// What [`float_samples`] measured and drew.
struct FloatSamples {
    /// The latents of the measured samples, `(n, latent)` (the int8 model sees the same).
    z: Array2<f32>,
    /// The sample metrics.
    float: SampleMetrics,
    /// The pictures drawn so far.
    images: EvalImages,
}

/// The sample metrics of the float generator, shared by a run and a model file: as many
/// samples as held-out images in `reference`, on latents from the runtime's sampler seeded with
/// `seed`; writes `samples.png`, `nearest.png`, `interpolation.png` and, for a 2-D latent,
/// `manifold.png` into `dir`.
#[allow(clippy::too_many_arguments)]
fn float_samples(
    dir: &Path,
    (h, w): (usize, usize),
    latent: usize,
    seed: u64,
    classifier: &mut Classifier,
    reference: &Reference,
    generate: &mut Generate<'_>,
    log: &mut dyn Log,
) -> Result<FloatSamples> {
    let n = reference.images.nrows();
    let z = device_latents(seed, n, latent);
    let x = generate(z.view())?;
    let float = reference.measure(classifier, x.view());
    log.line(&format!(
        "float: FD {:.2}, precision {:.3}, recall {:.3}, coverage {}/{}, class KL {:.3}",
        float.fd, float.precision, float.recall, float.coverage, float.classes, float.class_kl
    ));
    let mut images = EvalImages {
        samples: grid_png(dir, "samples.png", x.slice(s![..64.min(n), ..]), (h, w), 8)?,
        ..EvalImages::default()
    };

    // Nearest training images of the first samples: sample | nearest, per row.
    let shown = NEAREST_SHOWN.min(n);
    let nn = metrics::nearest_neighbours(x.slice(s![..shown, ..]), reference.train.view());
    let mut pairs = Array2::zeros((2 * shown, h * w));
    for (i, &(j, _)) in nn.iter().enumerate() {
        pairs.row_mut(2 * i).assign(&x.row(i));
        pairs.row_mut(2 * i + 1).assign(&reference.train.row(j));
    }
    images.nearest = grid_png(dir, "nearest.png", pairs.view(), (h, w), 2)?;

    // Interpolation: four rows of slerp between pairs of the same latents.
    let steps = 10;
    let mut path = Array2::zeros((4 * steps, latent));
    for r in 0..4 {
        let (a, b) = (z.row(2 * r).to_vec(), z.row(2 * r + 1).to_vec());
        for k in 0..steps {
            let t = k as f32 / (steps - 1) as f32;
            path.row_mut(r * steps + k)
                .assign(&ndarray::aview1(&slerp(&a, &b, t)));
        }
    }
    let interp = generate(path.view())?;
    images.interpolation = grid_png(dir, "interpolation.png", interp.view(), (h, w), steps)?;
    if latent == 2 {
        let side = 16;
        let mut grid = Array2::zeros((side * side, 2));
        for i in 0..side {
            for j in 0..side {
                let p = |k: usize| normal_quantile((k as f64 + 0.5) / side as f64) as f32;
                grid[[i * side + j, 0]] = p(j);
                grid[[i * side + j, 1]] = p(side - 1 - i);
            }
        }
        let m = generate(grid.view())?;
        images.manifold = Some(grid_png(dir, "manifold.png", m.view(), (h, w), side)?);
    }
    Ok(FloatSamples { z, float, images })
}

/// The sample metrics of the int8 model `file` on the float samples' latents `z`, shared by a
/// run and a model file; logs the change from `float` and writes `int8-samples.png` into `dir`.
#[allow(clippy::too_many_arguments)]
fn int8_samples(
    dir: &Path,
    (h, w): (usize, usize),
    file: &ModelFile,
    z: ArrayView2<'_, f32>,
    float: &SampleMetrics,
    classifier: &mut Classifier,
    reference: &Reference,
    images: &mut EvalImages,
    log: &mut dyn Log,
) -> Result<SampleMetrics> {
    let n = z.nrows();
    let xq = runtime_unit(file, z)?;
    let m = reference.measure(classifier, xq.view());
    log.line(&format!(
        "int8 ({}): FD {:.2} ({:+.1}% vs float), precision {:.3}, recall {:.3}, coverage {}/{}",
        file.path.display(),
        m.fd,
        100.0 * (m.fd - float.fd) / float.fd,
        m.precision,
        m.recall,
        m.coverage,
        m.classes
    ));
    images.int8_samples = Some(grid_png(
        dir,
        "int8-samples.png",
        xq.slice(s![..64.min(n), ..]),
        (h, w),
        8,
    )?);
    Ok(m)
}

/// Why a model file's evaluation has no likelihood figures (said in its output and report).
pub const NO_LIKELIHOOD: &str = "likelihood figures (VAE ELBO and IW-NLL, flow NLL) need the \
     trained model and are not available for a model file; evaluate the run folder for them";

/// What to evaluate of a model file and how.
#[derive(Debug, Clone)]
pub struct FileEvalOptions {
    /// A generator model file (`NAME.tgm`, f32), or a folder holding one (written by
    /// `tinygen export` or `tinygen import`); see [`locate_model_files`].
    pub model: PathBuf,
    /// The data set to compare with, as `tinygen train --data` takes it (an IDX folder, a
    /// digits CSV file, `builtin:mnist`, `builtin:digits`); its held-out split is the reference.
    pub data: PathBuf,
    /// Where `eval.json` and the pictures go.
    pub out: PathBuf,
    /// Generated images (also the number of held-out images compared, capped at the held-out
    /// split's size).
    pub samples: usize,
    /// Seed of the latents (the runtime's sampler; the int8 file sees the same ones).
    pub seed: u64,
    /// Where the evaluation classifier is cached (trained there on first use).
    pub classifier_dir: PathBuf,
    /// Skip the int8 twin even if there is one.
    pub skip_int8: bool,
}

impl FileEvalOptions {
    /// Defaults for `model` judged on `data`: 5,000 samples, seed 0, the pictures in
    /// [`default_file_eval_dir`], the classifier cached in a `classifiers` folder beside `model`.
    pub fn new(model: &Path, data: &Path) -> FileEvalOptions {
        FileEvalOptions {
            model: model.to_path_buf(),
            data: data.to_path_buf(),
            out: default_file_eval_dir(model),
            samples: 5000,
            seed: 0,
            classifier_dir: default_classifier_dir(model),
            skip_int8: false,
        }
    }
}

/// `eval/` inside a folder of model files, or beside a model file.
pub fn default_file_eval_dir(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join(EVAL_DIR)
    } else {
        model
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(EVAL_DIR)
    }
}

/// Everything `eval` measured of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEvalReport {
    /// The f32 model file evaluated.
    pub model: String,
    /// The data set's name.
    pub data: String,
    /// Image height and width.
    pub image: (usize, usize),
    /// Latent dimension.
    pub latent: usize,
    /// Generated (and held-out) images compared.
    pub samples: usize,
    /// Seed of the latents.
    pub seed: u64,
    /// Test accuracy of the evaluation classifier on the held-out split.
    pub classifier_accuracy: f64,
    /// The classifier file.
    pub classifier: String,
    /// Frechet distance of training images to held-out images: the best a model can expect.
    pub fd_floor: f64,
    /// Metrics of the f32 model file.
    pub float: SampleMetrics,
    /// Metrics of its int8 twin on the same latents, when there is one.
    pub int8: Option<SampleMetrics>,
    /// The int8 model file evaluated.
    pub int8_file: Option<String>,
    /// Always `None`: see [`FileEvalReport::likelihood`].
    pub vae: Option<VaeMetrics>,
    /// Always `None`: see [`FileEvalReport::likelihood`].
    pub flow: Option<FlowMetrics>,
    /// Why there are no likelihood figures ([`NO_LIKELIHOOD`]).
    pub likelihood: String,
    /// Bytes of the f32 model file.
    pub f32_bytes: usize,
    /// Arena bytes of the f32 model file.
    pub f32_arena: usize,
    /// Bytes of the int8 model file evaluated.
    pub int8_bytes: Option<usize>,
    /// Arena bytes of the int8 model file evaluated.
    pub int8_arena: Option<usize>,
    /// Pictures, relative to the output folder.
    pub images: EvalImages,
    /// Seconds the evaluation took.
    pub eval_seconds: f64,
}

impl FileEvalReport {
    /// Reads `dir/eval.json` written by [`evaluate_file`].
    pub fn load(dir: &Path) -> Result<FileEvalReport> {
        let path = dir.join(EVAL_JSON);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The f32 generator model file that `path` names and its int8 twin beside it
/// (`NAME.int8.tgm`), if there is one. `path` is a model file `NAME.tgm`, or a folder (written
/// by `tinygen export` or `tinygen import`) whose `*.tgm` files hold exactly one generator
/// (an export's encoder and discriminator files are passed over).
pub fn locate_model_files(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let twin = |f32_path: &Path| {
        let name = f32_path.file_name()?.to_str()?.strip_suffix(".tgm")?;
        let p = f32_path.with_file_name(format!("{name}.int8.tgm"));
        p.is_file().then_some(p)
    };
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    if !path.is_dir() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(stem) = name.strip_suffix(".int8.tgm") {
            bail!(
                "{} is an int8 model file: give its f32 twin {stem}.tgm instead (the int8 file \
                 beside it is evaluated too, on the same latents)",
                path.display()
            );
        }
        return Ok((path.to_path_buf(), twin(path)));
    }
    let mut names: Vec<String> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|f| f.ends_with(".tgm") && !f.ends_with(".int8.tgm"))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "{} is neither a run folder (it has no config.json) nor a folder of model files (it \
             has no NAME.tgm): give a run folder written by `tinygen train`, a folder written by \
             `tinygen export` or `tinygen import`, or a model file",
            path.display()
        );
    }
    let mut generators = Vec::new();
    for name in &names {
        let file = ModelFile::open(&path.join(name))?;
        if file.model()?.part() == Part::Generator {
            generators.push(name.clone());
        }
    }
    match generators.as_slice() {
        [one] => {
            let p = path.join(one);
            let t = twin(&p);
            Ok((p, t))
        }
        [] => bail!(
            "{} holds no generator model file ({} hold an encoder or a discriminator); give a \
             folder or file with a decoder or generator",
            path.display(),
            names.join(", ")
        ),
        [first, ..] => bail!(
            "{} holds several generator model files ({}); name the one to evaluate, for example \
             `tinygen eval {} --data ...`",
            path.display(),
            generators.join(", "),
            path.join(first).display()
        ),
    }
}

/// Opens the generator model file `path` and checks it has `precision`.
fn open_generator(path: &Path, precision: Precision) -> Result<ModelFile> {
    let file = ModelFile::open(path)?;
    crate::sample::require_generator(&file)?;
    let found = file.model()?.precision();
    if found != precision {
        bail!(
            "{} is a {found:?} model file; expected {precision:?} here",
            path.display()
        );
    }
    Ok(file)
}

/// The image size of a generator's output `dims` if it is one grayscale image of `(h, w)`
/// (`1 x h x w`, or a flat vector of `h * w` values as an MLP decoder writes).
fn image_of(dims: Dims, (h, w): (usize, usize)) -> bool {
    (dims.c == 1 && (dims.h, dims.w) == (h, w)) || (dims.h == 1 && dims.w == 1 && dims.c == h * w)
}

/// Evaluates a model file (and its int8 twin) against the held-out split of a data set: the
/// sample metrics of [`evaluate`], generated by the runtime; writes `eval.json` and the
/// pictures into `opts.out` and returns the report. Likelihood figures need the trained model
/// and are reported as absent ([`NO_LIKELIHOOD`]).
pub fn evaluate_file(opts: &FileEvalOptions, log: &mut dyn Log) -> Result<FileEvalReport> {
    let started = Instant::now();
    check_samples(opts.samples)?;
    let (f32_path, twin) = locate_model_files(&opts.model)?;
    let file = open_generator(&f32_path, Precision::F32)?;
    let model = file.model()?;
    let splits = tinygen_trainer::data::load(Some(opts.data.as_path()))
        .with_context(|| format!("loading the data set {}", opts.data.display()))?;
    let (h, w) = (splits.height(), splits.width());
    let dims = model.output_shape();
    if !image_of(dims, (h, w)) {
        bail!(
            "{} draws {}x{}x{} outputs ({} values) but the images of {} are 1x{h}x{w} ({} \
             values): evaluate it against a data set of its own image size, or export a model \
             trained on {}",
            f32_path.display(),
            dims.c,
            dims.h,
            dims.w,
            model.output_len(),
            opts.data.display(),
            h * w,
            opts.data.display()
        );
    }
    let int8_file = match (twin, opts.skip_int8) {
        (Some(p), false) => {
            let q = open_generator(&p, Precision::Int8)?;
            let m = q.model()?;
            if (m.latent_len(), m.output_len()) != (model.latent_len(), model.output_len()) {
                bail!(
                    "{} maps {} latents to {} values but {} maps {} to {}: they are not twins",
                    p.display(),
                    m.latent_len(),
                    m.output_len(),
                    f32_path.display(),
                    model.latent_len(),
                    model.output_len()
                );
            }
            Some(q)
        }
        _ => None,
    };
    let (mut classifier, reference) =
        load_reference(&opts.classifier_dir, &splits, opts.samples, log)?;
    let dir = &opts.out;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let FloatSamples {
        z,
        float,
        mut images,
    } = float_samples(
        dir,
        (h, w),
        model.latent_len(),
        opts.seed,
        &mut classifier,
        &reference,
        &mut |z: ArrayView2<'_, f32>| runtime_unit(&file, z),
        log,
    )?;
    let mut int8 = None;
    if let Some(q) = &int8_file {
        int8 = Some(int8_samples(
            dir,
            (h, w),
            q,
            z.view(),
            &float,
            &mut classifier,
            &reference,
            &mut images,
            log,
        )?);
    }
    log.line(NO_LIKELIHOOD);
    let int8_model = int8_file.as_ref().map(ModelFile::model).transpose()?;
    let report = FileEvalReport {
        model: f32_path.display().to_string(),
        data: splits.test.name.clone(),
        image: (h, w),
        latent: model.latent_len(),
        samples: reference.images.nrows(),
        seed: opts.seed,
        classifier_accuracy: classifier.test_accuracy(),
        classifier: classifier
            .path()
            .map_or_else(|| "(not saved)".into(), |p| p.display().to_string()),
        fd_floor: reference.fd_floor,
        float,
        int8,
        int8_file: int8_file.as_ref().map(|q| q.path.display().to_string()),
        vae: None,
        flow: None,
        likelihood: NO_LIKELIHOOD.to_owned(),
        f32_bytes: model.bytes().len(),
        f32_arena: model.arena_bytes(),
        int8_bytes: int8_model.as_ref().map(|m| m.bytes().len()),
        int8_arena: int8_model.as_ref().map(|m| m.arena_bytes()),
        images,
        eval_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join(EVAL_JSON), &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_seconds_come_from_the_rows_of_metrics_csv() {
        let dir = std::env::temp_dir().join(format!("tinygen-epochs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(epochs_done(&dir), None);
        assert!(train_seconds(&dir).is_nan());
        // A run configured for 200 epochs and stopped after 3.
        std::fs::write(
            dir.join("metrics.csv"),
            "epoch,train_loss,seconds\n1,2.5,10.0\n2,2.0,11.5\n3,1.9,12.0\n",
        )
        .unwrap();
        assert_eq!(epochs_done(&dir), Some(3));
        assert_eq!(train_seconds(&dir), 33.5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn slerp_ends_and_norm() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        assert_eq!(slerp(&a, &b, 0.0), vec![1.0, 0.0]);
        let m = slerp(&a, &b, 0.5);
        // Halfway along the unit circle: (cos 45°, sin 45°), norm 1 (a lerp would give 0.707).
        let norm = (m[0] * m[0] + m[1] * m[1]).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-6 && (m[0] - m[1]).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn quantile_inverts_known_values() {
        // Φ(0) = 0.5, Φ(1.959964) = 0.975, Φ(-2.326348) = 0.01.
        assert!(normal_quantile(0.5).abs() < 1e-9);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((normal_quantile(0.01) + 2.326_348).abs() < 1e-6);
    }

    #[test]
    fn image_of_takes_one_channel_or_a_flat_vector_of_the_same_pixels() {
        let d = |c, h, w| Dims { c, h, w };
        assert!(image_of(d(1, 8, 8), (8, 8)));
        // An MLP decoder's flat output of 64 values is an 8x8 image.
        assert!(image_of(d(64, 1, 1), (8, 8)));
        assert!(!image_of(d(784, 1, 1), (8, 8)));
        assert!(!image_of(d(1, 28, 28), (8, 8)));
        // Three channels of 8x8 are not a grayscale 8x8 image, nor is 8x8 laid out as 4x16.
        assert!(!image_of(d(3, 8, 8), (8, 8)));
        assert!(!image_of(d(1, 4, 16), (8, 8)));
    }

    #[test]
    fn a_model_file_writes_eval_beside_it() {
        assert_eq!(
            default_file_eval_dir(Path::new("out/decoder.tgm")),
            Path::new("out").join(EVAL_DIR)
        );
        assert_eq!(
            default_file_eval_dir(Path::new("decoder.tgm")),
            Path::new(".").join(EVAL_DIR)
        );
    }

    #[test]
    fn median_of_odd_count() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
