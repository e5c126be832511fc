//! Conv, ConvTranspose and BatchNormalization.

use crate::dag::{Binary, Op, Operand};
use crate::graph::{Conv, ConvSpec, Layer};

use super::attr::Ctx;
use super::error::{ImportError, Limit};
use super::map::{const_opt as arg, floats, Dyn, Net, Value};

fn x_in<'v>(ctx: &Ctx<'_>, inputs: &[Option<&'v Value>]) -> Result<&'v Dyn, ImportError> {
    match inputs.first().copied().flatten() {
        Some(Value::Dyn(d)) => Ok(d),
        Some(Value::Const(_)) => {
            Err(ctx.limit(Limit::ConstantOperand, "the input X is a constant"))
        }
        None => Err(ctx.err("input X is missing")),
    }
}

/// A pair of per-axis sizes from an attribute of two values, or `default`.
fn pair(ctx: &Ctx<'_>, name: &str, default: usize) -> Result<(usize, usize), ImportError> {
    match ctx.sizes(name)?.as_deref() {
        None => Ok((default, default)),
        Some(&[a, b]) => Ok((a, b)),
        Some(v) => Err(ctx.attr_err(
            name,
            format!("is {v:?}; a 2-D convolution takes two values"),
        )),
    }
}

/// Symmetric padding from the total padding of each axis.
fn halves(ctx: &Ctx<'_>, total: [i64; 2]) -> Result<(usize, usize), ImportError> {
    let half = |t: i64| {
        if t < 0 || t % 2 != 0 {
            Err(ctx.limit(
                Limit::AsymmetricPadding,
                format!(
                    "padding {total:?} in total is not split evenly; write explicit symmetric pads"
                ),
            ))
        } else {
            usize::try_from(t / 2).map_err(|_| ctx.err("padding too large"))
        }
    };
    Ok((half(total[0])?, half(total[1])?))
}

/// Conv (`transposed = false`) or ConvTranspose.
pub(crate) fn conv(
    net: &mut Net,
    ctx: &Ctx<'_>,
    inputs: &[Option<&Value>],
    transposed: bool,
) -> Result<Dyn, ImportError> {
    let x = x_in(ctx, inputs)?;
    let w = arg(ctx, inputs, 1)?.ok_or_else(|| ctx.err("the weights W are missing"))?;
    if w.dims.len() != 4 {
        return Err(ctx.limit(
            Limit::ConvRank,
            format!(
                "weights of dimensions {:?}: a {}-D convolution; the runtime runs 2-D ones",
                w.dims,
                w.dims.len().saturating_sub(2)
            ),
        ));
    }
    let weight = floats(ctx, w, "W")?.to_vec();
    if ctx.int("group", 1)? != 1 {
        return Err(ctx.limit(
            Limit::Group,
            "grouped or depthwise convolution; the runtime runs group = 1",
        ));
    }
    if ctx
        .ints("dilations")?
        .is_some_and(|d| d.iter().any(|&d| d != 1))
    {
        return Err(ctx.limit(Limit::Dilation, "dilations other than 1"));
    }
    let [c, h, wd] = x.dims[..] else {
        return Err(ctx.err(format!(
            "an input [N, {:?}]; a 2-D convolution takes [N, C, H, W]",
            x.dims
        )));
    };
    let kernel = (w.dims[2], w.dims[3]);
    if let Some(ks) = ctx.sizes("kernel_shape")? {
        if ks != [kernel.0, kernel.1] {
            return Err(ctx.attr_err("kernel_shape", format!("is {ks:?} but W is {:?}", w.dims)));
        }
    }
    let (in_ch, out_ch) = if transposed {
        (w.dims[0], w.dims[1])
    } else {
        (w.dims[1], w.dims[0])
    };
    if in_ch != c {
        return Err(ctx.err(format!("an input of {c} channels against W {:?}", w.dims)));
    }
    let stride = pair(ctx, "strides", 1)?;
    if stride.0 == 0 || stride.1 == 0 {
        return Err(ctx.attr_err("strides", "holds a 0"));
    }
    let output_padding = if transposed {
        pair(ctx, "output_padding", 0)?
    } else {
        (0, 0)
    };
    let pads = match ctx.sizes("pads")?.as_deref() {
        None => [0; 4],
        Some(&[t, l, b, r]) => [t, l, b, r],
        Some(v) => {
            return Err(ctx.attr_err(
                "pads",
                format!("is {v:?}; a 2-D convolution takes four values"),
            ))
        }
    };
    let i = |v: usize| v as i64;
    let auto_pad = ctx.string("auto_pad")?.unwrap_or_default();
    let output_shape = if transposed {
        ctx.sizes("output_shape")?
    } else {
        None
    };
    let pad = match (auto_pad.as_str(), output_shape) {
        (_, Some(os)) => {
            // ONNX: total padding = stride * (in - 1) + output_padding + kernel - out.
            let [oh, ow] = os[os.len().saturating_sub(2)..] else {
                return Err(ctx.attr_err("output_shape", format!("is {os:?}")));
            };
            halves(
                ctx,
                [
                    i(stride.0) * (i(h) - 1) + i(output_padding.0) + i(kernel.0) - i(oh),
                    i(stride.1) * (i(wd) - 1) + i(output_padding.1) + i(kernel.1) - i(ow),
                ],
            )?
        }
        ("" | "NOTSET", None) => {
            if pads[0] != pads[2] || pads[1] != pads[3] {
                return Err(ctx.limit(
                    Limit::AsymmetricPadding,
                    format!("pads {pads:?} differ at the start and the end of an axis"),
                ));
            }
            (pads[0], pads[1])
        }
        ("VALID", None) => (0, 0),
        ("SAME_UPPER" | "SAME_LOWER", None) => {
            let total = |n: usize, k: usize, s: usize, op: usize| {
                if transposed {
                    // out = in * stride
                    i(s) * (i(n) - 1) + i(op) + i(k) - i(n) * i(s)
                } else {
                    // out = ceil(in / stride)
                    let out = i(n.div_ceil(s));
                    ((out - 1) * i(s) + i(k) - i(n)).max(0)
                }
            };
            halves(
                ctx,
                [
                    total(h, kernel.0, stride.0, output_padding.0),
                    total(wd, kernel.1, stride.1, output_padding.1),
                ],
            )
            .map_err(|_| {
                ctx.limit(
                    Limit::AutoPad,
                    format!("auto_pad {auto_pad} pads unevenly here; write explicit pads"),
                )
            })?
        }
        (other, None) => {
            return Err(ctx.attr_err("auto_pad", format!("is {other:?}, not an ONNX value")))
        }
    };
    let bias = match arg(ctx, inputs, 2)? {
        Some(b) => {
            let b = floats(ctx, b, "B")?;
            if b.len() != out_ch {
                return Err(ctx.err(format!("{} biases for {out_ch} output channels", b.len())));
            }
            b.to_vec()
        }
        None => vec![0.0; out_ch],
    };
    let conv = Conv {
        spec: ConvSpec {
            in_ch,
            out_ch,
            kernel,
            stride,
            pad,
            output_padding,
        },
        weight,
        bias,
    };
    let layer = if transposed {
        Layer::ConvTranspose2d(conv)
    } else {
        Layer::Conv2d(conv)
    };
    let t = net.push(ctx, x.t, Op::Layer(layer))?;
    Ok(net.out(t))
}

/// BatchNormalization in inference form, `y = x * s + (B - mean * s)` with
/// `s = scale / sqrt(var + epsilon)`: a per-channel Mul and Add, which [`super::fuse`] folds
/// into the layer before them.
pub(crate) fn batch_norm(
    net: &mut Net,
    ctx: &Ctx<'_>,
    inputs: &[Option<&Value>],
) -> Result<Dyn, ImportError> {
    let x = x_in(ctx, inputs)?;
    if ctx.int("training_mode", 0)? != 0 || ctx.int("is_test", 1)? == 0 {
        return Err(ctx.err("runs in training mode; export the model in eval mode"));
    }
    if ctx.int("spatial", 1)? != 1 {
        return Err(ctx.attr_err(
            "spatial",
            "is 0 (per-element statistics); the runtime normalises per channel",
        ));
    }
    let eps = ctx.float("epsilon", 1e-5)?;
    let c = x.dims.first().copied().unwrap_or(1);
    let mut p = Vec::with_capacity(4);
    for (k, name) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
        let v = arg(ctx, inputs, k)?.ok_or_else(|| ctx.err(format!("input {name} is missing")))?;
        let v = floats(ctx, v, name)?;
        if v.len() != c {
            return Err(ctx.err(format!("{name} has {} values for {c} channels", v.len())));
        }
        p.push(v);
    }
    let (scale, b, mean, var) = (p[0], p[1], p[2], p[3]);
    let s: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift: Vec<f32> = b
        .iter()
        .zip(mean)
        .zip(&s)
        .map(|((b, m), s)| b - m * s)
        .collect();
    let t = net.push(ctx, x.t, Op::Binary(Binary::Mul, Operand::Channel(s)))?;
    let t = net.push(ctx, t, Op::Binary(Binary::Add, Operand::Channel(shift)))?;
    Ok(Dyn {
        t,
        dims: x.dims.clone(),
    })
}
