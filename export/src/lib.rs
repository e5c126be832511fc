//! `tinygen-export`: the neutral graph description, the int8 quantizer, the writers for ONNX and
//! for the runtime's model file, and the checks of what they write ([`check`]; tract-onnx behind
//! the `tract` feature).
#![deny(missing_docs)]

pub mod check;
pub mod dag;
pub mod graph;
pub mod import;
pub mod onnx;
pub mod plan;
pub mod qdag;
pub mod quant;
pub mod tgm;

pub use graph::{Conv, ConvSpec, Graph, GraphError, Layer, OutputRange, Part, Shape};
