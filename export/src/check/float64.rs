//! An f32 ONNX graph rewritten in float64, for tract to compute the exact values an f32
//! implementation is judged against.
//!
//! Every float32 tensor becomes float64: initializers, Constant values, graph inputs, outputs
//! and value infos, Casts to float. tract-onnx 0.23 has no float64 kernel for three operators
//! the exporters write, so they are rewritten with operators it has, exactly in real arithmetic:
//! - Gemm (tract builds its alpha and beta as f32 scalars): `[Transpose] MatMul [Mul alpha]
//!   [Add (Mul beta) C]`;
//! - Sigmoid: `1 / (1 + exp(-x))` (Neg, Exp, Add, Reciprocal);
//! - LeakyRelu with a slope in `[0, 1]`: `max(x, alpha * x)`.

use prost::Message;

use super::CheckError;
use crate::onnx::proto::{type_proto, ModelProto, NodeProto, TensorProto, ValueInfoProto};

const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;

/// The float ONNX model `bytes` in float64 (see the module documentation). Fails if the bytes
/// are not ONNX.
pub fn float64_model(bytes: &[u8]) -> Result<Vec<u8>, CheckError> {
    let mut m = ModelProto::decode(bytes).map_err(|e| CheckError::Load {
        name: "ONNX model".into(),
        message: format!("not an ONNX model: {e}"),
    })?;
    if let Some(g) = m.graph.as_mut() {
        let mut w = Rewrite::default();
        for node in std::mem::take(&mut g.node) {
            w.node(node);
        }
        g.node = w.nodes;
        g.initializer.extend(w.constants);
        g.initializer.iter_mut().for_each(widen);
        g.input.iter_mut().for_each(widen_info);
        g.output.iter_mut().for_each(widen_info);
        g.value_info.iter_mut().for_each(widen_info);
        for node in &mut g.node {
            for a in &mut node.attribute {
                if let Some(t) = a.t.as_mut() {
                    widen(t);
                }
                if node.op_type == "Cast" && a.name == "to" && a.i == Some(i64::from(FLOAT)) {
                    a.i = Some(i64::from(DOUBLE));
                }
            }
        }
    }
    Ok(m.encode_to_vec())
}

fn widen(t: &mut TensorProto) {
    if t.data_type != FLOAT {
        return;
    }
    let values: Vec<f64> = if t.raw_data.is_empty() {
        t.float_data.iter().map(|&v| f64::from(v)).collect()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect()
    };
    t.data_type = DOUBLE;
    t.float_data.clear();
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
}

fn widen_info(v: &mut ValueInfoProto) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        if t.elem_type == FLOAT {
            t.elem_type = DOUBLE;
        }
    }
}

/// The rewritten nodes and the float64 scalars they use.
#[derive(Default)]
struct Rewrite {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
}

impl Rewrite {
    /// Adds `op(inputs) -> output`.
    fn push(&mut self, op: &str, inputs: Vec<String>, output: String) -> String {
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            attribute: Vec::new(),
            doc_string: String::new(),
            domain: String::new(),
        });
        output
    }

    /// A float64 scalar initializer named `name`.
    fn scalar(&mut self, name: String, v: f32) -> String {
        self.constants.push(TensorProto {
            name: name.clone(),
            data_type: DOUBLE,
            raw_data: f64::from(v).to_le_bytes().to_vec(),
            ..Default::default()
        });
        name
    }

    fn node(&mut self, node: NodeProto) {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let int = |name: &str| attr(name).and_then(|a| a.i).unwrap_or(0);
        let float = |name: &str, default: f32| attr(name).and_then(|a| a.f).unwrap_or(default);
        let input = |k: usize| node.input.get(k).cloned().unwrap_or_default();
        let (Some(out), x) = (node.output.first().cloned(), input(0)) else {
            self.nodes.push(node);
            return;
        };
        let tmp = |suffix: &str| format!("{out}.f64_{suffix}");
        match node.op_type.as_str() {
            "Sigmoid" => {
                let one = self.scalar(tmp("one"), 1.0);
                let neg = self.push("Neg", vec![x], tmp("neg"));
                let exp = self.push("Exp", vec![neg], tmp("exp"));
                let den = self.push("Add", vec![exp, one], tmp("den"));
                self.push("Reciprocal", vec![den], out);
            }
            "LeakyRelu" if (0.0..=1.0).contains(&float("alpha", 0.01)) => {
                let alpha = self.scalar(tmp("alpha"), float("alpha", 0.01));
                let scaled = self.push("Mul", vec![x.clone(), alpha], tmp("scaled"));
                self.push("Max", vec![x, scaled], out);
            }
            "Gemm" => {
                let a = if int("transA") != 0 {
                    self.push("Transpose", vec![x], tmp("a"))
                } else {
                    x
                };
                let b = if int("transB") != 0 {
                    self.push("Transpose", vec![input(1)], tmp("b"))
                } else {
                    input(1)
                };
                let c = Some(input(2)).filter(|c| !c.is_empty());
                let (alpha, beta) = (float("alpha", 1.0), float("beta", 1.0));
                let last = c.is_none() && alpha == 1.0;
                let mut y = self.push(
                    "MatMul",
                    vec![a, b],
                    if last { out.clone() } else { tmp("matmul") },
                );
                if alpha != 1.0 {
                    let s = self.scalar(tmp("alpha"), alpha);
                    let name = if c.is_none() {
                        out.clone()
                    } else {
                        tmp("scaled")
                    };
                    y = self.push("Mul", vec![y, s], name);
                }
                if let Some(mut c) = c {
                    if beta != 1.0 {
                        let s = self.scalar(tmp("beta"), beta);
                        c = self.push("Mul", vec![c, s], tmp("bias"));
                    }
                    self.push("Add", vec![y, c], out);
                }
            }
            _ => self.nodes.push(node),
        }
    }
}
