//! The model file writer: a [`Graph`] (f32) or a [`QuantGraph`] (int8) to the `.tgm` bytes the
//! runtime reads, plus the `model.rs` constants a firmware sizes its arena with.
//!
//! Every layout constant comes from [`tinygen_runtime::format`]; each writer parses its own
//! output with [`Model::parse`] before returning it, so a file this module returns is one the
//! runtime accepts.

use std::ops::Deref;

use tinygen_runtime::format::{self, header, record};
use tinygen_runtime::model::{Model, Precision};

use crate::graph::{Graph, GraphError, Layer, Shape};
use crate::quant::{ConvAttrs, QLayer, QLinear, QuantGraph};

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
    /// The written file does not parse: a bug in the writer or in the runtime's parser.
    #[error("the written model file does not parse: {0}")]
    Parse(#[from] tinygen_runtime::error::Error),
}

/// One layer record and its tensors, before layout.
struct Record {
    op: u8,
    output: Shape,
    geometry: [usize; 8],
    alpha: f32,
    in_zp: i8,
    out_zp: i8,
    min: i8,
    max: i8,
    tensors: Vec<Vec<u8>>,
}

impl Record {
    fn plain(op: u8, output: Shape) -> Self {
        Record {
            op,
            output,
            geometry: [0; 8],
            alpha: 0.0,
            in_zp: 0,
            out_zp: 0,
            min: 0,
            max: 0,
            tensors: Vec::new(),
        }
    }
}

/// Header fields, before layout.
struct Head {
    kind: u8,
    precision: u8,
    range: u8,
    input: Shape,
    output: Shape,
    input_q: (f32, i8),
    output_q: (f32, i8),
    max_elements: usize,
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

fn geometry(c: &ConvAttrs) -> [usize; 8] {
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

/// Lays out header, records and tensors, computes the CRC, and parses the result.
fn assemble(head: &Head, records: &[Record]) -> Result<Vec<u8>, TgmError> {
    let table_end = format::HEADER_LEN + records.len() * format::RECORD_LEN;
    let data_offset = format::align_up(table_end).expect("table size fits usize");
    // Tensor offsets, in layer and slot order.
    let mut end = data_offset;
    let mut offsets = Vec::with_capacity(records.len());
    for r in records {
        let mut slots = Vec::with_capacity(r.tensors.len());
        for t in &r.tensors {
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
    buf[header::KIND] = head.kind;
    buf[header::PRECISION] = head.precision;
    put_shape(&mut buf, header::INPUT_SHAPE, head.input)?;
    put_shape(&mut buf, header::OUTPUT_SHAPE, head.output)?;
    buf[header::OUTPUT_RANGE] = head.range;
    if head.precision == format::PRECISION_INT8 {
        buf[header::INPUT_ZERO_POINT] = head.input_q.1 as u8;
        buf[header::OUTPUT_ZERO_POINT] = head.output_q.1 as u8;
        put(&mut buf, header::INPUT_SCALE, &head.input_q.0.to_le_bytes());
        put(
            &mut buf,
            header::OUTPUT_SCALE,
            &head.output_q.0.to_le_bytes(),
        );
    }
    let arena =
        format::arena_bytes(head.precision, head.max_elements).ok_or(TgmError::TooLarge {
            what: "the arena",
            value: usize::MAX,
            max: u32::MAX as usize,
        })?;
    put(
        &mut buf,
        header::LAYER_COUNT,
        &to_u32("the layer count", records.len())?.to_le_bytes(),
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

    for (i, (r, slots)) in records.iter().zip(&offsets).enumerate() {
        let base = format::HEADER_LEN + i * format::RECORD_LEN;
        buf[base + record::OP] = r.op;
        put_shape(&mut buf, base + record::OUTPUT_SHAPE, r.output)?;
        for (k, &g) in r.geometry.iter().enumerate() {
            put(
                &mut buf,
                base + record::GEOMETRY + 2 * k,
                &to_u16("a kernel, stride or padding", g)?.to_le_bytes(),
            );
        }
        put(&mut buf, base + record::ALPHA, &r.alpha.to_le_bytes());
        buf[base + record::IN_ZERO_POINT] = r.in_zp as u8;
        buf[base + record::OUT_ZERO_POINT] = r.out_zp as u8;
        buf[base + record::CLAMP_MIN] = r.min as u8;
        buf[base + record::CLAMP_MAX] = r.max as u8;
        for (k, (t, &at)) in r.tensors.iter().zip(slots).enumerate() {
            let slot = base + record::TENSORS + 8 * k;
            put(
                &mut buf,
                slot,
                &to_u32("a tensor offset", at)?.to_le_bytes(),
            );
            put(
                &mut buf,
                slot + 4,
                &to_u32("a tensor length", t.len())?.to_le_bytes(),
            );
            put(&mut buf, at, t);
        }
    }
    let crc = format::file_crc(&buf);
    put(&mut buf, header::CRC, &crc.to_le_bytes());

    Model::parse(&AlignedBytes::new(&buf))?;
    Ok(buf)
}

/// Writes an f32 model file for `graph`.
pub fn write_f32(graph: &Graph) -> Result<Vec<u8>, TgmError> {
    let shapes = graph.shapes()?;
    let mut records = Vec::with_capacity(graph.layers.len());
    for (layer, out) in graph.layers.iter().zip(&shapes[1..]) {
        let out = *out;
        records.push(match layer {
            Layer::Dense {
                weight,
                bias,
                inputs,
                outputs,
            } => Record {
                tensors: vec![
                    f32_bytes(&dense_panels(weight, *inputs, *outputs)),
                    f32_bytes(bias),
                ],
                ..Record::plain(format::OP_DENSE, out)
            },
            Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => {
                let op = if matches!(layer, Layer::Conv2d(_)) {
                    format::OP_CONV2D
                } else {
                    format::OP_CONV_TRANSPOSE2D
                };
                Record {
                    geometry: geometry(&ConvAttrs::of(c)),
                    tensors: vec![f32_bytes(&c.weight), f32_bytes(&c.bias)],
                    ..Record::plain(op, out)
                }
            }
            Layer::Relu => Record::plain(format::OP_RELU, out),
            Layer::LeakyRelu { alpha } => Record {
                alpha: *alpha,
                ..Record::plain(format::OP_LEAKY_RELU, out)
            },
            Layer::Tanh => Record::plain(format::OP_TANH, out),
            Layer::Sigmoid => Record::plain(format::OP_SIGMOID, out),
            Layer::Reshape { .. } => Record::plain(format::OP_RESHAPE, out),
        });
    }
    let head = Head {
        kind: graph.part.code(),
        precision: Precision::F32.code(),
        range: graph.output_range().code(),
        input: graph.input,
        output: *shapes.last().expect("shapes holds the input"),
        input_q: (0.0, 0),
        output_q: (0.0, 0),
        max_elements: shapes.iter().map(Shape::len).max().unwrap_or(0),
    };
    assemble(&head, &records)
}

fn linear_record(op: u8, out: Shape, geometry: [usize; 8], q: &QLinear) -> Record {
    Record {
        geometry,
        in_zp: q.input.zero_point,
        out_zp: q.output.zero_point,
        min: q.min,
        max: q.max,
        tensors: vec![
            i8_bytes(&q.weight),
            i32_bytes(&q.bias),
            i32_bytes(&q.multiplier),
            q.shift.clone(),
        ],
        ..Record::plain(op, out)
    }
}

/// Writes an int8 model file for a quantized graph.
pub fn write_int8(q: &QuantGraph) -> Result<Vec<u8>, TgmError> {
    let shapes = q.shapes()?;
    let mut records = Vec::with_capacity(q.layers.len());
    for (layer, out) in q.layers.iter().zip(&shapes[1..]) {
        let out = *out;
        records.push(match layer {
            QLayer::Dense { q, .. } => linear_record(format::OP_DENSE, out, [0; 8], q),
            QLayer::Conv2d { conv, q } => linear_record(format::OP_CONV2D, out, geometry(conv), q),
            QLayer::ConvTranspose2d { conv, q } => {
                linear_record(format::OP_CONV_TRANSPOSE2D, out, geometry(conv), q)
            }
            QLayer::Activation {
                input,
                output,
                table,
                ..
            } => Record {
                in_zp: input.zero_point,
                out_zp: output.zero_point,
                tensors: vec![i8_bytes(table)],
                ..Record::plain(format::OP_LUT, out)
            },
            QLayer::Reshape { .. } => Record::plain(format::OP_RESHAPE, out),
        });
    }
    let head = Head {
        kind: q.part.code(),
        precision: Precision::Int8.code(),
        range: q.output_range.code(),
        input: q.input_shape,
        output: *shapes.last().expect("shapes holds the input"),
        input_q: (q.input.scale, q.input.zero_point),
        output_q: (q.output.scale, q.output.zero_point),
        max_elements: shapes.iter().map(Shape::len).max().unwrap_or(0),
    };
    assemble(&head, &records)
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
