//! Batch normalisation over `(batch, C)` (1d) or `(batch, C, H, W)` (2d) inputs, per channel.

use ndarray::{Array1, ArrayD};

use super::{Mode, Param};

/// Batch normalisation as PyTorch's `BatchNorm1d` / `BatchNorm2d`: statistics per channel
/// (axis 1) over the batch and all spatial positions; running statistics updated with
/// `momentum` from the biased batch mean and the unbiased batch variance; learnable affine.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// `(C)`, scale (PyTorch `weight`).
    pub gamma: Array1<f32>,
    /// `(C)`, shift (PyTorch `bias`).
    pub beta: Array1<f32>,
    /// `(C)`
    pub d_gamma: Array1<f32>,
    /// `(C)`
    pub d_beta: Array1<f32>,
    /// `(C)`, used in eval mode.
    pub running_mean: Array1<f32>,
    /// `(C)`, used in eval mode.
    pub running_var: Array1<f32>,
    /// Weight of the new batch statistic in the running average (PyTorch: 0.1).
    pub momentum: f32,
    /// Added to the variance before the square root (PyTorch: 1e-5).
    pub eps: f32,
}

/// What [`BatchNorm::backward`] needs from the forward pass.
#[derive(Debug, Clone)]
pub struct BatchNormCache {
    /// Normalised input `(x - mean) / sqrt(var + eps)`, same shape as `x`.
    x_hat: ArrayD<f32>,
    /// `(C)`, `1 / sqrt(var + eps)` of the statistics used.
    inv_std: Vec<f32>,
    /// Whether batch statistics were used (train mode), so the gradient flows through them.
    batch_stats: bool,
}

/// Number of channels and of values per channel per sample for a `(batch, C, ...)` shape.
fn layout(shape: &[usize]) -> (usize, usize, usize) {
    assert!(
        shape.len() >= 2,
        "BatchNorm: input needs (batch, channels, ...), got {shape:?}"
    );
    (shape[0], shape[1], shape[2..].iter().product())
}

impl BatchNorm {
    /// `gamma = 1`, `beta = 0`, running mean 0 and variance 1, momentum 0.1, eps 1e-5.
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            gamma: Array1::ones(channels),
            beta: Array1::zeros(channels),
            d_gamma: Array1::zeros(channels),
            d_beta: Array1::zeros(channels),
            running_mean: Array1::zeros(channels),
            running_var: Array1::ones(channels),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.gamma.len()
    }

    /// Per-channel `(scale, shift)` of the eval-mode transform `y = scale * x + shift`,
    /// for folding into the previous layer.
    pub fn eval_affine(&self) -> (Vec<f32>, Vec<f32>) {
        let scale: Vec<f32> = self
            .gamma
            .iter()
            .zip(&self.running_var)
            .map(|(&g, &v)| g / (v + self.eps).sqrt())
            .collect();
        let shift = scale
            .iter()
            .zip(&self.beta)
            .zip(&self.running_mean)
            .map(|((&s, &b), &m)| b - s * m)
            .collect();
        (scale, shift)
    }

    /// `x`: `(batch, C, ...)` -> same shape. Train mode normalises with the batch
    /// statistics and updates the running ones; eval mode uses the running statistics.
    pub fn forward(&mut self, x: ArrayD<f32>, mode: Mode) -> (ArrayD<f32>, BatchNormCache) {
        let mut x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let (batch, c, s) = layout(x.shape());
        assert_eq!(
            c,
            self.channels(),
            "BatchNorm: input has {c} channels, expected {}",
            self.channels()
        );
        let count = batch * s;
        let mut inv_std = vec![0.0f32; c];
        let mut shift = vec![0.0f32; c];
        let data = x.as_slice_mut().expect("standard layout");
        match mode {
            Mode::Train => {
                // Mean and biased variance in f64: two passes, no cancellation.
                let mut mean = vec![0.0f64; c];
                for sample in data.chunks_exact(c * s) {
                    for (m, ch) in mean.iter_mut().zip(sample.chunks_exact(s)) {
                        *m += ch.iter().map(|&v| f64::from(v)).sum::<f64>();
                    }
                }
                mean.iter_mut().for_each(|m| *m /= count as f64);
                let mut var = vec![0.0f64; c];
                for sample in data.chunks_exact(c * s) {
                    for ((v, ch), &m) in var.iter_mut().zip(sample.chunks_exact(s)).zip(&mean) {
                        *v += ch.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>();
                    }
                }
                var.iter_mut().for_each(|v| *v /= count as f64);
                let unbias = if count > 1 {
                    count as f64 / (count - 1) as f64
                } else {
                    1.0
                };
                let mo = f64::from(self.momentum);
                for ch in 0..c {
                    inv_std[ch] = (1.0 / (var[ch] + f64::from(self.eps)).sqrt()) as f32;
                    shift[ch] = mean[ch] as f32;
                    let rm = &mut self.running_mean[ch];
                    *rm = ((1.0 - mo) * f64::from(*rm) + mo * mean[ch]) as f32;
                    let rv = &mut self.running_var[ch];
                    *rv = ((1.0 - mo) * f64::from(*rv) + mo * var[ch] * unbias) as f32;
                }
            }
            Mode::Eval => {
                for ch in 0..c {
                    inv_std[ch] = 1.0 / (self.running_var[ch] + self.eps).sqrt();
                    shift[ch] = self.running_mean[ch];
                }
            }
        }
        // x becomes x_hat in place; y = gamma * x_hat + beta in a second array.
        for sample in data.chunks_exact_mut(c * s) {
            for ((ch, &m), &is) in sample.chunks_exact_mut(s).zip(&shift).zip(&inv_std) {
                ch.iter_mut().for_each(|v| *v = (*v - m) * is);
            }
        }
        let mut y = x.clone();
        let y_data = y.as_slice_mut().expect("standard layout");
        for sample in y_data.chunks_exact_mut(c * s) {
            for ((ch, &g), &b) in sample.chunks_exact_mut(s).zip(&self.gamma).zip(&self.beta) {
                ch.iter_mut().for_each(|v| *v = g * *v + b);
            }
        }
        (
            y,
            BatchNormCache {
                x_hat: x,
                inv_std,
                batch_stats: mode == Mode::Train,
            },
        )
    }

    /// Adds `d_gamma`, `d_beta` and returns `d_x` for `d_y` of the input's shape.
    ///
    /// With batch statistics (N values per channel):
    /// `d_x = gamma * inv_std / N * (N d_y - Σ d_y - x_hat Σ (d_y x_hat))`;
    /// with running statistics `d_x = gamma * inv_std * d_y`.
    pub fn backward(&mut self, cache: BatchNormCache, d_y: ArrayD<f32>) -> ArrayD<f32> {
        assert_eq!(d_y.shape(), cache.x_hat.shape(), "BatchNorm: d_y shape");
        let mut d_x = if d_y.is_standard_layout() {
            d_y
        } else {
            d_y.as_standard_layout().into_owned()
        };
        let (batch, c, s) = layout(d_x.shape());
        let count = (batch * s) as f64;
        let x_hat = cache.x_hat.as_slice().expect("standard layout");
        let data = d_x.as_slice_mut().expect("standard layout");
        let mut sum_dy = vec![0.0f64; c];
        let mut sum_dy_xhat = vec![0.0f64; c];
        for (dy_s, xh_s) in data.chunks_exact(c * s).zip(x_hat.chunks_exact(c * s)) {
            for (ch, (dy, xh)) in dy_s.chunks_exact(s).zip(xh_s.chunks_exact(s)).enumerate() {
                for (&d, &h) in dy.iter().zip(xh) {
                    sum_dy[ch] += f64::from(d);
                    sum_dy_xhat[ch] += f64::from(d) * f64::from(h);
                }
            }
        }
        for ch in 0..c {
            self.d_beta[ch] += sum_dy[ch] as f32;
            self.d_gamma[ch] += sum_dy_xhat[ch] as f32;
        }
        for (dy_s, xh_s) in data.chunks_exact_mut(c * s).zip(x_hat.chunks_exact(c * s)) {
            for (ch, (dy, xh)) in dy_s
                .chunks_exact_mut(s)
                .zip(xh_s.chunks_exact(s))
                .enumerate()
            {
                let k = self.gamma[ch] * cache.inv_std[ch];
                if cache.batch_stats {
                    let mean_dy = (sum_dy[ch] / count) as f32;
                    let mean_dy_xhat = (sum_dy_xhat[ch] / count) as f32;
                    for (d, &h) in dy.iter_mut().zip(xh) {
                        *d = k * (*d - mean_dy - h * mean_dy_xhat);
                    }
                } else {
                    dy.iter_mut().for_each(|d| *d *= k);
                }
            }
        }
        d_x
    }

    /// Parameters and gradients, named `weight` (gamma) and `bias` (beta) as in PyTorch.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::new("weight", &mut self.gamma, &mut self.d_gamma),
            Param::new("bias", &mut self.beta, &mut self.d_beta),
        ]
    }
}
