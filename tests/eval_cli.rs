//! `tinygen eval` and `tinygen compare` from the command line on a tiny run (8x8 digits): what
//! they write, and a clear error for each kind of bad input.

use std::path::Path;

use tinygen::eval::{self, EvalOptions, Reference};
use tinygen::files;

mod common;
use common::{assert_clean_failure, scratch, text, tinygen};

fn ok(args: &[&str]) -> String {
    let o = tinygen(args);
    assert!(o.status.success(), "tinygen {args:?} failed:\n{}", text(&o));
    text(&o)
}

#[test]
fn eval_and_compare_write_their_files_and_refuse_bad_input() {
    let dir = scratch("eval-cli");
    let run = dir.join("vae");
    let run_s = run.to_str().expect("utf-8 path");
    ok(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--out",
        run_s,
    ]);
    ok(&["export", run_s, "--int8"]);

    // Bad input: each error names the flag or the file and what to do.
    let o = tinygen(&["eval", run_s, "--iw-samples", "0"]);
    assert_clean_failure(&o, &["--iw-samples 0", "between 1 and 5000"]);
    let export = run.join("export");
    let o = tinygen(&["eval", export.to_str().expect("utf-8")]);
    assert_clean_failure(&o, &["is not a run folder", "config.json"]);
    let o = tinygen(&[
        "compare",
        run_s,
        "--out",
        dir.join("r").to_str().expect("utf-8"),
    ]);
    assert_clean_failure(&o, &["eval.json", "tinygen eval"]);
    let o = tinygen(&["eval", dir.join("missing").to_str().expect("utf-8")]);
    assert_clean_failure(&o, &["does not exist"]);

    // A real evaluation: the classifier is trained once, then reused.
    let args = [
        "eval",
        run_s,
        "--samples",
        "200",
        "--iw-samples",
        "20",
        "--iw-images",
        "50",
    ];
    let first = ok(&args);
    let second = ok(&args);
    let eval_json = run.join("eval/eval.json");
    let report = tinygen::eval::EvalReport::load(&run).expect("eval.json");
    assert!(eval_json.is_file());
    assert_eq!(report.samples, 200);
    assert!(report.int8.is_some(), "the run has an int8 export");
    assert!(report.vae.is_some());
    // The first run trains the classifier, the second loads it without training.
    assert!(
        first.contains("classifier epoch 1/") && !first.contains("evaluation classifier: loaded"),
        "{first}"
    );
    assert!(
        second.contains("evaluation classifier: loaded") && !second.contains("classifier epoch"),
        "the second run reuses the cached classifier:\n{second}"
    );
    let out = dir.join("report");
    ok(&["compare", run_s, "--out", out.to_str().expect("utf-8")]);
    for f in [
        "report.html",
        "report.md",
        "losses.svg",
        "precision-recall.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // A classifier for another image size is refused by name, not run on the wrong pixels.
    let splits = tinygen_trainer::data::load(Some(Path::new("builtin:digits"))).expect("digits");
    let mut classifier =
        eval::load_classifier(&dir.join("classifiers"), &splits, &mut |_: &str| {})
            .expect("the cached 8x8 classifier");
    let reference = Reference::new(&mut classifier, &splits, 100).expect("reference");
    let mnist_run = dir.join("vae28");
    ok(&[
        "train",
        "vae",
        "--epochs",
        "1",
        "--limit-train",
        "256",
        "--limit-test",
        "64",
        "--out",
        mnist_run.to_str().expect("utf-8"),
    ]);
    let (cfg, mut model) = files::open_run(&mnist_run).expect("28x28 run");
    let mnist = cfg.load_data().expect("built-in MNIST");
    let err = eval::evaluate_loaded(
        &EvalOptions::new(&mnist_run),
        &cfg,
        &mut model,
        &mnist,
        &mut classifier,
        &reference,
        &mut |_: &str| {},
        std::time::Instant::now(),
    )
    .expect_err("an 8x8 classifier cannot judge 28x28 images");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("28x28") && msg.contains("8x8") && msg.contains("vae28"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
