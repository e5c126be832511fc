//! Activation normalisation (Kingma and Dhariwal 2018, Glow): a per-dimension affine map with
//! learned `scale` and `bias`, initialised from the first batch so that its outputs have zero
//! mean and unit variance. Unlike BatchNorm it has no batch statistics after that, so it is the
//! same function in training and inference, and it exports as two per-channel operations.
//!
//! `y = scale ⊙ x + bias`, `log|det J| = Σ_j log|scale_j|` (the same for every row);
//! inverse `x = (y - bias) ⊙ (1 / scale)`.

use ndarray::{Array1, Array2, Axis, Zip};

use crate::nn::Param;

/// Smallest standard deviation the data-dependent initialisation divides by.
const INIT_EPS: f32 = 1e-6;

/// An actnorm layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct ActNorm {
    /// `(D)`
    pub scale: Array1<f32>,
    /// `(D)`
    pub bias: Array1<f32>,
    /// `(D)`, accumulated by [`ActNorm::backward`].
    pub d_scale: Array1<f32>,
    /// `(D)`
    pub d_bias: Array1<f32>,
    /// Whether `scale` and `bias` have been set from data (or loaded); until then the first
    /// training batch sets them ([`ActNorm::initialize`]).
    pub initialized: bool,
}

/// What [`ActNorm::backward`] needs: the input.
#[derive(Debug, Clone)]
pub struct ActNormCache {
    /// `(batch, D)`
    x: Array2<f32>,
}

impl ActNorm {
    /// The identity on `dim` features, waiting for its data-dependent initialisation.
    pub fn new(dim: usize) -> Self {
        ActNorm {
            scale: Array1::ones(dim),
            bias: Array1::zeros(dim),
            d_scale: Array1::zeros(dim),
            d_bias: Array1::zeros(dim),
            initialized: false,
        }
    }

    /// Features in and out.
    pub fn dim(&self) -> usize {
        self.scale.len()
    }

    /// Sets `scale = 1 / (std + eps)` and `bias = -mean * scale` per feature of `x`
    /// `(batch, D)` (statistics in f64), so `scale ⊙ x + bias` has zero mean and unit variance.
    pub fn initialize(&mut self, x: &Array2<f32>) {
        let n = x.nrows().max(1) as f64;
        for ((s, b), col) in self
            .scale
            .iter_mut()
            .zip(self.bias.iter_mut())
            .zip(x.columns())
        {
            let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = col
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            let scale = 1.0 / (var.sqrt() as f32 + INIT_EPS);
            *s = scale;
            *b = -(mean as f32) * scale;
        }
        self.initialized = true;
    }

    /// `log|det J|` of one row: `Σ_j log|scale_j|`.
    pub fn log_det(&self) -> f32 {
        self.scale.iter().map(|s| s.abs().ln()).sum()
    }

    /// `x` `(batch, D)` -> `(y, log|det J| (batch), cache)`.
    pub fn forward(&self, x: Array2<f32>) -> (Array2<f32>, Array1<f32>, ActNormCache) {
        assert_eq!(x.ncols(), self.dim(), "actnorm: input width");
        let mut y = x.clone();
        Zip::from(&mut y)
            .and_broadcast(&self.scale)
            .and_broadcast(&self.bias)
            .for_each(|y, &s, &b| *y = s * *y + b);
        let log_det = Array1::from_elem(x.nrows(), self.log_det());
        (y, log_det, ActNormCache { x })
    }

    /// `y` `(batch, D)` -> `x = (y - bias) ⊙ (1 / scale)`.
    pub fn inverse(&self, y: &Array2<f32>) -> Array2<f32> {
        let inv = self.scale.mapv(|s| 1.0 / s);
        let mut x = y.clone();
        Zip::from(&mut x)
            .and_broadcast(&inv)
            .and_broadcast(&self.bias)
            .for_each(|x, &r, &b| *x = (*x - b) * r);
        x
    }

    /// Adds the parameter gradients for `d_y` `(batch, D)` and `d_log_det` `(batch)`; returns
    /// `d_x = d_y ⊙ scale`.
    pub fn backward(
        &mut self,
        cache: ActNormCache,
        d_y: &Array2<f32>,
        d_log_det: &Array1<f32>,
    ) -> Array2<f32> {
        // d_scale += Σ_batch d_y ⊙ x + (Σ_batch d_log_det) / scale; d_bias += Σ_batch d_y
        let g_ld = d_log_det.sum();
        Zip::from(&mut self.d_scale)
            .and(d_y.columns())
            .and(cache.x.columns())
            .and(&self.scale)
            .for_each(|g, dy, x, &s| *g += dy.dot(&x) + g_ld / s);
        self.d_bias += &d_y.sum_axis(Axis(0));
        let mut d_x = d_y.clone();
        Zip::from(&mut d_x)
            .and_broadcast(&self.scale)
            .for_each(|d, &s| *d *= s);
        d_x
    }

    /// Parameters, named `scale` and `bias`.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::new("scale", &mut self.scale, &mut self.d_scale),
            Param::new("bias", &mut self.bias, &mut self.d_bias),
        ]
    }
}
