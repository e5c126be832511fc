//! One node being imported: its label for messages, and typed getters for its attributes that
//! name the node and the attribute when one is missing or has another type (as tract-onnx's
//! `NodeProto` getters do).

use crate::onnx::proto::{AttributeProto, AttributeType, NodeProto, TensorProto};

use super::error::{ImportError, Limit};

/// The node being imported.
pub(crate) struct Ctx<'a> {
    pub node: &'a NodeProto,
    /// The node's name, or `#index -> first output` when it has none.
    pub label: String,
}

impl<'a> Ctx<'a> {
    pub fn new(index: usize, node: &'a NodeProto) -> Ctx<'a> {
        let label = if node.name.is_empty() {
            match node.output.first() {
                Some(out) => format!("#{index} -> {out}"),
                None => format!("#{index}"),
            }
        } else {
            node.name.clone()
        };
        Ctx { node, label }
    }

    pub fn op(&self) -> &str {
        &self.node.op_type
    }

    /// A malformed node.
    pub fn err(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Node {
            node: self.label.clone(),
            op: self.node.op_type.clone(),
            reason: reason.into(),
        }
    }

    /// A valid form the runtime cannot take.
    pub fn limit(&self, limit: Limit, detail: impl Into<String>) -> ImportError {
        ImportError::Unsupported {
            node: self.label.clone(),
            op: self.node.op_type.clone(),
            limit,
            detail: detail.into(),
        }
    }

    /// A bad attribute.
    pub fn attr_err(&self, attribute: &str, reason: impl Into<String>) -> ImportError {
        ImportError::Attribute {
            node: self.label.clone(),
            op: self.node.op_type.clone(),
            attribute: attribute.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// Checks the declared type, when the writer declared one.
    fn typed(&self, a: &AttributeProto, want: AttributeType) -> Result<(), ImportError> {
        if a.r#type == 0 || a.r#type == want as i32 {
            return Ok(());
        }
        let found = AttributeType::try_from(a.r#type)
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|_| format!("type {}", a.r#type));
        Err(self.attr_err(
            &a.name,
            format!(
                "has type {}, expected {}",
                found.to_uppercase(),
                format!("{want:?}").to_uppercase()
            ),
        ))
    }

    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.typed(a, AttributeType::Int)?;
        a.i.map(Some)
            .ok_or_else(|| self.attr_err(name, "has no integer value"))
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(default);
        };
        self.typed(a, AttributeType::Float)?;
        let v =
            a.f.ok_or_else(|| self.attr_err(name, "has no float value"))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.attr_err(name, format!("is {v}, not a finite number")))
        }
    }

    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.typed(a, AttributeType::Ints)?;
        Ok(Some(&a.ints))
    }

    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.typed(a, AttributeType::Floats)?;
        Ok(Some(&a.floats))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.typed(a, AttributeType::String)?;
        String::from_utf8(a.s.clone())
            .map(Some)
            .map_err(|_| self.attr_err(name, "is not UTF-8 text"))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ImportError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.typed(a, AttributeType::Tensor)?;
        a.t.as_ref()
            .map(Some)
            .ok_or_else(|| self.attr_err(name, "has no tensor value"))
    }

    /// A list of non-negative sizes (strides, pads, kernel shape), each small enough for the
    /// runtime's 16-bit dimensions.
    pub fn sizes(&self, name: &str) -> Result<Option<Vec<usize>>, ImportError> {
        let Some(v) = self.ints(name)? else {
            return Ok(None);
        };
        v.iter()
            .map(|&x| {
                usize::try_from(x)
                    .ok()
                    .filter(|&x| x <= usize::from(u16::MAX))
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| self.attr_err(name, format!("{v:?} holds a value outside 0..=65535")))
    }

    /// Normalises an axis of a tensor of rank `rank` (negative counts from the end).
    pub fn axis(&self, attribute: &str, axis: i64, rank: usize) -> Result<usize, ImportError> {
        let r = i64::try_from(rank).unwrap_or(i64::MAX);
        let a = if axis < 0 {
            axis.saturating_add(r)
        } else {
            axis
        };
        if (0..r).contains(&a) {
            usize::try_from(a).map_err(|_| self.attr_err(attribute, "is out of range"))
        } else {
            Err(self.attr_err(
                attribute,
                format!("is {axis}, outside a tensor of rank {rank}"),
            ))
        }
    }
}
