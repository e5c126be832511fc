//! Helpers shared by the end-to-end tests: tiny training runs on the built-in 8x8 digits, seeded
//! inputs and validation cases for `tools/validate_onnx.py`. tract runs, runtime runs and
//! comparisons are `tinygen_export::check`'s, as `tinygen verify` uses them.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use tinygen_runtime::rng::Rng;
use tinygen_testkit::{write_validation_case, CaseTensor};
use tinygen_trainer::models::{Model, ModelConfig, ModelKind};
use tinygen_trainer::train::{load_run, Outcome, Run, Silent, TrainConfig};

/// Largest allowed `max |a - b| / max |reference|` between two f32 implementations of the same
/// graph (trainer, runtime f32, tract). All compute in f32 and add the same products in different
/// orders (BatchNorm folded on one side, not the other; tanh/sigmoid approximations about 2e-7
/// apart), so they differ by a few units of f32 roundoff (6e-8) of the output's magnitude; a
/// layout or operator mistake gives errors of order one. Normalising by the largest |reference|
/// keeps outputs near zero from inflating the figure.
pub const F32_REL_TOL: f64 = 1e-5;

/// A fresh folder under the system temp dir, unique per test name and process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinygen-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Small networks of every kind on the built-in 8x8 digits, so a test trains in about a second.
pub fn tiny_config(kind: ModelKind, epochs: u64, limit_train: Option<usize>) -> TrainConfig {
    let mut model = ModelConfig::defaults(kind, 8, 8);
    match kind {
        ModelKind::Gan => {
            model.hidden = vec![64, 128];
            model.d_hidden = vec![128, 64];
        }
        ModelKind::VaeGan => {
            model.hidden = vec![128, 128];
            model.d_hidden = vec![128, 64];
        }
        ModelKind::Dcgan | ModelKind::VaeConv => model.channels = 8,
        ModelKind::Vae | ModelKind::Flow => {}
    }
    TrainConfig {
        model,
        data: Some(tinygen_trainer::data::BUILTIN_DIGITS.into()),
        epochs,
        seed: 11,
        batch_size: 64,
        limit_train,
        limit_test: Some(64),
    }
}

/// Trains `cfg` into `dir` and loads the run back from its files (as `tinygen export` does).
pub fn train(dir: &Path, cfg: TrainConfig) -> (TrainConfig, Model) {
    let splits = cfg.load_data().expect("built-in data");
    let mut run = Run::create(dir, cfg).expect("run folder");
    let out = run
        .train(&splits, &AtomicBool::new(false), &mut Silent)
        .expect("training");
    assert!(matches!(out, Outcome::Finished { .. }), "{out:?}");
    load_run(dir).expect("the run loads back")
}

/// `n * len` values `N(0, 1)` from the runtime's sampler.
pub fn gaussian(seed: u64, n: usize, len: usize) -> Vec<f32> {
    let mut z = vec![0f32; n * len];
    Rng::seed_from_u64(seed).fill_gaussian(&mut z);
    z
}

/// Where validation cases go: `$TINYGEN_ONNX_CASES`, or nowhere.
pub fn cases_dir() -> Option<PathBuf> {
    std::env::var_os("TINYGEN_ONNX_CASES").map(PathBuf::from)
}

/// Writes a validation case if `$TINYGEN_ONNX_CASES` is set.
pub fn case(name: &str, onnx: &[u8], inputs: &[CaseTensor], outputs: &[CaseTensor]) {
    if let Some(dir) = cases_dir() {
        write_validation_case(&dir, name, onnx, inputs, outputs).expect("validation case written");
    }
}

/// Runs the `tinygen` binary.
pub fn tinygen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygen"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A failure a user can act on: non-zero exit, every needle in the message, no panic.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let t = text(o);
    assert!(!o.status.success(), "expected failure, got success:\n{t}");
    assert!(
        !t.contains("panicked") && !t.contains("RUST_BACKTRACE"),
        "panic text:\n{t}"
    );
    for needle in needles {
        assert!(t.contains(needle), "message lacks {needle:?}:\n{t}");
    }
}
