//! A static graph with branches, f32: the form of the models a chain cannot hold (a flow's
//! coupling, a conditional generator, a residual block). It lowers to a model file
//! ([`Dag::program_f32`], [`Dag::write_f32`]) and to ONNX with standard operators
//! ([`Dag::to_onnx_f32`]).
//!
//! Tensors are numbered: the graph inputs first (`0 .. inputs.len()`), then the output of node
//! `k` as tensor `inputs.len() + k`. Nodes run in order and read only tensors before them; the
//! last node's output is the graph's. Channel-axis ops (Concat, Slice, Gather, per-channel
//! operands) work on `[C, H, W]`, a flat vector being `[n, 1, 1]`.

use tinygen_runtime::format;
pub use tinygen_runtime::kernels::graph::Binary;
use tinygen_runtime::model::Precision;

use crate::graph::{Graph, GraphError, Layer, OutputRange, Part, Shape};
use crate::onnx::{
    attr_int, emit_layer_node, input_name, output_name, Builder, ElemType, Endpoint, OnnxError,
    Rank,
};
use crate::tgm::{self, Node, Program, TensorDecl, TgmError};

/// The second operand of [`Op::Binary`].
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A tensor of the same shape.
    Tensor(usize),
    /// One value per channel.
    Channel(Vec<f32>),
}

/// What a node computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A chain layer: Dense, convolutions, activations, Reshape.
    Layer(Layer),
    /// `exp(x)`.
    Exp,
    /// `x op operand`, element-wise.
    Binary(Binary, Operand),
    /// The node's input, then this tensor, along the channels.
    Concat(usize),
    /// Channels `first .. first + len` of the input.
    Slice {
        /// First channel.
        first: usize,
        /// Channels taken.
        len: usize,
    },
    /// Output channel `k` is input channel `index[k]` (a fixed permutation, or any pick).
    Gather(Vec<u16>),
}

impl Op {
    /// The ONNX operator name of the op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Layer(l) => l.name(),
            Op::Exp => "Exp",
            Op::Binary(Binary::Add, _) => "Add",
            Op::Binary(Binary::Sub, _) => "Sub",
            Op::Binary(Binary::Mul, _) => "Mul",
            Op::Concat(_) => "Concat",
            Op::Slice { .. } => "Slice",
            Op::Gather(_) => "Gather",
        }
    }

    /// Values the op carries: a layer's weights and biases, a per-channel operand's values.
    pub fn parameters(&self) -> usize {
        match self {
            Op::Layer(layer) => layer.parameters(),
            Op::Binary(_, Operand::Channel(v)) => v.len(),
            _ => 0,
        }
    }

    /// The model file op of a node that is not a chain layer, reading tensor `a` and writing
    /// `output`; it is the same in an f32 and an int8 file (an int8 file holds no Exp: its
    /// quantiser makes it a table). A chain layer gives an empty Reshape.
    pub(crate) fn graph_node(&self, a: usize, output: usize) -> Node {
        let binary_code = |op: Binary| match op {
            Binary::Add => format::OP_ADD,
            Binary::Sub => format::OP_SUB,
            Binary::Mul => format::OP_MUL,
        };
        match self {
            Op::Layer(_) => Node::new(format::OP_RESHAPE, a, output),
            Op::Exp => Node::new(format::OP_EXP, a, output),
            Op::Binary(op, Operand::Tensor(b)) => Node {
                b: Some(*b),
                param: format::OPERAND_TENSOR,
                ..Node::new(binary_code(*op), a, output)
            },
            Op::Binary(op, Operand::Channel(v)) => Node {
                param: format::OPERAND_CHANNEL,
                weights: vec![tgm::f32_weight(v)],
                ..Node::new(binary_code(*op), a, output)
            },
            Op::Concat(b) => Node {
                b: Some(*b),
                ..Node::new(format::OP_CONCAT, a, output)
            },
            Op::Slice { first, .. } => Node {
                param: u32::try_from(*first).unwrap_or(u32::MAX),
                ..Node::new(format::OP_SLICE, a, output)
            },
            Op::Gather(index) => Node {
                weights: vec![tgm::gather_index(index)],
                ..Node::new(format::OP_GATHER, a, output)
            },
        }
    }

    /// The tensor read beside the node's input.
    pub(crate) fn second_input(&self) -> Option<usize> {
        match self {
            Op::Binary(_, Operand::Tensor(b)) | Op::Concat(b) => Some(*b),
            _ => None,
        }
    }
}

/// One node: its op and the tensor it reads first.
#[derive(Debug, Clone, PartialEq)]
pub struct DagNode {
    /// The tensor the op reads (for a binary op or a concatenation, the first operand).
    pub input: usize,
    /// What it computes.
    pub op: Op,
}

/// A static graph with branches; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    /// What part of a trained model this is.
    pub part: Part,
    /// Shapes of the graph inputs (the latent first, then a class code or other condition).
    pub inputs: Vec<Shape>,
    /// The nodes, in execution order.
    pub nodes: Vec<DagNode>,
}

impl Dag {
    /// The chain `graph` as a graph.
    pub fn from_chain(graph: &Graph) -> Dag {
        Dag {
            part: graph.part,
            inputs: vec![graph.input],
            nodes: graph
                .layers
                .iter()
                .enumerate()
                .map(|(k, layer)| DagNode {
                    input: k,
                    op: Op::Layer(layer.clone()),
                })
                .collect(),
        }
    }

    /// Index of the output tensor.
    pub fn output(&self) -> usize {
        self.inputs.len() + self.nodes.len() - 1
    }

    /// Shapes of every tensor, or the first node whose inputs do not fit.
    pub fn shapes(&self) -> Result<Vec<Shape>, GraphError> {
        if self.inputs.is_empty() || self.inputs.iter().any(Shape::is_empty) {
            return Err(GraphError::EmptyInput);
        }
        if self.nodes.is_empty() {
            return Err(GraphError::NoLayers);
        }
        let mut shapes = self.inputs.clone();
        for (k, node) in self.nodes.iter().enumerate() {
            let known = shapes.len();
            for t in std::iter::once(node.input).chain(node.op.second_input()) {
                if t >= known {
                    return Err(GraphError::BadAttribute {
                        layer: k,
                        what: "reads a tensor that is not computed before it",
                    });
                }
            }
            let a = shapes[node.input];
            let mismatch = |expected: String| GraphError::ShapeMismatch {
                layer: k,
                op: node.op.name(),
                input: a,
                expected,
            };
            let out = match &node.op {
                Op::Layer(layer) => layer.output_shape(k, a)?,
                Op::Exp => a,
                Op::Binary(_, Operand::Tensor(b)) => {
                    if shapes[*b] != a {
                        return Err(mismatch(format!("the shape of tensor {b}, {}", shapes[*b])));
                    }
                    a
                }
                Op::Binary(_, Operand::Channel(v)) => {
                    if v.len() != a.c {
                        return Err(mismatch(format!(
                            "{} channels for {} values",
                            v.len(),
                            v.len()
                        )));
                    }
                    a
                }
                Op::Concat(b) => {
                    let b = shapes[*b];
                    if (b.h, b.w) != (a.h, a.w) {
                        return Err(mismatch(format!("the plane of {b}")));
                    }
                    Shape::chw(a.c + b.c, a.h, a.w)
                }
                Op::Slice { first, len } => {
                    if *len == 0 || first + len > a.c {
                        return Err(mismatch(format!("channels {first}..{}", first + len)));
                    }
                    Shape::chw(*len, a.h, a.w)
                }
                Op::Gather(index) => {
                    if index.is_empty() || index.iter().any(|&i| usize::from(i) >= a.c) {
                        return Err(mismatch("indices below its channel count".into()));
                    }
                    Shape::chw(index.len(), a.h, a.w)
                }
            };
            shapes.push(out);
        }
        Ok(shapes)
    }

    /// Values the nodes carry ([`Op::parameters`]).
    pub fn parameter_count(&self) -> usize {
        self.nodes.iter().map(|n| n.op.parameters()).sum()
    }

    /// Multiply-accumulates of one sample: those of the Dense and convolution layers
    /// ([`Layer::macs`]); the element-wise ops count none.
    pub fn macs(&self) -> Result<usize, GraphError> {
        let shapes = self.shapes()?;
        let n_in = self.inputs.len();
        Ok(self
            .nodes
            .iter()
            .enumerate()
            .map(|(k, node)| match &node.op {
                Op::Layer(layer) => layer.macs(shapes[node.input], shapes[n_in + k]),
                _ => 0,
            })
            .sum())
    }

    /// The output's range, from the last node: `[-1, 1]` after Tanh, `[0, 1]` after Sigmoid.
    pub fn output_range(&self) -> OutputRange {
        match self.nodes.last().map(|n| &n.op) {
            Some(Op::Layer(Layer::Tanh)) => OutputRange::MinusOneOne,
            Some(Op::Layer(Layer::Sigmoid)) => OutputRange::ZeroOne,
            _ => OutputRange::Unbounded,
        }
    }

    /// The f32 model file program.
    pub fn program_f32(&self) -> Result<Program, GraphError> {
        let shapes = self.shapes()?;
        let n_in = self.inputs.len();
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(k, node)| match &node.op {
                Op::Layer(layer) => tgm::layer_node(layer, node.input, n_in + k),
                op => op.graph_node(node.input, n_in + k),
            })
            .collect();
        Ok(Program {
            part: self.part,
            precision: Precision::F32,
            range: self.output_range(),
            inputs: n_in,
            tensors: shapes
                .iter()
                .map(|&shape| TensorDecl { shape, quant: None })
                .collect(),
            nodes,
            output: self.output(),
        })
    }

    /// The f32 model file.
    pub fn write_f32(&self) -> Result<Vec<u8>, TgmError> {
        tgm::write_program(&self.program_f32()?)
    }

    /// Names of the graph inputs in ONNX: the part's input name (`z` or `x`) for the first,
    /// `condition` for a second, `input{k}` after that.
    pub fn onnx_input_names(&self) -> Vec<String> {
        (0..self.inputs.len())
            .map(|k| match k {
                0 => input_name(self.part).to_owned(),
                1 => "condition".to_owned(),
                k => format!("input{k}"),
            })
            .collect()
    }

    /// The graph as f32 ONNX with standard operators (Gemm, Conv, ConvTranspose, the
    /// activations, Exp, Add, Sub, Mul, Concat, Slice, Gather, Reshape). A flat tensor is
    /// `[N, n]`, an image `[N, C, H, W]`; reshapes are inserted where an op needs the other rank.
    pub fn to_onnx_f32(&self, name: &str) -> Result<Vec<u8>, OnnxError> {
        let shapes = self.shapes()?;
        let n_in = self.inputs.len();
        let mut w = OnnxWalk::new(shapes, self.onnx_input_names());
        for (k, node) in self.nodes.iter().enumerate() {
            let t = n_in + k;
            let out = w.tensor_name(t, self.output(), self.part, "");
            let a = node.input;
            let doc = format!("node {k}: {}", node.op.name());
            let node_name = format!("n{k}");
            let rank = match &node.op {
                Op::Layer(layer) => {
                    let x = match layer_rank(layer) {
                        Some(r) => w.in_rank(a, r),
                        None => w.names[a].clone(),
                    };
                    let out_rank = match layer {
                        Layer::Reshape { to } => rank_of(*to),
                        _ => layer_rank(layer).unwrap_or(w.ranks[a]),
                    };
                    let out_dims = dims_in(w.shapes[t], out_rank);
                    emit_layer_node(&mut w.b, layer, &node_name, &x, &out, &out_dims, &doc);
                    out_rank
                }
                op => {
                    let x = w.names[a].clone();
                    let y = op.second_input().map(|t2| w.in_rank(t2, w.ranks[a]));
                    emit_graph_op(
                        &mut w.b,
                        op,
                        &node_name,
                        &x,
                        y.as_deref(),
                        &out,
                        w.ranks[a],
                        &doc,
                    );
                    w.ranks[a]
                }
            };
            w.names.push(out);
            w.ranks.push(rank);
        }
        let inputs: Vec<Endpoint> = (0..n_in).map(|t| w.endpoint(t, ElemType::F32)).collect();
        let output = w.endpoint(self.output(), ElemType::F32);
        let doc = format!(
            "tinygen {:?} `{name}`, float32, a graph of {} nodes",
            self.part,
            self.nodes.len()
        );
        Ok(w.b.finish(
            name,
            &doc,
            self.part,
            self.output_range(),
            &inputs,
            std::slice::from_ref(&output),
        ))
    }
}

/// The rank a chain layer reads: flat for Dense, an image for convolutions, any for the rest.
pub(crate) fn layer_rank(layer: &Layer) -> Option<Rank> {
    match layer {
        Layer::Dense { .. } => Some(Rank::Flat),
        Layer::Conv2d(_) | Layer::ConvTranspose2d(_) => Some(Rank::Image),
        _ => None,
    }
}

/// The ONNX rank of a shape: flat (`[N, n]`) when it has no plane, else an image.
pub(crate) fn rank_of(s: Shape) -> Rank {
    if s.h == 1 && s.w == 1 {
        Rank::Flat
    } else {
        Rank::Image
    }
}

/// The ONNX dims of one sample of shape `s` in rank `r` (without the batch).
pub(crate) fn dims_in(s: Shape, r: Rank) -> Vec<usize> {
    match r {
        Rank::Flat => vec![s.len()],
        Rank::Image => vec![s.c, s.h, s.w],
    }
}

/// The state of writing a graph to ONNX: the builder, and the ONNX name and rank of every
/// tensor written so far.
pub(crate) struct OnnxWalk {
    pub(crate) b: Builder,
    pub(crate) shapes: Vec<Shape>,
    pub(crate) names: Vec<String>,
    pub(crate) ranks: Vec<Rank>,
}

impl OnnxWalk {
    /// A walk whose graph inputs are named `inputs` (their ranks follow from their shapes).
    pub(crate) fn new(shapes: Vec<Shape>, inputs: Vec<String>) -> Self {
        let ranks = shapes[..inputs.len()].iter().map(|&s| rank_of(s)).collect();
        OnnxWalk {
            b: Builder::default(),
            shapes,
            names: inputs,
            ranks,
        }
    }

    /// The ONNX name of tensor `t`: the part's output name for the graph output, else
    /// `t{t}`; `suffix` follows either (`.q` for int8 tensors).
    pub(crate) fn tensor_name(&self, t: usize, output: usize, part: Part, suffix: &str) -> String {
        if t == output {
            format!("{}{suffix}", output_name(part))
        } else {
            format!("t{t}{suffix}")
        }
    }

    /// Tensor `t` in rank `want`, through a Reshape when it has the other.
    pub(crate) fn in_rank(&mut self, t: usize, want: Rank) -> String {
        if self.ranks[t] == want {
            return self.names[t].clone();
        }
        let name = &self.names[t];
        let node = format!(
            "{name}.as_{}",
            if want == Rank::Flat { "flat" } else { "image" }
        );
        let dims = dims_in(self.shapes[t], want);
        let shape = self.b.shape_init(&format!("{node}.shape"), &dims);
        let doc = format!("{name} to rank {}", dims.len() + 1);
        self.b
            .node("Reshape", &node, &[name, &shape], &node, vec![], &doc);
        node
    }

    /// Tensor `t` as a graph input or output of element type `elem`.
    pub(crate) fn endpoint(&self, t: usize, elem: ElemType) -> Endpoint {
        Endpoint {
            name: self.names[t].clone(),
            elem,
            dims: dims_in(self.shapes[t], self.ranks[t]),
        }
    }
}

/// Emits a node that is not a chain layer (Exp, Add, Sub, Mul, Concat, Slice, Gather) reading
/// `x` (of rank `rank`) and, for a tensor operand or a concatenation, `y` in the same rank.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_graph_op(
    b: &mut Builder,
    op: &Op,
    node: &str,
    x: &str,
    y: Option<&str>,
    out: &str,
    rank: Rank,
    doc: &str,
) {
    let y = y.unwrap_or_default();
    match op {
        Op::Layer(_) => {}
        Op::Exp => b.node("Exp", node, &[x], out, vec![], doc),
        Op::Binary(_, operand) => {
            let y = match operand {
                Operand::Tensor(_) => y.to_owned(),
                Operand::Channel(v) => {
                    let vdims = match rank {
                        Rank::Flat => vec![v.len()],
                        Rank::Image => vec![v.len(), 1, 1],
                    };
                    b.init_f32(&format!("{node}.operand"), &vdims, v)
                }
            };
            b.node(op.name(), node, &[x, &y], out, vec![], doc);
        }
        Op::Concat(_) => b.node("Concat", node, &[x, y], out, vec![attr_int("axis", 1)], doc),
        Op::Slice { first, len } => {
            let (start, end) = (*first as i64, (first + len) as i64);
            let starts = b.init_i64(&format!("{node}.starts"), &[1], &[start]);
            let ends = b.init_i64(&format!("{node}.ends"), &[1], &[end]);
            let axes = b.init_i64(&format!("{node}.axes"), &[1], &[1]);
            b.node("Slice", node, &[x, &starts, &ends, &axes], out, vec![], doc);
        }
        Op::Gather(index) => {
            let index: Vec<i64> = index.iter().map(|&i| i64::from(i)).collect();
            let idx = b.init_i64(&format!("{node}.index"), &[index.len()], &index);
            b.node(
                "Gather",
                node,
                &[x, &idx],
                out,
                vec![attr_int("axis", 1)],
                doc,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Conv, ConvSpec};

    fn chain() -> Graph {
        let convt = Conv {
            spec: ConvSpec::square(2, 1, 4, 2, 1),
            weight: (0..32).map(|i| i as f32 * 0.01 - 0.1).collect(),
            bias: vec![0.05],
        };
        Graph {
            part: Part::Generator,
            input: Shape::flat(3),
            layers: vec![
                Layer::Dense {
                    inputs: 3,
                    outputs: 18,
                    weight: (0..54).map(|i| (i as f32 * 0.37).sin()).collect(),
                    bias: vec![0.1; 18],
                },
                Layer::Reshape {
                    to: Shape::chw(2, 3, 3),
                },
                Layer::Relu,
                Layer::ConvTranspose2d(convt),
                Layer::Tanh,
            ],
        }
    }

    #[test]
    fn a_chain_as_a_graph_writes_the_same_model_file() {
        let g = chain();
        let dag = Dag::from_chain(&g);
        assert_eq!(dag.write_f32().unwrap(), tgm::write_f32(&g).unwrap());
        assert_eq!(dag.output_range(), OutputRange::MinusOneOne);
        assert_eq!(dag.shapes().unwrap(), g.shapes().unwrap());
    }

    #[test]
    fn bad_nodes_are_named() {
        let mut dag = Dag::from_chain(&chain());
        dag.nodes.push(DagNode {
            input: 5,
            op: Op::Concat(7),
        });
        assert!(matches!(
            dag.shapes(),
            Err(GraphError::BadAttribute { layer: 5, .. })
        ));
        dag.nodes.pop();
        dag.nodes.push(DagNode {
            input: 5,
            op: Op::Slice { first: 1, len: 1 },
        });
        assert!(matches!(
            dag.shapes(),
            Err(GraphError::ShapeMismatch {
                layer: 5,
                op: "Slice",
                ..
            })
        ));
        dag.nodes.pop();
        dag.nodes.push(DagNode {
            input: 5,
            op: Op::Binary(Binary::Mul, Operand::Channel(vec![1.0, 2.0])),
        });
        assert!(matches!(
            dag.shapes(),
            Err(GraphError::ShapeMismatch { layer: 5, .. })
        ));
    }
}
