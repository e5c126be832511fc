//! Constant folding: the shape arithmetic exporters write around a reshape (`Shape`, `Gather`,
//! `Slice`, `Concat`, `Unsqueeze`, `Cast`, integer `Add`/`Mul`/`Div`/`Mod`, ...) evaluated at
//! import time, so that only the layers reach the runtime. A run-time tensor's shape is known
//! (the batch taken as 1), so `Shape` of it is a constant too.

use super::attr::Ctx;
use super::error::ImportError;
use super::tensor::{broadcast, broadcast_index, count, read_tensor, Const, Data, TensorFault};

/// Operators folded when all their inputs are constants.
pub(crate) const FOLDED: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Gather",
    "Slice",
    "Concat",
    "Mod",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Cast",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Flatten",
    "Identity",
    "Dropout",
    "Transpose",
];

/// `Shape` of a tensor with full dimensions `dims` (batch included).
pub(crate) fn shape(ctx: &Ctx<'_>, dims: &[usize]) -> Result<Const, ImportError> {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let start = clamp(ctx.int("start", 0)?);
    let end = clamp(ctx.int("end", r)?);
    let v: Vec<i64> = dims
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .map(|&d| d as i64)
        .collect();
    Ok(Const::i64(vec![v.len()], v))
}

fn get<'c>(
    ctx: &Ctx<'_>,
    inputs: &[Option<&'c Const>],
    k: usize,
) -> Result<&'c Const, ImportError> {
    inputs
        .get(k)
        .copied()
        .flatten()
        .ok_or_else(|| ctx.err(format!("input {k} is missing")))
}

/// Integer values of a constant input (axes, shapes, indices).
pub(crate) fn ints<'c>(ctx: &Ctx<'_>, c: &'c Const, what: &str) -> Result<&'c [i64], ImportError> {
    c.as_i64()
        .ok_or_else(|| ctx.err(format!("{what} must be an integer tensor")))
}

/// Axes from the attribute (older opsets) or the input `k` (newer ones).
pub(crate) fn axes_of(
    ctx: &Ctx<'_>,
    inputs: &[Option<&Const>],
    k: usize,
) -> Result<Option<Vec<i64>>, ImportError> {
    if let Some(a) = ctx.ints("axes")? {
        return Ok(Some(a.to_vec()));
    }
    match inputs.get(k).copied().flatten() {
        Some(c) => Ok(Some(ints(ctx, c, "axes")?.to_vec())),
        None => Ok(None),
    }
}

/// The dimensions a `Reshape` to `shape` gives a tensor of dimensions `dims`.
pub(crate) fn reshape_dims(
    ctx: &Ctx<'_>,
    dims: &[usize],
    shape: &[i64],
) -> Result<Vec<usize>, ImportError> {
    let allowzero = ctx.int("allowzero", 0)? != 0;
    let total = count(dims).ok_or_else(|| ctx.err("the input is too large"))?;
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or_else(|| {
                ctx.err(format!(
                    "shape {shape:?} copies dimension {i}, which the input has not"
                ))
            })?),
            s if s > 0 => out.push(usize::try_from(s).map_err(|_| ctx.err("dimension too large"))?),
            _ => return Err(ctx.err(format!("shape {shape:?} is not a valid target shape"))),
        }
    }
    let known = count(&out).ok_or_else(|| ctx.err(format!("shape {shape:?} is too large")))?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(ctx.err(format!("cannot reshape {dims:?} to {shape:?}")));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(ctx.err(format!(
            "cannot reshape {dims:?} ({total} values) to {shape:?}"
        )));
    }
    Ok(out)
}

/// `Squeeze` (`squeeze = true`) or `Unsqueeze` of dimensions `dims` along `axes`.
pub(crate) fn squeeze_dims(
    ctx: &Ctx<'_>,
    dims: &[usize],
    axes: Option<&[i64]>,
    squeeze: bool,
) -> Result<Vec<usize>, ImportError> {
    if squeeze {
        let axes = match axes {
            Some(a) => a
                .iter()
                .map(|&a| ctx.axis("axes", a, dims.len()))
                .collect::<Result<Vec<_>, _>>()?,
            None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
        };
        if let Some(&a) = axes.iter().find(|&&a| dims[a] != 1) {
            return Err(ctx.err(format!("axis {a} of {dims:?} is not of size 1")));
        }
        Ok(dims
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect())
    } else {
        let axes = axes.ok_or_else(|| ctx.err("Unsqueeze needs axes"))?;
        let rank = dims.len() + axes.len();
        let axes = axes
            .iter()
            .map(|&a| ctx.axis("axes", a, rank))
            .collect::<Result<Vec<_>, _>>()?;
        if (1..axes.len()).any(|i| axes[..i].contains(&axes[i])) {
            return Err(ctx.err(format!("repeated axes {axes:?}")));
        }
        let mut rest = dims.iter();
        (0..rank)
            .map(|i| {
                if axes.contains(&i) {
                    Ok(1)
                } else {
                    rest.next().copied().ok_or_else(|| ctx.err("repeated axes"))
                }
            })
            .collect()
    }
}

/// `Flatten` at `axis` of dimensions `dims`: two dimensions.
pub(crate) fn flatten_dims(ctx: &Ctx<'_>, dims: &[usize]) -> Result<Vec<usize>, ImportError> {
    let axis = ctx.int("axis", 1)?;
    let r = dims.len() as i64;
    let a = if axis < 0 {
        axis.saturating_add(r)
    } else {
        axis
    };
    if !(0..=r).contains(&a) {
        return Err(ctx.attr_err("axis", format!("is {axis}, outside 0..={r}")));
    }
    let (x, y) = dims.split_at(a as usize);
    Ok(vec![x.iter().product(), y.iter().product()])
}

/// Positions of the elements `Slice` picks from a tensor of dimensions `dims`, with the
/// output dimensions; also used to map a run-time Slice onto channels.
pub(crate) fn slice_ranges(
    ctx: &Ctx<'_>,
    dims: &[usize],
    inputs: &[Option<&Const>],
) -> Result<Vec<Vec<usize>>, ImportError> {
    let attr = ctx.ints("starts")?.is_some();
    let list = |name: &str, k: usize| -> Result<Option<Vec<i64>>, ImportError> {
        if attr {
            return Ok(ctx.ints(name)?.map(<[i64]>::to_vec));
        }
        match inputs.get(k).copied().flatten() {
            Some(c) => Ok(Some(ints(ctx, c, name)?.to_vec())),
            None => Ok(None),
        }
    };
    let starts = list("starts", 1)?.ok_or_else(|| ctx.err("Slice needs starts"))?;
    let ends = list("ends", 2)?.ok_or_else(|| ctx.err("Slice needs ends"))?;
    let axes = list("axes", 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = list("steps", 4)?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.err("starts, ends, axes and steps differ in length"));
    }
    let mut ranges: Vec<Vec<usize>> = dims.iter().map(|&d| (0..d).collect()).collect();
    for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
        let a = ctx.axis("axes", a, dims.len())?;
        let d = dims[a] as i64;
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let picked: Vec<usize> = match st {
            0 => return Err(ctx.err("a step of 0")),
            st if st > 0 => {
                let (s, e) = (norm(s).clamp(0, d), norm(e).clamp(0, d));
                (s..e).step_by(st as usize).map(|i| i as usize).collect()
            }
            st => {
                let (s, e) = (norm(s).clamp(-1, d - 1), norm(e).clamp(-1, d - 1));
                let step = st.unsigned_abs() as usize;
                ((e + 1)..=s)
                    .rev()
                    .step_by(step)
                    .map(|i| i as usize)
                    .collect()
            }
        };
        ranges[a] = picked;
    }
    Ok(ranges)
}

/// Positions (row-major in `dims`) of the cartesian product of `ranges`.
fn positions(dims: &[usize], ranges: &[Vec<usize>]) -> Vec<usize> {
    let mut out = vec![0usize];
    for (ax, r) in ranges.iter().enumerate() {
        let inner = dims[ax];
        out = out
            .iter()
            .flat_map(|&p| r.iter().map(move |&i| p * inner + i))
            .collect();
    }
    out
}

fn binary(ctx: &Ctx<'_>, a: &Const, b: &Const) -> Result<Const, ImportError> {
    let dims = broadcast(&a.dims, &b.dims)
        .ok_or_else(|| ctx.err(format!("{:?} and {:?} do not broadcast", a.dims, b.dims)))?;
    count(&dims).ok_or_else(|| ctx.err("the result is too large"))?;
    let (ia, ib) = (
        broadcast_index(&a.dims, &dims),
        broadcast_index(&b.dims, &dims),
    );
    let op = ctx.op();
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => {
            let f = |p: f32, q: f32| match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                "Div" => p / q,
                _ => p % q, // Mod with fmod = 1, the only form ONNX allows on floats
            };
            Data::F32(ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect())
        }
        (Data::I64(x), Data::I64(y)) => {
            let fmod = ctx.int("fmod", 0)? != 0;
            let f = |p: i64, q: i64| -> Option<i64> {
                match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    "Div" => p.checked_div(q),
                    _ if fmod => p.checked_rem(q),
                    // Mod with fmod = 0 takes the sign of the divisor, as Python's `%`
                    _ => p.checked_rem(q).map(|r| {
                        if r != 0 && (r < 0) != (q < 0) {
                            r + q
                        } else {
                            r
                        }
                    }),
                }
            };
            Data::I64(
                ia.iter()
                    .zip(&ib)
                    .map(|(&i, &j)| f(x[i], y[j]))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ctx.err("integer overflow or division by zero"))?,
            )
        }
        _ => return Err(ctx.err("the inputs have different element types")),
    };
    Ok(Const { dims, data })
}

/// Folds node `ctx` whose inputs are all constants (`None` for an absent optional input).
pub(crate) fn fold(ctx: &Ctx<'_>, inputs: &[Option<&Const>]) -> Result<Const, ImportError> {
    let tensor = |t| {
        read_tensor(t).map_err(|e| match e {
            TensorFault::External => {
                ctx.err("its value is in an external file; save the model with the weights inside")
            }
            TensorFault::Bad(r) => ctx.err(format!("value: {r}")),
        })
    };
    match ctx.op() {
        "Constant" => {
            if let Some(t) = ctx.tensor("value")? {
                return tensor(t);
            }
            if let Some(a) = ctx.attr("value_float") {
                let v =
                    a.f.ok_or_else(|| ctx.attr_err("value_float", "has no value"))?;
                return Ok(Const::f32(vec![], vec![v]));
            }
            if let Some(v) = ctx.floats("value_floats")? {
                return Ok(Const::f32(vec![v.len()], v.to_vec()));
            }
            if let Some(v) = ctx.int_opt("value_int")? {
                return Ok(Const::i64(vec![], vec![v]));
            }
            if let Some(v) = ctx.ints("value_ints")? {
                return Ok(Const::i64(vec![v.len()], v.to_vec()));
            }
            Err(ctx.err("no value (sparse and string constants are not read)"))
        }
        "ConstantOfShape" => {
            let dims = ints(ctx, get(ctx, inputs, 0)?, "the shape")?
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ctx.err("a negative dimension"))?;
            let n = count(&dims).ok_or_else(|| ctx.err(format!("{dims:?} is too large")))?;
            let value = match ctx.tensor("value")? {
                Some(t) => tensor(t)?,
                None => Const::f32(vec![1], vec![0.0]),
            };
            if value.len() != 1 {
                return Err(ctx.attr_err("value", "must hold one value"));
            }
            Ok(Const {
                dims,
                data: match value.data {
                    Data::F32(v) => Data::F32(vec![v[0]; n]),
                    Data::I64(v) => Data::I64(vec![v[0]; n]),
                },
            })
        }
        "Gather" => {
            let (data, idx) = (get(ctx, inputs, 0)?, get(ctx, inputs, 1)?);
            let axis = ctx.axis("axis", ctx.int("axis", 0)?, data.dims.len())?;
            let d = data.dims[axis];
            let index = ints(ctx, idx, "the indices")?
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i.saturating_add(d as i64) } else { i };
                    usize::try_from(i).ok().filter(|&i| i < d)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ctx.err(format!("an index outside 0..{d}")))?;
            let mut ranges: Vec<Vec<usize>> = data.dims.iter().map(|&d| (0..d).collect()).collect();
            ranges[axis] = index;
            let mut dims = data.dims[..axis].to_vec();
            dims.extend(&idx.dims);
            dims.extend(&data.dims[axis + 1..]);
            count(&dims).ok_or_else(|| ctx.err(format!("the result {dims:?} is too large")))?;
            let pos = positions(&data.dims, &ranges);
            Ok(data.pick(dims, &pos))
        }
        "Slice" => {
            let data = get(ctx, inputs, 0)?;
            let ranges = slice_ranges(ctx, &data.dims, inputs)?;
            let dims = ranges.iter().map(Vec::len).collect();
            Ok(data.pick(dims, &positions(&data.dims, &ranges)))
        }
        "Concat" => {
            let parts = inputs.iter().flatten().copied().collect::<Vec<_>>();
            let first = parts.first().ok_or_else(|| ctx.err("no inputs"))?;
            let axis = ctx.axis("axis", ctx.int("axis", 0)?, first.dims.len())?;
            let mut dims = first.dims.clone();
            dims[axis] = 0;
            for p in &parts {
                let mut same = p.dims.clone();
                if same.len() != dims.len() {
                    return Err(ctx.err("inputs of different ranks"));
                }
                dims[axis] += same[axis];
                same[axis] = dims[axis];
                if same != dims {
                    return Err(ctx.err("inputs differ off the concatenation axis"));
                }
            }
            let outer: usize = dims[..axis].iter().product();
            let mut data = match first.data {
                Data::F32(_) => Data::F32(vec![]),
                Data::I64(_) => Data::I64(vec![]),
            };
            for o in 0..outer {
                for p in &parts {
                    let block: usize = p.dims[axis..].iter().product();
                    match (&mut data, &p.data) {
                        (Data::F32(d), Data::F32(v)) => {
                            d.extend(v.iter().skip(o * block).take(block))
                        }
                        (Data::I64(d), Data::I64(v)) => {
                            d.extend(v.iter().skip(o * block).take(block))
                        }
                        _ => return Err(ctx.err("inputs of different element types")),
                    }
                }
            }
            Ok(Const { dims, data })
        }
        "Add" | "Sub" | "Mul" | "Div" | "Mod" => {
            binary(ctx, get(ctx, inputs, 0)?, get(ctx, inputs, 1)?)
        }
        "Neg" => {
            let a = get(ctx, inputs, 0)?;
            Ok(Const {
                dims: a.dims.clone(),
                data: match &a.data {
                    Data::F32(v) => Data::F32(v.iter().map(|x| -x).collect()),
                    Data::I64(v) => Data::I64(v.iter().map(|x| x.wrapping_neg()).collect()),
                },
            })
        }
        "Cast" => {
            let a = get(ctx, inputs, 0)?;
            let to = ctx
                .int_opt("to")?
                .ok_or_else(|| ctx.attr_err("to", "is missing"))?;
            let data = match (to, &a.data) {
                (1 | 11, Data::F32(v)) => Data::F32(v.clone()),
                (1 | 11, Data::I64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
                (9, Data::F32(v)) => Data::I64(v.iter().map(|&x| i64::from(x != 0.0)).collect()),
                (9, Data::I64(v)) => Data::I64(v.iter().map(|&x| i64::from(x != 0)).collect()),
                (2..=7 | 12 | 13, Data::F32(v)) => Data::I64(v.iter().map(|&x| x as i64).collect()),
                (2..=7 | 12 | 13, Data::I64(v)) => Data::I64(v.clone()),
                _ => {
                    return Err(ctx.attr_err(
                        "to",
                        format!(
                            "is {}, a type the importer does not fold",
                            super::tensor::data_type_name(to as i32)
                        ),
                    ))
                }
            };
            Ok(Const {
                dims: a.dims.clone(),
                data,
            })
        }
        "Unsqueeze" | "Squeeze" => {
            let a = get(ctx, inputs, 0)?;
            let axes = axes_of(ctx, inputs, 1)?;
            let dims = squeeze_dims(ctx, &a.dims, axes.as_deref(), ctx.op() == "Squeeze")?;
            Ok(a.with_dims(dims))
        }
        "Reshape" => {
            let a = get(ctx, inputs, 0)?;
            let shape = match ctx.ints("shape")? {
                Some(s) => s.to_vec(),
                None => ints(ctx, get(ctx, inputs, 1)?, "the shape")?.to_vec(),
            };
            Ok(a.with_dims(reshape_dims(ctx, &a.dims, &shape)?))
        }
        "Flatten" => {
            let a = get(ctx, inputs, 0)?;
            Ok(a.with_dims(flatten_dims(ctx, &a.dims)?))
        }
        "Identity" | "Dropout" => Ok(get(ctx, inputs, 0)?.clone()),
        // A weight transposed by the exporter (`aten::t` before a MatMul).
        "Transpose" => {
            let a = get(ctx, inputs, 0)?;
            let r = a.dims.len();
            let perm: Vec<usize> = match ctx.ints("perm")? {
                Some(p) => p
                    .iter()
                    .map(|&p| ctx.axis("perm", p, r))
                    .collect::<Result<_, _>>()?,
                None => (0..r).rev().collect(),
            };
            if perm.len() != r || (0..r).any(|i| !perm.contains(&i)) {
                return Err(
                    ctx.attr_err("perm", format!("{perm:?} is not a permutation of {r} axes"))
                );
            }
            Ok(a.permuted(&perm))
        }
        op => Err(ctx.err(format!("{op} is not folded"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{AttributeProto, AttributeType, NodeProto};

    fn node(op: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: format!("/{op}"),
            attribute,
            ..Default::default()
        }
    }

    fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i: Some(v),
            r#type: AttributeType::Int as i32,
            ..Default::default()
        }
    }

    fn run(n: &NodeProto, inputs: &[Const]) -> Result<Const, ImportError> {
        let ctx = Ctx::new(0, n);
        let inputs: Vec<Option<&Const>> = inputs.iter().map(Some).collect();
        fold(&ctx, &inputs)
    }

    fn v(x: &[i64]) -> Const {
        Const::i64(vec![x.len()], x.to_vec())
    }

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        let n = node("Reshape", vec![]);
        let ctx = Ctx::new(0, &n);
        // [1, 64, 7, 7] -> [0, -1]: 0 copies the batch, -1 takes the rest
        assert_eq!(
            reshape_dims(&ctx, &[1, 64, 7, 7], &[0, -1]).unwrap(),
            [1, 3136]
        );
        assert!(reshape_dims(&ctx, &[1, 6], &[-1, -1]).is_err());
        assert!(reshape_dims(&ctx, &[1, 6], &[4, -1]).is_err());
    }

    #[test]
    fn slices_follow_onnx_clamping_and_negative_steps() {
        let n = node("Slice", vec![]);
        let data = Const::i64(vec![5], vec![10, 11, 12, 13, 14]);
        // [1 : i64::MAX]
        let out = run(&n, &[data.clone(), v(&[1]), v(&[i64::MAX])]).unwrap();
        assert_eq!(out, v(&[11, 12, 13, 14]));
        // [-1 : -6 : -2] = 14, 12, 10
        let out = run(&n, &[data, v(&[-1]), v(&[-6]), v(&[0]), v(&[-2])]).unwrap();
        assert_eq!(out, v(&[14, 12, 10]));
    }

    #[test]
    fn gather_concat_and_integer_arithmetic_fold() {
        // Shape [1, 4, 2, 2] -> Gather 0 (scalar index) -> a scalar
        let shape = v(&[1, 4, 2, 2]);
        let out = run(
            &node("Gather", vec![]),
            &[shape, Const::i64(vec![], vec![0])],
        )
        .unwrap();
        assert_eq!(out, Const::i64(vec![], vec![1]));
        let out = run(
            &node("Concat", vec![int("axis", 0)]),
            &[v(&[1]), v(&[4, 2])],
        )
        .unwrap();
        assert_eq!(out, v(&[1, 4, 2]));
        // Mod takes the sign of the divisor (fmod = 0): -7 mod 3 = 2; 7 / 2 = 3
        let out = run(&node("Mod", vec![]), &[v(&[-7]), v(&[3])]).unwrap();
        assert_eq!(out, v(&[2]));
        let out = run(
            &node("Div", vec![]),
            &[v(&[7]), Const::i64(vec![], vec![2])],
        )
        .unwrap();
        assert_eq!(out, v(&[3]));
        assert!(run(&node("Div", vec![]), &[v(&[7]), v(&[0])]).is_err());
    }

    #[test]
    fn transpose_permutes_a_constant() {
        let a = Const::i64(vec![2, 3], vec![1, 2, 3, 4, 5, 6]);
        let out = run(&node("Transpose", vec![]), &[a]).unwrap();
        // [[1, 2, 3], [4, 5, 6]] transposed
        assert_eq!(out, Const::i64(vec![3, 2], vec![1, 4, 2, 5, 3, 6]));
    }

    #[test]
    fn unsqueeze_and_squeeze_move_only_dimensions() {
        let n = node("Unsqueeze", vec![]);
        let ctx = Ctx::new(0, &n);
        assert_eq!(
            squeeze_dims(&ctx, &[3], Some(&[0, -1]), false).unwrap(),
            [1, 3, 1]
        );
        assert!(squeeze_dims(&ctx, &[3], Some(&[0, 0]), false).is_err());
        assert_eq!(squeeze_dims(&ctx, &[1, 3, 1], None, true).unwrap(), [3]);
        assert!(squeeze_dims(&ctx, &[1, 3], Some(&[1]), true).is_err());
    }
}
