//! Checking a model against a reference: the runtime run over a batch of inputs, the comparison
//! figures, and (with the `tract` feature) tract-onnx.
//!
//! Every check of the project goes through this module: `tinygen verify` (production code), the
//! end-to-end tests of the `tinygen` package, this crate's own tests and the host benchmark. It
//! lives in `tinygen-export` rather than in the `tinygen` package or a separate dev-only crate
//! because all four already depend on this crate and the checks are of what this crate writes
//! (the ONNX files and the model files); tract-onnx, a large dependency, is behind the optional
//! `tract` feature, so the trainer and a firmware build that use the exporter do not compile it.
//! This crate's tests enable the feature through its dev-dependency on itself, and the `tinygen`
//! package enables it for `verify`.

mod float64;
#[cfg(feature = "tract")]
mod tract;

pub use self::float64::float64_model;

#[cfg(feature = "tract")]
pub use self::tract::{Load, Output, Plan, Tract, Values};
/// The tract-onnx crate the wrapper runs, for callers that need tract's own types (the benchmark
/// times tract's plan with a prepared input, without the wrapper's copies).
#[cfg(feature = "tract")]
pub use tract_onnx;

use std::path::PathBuf;

use tinygen_runtime::model::Model;

use crate::tgm::AlignedBytes;

/// What went wrong while checking a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An ONNX file could not be read.
    #[error("reading ONNX file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// tract-onnx could not load or optimise a model.
    #[error("{name}: tract-onnx cannot load it: {message}")]
    Load {
        /// The file (or the name given to the bytes).
        name: String,
        /// tract's message.
        message: String,
    },
    /// tract-onnx failed while running a model.
    #[error("{name}: running in tract-onnx failed: {message}")]
    Run {
        /// The file (or the name given to the bytes).
        name: String,
        /// tract's message.
        message: String,
    },
    /// An output of a tract run has another element type than the one asked for.
    #[error("{name}: output {index} holds {found} values, not {expected}")]
    OutputType {
        /// The file (or the name given to the bytes).
        name: String,
        /// Which output.
        index: usize,
        /// The element type found.
        found: String,
        /// The element type asked for.
        expected: &'static str,
    },
    /// A model run produced no output.
    #[error("{name}: the model has no output")]
    NoOutput {
        /// The file (or the name given to the bytes).
        name: String,
    },
    /// A batch of inputs is not a whole number of samples.
    #[error("{len} input values are not a whole number of samples of {sample} values")]
    InputLength {
        /// Values given.
        len: usize,
        /// Values per sample.
        sample: usize,
    },
    /// Two outputs to compare have different lengths.
    #[error("output lengths differ: {got} values against {want} in the reference")]
    LengthMismatch {
        /// Length of the output under test.
        got: usize,
        /// Length of the reference.
        want: usize,
    },
    /// The reference is all zeros, so a relative error would be vacuous.
    #[error("reference output is all zeros: the comparison would be vacuous")]
    VacuousReference,
    /// The runtime rejected the model file or failed to run it.
    #[error(transparent)]
    Runtime(#[from] tinygen_runtime::error::Error),
}

/// The dims after the batch of the first graph input of the ONNX model `bytes` (one that is not
/// an initializer), if the model parses and they are all fixed: `[16, 1, 1]` for an input
/// `[N, 16, 1, 1]`. Callers feeding a model its own input shape use this rather than a shape
/// derived from the runtime's view of the input.
pub fn onnx_input_dims(bytes: &[u8]) -> Option<Vec<usize>> {
    use crate::onnx::proto::{tensor_shape_proto::dimension, type_proto, ModelProto};
    use prost::Message;
    let m = ModelProto::decode(bytes).ok()?;
    let g = m.graph?;
    let input = g
        .input
        .iter()
        .find(|i| !g.initializer.iter().any(|t| t.name == i.name))?;
    let Some(type_proto::Value::TensorType(t)) = input.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    t.shape
        .as_ref()?
        .dim
        .iter()
        .skip(1)
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) if v > 0 => usize::try_from(v).ok(),
            _ => None,
        })
        .collect()
}

/// `[n, dims...]`: the shape of a batch of `n` samples of shape `dims`.
pub fn batch_dims(n: usize, dims: &[usize]) -> Vec<usize> {
    std::iter::once(n).chain(dims.iter().copied()).collect()
}

/// Runs `model` on each sample of `x` (one input after another, `latent_len()` values each) and
/// returns the outputs concatenated, `output_len()` values per sample.
pub fn run_runtime(model: &Model<'_>, x: &[f32]) -> Result<Vec<f32>, CheckError> {
    let (k, m) = (model.latent_len(), model.output_len());
    if k == 0 || !x.len().is_multiple_of(k) {
        return Err(CheckError::InputLength {
            len: x.len(),
            sample: k,
        });
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; x.len() / k * m];
    for (z, y) in x.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        model.run(z, &mut arena, y)?;
    }
    Ok(out)
}

/// Parses the model file `bytes` (copied to aligned memory) and runs it as [`run_runtime`] does.
pub fn run_model_file(bytes: &[u8], x: &[f32]) -> Result<Vec<f32>, CheckError> {
    let bytes = AlignedBytes::new(bytes);
    let model = Model::parse(&bytes)?;
    run_runtime(&model, x)
}

/// `max |got - want|` and `max |want|` over two slices (compared up to the shorter one). A NaN
/// difference counts as infinite: NaN anywhere must fail a comparison, never pass it.
pub fn max_diff<W: Copy + Into<f64>>(got: &[f32], want: &[W]) -> (f64, f64) {
    got.iter()
        .zip(want)
        .fold((0.0f64, 0.0f64), |(d, s), (&x, &y)| {
            let y: f64 = y.into();
            let diff = (f64::from(x) - y).abs();
            let diff = if diff.is_nan() { f64::INFINITY } else { diff };
            (d.max(diff), s.max(y.abs()))
        })
}

/// `max |got - want| / max |want|` (NaN counts as an infinite error). Normalising by the
/// largest |reference| keeps outputs near zero from inflating the figure. Fails when the
/// lengths differ or the reference is all zeros (a vacuous comparison).
pub fn rel_err<W: Copy + Into<f64>>(got: &[f32], want: &[W]) -> Result<f64, CheckError> {
    if got.len() != want.len() {
        return Err(CheckError::LengthMismatch {
            got: got.len(),
            want: want.len(),
        });
    }
    let (diff, scale) = max_diff(got, want);
    if scale > 0.0 {
        Ok(diff / scale)
    } else {
        Err(CheckError::VacuousReference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_diff_counts_nan_as_infinite() {
        assert_eq!(
            max_diff(&[1.0, f32::NAN], &[1.0f32, 2.0]),
            (f64::INFINITY, 2.0)
        );
        assert_eq!(max_diff(&[1.0, 3.5], &[1.0f64, -2.0]), (5.5, 2.0));
    }

    #[test]
    fn rel_err_refuses_vacuous_and_mismatched_comparisons() {
        assert!(matches!(
            rel_err(&[0.0], &[0.0f32]),
            Err(CheckError::VacuousReference)
        ));
        assert!(matches!(
            rel_err(&[0.0, 1.0], &[1.0f32]),
            Err(CheckError::LengthMismatch { got: 2, want: 1 })
        ));
        // |1.5 - 2| / 2
        assert_eq!(rel_err(&[1.5, 0.0], &[2.0f32, 0.0]).unwrap(), 0.25);
    }

    #[test]
    fn batch_dims_prepends_the_batch() {
        assert_eq!(batch_dims(3, &[1, 8, 8]), vec![3, 1, 8, 8]);
    }
}
