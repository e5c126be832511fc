//! The evaluation classifier end to end: training on the UCI 8x8 digits, saving and loading,
//! the cache of `load_or_train`, and its errors.
//!
//! The full-size measurements (MNIST, Fashion-MNIST) take minutes and are `#[ignore]`d; run them
//! one at a time with the thread count fixed, e.g.
//! `MATMUL_NUM_THREADS=1 cargo test -p tinygen-trainer --release --test eval -- --ignored --nocapture mnist_full`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use tinygen_trainer::data::{self, Dataset, PixelRange, Splits};
use tinygen_trainer::eval::{
    self, class_histogram, coverage, Classifier, ClassifierOptions, EvalError,
    COVERAGE_MIN_FRACTION,
};

fn shared_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

fn digits() -> Splits {
    data::load(Some(&shared_data("optdigits/digits.csv.gz"))).expect("optdigits in shared/data")
}

/// The recipe for the 8x8 digits in the tests: 1,498 training images, so more epochs than the
/// default's four (each takes well under a second), and no shifts (a pixel is an eighth of
/// these images).
fn digits_options() -> ClassifierOptions {
    ClassifierOptions {
        epochs: 12,
        max_shift: 0,
        ..ClassifierOptions::default()
    }
}

/// Test accuracy the digits classifier must reach on the 299 held-out images, whose writers are
/// mostly unseen in training. Measured 88.3 % (seed 0, 12 epochs; random shifts of one pixel
/// lowered it to 83.6 % on these tiny images); 85 % leaves room for about ten images of change,
/// while a network that learned nothing scores about 10 %.
const DIGITS_MIN_ACCURACY: f64 = 0.85;

fn same_bits(a: &Array2<f32>, b: &Array2<f32>) -> bool {
    a.dim() == b.dim() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn digits_classifier_trains_saves_and_loads() {
    let splits = digits();
    let mut lines = Vec::new();
    let (mut c, acc) = Classifier::train(
        &splits.train,
        &splits.test,
        &digits_options(),
        &mut |s: &str| lines.push(s.to_string()),
    )
    .unwrap();
    eprintln!("{}", lines.join("\n"));
    assert!(acc >= DIGITS_MIN_ACCURACY, "test accuracy {acc}");
    // One line per epoch, then the final one with the accuracy in percent.
    assert_eq!(lines.len(), digits_options().epochs + 1);
    assert!(lines
        .last()
        .unwrap()
        .contains(&format!("{:.2}%", 100.0 * acc)));
    assert_eq!((c.image_size(), c.classes()), ((8, 8), 10));
    assert_eq!(c.accuracy(&splits.test).unwrap(), acc);

    // Predicted classes spread over all ten digits on the held-out images.
    let predicted = c.predict(splits.test.images.view());
    assert_eq!(
        coverage(&class_histogram(&predicted, 10), COVERAGE_MIN_FRACTION),
        10
    );

    // The same images in [-1, 1] through the range helper give the same features.
    let f = c.features(splits.test.images.view());
    assert_eq!(f.dim(), (splits.test.len(), c.feature_dim()));
    let minus = splits.test.clone().with_range(PixelRange::MinusOneOne);
    let f_minus = c.features_in(minus.images.view(), PixelRange::MinusOneOne);
    // (v * 2 - 1 + 1) / 2 is exact for the digits' values k/16: the features are identical.
    assert!(same_bits(&f, &f_minus));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.safetensors");
    c.save(&path).unwrap();
    let mut loaded = Classifier::load(&path).unwrap();
    // The same weights run through the same code: bit-identical features and predictions.
    assert!(same_bits(&f, &loaded.features(splits.test.images.view())));
    assert_eq!(loaded.predict(splits.test.images.view()), predicted);
    assert_eq!(loaded.test_accuracy(), acc);
    assert_eq!(loaded.data_fingerprint(), eval::fingerprint(&splits.train));
    assert_eq!(loaded.options(), &digits_options());
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let splits = digits().take(400, 100);
    let opts = ClassifierOptions {
        epochs: 2,
        max_shift: 1,
        ..ClassifierOptions::default()
    };
    let (mut a, _) = Classifier::train(&splits.train, &splits.test, &opts, &mut |_| {}).unwrap();
    let (mut b, _) = Classifier::train(&splits.train, &splits.test, &opts, &mut |_| {}).unwrap();
    let other = ClassifierOptions { seed: 1, ..opts };
    let (mut c, _) = Classifier::train(&splits.train, &splits.test, &other, &mut |_| {}).unwrap();
    let x = splits.test.images.view();
    let fa = a.features(x);
    assert!(same_bits(&fa, &b.features(x)));
    assert!(!same_bits(&fa, &c.features(x)));
}

#[test]
fn load_or_train_caches_by_data() {
    let splits = digits().take(600, 150);
    let opts = ClassifierOptions {
        epochs: 2,
        ..ClassifierOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut first: Vec<String> = Vec::new();
    let mut a = eval::load_or_train(dir.path(), &splits, &opts, &mut |s: &str| {
        first.push(s.into())
    })
    .unwrap();
    assert!(first.iter().any(|l| l.contains("epoch 2/2")), "{first:?}");
    let mut second: Vec<String> = Vec::new();
    let mut b = eval::load_or_train(dir.path(), &splits, &opts, &mut |s: &str| {
        second.push(s.into())
    })
    .unwrap();
    assert!(
        second.len() == 1 && second[0].contains("loaded"),
        "{second:?}"
    );
    let x = splits.test.images.view();
    assert!(same_bits(&a.features(x), &b.features(x)));

    // The same data in [-1, 1] has the same fingerprint: loaded again, not retrained.
    let minus = splits.clone().with_range(PixelRange::MinusOneOne);
    let mut third: Vec<String> = Vec::new();
    eval::load_or_train(dir.path(), &minus, &opts, &mut |s: &str| {
        third.push(s.into())
    })
    .unwrap();
    assert!(third.iter().all(|l| !l.contains("epoch")), "{third:?}");

    // Other options: trained again under the same name.
    let more = ClassifierOptions { epochs: 1, ..opts };
    let mut fourth: Vec<String> = Vec::new();
    eval::load_or_train(dir.path(), &splits, &more, &mut |s: &str| {
        fourth.push(s.into())
    })
    .unwrap();
    assert!(fourth.iter().any(|l| l.contains("epoch 1/1")), "{fourth:?}");

    // Other data (one label changed): its own file, trained afresh.
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    let mut changed = splits.clone();
    changed.train.labels[0] = (changed.train.labels[0] + 1) % 10;
    eval::load_or_train(dir.path(), &changed, &more, &mut |_| {}).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), files + 1);
}

#[test]
fn a_cached_file_for_other_data_is_refused() {
    let splits = digits().take(300, 100);
    let opts = ClassifierOptions {
        epochs: 1,
        ..ClassifierOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    eval::load_or_train(dir.path(), &splits, &opts, &mut |_| {}).unwrap();
    // Copy the file to the name another data set (the first 200 images) is looked up under.
    let other = digits().take(200, 100);
    let trained = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let fp = eval::fingerprint(&other.train);
    let target = dir.path().join(format!(
        "{}-8x8-n200-{fp:08x}.safetensors",
        eval::CACHE_PREFIX
    ));
    std::fs::copy(&trained, &target).unwrap();
    let err = eval::load_or_train(dir.path(), &other, &opts, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, EvalError::FingerprintMismatch { expected, .. } if expected == fp),
        "{msg}"
    );
    assert!(
        msg.contains(&target.display().to_string()) && msg.contains("delete"),
        "{msg}"
    );
}

#[test]
fn mismatched_data_is_an_error_not_a_panic() {
    let splits = digits().take(200, 50);
    let opts = ClassifierOptions {
        epochs: 1,
        ..ClassifierOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (c, _) = Classifier::train(&splits.train, &splits.test, &opts, &mut |_| {}).unwrap();
    c.save(&path).unwrap();
    let mut c = Classifier::load(&path).unwrap();

    let big = Dataset {
        images: Array2::zeros((3, 28 * 28)),
        labels: vec![0, 1, 2],
        height: 28,
        width: 28,
        name: "mnist".into(),
        range: PixelRange::ZeroOne,
    };
    let err = c.accuracy(&big).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EvalError::ImageSizeMismatch { .. }), "{msg}");
    assert!(
        msg.contains("the data has 28x28 images")
            && msg.contains("trained on 8x8")
            && msg.contains(&path.display().to_string()),
        "{msg}"
    );
    assert!(matches!(
        c.check_images(big.images.view()),
        Err(EvalError::PixelCountMismatch { pixels: 784, .. })
    ));

    let mut bad_label = splits.test.clone();
    bad_label.labels[0] = 12;
    assert!(matches!(
        c.accuracy(&bad_label),
        Err(EvalError::LabelOutOfRange { label: 12, .. })
    ));
    let empty = splits.train.take(0);
    assert!(matches!(
        Classifier::train(&empty, &splits.test, &opts, &mut |_| {}),
        Err(EvalError::EmptyData { .. })
    ));
    assert!(matches!(
        Classifier::load(&dir.path().join("missing.safetensors")),
        Err(EvalError::Checkpoint(_))
    ));
}

// ---- measurements (minutes; run explicitly) ----

fn threads() -> String {
    std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "default".into())
}

/// The default options, with `EPOCHS` and `MAX_SHIFT` from the environment if set (to find the
/// fewest epochs that reach a target).
fn measured_options() -> ClassifierOptions {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let d = ClassifierOptions::default();
    ClassifierOptions {
        epochs: env("EPOCHS").unwrap_or(d.epochs),
        max_shift: env("MAX_SHIFT").unwrap_or(d.max_shift),
        ..d
    }
}

/// Trains on `train`, tests on `test`, prints the figures and returns the test accuracy.
fn measure(label: &str, train: &Dataset, test: &Dataset, opts: &ClassifierOptions) -> f64 {
    let started = Instant::now();
    let (_, acc) = Classifier::train(train, test, opts, &mut |s: &str| eprintln!("{label}: {s}"))
        .expect("training");
    eprintln!(
        "{label}: {:.2}% test accuracy, {} epochs, shifts up to {} px, {:.1} s, {} training \
         images, threads {}",
        100.0 * acc,
        opts.epochs,
        opts.max_shift,
        started.elapsed().as_secs_f64(),
        train.len(),
        threads()
    );
    acc
}

/// Target: at least 99 % on the MNIST test split after training on all 60,000 images.
#[test]
#[ignore = "minutes: the full MNIST training split"]
fn mnist_full() {
    let splits = data::load(Some(&shared_data("mnist"))).expect("MNIST in shared/data");
    let acc = measure("mnist", &splits.train, &splits.test, &measured_options());
    assert!(acc >= 0.99, "{acc}");
}

/// Target: at least 90 % on the Fashion-MNIST test split.
#[test]
#[ignore = "minutes: the full Fashion-MNIST training split"]
fn fashion_full() {
    let splits = data::load(Some(&shared_data("fashion-mnist"))).expect("Fashion-MNIST");
    let acc = measure(
        "fashion-mnist",
        &splits.train,
        &splits.test,
        &measured_options(),
    );
    assert!(acc >= 0.90, "{acc}");
}

/// The first 8,000 images of the MNIST test split for training, the last 2,000 for testing.
#[test]
#[ignore = "tens of seconds: 8,000 MNIST images"]
fn mnist_8000() {
    let splits = data::load(Some(&shared_data("mnist"))).expect("MNIST in shared/data");
    let test = &splits.test;
    let train = test.take(8000);
    let held_out = test
        .subset(&(8000..test.len()).collect::<Vec<_>>())
        .expect("indices in range");
    let opts = measured_options();
    let acc = measure("mnist 8000/2000", &train, &held_out, &opts);
    // A floor well under the measured figure (see the project's notes), not a target.
    assert!(acc >= 0.95, "{acc}");
}
