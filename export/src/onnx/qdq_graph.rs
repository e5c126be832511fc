//! A quantized graph with branches ([`QuantDag`]) as ONNX in QDQ form, opset 13.
//!
//! The float input `z` goes through `QuantizeLinear` to `z.q`; every tensor after it is int8
//! (`t{k}.q`, the output `x.q`), and `DequantizeLinear` of `x.q` is the float output `x`.
//! Per node:
//! - Dense, convolutions, tables and reshapes as in the chain's QDQ graph ([`super::export_qdq`]);
//! - Add, Sub, Mul and Concat: `DequantizeLinear` of each int8 input, the float operator (a
//!   per-channel operand is a float constant), `QuantizeLinear` to the node's output;
//! - Slice and Gather on the int8 tensor itself (they keep its quantisation).
//!
//! Flat tensors are `[N, n]`, images `[N, C, H, W]`; a Reshape of the int8 tensor is inserted
//! where an op needs the other rank, as in the float graph ([`Dag::to_onnx_f32`](crate::dag::Dag::to_onnx_f32)).

use super::qdq::{dequantize_activation, emit_qlayer};
use super::{output_name, ElemType, OnnxError};
use crate::dag::{dims_in, emit_graph_op, layer_rank, rank_of, Dag, OnnxWalk, Op};
use crate::qdag::{QOp, QuantDag};
use crate::quant::QLayer;

/// The quantized graph as QDQ ONNX bytes (float input, float output; see the module docs).
pub fn to_onnx_qdq_graph(q: &QuantDag, name: &str) -> Result<Vec<u8>, OnnxError> {
    let shapes = q.shapes()?;
    let n_in = q.inputs.len();
    let float_inputs = Dag {
        part: q.part,
        inputs: q.inputs.clone(),
        nodes: Vec::new(),
    }
    .onnx_input_names();
    let output = q.output();
    let mut w = OnnxWalk::new(shapes, float_inputs.clone());
    for (t, input) in float_inputs.iter().enumerate() {
        let qname = format!("{input}.q");
        let (s, zp) = w.b.qparams(&qname, q.quant[t]);
        w.b.node(
            "QuantizeLinear",
            &qname,
            &[input, &s, &zp],
            &qname,
            vec![],
            "quantize the input",
        );
        w.names[t] = qname;
    }
    for (k, node) in q.nodes.iter().enumerate() {
        let t = n_in + k;
        let out = w.tensor_name(t, output, q.part, ".q");
        let a = node.input;
        let node_name = format!("n{k}");
        let rank = match &node.op {
            QOp::Layer(layer) => {
                let skeleton = layer.skeleton();
                let x = match layer_rank(&skeleton) {
                    Some(r) => w.in_rank(a, r),
                    None => w.names[a].clone(),
                };
                let out_rank = match layer {
                    QLayer::Reshape { to } => rank_of(*to),
                    _ => layer_rank(&skeleton).unwrap_or(w.ranks[a]),
                };
                let out_dims = dims_in(w.shapes[t], out_rank);
                emit_qlayer(&mut w.b, layer, k, &node_name, &x, &out, &out_dims)?;
                out_rank
            }
            QOp::Graph(op @ (Op::Slice { .. } | Op::Gather(_))) => {
                let x = w.names[a].clone();
                let doc = format!("node {k}: {} of the int8 tensor", op.name());
                emit_graph_op(&mut w.b, op, &node_name, &x, None, &out, w.ranks[a], &doc);
                w.ranks[a]
            }
            QOp::Graph(op @ (Op::Binary(..) | Op::Concat(_))) => {
                let x = w.names[a].clone();
                let xf = dequantize_activation(&mut w.b, &format!("{node_name}.a"), &x, q.quant[a]);
                let yf = match op.second_input() {
                    Some(b) => {
                        let y = w.in_rank(b, w.ranks[a]);
                        Some(dequantize_activation(
                            &mut w.b,
                            &format!("{node_name}.b"),
                            &y,
                            q.quant[b],
                        ))
                    }
                    None => None,
                };
                let y = format!("{node_name}.y");
                let doc = format!("node {k}: {} on dequantized int8", op.name());
                emit_graph_op(
                    &mut w.b,
                    op,
                    &node_name,
                    &xf,
                    yf.as_deref(),
                    &y,
                    w.ranks[a],
                    &doc,
                );
                let (s, zp) = w.b.qparams(&y, q.quant[t]);
                w.b.node(
                    "QuantizeLinear",
                    &format!("{node_name}.q"),
                    &[&y, &s, &zp],
                    &out,
                    vec![],
                    "quantize the result",
                );
                w.ranks[a]
            }
            QOp::Graph(op @ (Op::Layer(_) | Op::Exp)) => {
                return Err(OnnxError::Quantized {
                    layer: k,
                    what: format!("{} left as a float op in an int8 graph", op.name()),
                })
            }
        };
        w.names.push(out);
        w.ranks.push(rank);
    }
    let out_name = output_name(q.part).to_owned();
    let (s, zp) = w.b.qparams(&format!("{out_name}.dq"), q.quant[output]);
    w.b.node(
        "DequantizeLinear",
        &format!("{out_name}.dq"),
        &[&w.names[output], &s, &zp],
        &out_name,
        vec![],
        "dequantize the output",
    );
    let inputs: Vec<_> = (0..n_in)
        .map(|t| {
            let mut e = w.endpoint(t, ElemType::F32);
            e.name.clone_from(&float_inputs[t]);
            e
        })
        .collect();
    let mut out = w.endpoint(output, ElemType::F32);
    out.name = out_name;
    let doc = format!(
        "tinygen {:?} `{name}`, int8 QDQ (snapped scales, bit-exact), a graph of {} nodes",
        q.part,
        q.nodes.len()
    );
    Ok(w.b.finish(
        name,
        &doc,
        q.part,
        q.output_range,
        &inputs,
        std::slice::from_ref(&out),
    ))
}
