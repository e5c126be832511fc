//! `tinygen-export`: the neutral graph description, the int8 quantizer, and the writers for
//! ONNX and for the runtime's model file.
#![deny(missing_docs)]

pub mod graph;
pub mod onnx;
pub mod quant;
pub mod tgm;

pub use graph::{Conv, Graph, GraphError, Layer, OutputRange, Part, Shape};
