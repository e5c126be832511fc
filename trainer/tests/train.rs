//! Training-loop tests on the built-in 8x8 digits (`builtin:digits`): every model learns, runs are deterministic,
//! a resumed run equals an uninterrupted one, the NaN guard fires, and a loaded run lowers to
//! graphs that compute what the trainer computes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, Axis};
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;
use tinygen_export::{Part, Shape};
use tinygen_trainer::checkpoint;
use tinygen_trainer::data::Splits;
use tinygen_trainer::models::{Losses, Model, ModelConfig, ModelKind};
use tinygen_trainer::train::{
    load_run, sample_latents, EpochReport, Observer, Outcome, Run, TrainConfig, TrainError,
    CHECKPOINT_FILE,
};

/// Records every epoch report, and sets `stop` after `stop_at` steps (counted from the start
/// of this call) when given.
#[derive(Default)]
struct Recorder<'a> {
    reports: Vec<EpochReport>,
    steps: usize,
    stop_at: Option<(usize, &'a AtomicBool)>,
}

impl Observer for Recorder<'_> {
    fn step(&mut self, _epoch: u64, _step: usize, _losses: &Losses) {
        self.steps += 1;
        if let Some((n, flag)) = self.stop_at {
            if self.steps == n {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }
    fn epoch(&mut self, r: &EpochReport) {
        self.reports.push(r.clone());
    }
}

fn config(kind: ModelKind, epochs: u64, splits: &Splits) -> TrainConfig {
    let mut model = ModelConfig::defaults(kind, splits.height(), splits.width());
    // Small networks keep every test to about a second on one core.
    match kind {
        ModelKind::Gan => {
            model.hidden = vec![64, 128];
            model.d_hidden = vec![128, 64];
        }
        ModelKind::VaeGan => {
            model.hidden = vec![128, 128];
            model.d_hidden = vec![128, 64];
        }
        ModelKind::Dcgan | ModelKind::VaeConv => model.channels = 16,
        ModelKind::Vae | ModelKind::Flow => {}
    }
    TrainConfig {
        model,
        data: Some(tinygen_trainer::data::BUILTIN_DIGITS.into()),
        epochs,
        seed: 7,
        batch_size: if kind.has_discriminator() { 64 } else { 128 },
        limit_train: None,
        limit_test: None,
    }
}

#[test]
fn data_none_is_mnist_10k_except_in_old_8x8_runs() {
    let digits = tinygen_trainer::data::builtin_digits().unwrap();
    let mut cfg = config(ModelKind::Vae, 1, &digits);
    let loaded = cfg.load_data().unwrap();
    assert_eq!(
        (loaded.height(), loaded.width(), loaded.train.len()),
        (8, 8, 1498)
    );
    // A run written when the 8x8 digits were the default: no `data`, an 8x8 model.
    cfg.data = None;
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"data\":null"), "{json}");
    let old: TrainConfig = serde_json::from_str(&json).unwrap();
    let loaded = old.load_data().unwrap();
    assert_eq!(
        (loaded.height(), loaded.width(), loaded.train.len()),
        (8, 8, 1498)
    );
    // Any other model shape without `data` gets the default, MNIST-10k.
    cfg.model = ModelConfig::defaults(ModelKind::Vae, 28, 28);
    let loaded = cfg.load_data().unwrap();
    assert_eq!((loaded.height(), loaded.width()), (28, 28));
    assert_eq!((loaded.train.len(), loaded.test.len()), (8_000, 2_000));
}

fn train(dir: &Path, cfg: TrainConfig) -> Vec<EpochReport> {
    let splits = cfg.load_data().unwrap();
    let mut run = Run::create(dir, cfg).unwrap();
    let mut rec = Recorder::default();
    let out = run
        .train(&splits, &AtomicBool::new(false), &mut rec)
        .unwrap();
    assert!(matches!(out, Outcome::Finished { .. }));
    rec.reports
}

/// Every value of every epoch, as bit patterns.
fn bits(reports: &[EpochReport]) -> Vec<u64> {
    reports
        .iter()
        .flat_map(|r| {
            r.train
                .iter()
                .chain(r.test.iter())
                .map(|(_, v)| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn initial_test_loss(cfg: &TrainConfig, splits: &Splits) -> Losses {
    let mut model =
        Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed)).unwrap();
    model.evaluate(
        splits.test.images.view(),
        &mut Xoshiro256PlusPlus::seed_from_u64(1),
    )
}

#[test]
fn vae_test_loss_falls_to_at_most_0_8_of_initial() {
    for kind in [ModelKind::Vae, ModelKind::VaeConv] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(kind, 4, &tinygen_trainer::data::builtin_digits().unwrap());
        let splits = cfg.load_data().unwrap();
        let initial = initial_test_loss(&cfg, &splits).values[0];
        let reports = train(dir.path(), cfg);
        let last = reports.last().unwrap().test.values[0];
        // An untrained decoder outputs about 0.5 everywhere: ~64 * ln 2 = 44 nats per 8x8
        // image. Four epochs (48 steps) of the recipe reach about 27; 0.8x leaves room for
        // seeds and thread counts while failing any model that does not learn.
        assert!(
            last <= 0.8 * initial,
            "{kind}: test loss {initial} -> {last}"
        );
        for f in [
            "samples.png",
            "samples_epoch_004.png",
            "reconstructions.png",
            "metrics.csv",
            "config.json",
            CHECKPOINT_FILE,
        ] {
            assert!(dir.path().join(f).exists(), "{kind}: {f} missing");
        }
    }
}

/// Squared distance between the mean generated image (from the fixed latents) and the mean
/// test image, both mapped to [0, 1].
fn mean_image_distance(model: &mut Model, splits: &Splits, seed: u64) -> f64 {
    let z = sample_latents(seed, model.latent());
    let range = model.output_range();
    let gen = model.generate(z.view()).mapv(|v| range.to_unit(v));
    let data = splits.test.images.mapv(|v| range.to_unit(v));
    let (g, d) = (
        gen.mean_axis(Axis(0)).unwrap(),
        data.mean_axis(Axis(0)).unwrap(),
    );
    g.iter()
        .zip(&d)
        .map(|(&a, &b)| f64::from(a - b).powi(2))
        .sum()
}

#[test]
fn gans_move_their_samples_towards_the_data() {
    // The VAE-GAN twice: pixel reconstruction only, and with the reconstruction in the
    // discriminator's features (Larsen et al.) beside it.
    for (kind, epochs, feature_weight) in [
        (ModelKind::Gan, 6, 0.0),
        (ModelKind::Dcgan, 6, 0.0),
        (ModelKind::VaeGan, 4, 0.0),
        (ModelKind::VaeGan, 4, 1.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(
            kind,
            epochs,
            &tinygen_trainer::data::builtin_digits().unwrap(),
        );
        cfg.model.feature_weight = feature_weight;
        let splits = cfg.load_data().unwrap();
        let mut fresh =
            Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed)).unwrap();
        let before = mean_image_distance(&mut fresh, &splits, cfg.seed);
        let reports = train(dir.path(), cfg.clone());
        let (_, mut trained) = load_run(dir.path()).unwrap();
        let after = mean_image_distance(&mut trained, &splits, cfg.seed);
        // The mean sample of an untrained generator is flat grey; a generator that learns
        // draws the digits' mean shape (dark border, bright strokes). Requiring the distance
        // to halve fails a generator that does not learn from the discriminator.
        assert!(
            after <= 0.5 * before,
            "{kind}: mean-image distance {before} -> {after}"
        );
        let d_real = reports
            .last()
            .unwrap()
            .train
            .iter()
            .find(|(n, _)| *n == "d_real")
            .unwrap()
            .1;
        assert!(d_real > 0.0 && d_real < 1.0, "{kind}: D(x) = {d_real}");
    }
}

#[test]
fn same_seed_gives_the_same_losses_bit_for_bit() {
    for kind in [ModelKind::Vae, ModelKind::Gan] {
        let splits = tinygen_trainer::data::builtin_digits().unwrap();
        let mut cfg = config(kind, 2, &splits);
        cfg.model.ema = Some(0.9);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ra = train(a.path(), cfg.clone());
        let rb = train(b.path(), cfg.clone());
        assert_eq!(bits(&ra), bits(&rb), "{kind}: same seed, different losses");
        cfg.seed += 1;
        let c = tempfile::tempdir().unwrap();
        assert_ne!(
            bits(&ra),
            bits(&train(c.path(), cfg)),
            "{kind}: the seed has no effect"
        );
    }
}

#[test]
fn resume_after_interruption_equals_uninterrupted_run() {
    for kind in [
        ModelKind::Vae,
        ModelKind::Gan,
        ModelKind::Dcgan,
        ModelKind::Flow,
    ] {
        let splits = tinygen_trainer::data::builtin_digits().unwrap();
        let mut cfg = config(kind, 3, &splits);
        if kind == ModelKind::Gan {
            cfg.model.ema = Some(0.95);
        }
        let whole = tempfile::tempdir().unwrap();
        let expected = train(whole.path(), cfg.clone());

        // Stop in the middle of epoch 2, then resume in a new process-like state.
        let parts = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let mut run = Run::create(parts.path(), cfg.clone()).unwrap();
        let per_epoch = if kind.has_discriminator() {
            splits.train.len() / 64
        } else {
            splits.train.len().div_ceil(128)
        };
        let mut first = Recorder {
            stop_at: Some((per_epoch + 3, &stop)),
            ..Recorder::default()
        };
        let out = run
            .train(&cfg.load_data().unwrap(), &stop, &mut first)
            .unwrap();
        assert!(
            matches!(
                out,
                Outcome::Interrupted {
                    epoch: 2,
                    step: 3,
                    ..
                }
            ),
            "{kind}: {out:?}"
        );
        drop(run);
        let mut run = Run::resume(parts.path(), Some(kind), None).unwrap();
        let mut second = Recorder::default();
        run.train(
            &cfg.load_data().unwrap(),
            &AtomicBool::new(false),
            &mut second,
        )
        .unwrap();
        let mut got = first.reports;
        got.extend(second.reports);
        assert_eq!(bits(&got), bits(&expected), "{kind}: resumed run differs");

        // The final checkpoints hold the same tensors, bit for bit.
        let a = checkpoint::load(&whole.path().join(CHECKPOINT_FILE)).unwrap();
        let b = checkpoint::load(&parts.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(
            a.tensors.keys().collect::<Vec<_>>(),
            b.tensors.keys().collect::<Vec<_>>()
        );
        for (name, t) in &a.tensors {
            let u = &b.tensors[name];
            let same = t
                .data
                .iter()
                .zip(&u.data)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same && t.shape == u.shape, "{kind}: tensor {name} differs");
        }
    }
}

#[test]
fn nan_guard_names_epoch_step_and_loss() {
    let splits = tinygen_trainer::data::builtin_digits().unwrap();
    let mut cfg = config(ModelKind::Vae, 2, &splits);
    cfg.model.lr_g = 1e30;
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::create(dir.path(), cfg).unwrap();
    let err = run
        .train(&splits, &AtomicBool::new(false), &mut Recorder::default())
        .unwrap_err();
    let TrainError::NonFinite {
        epoch,
        step,
        loss,
        value,
        ..
    } = &err
    else {
        panic!("expected NonFinite, got {err}")
    };
    assert!(!value.is_finite());
    assert_eq!(*epoch, 1, "{err}");
    // Step 1 runs on the initial weights; the first absurd update lands before step 2.
    assert!(*step >= 2, "{err}");
    assert!(["loss", "recon", "kl"].contains(loss), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 1") && msg.contains(&format!("step {step}")) && msg.contains(loss),
        "{msg}"
    );
}

#[test]
fn resume_refuses_another_model() {
    let splits = tinygen_trainer::data::builtin_digits().unwrap();
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), config(ModelKind::Vae, 1, &splits));
    let err = Run::resume(dir.path(), Some(ModelKind::Gan), None)
        .err()
        .unwrap();
    assert!(matches!(err, TrainError::WrongModel { .. }), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = Run::resume(empty.path(), None, None).err().unwrap();
    assert!(matches!(err, TrainError::NothingToResume { .. }), "{err}");
}

#[test]
fn loaded_run_lowers_to_graphs_that_match_the_trainer() {
    let splits = tinygen_trainer::data::builtin_digits().unwrap();
    for kind in [
        ModelKind::Vae,
        ModelKind::Gan,
        ModelKind::Dcgan,
        ModelKind::VaeGan,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(kind, 1, &splits);
        cfg.model.ema = kind.has_discriminator().then_some(0.9);
        train(dir.path(), cfg.clone());
        let (loaded_cfg, mut model) = load_run(dir.path()).unwrap();
        assert_eq!(loaded_cfg, cfg);
        for &part in model.parts() {
            let g = model.graph(part).unwrap();
            let out = g.output_shape().unwrap();
            match part {
                Part::Generator => assert_eq!(out, Shape::chw(1, 8, 8), "{kind}"),
                Part::Encoder => assert_eq!(out, Shape::flat(2 * cfg.model.latent), "{kind}"),
                Part::Discriminator => assert_eq!(out, Shape::flat(1), "{kind}"),
            }
        }
        assert!(
            model.graph(Part::Encoder).is_ok() == kind.is_vae(),
            "{kind}: encoder only for VAEs"
        );
        // The generator graph (BatchNorm folded, EMA weights) computes what the trainer's
        // eval-mode forward computes, through testkit's plain f64 forward of the graph.
        // Tolerance: the trainer's f32 sums against f64 on O(1) values through <= 4 layers of
        // <= 400 terms; 1e-4 absolute is ~100x that rounding and far below any folding error.
        let z = sample_latents(3, cfg.model.latent);
        let want: Array2<f32> = model.generate(z.view());
        let g = model.graph(Part::Generator).unwrap();
        for (zi, wi) in z.rows().into_iter().zip(want.rows()) {
            let acts = tinygen_testkit::reference::forward_f64(&g, zi.as_slice().unwrap());
            let got = acts.last().unwrap();
            assert_eq!(got.len(), wi.len(), "{kind}");
            let err = got
                .iter()
                .zip(wi)
                .map(|(a, &b)| (*a as f32 - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err <= 1e-4,
                "{kind}: graph differs from the trainer by {err}"
            );
        }
    }
}
