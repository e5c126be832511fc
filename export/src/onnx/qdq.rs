//! The int8 graph as ONNX in QDQ form (standard `QuantizeLinear` / `DequantizeLinear` around
//! float operators, opset 13).
//!
//! Whole model ([`export_qdq`]): `z` (float) `-> QuantizeLinear -> z.q` (int8), then per layer
//! - Dense / Conv / ConvTranspose `k{i}`: `DequantizeLinear(x)`; `DequantizeLinear(k{i}.weight_q)`
//!   with the per-output-channel scale (axis 0 for Gemm and Conv, axis 1 for ConvTranspose, whose
//!   weight is `[C_in, C_out, kH, kW]`); `DequantizeLinear(k{i}.bias_q)` (int32, scale
//!   `s_in * s_w[c]`, axis 0, no zero point); the float operator; `Relu` if one was folded into
//!   the layer; `QuantizeLinear` to the layer's output quantisation, giving the int8 tensor `k{i}`;
//! - an activation table `k{i}`: `DequantizeLinear -> LeakyRelu / Tanh / Sigmoid / Relu ->
//!   QuantizeLinear`;
//! - a reshape: `Reshape` of the int8 tensor;
//!
//! and finally `DequantizeLinear` of the last int8 tensor (`x.q` for a generator) to the float
//! output. Every int8 tensor between layers has a stable name (`z.q`, `dense0`, ..., `x.q`);
//! with [`QdqOptions::debug_outputs`] they are all graph outputs too, so a runtime's int8
//! activations can be compared with them one by one.
//!
//! [`export_qdq_layers`] writes a run of layers as an int8-in, int8-out model (input: the int8
//! tensor entering the first layer), for feeding another implementation's int8 intermediate
//! into one layer at a time.

use std::ops::Range;

use super::{
    attr_float, attr_int, conv_attrs, input_name, Builder, ElemType, Endpoint, Kind, OnnxError,
    OnnxModel, Plan, Rank,
};
use crate::graph::Conv;
use crate::graph::ConvSpec;
use crate::quant::{Activation, QLayer, QLinear, QParams, QuantGraph};

/// Options of the QDQ writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QdqOptions {
    /// Also make every int8 tensor between layers (`z.q`, each layer's output) a graph output,
    /// after the float output.
    pub debug_outputs: bool,
}

/// The quantized graph as QDQ ONNX bytes (float input, float output; see the module docs).
pub fn to_onnx_qdq(q: &QuantGraph, name: &str) -> Result<Vec<u8>, OnnxError> {
    Ok(export_qdq(q, name, &QdqOptions::default())?.bytes)
}

/// The quantized graph as a QDQ ONNX model: float input `z`, float output, and with
/// `debug_outputs` every int8 tensor between layers as an extra output.
pub fn export_qdq(
    q: &QuantGraph,
    name: &str,
    options: &QdqOptions,
) -> Result<OnnxModel, OnnxError> {
    let plan = QPlan::new(q)?;
    let count = q.layers.len();
    let mut b = Builder::default();
    // z -> z.q
    let zq = plan.qname(0);
    let (s, zp) = b.qparams(&format!("{}.q", input_name(q.part)), q.input);
    b.node(
        "QuantizeLinear",
        &zq,
        &[plan.plan.tensor(0), &s, &zp],
        &zq,
        vec![],
        "quantize the input",
    );
    for i in 0..count {
        emit_qdq_layer(&mut b, &plan, q, i)?;
    }
    // x.q -> x
    let out = plan.plan.tensor(count).to_owned();
    let (s, zp) = b.qparams(&format!("{out}.dq"), q.output);
    b.node(
        "DequantizeLinear",
        &format!("{out}.dq"),
        &[&plan.qname(count), &s, &zp],
        &out,
        vec![],
        "dequantize the output",
    );

    let input = plan.plan.endpoint(0, ElemType::F32);
    let output = plan.plan.endpoint(count, ElemType::F32);
    let mut outputs = vec![output];
    if options.debug_outputs {
        for i in 0..=count {
            let e = plan.qendpoint(i);
            b.extra_output(e.clone());
            outputs.push(e);
        }
    }
    let doc = format!(
        "tinygen {:?} `{name}`, int8 QDQ ({} scales), {count} layers",
        q.part,
        if q.free_scales {
            "free"
        } else {
            "snapped, bit-exact"
        }
    );
    let graph_outputs = &outputs[..1];
    let bytes = b.finish(
        name,
        &doc,
        q.part,
        q.output_range,
        std::slice::from_ref(&input),
        graph_outputs,
    );
    Ok(OnnxModel {
        bytes,
        inputs: vec![input],
        outputs,
        layers: 0..count,
    })
}

/// Layers `layers` of the quantized graph alone, int8 in and int8 out: the input is the int8
/// tensor entering `layers.start` (`z.q` for the first layer), the output the int8 tensor that
/// `layers.end - 1` produces, named as in [`export_qdq`].
pub fn export_qdq_layers(
    q: &QuantGraph,
    name: &str,
    layers: Range<usize>,
) -> Result<OnnxModel, OnnxError> {
    let plan = QPlan::new(q)?;
    plan.plan.check_range(&layers)?;
    let mut b = Builder::default();
    for i in layers.clone() {
        emit_qdq_layer(&mut b, &plan, q, i)?;
    }
    let input = plan.qendpoint(layers.start);
    let output = plan.qendpoint(layers.end);
    let doc = format!(
        "tinygen {:?} `{name}`, int8 QDQ, layers {}..{} of {}",
        q.part,
        layers.start,
        layers.end,
        q.layers.len()
    );
    let bytes = b.finish(
        name,
        &doc,
        q.part,
        q.output_range,
        std::slice::from_ref(&input),
        std::slice::from_ref(&output),
    );
    Ok(OnnxModel {
        bytes,
        inputs: vec![input],
        outputs: vec![output],
        layers,
    })
}

/// One int8-in, int8-out model per layer, each named `{name}.{node}`.
pub fn export_qdq_per_layer(q: &QuantGraph, name: &str) -> Result<Vec<OnnxModel>, OnnxError> {
    let plan = QPlan::new(q)?;
    (0..q.layers.len())
        .map(|i| export_qdq_layers(q, &format!("{name}.{}", plan.plan.node_name(i)), i..i + 1))
        .collect()
}

/// The float plan's names and ranks, checked against the quantisation chain.
struct QPlan {
    plan: Plan,
}

impl QPlan {
    fn new(q: &QuantGraph) -> Result<Self, OnnxError> {
        let shapes = q.shapes()?;
        let kinds = q
            .layers
            .iter()
            .map(|l| match l {
                QLayer::Dense { .. } => Kind::Dense,
                QLayer::Conv2d { .. } => Kind::Conv,
                QLayer::ConvTranspose2d { .. } => Kind::ConvTranspose,
                QLayer::Activation {
                    f: Activation::Relu,
                    ..
                } => Kind::Relu,
                QLayer::Activation {
                    f: Activation::LeakyRelu { .. },
                    ..
                } => Kind::LeakyRelu,
                QLayer::Activation {
                    f: Activation::Tanh,
                    ..
                } => Kind::Tanh,
                QLayer::Activation {
                    f: Activation::Sigmoid,
                    ..
                } => Kind::Sigmoid,
                QLayer::Activation {
                    f: Activation::Exp, ..
                } => Kind::Exp,
                QLayer::Reshape { .. } => Kind::Reshape,
            })
            .collect();
        let plan = Plan::from_parts(q.part, kinds, shapes);
        // qp[i]: quantisation of the int8 tensor entering layer i; each layer must read the
        // quantisation its input tensor was written with.
        let mut qp = vec![q.input];
        for (i, layer) in q.layers.iter().enumerate() {
            let here = qp[i];
            let (input, output) = match layer {
                QLayer::Dense { q, .. }
                | QLayer::Conv2d { q, .. }
                | QLayer::ConvTranspose2d { q, .. } => (Some(q.input), q.output),
                QLayer::Activation { input, output, .. } => (Some(*input), *output),
                QLayer::Reshape { .. } => (None, here),
            };
            if let Some(input) = input {
                if input != here {
                    return Err(OnnxError::Quantized {
                        layer: i,
                        what: format!(
                            "input quantisation {input:?} differs from the tensor's {here:?}"
                        ),
                    });
                }
            }
            qp.push(output);
        }
        if qp[q.layers.len()] != q.output {
            return Err(OnnxError::Quantized {
                layer: q.layers.len().saturating_sub(1),
                what: format!(
                    "last layer's output quantisation differs from the graph's {:?}",
                    q.output
                ),
            });
        }
        Ok(QPlan { plan })
    }

    /// Name of the int8 tensor entering layer `i`: `z.q`, the node name of layer `i - 1`, or
    /// `x.q` for the output.
    fn qname(&self, i: usize) -> String {
        let count = self.plan.layer_count();
        if i == 0 || i == count {
            format!("{}.q", self.plan.tensor(i))
        } else {
            self.plan.tensor(i).to_owned()
        }
    }

    fn qendpoint(&self, i: usize) -> Endpoint {
        Endpoint {
            name: self.qname(i),
            elem: ElemType::I8,
            dims: self.plan.dims(i),
        }
    }
}

impl Builder {
    /// Scalar scale and int8 zero point initializers `{prefix}.scale`, `{prefix}.zero_point`.
    pub(super) fn qparams(&mut self, prefix: &str, p: QParams) -> (String, String) {
        let s = self.init_f32(&format!("{prefix}.scale"), &[], &[p.scale]);
        let zp = self.init_i8(&format!("{prefix}.zero_point"), &[], &[p.zero_point]);
        (s, zp)
    }
}

/// Emits layer `i`: int8 tensor `qname(i)` in, int8 tensor `qname(i + 1)` out.
fn emit_qdq_layer(
    b: &mut Builder,
    plan: &QPlan,
    q: &QuantGraph,
    i: usize,
) -> Result<(), OnnxError> {
    let layer = &q.layers[i];
    let input = plan.qname(i);
    let x = match layer {
        QLayer::Dense { .. } => b.in_rank(&plan.plan, i, Rank::Flat, &input),
        QLayer::Conv2d { .. } | QLayer::ConvTranspose2d { .. } => {
            b.in_rank(&plan.plan, i, Rank::Image, &input)
        }
        _ => input,
    };
    let node = plan.plan.node_name(i);
    let output = plan.qname(i + 1);
    emit_qlayer(b, layer, i, &node, &x, &output, &plan.plan.dims(i + 1))
}

/// Emits the QDQ form of one int8 layer (node `node`, number `i` in the docs): int8 tensor `x`
/// in, already in the rank the layer takes (flat for Dense, an image for convolutions), int8
/// tensor `output` out; `out_dims` (without the batch) is the shape a Reshape writes.
pub(super) fn emit_qlayer(
    b: &mut Builder,
    layer: &QLayer,
    i: usize,
    node: &str,
    x: &str,
    output: &str,
    out_dims: &[usize],
) -> Result<(), OnnxError> {
    let (node, output) = (node.to_owned(), output.to_owned());
    let doc = |what: &str| format!("layer {i}: {what}");
    let bad = |what: String| OnnxError::Quantized { layer: i, what };
    match layer {
        QLayer::Dense {
            inputs,
            outputs,
            q: ql,
        } => {
            let xf = dequantize_activation(b, &node, x, ql.input);
            let (w, bias) =
                dequantize_parameters(b, &node, ql, &[*outputs, *inputs], 0).map_err(bad)?;
            let y = format!("{node}.y");
            let d = doc(&format!("Dense {inputs}->{outputs} on dequantized int8"));
            b.node(
                "Gemm",
                &node,
                &[&xf, &w, &bias],
                &y,
                vec![attr_int("transB", 1)],
                &d,
            );
            requantize(b, &node, &y, ql, &output);
        }
        QLayer::Conv2d { conv, q: ql } | QLayer::ConvTranspose2d { conv, q: ql } => {
            let transposed = matches!(layer, QLayer::ConvTranspose2d { .. });
            let xf = dequantize_activation(b, &node, x, ql.input);
            let c = Conv {
                spec: *conv,
                weight: Vec::new(),
                bias: Vec::new(),
            };
            let (dims, axis) = if transposed {
                ([conv.in_ch, conv.out_ch, conv.kernel.0, conv.kernel.1], 1)
            } else {
                ([conv.out_ch, conv.in_ch, conv.kernel.0, conv.kernel.1], 0)
            };
            let (w, bias) = dequantize_parameters(b, &node, ql, &dims, axis).map_err(bad)?;
            let y = format!("{node}.y");
            let op = if transposed { "ConvTranspose" } else { "Conv" };
            let d = doc(&format!("{op} {} on dequantized int8", describe(conv)));
            b.node(
                op,
                &node,
                &[&xf, &w, &bias],
                &y,
                conv_attrs(&c, transposed),
                &d,
            );
            requantize(b, &node, &y, ql, &output);
        }
        QLayer::Activation {
            f,
            input: qin,
            output: qout,
            ..
        } => {
            let xf = dequantize_activation(b, &node, x, *qin);
            let y = format!("{node}.y");
            let (op, attrs) = match f {
                Activation::Relu => ("Relu", vec![]),
                Activation::LeakyRelu { alpha } => ("LeakyRelu", vec![attr_float("alpha", *alpha)]),
                Activation::Tanh => ("Tanh", vec![]),
                Activation::Sigmoid => ("Sigmoid", vec![]),
                Activation::Exp => ("Exp", vec![]),
            };
            b.node(
                op,
                &node,
                &[&xf],
                &y,
                attrs,
                &doc(&format!(
                    "{op} between int8 tensors (a lookup table on the device)"
                )),
            );
            let (s, zp) = b.qparams(&format!("{node}.y"), *qout);
            b.node(
                "QuantizeLinear",
                &format!("{node}.q"),
                &[&y, &s, &zp],
                &output,
                vec![],
                &doc("quantize"),
            );
        }
        QLayer::Reshape { .. } => {
            let shape = b.shape_init(&format!("{node}.shape"), out_dims);
            b.node(
                "Reshape",
                &node,
                &[x, &shape],
                &output,
                vec![],
                &doc("reshape of the int8 tensor"),
            );
        }
    }
    Ok(())
}

fn describe(c: &ConvSpec) -> String {
    format!(
        "{}->{} k{}x{} s{}x{} p{}x{} op{}x{}",
        c.in_ch,
        c.out_ch,
        c.kernel.0,
        c.kernel.1,
        c.stride.0,
        c.stride.1,
        c.pad.0,
        c.pad.1,
        c.output_padding.0,
        c.output_padding.1
    )
}

/// `DequantizeLinear(x, {node}.x.scale, {node}.x.zero_point) -> {node}.x`.
pub(super) fn dequantize_activation(b: &mut Builder, node: &str, x: &str, p: QParams) -> String {
    let (s, zp) = b.qparams(&format!("{node}.x"), p);
    let out = format!("{node}.x");
    b.node(
        "DequantizeLinear",
        &format!("{node}.dq_x"),
        &[x, &s, &zp],
        &out,
        vec![],
        "dequantize the input",
    );
    out
}

/// Per-channel `DequantizeLinear` of the int8 weight and the int32 bias; returns their float
/// names `{node}.weight`, `{node}.bias`.
fn dequantize_parameters(
    b: &mut Builder,
    node: &str,
    q: &QLinear,
    wdims: &[usize],
    axis: usize,
) -> Result<(String, String), String> {
    let channels = wdims[axis];
    let expected: usize = wdims.iter().product();
    if q.weight.len() != expected {
        return Err(format!(
            "{} int8 weights, expected {expected}",
            q.weight.len()
        ));
    }
    if q.weight_scale.len() != channels || q.bias.len() != channels {
        return Err(format!(
            "{} weight scales and {} biases for {channels} output channels",
            q.weight_scale.len(),
            q.bias.len()
        ));
    }
    let wq = b.init_i8(&format!("{node}.weight_q"), wdims, &q.weight);
    let ws = b.init_f32(
        &format!("{node}.weight_scale"),
        &[channels],
        &q.weight_scale,
    );
    let wzp = b.init_i8(
        &format!("{node}.weight_zero_point"),
        &[channels],
        &vec![0; channels],
    );
    let w = format!("{node}.weight");
    let axis_attr = vec![attr_int("axis", axis as i64)];
    b.node(
        "DequantizeLinear",
        &format!("{node}.dq_w"),
        &[&wq, &ws, &wzp],
        &w,
        axis_attr.clone(),
        "per-channel int8 weight",
    );
    let bias_scale: Vec<f32> = q
        .weight_scale
        .iter()
        .map(|&sw| q.input.scale * sw)
        .collect();
    let bq = b.init_i32(&format!("{node}.bias_q"), &[channels], &q.bias);
    let bs = b.init_f32(&format!("{node}.bias_scale"), &[channels], &bias_scale);
    let bias = format!("{node}.bias");
    b.node(
        "DequantizeLinear",
        &format!("{node}.dq_b"),
        &[&bq, &bs],
        &bias,
        vec![attr_int("axis", 0)],
        "int32 bias, scale s_in * s_w",
    );
    Ok((w, bias))
}

/// Optional folded `Relu`, then `QuantizeLinear` to the layer's output quantisation.
fn requantize(b: &mut Builder, node: &str, y: &str, q: &QLinear, output: &str) {
    let mut y = y.to_owned();
    if q.relu {
        let r = format!("{node}.relu");
        b.node(
            "Relu",
            &r,
            &[&y],
            &r,
            vec![],
            "ReLU folded into the layer (a clamp at the output zero point on the device)",
        );
        y = r;
    }
    let (s, zp) = b.qparams(&format!("{node}.y"), q.output);
    b.node(
        "QuantizeLinear",
        &format!("{node}.q"),
        &[&y, &s, &zp],
        output,
        vec![],
        "requantize the layer output",
    );
}
