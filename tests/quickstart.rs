//! The quickstart end to end, reduced (a thousand training images, one or two epochs): every
//! file it promises is there, every metric is finite, the exports pass the verification chain,
//! and training helped (the trained VAE's FD is below an untrained VAE's on the same latents).

use std::sync::atomic::AtomicBool;

use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;
use tinygen::eval::{self, device_latents, generate_unit, EvalReport, Reference, EVAL_DIR};
use tinygen::quickstart::{quickstart, Job, QuickstartOptions};
use tinygen_trainer::models::{Model, ModelKind};
use tinygen_trainer::train::read_config;

mod common;

#[test]
fn reduced_quickstart_writes_a_report_that_measures_something() {
    let out = common::scratch("quickstart");
    let mut opts = QuickstartOptions::new(&out);
    opts.jobs = vec![
        Job {
            kind: ModelKind::Dcgan,
            epochs: 1,
        },
        Job {
            kind: ModelKind::Vae,
            epochs: 3,
        },
        Job {
            kind: ModelKind::Gan,
            epochs: 1,
        },
    ];
    opts.limit_train = Some(1000);
    opts.limit_test = Some(400);
    opts.samples = 300;
    opts.iw_samples = 20;
    opts.iw_images = 50;
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let log = |s: &str| {
        if let Ok(mut l) = lines.lock() {
            l.push(s.to_owned());
        }
    };
    let s = quickstart(&opts, &AtomicBool::new(false), &log).expect("quickstart runs");
    let lines = lines.into_inner().expect("log");
    assert!(
        lines.iter().any(|l| l.starts_with("[classifier]")),
        "{lines:#?}"
    );

    // Files.
    assert_eq!(s.runs.len(), 3);
    for run in &s.runs {
        let kind = read_config(run).expect("config").model.kind;
        let stem = if kind.is_vae() {
            "decoder"
        } else {
            "generator"
        };
        for f in [
            format!("export/{stem}.onnx"),
            format!("export/{stem}.tgm"),
            format!("export/{stem}.int8.onnx"),
            format!("export/{stem}.int8.tgm"),
            "export/model.rs".into(),
            "export/export-report.md".into(),
            "runtime-f32.png".into(),
            "runtime-int8.png".into(),
            format!("{EVAL_DIR}/eval.json"),
            format!("{EVAL_DIR}/samples.png"),
            format!("{EVAL_DIR}/int8-samples.png"),
            format!("{EVAL_DIR}/nearest.png"),
            format!("{EVAL_DIR}/interpolation.png"),
        ] {
            assert!(run.join(&f).is_file(), "{} lacks {f}", run.display());
        }
        assert_eq!(
            EvalReport::load(run).expect("eval.json parses"),
            s.evals[s.runs.iter().position(|r| r == run).expect("run")]
        );
    }
    let html = std::fs::read_to_string(&s.report_html).expect("report.html");
    let md = std::fs::read_to_string(&s.report_md).expect("report.md");
    assert!(html.contains("data:image/png;base64,") && html.contains("<svg"));
    // Self-contained: every image is inline.
    assert_eq!(
        html.matches("src=\"").count(),
        html.matches("src=\"data:image/png;base64,").count()
    );
    for kind in ["vae", "dcgan", "gan"] {
        assert!(md.contains(&format!("{kind}-samples.png")), "{md}");
        assert!(s
            .report_md
            .with_file_name(format!("{kind}-samples.png"))
            .is_file());
    }
    assert!(s.report_md.with_file_name("losses.svg").is_file());
    assert!(s.report_md.with_file_name("precision-recall.svg").is_file());

    // The verification chain passed on every export.
    assert!(s.verify_judged >= 6, "{} links", s.verify_judged);
    assert_eq!(s.verify_failed, 0);

    // Every metric finite and in range.
    for e in &s.evals {
        for m in std::iter::once(&e.float).chain(e.int8.as_ref()) {
            assert!(m.fd.is_finite() && m.fd >= 0.0, "{e:?}");
            assert!((0.0..=1.0).contains(&m.precision) && (0.0..=1.0).contains(&m.recall));
            assert!(m.class_kl.is_finite() && m.class_kl >= 0.0);
            assert!(m.coverage <= m.classes && m.classes == 10);
            assert!(m.nearest_train_ratio.is_finite() && m.nearest_train_ratio > 0.0);
        }
        assert!(e.int8.is_some(), "{} has an int8 export", e.kind);
        assert!(e.fd_floor.is_finite() && e.fd_floor >= 0.0);
        assert!(e.device.macs > 0 && e.device.int8_bytes < e.device.f32_bytes);
    }
    let vae = s.evals.iter().find(|e| e.kind == "vae").expect("a VAE");
    let v = vae.vae.as_ref().expect("VAE likelihood");
    let nll: Vec<f64> = v.iw_nll.iter().map(|p| p.1).collect();
    assert!(nll.iter().all(|x| x.is_finite()));
    assert!(*nll.last().expect("k") <= v.elbo_loss, "{v:?}");
    assert!(v.active_units <= v.latent && v.latent == 20);

    // Training helped: an untrained VAE of the same recipe, on the same latents, is further
    // from the held-out images.
    let cfg = read_config(&s.runs[1]).expect("vae config");
    let splits = cfg.load_data().expect("data");
    let mut classifier =
        eval::load_classifier(&out.join("classifiers"), &splits, &mut |_: &str| {})
            .expect("the cached classifier loads");
    let reference = Reference::new(&mut classifier, &splits, opts.samples).expect("reference");
    let mut untrained =
        Model::new(&cfg.model, &mut Xoshiro256PlusPlus::seed_from_u64(99)).expect("model");
    let z = device_latents(opts.seed, reference.images.nrows(), cfg.model.latent);
    let x = generate_unit(&mut untrained, z.view());
    let fd_untrained = reference.measure(&mut classifier, x.view()).fd;
    assert!(
        vae.float.fd < fd_untrained,
        "trained VAE FD {} vs untrained {fd_untrained}",
        vae.float.fd
    );
    let _ = std::fs::remove_dir_all(&out);
}
