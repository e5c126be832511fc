//! The ONNX project's own node tests, imported and run in the runtime.
//!
//! `tools/onnx-node-cases.py DIR` writes the cases (`DIR/OP/CASE/model.onnx` and
//! `test_data_set_K/{input,output}_J.pb`); with `TINYGEN_ONNX_NODE_CASES=DIR` this test imports
//! every case, runs it and compares the first output with the expected one within `REL_TOL`
//! (relative to the largest expected value). A case that imports must match. A case that does
//! not import is skipped only when the importer reports a runtime [`Limit`] (batch > 1, group >
//! 1, dilations, ...: each one tested in `tests/import/errors.rs`); any other import error
//! fails. Most cases have a fixed batch above 1 (`[3, 4, 5]`): those are imported again with
//! the batch made symbolic and run sample by sample, and skipped as "batch > 1" only if that
//! import fails too. The per-operator table is printed (`cargo test ... -- --nocapture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tinygen_export::check::{max_diff, rel_err, CheckError};
use tinygen_export::import::{import_onnx, ImportOptions, Imported, Limit};
use tinygen_export::onnx::proto::{
    tensor_shape_proto::dimension, type_proto, ModelProto, TensorProto,
};
use tinygen_export::tgm::AlignedBytes;
use tinygen_export::OutputRange;
use tinygen_runtime::model::Model;

/// f32: the runtime against numpy's float32 (or float64 rounded) reference; different
/// summation orders give a few units of roundoff of the largest output.
const REL_TOL: f64 = 1e-5;
/// When every expected value is 0 a relative figure is vacuous: an absolute bound instead.
const ABS_TOL_AT_ZERO: f64 = 1e-6;

fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = TensorProto::decode(&bytes[..]).map_err(|e| format!("{}: {e}", path.display()))?;
    match t.data_type {
        1 if !t.raw_data.is_empty() => Ok(t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        1 => Ok(t.float_data),
        other => Err(format!(
            "{}: element type {other}, not float32",
            path.display()
        )),
    }
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

enum Outcome {
    Passed,
    /// A fixed batch above 1, run sample by sample.
    PassedPerSample,
    Skipped(String),
    Failed(String),
}

/// The model with every run-time input's and output's first dimension made symbolic, and
/// that dimension (the same in all of them), if it was a fixed size above 1.
fn symbolic_batch(onnx: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut m = ModelProto::decode(onnx).ok()?;
    let g = m.graph.as_mut()?;
    let weights: Vec<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    let mut batch = None;
    let values = g
        .input
        .iter_mut()
        .filter(|v| !weights.contains(&v.name))
        .chain(g.output.iter_mut());
    for v in values {
        let Some(type_proto::Value::TensorType(t)) =
            v.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            return None;
        };
        let first = t.shape.as_mut()?.dim.first_mut()?;
        let Some(dimension::Value::DimValue(n)) = first.value else {
            return None;
        };
        if batch.is_some_and(|b| b != n) || n <= 1 {
            return None;
        }
        batch = Some(n);
        first.value = Some(dimension::Value::DimParam("N".into()));
    }
    Some((m.encode_to_vec(), usize::try_from(batch?).ok()?))
}

fn run_case(case: &Path) -> Outcome {
    let onnx = match std::fs::read(case.join("model.onnx")) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("reading the model: {e}")),
    };
    // Node outputs have no range of their own.
    let opts = ImportOptions {
        output_range: Some(OutputRange::Unbounded),
        ..Default::default()
    };
    match import_onnx(&onnx, &opts) {
        Ok(imp) => run_imported(case, &imp, 1, Outcome::Passed),
        Err(e) => match e.limit() {
            // A fixed batch above 1: the runtime runs one sample, so the model with a symbolic
            // batch runs sample by sample, where the importer takes it (it refuses what mixes
            // the samples); the expected outputs decide.
            Some(Limit::Batch) => match symbolic_batch(&onnx) {
                None => Outcome::Skipped(Limit::Batch.describe().to_owned()),
                Some((m, n)) => match import_onnx(&m, &opts) {
                    Ok(imp) => run_imported(case, &imp, n, Outcome::PassedPerSample),
                    Err(e) => Outcome::Skipped(match e.limit() {
                        Some(l) => format!("batch > 1, and per sample: {l}"),
                        None => "batch > 1 (the op mixes the samples)".to_owned(),
                    }),
                },
            },
            Some(limit) => Outcome::Skipped(limit.describe().to_owned()),
            None => Outcome::Failed(format!("import: {e}")),
        },
    }
}

/// Runs every data set of `case` in the runtime, `batch` samples one after another.
fn run_imported(case: &Path, imp: &Imported, batch: usize, passed: Outcome) -> Outcome {
    let file = match imp.write_f32() {
        Ok(f) => AlignedBytes::new(&f),
        Err(e) => return Outcome::Failed(format!("writing the model file: {e}")),
    };
    let model = match Model::parse(&file) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(format!("parsing the model file: {e:?}")),
    };
    for set in sorted_dirs(case) {
        let inputs: Result<Vec<Vec<f32>>, String> = (0..imp.input_names.len())
            .map(|j| read_f32(&set.join(format!("input_{j}.pb"))))
            .collect();
        let (inputs, want) = match (inputs, read_f32(&set.join("output_0.pb"))) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => return Outcome::Failed(e),
        };
        let mut arena = vec![0u8; model.arena_bytes()];
        let m = model.output_len();
        let mut got = vec![f32::NAN; m * batch];
        for (b, out) in got.chunks_exact_mut(m).enumerate() {
            let sample = |x: &Vec<f32>| {
                let n = x.len() / batch;
                x.get(b * n..(b + 1) * n).unwrap_or_default().to_vec()
            };
            let run = match &inputs[..] {
                [z] => model.run(&sample(z), &mut arena, out),
                [z, c] => model.run_conditional(&sample(z), &sample(c), &mut arena, out),
                _ => return Outcome::Failed("more than two inputs".into()),
            };
            if let Err(e) = run {
                return Outcome::Failed(format!("running sample {b}: {e:?}"));
            }
        }
        let ok = match rel_err(&got, &want) {
            Ok(err) => err <= REL_TOL,
            Err(CheckError::VacuousReference) => max_diff(&got, &want).0 <= ABS_TOL_AT_ZERO,
            Err(e) => return Outcome::Failed(format!("{}: {e}", set.display())),
        };
        if !ok {
            return Outcome::Failed(format!(
                "{}: outputs differ (max |diff| {:e})",
                set.display(),
                max_diff(&got, &want).0
            ));
        }
    }
    passed
}

#[derive(Default)]
struct Row {
    passed: usize,
    per_sample: usize,
    skipped: BTreeMap<String, usize>,
    failed: Vec<String>,
}

#[test]
fn onnx_node_cases_import_and_match() {
    let Some(dir) = std::env::var_os("TINYGEN_ONNX_NODE_CASES") else {
        println!("onnx_node_cases: skipped (set TINYGEN_ONNX_NODE_CASES=DIR after running tools/onnx-node-cases.py DIR)");
        return;
    };
    let dir = PathBuf::from(dir);
    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    for op_dir in sorted_dirs(&dir) {
        let op = op_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let row = table.entry(op).or_default();
        for case in sorted_dirs(&op_dir) {
            let name = case
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match run_case(&case) {
                Outcome::Passed => row.passed += 1,
                Outcome::PassedPerSample => row.per_sample += 1,
                Outcome::Skipped(why) => *row.skipped.entry(why).or_default() += 1,
                Outcome::Failed(why) => row.failed.push(format!("{name}: {why}")),
            }
        }
    }
    assert!(!table.is_empty(), "no cases under {}", dir.display());
    println!("| operator | passed (batch 1) | passed (batch > 1, per sample) | skipped (reason: cases) | failed |");
    println!("|---|---|---|---|---|");
    for (op, row) in &table {
        let skipped: Vec<String> = row
            .skipped
            .iter()
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        println!(
            "| {op} | {} | {} | {} | {} |",
            row.passed,
            row.per_sample,
            skipped.join("; "),
            row.failed.len()
        );
    }
    let failed: Vec<&String> = table.values().flat_map(|r| &r.failed).collect();
    assert!(
        failed.is_empty(),
        "failed cases:\n{}",
        failed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
