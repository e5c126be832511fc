//! The data side of the flow: uniform dequantization of 8-bit pixels and the logit transform
//! (Dinh et al. 2017, appendix; Papamakarios et al. 2017, MAF), with the log-determinant that
//! makes the reported likelihood one of the discrete 8-bit data.
//!
//! # From pixels to the flow's input, and back
//! A pixel `p ∈ {0, ..., 255}` (`p = round(255 x)` of an image `x` in `[0, 1]`) is dequantized to
//! `v = (p + u) / 256` with `u ~ U[0, 1)`, so `v ∈ [0, 1)` (f32 rounding may give the bin's upper
//! edge, at most `v = 1`, where the logit is still finite), and mapped to
//! `y = logit(α + (1 - 2α) v)`, which keeps `y` finite (`|y| <= logit(1 - α)`). With
//! `q = α + (1 - 2α) v`, each dimension contributes `log |dy/dv| = log(1 - 2α) - log q - log(1 - q)`.
//! The generative direction is `v = (sigmoid(y) - α) / (1 - 2α)`.
//!
//! # Likelihood of the discrete data
//! The flow `f` maps `y` to `z` with a standard Gaussian base, so the density of `v` on
//! `[0, 1)^D` is `log p_V(v) = log N(f(y); 0, I) + log|det ∂f/∂y| + Σ_j log|dy_j/dv_j|`.
//! The density of `w = p + u = 256 v` on `[0, 256)^D` is `log p_W(w) = log p_V(v) - D ln 256`,
//! and the model's probability of the pixels, `P(p) = ∫_{[0,1)^D} p_W(p + u) du`, obeys by
//! Jensen's inequality `-log P(p) <= E_u[-log p_W(p + u)]` (Theis et al. 2016). So the reported
//!
//! `NLL (nats per image) = -log p_V(v) + D ln 256`, averaged over images (and one draw of `u`),
//!
//! is an upper bound on the discrete negative log-likelihood, and
//!
//! `bits/dim = NLL / (D ln 2) = -log p_V(v) / (D ln 2) + 8`.
//!
//! A model that spreads `v` uniformly over `[0, 1)` has `log p_V = 0` and scores exactly 8
//! bits/dim, the cost of storing raw bytes.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rand::{Rng, RngExt};

use crate::nn::sigmoid;

/// Pixel levels of 8-bit data.
pub const LEVELS: f64 = 256.0;

/// The 8-bit level of a pixel in `[0, 1]`: `round(255 x)`, clamped.
pub fn pixel_level(x: f32) -> f32 {
    (x * 255.0).round().clamp(0.0, 255.0)
}

/// `(p + u) / 256` per pixel of `x` `(batch, D)` in `[0, 1]`, `p` its 8-bit level and
/// `u ~ U[0, 1)` drawn row by row from `rng`.
pub fn dequantize<R: Rng + ?Sized>(x: ArrayView2<'_, f32>, rng: &mut R) -> Array2<f32> {
    let mut v = Array2::zeros(x.raw_dim());
    Zip::from(&mut v).and(&x).for_each(|v, &x| {
        let u: f64 = rng.random();
        *v = ((f64::from(pixel_level(x)) + u) / LEVELS) as f32;
    });
    v
}

/// `-log p_V(v)` per image (nats) to the discrete figures: `(NLL in nats, bits/dim)` with
/// `NLL = -log p_V + D ln 256` and `bits/dim = NLL / (D ln 2)`; see the module documentation.
pub fn discrete_nll(neg_log_pv: f64, dim: usize) -> (f64, f64) {
    let d = dim as f64;
    let nll = neg_log_pv + d * LEVELS.ln();
    (nll, nll / (d * std::f64::consts::LN_2))
}

/// `y = logit(α + (1 - 2α) v)`, elementwise, with its log-determinant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogitTransform {
    /// `α` in `(0, 0.5)`: how far from 0 and 1 the logit's argument is kept.
    pub alpha: f32,
}

/// What [`LogitTransform::backward`] needs: the input.
#[derive(Debug, Clone)]
pub struct LogitCache {
    /// `(batch, D)`
    v: Array2<f32>,
}

impl LogitTransform {
    /// The transform with `alpha` (RealNVP uses 0.05; MAF 1e-6).
    pub fn new(alpha: f32) -> Self {
        assert!(
            alpha > 0.0 && alpha < 0.5,
            "logit alpha must be in (0, 0.5), got {alpha}"
        );
        LogitTransform { alpha }
    }

    /// `v` `(batch, D)` in `[0, 1]` -> `(y, log|dy/dv| summed per row (batch), cache)`;
    /// computed in f64, rounded once.
    pub fn forward(&self, v: Array2<f32>) -> (Array2<f32>, Array1<f32>, LogitCache) {
        let a = f64::from(self.alpha);
        let ln_span = (1.0 - 2.0 * a).ln();
        let mut y = Array2::zeros(v.raw_dim());
        let mut log_det = Array1::zeros(v.nrows());
        for ((y_row, v_row), ld) in y
            .axis_iter_mut(Axis(0))
            .zip(v.axis_iter(Axis(0)))
            .zip(log_det.iter_mut())
        {
            let mut sum = 0.0f64;
            for (y, &v) in y_row.into_iter().zip(v_row) {
                let q = a + (1.0 - 2.0 * a) * f64::from(v);
                let (lq, l1q) = (q.ln(), (1.0 - q).ln());
                *y = (lq - l1q) as f32;
                sum += ln_span - lq - l1q;
            }
            *ld = sum as f32;
        }
        (y, log_det, LogitCache { v })
    }

    /// `v = (sigmoid(y) - α) ⊙ (1 / (1 - 2α))`, in f32 in the order the exported graph computes it.
    pub fn inverse(&self, y: &Array2<f32>) -> Array2<f32> {
        let inv_span = 1.0 / (1.0 - 2.0 * self.alpha);
        y.mapv(|y| (sigmoid(y) - self.alpha) * inv_span)
    }

    /// `d_v` `(batch, D)` from `d_y` and `d_log_det` `(batch)`: with `q = α + (1 - 2α) v`,
    /// `dy/dv = (1 - 2α) / (q (1 - q))` and `d(log|dy/dv|)/dv = (1 - 2α) (2q - 1) / (q (1 - q))`.
    pub fn backward(
        &self,
        cache: LogitCache,
        d_y: &Array2<f32>,
        d_log_det: &Array1<f32>,
    ) -> Array2<f32> {
        let a = f64::from(self.alpha);
        let mut d_v = cache.v;
        for ((mut d_row, dy_row), &g) in d_v
            .axis_iter_mut(Axis(0))
            .zip(d_y.axis_iter(Axis(0)))
            .zip(d_log_det)
        {
            for (d, &dy) in d_row.iter_mut().zip(dy_row) {
                let q = a + (1.0 - 2.0 * a) * f64::from(*d);
                let k = (1.0 - 2.0 * a) / (q * (1.0 - q));
                *d = (k * (f64::from(dy) + f64::from(g) * (2.0 * q - 1.0))) as f32;
            }
        }
        d_v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_uniform_density_scores_eight_bits_per_dimension() {
        // p_V = 1 on [0, 1)^D: -log p_V = 0, NLL = D ln 256, bits/dim = D ln 256 / (D ln 2) = 8.
        let (nll, bpd) = discrete_nll(0.0, 784);
        assert!((nll - 784.0 * 256f64.ln()).abs() < 1e-9);
        assert!((bpd - 8.0).abs() < 1e-12, "{bpd}");
    }

    #[test]
    fn dequantized_pixels_stay_in_their_bin() {
        // v = (p + u) / 256 with u in [0, 1): p <= 256 v <= p + 1 for every level p (the upper
        // edge only by f32 rounding).
        let x = Array2::from_shape_fn((4, 256), |(_, p)| p as f32 / 255.0);
        let v = dequantize(x.view(), &mut rand::rngs::StdRng::seed_from_u64(3));
        for row in v.rows() {
            for (p, &v) in row.iter().enumerate() {
                let w = f64::from(v) * LEVELS;
                assert!(p as f64 <= w && w <= p as f64 + 1.0, "level {p}: v = {v}");
            }
        }
    }
}
