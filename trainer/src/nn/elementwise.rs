//! Parameter-free layers: activations, dropout, and shape changes.
//!
//! Each works on any `(batch, ...)` array and returns an explicit cache; backward takes the
//! output gradient by value and turns it into the input gradient in place.

use ndarray::{ArrayD, IxDyn, Zip};
use rand::{Rng, RngExt};

use super::Mode;

/// An elementwise activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`; derivative taken as 0 at 0.
    Relu,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu(f32),
    /// `tanh(x)`, derivative `1 - y²`.
    Tanh,
    /// `1 / (1 + exp(-x))`, derivative `y (1 - y)`.
    Sigmoid,
}

/// What an activation's backward needs: the input for the piecewise-linear ones, the
/// output for tanh and sigmoid.
#[derive(Debug, Clone)]
pub struct ActivationCache {
    saved: ArrayD<f32>,
}

/// Numerically safe logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Activation {
    /// `y = f(x)`, same shape.
    pub fn forward(self, x: ArrayD<f32>) -> (ArrayD<f32>, ActivationCache) {
        match self {
            Activation::Relu => {
                let y = x.mapv(|v| v.max(0.0));
                (y, ActivationCache { saved: x })
            }
            Activation::LeakyRelu(alpha) => {
                let y = x.mapv(|v| if v >= 0.0 { v } else { alpha * v });
                (y, ActivationCache { saved: x })
            }
            Activation::Tanh => {
                let mut y = x;
                y.mapv_inplace(f32::tanh);
                (y.clone(), ActivationCache { saved: y })
            }
            Activation::Sigmoid => {
                let mut y = x;
                y.mapv_inplace(sigmoid);
                (y.clone(), ActivationCache { saved: y })
            }
        }
    }

    /// `d_x = f'(x) ⊙ d_y`, computed in `d_y`'s storage.
    pub fn backward(self, cache: ActivationCache, d_y: ArrayD<f32>) -> ArrayD<f32> {
        assert_eq!(d_y.shape(), cache.saved.shape(), "activation: d_y shape");
        let mut d = d_y;
        let s = &cache.saved;
        match self {
            Activation::Relu => Zip::from(&mut d).and(s).for_each(|d, &x| {
                if x <= 0.0 {
                    *d = 0.0
                }
            }),
            Activation::LeakyRelu(alpha) => Zip::from(&mut d).and(s).for_each(|d, &x| {
                if x < 0.0 {
                    *d *= alpha
                }
            }),
            Activation::Tanh => Zip::from(&mut d).and(s).for_each(|d, &y| *d *= 1.0 - y * y),
            Activation::Sigmoid => Zip::from(&mut d)
                .and(s)
                .for_each(|d, &y| *d *= y * (1.0 - y)),
        }
        d
    }

    /// The export graph's layer for this activation.
    pub fn to_layer(self) -> tinygen_export::Layer {
        use tinygen_export::Layer;
        match self {
            Activation::Relu => Layer::Relu,
            Activation::LeakyRelu(alpha) => Layer::LeakyRelu { alpha },
            Activation::Tanh => Layer::Tanh,
            Activation::Sigmoid => Layer::Sigmoid,
        }
    }
}

/// Inverted dropout: in train mode each element is kept with probability `1 - p` and
/// scaled by `1 / (1 - p)`; in eval mode the identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1]`.
    pub p: f32,
}

/// The mask a dropout forward drew (`None` in eval mode).
#[derive(Debug, Clone)]
pub struct DropoutCache {
    mask: Option<ArrayD<f32>>,
}

impl Dropout {
    /// Dropout with probability `p`.
    pub fn new(p: f32) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "dropout probability {p} outside [0, 1]"
        );
        Dropout { p }
    }

    /// Draws the mask from `rng` in train mode.
    pub fn forward<R: Rng + ?Sized>(
        &self,
        x: ArrayD<f32>,
        mode: Mode,
        rng: &mut R,
    ) -> (ArrayD<f32>, DropoutCache) {
        if mode == Mode::Eval || self.p == 0.0 {
            return (x, DropoutCache { mask: None });
        }
        let keep = 1.0 - self.p;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        let mask = ArrayD::from_shape_simple_fn(IxDyn(x.shape()), || {
            if rng.random::<f32>() < keep {
                scale
            } else {
                0.0
            }
        });
        let y = &x * &mask;
        (y, DropoutCache { mask: Some(mask) })
    }

    /// `d_x = mask ⊙ d_y`.
    pub fn backward(&self, cache: DropoutCache, d_y: ArrayD<f32>) -> ArrayD<f32> {
        match cache.mask {
            None => d_y,
            Some(mask) => {
                let mut d = d_y;
                d *= &mask;
                d
            }
        }
    }
}

/// The input shape, for undoing a reshape in the backward pass.
#[derive(Debug, Clone)]
pub struct ReshapeCache {
    shape: Vec<usize>,
}

/// Reshapes `(batch, ...)` to `(batch, to...)`, e.g. `(batch, 3136)` to `(batch, 64, 7, 7)`,
/// or `(batch, c, h, w)` to `(batch, c*h*w)` ([`Reshape::flatten`]). Row-major, no data movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshape {
    /// Per-sample target shape: one entry (flat) or three (`[c, h, w]`).
    pub to: Vec<usize>,
}

impl Reshape {
    /// To `(batch, c, h, w)`.
    pub fn chw(c: usize, h: usize, w: usize) -> Self {
        Reshape { to: vec![c, h, w] }
    }

    /// To `(batch, n)`.
    pub fn flat(n: usize) -> Self {
        Reshape { to: vec![n] }
    }

    /// Per-sample element count.
    pub fn len(&self) -> usize {
        self.to.iter().product()
    }

    /// True if the target shape holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the batch axis, reshapes the rest.
    pub fn forward(&self, x: ArrayD<f32>) -> (ArrayD<f32>, ReshapeCache) {
        let shape = x.shape().to_vec();
        let mut to = vec![shape[0]];
        to.extend_from_slice(&self.to);
        (reshape(x, &to), ReshapeCache { shape })
    }

    /// Restores the input shape.
    pub fn backward(&self, cache: ReshapeCache, d_y: ArrayD<f32>) -> ArrayD<f32> {
        reshape(d_y, &cache.shape)
    }
}

/// Row-major reshape of an owned array (copies only if it is not in standard layout).
pub(crate) fn reshape(x: ArrayD<f32>, to: &[usize]) -> ArrayD<f32> {
    let x = if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    };
    let from = x.shape().to_vec();
    x.into_shape_with_order(IxDyn(to))
        .unwrap_or_else(|e| panic!("cannot reshape {from:?} to {to:?}: {e}"))
}
