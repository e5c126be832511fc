//! Validation cases: an ONNX model with inputs and expected outputs, written for an independent
//! checker (`tools/validate_onnx.py` runs the official ONNX checker and onnxruntime on them).
//!
//! A case `NAME` in a directory is the files
//! - `NAME.onnx`: the model;
//! - `NAME.case.json`: `{"format": "tinygen-onnx-case/1", "model": "NAME.onnx", "inputs": [...],
//!   "outputs": [...]}`, each tensor `{"name", "dtype" ("float32" or "int8"), "shape", "file"}`;
//! - `NAME.in{k}.bin`, `NAME.out{k}.bin`: the values, raw little-endian, row-major.
//!
//! Outputs are matched by name against the model's graph outputs; a model may have more outputs
//! than the case lists.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a case was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    /// The case name is not a plain file stem.
    #[error(
        "validation case name {0:?} is not a plain file stem (letters, digits, `_`, `-`, `.`)"
    )]
    Name(String),
    /// A tensor's number of values does not match its shape.
    #[error("{what}: {got} values for shape {dims:?}")]
    TensorLength {
        /// Which tensor.
        what: String,
        /// Its number of values.
        got: usize,
        /// Its shape.
        dims: Vec<usize>,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Values of a case tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// 32-bit floats (compared within a relative tolerance by the checker).
    F32(Vec<f32>),
    /// Signed bytes (compared exactly by the checker).
    I8(Vec<i8>),
}

impl TensorData {
    fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I8(v) => v.len(),
        }
    }

    fn dtype(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "float32",
            TensorData::I8(_) => "int8",
        }
    }

    fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I8(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// A named input or expected output of a validation case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTensor {
    /// Graph input or output name.
    pub name: String,
    /// Full shape, batch first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: TensorData,
}

impl CaseTensor {
    /// A float tensor.
    pub fn f32(name: &str, dims: &[usize], data: Vec<f32>) -> Self {
        CaseTensor {
            name: name.into(),
            dims: dims.to_vec(),
            data: TensorData::F32(data),
        }
    }

    /// An int8 tensor.
    pub fn i8(name: &str, dims: &[usize], data: Vec<i8>) -> Self {
        CaseTensor {
            name: name.into(),
            dims: dims.to_vec(),
            data: TensorData::I8(data),
        }
    }
}

/// Writes the case `name` (model, inputs, expected outputs and the JSON description) into `dir`,
/// creating `dir` if needed. Returns the path of `NAME.case.json`.
///
/// `name` must be a plain file name stem (letters, digits, `_`, `-`, `.`).
pub fn write_validation_case(
    dir: &Path,
    name: &str,
    onnx: &[u8],
    inputs: &[CaseTensor],
    expected: &[CaseTensor],
) -> Result<PathBuf, CaseError> {
    write_case(dir, name, onnx, inputs, expected, false)
}

/// As [`write_validation_case`], for a QDQ graph whose every `QuantizeLinear` /
/// `DequantizeLinear` pair must round as the ONNX operators define: the checker runs it in
/// onnxruntime with graph optimizations off (its fusions of QDQ element-wise ops into quantized
/// kernels round differently) and reports what the optimized session gives beside it.
pub fn write_validation_case_unoptimized(
    dir: &Path,
    name: &str,
    onnx: &[u8],
    inputs: &[CaseTensor],
    expected: &[CaseTensor],
) -> Result<PathBuf, CaseError> {
    write_case(dir, name, onnx, inputs, expected, true)
}

fn write_case(
    dir: &Path,
    name: &str,
    onnx: &[u8],
    inputs: &[CaseTensor],
    expected: &[CaseTensor],
    unoptimized: bool,
) -> Result<PathBuf, CaseError> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !plain(name) {
        return Err(CaseError::Name(name.to_owned()));
    }
    for t in inputs.iter().chain(expected) {
        let want: usize = t.dims.iter().product();
        if t.data.len() != want {
            return Err(CaseError::TensorLength {
                what: format!("case {name}, tensor {}", t.name),
                got: t.data.len(),
                dims: t.dims.clone(),
            });
        }
    }
    let io = |path: PathBuf| move |source| CaseError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
    let model = format!("{name}.onnx");
    std::fs::write(dir.join(&model), onnx).map_err(io(dir.join(&model)))?;

    let mut json = String::new();
    let _ = writeln!(
        json,
        "{{\n  \"format\": \"tinygen-onnx-case/1\",\n  \"model\": {},",
        quote(&model)
    );
    if unoptimized {
        json.push_str("  \"onnxruntime_optimization\": \"disable_all\",\n");
    }
    for (key, tensors, prefix) in [("inputs", inputs, "in"), ("outputs", expected, "out")] {
        let _ = writeln!(json, "  \"{key}\": [");
        for (k, t) in tensors.iter().enumerate() {
            let file = format!("{name}.{prefix}{k}.bin");
            std::fs::write(dir.join(&file), t.data.to_le_bytes()).map_err(io(dir.join(&file)))?;
            let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(
                json,
                "    {{\"name\": {}, \"dtype\": \"{}\", \"shape\": [{}], \"file\": {}}}{}",
                quote(&t.name),
                t.data.dtype(),
                dims.join(", "),
                quote(&file),
                if k + 1 < tensors.len() { "," } else { "" }
            );
        }
        let _ = writeln!(json, "  ]{}", if key == "inputs" { "," } else { "" });
    }
    json.push_str("}\n");
    let path = dir.join(format!("{name}.case.json"));
    std::fs::write(&path, json).map_err(io(path.clone()))?;
    Ok(path)
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_json_specials() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn wrong_lengths_are_rejected_before_writing() {
        let dir = std::env::temp_dir().join("tinygen-case-never-written");
        let bad = CaseTensor::f32("z", &[2, 3], vec![0.0; 5]);
        let err = write_validation_case(&dir, "m", b"", &[bad], &[]).unwrap_err();
        assert!(
            matches!(err, CaseError::TensorLength { got: 5, .. }),
            "{err}"
        );
        assert!(!dir.exists());
    }
}
