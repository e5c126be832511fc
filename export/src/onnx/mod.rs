//! ONNX writer: the neutral [`Graph`] as a standard ONNX model (opset 13, IR version 8).
//!
//! The model has one input and one output, both with a symbolic batch dimension `N`:
//! the input is `[N, F]` for a flat input shape and `[N, C, H, W]` otherwise, and the output is
//! `[N, F]` after a dense layer (or a reshape to a flat shape) and `[N, C, H, W]` after a
//! convolution. Layers map to standard operators only:
//!
//! | layer | ONNX |
//! |---|---|
//! | `Dense` | `Gemm` (`transB = 1`, weight `[out, in]`), preceded by `Reshape [-1, F]` on a 4-D input |
//! | `Conv2d` | `Conv` (`pads = [top, left, bottom, right]`), preceded by `Reshape [-1, C, H, W]` on a 2-D input |
//! | `ConvTranspose2d` | `ConvTranspose` (weight `[C_in, C_out, kH, kW]`, `output_padding`) |
//! | `Relu`, `Tanh`, `Sigmoid` | the operator of that name |
//! | `LeakyRelu` | `LeakyRelu` (`alpha`) |
//! | `Reshape` | `Reshape` with an int64 shape initializer whose first entry is `-1` |
//!
//! Weights are initializers stored in `raw_data` (little-endian, row-major). Names are
//! deterministic: layer `i` of kind `k` is the node `k{i}` (`dense0`, `relu1`, `convt3`, ...), its
//! parameters are `k{i}.weight` and `k{i}.bias`, and its output tensor is `k{i}` except for the last
//! layer, whose output carries the model's output name ([`output_name`]).
//!
//! Besides the whole model, [`export_f32_layers`] writes any contiguous run of layers as a model
//! of its own (same tensor names as in the whole model), and [`export_f32_per_layer`] writes one
//! model per layer, for layer-by-layer comparison against another implementation.

pub mod proto;

mod qdq;
pub mod qdq_graph;

use std::ops::Range;

use prost::Message;

use crate::graph::{Conv, Graph, GraphError, Layer, OutputRange, Part, Shape};

pub use qdq::{export_qdq, export_qdq_layers, export_qdq_per_layer, to_onnx_qdq, QdqOptions};

use proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// ONNX operator set version of every exported model.
pub const OPSET_VERSION: i64 = 13;
/// ONNX IR version of every exported model.
pub const IR_VERSION: i64 = 8;
/// `ModelProto.producer_name`.
pub const PRODUCER_NAME: &str = "tinygen";
/// Name of the symbolic batch dimension of inputs and outputs.
pub const BATCH_DIM: &str = "N";

/// Why a graph could not be written as ONNX.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The graph is not well formed.
    #[error("invalid graph: {0}")]
    Graph(#[from] GraphError),
    /// A layer range is empty or reaches past the last layer.
    #[error("layer range {start}..{end} is empty or not within the graph's {layers} layers")]
    LayerRange {
        /// First layer of the range.
        start: usize,
        /// One past the last layer of the range.
        end: usize,
        /// Number of layers in the graph.
        layers: usize,
    },
    /// The quantized graph does not describe a model this writer can express.
    #[error("quantized graph, layer {layer}: {what}")]
    Quantized {
        /// Layer index.
        layer: usize,
        /// What is wrong.
        what: String,
    },
}

/// Element type of a model input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer.
    I8,
}

impl ElemType {
    fn data_type(self) -> DataType {
        match self {
            ElemType::F32 => DataType::Float,
            ElemType::I8 => DataType::Int8,
        }
    }
}

/// An input or output of an exported model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Tensor name in the ONNX graph.
    pub name: String,
    /// Element type.
    pub elem: ElemType,
    /// Dimensions after the leading symbolic batch dimension `N`.
    pub dims: Vec<usize>,
}

impl Endpoint {
    /// Number of values for one sample.
    pub fn sample_len(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A serialised ONNX model with the description of its inputs and outputs.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The encoded `ModelProto`.
    pub bytes: Vec<u8>,
    /// Graph inputs, in order (one for every model this module writes).
    pub inputs: Vec<Endpoint>,
    /// Graph outputs, in order: the model's output first, then any debug outputs.
    pub outputs: Vec<Endpoint>,
    /// The layers of the source graph this model computes.
    pub layers: Range<usize>,
}

/// Name of the graph input for a graph of this part: `z` (a latent) for a generator, `x` (an
/// image or feature vector) for an encoder or discriminator.
pub fn input_name(part: Part) -> &'static str {
    match part {
        Part::Generator => "z",
        Part::Encoder | Part::Discriminator => "x",
    }
}

/// Name of the graph output for a graph of this part: `x` for a generator, `mu_logvar` for an
/// encoder, `logit` for a discriminator.
pub fn output_name(part: Part) -> &'static str {
    match part {
        Part::Generator => "x",
        Part::Encoder => "mu_logvar",
        Part::Discriminator => "logit",
    }
}

/// The float graph as ONNX bytes (see the module documentation for the form).
pub fn to_onnx_f32(graph: &Graph, name: &str) -> Result<Vec<u8>, OnnxError> {
    Ok(export_f32(graph, name)?.bytes)
}

/// The float graph as an ONNX model with the description of its input and output.
pub fn export_f32(graph: &Graph, name: &str) -> Result<OnnxModel, OnnxError> {
    export_f32_layers(graph, name, 0..graph.layers.len())
}

/// Layers `layers` of the float graph alone, as an ONNX model whose input is the tensor that
/// enters `layers.start` in the whole model and whose output is the tensor `layers.end - 1`
/// produces, with the same names and ranks as in the whole model.
pub fn export_f32_layers(
    graph: &Graph,
    name: &str,
    layers: Range<usize>,
) -> Result<OnnxModel, OnnxError> {
    let plan = Plan::new(graph)?;
    plan.check_range(&layers)?;
    let mut b = Builder::default();
    for i in layers.clone() {
        let input = plan.tensor(i).to_owned();
        let output = plan.tensor(i + 1).to_owned();
        emit_float_layer(&mut b, &plan, &graph.layers[i], i, &input, &output);
    }
    let input = plan.endpoint(layers.start, ElemType::F32);
    let output = plan.endpoint(layers.end, ElemType::F32);
    let doc = format!(
        "tinygen {:?} `{name}`, float32, layers {}..{} of {}: {}",
        graph.part,
        layers.start,
        layers.end,
        graph.layers.len(),
        summary(graph, &layers)
    );
    let bytes = b.finish(
        name,
        &doc,
        graph.part,
        graph.output_range(),
        std::slice::from_ref(&input),
        std::slice::from_ref(&output),
    );
    Ok(OnnxModel {
        bytes,
        inputs: vec![input],
        outputs: vec![output],
        layers,
    })
}

/// One float model per layer (`export_f32_layers(graph, name_i, i..i + 1)` for every `i`), each
/// named `{name}.{node}` (e.g. `decoder.dense0`).
pub fn export_f32_per_layer(graph: &Graph, name: &str) -> Result<Vec<OnnxModel>, OnnxError> {
    let plan = Plan::new(graph)?;
    (0..graph.layers.len())
        .map(|i| export_f32_layers(graph, &format!("{name}.{}", plan.node_name(i)), i..i + 1))
        .collect()
}

/// Tensor rank in the ONNX graph: a flat `[N, F]` or an image-like `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rank {
    Flat,
    Image,
}

/// What a layer does, as far as tensor names and ranks are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dense,
    Conv,
    ConvTranspose,
    Relu,
    LeakyRelu,
    Tanh,
    Sigmoid,
    Exp,
    Reshape,
}

impl Kind {
    pub(crate) fn of(layer: &Layer) -> Kind {
        match layer {
            Layer::Dense { .. } => Kind::Dense,
            Layer::Conv2d(_) => Kind::Conv,
            Layer::ConvTranspose2d(_) => Kind::ConvTranspose,
            Layer::Relu => Kind::Relu,
            Layer::LeakyRelu { .. } => Kind::LeakyRelu,
            Layer::Tanh => Kind::Tanh,
            Layer::Sigmoid => Kind::Sigmoid,
            Layer::Reshape { .. } => Kind::Reshape,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Dense => "dense",
            Kind::Conv => "conv",
            Kind::ConvTranspose => "convt",
            Kind::Relu => "relu",
            Kind::LeakyRelu => "leakyrelu",
            Kind::Tanh => "tanh",
            Kind::Sigmoid => "sigmoid",
            Kind::Exp => "exp",
            Kind::Reshape => "reshape",
        }
    }
}

/// Names, shapes and ranks of every tensor between layers of a graph.
pub(crate) struct Plan {
    kinds: Vec<Kind>,
    /// `shapes[i]` enters layer `i`; `shapes[L]` is the output.
    pub(crate) shapes: Vec<Shape>,
    /// Rank of the ONNX tensor `shapes[i]` describes.
    pub(crate) ranks: Vec<Rank>,
    /// Name of the ONNX tensor that enters layer `i` (`names[L]`: the output).
    names: Vec<String>,
}

impl Plan {
    pub(crate) fn new(graph: &Graph) -> Result<Self, OnnxError> {
        let kinds = graph.layers.iter().map(Kind::of).collect();
        Ok(Self::from_parts(graph.part, kinds, graph.shapes()?))
    }

    /// `shapes` has one more entry than `kinds` (the input first).
    pub(crate) fn from_parts(part: Part, kinds: Vec<Kind>, shapes: Vec<Shape>) -> Self {
        let flat_or_image = |s: &Shape| {
            if s.h == 1 && s.w == 1 {
                Rank::Flat
            } else {
                Rank::Image
            }
        };
        let mut ranks = vec![flat_or_image(&shapes[0])];
        for (kind, shape) in kinds.iter().zip(&shapes[1..]) {
            let prev = ranks[ranks.len() - 1];
            ranks.push(match kind {
                Kind::Dense => Rank::Flat,
                Kind::Conv | Kind::ConvTranspose => Rank::Image,
                Kind::Reshape => flat_or_image(shape),
                Kind::Relu | Kind::LeakyRelu | Kind::Tanh | Kind::Sigmoid | Kind::Exp => prev,
            });
        }
        let count = kinds.len();
        let mut names = vec![input_name(part).to_owned()];
        for (i, kind) in kinds.iter().enumerate() {
            names.push(if i + 1 == count {
                output_name(part).to_owned()
            } else {
                format!("{}{i}", kind.prefix())
            });
        }
        Plan {
            kinds,
            shapes,
            ranks,
            names,
        }
    }

    pub(crate) fn layer_count(&self) -> usize {
        self.kinds.len()
    }

    pub(crate) fn check_range(&self, r: &Range<usize>) -> Result<(), OnnxError> {
        let layers = self.layer_count();
        if r.start >= r.end || r.end > layers {
            return Err(OnnxError::LayerRange {
                start: r.start,
                end: r.end,
                layers,
            });
        }
        Ok(())
    }

    pub(crate) fn tensor(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `dense3`, `convt5`, ...: the node name of layer `i`.
    pub(crate) fn node_name(&self, i: usize) -> String {
        format!("{}{i}", self.kinds[i].prefix())
    }

    /// ONNX dims (without the batch) of the tensor entering layer `i`.
    pub(crate) fn dims(&self, i: usize) -> Vec<usize> {
        let s = self.shapes[i];
        match self.ranks[i] {
            Rank::Flat => vec![s.len()],
            Rank::Image => vec![s.c, s.h, s.w],
        }
    }

    pub(crate) fn endpoint(&self, i: usize, elem: ElemType) -> Endpoint {
        Endpoint {
            name: self.names[i].clone(),
            elem,
            dims: self.dims(i),
        }
    }
}

fn summary(graph: &Graph, r: &Range<usize>) -> String {
    let parts: Vec<String> = r
        .clone()
        .map(|i| describe_layer(&graph.layers[i]))
        .collect();
    parts.join(" -> ")
}

fn describe_conv(c: &Conv) -> String {
    format!(
        "{}->{} k{}x{} s{}x{} p{}x{}",
        c.spec.in_ch,
        c.spec.out_ch,
        c.spec.kernel.0,
        c.spec.kernel.1,
        c.spec.stride.0,
        c.spec.stride.1,
        c.spec.pad.0,
        c.spec.pad.1
    )
}

pub(crate) fn describe_layer(layer: &Layer) -> String {
    match layer {
        Layer::Dense {
            inputs, outputs, ..
        } => format!("Dense {inputs}->{outputs}"),
        Layer::Conv2d(c) => format!("Conv2d {}", describe_conv(c)),
        Layer::ConvTranspose2d(c) => format!(
            "ConvTranspose2d {} op{}x{}",
            describe_conv(c),
            c.spec.output_padding.0,
            c.spec.output_padding.1
        ),
        Layer::LeakyRelu { alpha } => format!("LeakyRelu {alpha}"),
        Layer::Reshape { to } => format!("Reshape {to}"),
        other => other.name().to_owned(),
    }
}

/// Emits layer `i` of the float graph, reading tensor `input` and writing tensor `output`.
fn emit_float_layer(
    b: &mut Builder,
    plan: &Plan,
    layer: &Layer,
    i: usize,
    input: &str,
    output: &str,
) {
    let node = plan.node_name(i);
    let doc = format!("layer {i}: {}", describe_layer(layer));
    let x = match layer {
        Layer::Dense { .. } => b.in_rank(plan, i, Rank::Flat, input),
        Layer::Conv2d(_) | Layer::ConvTranspose2d(_) => b.in_rank(plan, i, Rank::Image, input),
        _ => input.to_owned(),
    };
    emit_layer_node(b, layer, &node, &x, output, &plan.dims(i + 1), &doc);
}

/// Emits the ONNX node of one float layer named `node`, reading `x` (already in the rank the
/// op needs: `[N, F]` for Dense, `[N, C, H, W]` for the convolutions) and writing `output`;
/// `out_dims` (without the batch) is the Reshape target.
pub(crate) fn emit_layer_node(
    b: &mut Builder,
    layer: &Layer,
    node: &str,
    x: &str,
    output: &str,
    out_dims: &[usize],
    doc: &str,
) {
    match layer {
        Layer::Dense {
            inputs,
            outputs,
            weight,
            bias,
        } => {
            let w = b.init_f32(&format!("{node}.weight"), &[*outputs, *inputs], weight);
            let bias = b.init_f32(&format!("{node}.bias"), &[*outputs], bias);
            b.node(
                "Gemm",
                node,
                &[x, &w, &bias],
                output,
                vec![attr_int("transB", 1)],
                doc,
            );
        }
        Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => {
            let transposed = matches!(layer, Layer::ConvTranspose2d(_));
            let wdims = if transposed {
                [
                    c.spec.in_ch,
                    c.spec.out_ch,
                    c.spec.kernel.0,
                    c.spec.kernel.1,
                ]
            } else {
                [
                    c.spec.out_ch,
                    c.spec.in_ch,
                    c.spec.kernel.0,
                    c.spec.kernel.1,
                ]
            };
            let w = b.init_f32(&format!("{node}.weight"), &wdims, &c.weight);
            let bias = b.init_f32(&format!("{node}.bias"), &[c.spec.out_ch], &c.bias);
            let op = if transposed { "ConvTranspose" } else { "Conv" };
            b.node(
                op,
                node,
                &[x, &w, &bias],
                output,
                conv_attrs(c, transposed),
                doc,
            );
        }
        Layer::Relu => b.node("Relu", node, &[x], output, vec![], doc),
        Layer::LeakyRelu { alpha } => b.node(
            "LeakyRelu",
            node,
            &[x],
            output,
            vec![attr_float("alpha", *alpha)],
            doc,
        ),
        Layer::Tanh => b.node("Tanh", node, &[x], output, vec![], doc),
        Layer::Sigmoid => b.node("Sigmoid", node, &[x], output, vec![], doc),
        Layer::Reshape { .. } => {
            let shape = b.shape_init(&format!("{node}.shape"), out_dims);
            b.node("Reshape", node, &[x, &shape], output, vec![], doc);
        }
    }
}

/// Attributes of a Conv or ConvTranspose node.
pub(crate) fn conv_attrs(c: &Conv, transposed: bool) -> Vec<AttributeProto> {
    let pair = |a: usize, b: usize| [a, b].iter().map(|&v| v as i64).collect::<Vec<_>>();
    let mut attrs = vec![
        attr_ints("kernel_shape", pair(c.spec.kernel.0, c.spec.kernel.1)),
        attr_ints("strides", pair(c.spec.stride.0, c.spec.stride.1)),
        attr_ints(
            "pads",
            [c.spec.pad.0, c.spec.pad.1, c.spec.pad.0, c.spec.pad.1]
                .iter()
                .map(|&v| v as i64)
                .collect(),
        ),
        attr_ints("dilations", vec![1, 1]),
        attr_int("group", 1),
    ];
    if transposed {
        attrs.push(attr_ints(
            "output_padding",
            pair(c.spec.output_padding.0, c.spec.output_padding.1),
        ));
    }
    attrs
}

pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(i),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints,
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: Some(f),
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

/// Collects nodes and initializers, then assembles the `ModelProto`.
#[derive(Default)]
pub(crate) struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    extra_outputs: Vec<Endpoint>,
}

impl Builder {
    fn tensor(name: &str, dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        }
    }

    /// Adds a float initializer; returns its name.
    pub(crate) fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits
            .push(Self::tensor(name, dims, DataType::Float, raw));
        name.to_owned()
    }

    /// Adds an int8 initializer; returns its name.
    pub(crate) fn init_i8(&mut self, name: &str, dims: &[usize], data: &[i8]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits
            .push(Self::tensor(name, dims, DataType::Int8, raw));
        name.to_owned()
    }

    /// Adds an int32 initializer; returns its name.
    pub(crate) fn init_i32(&mut self, name: &str, dims: &[usize], data: &[i32]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits
            .push(Self::tensor(name, dims, DataType::Int32, raw));
        name.to_owned()
    }

    /// Adds an int64 initializer; returns its name.
    pub(crate) fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits
            .push(Self::tensor(name, dims, DataType::Int64, raw));
        name.to_owned()
    }

    /// Adds the int64 shape `[-1, dims...]` for a Reshape; returns its name.
    pub(crate) fn shape_init(&mut self, name: &str, dims: &[usize]) -> String {
        let shape: Vec<i64> = std::iter::once(-1)
            .chain(dims.iter().map(|&d| d as i64))
            .collect();
        let raw = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits
            .push(Self::tensor(name, &[shape.len()], DataType::Int64, raw));
        name.to_owned()
    }

    /// Adds a node with one output.
    pub(crate) fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
        doc: &str,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            name: name.into(),
            op_type: op.into(),
            attribute,
            doc_string: doc.into(),
            domain: String::new(),
        });
    }

    /// Marks an intermediate tensor as an additional graph output.
    pub(crate) fn extra_output(&mut self, e: Endpoint) {
        self.extra_outputs.push(e);
    }

    /// Returns the tensor entering layer `i` in rank `want`, inserting a Reshape if its rank
    /// differs (`flatten{i}` to `[-1, F]`, `unflatten{i}` to `[-1, C, H, W]`).
    pub(crate) fn in_rank(&mut self, plan: &Plan, i: usize, want: Rank, input: &str) -> String {
        if plan.ranks[i] == want {
            return input.to_owned();
        }
        let s = plan.shapes[i];
        let (node, dims) = match want {
            Rank::Flat => (format!("flatten{i}"), vec![s.len()]),
            Rank::Image => (format!("unflatten{i}"), vec![s.c, s.h, s.w]),
        };
        let shape = self.shape_init(&format!("{node}.shape"), &dims);
        let doc = format!("before layer {i}: reshape {s} to rank {}", dims.len() + 1);
        self.node("Reshape", &node, &[input, &shape], &node, vec![], &doc);
        node
    }

    /// Assembles and encodes the model.
    pub(crate) fn finish(
        self,
        name: &str,
        doc: &str,
        part: Part,
        output_range: OutputRange,
        inputs: &[Endpoint],
        outputs: &[Endpoint],
    ) -> Vec<u8> {
        let outputs = outputs.iter().chain(&self.extra_outputs);
        let g = GraphProto {
            node: self.nodes,
            name: name.into(),
            initializer: self.inits,
            doc_string: doc.into(),
            input: inputs.iter().map(value_info).collect(),
            output: outputs.map(value_info).collect(),
            value_info: vec![],
        };
        let meta = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
        };
        let model = ModelProto {
            ir_version: IR_VERSION,
            producer_name: PRODUCER_NAME.into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            domain: String::new(),
            model_version: 1,
            doc_string: doc.into(),
            graph: Some(g),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_VERSION,
            }],
            metadata_props: vec![
                meta("tinygen.part", format!("{part:?}")),
                meta("tinygen.output_range", format!("{output_range:?}")),
            ],
        };
        model.encode_to_vec()
    }
}

fn value_info(e: &Endpoint) -> ValueInfoProto {
    let batch = Dimension {
        denotation: String::new(),
        value: Some(dimension::Value::DimParam(BATCH_DIM.into())),
    };
    let dim = std::iter::once(batch)
        .chain(e.dims.iter().map(|&d| Dimension {
            denotation: String::new(),
            value: Some(dimension::Value::DimValue(d as i64)),
        }))
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: e.elem.data_type() as i32,
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: e.name.clone(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(tensor)),
        }),
        doc_string: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlp() -> Graph {
        Graph {
            part: Part::Generator,
            input: Shape::flat(2),
            layers: vec![
                Layer::Dense {
                    inputs: 2,
                    outputs: 3,
                    weight: vec![0.5; 6],
                    bias: vec![0.0; 3],
                },
                Layer::Relu,
                Layer::Reshape {
                    to: Shape::chw(3, 1, 1),
                },
            ],
        }
    }

    #[test]
    fn encodes_header_and_names() {
        let bytes = to_onnx_f32(&mlp(), "m").unwrap();
        let m = ModelProto::decode(&bytes[..]).unwrap();
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.opset_import[0].version, 13);
        assert_eq!(m.producer_name, "tinygen");
        let g = m.graph.unwrap();
        let names: Vec<_> = g.node.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["dense0", "relu1", "reshape2"]);
        assert_eq!(g.node[0].input, ["z", "dense0.weight", "dense0.bias"]);
        assert_eq!(g.node[2].output, ["x"]);
        assert_eq!(g.input[0].name, "z");
        // every attribute declares its type
        assert!(g
            .node
            .iter()
            .flat_map(|n| &n.attribute)
            .all(|a| a.r#type != 0));
        // 0.5f32 little-endian
        assert_eq!(&g.initializer[0].raw_data[..4], &[0, 0, 0, 0x3f]);
    }

    #[test]
    fn empty_or_out_of_range_layer_ranges_are_rejected() {
        let g = mlp();
        for r in [1..1, 0..4, 3..4] {
            assert!(matches!(
                export_f32_layers(&g, "m", r),
                Err(OnnxError::LayerRange { .. })
            ));
        }
    }

    #[test]
    fn per_layer_models_chain_tensor_names() {
        let models = export_f32_per_layer(&mlp(), "m").unwrap();
        assert_eq!(models.len(), 3);
        for pair in models.windows(2) {
            assert_eq!(pair[0].outputs[0], pair[1].inputs[0]);
        }
        assert_eq!(models[2].outputs[0].name, "x");
        assert_eq!(models[2].outputs[0].dims, [3]);
    }
}
