//! Fully connected layer `y = x Wᵀ + b`.

use ndarray::{Array1, Array2, Axis};
use rand::Rng;

use super::Param;
use crate::gemm::gemm;
use crate::init;

/// Fully connected layer, weight `(out, in)` as in PyTorch.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `(outputs, inputs)`
    pub weight: Array2<f32>,
    /// `(outputs)`, if the layer has a bias.
    pub bias: Option<Array1<f32>>,
    /// `(outputs, inputs)`, accumulated by [`Linear::backward`].
    pub d_weight: Array2<f32>,
    /// `(outputs)`
    pub d_bias: Option<Array1<f32>>,
}

/// What [`Linear::backward`] needs from the forward pass: the input.
#[derive(Debug, Clone)]
pub struct LinearCache {
    /// `(batch, inputs)`
    pub x: Array2<f32>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation (Kaiming uniform with `a = sqrt(5)`,
    /// i.e. weights and bias uniform in `±1/sqrt(inputs)`).
    pub fn new<R: Rng + ?Sized>(inputs: usize, outputs: usize, bias: bool, rng: &mut R) -> Self {
        let mut l = Self::zeros(inputs, outputs, bias);
        init::torch_default(
            l.weight.as_slice_mut().expect("standard layout"),
            inputs,
            rng,
        );
        if let Some(b) = l.bias.as_mut() {
            init::torch_default(b.as_slice_mut().expect("standard layout"), inputs, rng);
        }
        l
    }

    /// A layer with all weights zero (for loading a checkpoint).
    pub fn zeros(inputs: usize, outputs: usize, bias: bool) -> Self {
        Linear {
            weight: Array2::zeros((outputs, inputs)),
            bias: bias.then(|| Array1::zeros(outputs)),
            d_weight: Array2::zeros((outputs, inputs)),
            d_bias: bias.then(|| Array1::zeros(outputs)),
        }
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.weight.ncols()
    }

    /// Output features.
    pub fn outputs(&self) -> usize {
        self.weight.nrows()
    }

    /// `x`: `(batch, inputs)` -> `(batch, outputs)`. One sgemm reading `W` transposed in
    /// place; the bias is written first and the product accumulated onto it.
    pub fn forward(&self, x: Array2<f32>) -> (Array2<f32>, LinearCache) {
        assert_eq!(
            x.ncols(),
            self.inputs(),
            "Linear: input has {} features, expected {}",
            x.ncols(),
            self.inputs()
        );
        let batch = x.nrows();
        let mut y = match &self.bias {
            Some(b) => b
                .broadcast((batch, self.outputs()))
                .expect("bias broadcasts")
                .to_owned(),
            None => Array2::zeros((batch, self.outputs())),
        };
        gemm(1.0, x.view(), self.weight.t(), 1.0, y.view_mut());
        (y, LinearCache { x })
    }

    /// Adds the parameter gradients for `d_y` `(batch, outputs)` and returns `d_x` `(batch, inputs)`.
    pub fn backward(&mut self, cache: LinearCache, d_y: &Array2<f32>) -> Array2<f32> {
        let d_x = self.input_grad(d_y);
        self.backward_params(cache, d_y);
        d_x
    }

    /// Adds the parameter gradients only (for a first layer whose input needs no gradient).
    pub fn backward_params(&mut self, cache: LinearCache, d_y: &Array2<f32>) {
        assert_eq!(
            d_y.dim(),
            (cache.x.nrows(), self.outputs()),
            "Linear: d_y shape"
        );
        // d_W (out, in) += d_yᵀ (out, batch) · x (batch, in)
        gemm(1.0, d_y.t(), cache.x.view(), 1.0, self.d_weight.view_mut());
        if let Some(d_b) = self.d_bias.as_mut() {
            // d_b (out) += Σ_batch d_y
            for row in d_y.axis_iter(Axis(0)) {
                d_b.zip_mut_with(&row, |g, &d| *g += d);
            }
        }
    }

    fn input_grad(&self, d_y: &Array2<f32>) -> Array2<f32> {
        // d_x (batch, in) = d_y (batch, out) · W (out, in)
        let mut d_x = Array2::zeros((d_y.nrows(), self.inputs()));
        gemm(1.0, d_y.view(), self.weight.view(), 0.0, d_x.view_mut());
        d_x
    }

    /// Parameters and gradients, named `weight` and `bias` as in PyTorch.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let mut out = vec![Param::new("weight", &mut self.weight, &mut self.d_weight)];
        if let (Some(b), Some(d_b)) = (self.bias.as_mut(), self.d_bias.as_mut()) {
            out.push(Param::new("bias", b, d_b));
        }
        out
    }
}
