//! Small graphs beyond a chain, for the tests of the model file, the runtime and the ONNX
//! writers: a residual block, a conditional input, an affine coupling and a permutation. Each
//! comes as a model file [`Program`] (f32 or int8), as plain interpreters built on the
//! runtime's reference kernels, as the exporter's f32 [`Dag`] (its model file and ONNX), and as
//! int8 ONNX QDQ ([`Graph::onnx_qdq`]).

use prost::Message;
use tinygen_export::dag::{Dag, DagNode, Op as DagOp, Operand};
use tinygen_export::onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use tinygen_export::onnx::{IR_VERSION, OPSET_VERSION};
use tinygen_export::quant::QParams;
use tinygen_export::tgm::{self, Node, Program, TensorDecl};
use tinygen_export::{Layer, OutputRange, Part, Shape};
use tinygen_runtime::format;
use tinygen_runtime::kernels::graph::{Binary, Quant};
use tinygen_runtime::kernels::{self, reference, Requant};
use tinygen_runtime::model::Precision;
use tinygen_runtime::rng::Rng;

/// One op of a test graph; every op writes a new tensor (the next index).
#[derive(Clone, Debug)]
pub enum G {
    /// Dense from tensor `a` to `out` features (seeded weights).
    Dense {
        /// Input tensor.
        a: usize,
        /// Output features.
        out: usize,
    },
    /// ReLU of a tensor.
    Relu(usize),
    /// tanh of a tensor.
    Tanh(usize),
    /// exp of a tensor.
    Exp(usize),
    /// `a op b`, element-wise.
    Bin(Binary, usize, usize),
    /// `a op v[c]`, per channel.
    BinChannel(Binary, usize, Vec<f32>),
    /// Channels of `a`, then of `b`.
    Concat(usize, usize),
    /// Channels `first .. first + len` of `a`.
    Slice {
        /// Input tensor.
        a: usize,
        /// First channel.
        first: usize,
        /// Channels.
        len: usize,
    },
    /// Channels of `a` picked by an index table.
    Gather(usize, Vec<u16>),
}

impl G {
    /// The first input.
    pub fn input(&self) -> usize {
        match *self {
            G::Dense { a, .. }
            | G::Relu(a)
            | G::Tanh(a)
            | G::Exp(a)
            | G::Bin(_, a, _)
            | G::BinChannel(_, a, _)
            | G::Concat(a, _)
            | G::Slice { a, .. }
            | G::Gather(a, _) => a,
        }
    }
}

/// A test graph: input shapes and ops; tensor `k` is input `k`, then the output of op
/// `k - inputs`; the last op's output is the graph's.
pub struct Graph {
    /// A name for messages.
    pub name: &'static str,
    /// Shapes of the graph inputs.
    pub inputs: Vec<Shape>,
    /// The ops.
    pub ops: Vec<G>,
}

/// Weights of a Dense op, for both precisions (the int8 ones are not a quantisation of the f32
/// ones: each precision's graph is tested on its own).
pub struct DenseWeights {
    /// `[out, in]` f32 weights.
    pub w: Vec<f32>,
    /// f32 bias.
    pub b: Vec<f32>,
    /// `[out, in]` int8 weights.
    pub wq: Vec<i8>,
    /// int32 bias.
    pub bq: Vec<i32>,
    /// Requantisation multipliers.
    pub multiplier: Vec<i32>,
    /// Requantisation shifts.
    pub shift: Vec<u8>,
}

/// The int8 weight scale of every Dense (a power of two, as the exporter's bit-exact rule has).
pub const WEIGHT_SCALE_EXP: i32 = -7;

/// Seeded Dense weights. The int8 ones follow the QDQ graph's arithmetic with power-of-two
/// scales: weight scale `2^WEIGHT_SCALE_EXP`, bias in units of `s_w * s_in`, and the
/// requantisation `acc * s_w * s_in / s_out` as the multiplier `2^30` and a shift, which is
/// exact (as tract's f32 Gemm is, while the accumulator stays below `2^24`).
fn dense_weights(seed: u64, inputs: usize, outputs: usize, s_in: f32, s_out: f32) -> DenseWeights {
    let mut r = Rng::seed_from_u64(seed);
    let mut f = |s: f32| (r.next_f32() * 2.0 - 1.0) * s;
    let w: Vec<f32> = (0..inputs * outputs).map(|_| f(0.6)).collect();
    let b: Vec<f32> = (0..outputs).map(|_| f(0.2)).collect();
    let wq = w.iter().map(|&v| (v * 127.0) as i8).collect();
    let bq = b.iter().map(|&v| (v * 300.0) as i32).collect();
    // acc * 2^(e_w + e_in - e_out) = acc * 2^30 / 2^shift.
    let e = WEIGHT_SCALE_EXP + s_in.log2() as i32 - s_out.log2() as i32;
    let shift = u8::try_from(30 - e).expect("a shift in range");
    DenseWeights {
        w,
        b,
        wq,
        bq,
        multiplier: vec![1 << 30; outputs],
        shift: vec![shift; outputs],
    }
}

impl Graph {
    /// Shapes of every tensor.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut s = self.inputs.clone();
        for op in &self.ops {
            let a = s[op.input()];
            s.push(match op {
                G::Dense { out, .. } => Shape::flat(*out),
                G::Concat(_, b) => Shape::chw(a.c + s[*b].c, a.h, a.w),
                G::Slice { len, .. } => Shape::chw(*len, a.h, a.w),
                G::Gather(_, idx) => Shape::chw(idx.len(), a.h, a.w),
                _ => a,
            });
        }
        s
    }

    /// The weights of op `k`, a Dense.
    pub fn weights(&self, k: usize) -> DenseWeights {
        let shapes = self.shapes();
        let q = self.quant();
        let out_tensor = self.inputs.len() + k;
        match &self.ops[k] {
            G::Dense { a, out } => dense_weights(
                100 + k as u64,
                shapes[*a].len(),
                *out,
                q[*a].scale,
                q[out_tensor].scale,
            ),
            _ => unreachable!(),
        }
    }

    /// Power-of-two quantisation of every tensor (int8).
    pub fn quant(&self) -> Vec<Quant> {
        let mut r = Rng::seed_from_u64(7);
        let n = self.inputs.len() + self.ops.len();
        let mut q: Vec<Quant> = (0..n)
            .map(|_| Quant {
                scale: 2f32.powi(-5 - (r.next_u32() % 3) as i32),
                zero_point: (r.next_u32() % 21) as i8 - 10,
            })
            .collect();
        // Slice and Gather keep their input's quantisation.
        for (k, op) in self.ops.iter().enumerate() {
            if let G::Slice { a, .. } | G::Gather(a, _) = op {
                q[self.inputs.len() + k] = q[*a];
            }
        }
        q
    }

    /// The model file program of the graph.
    pub fn program(&self, precision: Precision) -> Program {
        let shapes = self.shapes();
        let quant = self.quant();
        let int8 = precision == Precision::Int8;
        let n_in = self.inputs.len();
        let tensors = shapes
            .iter()
            .zip(&quant)
            .map(|(&shape, q)| TensorDecl {
                shape,
                quant: int8.then_some(QParams {
                    scale: q.scale,
                    zero_point: q.zero_point,
                }),
            })
            .collect();
        let binary_code = |op: Binary| match op {
            Binary::Add => format::OP_ADD,
            Binary::Sub => format::OP_SUB,
            Binary::Mul => format::OP_MUL,
        };
        let nodes = self
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| {
                let out = n_in + k;
                let a = op.input();
                match op {
                    G::Dense { out: n, .. } => {
                        let dw = self.weights(k);
                        let inputs = shapes[a].len();
                        Node {
                            min: if int8 { -128 } else { 0 },
                            max: if int8 { 127 } else { 0 },
                            weights: if int8 {
                                vec![
                                    dw.wq.iter().map(|&v| v as u8).collect(),
                                    dw.bq.iter().flat_map(|v| v.to_le_bytes()).collect(),
                                    dw.multiplier.iter().flat_map(|v| v.to_le_bytes()).collect(),
                                    dw.shift.clone(),
                                ]
                            } else {
                                vec![
                                    tgm::f32_weight(&tgm::dense_panels(&dw.w, inputs, *n)),
                                    tgm::f32_weight(&dw.b),
                                ]
                            },
                            ..Node::new(format::OP_DENSE, a, out)
                        }
                    }
                    G::Relu(_) | G::Tanh(_) if int8 => Node {
                        weights: vec![lut(op, quant[a], quant[out])
                            .iter()
                            .map(|&v| v as u8)
                            .collect()],
                        ..Node::new(format::OP_LUT, a, out)
                    },
                    G::Exp(_) if int8 => Node {
                        weights: vec![lut(op, quant[a], quant[out])
                            .iter()
                            .map(|&v| v as u8)
                            .collect()],
                        ..Node::new(format::OP_LUT, a, out)
                    },
                    G::Relu(_) => Node::new(format::OP_RELU, a, out),
                    G::Tanh(_) => Node::new(format::OP_TANH, a, out),
                    G::Exp(_) => Node::new(format::OP_EXP, a, out),
                    G::Bin(op, _, b) => Node {
                        b: Some(*b),
                        param: format::OPERAND_TENSOR,
                        ..Node::new(binary_code(*op), a, out)
                    },
                    G::BinChannel(op, _, v) => Node {
                        param: format::OPERAND_CHANNEL,
                        weights: vec![tgm::f32_weight(v)],
                        ..Node::new(binary_code(*op), a, out)
                    },
                    G::Concat(_, b) => Node {
                        b: Some(*b),
                        ..Node::new(format::OP_CONCAT, a, out)
                    },
                    G::Slice { first, .. } => Node {
                        param: *first as u32,
                        ..Node::new(format::OP_SLICE, a, out)
                    },
                    G::Gather(_, idx) => Node {
                        weights: vec![tgm::gather_index(idx)],
                        ..Node::new(format::OP_GATHER, a, out)
                    },
                }
            })
            .collect();
        Program {
            part: Part::Generator,
            precision,
            range: OutputRange::Unbounded,
            inputs: n_in,
            tensors,
            nodes,
            output: n_in + self.ops.len() - 1,
        }
    }

    /// The plain interpreter: f32.
    pub fn run_f32(&self, inputs: &[Vec<f32>]) -> Vec<f32> {
        let shapes = self.shapes();
        let mut t: Vec<Vec<f32>> = inputs.to_vec();
        for (k, op) in self.ops.iter().enumerate() {
            let a = t[op.input()].clone();
            let plane = shapes[op.input()].h * shapes[op.input()].w;
            let y = match op {
                G::Dense { out, .. } => {
                    let dw = self.weights(k);
                    let mut y = vec![0.0; *out];
                    reference::dense_f32(&dw.w, &dw.b, &a, &mut y);
                    y
                }
                G::Relu(_) => a.iter().map(|&v| v.max(0.0)).collect(),
                G::Tanh(_) => {
                    // The runtime's tanh (a polynomial, the same bits on every target; tested
                    // against libm's within 2 ulp in act.rs).
                    let mut y = a.clone();
                    kernels::tanh_f32(&mut y);
                    y
                }
                G::Exp(_) => {
                    let mut y = a.clone();
                    reference::exp_f32(&mut y);
                    y
                }
                G::Bin(op, _, b) => {
                    let mut y = a.clone();
                    reference::binary_f32(*op, &mut y, &t[*b]);
                    y
                }
                G::BinChannel(op, _, v) => {
                    let mut y = a.clone();
                    reference::binary_channel_f32(*op, &mut y, v, plane);
                    y
                }
                G::Concat(_, b) => [a.clone(), t[*b].clone()].concat(),
                G::Slice { first, len, .. } => a[first * plane..(first + len) * plane].to_vec(),
                G::Gather(_, idx) => {
                    let mut y = vec![0.0; idx.len() * plane];
                    reference::gather(idx, plane, &a, &mut y);
                    y
                }
            };
            t.push(y);
        }
        t.pop().unwrap()
    }

    /// The plain interpreter: int8, dequantised output.
    pub fn run_i8(&self, inputs: &[Vec<f32>]) -> Vec<f32> {
        let shapes = self.shapes();
        let q = self.quant();
        let mut t: Vec<Vec<i8>> = inputs
            .iter()
            .zip(&q)
            .map(|(x, q)| x.iter().map(|&v| q.quantize(v)).collect())
            .collect();
        let n_in = self.inputs.len();
        for (k, op) in self.ops.iter().enumerate() {
            let (ai, oi) = (op.input(), n_in + k);
            let a = t[ai].clone();
            let plane = shapes[ai].h * shapes[ai].w;
            let y = match op {
                G::Dense { out, .. } => {
                    let dw = self.weights(k);
                    let rq = Requant {
                        in_zero_point: i32::from(q[ai].zero_point),
                        out_zero_point: i32::from(q[oi].zero_point),
                        multiplier: &dw.multiplier,
                        shift: &dw.shift,
                        min: -128,
                        max: 127,
                    };
                    let mut y = vec![0; *out];
                    reference::dense_i8(&dw.wq, &dw.bq, &a, &rq, &mut y);
                    y
                }
                G::Relu(_) | G::Tanh(_) | G::Exp(_) => {
                    let table = lut(op, q[ai], q[oi]);
                    a.iter().map(|&v| table[v as u8 as usize]).collect()
                }
                G::Bin(op, _, b) => {
                    let mut y = a.clone();
                    reference::binary_i8(*op, &mut y, q[ai], &t[*b], q[*b], q[oi]);
                    y
                }
                G::BinChannel(op, _, v) => {
                    let mut y = a.clone();
                    reference::binary_channel_i8(*op, &mut y, q[ai], v, plane, q[oi]);
                    y
                }
                G::Concat(_, b) => {
                    let mut x = a.clone();
                    let mut y = t[*b].clone();
                    reference::requantize_i8(&mut x, q[ai], q[oi]);
                    reference::requantize_i8(&mut y, q[*b], q[oi]);
                    [x, y].concat()
                }
                G::Slice { first, len, .. } => a[first * plane..(first + len) * plane].to_vec(),
                G::Gather(_, idx) => {
                    let mut y = vec![0; idx.len() * plane];
                    reference::gather(idx, plane, &a, &mut y);
                    y
                }
            };
            t.push(y);
        }
        let last = n_in + self.ops.len() - 1;
        t[last].iter().map(|&v| q[last].dequantize(v)).collect()
    }
}

/// The int8 table of an activation: dequantize, apply in f32, quantize.
pub fn lut(op: &G, input: Quant, output: Quant) -> [i8; 256] {
    let mut table = [0i8; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let x = input.dequantize(i as u8 as i8);
        let y = match op {
            G::Relu(_) => x.max(0.0),
            G::Tanh(_) => libm::tanhf(x),
            _ => libm::expf(x),
        };
        *slot = output.quantize(y);
    }
    table
}

/// Dense, ReLU, Dense, Add of the block's input.
pub fn residual() -> Graph {
    Graph {
        name: "residual",
        inputs: vec![Shape::flat(12)],
        ops: vec![
            G::Dense { a: 0, out: 12 },
            G::Relu(1),
            G::Dense { a: 2, out: 12 },
            G::Bin(Binary::Add, 3, 0),
        ],
    }
}

/// Concat of the latent and a one-hot class code, then Dense, Tanh.
pub fn conditional() -> Graph {
    Graph {
        name: "conditional",
        inputs: vec![Shape::flat(8), Shape::flat(10)],
        ops: vec![G::Concat(0, 1), G::Dense { a: 2, out: 16 }, G::Tanh(3)],
    }
}

/// RealNVP's affine coupling, generative direction: y2 = x2 * exp(s(x1)) + t(x1), y = [x1, y2].
pub fn coupling() -> Graph {
    Graph {
        name: "coupling",
        inputs: vec![Shape::flat(16)],
        ops: vec![
            G::Slice {
                a: 0,
                first: 0,
                len: 8,
            }, // 1: x1
            G::Slice {
                a: 0,
                first: 8,
                len: 8,
            }, // 2: x2
            G::Dense { a: 1, out: 16 },                  // 3: hidden
            G::Relu(3),                                  // 4
            G::Dense { a: 4, out: 8 },                   // 5: s
            G::Tanh(5),                                  // 6
            G::BinChannel(Binary::Mul, 6, vec![0.5; 8]), // 7: scale
            G::Exp(7),                                   // 8
            G::Dense { a: 4, out: 8 },                   // 9: t
            G::Bin(Binary::Mul, 2, 8),                   // 10: x2 * exp(s)
            G::Bin(Binary::Add, 10, 9),                  // 11: + t
            G::Concat(1, 11),                            // 12: y
            G::BinChannel(Binary::Sub, 12, (0..16).map(|i| i as f32 * 0.01).collect()), // 13
        ],
    }
}

/// A fixed permutation of channels (of a `[6, 2, 2]` tensor), between two per-channel ops.
pub fn permutation() -> Graph {
    Graph {
        name: "permutation",
        inputs: vec![Shape::chw(6, 2, 2)],
        ops: vec![
            G::BinChannel(Binary::Add, 0, vec![0.1, -0.2, 0.3, 0.0, 0.5, -0.6]),
            G::Gather(1, vec![5, 3, 1, 0, 2, 4]),
            G::BinChannel(Binary::Mul, 2, vec![1.0, 0.5, 2.0, -1.0, 0.25, 1.5]),
        ],
    }
}

/// The four graphs.
pub fn graphs() -> Vec<Graph> {
    vec![residual(), conditional(), coupling(), permutation()]
}

/// Inputs for seed `seed`: a Gaussian latent, and a one-hot class for a second input.
pub fn sample_inputs(g: &Graph, seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng::seed_from_u64(seed);
    g.inputs
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut x = vec![0.0; s.len()];
            if k == 0 {
                r.fill_gaussian(&mut x);
            } else {
                x[(seed as usize) % s.len()] = 1.0; // one-hot class
            }
            x
        })
        .collect()
}

/// ONNX dims of a tensor of shape `s` with a symbolic batch: `[N, c]` for a flat vector,
/// `[N, c, h, w]` otherwise.
fn onnx_dims(s: Shape) -> Vec<usize> {
    if s.h == 1 && s.w == 1 {
        vec![s.c]
    } else {
        vec![s.c, s.h, s.w]
    }
}

fn value_info(name: &str, s: Shape) -> ValueInfoProto {
    typed_value_info(name, s, DataType::Float)
}

fn typed_value_info(name: &str, s: Shape, elem: DataType) -> ValueInfoProto {
    let batch = Dimension {
        denotation: String::new(),
        value: Some(dimension::Value::DimParam("N".into())),
    };
    let dim = std::iter::once(batch)
        .chain(onnx_dims(s).into_iter().map(|d| Dimension {
            denotation: String::new(),
            value: Some(dimension::Value::DimValue(d as i64)),
        }))
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn initializer(name: &str, dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data,
        ..Default::default()
    }
}

fn f32_init(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    initializer(
        name,
        dims,
        DataType::Float,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn i64_init(name: &str, v: &[i64]) -> TensorProto {
    initializer(
        name,
        &[v.len()],
        DataType::Int64,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn node(op: &str, inputs: &[String], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.to_vec(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        attribute,
        doc_string: String::new(),
        domain: String::new(),
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(i),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

impl Graph {
    /// The f32 graph as the exporter's [`Dag`] (which writes its model file and its ONNX).
    pub fn dag(&self) -> Dag {
        let shapes = self.shapes();
        let nodes = self
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| {
                let a = op.input();
                let op = match op {
                    G::Dense { out, .. } => {
                        let dw = self.weights(k);
                        DagOp::Layer(Layer::Dense {
                            inputs: shapes[a].len(),
                            outputs: *out,
                            weight: dw.w,
                            bias: dw.b,
                        })
                    }
                    G::Relu(_) => DagOp::Layer(Layer::Relu),
                    G::Tanh(_) => DagOp::Layer(Layer::Tanh),
                    G::Exp(_) => DagOp::Exp,
                    G::Bin(op, _, b) => DagOp::Binary(*op, Operand::Tensor(*b)),
                    G::BinChannel(op, _, v) => DagOp::Binary(*op, Operand::Channel(v.clone())),
                    G::Concat(_, b) => DagOp::Concat(*b),
                    G::Slice { first, len, .. } => DagOp::Slice {
                        first: *first,
                        len: *len,
                    },
                    G::Gather(_, idx) => DagOp::Gather(idx.clone()),
                };
                DagNode { input: a, op }
            })
            .collect();
        Dag {
            part: Part::Generator,
            inputs: self.inputs.clone(),
            nodes,
        }
    }

    /// The int8 graph as ONNX QDQ with standard operators: every tensor is quantized
    /// (`QuantizeLinear`) and dequantized (`DequantizeLinear`) with its power-of-two scale and
    /// zero point, every op computes in f32 between them (Dense as a Gemm on the dequantized
    /// weights and bias); the outputs are the last tensor dequantized (`d{last}`) and as int8
    /// (`q{last}`). With power-of-two
    /// scales each step is exact, so the runtime's int8 ops must give the same bits.
    pub fn onnx_qdq(&self) -> Vec<u8> {
        let shapes = self.shapes();
        let q = self.quant();
        let n_in = self.inputs.len();
        let (mut nodes, mut inits) = (Vec::new(), Vec::new());
        // Scale and zero point initializers of every tensor, and its Q -> DQ pair.
        let mut qdq = |k: usize, f: String, nodes: &mut Vec<NodeProto>| {
            inits.push(f32_init(&format!("s{k}"), &[], &[q[k].scale]));
            inits.push(initializer(
                &format!("zp{k}"),
                &[],
                DataType::Int8,
                vec![q[k].zero_point as u8],
            ));
            let (s, zp) = (format!("s{k}"), format!("zp{k}"));
            nodes.push(node(
                "QuantizeLinear",
                &[f, s.clone(), zp.clone()],
                &format!("q{k}"),
                vec![],
            ));
            nodes.push(node(
                "DequantizeLinear",
                &[format!("q{k}"), s, zp],
                &format!("d{k}"),
                vec![],
            ));
        };
        for k in 0..n_in {
            qdq(k, format!("x{k}"), &mut nodes);
        }
        let mut consts = Vec::new();
        for (k, op) in self.ops.iter().enumerate() {
            let o = n_in + k;
            let (a, out) = (format!("d{}", op.input()), format!("f{o}"));
            let s = shapes[op.input()];
            let channel_dims = |c: usize| {
                if s.h == 1 && s.w == 1 {
                    vec![c]
                } else {
                    vec![c, 1, 1]
                }
            };
            let binary = |op: &Binary| match op {
                Binary::Add => "Add",
                Binary::Sub => "Sub",
                Binary::Mul => "Mul",
            };
            match op {
                G::Dense { out: n, .. } => {
                    let dw = self.weights(k);
                    let sw = 2f32.powi(WEIGHT_SCALE_EXP);
                    let w: Vec<f32> = dw.wq.iter().map(|&v| f32::from(v) * sw).collect();
                    let b: Vec<f32> = dw
                        .bq
                        .iter()
                        .map(|&v| v as f32 * sw * q[op.input()].scale)
                        .collect();
                    consts.push(f32_init(&format!("{out}.w"), &[*n, s.len()], &w));
                    consts.push(f32_init(&format!("{out}.b"), &[*n], &b));
                    let inputs = [a, format!("{out}.w"), format!("{out}.b")];
                    nodes.push(node("Gemm", &inputs, &out, vec![attr_int("transB", 1)]));
                }
                G::Relu(_) => nodes.push(node("Relu", &[a], &out, vec![])),
                G::Tanh(_) => nodes.push(node("Tanh", &[a], &out, vec![])),
                G::Exp(_) => nodes.push(node("Exp", &[a], &out, vec![])),
                G::Bin(op, _, b) => {
                    nodes.push(node(binary(op), &[a, format!("d{b}")], &out, vec![]))
                }
                G::BinChannel(op, _, v) => {
                    consts.push(f32_init(&format!("{out}.v"), &channel_dims(v.len()), v));
                    nodes.push(node(binary(op), &[a, format!("{out}.v")], &out, vec![]));
                }
                G::Concat(_, b) => nodes.push(node(
                    "Concat",
                    &[a, format!("d{b}")],
                    &out,
                    vec![attr_int("axis", 1)],
                )),
                G::Slice { first, len, .. } => {
                    let (first, end) = (*first as i64, (*first + *len) as i64);
                    consts.push(i64_init(&format!("{out}.starts"), &[first]));
                    consts.push(i64_init(&format!("{out}.ends"), &[end]));
                    consts.push(i64_init(&format!("{out}.axes"), &[1]));
                    let inputs = [
                        a,
                        format!("{out}.starts"),
                        format!("{out}.ends"),
                        format!("{out}.axes"),
                    ];
                    nodes.push(node("Slice", &inputs, &out, vec![]));
                }
                G::Gather(_, idx) => {
                    let idx: Vec<i64> = idx.iter().map(|&i| i64::from(i)).collect();
                    consts.push(i64_init(&format!("{out}.index"), &idx));
                    let inputs = [a, format!("{out}.index")];
                    nodes.push(node("Gather", &inputs, &out, vec![attr_int("axis", 1)]));
                }
            }
            qdq(o, out, &mut nodes);
        }
        let last = n_in + self.ops.len() - 1;
        let mut all = consts;
        all.extend(inits);
        let graph = GraphProto {
            node: nodes,
            name: format!("{}_qdq", self.name),
            initializer: all,
            doc_string: String::new(),
            input: (0..n_in)
                .map(|k| value_info(&format!("x{k}"), shapes[k]))
                .collect(),
            output: vec![
                value_info(&format!("d{last}"), shapes[last]),
                typed_value_info(&format!("q{last}"), shapes[last], DataType::Int8),
            ],
            value_info: vec![],
        };
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "tinygen-testkit".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            domain: String::new(),
            model_version: 1,
            doc_string: String::new(),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_VERSION,
            }],
            metadata_props: vec![],
        }
        .encode_to_vec()
    }
}
