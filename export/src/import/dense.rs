//! Gemm and MatMul: Dense layers with constant weights.

use crate::dag::Op;
use crate::graph::Layer;

use super::attr::Ctx;
use super::error::{ImportError, Limit};
use super::map::{const_in, const_opt, dyn_in, floats, Dyn, Net, Value};
use super::tensor::{broadcast, Const};

pub(crate) fn gemm(
    net: &mut Net,
    ctx: &Ctx<'_>,
    inputs: &[Option<&Value>],
) -> Result<Dyn, ImportError> {
    if let Some(Value::Dyn(_)) = inputs.get(1).copied().flatten() {
        return Err(ctx.limit(
            Limit::RuntimeOperand,
            "B is computed at run time; the runtime needs constant weights",
        ));
    }
    let x = dyn_in(ctx, inputs, 0)?;
    if ctx.int("transA", 0)? != 0 {
        return Err(ctx.limit(
            Limit::RuntimeOperand,
            "transA = 1 transposes the run-time input together with its batch",
        ));
    }
    let b = const_in(ctx, inputs, 1)?;
    let c = const_opt(ctx, inputs, 2)?;
    let (alpha, beta) = (ctx.float("alpha", 1.0)?, ctx.float("beta", 1.0)?);
    dense(
        net,
        ctx,
        x,
        b,
        ctx.int("transB", 0)? != 0,
        alpha,
        c.map(|c| (c, beta)),
    )
}

pub(crate) fn matmul(
    net: &mut Net,
    ctx: &Ctx<'_>,
    inputs: &[Option<&Value>],
) -> Result<Dyn, ImportError> {
    if let Some(Value::Dyn(_)) = inputs.get(1).copied().flatten() {
        return Err(ctx.limit(
            Limit::RuntimeOperand,
            "the second operand is computed at run time; the runtime needs constant weights",
        ));
    }
    let x = dyn_in(ctx, inputs, 0)?;
    let b = const_in(ctx, inputs, 1)?;
    if b.dims.len() == 1 {
        let b2 = b.with_dims(vec![b.dims[0], 1]);
        let d = dense(net, ctx, x, &b2, false, 1.0, None)?;
        return net.set_dims(ctx, &d, vec![]);
    }
    dense(net, ctx, x, b, false, 1.0, None)
}

/// A Dense layer `y = alpha * x B' + beta * C`, `B'` being `B` (`[K, M]`) or its transpose.
fn dense(
    net: &mut Net,
    ctx: &Ctx<'_>,
    x: &Dyn,
    b: &Const,
    trans_b: bool,
    alpha: f32,
    c: Option<(&Const, f32)>,
) -> Result<Dyn, ImportError> {
    let [k] = x.dims[..] else {
        return Err(if x.dims.len() > 1 {
            ctx.limit(
                Limit::MatMulRank,
                format!(
                    "an input of dimensions [N, {:?}]; the runtime multiplies [N, K] by [K, M]",
                    x.dims
                ),
            )
        } else {
            ctx.err("a scalar input")
        });
    };
    let w = floats(ctx, b, "the weight")?;
    let [r0, r1] = b.dims[..] else {
        return Err(ctx.err(format!("weights of dimensions {:?}, not 2-D", b.dims)));
    };
    let (kk, m) = if trans_b { (r1, r0) } else { (r0, r1) };
    if kk != k {
        return Err(ctx.err(format!(
            "an input of {k} features against weights {:?}",
            b.dims
        )));
    }
    // [M, K] row-major, as Dense stores it.
    let weight: Vec<f32> = (0..m)
        .flat_map(|o| (0..k).map(move |i| if trans_b { w[o * k + i] } else { w[i * m + o] }))
        .map(|v| v * alpha)
        .collect();
    let bias = match c {
        None => vec![0.0; m],
        Some((c, beta)) => {
            let v = floats(ctx, c, "C")?;
            let ok = broadcast(&c.dims, &[1, m]).is_some_and(|d| d == [1, m]);
            if !ok {
                return Err(ctx.limit(
                    Limit::Broadcast,
                    format!(
                        "C of dimensions {:?} is not one value per output ({m})",
                        c.dims
                    ),
                ));
            }
            match v.len() {
                1 => vec![v[0] * beta; m],
                _ => v.iter().map(|x| x * beta).collect(),
            }
        }
    };
    let t = net.push(
        ctx,
        x.t,
        Op::Layer(Layer::Dense {
            inputs: k,
            outputs: m,
            weight,
            bias,
        }),
    )?;
    Ok(Dyn { t, dims: vec![m] })
}
