//! The ONNX project's own node tests, imported and run in the runtime.
//!
//! `tools/onnx-node-cases.py DIR` writes the cases (`DIR/OP/CASE/model.onnx` and
//! `test_data_set_K/{input,output}_J.pb`); with `TINYGEN_ONNX_NODE_CASES=DIR` this test imports
//! every case, runs it and compares the first output with the expected one within `REL_TOL`
//! (relative to the largest expected value). A case that imports must match. A case that does
//! not import is skipped only when the importer reports a runtime [`Limit`] (batch > 1, group >
//! 1, dilations, ...: each one tested in `tests/import/errors.rs`); any other import error
//! fails. The per-operator table is printed (`cargo test ... -- --nocapture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tinygen_export::check::{max_diff, rel_err, CheckError};
use tinygen_export::import::{import_onnx, ImportOptions};
use tinygen_export::onnx::proto::TensorProto;
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
    Skipped(String),
    Failed(String),
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
    let imp = match import_onnx(&onnx, &opts) {
        Ok(imp) => imp,
        Err(e) => {
            return match e.limit() {
                Some(limit) => Outcome::Skipped(limit.describe().to_owned()),
                None => Outcome::Failed(format!("import: {e}")),
            }
        }
    };
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
        let mut got = vec![f32::NAN; model.output_len()];
        let run = match &inputs[..] {
            [z] => model.run(z, &mut arena, &mut got),
            [z, c] => model.run_conditional(z, c, &mut arena, &mut got),
            _ => return Outcome::Failed("more than two inputs".into()),
        };
        if let Err(e) = run {
            return Outcome::Failed(format!("running: {e:?}"));
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
    Outcome::Passed
}

#[derive(Default)]
struct Row {
    passed: usize,
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
                Outcome::Skipped(why) => *row.skipped.entry(why).or_default() += 1,
                Outcome::Failed(why) => row.failed.push(format!("{name}: {why}")),
            }
        }
    }
    assert!(!table.is_empty(), "no cases under {}", dir.display());
    println!("| operator | passed | skipped (reason: cases) | failed |");
    println!("|---|---|---|---|");
    for (op, row) in &table {
        let skipped: Vec<String> = row
            .skipped
            .iter()
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        println!(
            "| {op} | {} | {} | {} |",
            row.passed,
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
