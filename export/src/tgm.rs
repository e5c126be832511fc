//! The model file writer: a [`Graph`] (f32), a [`QuantGraph`] (int8) or any [`Program`] (a
//! static graph with branches) to the `.tgm` bytes the runtime reads, plus the `model.rs` constants a firmware sizes its arena with.
//!
//! Every layout constant comes from [`tinygen_runtime::format`]; each writer parses its own
//! output with [`Model::parse`] before returning it, so a file this module returns is one the
//! runtime accepts.

use std::ops::Deref;

use tinygen_runtime::format::{self, header, record, tensor};
use tinygen_runtime::model::{Model, Precision};

use crate::graph::ConvSpec;
use crate::graph::{Graph, GraphError, Layer, OutputRange, Part, Shape};
use crate::plan::{self, PlanOp};
use crate::quant::{QLayer, QLinear, QParams, QuantGraph};

/// Why a model file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TgmError {
    /// The graph is not well formed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A size does not fit its field in the file.
    #[error("{what} is {value}, more than the model file can hold ({max})")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its value.
        value: usize,
        /// The largest value the field holds.
        max: usize,
    },
    /// A quantized graph is inconsistent (a tensor of the wrong length, a bad scale).
    #[error("layer {layer}: {what}")]
    BadQuantGraph {
        /// Layer index.
        layer: usize,
        /// What is wrong.
        what: String,
    },
    /// A program names tensors that do not exist or has the wrong number of them.
    #[error("bad program: {what}")]
    BadProgram {
        /// What is wrong.
        what: String,
    },
    /// The written file does not parse: a bug in the writer or in the runtime's parser.
    #[error("the written model file does not parse: {0}")]
    Parse(#[from] tinygen_runtime::error::Error),
}

/// One activation tensor of a [`Program`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorDecl {
    /// Shape of one sample.
    pub shape: Shape,
    /// Quantisation in an int8 file (`None` in an f32 file).
    pub quant: Option<QParams>,
}

/// One op of a [`Program`]: its code, the tensors it reads and writes, its attributes and its
/// weights (already in the file's layout and element type).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The op code (`format::OP_*`).
    pub op: u8,
    /// Input a.
    pub a: usize,
    /// Input b (binary ops with a tensor operand, Concat).
    pub b: Option<usize>,
    /// The output tensor.
    pub output: usize,
    /// The record's parameter (Slice: first channel; Add, Sub, Mul: the operand kind).
    pub param: u32,
    /// Convolution geometry: kernel, stride, padding and output padding, `(h, w)` each.
    pub geometry: [usize; 8],
    /// LeakyReLU slope.
    pub alpha: f32,
    /// int8 linear layers' output clamp.
    pub min: i8,
    /// int8 linear layers' output clamp.
    pub max: i8,
    /// Weight slots, in order.
    pub weights: Vec<Vec<u8>>,
}

impl Node {
    /// An op reading `a` and writing `output`, with no attributes or weights.
    pub fn new(op: u8, a: usize, output: usize) -> Self {
        Node {
            op,
            a,
            b: None,
            output,
            param: 0,
            geometry: [0; 8],
            alpha: 0.0,
            min: 0,
            max: 0,
            weights: Vec::new(),
        }
    }
}

/// A static graph for a model file: tensors `0 .. inputs` are the graph inputs, every other
/// tensor is written by one node, nodes run in order. [`write_program`] plans the arena and
/// lays the file out.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// What part of a trained model this is.
    pub part: Part,
    /// Precision of the file.
    pub precision: Precision,
    /// Range of the output.
    pub range: OutputRange,
    /// Number of graph inputs (1, or 2 with a second input such as a class code).
    pub inputs: usize,
    /// Every activation tensor.
    pub tensors: Vec<TensorDecl>,
    /// The ops, in execution order.
    pub nodes: Vec<Node>,
    /// The tensor the model returns.
    pub output: usize,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A Dense weight `[outputs, inputs]` in the file's panel order ([`format::DENSE_PANEL`]).
pub fn dense_panels(weight: &[f32], inputs: usize, outputs: usize) -> Vec<f32> {
    let mut packed = vec![0.0; weight.len()];
    for (o, row) in weight.chunks_exact(inputs.max(1)).take(outputs).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            if let Some(p) = format::dense_panel_index(outputs, inputs, o, i) {
                packed[p] = v;
            }
        }
    }
    packed
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

/// Weight bytes of an f32 vector (a per-channel operand).
pub fn f32_weight(v: &[f32]) -> Vec<u8> {
    f32_bytes(v)
}

/// Weight bytes of a Gather index table.
pub fn gather_index(index: &[u16]) -> Vec<u8> {
    index.iter().flat_map(|k| k.to_le_bytes()).collect()
}

fn geometry(c: &ConvSpec) -> [usize; 8] {
    [
        c.kernel.0,
        c.kernel.1,
        c.stride.0,
        c.stride.1,
        c.pad.0,
        c.pad.1,
        c.output_padding.0,
        c.output_padding.1,
    ]
}

fn to_u16(what: &'static str, value: usize) -> Result<u16, TgmError> {
    u16::try_from(value).map_err(|_| TgmError::TooLarge {
        what,
        value,
        max: usize::from(u16::MAX),
    })
}

fn to_u32(what: &'static str, value: usize) -> Result<u32, TgmError> {
    u32::try_from(value).map_err(|_| TgmError::TooLarge {
        what,
        value,
        max: u32::MAX as usize,
    })
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_shape(buf: &mut [u8], at: usize, s: Shape) -> Result<(), TgmError> {
    put(buf, at, &to_u16("a dimension", s.c)?.to_le_bytes());
    put(buf, at + 2, &to_u16("a dimension", s.h)?.to_le_bytes());
    put(buf, at + 4, &to_u16("a dimension", s.w)?.to_le_bytes());
    Ok(())
}

/// Plans the arena, lays out header, tensor table, op records and weights, computes the CRC,
/// and parses the result.
pub fn write_program(p: &Program) -> Result<Vec<u8>, TgmError> {
    let bad = |what: String| TgmError::BadProgram { what };
    let count = p.tensors.len();
    if p.nodes.len() > format::MAX_OPS {
        return Err(TgmError::TooLarge {
            what: "the op count",
            value: p.nodes.len(),
            max: format::MAX_OPS,
        });
    }
    if count != p.inputs + p.nodes.len() || p.output >= count || p.output < p.inputs {
        return Err(bad(format!(
            "{count} tensors for {} inputs and {} ops (output {})",
            p.inputs,
            p.nodes.len(),
            p.output
        )));
    }
    let elem = p.precision.element_bytes();
    let mut producer = vec![0usize; count];
    let mut last = vec![0usize; count];
    let mut ops = Vec::with_capacity(p.nodes.len());
    for (i, n) in p.nodes.iter().enumerate() {
        for t in std::iter::once(n.a).chain(n.b).chain([n.output]) {
            if t >= count {
                return Err(bad(format!("op {i} names tensor {t} of {count}")));
            }
        }
        producer[n.output] = i;
        for t in std::iter::once(n.a).chain(n.b) {
            last[t] = last[t].max(i);
        }
        let a = p.tensors[n.a].shape;
        ops.push(PlanOp {
            code: n.op,
            a: n.a,
            b: n.b,
            output: n.output,
            view_offset: n.param as usize * a.h * a.w * elem,
        });
    }
    last[p.output] = p.nodes.len();
    let bytes: Vec<usize> = p.tensors.iter().map(|t| t.shape.len() * elem).collect();
    let plan = plan::plan(&bytes, p.inputs, p.output, &ops);

    let op_table = format::op_table(count).expect("the tensor count is bounded");
    let data_offset =
        format::data_offset(count, p.nodes.len()).expect("the tensor and op counts are bounded");
    // Weight offsets, in op and slot order.
    let mut end = data_offset;
    let mut offsets = Vec::with_capacity(p.nodes.len());
    for n in &p.nodes {
        let mut slots = Vec::with_capacity(n.weights.len());
        for t in &n.weights {
            let at = format::align_up(end).expect("file size fits usize");
            slots.push(at);
            end = at + t.len();
        }
        offsets.push(slots);
    }
    let file_len = format::align_up(end).expect("file size fits usize");
    let mut buf = vec![0u8; file_len];

    put(&mut buf, header::MAGIC, &format::MAGIC);
    put(&mut buf, header::VERSION, &format::VERSION.to_le_bytes());
    buf[header::KIND] = p.part.code();
    buf[header::PRECISION] = p.precision.code();
    buf[header::OUTPUT_RANGE] = p.range.code();
    buf[header::INPUT_COUNT] = u8::try_from(p.inputs).map_err(|_| TgmError::TooLarge {
        what: "the input count",
        value: p.inputs,
        max: format::MAX_INPUTS,
    })?;
    put(
        &mut buf,
        header::OUTPUT_TENSOR,
        &to_u16("the output tensor", p.output)?.to_le_bytes(),
    );
    put(
        &mut buf,
        header::TENSOR_COUNT,
        &to_u16("the tensor count", count)?.to_le_bytes(),
    );
    let arena = format::arena_bytes(plan.peak).ok_or(TgmError::TooLarge {
        what: "the arena",
        value: usize::MAX,
        max: u32::MAX as usize,
    })?;
    put(
        &mut buf,
        header::OP_COUNT,
        &to_u32("the op count", p.nodes.len())?.to_le_bytes(),
    );
    put(
        &mut buf,
        header::ARENA_BYTES,
        &to_u32("the arena", arena)?.to_le_bytes(),
    );
    put(
        &mut buf,
        header::DATA_OFFSET,
        &to_u32("the data offset", data_offset)?.to_le_bytes(),
    );
    put(
        &mut buf,
        header::FILE_LEN,
        &to_u32("the file length", file_len)?.to_le_bytes(),
    );

    for (i, t) in p.tensors.iter().enumerate() {
        let base = format::HEADER_LEN + i * format::TENSOR_LEN;
        put_shape(&mut buf, base + tensor::SHAPE, t.shape)?;
        if let Some(q) = t.quant {
            buf[base + tensor::ZERO_POINT] = q.zero_point as u8;
            put(&mut buf, base + tensor::SCALE, &q.scale.to_le_bytes());
        }
        put(
            &mut buf,
            base + tensor::OFFSET,
            &to_u32("a tensor offset", plan.offsets[i])?.to_le_bytes(),
        );
        put(
            &mut buf,
            base + tensor::PRODUCER,
            &to_u16("an op index", producer[i])?.to_le_bytes(),
        );
        put(
            &mut buf,
            base + tensor::LAST_READER,
            &to_u16("an op index", last[i])?.to_le_bytes(),
        );
    }
    for (i, (n, slots)) in p.nodes.iter().zip(&offsets).enumerate() {
        let base = op_table + i * format::RECORD_LEN;
        buf[base + record::OP] = n.op;
        put(
            &mut buf,
            base + record::INPUT_A,
            &to_u16("a tensor index", n.a)?.to_le_bytes(),
        );
        if let Some(b) = n.b {
            put(
                &mut buf,
                base + record::INPUT_B,
                &to_u16("a tensor index", b)?.to_le_bytes(),
            );
        }
        put(
            &mut buf,
            base + record::OUTPUT,
            &to_u16("a tensor index", n.output)?.to_le_bytes(),
        );
        put(&mut buf, base + record::PARAM, &n.param.to_le_bytes());
        for (k, &g) in n.geometry.iter().enumerate() {
            put(
                &mut buf,
                base + record::GEOMETRY + 2 * k,
                &to_u16("a kernel, stride or padding", g)?.to_le_bytes(),
            );
        }
        put(&mut buf, base + record::ALPHA, &n.alpha.to_le_bytes());
        buf[base + record::CLAMP_MIN] = n.min as u8;
        buf[base + record::CLAMP_MAX] = n.max as u8;
        for (k, (t, &at)) in n.weights.iter().zip(slots).enumerate() {
            let slot = base + record::WEIGHTS + 8 * k;
            put(
                &mut buf,
                slot,
                &to_u32("a weight offset", at)?.to_le_bytes(),
            );
            put(
                &mut buf,
                slot + 4,
                &to_u32("a weight length", t.len())?.to_le_bytes(),
            );
            put(&mut buf, at, t);
        }
    }
    let crc = format::file_crc(&buf);
    put(&mut buf, header::CRC, &crc.to_le_bytes());

    Model::parse(&AlignedBytes::new(&buf))?;
    Ok(buf)
}

/// A chain's program: tensor `i + 1` is the output of layer `i`.
fn chain(
    part: Part,
    precision: Precision,
    range: OutputRange,
    tensors: Vec<TensorDecl>,
    nodes: Vec<Node>,
) -> Program {
    let output = nodes.len();
    Program {
        part,
        precision,
        range,
        inputs: 1,
        tensors,
        nodes,
        output,
    }
}

/// The f32 model file op of a chain layer reading tensor `a` and writing tensor `output`.
pub fn layer_node(layer: &Layer, a: usize, output: usize) -> Node {
    let plain = |op| Node::new(op, a, output);
    match layer {
        Layer::Dense {
            weight,
            bias,
            inputs,
            outputs,
        } => Node {
            weights: vec![
                f32_bytes(&dense_panels(weight, *inputs, *outputs)),
                f32_bytes(bias),
            ],
            ..plain(format::OP_DENSE)
        },
        Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => {
            let op = if matches!(layer, Layer::Conv2d(_)) {
                format::OP_CONV2D
            } else {
                format::OP_CONV_TRANSPOSE2D
            };
            Node {
                geometry: geometry(&c.spec),
                weights: vec![f32_bytes(&c.weight), f32_bytes(&c.bias)],
                ..plain(op)
            }
        }
        Layer::Relu => plain(format::OP_RELU),
        Layer::LeakyRelu { alpha } => Node {
            alpha: *alpha,
            ..plain(format::OP_LEAKY_RELU)
        },
        Layer::Tanh => plain(format::OP_TANH),
        Layer::Sigmoid => plain(format::OP_SIGMOID),
        Layer::Reshape { .. } => plain(format::OP_RESHAPE),
    }
}

/// Writes an f32 model file for `graph`.
pub fn write_f32(graph: &Graph) -> Result<Vec<u8>, TgmError> {
    let shapes = graph.shapes()?;
    let nodes = graph
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| layer_node(layer, i, i + 1))
        .collect();
    let tensors = shapes
        .iter()
        .map(|&shape| TensorDecl { shape, quant: None })
        .collect();
    write_program(&chain(
        graph.part,
        Precision::F32,
        graph.output_range(),
        tensors,
        nodes,
    ))
}

fn linear_node(op: u8, a: usize, output: usize, geometry: [usize; 8], q: &QLinear) -> Node {
    Node {
        geometry,
        min: q.min,
        max: q.max,
        weights: vec![
            i8_bytes(&q.weight),
            i32_bytes(&q.bias),
            i32_bytes(&q.multiplier),
            q.shift.clone(),
        ],
        ..Node::new(op, a, output)
    }
}

/// The int8 model file op of a quantized layer reading tensor `a` and writing `output`.
pub fn qlayer_node(layer: &QLayer, a: usize, output: usize) -> Node {
    match layer {
        QLayer::Dense { q, .. } => linear_node(format::OP_DENSE, a, output, [0; 8], q),
        QLayer::Conv2d { conv, q } => linear_node(format::OP_CONV2D, a, output, geometry(conv), q),
        QLayer::ConvTranspose2d { conv, q } => {
            linear_node(format::OP_CONV_TRANSPOSE2D, a, output, geometry(conv), q)
        }
        QLayer::Activation { table, .. } => Node {
            weights: vec![i8_bytes(table)],
            ..Node::new(format::OP_LUT, a, output)
        },
        QLayer::Reshape { .. } => Node::new(format::OP_RESHAPE, a, output),
    }
}

/// Writes an int8 model file for a quantized graph.
pub fn write_int8(q: &QuantGraph) -> Result<Vec<u8>, TgmError> {
    let shapes = q.shapes()?;
    let mut nodes = Vec::with_capacity(q.layers.len());
    let mut quant = vec![q.input];
    for (i, layer) in q.layers.iter().enumerate() {
        let out_q = match layer {
            QLayer::Dense { q, .. }
            | QLayer::Conv2d { q, .. }
            | QLayer::ConvTranspose2d { q, .. } => q.output,
            QLayer::Activation { output, .. } => *output,
            QLayer::Reshape { .. } => quant[i],
        };
        nodes.push(qlayer_node(layer, i, i + 1));
        quant.push(out_q);
    }
    let tensors = shapes
        .iter()
        .zip(quant)
        .map(|(&shape, q)| TensorDecl {
            shape,
            quant: Some(q),
        })
        .collect();
    write_program(&chain(
        q.part,
        Precision::Int8,
        q.output_range,
        tensors,
        nodes,
    ))
}

/// The `model.rs` a firmware includes next to the model file, so its arena is sized at build time:
/// `ARENA_BYTES`, `LATENT_LEN`, `OUTPUT_LEN` and `MODEL_BYTES`.
pub fn model_rs(model: &Model<'_>, file_name: &str) -> String {
    format!(
        "// Generated by `tinygen export` for `{file_name}`; do not edit.\n\
         \n\
         /// Bytes of the arena `Model::run` and `Model::generate` need (any alignment).\n\
         pub const ARENA_BYTES: usize = {};\n\
         /// Elements of the latent vector `z`.\n\
         pub const LATENT_LEN: usize = {};\n\
         /// Elements of one output sample.\n\
         pub const OUTPUT_LEN: usize = {};\n\
         /// Bytes of the model file.\n\
         pub const MODEL_BYTES: usize = {};\n",
        model.arena_bytes(),
        model.latent_len(),
        model.output_len(),
        model.bytes().len(),
    )
}

/// A copy of a model file at a 16-byte aligned address on the heap, as [`Model::parse`] needs.
///
/// ```ignore
/// let bytes = AlignedBytes::new(&std::fs::read("decoder.tgm")?);
/// let model = Model::parse(&bytes)?;
/// ```
#[derive(Clone)]
pub struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes` to an aligned buffer.
    pub fn new(bytes: &[u8]) -> Self {
        let mut buf = vec![0u8; bytes.len() + format::ALIGN - 1];
        // The heap block never moves while `buf` is alive (it is never grown), so the offset
        // stays right when `AlignedBytes` is moved.
        let start = buf
            .as_ptr()
            .align_offset(format::ALIGN)
            .min(format::ALIGN - 1);
        buf[start..start + bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            buf,
            start,
            len: bytes.len(),
        }
    }

    /// The aligned bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}
