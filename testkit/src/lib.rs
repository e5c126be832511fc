//! `tinygen-testkit`: helpers the tests share and the shipping crates do not carry.
//!
//! - [`files`]: parse-and-run and field offsets for the parser's robustness tests.
//! - [`graphs`]: small branched graphs (residual, conditional, coupling, permutation) as model
//!   file programs, plain interpreters and f32 ONNX.
//! - [`reference`]: the plain f64 forward pass of an export graph.
//! - [`case`]: ONNX validation cases (a model, inputs and expected outputs) for
//!   `tools/validate_onnx.py`, which runs the official ONNX checker and onnxruntime on them.
#![deny(missing_docs)]

pub mod case;
pub mod files;
pub mod graphs;
pub mod reference;

pub use case::{
    write_validation_case, write_validation_case_unoptimized, CaseError, CaseTensor, TensorData,
};
