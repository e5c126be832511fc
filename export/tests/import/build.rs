//! Hand-made ONNX models in the forms PyTorch's exporter writes (named nodes `/fc1/Gemm`,
//! symbolic batch `batch`, initializers in `raw_data`), built from the crate's prost messages.

use prost::Message;
use tinygen_export::onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// Deterministic values in about [-1, 1] (a seeded sine, no RNG state).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 + 1.0) * 0.73 + seed as f32 * 1.37).sin())
        .collect()
}

pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(v),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: Some(v),
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

pub fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(t),
        r#type: AttributeType::Tensor as i32,
        ..Default::default()
    }
}

/// A float tensor in `raw_data`.
pub fn f32_raw(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A float tensor in `float_data` (as Keras converters write small tensors).
pub fn f32_typed(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// An int64 tensor in `int64_data`.
pub fn i64_typed(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 7,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// An int32 tensor in `int32_data`.
pub fn i32_typed(name: &str, dims: &[i64], v: &[i32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 6,
        int32_data: v.to_vec(),
        ..Default::default()
    }
}

/// A node with attributes.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

/// A float value `[batch, dims...]` with a symbolic batch.
pub fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    value_typed(name, dims, 1, None)
}

/// A value of element type `elem`, with batch `batch` (symbolic when `None`).
pub fn value_typed(name: &str, dims: &[i64], elem: i32, batch: Option<i64>) -> ValueInfoProto {
    let b = match batch {
        Some(n) => dimension::Value::DimValue(n),
        None => dimension::Value::DimParam("batch".into()),
    };
    let dim = std::iter::once(b)
        .chain(dims.iter().map(|&d| dimension::Value::DimValue(d)))
        .map(|v| Dimension {
            denotation: String::new(),
            value: Some(v),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

/// A model of `nodes` (opset `opset`) with `inputs`, one output, and initializers.
pub fn model(
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    output: ValueInfoProto,
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        producer_name: "pytorch".into(),
        producer_version: "2.5.0".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "main_graph".into(),
            initializer,
            input: inputs,
            output: vec![output],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        ..Default::default()
    }
    .encode_to_vec()
}
