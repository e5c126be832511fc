//! Mapping the nodes that compute on run-time tensors onto [`Dag`](crate::dag::Dag) nodes, one
//! function per operator. Each run-time tensor keeps its ONNX dimensions without the batch;
//! its runtime [`Shape`] is `[C, H, W]` read from them (`[n]` is `[n, 1, 1]`, `[a, b]` is
//! `[a, b, 1]`), and a `Reshape` is inserted where an ONNX op changes that reading.

use crate::dag::{Binary, DagNode, Op, Operand};
use crate::graph::{Layer, Shape};

use super::attr::Ctx;
use super::error::{ImportError, Limit};
use super::fold::{self, flatten_dims, reshape_dims, slice_ranges, squeeze_dims};
use super::tensor::{broadcast, Const};

/// A run-time tensor: its index in the graph and its ONNX dimensions without the batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dyn {
    pub t: usize,
    pub dims: Vec<usize>,
}

impl Dyn {
    /// The dimensions with the batch (1) in front.
    pub fn full(&self) -> Vec<usize> {
        std::iter::once(1)
            .chain(self.dims.iter().copied())
            .collect()
    }
}

/// What an ONNX tensor name stands for.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Const(Const),
    Dyn(Dyn),
}

/// The graph being built, with the shape of every tensor so far.
#[derive(Debug, Default)]
pub(crate) struct Net {
    pub nodes: Vec<DagNode>,
    pub shapes: Vec<Shape>,
}

/// The runtime shape of ONNX dimensions (batch dropped), or why there is none.
pub(crate) fn shape_of(dims: &[usize]) -> Result<Shape, (Option<Limit>, String)> {
    let s = match *dims {
        [] => Shape::flat(1),
        [c] => Shape::flat(c),
        [c, h] => Shape::chw(c, h, 1),
        [c, h, w] => Shape::chw(c, h, w),
        _ => {
            return Err((
                Some(Limit::Rank),
                format!("a tensor of dimensions [N, {dims:?}] has more than [C, H, W] per sample"),
            ))
        }
    };
    if dims.contains(&0) {
        return Err((None, format!("an empty tensor {dims:?}")));
    }
    if dims.iter().any(|&d| d > usize::from(u16::MAX)) {
        return Err((
            None,
            format!("dimensions {dims:?} exceed the model file's 65535"),
        ));
    }
    Ok(s)
}

fn shape_in(ctx: &Ctx<'_>, dims: &[usize]) -> Result<Shape, ImportError> {
    shape_of(dims).map_err(|(limit, why)| match limit {
        Some(l) => ctx.limit(l, why),
        None => ctx.err(why),
    })
}

impl Net {
    /// Appends a node reading tensor `input`; returns its output tensor.
    pub fn push(&mut self, ctx: &Ctx<'_>, input: usize, op: Op) -> Result<usize, ImportError> {
        let a = self.shapes[input];
        let out = match &op {
            Op::Layer(layer) => layer
                .output_shape(self.nodes.len(), a)
                .map_err(|e| ctx.err(format!("does not fit: {e}")))?,
            Op::Exp => a,
            Op::Binary(_, Operand::Tensor(b)) => {
                if self.shapes[*b] != a {
                    return Err(ctx.limit(
                        Limit::Broadcast,
                        format!("operands {a} and {}", self.shapes[*b]),
                    ));
                }
                a
            }
            Op::Binary(_, Operand::Channel(v)) => {
                if v.len() != a.c {
                    return Err(ctx.err(format!("{} values for {} channels", v.len(), a.c)));
                }
                a
            }
            Op::Concat(b) => {
                let b = self.shapes[*b];
                if (a.h, a.w) != (b.h, b.w) {
                    return Err(ctx.err(format!("concatenates {a} and {b}, whose planes differ")));
                }
                Shape::chw(a.c + b.c, a.h, a.w)
            }
            Op::Slice { len, .. } => Shape::chw(*len, a.h, a.w),
            Op::Gather(index) => Shape::chw(index.len(), a.h, a.w),
        };
        if [out.c, out.h, out.w]
            .iter()
            .any(|&d| d > usize::from(u16::MAX))
        {
            return Err(ctx.err(format!("output {out} exceeds the model file's 65535")));
        }
        self.nodes.push(DagNode { input, op });
        self.shapes.push(out);
        Ok(self.shapes.len() - 1)
    }

    /// `d` with ONNX dimensions `dims` (same count), through a Reshape where the runtime shape
    /// changes.
    pub fn set_dims(
        &mut self,
        ctx: &Ctx<'_>,
        d: &Dyn,
        dims: Vec<usize>,
    ) -> Result<Dyn, ImportError> {
        let to = shape_in(ctx, &dims)?;
        let from = self.shapes[d.t];
        if to.len() != from.len() {
            return Err(ctx.err(format!(
                "reshapes {from} ({} values) to {dims:?}",
                from.len()
            )));
        }
        let t = if to == from {
            d.t
        } else {
            self.push(ctx, d.t, Op::Layer(Layer::Reshape { to }))?
        };
        Ok(Dyn { t, dims })
    }

    /// Tensor `t` with its ONNX dimensions read from its runtime shape (after a layer).
    pub fn out(&self, t: usize) -> Dyn {
        let s = self.shapes[t];
        let dims = if s.h == 1 && s.w == 1 {
            vec![s.c]
        } else {
            vec![s.c, s.h, s.w]
        };
        Dyn { t, dims }
    }
}

pub(crate) fn input<'v>(
    ctx: &Ctx<'_>,
    inputs: &[Option<&'v Value>],
    k: usize,
) -> Result<&'v Value, ImportError> {
    inputs
        .get(k)
        .copied()
        .flatten()
        .ok_or_else(|| ctx.err(format!("input {k} is missing")))
}

pub(crate) fn dyn_in<'v>(
    ctx: &Ctx<'_>,
    inputs: &[Option<&'v Value>],
    k: usize,
) -> Result<&'v Dyn, ImportError> {
    match input(ctx, inputs, k)? {
        Value::Dyn(d) => Ok(d),
        Value::Const(_) => Err(ctx.limit(
            Limit::ConstantOperand,
            format!("input {k} is a constant; the importer folds only shape arithmetic"),
        )),
    }
}

pub(crate) fn const_opt<'v>(
    ctx: &Ctx<'_>,
    inputs: &[Option<&'v Value>],
    k: usize,
) -> Result<Option<&'v Const>, ImportError> {
    match inputs.get(k).copied().flatten() {
        None => Ok(None),
        Some(Value::Const(c)) => Ok(Some(c)),
        Some(Value::Dyn(_)) => Err(ctx.limit(
            Limit::RuntimeOperand,
            format!(
                "input {k} ({}) is computed at run time; the runtime needs it constant",
                ctx.node.input.get(k).map_or("", |s| s.as_str())
            ),
        )),
    }
}

pub(crate) fn const_in<'v>(
    ctx: &Ctx<'_>,
    inputs: &[Option<&'v Value>],
    k: usize,
) -> Result<&'v Const, ImportError> {
    const_opt(ctx, inputs, k)?.ok_or_else(|| ctx.err(format!("input {k} is missing")))
}

pub(crate) fn floats<'c>(
    ctx: &Ctx<'_>,
    c: &'c Const,
    what: &str,
) -> Result<&'c [f32], ImportError> {
    c.as_f32()
        .ok_or_else(|| ctx.limit(Limit::ElementType, format!("{what} is an integer tensor")))
}

/// The inputs as constants where they are (for the folding helpers that read axes and shapes).
fn consts<'v>(inputs: &[Option<&'v Value>]) -> Vec<Option<&'v Const>> {
    inputs
        .iter()
        .map(|v| match v {
            Some(Value::Const(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// Operators [`map`] maps onto graph nodes.
pub(crate) const MAPPED: &[&str] = &[
    "Gemm",
    "MatMul",
    "Conv",
    "ConvTranspose",
    "BatchNormalization",
    "Relu",
    "Tanh",
    "Sigmoid",
    "LeakyRelu",
    "Exp",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Concat",
    "Identity",
    "Dropout",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Gather",
];

/// True if [`map`] maps operator `op`.
pub(crate) fn is_mapped(op: &str) -> bool {
    MAPPED.contains(&op)
}

/// Maps node `ctx`, which reads at least one run-time tensor; returns its first output.
pub(crate) fn map(
    net: &mut Net,
    ctx: &Ctx<'_>,
    inputs: &[Option<&Value>],
) -> Result<Dyn, ImportError> {
    if !is_mapped(ctx.op()) {
        return Err(ImportError::UnsupportedOp {
            node: ctx.label.clone(),
            op: ctx.op().to_owned(),
            domain: String::new(),
        });
    }
    // Every input after the first must be a constant, except for element-wise ops and Concat.
    if !matches!(
        ctx.op(),
        "Add" | "Sub" | "Mul" | "Div" | "Concat" | "Gemm" | "MatMul"
    ) {
        for k in 1..inputs.len() {
            const_opt(ctx, inputs, k)?;
        }
    }
    let layer = |net: &mut Net, layer: Layer| -> Result<Dyn, ImportError> {
        let x = dyn_in(ctx, inputs, 0)?;
        let t = net.push(ctx, x.t, Op::Layer(layer))?;
        Ok(Dyn {
            t,
            dims: x.dims.clone(),
        })
    };
    match ctx.op() {
        "Gemm" => super::dense::gemm(net, ctx, inputs),
        "MatMul" => super::dense::matmul(net, ctx, inputs),
        "Conv" => super::conv::conv(net, ctx, inputs, false),
        "ConvTranspose" => super::conv::conv(net, ctx, inputs, true),
        "BatchNormalization" => super::conv::batch_norm(net, ctx, inputs),
        "Relu" => layer(net, Layer::Relu),
        "Tanh" => layer(net, Layer::Tanh),
        "Sigmoid" => layer(net, Layer::Sigmoid),
        "LeakyRelu" => layer(
            net,
            Layer::LeakyRelu {
                alpha: ctx.float("alpha", 0.01)?,
            },
        ),
        "Exp" => {
            let x = dyn_in(ctx, inputs, 0)?;
            Ok(Dyn {
                t: net.push(ctx, x.t, Op::Exp)?,
                dims: x.dims.clone(),
            })
        }
        "Add" | "Sub" | "Mul" | "Div" => binary(net, ctx, inputs),
        "Concat" => concat(net, ctx, inputs),
        "Identity" => Ok(dyn_in(ctx, inputs, 0)?.clone()),
        "Dropout" => {
            let training = ctx.int("is_test", 1)? == 0
                || const_opt(ctx, inputs, 2)?
                    .and_then(Const::as_i64)
                    .is_some_and(|v| v.iter().any(|&x| x != 0));
            if training {
                return Err(ctx.err("runs in training mode; export the model in eval mode"));
            }
            Ok(dyn_in(ctx, inputs, 0)?.clone())
        }
        "Reshape" => {
            let x = dyn_in(ctx, inputs, 0)?;
            let shape = match ctx.ints("shape")? {
                Some(s) => s.to_vec(),
                None => fold::ints(ctx, const_in(ctx, inputs, 1)?, "the shape")?.to_vec(),
            };
            let out = reshape_dims(ctx, &x.full(), &shape)?;
            match out.split_first() {
                Some((1, rest)) => net.set_dims(ctx, x, rest.to_vec()),
                _ => Err(ctx.limit(Limit::BatchAxis, format!("shape {shape:?} does not keep the batch as its first dimension; write [-1, ...] or [0, ...]"))),
            }
        }
        "Flatten" => {
            let x = dyn_in(ctx, inputs, 0)?;
            let f = flatten_dims(ctx, &x.full())?;
            if ctx.int("axis", 1)? == 0 || f.first() != Some(&1) {
                return Err(ctx.limit(
                    Limit::BatchAxis,
                    "flattens the batch into the features; use axis 1",
                ));
            }
            net.set_dims(ctx, x, f[1..].to_vec())
        }
        "Squeeze" | "Unsqueeze" => {
            let x = dyn_in(ctx, inputs, 0)?;
            let squeeze = ctx.op() == "Squeeze";
            let axes = fold::axes_of(ctx, &consts(inputs), 1)?;
            let rank = if squeeze {
                x.dims.len() + 1
            } else {
                x.dims.len() + 1 + axes.as_ref().map_or(0, Vec::len)
            };
            let axes = match axes {
                Some(a) => a,
                // Without axes, every size-1 dimension but the batch.
                None if squeeze => (0..x.dims.len())
                    .filter(|&i| x.dims[i] == 1)
                    .map(|i| i as i64 + 1)
                    .collect(),
                None => return Err(ctx.err("Unsqueeze needs axes")),
            };
            for &a in &axes {
                if ctx.axis("axes", a, rank)? == 0 {
                    return Err(ctx.limit(Limit::BatchAxis, "moves the batch axis"));
                }
            }
            let full = squeeze_dims(ctx, &x.full(), Some(&axes), squeeze)?;
            net.set_dims(ctx, x, full[1..].to_vec())
        }
        "Slice" => slice(net, ctx, inputs),
        "Gather" => {
            let x = dyn_in(ctx, inputs, 0)?;
            let idx = const_in(ctx, inputs, 1)?;
            channel_axis(ctx, ctx.int("axis", 0)?, x.dims.len() + 1)?;
            let c = x.dims.first().copied().unwrap_or(1);
            let index = fold::ints(ctx, idx, "the indices")?
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i.saturating_add(c as i64) } else { i };
                    u16::try_from(i).ok().filter(|&i| usize::from(i) < c)
                })
                .collect::<Option<Vec<u16>>>()
                .ok_or_else(|| ctx.err(format!("an index outside 0..{c}")))?;
            if idx.dims.len() > 1 {
                return Err(ctx.limit(Limit::Rank, "indices of more than one dimension"));
            }
            let t = net.push(ctx, x.t, Op::Gather(index))?;
            let mut dims = idx.dims.clone();
            dims.extend(x.dims.iter().skip(1));
            let picked = Dyn {
                t,
                dims: std::iter::once(net.shapes[t].c)
                    .chain(x.dims.iter().skip(1).copied())
                    .collect(),
            };
            net.set_dims(ctx, &picked, dims)
        }
        op => Err(ImportError::UnsupportedOp {
            node: ctx.label.clone(),
            op: op.to_owned(),
            domain: String::new(),
        }),
    }
}

/// Checks that `axis` (of a tensor of full rank `rank`) is the channel axis 1.
fn channel_axis(ctx: &Ctx<'_>, axis: i64, rank: usize) -> Result<(), ImportError> {
    match ctx.axis("axis", axis, rank)? {
        1 => Ok(()),
        0 => Err(ctx.limit(Limit::BatchAxis, "works along the batch axis")),
        a => Err(ctx.limit(
            Limit::Axis,
            format!("works along axis {a}; the runtime does this along the channels (axis 1) only"),
        )),
    }
}

/// The per-channel values of constant `c` broadcast against run-time `d`.
fn channel(ctx: &Ctx<'_>, c: &Const, d: &Dyn) -> Result<Vec<f32>, ImportError> {
    let v = floats(ctx, c, "the constant operand")?;
    let full = d.full();
    let out = broadcast(&c.dims, &full).ok_or_else(|| {
        ctx.err(format!(
            "{:?} does not broadcast against [N, {:?}]",
            c.dims, d.dims
        ))
    })?;
    if out != full {
        return Err(ctx.limit(
            Limit::Broadcast,
            format!(
                "the constant {:?} enlarges the run-time tensor [N, {:?}]",
                c.dims, d.dims
            ),
        ));
    }
    let pad = full.len() - c.dims.len();
    let along = |ax: usize| ax >= pad && c.dims[ax - pad] != 1;
    if (0..full.len()).any(|ax| ax != 1 && along(ax)) {
        return Err(ctx.limit(
            Limit::Broadcast,
            format!(
                "the constant {:?} varies along more than the channel axis of [N, {:?}]",
                c.dims, d.dims
            ),
        ));
    }
    let n = full.get(1).copied().unwrap_or(1);
    Ok(if along(1) {
        v.to_vec()
    } else {
        vec![v.first().copied().unwrap_or(0.0); n]
    })
}

fn binary(net: &mut Net, ctx: &Ctx<'_>, inputs: &[Option<&Value>]) -> Result<Dyn, ImportError> {
    let (a, b) = (input(ctx, inputs, 0)?, input(ctx, inputs, 1)?);
    let op = ctx.op();
    let code = |op: &str| match op {
        "Add" => Binary::Add,
        "Sub" => Binary::Sub,
        _ => Binary::Mul,
    };
    match (a, b) {
        (Value::Dyn(x), Value::Dyn(y)) => {
            if x.dims != y.dims {
                return Err(ctx.limit(Limit::Broadcast, format!("run-time operands [N, {:?}] and [N, {:?}]; the runtime combines equal shapes", x.dims, y.dims)));
            }
            if op == "Div" {
                return Err(ctx.limit(Limit::RuntimeOperand, "division by a run-time tensor"));
            }
            let t = net.push(ctx, x.t, Op::Binary(code(op), Operand::Tensor(y.t)))?;
            Ok(Dyn {
                t,
                dims: x.dims.clone(),
            })
        }
        (Value::Dyn(x), Value::Const(c)) => {
            let mut v = channel(ctx, c, x)?;
            let code = if op == "Div" {
                v.iter_mut().for_each(|x| *x = 1.0 / *x);
                Binary::Mul
            } else {
                code(op)
            };
            let t = net.push(ctx, x.t, Op::Binary(code, Operand::Channel(v)))?;
            Ok(Dyn {
                t,
                dims: x.dims.clone(),
            })
        }
        (Value::Const(c), Value::Dyn(x)) => {
            let v = channel(ctx, c, x)?;
            let t = match op {
                "Add" | "Mul" => net.push(ctx, x.t, Op::Binary(code(op), Operand::Channel(v)))?,
                "Sub" => {
                    // c - x = (-1) x + c
                    let neg = net.push(
                        ctx,
                        x.t,
                        Op::Binary(Binary::Mul, Operand::Channel(vec![-1.0; v.len()])),
                    )?;
                    net.push(ctx, neg, Op::Binary(Binary::Add, Operand::Channel(v)))?
                }
                _ => return Err(ctx.limit(Limit::RuntimeOperand, "division by a run-time tensor")),
            };
            Ok(Dyn {
                t,
                dims: x.dims.clone(),
            })
        }
        (Value::Const(_), Value::Const(_)) => {
            Err(ctx.err("constant operands reached the run-time mapping"))
        }
    }
}

fn concat(net: &mut Net, ctx: &Ctx<'_>, inputs: &[Option<&Value>]) -> Result<Dyn, ImportError> {
    let parts = (0..inputs.len())
        .map(|k| dyn_in(ctx, inputs, k))
        .collect::<Result<Vec<_>, _>>()?;
    let first = parts.first().ok_or_else(|| ctx.err("no inputs"))?;
    channel_axis(ctx, ctx.int("axis", 1)?, first.dims.len() + 1)?;
    let mut dims = first.dims.clone();
    let mut t = first.t;
    for p in &parts[1..] {
        if p.dims.len() != dims.len() || p.dims[1..] != dims[1..] {
            return Err(ctx.err(format!(
                "inputs [N, {:?}] and [N, {:?}] differ off the channel axis",
                first.dims, p.dims
            )));
        }
        dims[0] += p.dims[0];
        t = net.push(ctx, t, Op::Concat(p.t))?;
    }
    Ok(Dyn { t, dims })
}

fn slice(net: &mut Net, ctx: &Ctx<'_>, inputs: &[Option<&Value>]) -> Result<Dyn, ImportError> {
    let x = dyn_in(ctx, inputs, 0)?;
    let full = x.full();
    let ranges = slice_ranges(ctx, &full, &consts(inputs))?;
    for (ax, r) in ranges.iter().enumerate() {
        let whole = r.len() == full[ax] && r.iter().enumerate().all(|(i, &j)| i == j);
        if ax != 1 && !whole {
            return Err(match ax {
                0 => ctx.limit(Limit::BatchAxis, "slices the batch"),
                _ => ctx.limit(
                    Limit::Axis,
                    format!("slices axis {ax}; the runtime slices the channels (axis 1) only"),
                ),
            });
        }
    }
    let Some(r) = ranges.get(1) else {
        return Ok(x.clone());
    };
    if r.is_empty() {
        return Err(ctx.err("an empty slice"));
    }
    let contiguous = r.windows(2).all(|w| w[1] == w[0] + 1);
    let op = match (contiguous, r.first()) {
        (true, Some(&first)) if first == 0 && r.len() == full[1] => return Ok(x.clone()),
        (true, Some(&first)) => Op::Slice {
            first,
            len: r.len(),
        },
        _ => Op::Gather(
            r.iter()
                .map(|&i| u16::try_from(i).unwrap_or(u16::MAX))
                .collect(),
        ),
    };
    let t = net.push(ctx, x.t, op)?;
    let mut dims = x.dims.clone();
    dims[0] = r.len();
    Ok(Dyn { t, dims })
}
