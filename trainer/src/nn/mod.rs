//! Layers with a backward pass, and [`Sequential`], a list of them.
//!
//! Every layer pairs a forward that returns its output and an explicit cache with a
//! backward that consumes the cache and the output gradient, returns the input gradient,
//! and adds (`+=`) into the layer's parameter gradients. Nothing about a forward call is
//! kept inside the layer, so a discriminator can run twice (real, then fake) before either
//! backward. Layers keep only scratch buffers (im2col columns) between calls.
//!
//! Tensors are `ndarray` arrays of f32 in standard (row-major) layout: `(batch, features)`
//! for dense data and `(batch, C, H, W)` for images. [`Sequential`] passes them as
//! [`ArrayD`] and each layer checks the rank it needs.
//!
//! ```
//! use ndarray::Array2;
//! use rand::{rngs::StdRng, SeedableRng};
//! use tinygen_trainer::loss::{bce_with_logits, Reduction};
//! use tinygen_trainer::nn::{Activation, Linear, Mode, Sequential};
//! use tinygen_trainer::optim::{Adam, Optimizer};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let mut dec = Sequential::new("dec")
//!     .with("fc1", Linear::new(20, 400, true, &mut rng))
//!     .with("act1", Activation::Relu)
//!     .with("fc2", Linear::new(400, 784, true, &mut rng));
//! let mut opt = Adam::new(1e-3);
//! let z = Array2::<f32>::zeros((8, 20));
//! let target = Array2::<f32>::from_elem((8, 784), 0.5);
//!
//! dec.zero_grad();
//! let (logits, caches) = dec.forward(z.into_dyn(), Mode::Train, &mut rng);
//! let logits = logits.into_dimensionality::<ndarray::Ix2>().unwrap();
//! let (loss, d_logits) = bce_with_logits(logits.view(), target.view(), Reduction::BatchMean);
//! let d_z = dec.backward(caches, d_logits.into_dyn()); // (8, 20), for the encoder
//! opt.step(&mut dec.parameters()).unwrap();
//! assert!(loss > 0.0 && d_z.shape() == [8, 20]);
//! ```

mod batchnorm;
mod conv;
mod elementwise;
mod linear;

pub use batchnorm::{BatchNorm, BatchNormCache};
pub use conv::{Conv2d, ConvCache, ConvSpec, ConvTranspose2d};
pub use elementwise::{
    sigmoid, Activation, ActivationCache, Dropout, DropoutCache, Reshape, ReshapeCache,
};
pub use linear::{Linear, LinearCache};

use ndarray::{ArrayD, Dimension, Ix2, Ix4};
use rand::Rng;
use tinygen_export::{Graph, GraphError, Layer, Part, Shape};

/// Training or inference behaviour (BatchNorm statistics, dropout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics (and running-statistic updates), dropout active.
    Train,
    /// Running statistics, dropout off.
    Eval,
}

/// One trainable tensor and its gradient, flattened row-major.
#[derive(Debug)]
pub struct Param<'a> {
    /// Full name, e.g. `enc.fc1.weight` (a layer alone gives `weight`).
    pub name: String,
    /// Shape, e.g. `[400, 784]`.
    pub shape: Vec<usize>,
    /// The values.
    pub value: &'a mut [f32],
    /// The accumulated gradient, same length.
    pub grad: &'a mut [f32],
}

impl<'a> Param<'a> {
    pub(crate) fn new<D: Dimension>(
        name: &str,
        value: &'a mut ndarray::Array<f32, D>,
        grad: &'a mut ndarray::Array<f32, D>,
    ) -> Self {
        Param {
            name: name.to_string(),
            shape: value.shape().to_vec(),
            value: value
                .as_slice_mut()
                .expect("parameters are kept in standard layout"),
            grad: grad
                .as_slice_mut()
                .expect("gradients are kept in standard layout"),
        }
    }
}

/// A named tensor of a model's state (parameters and BatchNorm running statistics), read-only.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    /// Full name, e.g. `gen.bn1.running_mean`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: &'a [f32],
}

/// A named tensor of a model's state, writable (for loading a checkpoint).
#[derive(Debug)]
pub struct TensorMut<'a> {
    /// Full name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: &'a mut [f32],
}

/// Errors from checking or lowering a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NnError {
    /// A layer does not accept the shape the previous layer produces.
    #[error("layer {layer} ({op}) gets {got} but needs {expected}")]
    ShapeMismatch {
        /// Layer name.
        layer: String,
        /// Layer kind.
        op: &'static str,
        /// What it gets, e.g. `(batch, 784)`.
        got: String,
        /// What it needs.
        expected: String,
    },
    /// A BatchNorm that does not directly follow a Linear, Conv2d or ConvTranspose2d
    /// cannot be folded into the exported graph.
    #[error("layer {layer}: BatchNorm must directly follow Linear, Conv2d or ConvTranspose2d to be exported")]
    UnfoldableBatchNorm {
        /// Layer name.
        layer: String,
    },
    /// The lowered graph is not well formed.
    #[error("exported graph: {0}")]
    Graph(#[from] GraphError),
}

/// One layer of a [`Sequential`].
#[derive(Debug, Clone)]
pub enum Module {
    /// Fully connected, `(batch, in)` -> `(batch, out)`.
    Linear(Linear),
    /// Convolution on `(batch, C, H, W)`.
    Conv2d(Conv2d),
    /// Transposed convolution on `(batch, C, H, W)`.
    ConvTranspose2d(ConvTranspose2d),
    /// Batch normalisation of `(batch, C)`.
    BatchNorm1d(BatchNorm),
    /// Batch normalisation of `(batch, C, H, W)`.
    BatchNorm2d(BatchNorm),
    /// Elementwise activation.
    Activation(Activation),
    /// Dropout.
    Dropout(Dropout),
    /// `(batch, ...)` to `(batch, to...)`.
    Reshape(Reshape),
    /// `(batch, ...)` to `(batch, product)`.
    Flatten,
}

/// The cache of one [`Module`]'s forward pass.
#[derive(Debug, Clone)]
pub enum Cache {
    /// From [`Linear::forward`].
    Linear(LinearCache),
    /// From [`Conv2d::forward`] or [`ConvTranspose2d::forward`].
    Conv(ConvCache),
    /// From [`BatchNorm::forward`].
    BatchNorm(BatchNormCache),
    /// From [`Activation::forward`].
    Activation(ActivationCache),
    /// From [`Dropout::forward`].
    Dropout(DropoutCache),
    /// From [`Reshape::forward`] or a flatten.
    Reshape(ReshapeCache),
}

fn into2(x: ArrayD<f32>, op: &str) -> ndarray::Array2<f32> {
    let shape = x.shape().to_vec();
    x.into_dimensionality::<Ix2>()
        .unwrap_or_else(|_| panic!("{op} needs (batch, features), got {shape:?}"))
}

fn into4(x: ArrayD<f32>, op: &str) -> ndarray::Array4<f32> {
    let shape = x.shape().to_vec();
    x.into_dimensionality::<Ix4>()
        .unwrap_or_else(|_| panic!("{op} needs (batch, C, H, W), got {shape:?}"))
}

impl Module {
    /// Layer kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Module::Linear(_) => "Linear",
            Module::Conv2d(_) => "Conv2d",
            Module::ConvTranspose2d(_) => "ConvTranspose2d",
            Module::BatchNorm1d(_) => "BatchNorm1d",
            Module::BatchNorm2d(_) => "BatchNorm2d",
            Module::Activation(Activation::Relu) => "ReLU",
            Module::Activation(Activation::LeakyRelu(_)) => "LeakyReLU",
            Module::Activation(Activation::Tanh) => "Tanh",
            Module::Activation(Activation::Sigmoid) => "Sigmoid",
            Module::Dropout(_) => "Dropout",
            Module::Reshape(_) => "Reshape",
            Module::Flatten => "Flatten",
        }
    }

    /// Forward pass; `rng` is only drawn from by dropout in train mode.
    ///
    /// # Panics
    /// If `x` has the wrong rank or size for the layer (check a model once with
    /// [`Sequential::output_shape`]).
    pub fn forward<R: Rng + ?Sized>(
        &mut self,
        x: ArrayD<f32>,
        mode: Mode,
        rng: &mut R,
    ) -> (ArrayD<f32>, Cache) {
        match self {
            Module::Linear(l) => {
                let (y, c) = l.forward(into2(x, "Linear"));
                (y.into_dyn(), Cache::Linear(c))
            }
            Module::Conv2d(l) => {
                let (y, c) = l.forward(into4(x, "Conv2d"));
                (y.into_dyn(), Cache::Conv(c))
            }
            Module::ConvTranspose2d(l) => {
                let (y, c) = l.forward(into4(x, "ConvTranspose2d"));
                (y.into_dyn(), Cache::Conv(c))
            }
            Module::BatchNorm1d(l) => {
                let (y, c) = l.forward(into2(x, "BatchNorm1d").into_dyn(), mode);
                (y, Cache::BatchNorm(c))
            }
            Module::BatchNorm2d(l) => {
                let (y, c) = l.forward(into4(x, "BatchNorm2d").into_dyn(), mode);
                (y, Cache::BatchNorm(c))
            }
            Module::Activation(a) => {
                let (y, c) = a.forward(x);
                (y, Cache::Activation(c))
            }
            Module::Dropout(d) => {
                let (y, c) = d.forward(x, mode, rng);
                (y, Cache::Dropout(c))
            }
            Module::Reshape(r) => {
                let (y, c) = r.forward(x);
                (y, Cache::Reshape(c))
            }
            Module::Flatten => {
                let n = x.shape()[1..].iter().product();
                let (y, c) = Reshape::flat(n).forward(x);
                (y, Cache::Reshape(c))
            }
        }
    }

    /// Backward pass: adds parameter gradients, returns the input gradient (or `None`
    /// when `want_dx` is false and the layer could skip computing it).
    ///
    /// # Panics
    /// If `cache` does not come from this layer's forward pass.
    pub fn backward(
        &mut self,
        cache: Cache,
        d_y: ArrayD<f32>,
        want_dx: bool,
    ) -> Option<ArrayD<f32>> {
        let mismatch = |kind: &str| -> ! { panic!("{kind}: cache from another layer") };
        match (self, cache) {
            (Module::Linear(l), Cache::Linear(c)) => {
                let d_y = into2(d_y, "Linear");
                if want_dx {
                    Some(l.backward(c, &d_y).into_dyn())
                } else {
                    l.backward_params(c, &d_y);
                    None
                }
            }
            (Module::Conv2d(l), Cache::Conv(c)) => {
                let d_y = into4(d_y, "Conv2d");
                if want_dx {
                    Some(l.backward(c, &d_y).into_dyn())
                } else {
                    l.backward_params(c, &d_y);
                    None
                }
            }
            (Module::ConvTranspose2d(l), Cache::Conv(c)) => {
                let d_y = into4(d_y, "ConvTranspose2d");
                if want_dx {
                    Some(l.backward(c, &d_y).into_dyn())
                } else {
                    l.backward_params(c, &d_y);
                    None
                }
            }
            (Module::BatchNorm1d(l) | Module::BatchNorm2d(l), Cache::BatchNorm(c)) => {
                Some(l.backward(c, d_y))
            }
            (Module::Activation(a), Cache::Activation(c)) => Some(a.backward(c, d_y)),
            (Module::Dropout(d), Cache::Dropout(c)) => Some(d.backward(c, d_y)),
            (Module::Reshape(r), Cache::Reshape(c)) => Some(r.backward(c, d_y)),
            (Module::Flatten, Cache::Reshape(c)) => Some(Reshape::flat(0).backward(c, d_y)),
            (m, _) => mismatch(m.kind()),
        }
    }

    /// Trainable parameters with local names (`weight`, `bias`).
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        match self {
            Module::Linear(l) => l.parameters(),
            Module::Conv2d(l) => l.parameters(),
            Module::ConvTranspose2d(l) => l.parameters(),
            Module::BatchNorm1d(l) | Module::BatchNorm2d(l) => l.parameters(),
            _ => Vec::new(),
        }
    }

    /// Non-trainable state with local names (`running_mean`, `running_var`).
    fn buffers(&self) -> Vec<(&'static str, &ndarray::Array1<f32>)> {
        match self {
            Module::BatchNorm1d(l) | Module::BatchNorm2d(l) => {
                vec![
                    ("running_mean", &l.running_mean),
                    ("running_var", &l.running_var),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Per-sample output shape for a per-sample input shape, or why it does not fit.
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>, NnError> {
        let err = |expected: String| NnError::ShapeMismatch {
            layer: name.to_string(),
            op: self.kind(),
            got: format!("{input:?}"),
            expected,
        };
        match self {
            Module::Linear(l) => match input {
                [n] if *n == l.inputs() => Ok(vec![l.outputs()]),
                _ => Err(err(format!("[{}]", l.inputs()))),
            },
            Module::Conv2d(l) => match input {
                [c, h, w] if *c == l.spec.in_ch => l
                    .spec
                    .conv_out(*h, *w)
                    .map(|(oh, ow)| vec![l.spec.out_ch, oh, ow])
                    .ok_or_else(|| err("a spatial size the kernel fits".into())),
                _ => Err(err(format!("[{}, h, w]", l.spec.in_ch))),
            },
            Module::ConvTranspose2d(l) => match input {
                [c, h, w] if *c == l.spec.in_ch => l
                    .spec
                    .conv_transpose_out(*h, *w)
                    .map(|(oh, ow)| vec![l.spec.out_ch, oh, ow])
                    .ok_or_else(|| err("a non-empty output".into())),
                _ => Err(err(format!("[{}, h, w]", l.spec.in_ch))),
            },
            Module::BatchNorm1d(l) => match input {
                [c] if *c == l.channels() => Ok(input.to_vec()),
                _ => Err(err(format!("[{}]", l.channels()))),
            },
            Module::BatchNorm2d(l) => match input {
                [c, _, _] if *c == l.channels() => Ok(input.to_vec()),
                _ => Err(err(format!("[{}, h, w]", l.channels()))),
            },
            Module::Activation(_) | Module::Dropout(_) => Ok(input.to_vec()),
            Module::Reshape(r) => {
                if r.len() == input.iter().product::<usize>() && matches!(r.to.len(), 1 | 3) {
                    Ok(r.to.clone())
                } else {
                    Err(err(format!("{} elements in 1 or 3 axes", r.len())))
                }
            }
            Module::Flatten => Ok(vec![input.iter().product()]),
        }
    }
}

impl From<Linear> for Module {
    fn from(l: Linear) -> Self {
        Module::Linear(l)
    }
}

impl From<Conv2d> for Module {
    fn from(l: Conv2d) -> Self {
        Module::Conv2d(l)
    }
}

impl From<ConvTranspose2d> for Module {
    fn from(l: ConvTranspose2d) -> Self {
        Module::ConvTranspose2d(l)
    }
}

impl From<Activation> for Module {
    fn from(a: Activation) -> Self {
        Module::Activation(a)
    }
}

impl From<Dropout> for Module {
    fn from(d: Dropout) -> Self {
        Module::Dropout(d)
    }
}

impl From<Reshape> for Module {
    fn from(r: Reshape) -> Self {
        Module::Reshape(r)
    }
}

/// The caches of one [`Sequential::forward`], one per layer, consumed by its backward.
pub type Caches = Vec<Cache>;

/// An ordered list of named layers with a name prefix for its parameters.
///
/// Parameter names are `{name}.{layer}.{param}` (`enc.fc1.weight`), or `{layer}.{param}`
/// when `name` is empty, matching a PyTorch module whose attributes carry the same names.
#[derive(Debug, Clone, Default)]
pub struct Sequential {
    /// Prefix of every parameter name (e.g. `enc`, `dec`, `gen`, `disc`).
    pub name: String,
    /// `(layer name, layer)` in order.
    pub layers: Vec<(String, Module)>,
}

impl Sequential {
    /// An empty list with parameter-name prefix `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            layers: Vec::new(),
        }
    }

    /// Appends a layer named `layer` (builder style).
    pub fn with(mut self, layer: impl Into<String>, module: impl Into<Module>) -> Self {
        self.push(layer, module);
        self
    }

    /// Appends a layer named `layer`.
    pub fn push(&mut self, layer: impl Into<String>, module: impl Into<Module>) {
        self.layers.push((layer.into(), module.into()));
    }

    fn full_name(&self, layer: &str, local: &str) -> String {
        if self.name.is_empty() {
            format!("{layer}.{local}")
        } else {
            format!("{}.{layer}.{local}", self.name)
        }
    }

    /// Runs every layer; returns the output and the caches for [`Sequential::backward`].
    pub fn forward<R: Rng + ?Sized>(
        &mut self,
        x: ArrayD<f32>,
        mode: Mode,
        rng: &mut R,
    ) -> (ArrayD<f32>, Caches) {
        let mut caches = Vec::with_capacity(self.layers.len());
        let mut h = x;
        for (_, m) in &mut self.layers {
            let (y, c) = m.forward(h, mode, rng);
            caches.push(c);
            h = y;
        }
        (h, caches)
    }

    /// [`Sequential::forward`] that also returns the output of layer `tap` (a hidden feature
    /// map), for losses measured inside the network (feature matching, VAE/GAN).
    pub fn forward_tap<R: Rng + ?Sized>(
        &mut self,
        x: ArrayD<f32>,
        tap: usize,
        mode: Mode,
        rng: &mut R,
    ) -> (ArrayD<f32>, ArrayD<f32>, Caches) {
        assert!(tap < self.layers.len(), "tap {tap} past the last layer");
        let mut caches = Vec::with_capacity(self.layers.len());
        let mut tapped = None;
        let mut h = x;
        for (i, (_, m)) in self.layers.iter_mut().enumerate() {
            let (y, c) = m.forward(h, mode, rng);
            caches.push(c);
            if i == tap {
                tapped = Some(y.clone());
            }
            h = y;
        }
        (h, tapped.expect("tap is a layer index"), caches)
    }

    /// Eval-mode forward up to and including layer `tap`, without caches.
    pub fn infer_tap(&mut self, x: ArrayD<f32>, tap: usize) -> ArrayD<f32> {
        assert!(tap < self.layers.len(), "tap {tap} past the last layer");
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed([0; 32]);
        let mut h = x;
        for (_, m) in &mut self.layers[..=tap] {
            h = m.forward(h, Mode::Eval, &mut rng).0;
        }
        h
    }

    /// Eval-mode forward without keeping caches (sampling, evaluation).
    pub fn infer(&mut self, x: ArrayD<f32>) -> ArrayD<f32> {
        // Eval mode draws no random numbers; the generator only satisfies the signature.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed([0; 32]);
        let mut h = x;
        for (_, m) in &mut self.layers {
            h = m.forward(h, Mode::Eval, &mut rng).0;
        }
        h
    }

    /// Consumes the caches of one forward pass: adds every parameter gradient and returns
    /// the gradient with respect to the input.
    pub fn backward(&mut self, caches: Caches, d_y: ArrayD<f32>) -> ArrayD<f32> {
        self.backward_inner(caches, d_y, true)
            .expect("input gradient requested")
    }

    /// Backward of [`Sequential::forward_tap`]: `d_y` is the gradient of the output and `d_tap`
    /// that of the tapped feature map; both are carried to the input (and the parameters).
    pub fn backward_tap(
        &mut self,
        caches: Caches,
        d_y: ArrayD<f32>,
        tap: usize,
        d_tap: ArrayD<f32>,
    ) -> ArrayD<f32> {
        assert_eq!(caches.len(), self.layers.len(), "caches from another model");
        let mut d_tap = Some(d_tap);
        let mut d = d_y;
        for (i, ((_, m), c)) in self.layers.iter_mut().zip(caches).enumerate().rev() {
            if i == tap {
                d += &d_tap.take().expect("one tap");
            }
            d = m.backward(c, d, true).expect("input gradient requested");
        }
        d
    }

    /// As [`Sequential::backward`] but skips the input gradient of the first layer (the
    /// data needs none); saves a third of a first Linear layer's backward work.
    pub fn backward_params(&mut self, caches: Caches, d_y: ArrayD<f32>) {
        self.backward_inner(caches, d_y, false);
    }

    fn backward_inner(
        &mut self,
        caches: Caches,
        d_y: ArrayD<f32>,
        want_dx: bool,
    ) -> Option<ArrayD<f32>> {
        assert_eq!(caches.len(), self.layers.len(), "caches from another model");
        let mut d = Some(d_y);
        for (i, ((_, m), c)) in self.layers.iter_mut().zip(caches).enumerate().rev() {
            let d_y = d
                .take()
                .expect("every later layer returned its input gradient");
            d = m.backward(c, d_y, want_dx || i > 0);
        }
        d
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in self.parameters() {
            p.grad.fill(0.0);
        }
    }

    /// Trainable parameters with their gradients and full names, in layer order.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let prefix = self.name.clone();
        let mut out = Vec::new();
        for (layer, m) in &mut self.layers {
            for mut p in m.parameters() {
                p.name = if prefix.is_empty() {
                    format!("{layer}.{}", p.name)
                } else {
                    format!("{prefix}.{layer}.{}", p.name)
                };
                out.push(p);
            }
        }
        out
    }

    /// Number of trainable values.
    pub fn parameter_count(&mut self) -> usize {
        self.parameters().iter().map(|p| p.value.len()).sum()
    }

    /// Everything a checkpoint holds: parameters, then BatchNorm running statistics, per
    /// layer in order, with PyTorch's names (`weight`, `bias`, `running_mean`, `running_var`).
    pub fn state(&self) -> Vec<TensorRef<'_>> {
        let mut out = Vec::new();
        for (layer, m) in &self.layers {
            let tensors: Vec<(&str, &[usize], &[f32])> = match m {
                Module::Linear(l) => {
                    let mut v = vec![(
                        "weight",
                        l.weight.shape(),
                        l.weight.as_slice().expect("standard"),
                    )];
                    if let Some(b) = &l.bias {
                        v.push(("bias", b.shape(), b.as_slice().expect("standard")));
                    }
                    v
                }
                Module::Conv2d(l) => conv_state(&l.weight, l.bias.as_ref()),
                Module::ConvTranspose2d(l) => conv_state(&l.weight, l.bias.as_ref()),
                Module::BatchNorm1d(l) | Module::BatchNorm2d(l) => vec![
                    (
                        "weight",
                        l.gamma.shape(),
                        l.gamma.as_slice().expect("standard"),
                    ),
                    ("bias", l.beta.shape(), l.beta.as_slice().expect("standard")),
                ],
                _ => Vec::new(),
            };
            for (local, shape, data) in tensors {
                out.push(TensorRef {
                    name: self.full_name(layer, local),
                    shape: shape.to_vec(),
                    data,
                });
            }
            for (local, b) in m.buffers() {
                out.push(TensorRef {
                    name: self.full_name(layer, local),
                    shape: b.shape().to_vec(),
                    data: b.as_slice().expect("standard"),
                });
            }
        }
        out
    }

    /// Writable view of [`Sequential::state`], same names and order (for loading).
    pub fn state_mut(&mut self) -> Vec<TensorMut<'_>> {
        let prefix = self.name.clone();
        let full = |layer: &str, local: &str| {
            if prefix.is_empty() {
                format!("{layer}.{local}")
            } else {
                format!("{prefix}.{layer}.{local}")
            }
        };
        let mut out = Vec::new();
        for (layer, m) in &mut self.layers {
            // Parameters and buffers borrow disjoint fields; split the borrow by kind.
            match m {
                Module::BatchNorm1d(l) | Module::BatchNorm2d(l) => {
                    for (local, a) in [
                        ("weight", &mut l.gamma),
                        ("bias", &mut l.beta),
                        ("running_mean", &mut l.running_mean),
                        ("running_var", &mut l.running_var),
                    ] {
                        out.push(TensorMut {
                            name: full(layer, local),
                            shape: a.shape().to_vec(),
                            data: a.as_slice_mut().expect("standard"),
                        });
                    }
                }
                other => {
                    for p in other.parameters() {
                        out.push(TensorMut {
                            name: full(layer, &p.name),
                            shape: p.shape,
                            data: p.value,
                        });
                    }
                }
            }
        }
        out
    }

    /// Per-sample output shape for a per-sample input shape (`[features]` or `[c, h, w]`),
    /// checking that every layer fits the one before.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, NnError> {
        let mut s = input.to_vec();
        for (name, m) in &self.layers {
            s = m.output_shape(name, &s)?;
        }
        Ok(s)
    }

    /// Lowers the eval-mode model to the export graph: Linear -> Dense, Conv2d, ConvTranspose2d,
    /// activations and reshapes as themselves; each BatchNorm folded into the Linear or
    /// convolution right before it; dropout removed; flatten as a reshape to a flat vector.
    ///
    /// `input` is one sample's input shape (`Shape::flat(latent)` for a generator).
    pub fn to_graph(&self, part: Part, input: Shape) -> Result<Graph, NnError> {
        let mut layers: Vec<Layer> = Vec::new();
        let mut shape: Vec<usize> = if input.h == 1 && input.w == 1 {
            vec![input.c]
        } else {
            vec![input.c, input.h, input.w]
        };
        // Whether the last lowered layer is one a following BatchNorm may fold into.
        let mut foldable = false;
        for (name, m) in &self.layers {
            let next = m.output_shape(name, &shape)?;
            let lowered = match m {
                Module::Linear(l) => Some(Layer::Dense {
                    inputs: l.inputs(),
                    outputs: l.outputs(),
                    weight: l.weight.iter().copied().collect(),
                    bias: l
                        .bias
                        .as_ref()
                        .map_or_else(|| vec![0.0; l.outputs()], |b| b.to_vec()),
                }),
                Module::Conv2d(l) => Some(Layer::Conv2d(export_conv(
                    &l.spec,
                    &l.weight,
                    l.bias.as_ref(),
                ))),
                Module::ConvTranspose2d(l) => Some(Layer::ConvTranspose2d(export_conv(
                    &l.spec,
                    &l.weight,
                    l.bias.as_ref(),
                ))),
                Module::BatchNorm1d(bn) | Module::BatchNorm2d(bn) => {
                    let prev = layers.last_mut().filter(|_| foldable);
                    let prev = prev.ok_or_else(|| NnError::UnfoldableBatchNorm {
                        layer: name.clone(),
                    })?;
                    fold_batchnorm(prev, bn);
                    None
                }
                Module::Activation(a) => Some(a.to_layer()),
                Module::Dropout(_) => None,
                Module::Reshape(_) | Module::Flatten => Some(Layer::Reshape {
                    to: match next.as_slice() {
                        [n] => Shape::flat(*n),
                        [c, h, w] => Shape::chw(*c, *h, *w),
                        _ => unreachable!("output_shape returns one or three axes"),
                    },
                }),
            };
            if let Some(l) = lowered {
                foldable = matches!(
                    l,
                    Layer::Dense { .. } | Layer::Conv2d(_) | Layer::ConvTranspose2d(_)
                );
                layers.push(l);
            } else if matches!(m, Module::Dropout(_)) {
                // A BatchNorm after dropout would fold across it: not the same function in
                // training, but identical in eval mode, where dropout is the identity.
            } else {
                foldable = false;
            }
            shape = next;
        }
        let graph = Graph {
            part,
            input,
            layers,
        };
        graph.validate()?;
        Ok(graph)
    }
}

fn conv_state<'a>(
    w: &'a ndarray::Array4<f32>,
    b: Option<&'a ndarray::Array1<f32>>,
) -> Vec<(&'static str, &'a [usize], &'a [f32])> {
    let mut v = vec![("weight", w.shape(), w.as_slice().expect("standard"))];
    if let Some(b) = b {
        v.push(("bias", b.shape(), b.as_slice().expect("standard")));
    }
    v
}

fn export_conv(
    spec: &ConvSpec,
    w: &ndarray::Array4<f32>,
    b: Option<&ndarray::Array1<f32>>,
) -> tinygen_export::Conv {
    tinygen_export::Conv {
        spec: *spec,
        weight: w.iter().copied().collect(),
        bias: b.map_or_else(|| vec![0.0; spec.out_ch], |b| b.to_vec()),
    }
}

/// `bn(layer(x)) = scale * (W x + b) + shift` per output channel: scales the weights of
/// each output channel and sets `b' = scale * b + shift`.
fn fold_batchnorm(prev: &mut Layer, bn: &BatchNorm) {
    let (scale, shift) = bn.eval_affine();
    let (weight, bias, out_axis_blocks): (&mut Vec<f32>, &mut Vec<f32>, (usize, usize)) = match prev
    {
        // [out, in]: output channel o owns the contiguous row o.
        Layer::Dense {
            inputs,
            weight,
            bias,
            ..
        } => {
            let inner = *inputs;
            (weight, bias, (1, inner))
        }
        // [out, in, kh, kw]: output channel o owns a contiguous block.
        Layer::Conv2d(c) => {
            let inner = c.spec.in_ch * c.spec.kernel.0 * c.spec.kernel.1;
            (&mut c.weight, &mut c.bias, (1, inner))
        }
        // [in, out, kh, kw]: output channel o owns block o within each input channel.
        Layer::ConvTranspose2d(c) => {
            let inner = c.spec.kernel.0 * c.spec.kernel.1;
            (&mut c.weight, &mut c.bias, (c.spec.in_ch, inner))
        }
        _ => unreachable!("only Dense and convolutions are foldable"),
    };
    let (outer, inner) = out_axis_blocks;
    let out = scale.len();
    for o_block in weight.chunks_exact_mut(inner).enumerate().take(outer * out) {
        let (i, block) = o_block;
        let s = scale[i % out];
        block.iter_mut().for_each(|w| *w *= s);
    }
    for ((b, &s), &t) in bias.iter_mut().zip(&scale).zip(&shift) {
        *b = s * *b + t;
    }
}

#[cfg(test)]
mod export_tests;
