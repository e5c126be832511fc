//! What can go wrong while importing an ONNX model: one enum whose messages say which node (or
//! input, or initializer), what was found and what to do about it.

use std::fmt;

use crate::graph::GraphError;

/// A form of an ONNX operator that is valid ONNX but that the runtime cannot take. The
/// importer reports these rather than approximating them; callers that sweep many models (the
/// ONNX node tests) skip a model for one of these and for nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Limit {
    /// A batch dimension other than 1 or symbolic (the runtime runs one sample).
    Batch,
    /// An op that mixes the batch dimension with the others (Flatten at axis 0, a Reshape
    /// whose first dimension is not the batch, a Squeeze of axis 0).
    BatchAxis,
    /// Grouped or depthwise convolution (`group > 1`).
    Group,
    /// Dilated convolution.
    Dilation,
    /// Different padding at the start and the end of an axis.
    AsymmetricPadding,
    /// `auto_pad` other than `NOTSET` or `VALID`.
    AutoPad,
    /// A convolution that is not 2-D.
    ConvRank,
    /// A tensor of more than three dimensions besides the batch.
    Rank,
    /// A Gemm or MatMul on more than `[N, K]` (a batched matrix product).
    MatMulRank,
    /// A tensor element type other than float32 at run time.
    ElementType,
    /// Broadcasting the runtime does not do (two run-time tensors of different shapes, or a
    /// constant that varies along more than the channel axis).
    Broadcast,
    /// An operation along an axis other than the channel axis (axis 1).
    Axis,
    /// A run-time tensor where the runtime needs a constant (weights, a Reshape's shape), or a
    /// transposed run-time operand (Gemm `transA`).
    RuntimeOperand,
    /// A constant where the runtime needs a run-time tensor (an activation of a constant, a
    /// constant concatenated to a run-time tensor): only shape arithmetic is folded.
    ConstantOperand,
    /// More graph inputs than the runtime's two (a latent and a condition).
    Inputs,
}

impl Limit {
    /// A short description, for messages and tables.
    pub fn describe(self) -> &'static str {
        match self {
            Limit::Batch => "batch > 1",
            Limit::BatchAxis => "mixes the batch axis with the others",
            Limit::Group => "group > 1",
            Limit::Dilation => "dilations",
            Limit::AsymmetricPadding => "asymmetric padding",
            Limit::AutoPad => "auto_pad SAME_*",
            Limit::ConvRank => "not a 2-D convolution",
            Limit::Rank => "rank > 3 besides the batch",
            Limit::MatMulRank => "batched matrix product",
            Limit::ElementType => "not float32",
            Limit::Broadcast => "broadcast the runtime cannot do",
            Limit::Axis => "axis other than the channels",
            Limit::RuntimeOperand => "run-time tensor where a constant is needed",
            Limit::ConstantOperand => "constant where a run-time tensor is needed",
            Limit::Inputs => "more than two graph inputs",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why an ONNX model could not be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("the bytes are not an ONNX model ({message}); check that the file is a .onnx file and not truncated")]
    Decode {
        /// prost's message.
        message: String,
    },
    /// The model has no graph.
    #[error("the ONNX model has no graph")]
    NoGraph,
    /// The model imports an operator set of an unknown domain or a version outside the range
    /// the importer reads.
    #[error("the model uses operator set {domain:?} version {version}; export with the standard domain, opset 7 to 25")]
    Opset {
        /// The domain (`""` is the standard one).
        domain: String,
        /// Its version.
        version: i64,
    },
    /// An initializer cannot be read.
    #[error("initializer `{name}`: {reason}")]
    Initializer {
        /// Its name.
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An initializer keeps its values in another file.
    #[error("initializer `{name}` keeps its values in an external file; save the model with the weights inside (onnx.save_model(m, path, save_as_external_data=False))")]
    ExternalData {
        /// Its name.
        name: String,
    },
    /// A graph input cannot be used.
    #[error("graph input `{name}`: {reason}")]
    Input {
        /// Its name.
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The graph's output cannot be used.
    #[error("graph output `{name}`: {reason}")]
    Output {
        /// Its name.
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// No node maps this operator.
    #[error("node `{node}` ({op}): the operator {domain}{op} is not supported; supported are Gemm, MatMul, Conv, ConvTranspose, BatchNormalization, the activations, Add/Sub/Mul/Div, Concat, Reshape/Flatten/Squeeze/Unsqueeze and constant shape arithmetic")]
    UnsupportedOp {
        /// The node's name (or its index and output when unnamed).
        node: String,
        /// Its op type.
        op: String,
        /// Its domain followed by `.` when not the standard one.
        domain: String,
    },
    /// An attribute is missing, has the wrong type or a value out of range.
    #[error("node `{node}` ({op}): attribute `{attribute}` {reason}")]
    Attribute {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The attribute.
        attribute: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid form of the operator that the runtime cannot run (or a graph input it cannot
    /// take: then `node` is the input's name and `op` is `graph input`).
    #[error("node `{node}` ({op}): {limit}: {detail}")]
    Unsupported {
        /// The node (or graph input).
        node: String,
        /// Its op type (or `graph input`).
        op: String,
        /// Which limit.
        limit: Limit,
        /// What was found and what to do.
        detail: String,
    },
    /// The node is not well formed (missing inputs, shapes that do not fit, too large).
    #[error("node `{node}` ({op}): {reason}")]
    Node {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// The graph's output range is not implied by a final Tanh or Sigmoid.
    #[error("the output `{output}` does not end in Tanh or Sigmoid, so its range is unknown; give it (`tinygen import --output-range zero-one` or `minus-one-one`; ImportOptions::output_range in code)")]
    OutputRange {
        /// The graph output.
        output: String,
    },
    /// The imported graph failed the exporter's own check.
    #[error("the imported graph is not well formed: {0}")]
    Graph(#[from] GraphError),
}

impl ImportError {
    /// The runtime limit this error reports, if it is one (see [`Limit`]).
    pub fn limit(&self) -> Option<Limit> {
        match self {
            ImportError::Unsupported { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// The node the error names, if it names one.
    pub fn node(&self) -> Option<&str> {
        match self {
            ImportError::UnsupportedOp { node, .. }
            | ImportError::Attribute { node, .. }
            | ImportError::Unsupported { node, .. }
            | ImportError::Node { node, .. } => Some(node),
            _ => None,
        }
    }
}
