//! `tinygen eval` on model files: an export folder and a model file judged against a data set
//! give the sample metrics of the run they came from, and each kind of bad input gets a clear
//! error.

use std::path::Path;

use tinygen::eval::{EvalReport, FileEvalReport, SampleMetrics};

mod common;
use common::{assert_clean_failure, scratch, text, tinygen};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn ok(args: &[&str]) -> String {
    let o = tinygen(args);
    assert!(o.status.success(), "tinygen {args:?} failed:\n{}", text(&o));
    text(&o)
}

fn assert_finite(m: &SampleMetrics, what: &str) {
    for (name, v) in [
        ("FD", m.fd),
        ("precision", m.precision),
        ("recall", m.recall),
    ] {
        assert!(v.is_finite(), "{what} {name} is {v}");
    }
    assert!((0.0..=1.0).contains(&m.precision) && (0.0..=1.0).contains(&m.recall));
}

#[test]
fn an_export_folder_is_evaluated_like_its_run() {
    let dir = scratch("eval-files");
    let run = dir.join("vae");
    // The whole built-in digits (no --limit-test), so the run and --data builtin:digits
    // compare with the same held-out images. Ten epochs (under a second) leave most latent
    // units active; after two the VAE draws one blurred digit and recall is 0 on both sides.
    ok(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "10",
        "--out",
        s(&run),
    ]);
    ok(&["export", s(&run), "--int8"]);
    let export = run.join("export");
    let classifiers = dir.join("classifiers");

    // The run, then its export folder on the same data, latents and cached classifier.
    ok(&[
        "eval",
        s(&run),
        "--samples",
        "200",
        "--iw-samples",
        "5",
        "--iw-images",
        "20",
    ]);
    let from_run = EvalReport::load(&run).expect("the run's eval.json");
    let out = ok(&[
        "eval",
        s(&export),
        "--data",
        "builtin:digits",
        "--samples",
        "200",
        "--classifier-dir",
        s(&classifiers),
    ]);
    assert!(out.contains("not available for a model file"), "{out}");
    let eval_dir = export.join("eval");
    let from_files = FileEvalReport::load(&eval_dir).expect("the export's eval.json");
    assert!(
        from_files.model.ends_with("decoder.tgm"),
        "{}",
        from_files.model
    );
    assert!(
        from_files
            .int8_file
            .as_deref()
            .is_some_and(|f| f.ends_with("decoder.int8.tgm")),
        "{:?}",
        from_files.int8_file
    );
    let int8 = from_files
        .int8
        .as_ref()
        .expect("the int8 twin is evaluated");
    assert_finite(&from_files.float, "f32 file");
    assert_finite(int8, "int8 file");
    for f in [
        "samples.png",
        "int8-samples.png",
        "nearest.png",
        "interpolation.png",
    ] {
        assert!(eval_dir.join(f).is_file(), "{f} missing");
    }
    // The likelihood figures are absent, and the JSON says so rather than holding a number.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(eval_dir.join("eval.json")).expect("eval.json"),
    )
    .expect("JSON");
    assert!(json["vae"].is_null() && json["flow"].is_null(), "{json}");
    assert!(
        json["likelihood"]
            .as_str()
            .is_some_and(|s| s.contains("need the trained model")),
        "{json}"
    );

    // Same reference: the held-out images and the classifier are the run's.
    assert_eq!(from_files.samples, from_run.samples);
    assert_eq!(from_files.classifier, from_run.classifier);
    assert!(
        (from_files.fd_floor - from_run.fd_floor).abs() <= 1e-12 * from_run.fd_floor.abs(),
        "FD floor {} vs {}",
        from_files.fd_floor,
        from_run.fd_floor
    );
    // int8: the same model file run by the same runtime on the same latents, so the same
    // pixels and the same figures (up to the last bit of the f64 sums, which see the same
    // inputs in the same order).
    let run_int8 = from_run.int8.as_ref().expect("the run's int8 figures");
    assert!(
        (int8.fd - run_int8.fd).abs() <= 1e-9 * run_int8.fd.abs(),
        "int8 FD {} vs {}",
        int8.fd,
        run_int8.fd
    );
    assert_eq!(
        (int8.precision, int8.recall, int8.coverage),
        (run_int8.precision, run_int8.recall, run_int8.coverage)
    );
    // Float: the run draws with the trainer and the file path with the runtime's f32 file, the
    // same network adding the same products in other orders: pixels a few f32 roundoffs
    // (about 1e-7) apart. FD moves by as little (measured: 1e-8 relative); a sample or
    // held-out image can only change sides of a k-NN radius if it lies within that distance of
    // the edge, which none of 200 does, so precision and recall agree exactly.
    let (a, b) = (&from_files.float, &from_run.float);
    assert!(
        b.precision > 0.0 && b.recall > 0.0,
        "a model with no precision or recall would make the comparison empty: {b:?}"
    );
    assert!(
        (a.fd - b.fd).abs() <= 1e-6 * b.fd.abs(),
        "float FD of the file {} vs the run {}",
        a.fd,
        b.fd
    );
    assert_eq!(
        (a.precision, a.recall, a.coverage),
        (b.precision, b.recall, b.coverage)
    );

    // The f32 file by name, without its twin, into another folder.
    let single = dir.join("single");
    ok(&[
        "eval",
        s(&export.join("decoder.tgm")),
        "--data",
        "builtin:digits",
        "--samples",
        "200",
        "--classifier-dir",
        s(&classifiers),
        "--no-int8",
        "--out",
        s(&single),
    ]);
    let one = FileEvalReport::load(&single).expect("eval.json in --out");
    assert!(one.int8.is_none() && one.int8_file.is_none());
    assert!(
        (one.float.fd - from_files.float.fd).abs() <= 1e-12 * from_files.float.fd.abs(),
        "the same file twice: FD {} vs {}",
        one.float.fd,
        from_files.float.fd
    );

    // Bad input: each error names the file or flag and what to do.
    let o = tinygen(&["eval", s(&export)]);
    assert_clean_failure(&o, &["is not a run folder", "config.json", "--data"]);
    let o = tinygen(&["eval", s(&export.join("decoder.tgm"))]);
    assert_clean_failure(&o, &["decoder.tgm", "is a model file", "--data"]);
    let o = tinygen(&["eval", s(&run), "--data", "builtin:digits"]);
    assert_clean_failure(&o, &["--data builtin:digits", "is a run folder"]);
    let o = tinygen(&["eval", s(&run), "--out", s(&dir.join("x"))]);
    assert_clean_failure(&o, &["--out", "a run folder is evaluated into"]);
    let o = tinygen(&[
        "eval",
        s(&export.join("decoder.int8.tgm")),
        "--data",
        "builtin:digits",
    ]);
    assert_clean_failure(&o, &["is an int8 model file", "decoder.tgm"]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("folder");
    let o = tinygen(&["eval", s(&empty), "--data", "builtin:digits"]);
    assert_clean_failure(&o, &["empty", "neither a run folder", "NAME.tgm"]);
    let two = dir.join("two");
    std::fs::create_dir_all(&two).expect("folder");
    for name in ["decoder.tgm", "other.tgm"] {
        std::fs::copy(export.join("decoder.tgm"), two.join(name)).expect("copy");
    }
    let o = tinygen(&["eval", s(&two), "--data", "builtin:digits"]);
    assert_clean_failure(
        &o,
        &["several generator model files", "decoder.tgm, other.tgm"],
    );
    // 8x8 digits against 28x28 MNIST: refused before any classifier is trained.
    let o = tinygen(&["eval", s(&export), "--data", "builtin:mnist"]);
    assert_clean_failure(
        &o,
        &["decoder.tgm", "64 values", "1x28x28", "builtin:mnist"],
    );
    let o = tinygen(&[
        "eval",
        s(&dir.join("missing.tgm")),
        "--data",
        "builtin:digits",
    ]);
    assert_clean_failure(&o, &["missing.tgm", "does not exist"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GAN's generator draws in `[-1, 1]` (tanh): the model file's output range maps it to
/// pixels, so the file path agrees with the run, which maps the trainer's outputs itself.
#[test]
fn a_tanh_generator_file_maps_its_outputs_like_the_run() {
    let dir = scratch("eval-files-gan");
    let run = dir.join("gan");
    ok(&[
        "train",
        "gan",
        "--data",
        "builtin:digits",
        "--epochs",
        "3",
        "--out",
        s(&run),
    ]);
    ok(&["export", s(&run), "--int8"]);
    ok(&["eval", s(&run), "--samples", "200"]);
    let from_run = EvalReport::load(&run).expect("the run's eval.json");
    let export = run.join("export");
    ok(&[
        "eval",
        s(&export),
        "--data",
        "builtin:digits",
        "--samples",
        "200",
        "--classifier-dir",
        s(&dir.join("classifiers")),
    ]);
    let from_files = FileEvalReport::load(&export.join("eval")).expect("the export's eval.json");
    assert!(
        from_files.model.ends_with("generator.tgm"),
        "{}",
        from_files.model
    );
    // As for the VAE: f32 roundoff apart (measured 1e-7 relative), the int8 file the same.
    let (a, b) = (&from_files.float, &from_run.float);
    assert!(b.precision > 0.0 && b.recall > 0.0, "{b:?}");
    assert!(
        (a.fd - b.fd).abs() <= 1e-6 * b.fd.abs(),
        "float FD of the file {} vs the run {}",
        a.fd,
        b.fd
    );
    assert_eq!(
        (a.precision, a.recall, a.coverage),
        (b.precision, b.recall, b.coverage)
    );
    let (q, rq) = (
        from_files.int8.as_ref().expect("int8 of the file"),
        from_run.int8.as_ref().expect("int8 of the run"),
    );
    assert_finite(q, "int8 file");
    assert!(
        (q.fd - rq.fd).abs() <= 1e-9 * rq.fd.abs(),
        "int8 FD {} vs {}",
        q.fd,
        rq.fd
    );
    let _ = std::fs::remove_dir_all(&dir);
}
