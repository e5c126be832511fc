//! The one tract-onnx wrapper of the workspace: load an ONNX model (from a file or bytes) into
//! an optimised or decluttered plan and run it on f32 or int8 inputs.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::CheckError;

/// How far tract transforms the model before running it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Plan {
    /// Fully optimised (tract's kernels, fused operators): what a deployment would run.
    #[default]
    Optimized,
    /// Decluttered only (the ONNX operators normalised, no kernel selection).
    Decluttered,
}

/// Options for [`Tract::load`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    /// How far tract transforms the model.
    pub plan: Plan,
    /// Fix the first input to this f32 shape (batch included) instead of the model's symbolic
    /// batch, e.g. `[1, latent]` for batch-1 timing.
    pub input_shape: Option<Vec<usize>>,
}

/// The values of one output of a tract run.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// f32 values, row-major.
    F32(Vec<f32>),
    /// f64 values, row-major.
    F64(Vec<f64>),
    /// int8 values, row-major.
    I8(Vec<i8>),
    /// Another element type (named), not copied.
    Other(String),
}

/// One output of a tract run: its shape (batch included) and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Shape, batch first.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Values,
}

impl Output {
    /// The values if they are f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.values {
            Values::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The values if they are int8.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.values {
            Values::I8(v) => Some(v),
            _ => None,
        }
    }

    fn type_name(&self) -> String {
        match &self.values {
            Values::F32(_) => "f32".into(),
            Values::F64(_) => "f64".into(),
            Values::I8(_) => "i8".into(),
            Values::Other(t) => t.clone(),
        }
    }
}

/// An ONNX model loaded by tract-onnx, ready to run; errors name the file it came from.
#[derive(Debug, Clone)]
pub struct Tract {
    name: String,
    plan: Arc<TypedRunnableModel>,
}

impl Tract {
    /// Reads `path` and loads it optimised, with the batch left symbolic.
    pub fn open(path: &Path) -> Result<Tract, CheckError> {
        let bytes = std::fs::read(path).map_err(|source| CheckError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Tract::load(&path.display().to_string(), &bytes, &Load::default())
    }

    /// Loads ONNX `bytes` optimised, with the batch left symbolic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tract, CheckError> {
        Tract::load("ONNX model", bytes, &Load::default())
    }

    /// Loads ONNX `bytes` as `how` says; `name` appears in every error.
    pub fn load(name: &str, bytes: &[u8], how: &Load) -> Result<Tract, CheckError> {
        let plan = (|| -> TractResult<_> {
            let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
            if let Some(shape) = &how.input_shape {
                model = model.with_input_fact(0, f32::fact(shape.as_slice()).into())?;
            }
            let typed = model.into_typed()?;
            let typed = match how.plan {
                Plan::Optimized => typed.into_optimized()?,
                Plan::Decluttered => typed.into_decluttered()?,
            };
            typed.into_runnable()
        })()
        .map_err(|e| CheckError::Load {
            name: name.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(Tract {
            name: name.to_owned(),
            plan,
        })
    }

    /// The shapes of the first input and the first output as tract types ONNX `bytes` (before
    /// any optimisation), written as tract writes them: `N,16` for a symbolic batch `N`.
    pub fn typed_io_shapes(name: &str, bytes: &[u8]) -> Result<(String, String), CheckError> {
        (|| -> TractResult<(String, String)> {
            let typed = tract_onnx::onnx()
                .model_for_read(&mut &bytes[..])?
                .into_typed()?;
            let input = format!("{:?}", typed.input_fact(0)?.shape);
            let output = format!("{:?}", typed.output_fact(0)?.shape);
            Ok((input, output))
        })()
        .map_err(|e| CheckError::Load {
            name: name.to_owned(),
            message: format!("{e:#}"),
        })
    }

    /// The name errors use (the file's path for [`Tract::open`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// tract's runnable plan, for callers that time tract's own `run` without the copies the
    /// `run_*` methods make.
    pub fn runnable(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }

    /// Runs the model on f32 input `x` of shape `shape` (batch first); returns the first output,
    /// which must be f32, flattened.
    pub fn run_f32(&self, shape: &[usize], x: &[f32]) -> Result<Vec<f32>, CheckError> {
        let out = self.run_all_f32(shape, x)?;
        self.first(out, "f32", |v| match v {
            Values::F32(v) => Some(v),
            _ => None,
        })
    }

    /// Runs a float64 model ([`super::float64_model`]) on input `x` of shape `shape` (batch
    /// first); returns the first output, which must be f64, flattened.
    pub fn run_f64(&self, shape: &[usize], x: &[f64]) -> Result<Vec<f64>, CheckError> {
        let out = self.run_all(&[(shape, x)])?;
        self.first(out, "f64", |v| match v {
            Values::F64(v) => Some(v),
            _ => None,
        })
    }

    /// Runs the model on int8 input `x` of shape `shape` (batch first); returns the first
    /// output, which must be int8, flattened.
    pub fn run_i8(&self, shape: &[usize], x: &[i8]) -> Result<Vec<i8>, CheckError> {
        let out = self.run_all_i8(shape, x)?;
        self.first(out, "i8", |v| match v {
            Values::I8(v) => Some(v),
            _ => None,
        })
    }

    /// Runs the model on f32 input `x` of shape `shape`; returns every output.
    pub fn run_all_f32(&self, shape: &[usize], x: &[f32]) -> Result<Vec<Output>, CheckError> {
        self.run_all(&[(shape, x)])
    }

    /// Runs a model with several f32 inputs, each `(shape, values)` in the model's input order
    /// (a conditional generator's latent and class code); returns the first output, which must
    /// be f32, flattened.
    pub fn run_f32_inputs(&self, inputs: &[(&[usize], &[f32])]) -> Result<Vec<f32>, CheckError> {
        let out = self.run_all(inputs)?;
        self.first(out, "f32", |v| match v {
            Values::F32(v) => Some(v),
            _ => None,
        })
    }

    /// Runs the model on int8 input `x` of shape `shape`; returns every output.
    pub fn run_all_i8(&self, shape: &[usize], x: &[i8]) -> Result<Vec<Output>, CheckError> {
        self.run_all(&[(shape, x)])
    }

    fn run_all<T: Datum + Copy>(
        &self,
        inputs: &[(&[usize], &[T])],
    ) -> Result<Vec<Output>, CheckError> {
        (|| -> TractResult<Vec<Output>> {
            let inputs = inputs
                .iter()
                .map(|(shape, x)| Ok(Tensor::from_shape(shape, x)?.into_tvalue()))
                .collect::<TractResult<TVec<_>>>()?;
            let out = self.plan.run(inputs)?;
            out.iter()
                .map(|t| {
                    let values = match t.datum_type() {
                        DatumType::F32 => {
                            Values::F32(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
                        }
                        DatumType::F64 => {
                            Values::F64(t.try_as_plain_ram()?.as_slice::<f64>()?.to_vec())
                        }
                        DatumType::I8 => {
                            Values::I8(t.try_as_plain_ram()?.as_slice::<i8>()?.to_vec())
                        }
                        other => Values::Other(format!("{other:?}")),
                    };
                    Ok(Output {
                        shape: t.shape().to_vec(),
                        values,
                    })
                })
                .collect()
        })()
        .map_err(|e| CheckError::Run {
            name: self.name.clone(),
            message: format!("{e:#}"),
        })
    }

    fn first<T>(
        &self,
        out: Vec<Output>,
        expected: &'static str,
        take: impl FnOnce(Values) -> Option<Vec<T>>,
    ) -> Result<Vec<T>, CheckError> {
        let first = out.into_iter().next().ok_or_else(|| CheckError::NoOutput {
            name: self.name.clone(),
        })?;
        let found = first.type_name();
        take(first.values).ok_or_else(|| CheckError::OutputType {
            name: self.name.clone(),
            index: 0,
            found,
            expected,
        })
    }
}
