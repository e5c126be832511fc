//! ONNX import: a decoder or generator written by another framework (PyTorch's exporter,
//! tf2onnx for Keras) as the exporter's [`Dag`], ready to be written as a model file.
//!
//! ```text
//! bytes --prost--> ModelProto --fold + map, node by node--> Dag --fuse--> Imported
//! ```
//!
//! # Why a reader of its own rather than tract-onnx
//! tract-onnx parses, types and declutters ONNX well, and this crate already runs models in it
//! for checks. The importer nevertheless reads the `ModelProto` itself, with the crate's prost
//! messages, because:
//! - errors must name the ONNX node, its op type and what to do about it; after tract's
//!   declutter the nodes are tract's own (fused, renamed, re-expressed as `EinSum` or
//!   `AxisOp`), so an error would name a node the user never wrote;
//! - the mapping would depend on tract's internal operator types, which change between tract
//!   releases; the ONNX operators and their attributes do not (operator sets are versioned);
//! - tract is an optional feature of this crate (`tract`), kept out of the trainer and
//!   firmware builds; the importer works without it.
//!
//! What tract would bring, constant folding of shape arithmetic, is small for the forms
//! exporters write: `fold` evaluates `Shape`, `Gather`, `Slice`, `Concat`, `Cast`, integer
//! arithmetic, `Transpose` of a weight and friends on constants, taking every run-time tensor's shape as known (the batch
//! being 1). tract-onnx stays the reference the tests compare the imported models against.
//!
//! # What is read
//! - One or two graph inputs of float32 (the latent, then a condition), `[N, ...]` with `N`
//!   symbolic or 1: the batch dimension is dropped, the runtime runs one sample.
//! - Initializers as `raw_data` or typed fields; external data is refused.
//! - Gemm, MatMul (+ Add of a bias), Conv, ConvTranspose, BatchNormalization (folded into the
//!   layer before it, or a per-channel Mul and Add), Relu, LeakyRelu, Tanh, Sigmoid, Exp,
//!   Add/Sub/Mul/Div (two run-time tensors of one shape, or a run-time tensor and a per-channel
//!   or scalar constant), Concat/Slice/Gather along the channels, Reshape, Flatten, Squeeze,
//!   Unsqueeze, Identity, Dropout; shape arithmetic and weight transposes on constants.
//! - Anything else is an [`ImportError`] naming the node; nothing is skipped.

mod attr;
mod conv;
mod dense;
mod error;
mod fold;
mod fuse;
mod map;
mod tensor;

use std::collections::HashMap;

use prost::Message;

pub use error::{ImportError, Limit};

use crate::dag::{Dag, Op};
use crate::graph::{GraphError, Layer, OutputRange, Part, Shape};
use crate::onnx::proto::{tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto};
use crate::tgm::{self, Program, TgmError};

use attr::Ctx;
use map::{shape_of, Dyn, Net, Value};
use tensor::{read_tensor, Const, TensorFault};

/// Standard operator set versions the importer reads (7 to 25, the `onnx` 1.23 release; the
/// operators it maps changed between them only in attribute-versus-input forms, which it reads
/// both ways, and in element types).
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=25;

/// How to import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// What the model is (a generator unless said otherwise).
    pub part: Part,
    /// The output range, for a model that does not end in Tanh (`[-1, 1]`) or Sigmoid
    /// (`[0, 1]`). A final Tanh or Sigmoid decides the range whatever this says.
    pub output_range: Option<OutputRange>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            part: Part::Generator,
            output_range: None,
        }
    }
}

/// An imported model: the graph and the facts a model file and its caller need.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The graph (inputs: the latent, then the condition if any).
    pub dag: Dag,
    /// Values of the latent (the first graph input) per sample.
    pub latent: usize,
    /// Values of the condition (a second graph input) per sample, if the model has one.
    pub condition: Option<usize>,
    /// The graph input names, in order.
    pub input_names: Vec<String>,
    /// The graph inputs' ONNX dimensions without the batch, in order.
    pub input_dims: Vec<Vec<usize>>,
    /// The graph output name.
    pub output_name: String,
    /// The output's runtime shape.
    pub output_shape: Shape,
    /// The output's ONNX dimensions without the batch.
    pub output_dims: Vec<usize>,
    /// The output's range.
    pub output_range: OutputRange,
}

impl Imported {
    /// The f32 model file program, with the imported output range.
    pub fn program_f32(&self) -> Result<Program, GraphError> {
        Ok(Program {
            range: self.output_range,
            ..self.dag.program_f32()?
        })
    }

    /// The f32 model file.
    pub fn write_f32(&self) -> Result<Vec<u8>, TgmError> {
        tgm::write_program(&self.program_f32()?)
    }
}

fn input_dims(v: &ValueInfoProto) -> Result<Vec<usize>, ImportError> {
    let err = |reason: String| ImportError::Input {
        name: v.name.clone(),
        reason,
    };
    let limit = |limit: Limit, detail: String| ImportError::Unsupported {
        node: v.name.clone(),
        op: "graph input".into(),
        limit,
        detail,
    };
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err("is not a tensor".into()));
    };
    if t.elem_type != 1 {
        return Err(limit(
            Limit::ElementType,
            format!(
                "holds {} values; the runtime takes float32",
                tensor::data_type_name(t.elem_type)
            ),
        ));
    }
    let dims = &t
        .shape
        .as_ref()
        .ok_or_else(|| err("has no shape; export with fixed sizes".into()))?
        .dim;
    let Some((batch, rest)) = dims.split_first() else {
        return Err(err("is a scalar; the runtime takes [N, ...]".into()));
    };
    match batch.value {
        None | Some(dimension::Value::DimParam(_)) | Some(dimension::Value::DimValue(1)) => {}
        Some(dimension::Value::DimValue(n)) => {
            return Err(limit(
                Limit::Batch,
                format!("has batch {n}; export with batch 1 or a symbolic batch"),
            ))
        }
    }
    let dims = rest
        .iter()
        .enumerate()
        .map(|(k, d)| match d.value {
            Some(dimension::Value::DimValue(n)) if n > 0 => usize::try_from(n).map_err(|_| err(format!("dimension {} is too large", k + 1))),
            _ => Err(err(format!("dimension {} is not a fixed positive size; export with fixed sizes besides the batch", k + 1))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    shape_of(&dims).map_err(|(l, why)| match l {
        Some(l) => limit(l, why),
        None => err(why),
    })?;
    Ok(dims)
}

/// Reads ONNX model `bytes` as a [`Dag`]; see the module documentation.
pub fn import_onnx(bytes: &[u8], opts: &ImportOptions) -> Result<Imported, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode {
        message: e.to_string(),
    })?;
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    for o in &model.opset_import {
        if (o.domain.is_empty() || o.domain == "ai.onnx") && !OPSETS.contains(&o.version) {
            return Err(ImportError::Opset {
                domain: o.domain.clone(),
                version: o.version,
            });
        }
    }

    let mut values: HashMap<&str, Value> = HashMap::new();
    for t in &graph.initializer {
        let c = read_tensor(t).map_err(|e| match e {
            TensorFault::External => ImportError::ExternalData {
                name: t.name.clone(),
            },
            TensorFault::Bad(reason) => ImportError::Initializer {
                name: t.name.clone(),
                reason,
            },
        })?;
        values.insert(&t.name, Value::Const(c));
    }
    let mut net = Net::default();
    let mut input_names = Vec::new();
    let mut input_dims_all = Vec::new();
    let runtime_inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|v| !values.contains_key(v.name.as_str()))
        .collect();
    for v in runtime_inputs {
        let dims = input_dims(v)?;
        if input_names.len() == tinygen_runtime::format::MAX_INPUTS {
            return Err(ImportError::Unsupported {
                node: v.name.clone(),
                op: "graph input".into(),
                limit: Limit::Inputs,
                detail: "the runtime takes a latent and at most one condition".into(),
            });
        }
        let shape = shape_of(&dims).unwrap_or(Shape::flat(1));
        net.shapes.push(shape);
        input_dims_all.push(dims.clone());
        values.insert(
            &v.name,
            Value::Dyn(Dyn {
                t: input_names.len(),
                dims,
            }),
        );
        input_names.push(v.name.clone());
    }
    if input_names.is_empty() {
        return Err(ImportError::Input {
            name: String::new(),
            reason: "the graph has no run-time input".into(),
        });
    }
    let n_in = input_names.len();

    // Outputs of nodes that the importer does not compute (a Dropout mask, BatchNormalization's
    // running statistics): an error if anything reads them.
    let mut dropped: HashMap<&str, String> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        let ctx = Ctx::new(k, node);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(ImportError::UnsupportedOp {
                node: ctx.label,
                op: node.op_type.clone(),
                domain: format!("{}.", node.domain),
            });
        }
        let inputs = node
            .input
            .iter()
            .map(|name| {
                if name.is_empty() {
                    return Ok(None);
                }
                values.get(name.as_str()).map(Some).ok_or_else(|| match dropped.get(name.as_str()) {
                    Some(by) => ctx.err(format!("reads `{name}`, an extra output of node `{by}` that the importer does not compute")),
                    None => ctx.err(format!("reads `{name}`, which no graph input, initializer or earlier node defines")),
                })
            })
            .collect::<Result<Vec<Option<&Value>>, ImportError>>()?;
        let all_const = inputs
            .iter()
            .flatten()
            .all(|v| matches!(v, Value::Const(_)));
        let out = if node.op_type == "Shape" {
            let dims = match inputs.first().copied().flatten() {
                Some(Value::Dyn(d)) => d.full(),
                Some(Value::Const(c)) => c.dims.clone(),
                None => return Err(ctx.err("input 0 is missing")),
            };
            Value::Const(fold::shape(&ctx, &dims)?)
        } else if all_const && fold::FOLDED.contains(&node.op_type.as_str()) {
            let consts: Vec<Option<&Const>> = inputs
                .iter()
                .map(|v| match v {
                    Some(Value::Const(c)) => Some(c),
                    _ => None,
                })
                .collect();
            Value::Const(fold::fold(&ctx, &consts)?)
        } else if all_const && !map::is_mapped(&node.op_type) {
            return Err(ImportError::UnsupportedOp {
                node: ctx.label,
                op: node.op_type.clone(),
                domain: String::new(),
            });
        } else {
            Value::Dyn(map::map(&mut net, &ctx, &inputs)?)
        };
        let mut outs = node.output.iter();
        let first = outs.next().ok_or_else(|| ctx.err("has no output"))?;
        for extra in outs.filter(|o| !o.is_empty()) {
            dropped.insert(extra.as_str(), ctx.label.clone());
        }
        values.insert(first.as_str(), out);
    }

    let [output] = &graph.output[..] else {
        return Err(ImportError::Output {
            name: graph
                .output
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: format!(
                "the graph has {} outputs; the runtime computes one, so remove the others",
                graph.output.len()
            ),
        });
    };
    let out_err = |reason: &str| ImportError::Output {
        name: output.name.clone(),
        reason: reason.into(),
    };
    let out = match values.get(output.name.as_str()) {
        Some(Value::Dyn(d)) if d.t >= n_in => d.clone(),
        Some(Value::Dyn(_)) => return Err(out_err("is a graph input: the graph computes nothing")),
        Some(Value::Const(_)) => {
            return Err(out_err("is a constant: it does not depend on the inputs"))
        }
        None => return Err(out_err("no node computes it")),
    };
    let nodes = fuse::simplify(n_in, net.nodes, out.t);
    let dag = Dag {
        part: opts.part,
        inputs: net.shapes[..n_in].to_vec(),
        nodes,
    };
    let shapes = dag.shapes()?;
    let output_shape = *shapes.last().ok_or(GraphError::NoLayers)?;
    let last = dag
        .nodes
        .iter()
        .rev()
        .find(|n| !matches!(n.op, Op::Layer(Layer::Reshape { .. })));
    let output_range = match last.map(|n| &n.op) {
        Some(Op::Layer(Layer::Tanh)) => OutputRange::MinusOneOne,
        Some(Op::Layer(Layer::Sigmoid)) => OutputRange::ZeroOne,
        _ => opts.output_range.ok_or_else(|| ImportError::OutputRange {
            output: output.name.clone(),
        })?,
    };
    Ok(Imported {
        latent: dag.inputs[0].len(),
        condition: dag.inputs.get(1).map(Shape::len),
        dag,
        input_names,
        input_dims: input_dims_all,
        output_name: output.name.clone(),
        output_shape,
        output_dims: out.dims,
        output_range,
    })
}
