//! `tinygen train` as a user runs it: files written, resume, and clear errors (non-zero exit,
//! a message, never a panic).

use std::path::PathBuf;
use std::process::{Command, Output};

fn tinygen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygen"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh folder under the system temp dir, unique per test and process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinygen-cli-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A failure a user can act on: non-zero exit, a message containing `needle`, no panic.
fn assert_clean_failure(o: &Output, needle: &str) {
    let t = text(o);
    assert!(!o.status.success(), "expected failure, got success:\n{t}");
    assert!(
        !t.contains("panicked") && !t.contains("RUST_BACKTRACE"),
        "panic text:\n{t}"
    );
    assert!(t.contains(needle), "message lacks {needle:?}:\n{t}");
}

#[test]
fn trains_a_vae_on_builtin_digits_then_resumes() {
    let dir = scratch("vae");
    let out = dir.join("run");
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("epoch 2/2"), "{}", text(&o));
    // The reserved name is stored as given, so the run resumes on the same data.
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"builtin:digits\""), "{config}");
    for f in [
        "config.json",
        "checkpoint.safetensors",
        "metrics.jsonl",
        "samples_epoch_002.png",
        "reconstructions.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two epochs:\n{csv}");
    assert!(
        csv.starts_with("epoch,train_loss,train_recon,train_kl,test_loss"),
        "{csv}"
    );

    // A second run into the same folder must not overwrite it.
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "--resume");
    // Resuming with another model is refused.
    let o = tinygen(&[
        "train",
        "gan",
        "--epochs",
        "3",
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "holds a vae run");
    // Resuming to three epochs adds one.
    let o = tinygen(&[
        "train",
        "vae",
        "--epochs",
        "3",
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trains_on_the_builtin_mnist_10k_without_data() {
    let dir = scratch("default-data");
    let out = dir.join("run");
    let o = tinygen(&[
        "train",
        "vae",
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--limit-test",
        "64",
        "--batch-size",
        "64",
        "--hidden",
        "32",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let compact: String = config.split_whitespace().collect();
    for needle in ["\"data\":null", "\"height\":28", "\"width\":28"] {
        assert!(compact.contains(needle), "{needle} missing:\n{config}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = scratch("bad");
    let out = dir.join("run");
    let out = out.to_str().unwrap();
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        dir.join("no-such-folder").to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_clean_failure(&o, "no-such-folder");

    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(idx.join(f), b"this is not an IDX file").unwrap();
    }
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        idx.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_clean_failure(&o, "train-images-idx3-ubyte");

    let o = tinygen(&["train", "vae", "--no-such-flag"]);
    assert_clean_failure(&o, "--no-such-flag");
    let o = tinygen(&["train", "transformer"]);
    assert_clean_failure(&o, "vae-conv");
    let o = tinygen(&[
        "train",
        "vae",
        "--resume",
        "--out",
        dir.join("empty").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "config.json");
    let o = tinygen(&[
        "train",
        "dcgan",
        "--data",
        "builtin:digits",
        "--epochs",
        "1",
        "--ema",
        "1.5",
        "--out",
        out,
    ]);
    assert_clean_failure(&o, "--ema");
    let o = tinygen(&["train", "vae", "--data", "builtin:xyz", "--out", out]);
    for needle in ["builtin:xyz", "builtin:mnist", "builtin:digits"] {
        assert_clean_failure(&o, needle);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn absurd_learning_rate_stops_with_the_nan_guard() {
    let dir = scratch("nan");
    let out = dir.join("run");
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--lr",
        "1e30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "became");
    let t = text(&o);
    assert!(t.contains("epoch 1, step"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_lists_every_option() {
    let o = tinygen(&["train", "--help"]);
    assert!(o.status.success());
    let t = text(&o);
    for flag in [
        "--data",
        "--epochs",
        "--seed",
        "--threads",
        "--out",
        "--batch-size",
        "--lr ",
        "--limit-train",
        "--limit-test",
        "--resume",
        "--beta",
        "--kl-warmup",
        "--likelihood",
        "--latent",
        "--hidden",
        "--loss",
        "--label-smoothing",
        "--lr-g",
        "--lr-d",
        "--d-steps",
        "--ema",
    ] {
        assert!(t.contains(flag), "--help lacks {flag}");
    }
}
