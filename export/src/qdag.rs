//! The int8 quantiser for graphs with branches ([`Dag`]): a flow's couplings, an imported
//! generator's residual additions and concatenations.
//!
//! It follows the chain quantiser's scale rule ([`crate::quant`]): every tensor gets a
//! power-of-two activation scale from its range observed on calibration inputs (run through the
//! runtime's f32 path), Dense and convolution weights get snapped per-channel scales, and a ReLU
//! read only through reshapes by the layer before it folds into that layer's clamp. The other
//! ops become what the model file's int8 path runs:
//! - Relu, LeakyRelu, Tanh, Sigmoid and Exp: 256-entry tables between the input's and the
//!   output's quantisation;
//! - Add, Sub, Mul (of two tensors, or of a tensor and a per-channel constant) and Concat:
//!   dequantize, compute in f32, quantize to the output's own scale (Concat moves each input to
//!   it); with power-of-two scales each result is the exact value rounded once, which is what
//!   the QDQ graph ([`crate::onnx::qdq_graph`]) computes in tract and onnxruntime;
//! - Reshape, Slice and Gather keep their input's quantisation.
//!
//! Free scales are not offered here: a graph is bit-exact with its QDQ twin or not written.

use tinygen_runtime::model::Precision;

use crate::dag::{Dag, DagNode, Op};
use crate::graph::{GraphError, Layer, OutputRange, Part, Shape};
use crate::quant::{
    activation_params, calibrate_file, quantize_linear, Activation, QLayer, QParams, QuantError,
};
use crate::tgm::{self, Program, TensorDecl, TgmError};

/// What a node of a quantized graph computes.
#[derive(Debug, Clone, PartialEq)]
pub enum QOp {
    /// An int8 layer: Dense, a convolution, a table, a reshape.
    Layer(QLayer),
    /// An op that works on int8 tensors as it does on f32 ones: Add, Sub, Mul, Concat, Slice,
    /// Gather (never a chain layer or Exp, which become [`QOp::Layer`]).
    Graph(Op),
}

/// One node: its op and the tensor it reads first.
#[derive(Debug, Clone, PartialEq)]
pub struct QNode {
    /// The tensor the op reads first.
    pub input: usize,
    /// What it computes.
    pub op: QOp,
}

/// A quantized graph with branches. Tensors are numbered as in [`Dag`]: the inputs, then one
/// per node.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantDag {
    /// What part of a trained model this is.
    pub part: Part,
    /// Shapes of the graph inputs.
    pub inputs: Vec<Shape>,
    /// The nodes, in execution order.
    pub nodes: Vec<QNode>,
    /// Quantisation of every tensor.
    pub quant: Vec<QParams>,
    /// Range of the dequantised output, for pixels.
    pub output_range: OutputRange,
}

impl QuantDag {
    /// Index of the output tensor.
    pub fn output(&self) -> usize {
        self.inputs.len() + self.nodes.len() - 1
    }

    /// The f32 graph of the same shapes (zero weights; tables stand as ReLUs).
    fn skeleton(&self) -> Dag {
        Dag {
            part: self.part,
            inputs: self.inputs.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| DagNode {
                    input: n.input,
                    op: match &n.op {
                        QOp::Layer(l) => Op::Layer(l.skeleton()),
                        QOp::Graph(op) => op.clone(),
                    },
                })
                .collect(),
        }
    }

    /// Shapes of every tensor.
    pub fn shapes(&self) -> Result<Vec<Shape>, GraphError> {
        self.skeleton().shapes()
    }

    /// Multiply-accumulates of one sample.
    pub fn macs(&self) -> Result<usize, GraphError> {
        self.skeleton().macs()
    }

    /// The int8 model file program.
    pub fn program(&self) -> Result<Program, TgmError> {
        let shapes = self.shapes()?;
        if self.quant.len() != shapes.len() {
            return Err(TgmError::BadProgram {
                what: format!(
                    "{} quantisations for {} tensors",
                    self.quant.len(),
                    shapes.len()
                ),
            });
        }
        let n_in = self.inputs.len();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (k, node) in self.nodes.iter().enumerate() {
            let (a, out) = (node.input, n_in + k);
            nodes.push(match &node.op {
                QOp::Layer(layer) => {
                    let input = match layer {
                        QLayer::Activation { input, .. } => Some(*input),
                        l => l.linear().map(|q| q.input),
                    };
                    if input.is_some_and(|q| q != self.quant[a]) {
                        return Err(TgmError::BadQuantGraph {
                            layer: k,
                            what: "reads its input with another quantisation".into(),
                        });
                    }
                    tgm::qlayer_node(layer, a, out)
                }
                QOp::Graph(Op::Layer(_) | Op::Exp) => {
                    return Err(TgmError::BadQuantGraph {
                        layer: k,
                        what: "a chain layer or Exp as a graph op (it must be an int8 layer)"
                            .into(),
                    })
                }
                QOp::Graph(op) => op.graph_node(a, out),
            });
        }
        Ok(Program {
            part: self.part,
            precision: Precision::Int8,
            range: self.output_range,
            inputs: n_in,
            tensors: shapes
                .iter()
                .zip(&self.quant)
                .map(|(&shape, &q)| TensorDecl {
                    shape,
                    quant: Some(q),
                })
                .collect(),
            nodes,
            output: self.output(),
        })
    }

    /// The int8 model file.
    pub fn write_int8(&self) -> Result<Vec<u8>, TgmError> {
        tgm::write_program(&self.program()?)
    }
}

/// For every Dense or convolution node, the ReLU node it absorbs: the layer's output is read
/// by nothing but a run of reshapes ending in a ReLU (and is not the graph's output).
fn relu_folds(dag: &Dag) -> Vec<Option<usize>> {
    let n_in = dag.inputs.len();
    let total = n_in + dag.nodes.len();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (k, node) in dag.nodes.iter().enumerate() {
        readers[node.input].push(k);
        if let Some(b) = node.op.second_input() {
            readers[b].push(k);
        }
    }
    let output = dag.output();
    dag.nodes
        .iter()
        .enumerate()
        .map(|(k, node)| {
            if !matches!(
                node.op,
                Op::Layer(Layer::Dense { .. } | Layer::Conv2d(_) | Layer::ConvTranspose2d(_))
            ) {
                return None;
            }
            let mut t = n_in + k;
            loop {
                let [j] = readers[t][..] else { return None };
                if t == output {
                    return None;
                }
                match &dag.nodes[j].op {
                    Op::Layer(Layer::Reshape { .. }) => t = n_in + j,
                    Op::Layer(Layer::Relu) => return Some(j),
                    _ => return None,
                }
            }
        })
        .collect()
}

/// Quantizes `dag` to int8 with activation ranges observed on `calibration` inputs (one
/// vector per sample). Graphs with a second input (a condition) are refused: their
/// calibration needs conditions too.
pub fn quantize_dag(dag: &Dag, calibration: &[Vec<f32>]) -> Result<QuantDag, QuantError> {
    dag.shapes()?;
    if dag.inputs.len() != 1 {
        return Err(QuantError::Unsupported {
            what: format!(
                "a graph with {} inputs (int8 calibration takes a latent only)",
                dag.inputs.len()
            ),
        });
    }
    let ranges = calibrate_file(&dag.write_f32()?, 1 + dag.nodes.len(), calibration)?;
    let folds = relu_folds(dag);
    let n_in = dag.inputs.len();
    // `map[t]`: the tensor of the quantized graph that holds tensor `t` of `dag`.
    let mut map: Vec<usize> = (0..n_in).collect();
    let mut quant: Vec<QParams> = ranges[..n_in]
        .iter()
        .map(|&r| activation_params(r, false))
        .collect();
    let mut nodes = Vec::with_capacity(dag.nodes.len());
    let folded: Vec<usize> = folds.iter().flatten().copied().collect();
    for (k, node) in dag.nodes.iter().enumerate() {
        let a = map[node.input];
        let q_in = quant[a];
        let range = |t: usize| activation_params(ranges[t], false);
        if folded.contains(&k) {
            // A ReLU folded into the layer before it: its output is that layer's (or the
            // last reshape's) output.
            map.push(a);
            continue;
        }
        let (op, q_out) = match &node.op {
            Op::Layer(
                layer @ (Layer::Dense { .. } | Layer::Conv2d(_) | Layer::ConvTranspose2d(_)),
            ) => {
                let relu = folds[k];
                let q_out = range(n_in + relu.unwrap_or(k));
                let q = quantize_linear(k, layer, q_in, q_out, relu.is_some(), false)?;
                let ql = match layer {
                    Layer::Dense {
                        inputs, outputs, ..
                    } => QLayer::Dense {
                        inputs: *inputs,
                        outputs: *outputs,
                        q,
                    },
                    Layer::Conv2d(c) => QLayer::Conv2d { conv: c.spec, q },
                    Layer::ConvTranspose2d(c) => QLayer::ConvTranspose2d { conv: c.spec, q },
                    _ => unreachable!("matched above"),
                };
                (QOp::Layer(ql), q_out)
            }
            Op::Layer(Layer::Reshape { to }) => (QOp::Layer(QLayer::Reshape { to: *to }), q_in),
            Op::Layer(Layer::Relu | Layer::LeakyRelu { .. } | Layer::Tanh | Layer::Sigmoid)
            | Op::Exp => {
                let f = match &node.op {
                    Op::Layer(Layer::Relu) => Activation::Relu,
                    Op::Layer(Layer::LeakyRelu { alpha }) => {
                        Activation::LeakyRelu { alpha: *alpha }
                    }
                    Op::Layer(Layer::Tanh) => Activation::Tanh,
                    Op::Layer(Layer::Sigmoid) => Activation::Sigmoid,
                    _ => Activation::Exp,
                };
                let q_out = range(n_in + k);
                let table = f.table(q_in, q_out);
                (
                    QOp::Layer(QLayer::Activation {
                        f,
                        input: q_in,
                        output: q_out,
                        table,
                    }),
                    q_out,
                )
            }
            Op::Slice { .. } | Op::Gather(_) => (QOp::Graph(remap(&node.op, &map)), q_in),
            Op::Binary(..) | Op::Concat(_) => (QOp::Graph(remap(&node.op, &map)), range(n_in + k)),
        };
        map.push(n_in + nodes.len());
        nodes.push(QNode { input: a, op });
        quant.push(q_out);
    }
    if map[dag.output()] != n_in + nodes.len() - 1 {
        return Err(QuantError::Unsupported {
            what: "a graph whose output is not written by its last node after folding".into(),
        });
    }
    let q = QuantDag {
        part: dag.part,
        inputs: dag.inputs.clone(),
        nodes,
        quant,
        output_range: dag.output_range(),
    };
    q.shapes()?;
    Ok(q)
}

/// `op` with its second tensor renumbered through `map`.
fn remap(op: &Op, map: &[usize]) -> Op {
    match op {
        Op::Binary(kind, crate::dag::Operand::Tensor(b)) => {
            Op::Binary(*kind, crate::dag::Operand::Tensor(map[*b]))
        }
        Op::Concat(b) => Op::Concat(map[*b]),
        op => op.clone(),
    }
}
