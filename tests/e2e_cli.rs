//! `tinygen export`, `verify` and `sample` as a user runs them: the files they write, a passing
//! verification, and clear failures (non-zero exit, a message naming the file and the problem,
//! never a panic) on bad input.

mod common;

use std::path::Path;

use common::*;
use tinygen_export::tgm::AlignedBytes;
use tinygen_runtime::model::{Model, Precision};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Trains a small VAE through the command line (two steps of 64 built-in 8x8 digits).
fn train_cli(run: &Path) {
    let o = tinygen(&[
        "train",
        "vae",
        "--data",
        "builtin:digits",
        "--epochs",
        "1",
        "--limit-train",
        "128",
        "--limit-test",
        "64",
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--hidden",
        "64",
        "--out",
        s(run),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The third family end to end: a small flow trained by the command line exports its
/// generator (a graph with branches) as ONNX and a model file, which verify against tract and
/// sample through the runtime; int8 with power-of-two scales (free scales refused).
#[test]
fn train_export_verify_and_sample_a_flow() {
    let dir = scratch("cli-flow");
    let run = dir.join("run");
    let o = tinygen(&[
        "train",
        "flow",
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--limit-train",
        "256",
        "--limit-test",
        "64",
        "--couplings",
        "4",
        "--hidden",
        "32",
        "--temperature",
        "0.5",
        "--threads",
        "1",
        "--out",
        s(&run),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("bits_per_dim"), "{t}");
    for f in ["samples.png", "samples_temperature.png"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }

    let out = dir.join("export");
    let o = tinygen(&[
        "export",
        s(&run),
        "--out",
        s(&out),
        "--int8",
        "--free-scales",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("power-of-two scales only"),
        "{}",
        text(&o)
    );

    let o = tinygen(&[
        "export",
        s(&run),
        "--out",
        s(&out),
        "--int8",
        "--calib",
        "128",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("PSNR"), "{}", text(&o));
    for f in [
        "generator.onnx",
        "generator.tgm",
        "generator.int8.onnx",
        "generator.int8.tgm",
        "model.rs",
        "export-report.md",
    ] {
        assert!(out.join(f).is_file(), "{f} missing:\n{}", text(&o));
    }
    let bytes = AlignedBytes::new(&std::fs::read(out.join("generator.tgm")).unwrap());
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.latent_len(), 64);
    assert_eq!(
        m.output_range(),
        tinygen_runtime::model::OutputRange::ZeroOne
    );

    let report = std::fs::read_to_string(out.join("export-report.md")).unwrap();
    assert!(report.contains("## int8 vs f32"), "{report}");
    let bytes = AlignedBytes::new(&std::fs::read(out.join("generator.int8.tgm")).unwrap());
    let q = Model::parse(&bytes).unwrap();
    assert_eq!(q.output_range(), m.output_range());

    let o = tinygen(&["verify", s(&out), "--n", "16", "--run", s(&run)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for link in [
        "runtime f32 vs tract float64",
        "runtime f32 vs tract ",
        "trainer f32 vs tract float64",
        "runtime int8 vs tract",
    ] {
        assert!(t.contains(link), "verify lacks {link:?}:\n{t}");
    }
    assert!(!t.contains("FAIL"), "{t}");

    let png = dir.join("samples.png");
    let o = tinygen(&[
        "sample",
        s(&out.join("generator.tgm")),
        "--n",
        "4",
        "--png",
        s(&png),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    // eval: the sample metrics beside the exact likelihood.
    let o = tinygen(&["eval", s(&run)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("exact likelihood") && t.contains("bits/dim"),
        "{t}"
    );
    let json = std::fs::read_to_string(run.join("eval").join("eval.json")).unwrap();
    assert!(json.contains("\"bits_per_dim\""), "{json}");

    // The exported ONNX as a model from elsewhere: `tinygen import` rebuilds the model file from
    // it alone and checks it against tract on the ONNX.
    let imported = dir.join("imported");
    let onnx = out.join("generator.onnx");
    let o = tinygen(&["import", s(&onnx), "--out", s(&imported)]);
    assert!(
        !o.status.success(),
        "no final sigmoid: the range must be given"
    );
    assert!(
        text(&o).contains("output-range") || text(&o).contains("output range"),
        "{}",
        text(&o)
    );
    let o = tinygen(&[
        "import",
        s(&onnx),
        "--out",
        s(&imported),
        "--output-range",
        "zero-one",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("verified: runtime f32 vs tract-onnx"), "{t}");
    let a = std::fs::read(out.join("generator.tgm")).unwrap();
    let b = std::fs::read(imported.join("generator.tgm")).unwrap();
    let (a, b) = (AlignedBytes::new(&a), AlignedBytes::new(&b));
    let (ma, mb) = (Model::parse(&a).unwrap(), Model::parse(&b).unwrap());
    assert_eq!(
        (ma.latent_len(), ma.output_len()),
        (mb.latent_len(), mb.output_len())
    );
    let o = tinygen(&["verify", s(&imported), "--n", "8"]);
    assert!(o.status.success(), "{}", text(&o));

    // And its int8 model, checked against its QDQ graph bit for bit before the command returns.
    let o = tinygen(&[
        "import",
        s(&onnx),
        "--out",
        s(&imported),
        "--output-range",
        "zero-one",
        "--int8",
        "--calib",
        "64",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("values differ (bit-exact)"), "{t}");
    assert!(imported.join("generator.int8.tgm").is_file());
    let rs = std::fs::read_to_string(imported.join("model.rs")).unwrap();
    assert!(rs.contains("pub mod generator_int8"), "{rs}");

    // Not an ONNX file: a clear error naming it.
    let o = tinygen(&["import", s(&out.join("model.rs")), "--out", s(&imported)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("model.rs"), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
}

#[test]
fn export_verify_and_sample_a_trained_vae() {
    let dir = scratch("cli-vae");
    let run = dir.join("run");
    train_cli(&run);
    let out = dir.join("export");
    let o = tinygen(&[
        "export",
        s(&run),
        "--out",
        s(&out),
        "--int8",
        "--calib",
        "200",
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("PSNR"), "{}", text(&o));
    for f in [
        "decoder.onnx",
        "decoder.tgm",
        "decoder.int8.onnx",
        "decoder.int8.tgm",
        "model.rs",
        "export-report.md",
    ] {
        assert!(out.join(f).is_file(), "{f} missing:\n{}", text(&o));
    }
    // model.rs states the arena each file needs, as the runtime computes it.
    let rs = std::fs::read_to_string(out.join("model.rs")).unwrap();
    for (module, file, precision) in [
        ("decoder", "decoder.tgm", Precision::F32),
        ("decoder_int8", "decoder.int8.tgm", Precision::Int8),
    ] {
        let bytes = AlignedBytes::new(&std::fs::read(out.join(file)).unwrap());
        let m = Model::parse(&bytes).unwrap();
        assert_eq!(m.precision(), precision);
        let block = rs
            .split(&format!("pub mod {module} {{"))
            .nth(1)
            .expect("module in model.rs");
        assert!(
            block.contains(&format!(
                "pub const ARENA_BYTES: usize = {};",
                m.arena_bytes()
            )),
            "{rs}"
        );
        assert!(
            block.contains(&format!(
                "pub const LATENT_LEN: usize = {};",
                m.latent_len()
            )),
            "{rs}"
        );
    }
    let report = std::fs::read_to_string(out.join("export-report.md")).unwrap();
    for needle in [
        "PSNR",
        "200 calibration inputs",
        "seed 3",
        "multipliers",
        "arena bytes",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }

    let o = tinygen(&["verify", s(&out), "--n", "16", "--run", s(&run)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for link in [
        "runtime f32 vs tract",
        "runtime int8 vs tract",
        "trainer f32 vs tract",
    ] {
        assert!(t.contains(link), "verify lacks {link:?}:\n{t}");
    }
    assert!(!t.contains("FAIL"), "{t}");

    let png = dir.join("samples.png");
    let o = tinygen(&[
        "sample",
        s(&out.join("decoder.int8.tgm")),
        "--seed",
        "5",
        "--n",
        "12",
        "--cols",
        "4",
        "--png",
        s(&png),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // 4 columns x 3 rows of 8x8 digits upscaled 3x (24 px) with 1 px padding: 101 x 76.
    let (w, h) = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (4 * 24 + 5, 3 * 24 + 4));
    // Same seed, same image (the device's sampler is deterministic).
    let png2 = dir.join("again.png");
    let o = tinygen(&[
        "sample",
        s(&out.join("decoder.int8.tgm")),
        "--seed",
        "5",
        "--n",
        "12",
        "--cols",
        "4",
        "--png",
        s(&png2),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&png2).unwrap(), bytes);

    // An encoder exports too (float and int8), and verifies.
    let enc = dir.join("encoder");
    let o = tinygen(&[
        "export",
        s(&run),
        "--part",
        "encoder",
        "--out",
        s(&enc),
        "--int8",
        "--calib",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(enc.join("encoder.int8.tgm").is_file());
    let o = tinygen(&["verify", s(&enc), "--n", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    // A VAE has no discriminator.
    let o = tinygen(&[
        "export",
        s(&run),
        "--part",
        "discriminator",
        "--out",
        s(&dir.join("d")),
    ]);
    assert_clean_failure(&o, &["has no discriminator", "encoder"]);

    // Free scales: exported and reported, the int8 link is not claimed bit-exact.
    let free = dir.join("free");
    let o = tinygen(&[
        "export",
        s(&run),
        "--out",
        s(&free),
        "--int8",
        "--free-scales",
        "--calib",
        "64",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tinygen(&["verify", s(&free), "--n", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(free)"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = scratch("cli-bad");
    let missing = dir.join("no-such-run");
    let o = tinygen(&["export", s(&missing)]);
    assert_clean_failure(&o, &["no-such-run", "does not exist"]);

    let not_a_run = dir.join("not-a-run");
    std::fs::create_dir_all(&not_a_run).unwrap();
    std::fs::write(not_a_run.join("notes.txt"), "hello").unwrap();
    let o = tinygen(&["export", s(&not_a_run)]);
    assert_clean_failure(&o, &["not-a-run", "is not a run folder", "config.json"]);

    let run = dir.join("run");
    train_cli(&run);
    let o = tinygen(&["export", s(&run), "--int8", "--calib", "0"]);
    assert_clean_failure(&o, &["calibration set is empty"]);

    // A checkpoint from another model: config.json says gan, the checkpoint holds a vae.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        run.join("checkpoint.safetensors"),
        other.join("checkpoint.safetensors"),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(run.join("config.json")).unwrap();
    std::fs::write(
        other.join("config.json"),
        cfg.replacen("\"vae\"", "\"gan\"", 1),
    )
    .unwrap();
    let o = tinygen(&["export", s(&other)]);
    assert_clean_failure(&o, &["other", "vae"]);

    // Corrupt model files: one flipped byte (checksum), and a truncated file.
    let out = dir.join("export");
    let o = tinygen(&[
        "export",
        s(&run),
        "--out",
        s(&out),
        "--int8",
        "--calib",
        "16",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let good = std::fs::read(out.join("decoder.int8.tgm")).unwrap();
    let flipped = dir.join("flipped.tgm");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&flipped, &bad).unwrap();
    let png = dir.join("never.png");
    let o = tinygen(&["sample", s(&flipped), "--png", s(&png)]);
    assert_clean_failure(&o, &["flipped.tgm", "checksum"]);
    assert!(!png.exists());
    let truncated = dir.join("truncated.tgm");
    std::fs::write(&truncated, &good[..40]).unwrap();
    let o = tinygen(&["sample", s(&truncated), "--png", s(&png)]);
    assert_clean_failure(&o, &["truncated.tgm", "not a valid model file"]);
    let o = tinygen(&["sample", s(&dir.join("absent.tgm")), "--png", s(&png)]);
    assert_clean_failure(&o, &["absent.tgm"]);

    // verify names the corrupt file in the export folder.
    std::fs::write(out.join("decoder.int8.tgm"), &bad).unwrap();
    let o = tinygen(&["verify", s(&out)]);
    assert_clean_failure(&o, &["decoder.int8.tgm", "checksum"]);
    let o = tinygen(&["verify", s(&dir.join("nothing-here"))]);
    assert_clean_failure(&o, &["nothing-here"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// A generator whose ONNX latent is image-shaped (`[N, 8, 1, 1]`, as a convolutional
/// generator's often is), flattened before a Gemm: `import` and `verify` both feed tract the
/// ONNX's own input shape, and the model file takes the 8 values.
#[test]
fn import_and_verify_a_generator_with_an_image_shaped_latent() {
    use prost::Message;
    use tinygen_export::onnx::proto::{
        tensor_shape_proto::{dimension, Dimension},
        type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
        OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    let dir = scratch("cli-image-latent");
    let info = |name: &str, dims: Vec<Option<i64>>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|d| Dimension {
                            denotation: String::new(),
                            value: Some(match d {
                                Some(v) => dimension::Value::DimValue(v),
                                None => dimension::Value::DimParam("N".into()),
                            }),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    };
    let init = |name: &str, dims: &[i64], v: Vec<f32>| TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    };
    let node = |op: &str, input: &[&str], out: &str, attribute| NodeProto {
        input: input.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![out.into()],
        name: out.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    };
    let axis = AttributeProto {
        name: "axis".into(),
        i: Some(1),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    };
    let trans_b = AttributeProto {
        name: "transB".into(),
        i: Some(1),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![
                node("Flatten", &["z"], "flat", vec![axis]),
                node("Gemm", &["flat", "w", "b"], "y", vec![trans_b]),
                node("Sigmoid", &["y"], "x", vec![]),
            ],
            initializer: vec![
                init(
                    "w",
                    &[16, 8],
                    (0..128)
                        .map(|i| ((i * 37 % 19) as f32 - 9.0) * 0.05)
                        .collect(),
                ),
                init("b", &[16], (0..16).map(|i| i as f32 * 0.01).collect()),
            ],
            input: vec![info("z", vec![None, Some(8), Some(1), Some(1)])],
            output: vec![info("x", vec![None, Some(16)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let onnx = dir.join("gen.onnx");
    std::fs::write(&onnx, model.encode_to_vec()).unwrap();
    let out = dir.join("imported");
    let o = tinygen(&[
        "import",
        s(&onnx),
        "--out",
        s(&out),
        "--int8",
        "--calib",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = AlignedBytes::new(&std::fs::read(out.join("gen.tgm")).unwrap());
    assert_eq!(Model::parse(&bytes).unwrap().latent_len(), 8);
    let o = tinygen(&["verify", s(&out), "--n", "8"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("runtime f32 vs tract float64"), "{t}");
    assert!(!t.contains("FAIL"), "{t}");
}
