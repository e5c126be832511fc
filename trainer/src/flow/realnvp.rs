//! The RealNVP flow: `couplings` steps of actnorm, affine coupling and (between couplings) a fixed
//! permutation, on logit-transformed dequantized pixels, with a standard Gaussian base.
//!
//! Density direction (training): `v -> y = logit(...) -> z`; generative direction (sampling,
//! export): `z -> y -> v = (sigmoid(y) - α) / (1 - 2α)`.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, RngExt, SeedableRng};

use super::{ActNorm, ActNormCache, AffineCoupling, CouplingCache, LogitTransform};
use crate::nn::{Param, TensorRef};

/// Seed of the fixed permutations (not drawn from the model's generator, so a loaded model
/// rebuilds the same ones without storing them).
const PERMUTATION_SEED: u64 = 0x5045_524D;

/// Settings of a [`RealNvp`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    /// Features per image (`height * width`).
    pub dim: usize,
    /// Coupling layers (each with an actnorm before it).
    pub couplings: usize,
    /// Hidden width of each coupling's MLP.
    pub hidden: usize,
    /// The logit transform's `α`.
    pub alpha: f32,
}

/// A fixed permutation of the features: output `i` is input `index[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    /// `(D)`: a permutation of `0 .. D`.
    pub index: Vec<usize>,
    /// Its inverse.
    pub inverse: Vec<usize>,
}

impl Permutation {
    /// The `k`-th fixed permutation of `dim` features: a Fisher-Yates shuffle from a generator
    /// seeded by `k` alone.
    pub fn seeded(dim: usize, k: usize) -> Self {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(PERMUTATION_SEED ^ k as u64);
        let mut index: Vec<usize> = (0..dim).collect();
        for i in (1..dim).rev() {
            let j = rng.random_range(0..=i);
            index.swap(i, j);
        }
        let mut inverse = vec![0; dim];
        for (i, &j) in index.iter().enumerate() {
            inverse[j] = i;
        }
        Permutation { index, inverse }
    }

    /// `y[:, i] = x[:, index[i]]`.
    pub fn forward(&self, x: &Array2<f32>) -> Array2<f32> {
        gather(x, &self.index)
    }

    /// `x[:, index[i]] = y[:, i]`; also the backward of [`Permutation::forward`].
    pub fn inverse(&self, y: &Array2<f32>) -> Array2<f32> {
        gather(y, &self.inverse)
    }
}

/// `out[:, i] = x[:, index[i]]`, in standard layout.
fn gather(x: &Array2<f32>, index: &[usize]) -> Array2<f32> {
    let mut out = Array2::zeros((x.nrows(), index.len()));
    for (mut o, row) in out.rows_mut().into_iter().zip(x.rows()) {
        o.iter_mut().zip(index).for_each(|(o, &i)| *o = row[i]);
    }
    out
}

/// One step: actnorm, coupling, then a permutation unless it is the last step.
#[derive(Debug, Clone)]
pub struct FlowStep {
    /// Per-dimension affine normalisation.
    pub actnorm: ActNorm,
    /// The affine coupling.
    pub coupling: AffineCoupling,
    /// The permutation after the coupling (`None` for the last step).
    pub permutation: Option<Permutation>,
}

/// The caches of one [`RealNvp::forward`], one pair per step.
#[derive(Debug, Clone)]
pub struct FlowCache {
    steps: Vec<(ActNormCache, CouplingCache)>,
}

/// A RealNVP flow; see the module documentation.
#[derive(Debug, Clone)]
pub struct RealNvp {
    /// Its settings.
    pub cfg: FlowConfig,
    /// Pixels to the flow's input and back.
    pub logit: LogitTransform,
    /// The steps, in the density direction.
    pub steps: Vec<FlowStep>,
}

/// `D/2 ln(2π)`: the normalising constant of a `D`-dimensional standard Gaussian.
fn gaussian_constant(dim: usize) -> f64 {
    0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln()
}

impl RealNvp {
    /// A new flow; the couplings start as the identity and the actnorms wait for
    /// [`RealNvp::initialize`].
    pub fn new<R: Rng + ?Sized>(cfg: &FlowConfig, rng: &mut R) -> Self {
        let steps = (0..cfg.couplings)
            .map(|k| FlowStep {
                actnorm: ActNorm::new(cfg.dim),
                coupling: AffineCoupling::new(cfg.dim, cfg.hidden, rng),
                permutation: (k + 1 < cfg.couplings).then(|| Permutation::seeded(cfg.dim, k)),
            })
            .collect();
        RealNvp {
            cfg: cfg.clone(),
            logit: LogitTransform::new(cfg.alpha),
            steps,
        }
    }

    /// Features per image.
    pub fn dim(&self) -> usize {
        self.cfg.dim
    }

    /// Whether every actnorm has its data-dependent initialisation.
    pub fn initialized(&self) -> bool {
        self.steps.iter().all(|s| s.actnorm.initialized)
    }

    /// Data-dependent initialisation: runs `y` `(batch, D)` (logit space) through the flow and
    /// sets each actnorm from the batch it receives.
    pub fn initialize(&mut self, y: &Array2<f32>) {
        let mut h = y.clone();
        for step in &mut self.steps {
            step.actnorm.initialize(&h);
            h = step.actnorm.forward(h).0;
            h = step.coupling.forward(&h).0;
            if let Some(p) = &step.permutation {
                h = p.forward(&h);
            }
        }
    }

    /// `y` `(batch, D)` -> `(z, log|det ∂z/∂y| (batch), cache)`.
    pub fn forward(&mut self, y: &Array2<f32>) -> (Array2<f32>, Array1<f32>, FlowCache) {
        let mut h = y.clone();
        let mut log_det = Array1::zeros(y.nrows());
        let mut caches = Vec::with_capacity(self.steps.len());
        for step in &mut self.steps {
            let (a, ld_a, c_a) = step.actnorm.forward(h);
            let (b, ld_b, c_b) = step.coupling.forward(&a);
            log_det += &ld_a;
            log_det += &ld_b;
            h = match &step.permutation {
                Some(p) => p.forward(&b),
                None => b,
            };
            caches.push((c_a, c_b));
        }
        (h, log_det, FlowCache { steps: caches })
    }

    /// Consumes the caches: from `d_z` `(batch, D)` and `d_log_det` `(batch)` adds every
    /// parameter gradient and returns `d_y`.
    pub fn backward(
        &mut self,
        cache: FlowCache,
        d_z: &Array2<f32>,
        d_log_det: &Array1<f32>,
    ) -> Array2<f32> {
        assert_eq!(
            cache.steps.len(),
            self.steps.len(),
            "cache from another flow"
        );
        let mut d = d_z.clone();
        for (step, (c_a, c_b)) in self.steps.iter_mut().zip(cache.steps).rev() {
            if let Some(p) = &step.permutation {
                d = p.inverse(&d);
            }
            d = step.coupling.backward(c_b, &d, d_log_det);
            d = step.actnorm.backward(c_a, &d, d_log_det);
        }
        d
    }

    /// `z` `(batch, D)` -> `y`, the inverse of [`RealNvp::forward`].
    pub fn inverse(&mut self, z: &Array2<f32>) -> Array2<f32> {
        let mut h = z.clone();
        for step in self.steps.iter_mut().rev() {
            if let Some(p) = &step.permutation {
                h = p.inverse(&h);
            }
            h = step.coupling.inverse(&h);
            h = step.actnorm.inverse(&h);
        }
        h
    }

    /// `-log p_V(v)` per image (nats, `v` dequantized pixels in `[0, 1)`), see
    /// [`super::logit`]; [`super::discrete_nll`] turns it into the discrete NLL and bits/dim.
    pub fn neg_log_pv(&mut self, v: Array2<f32>) -> Array1<f64> {
        let (y, ld_logit, _) = self.logit.forward(v);
        let (z, ld_flow, _) = self.forward(&y);
        self.neg_log_pv_of(&z, &ld_flow, &ld_logit)
    }

    fn neg_log_pv_of(
        &self,
        z: &Array2<f32>,
        ld_flow: &Array1<f32>,
        ld_logit: &Array1<f32>,
    ) -> Array1<f64> {
        let c = gaussian_constant(self.dim());
        let mut out = Array1::zeros(z.nrows());
        for (((o, row), &lf), &ll) in out
            .iter_mut()
            .zip(z.axis_iter(Axis(0)))
            .zip(ld_flow)
            .zip(ld_logit)
        {
            let sq: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            *o = 0.5 * sq + c - f64::from(lf) - f64::from(ll);
        }
        out
    }

    /// One training pass on dequantized pixels `v` `(batch, D)`: the mean `-log p_V(v)` (nats per
    /// image) and its gradient added into every parameter. Initialises the actnorms on the first
    /// call. `L = 1/B Σ_b (½|z_b|² + c - ld_b - ld_logit_b)`, so `dL/dz = z / B`, `dL/dld = -1 / B`.
    pub fn train_pass(&mut self, v: Array2<f32>) -> f64 {
        let (y, ld_logit, _) = self.logit.forward(v);
        if !self.initialized() {
            self.initialize(&y);
        }
        let (z, ld_flow, cache) = self.forward(&y);
        let nll = self.neg_log_pv_of(&z, &ld_flow, &ld_logit);
        let b = z.nrows().max(1) as f32;
        let d_z = z.mapv(|v| v / b);
        let d_ld = Array1::from_elem(z.nrows(), -1.0 / b);
        self.backward(cache, &d_z, &d_ld);
        nll.mean().unwrap_or(0.0)
    }

    /// Images in (about) `[0, 1]` from latents `z` `(n, D)` scaled by `temperature` (so
    /// `z ~ N(0, I)` gives samples at `z ~ N(0, T²)`): inverse flow, then inverse logit. Not
    /// clamped, so it equals the exported graph's output.
    pub fn sample(&mut self, z: ArrayView2<'_, f32>, temperature: f32) -> Array2<f32> {
        let y = self.inverse(&z.mapv(|v| v * temperature));
        self.logit.inverse(&y)
    }

    /// Parameters with gradients: `s{k}.actnorm.{scale,bias}`, `s{k}.coupling.net.fc*.{weight,bias}`,
    /// `s{k}.coupling.scale`.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let mut out = Vec::new();
        for (k, step) in self.steps.iter_mut().enumerate() {
            for (part, params) in [
                ("actnorm", step.actnorm.parameters()),
                ("coupling", step.coupling.parameters()),
            ] {
                for mut p in params {
                    p.name = format!("s{k}.{part}.{}", p.name);
                    out.push(p);
                }
            }
        }
        out
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in self.parameters() {
            p.grad.fill(0.0);
        }
    }

    /// The parameters' names, shapes and values, in [`RealNvp::parameters`] order (for
    /// checkpoints).
    pub fn state(&self) -> Vec<TensorRef<'_>> {
        let mut out = Vec::new();
        fn tensor(name: String, a: &Array1<f32>) -> TensorRef<'_> {
            TensorRef {
                name,
                shape: a.shape().to_vec(),
                data: a.as_slice().expect("standard layout"),
            }
        }
        for (k, step) in self.steps.iter().enumerate() {
            out.push(tensor(format!("s{k}.actnorm.scale"), &step.actnorm.scale));
            out.push(tensor(format!("s{k}.actnorm.bias"), &step.actnorm.bias));
            for mut t in step.coupling.net.state() {
                t.name = format!("s{k}.coupling.{}", t.name);
                out.push(t);
            }
            out.push(tensor(format!("s{k}.coupling.scale"), &step.coupling.scale));
        }
        out
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.state().iter().map(|t| t.data.len()).sum()
    }
}
