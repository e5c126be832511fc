//! The flow's generative direction as an export graph ([`Dag`]): latent `z` `[D, 1, 1]` to an
//! image in (about) `[0, 1]`, each step of [`RealNvp::sample`] as the operations it computes, in
//! the same order, so the runtime reproduces the trainer's samples within f32 rounding.
//!
//! Per step, last to first: the inverse permutation as a Gather; the coupling's inverse as
//! `x_a = Slice`, `y_b = Slice`, the MLP on `x_a` (Dense, ReLU, Dense, ReLU, Dense), `raw_s` and
//! `t` as two Slices of its output, `exp(-s) = Exp((-scale) ⊙ Tanh(raw_s))`,
//! `x_b = (y_b - t) ⊙ exp(-s)`, `Concat(x_a, x_b)`; the actnorm's inverse as a per-channel Sub
//! of `bias` and Mul by `1 / scale`. Then Sigmoid, Sub `α`, Mul `1 / (1 - 2α)`.

use tinygen_export::dag::{Binary, Dag, DagNode, Op, Operand};
use tinygen_export::{Layer, Part, Shape};

use super::RealNvp;
use crate::nn::NnError;

/// Appends nodes to a graph and names their output tensors.
struct Builder {
    dag: Dag,
}

impl Builder {
    /// Appends `op` reading tensor `input`; returns its output tensor.
    fn push(&mut self, input: usize, op: Op) -> usize {
        self.dag.nodes.push(DagNode { input, op });
        self.dag.output()
    }

    fn channel(&mut self, input: usize, op: Binary, values: Vec<f32>) -> usize {
        self.push(input, Op::Binary(op, Operand::Channel(values)))
    }

    fn tensor(&mut self, input: usize, op: Binary, other: usize) -> usize {
        self.push(input, Op::Binary(op, Operand::Tensor(other)))
    }
}

/// `index` as the Gather's `u16` table, or which size does not fit.
fn gather_index(index: &[usize]) -> Result<Vec<u16>, NnError> {
    index
        .iter()
        .map(|&i| u16::try_from(i))
        .collect::<Result<_, _>>()
        .map_err(|_| NnError::ShapeMismatch {
            layer: "permutation".into(),
            op: "Gather",
            got: format!("[{}]", index.len()),
            expected: format!("at most {} features", u32::from(u16::MAX) + 1),
        })
}

impl RealNvp {
    /// The generative direction, `z` `[D, 1, 1]` -> image `[D, 1, 1]` in (about) `[0, 1]`, as
    /// a graph for the model file ([`Dag::write_f32`]) and ONNX ([`Dag::to_onnx_f32`]). The
    /// output is that of [`RealNvp::sample`] at temperature 1 (scale `z` by `T` for others); it
    /// is not clamped, so its range is written as unbounded.
    pub fn to_dag(&self) -> Result<Dag, NnError> {
        let d = self.dim();
        let mut b = Builder {
            dag: Dag {
                part: Part::Generator,
                inputs: vec![Shape::flat(d)],
                nodes: Vec::new(),
            },
        };
        let mut h = 0;
        for step in self.steps.iter().rev() {
            if let Some(p) = &step.permutation {
                h = b.push(h, Op::Gather(gather_index(&p.inverse)?));
            }
            let c = &step.coupling;
            let (d_a, d_b) = c.split();
            let x_a = b.push(h, Op::Slice { first: 0, len: d_a });
            let y_b = b.push(
                h,
                Op::Slice {
                    first: d_a,
                    len: d_b,
                },
            );
            let net = c.net.to_graph(Part::Generator, Shape::flat(d_a))?;
            let mut n = x_a;
            for layer in net.layers {
                n = b.push(n, Op::Layer(layer));
            }
            let raw_s = b.push(n, Op::Slice { first: 0, len: d_b });
            let t = b.push(
                n,
                Op::Slice {
                    first: d_b,
                    len: d_b,
                },
            );
            let tanh = b.push(raw_s, Op::Layer(Layer::Tanh));
            let neg_s = b.channel(tanh, Binary::Mul, c.scale.iter().map(|&v| -v).collect());
            let exp = b.push(neg_s, Op::Exp);
            let diff = b.tensor(y_b, Binary::Sub, t);
            let x_b = b.tensor(diff, Binary::Mul, exp);
            h = b.push(x_a, Op::Concat(x_b));
            let a = &step.actnorm;
            h = b.channel(h, Binary::Sub, a.bias.to_vec());
            h = b.channel(h, Binary::Mul, a.scale.iter().map(|&s| 1.0 / s).collect());
        }
        let alpha = self.logit.alpha;
        h = b.push(h, Op::Layer(Layer::Sigmoid));
        h = b.channel(h, Binary::Sub, vec![alpha; d]);
        b.channel(h, Binary::Mul, vec![1.0 / (1.0 - 2.0 * alpha); d]);
        b.dag.shapes()?;
        Ok(b.dag)
    }
}
