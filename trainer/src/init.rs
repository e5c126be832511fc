//! Seeded weight initialisation: PyTorch's defaults, Xavier, and DCGAN's N(0, 0.02).
//!
//! Layer constructors (`Linear::new`, `Conv2d::new`, ...) already apply PyTorch's default;
//! [`init_sequential`] re-initialises a whole model with another scheme.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::nn::{Module, Sequential};

/// Fills `w` uniformly in `[-bound, bound)`.
pub fn uniform<R: Rng + ?Sized>(w: &mut [f32], bound: f32, rng: &mut R) {
    for v in w {
        *v = (rng.random::<f32>() * 2.0 - 1.0) * bound;
    }
}

/// Fills `w` from `N(mean, std²)`.
pub fn normal<R: Rng + ?Sized>(w: &mut [f32], mean: f32, std: f32, rng: &mut R) {
    for v in w {
        let z: f32 = rng.sample(StandardNormal);
        *v = mean + std * z;
    }
}

/// PyTorch's default for Linear and convolution weights and biases:
/// `kaiming_uniform_(a = sqrt(5))` gives the bound `gain * sqrt(3 / fan_in)` with
/// `gain = sqrt(2 / (1 + 5))`, i.e. `1 / sqrt(fan_in)`; the bias uses the same bound.
pub fn torch_default<R: Rng + ?Sized>(w: &mut [f32], fan_in: usize, rng: &mut R) {
    let bound = if fan_in > 0 {
        1.0 / (fan_in as f32).sqrt()
    } else {
        0.0
    };
    uniform(w, bound, rng);
}

/// A whole-model initialisation scheme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// PyTorch's default (see [`torch_default`]); BatchNorm to `gamma = 1, beta = 0`.
    TorchDefault,
    /// Glorot uniform `bound = gain * sqrt(6 / (fan_in + fan_out))` for weights, zero biases.
    XavierUniform {
        /// Gain (1 for linear / sigmoid, 5/3 for tanh, sqrt(2) for ReLU).
        gain: f32,
    },
    /// Glorot normal `std = gain * sqrt(2 / (fan_in + fan_out))` for weights, zero biases.
    XavierNormal {
        /// Gain.
        gain: f32,
    },
    /// pytorch/examples `dcgan`: weights `N(0, 0.02)`, zero biases, BatchNorm
    /// `gamma ~ N(1, 0.02)`, `beta = 0`.
    Dcgan,
}

/// `(fan_in, fan_out)` as PyTorch's `_calculate_fan_in_and_fan_out`: for a weight of shape
/// `[a, b, kh, kw]` `fan_in = b * kh * kw`, `fan_out = a * kh * kw` (so a transposed
/// convolution `[in, out, kh, kw]` takes its fan-in from `out`).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    let receptive: usize = shape.iter().skip(2).product();
    let fan_out = shape.first().copied().unwrap_or(1) * receptive;
    let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
    (fan_in, fan_out)
}

/// Re-initialises every layer of `model` with `scheme`, drawing from `rng` in layer order.
pub fn init_sequential<R: Rng + ?Sized>(model: &mut Sequential, scheme: Init, rng: &mut R) {
    for (_, m) in &mut model.layers {
        match m {
            Module::BatchNorm1d(bn) | Module::BatchNorm2d(bn) => {
                bn.beta.fill(0.0);
                match scheme {
                    Init::Dcgan => {
                        normal(bn.gamma.as_slice_mut().expect("standard"), 1.0, 0.02, rng)
                    }
                    _ => bn.gamma.fill(1.0),
                }
            }
            Module::Linear(_) | Module::Conv2d(_) | Module::ConvTranspose2d(_) => {
                let mut params = m.parameters();
                let (fan_in, fan_out) = fans(&params[0].shape);
                for p in &mut params {
                    let is_bias = p.name == "bias";
                    match (scheme, is_bias) {
                        (Init::TorchDefault, _) => torch_default(p.value, fan_in, rng),
                        (_, true) => p.value.fill(0.0),
                        (Init::XavierUniform { gain }, false) => uniform(
                            p.value,
                            gain * (6.0 / (fan_in + fan_out) as f32).sqrt(),
                            rng,
                        ),
                        (Init::XavierNormal { gain }, false) => normal(
                            p.value,
                            0.0,
                            gain * (2.0 / (fan_in + fan_out) as f32).sqrt(),
                            rng,
                        ),
                        (Init::Dcgan, false) => normal(p.value, 0.0, 0.02, rng),
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, ConvSpec, ConvTranspose2d, Linear};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[400, 784]), (784, 400));
        // ConvTranspose2d(64, 32, 4): weight [64, 32, 4, 4], fan_in = 32 * 16.
        assert_eq!(fans(&[64, 32, 4, 4]), (512, 1024));
    }

    #[test]
    fn torch_default_bounds_and_spread() {
        let mut rng = StdRng::seed_from_u64(1);
        let l = Linear::new(784, 400, true, &mut rng);
        let bound = 1.0 / 784f32.sqrt();
        assert!(l.weight.iter().all(|w| w.abs() <= bound));
        // Uniform on [-b, b] has variance b²/3; 313600 samples pin it within 1%.
        let var = l.weight.iter().map(|w| w * w).sum::<f32>() / l.weight.len() as f32;
        assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.01, "{var}");
        let c = ConvTranspose2d::new(ConvSpec::square(64, 32, 4, 2, 1), true, &mut rng);
        let bound_t = 1.0 / 512f32.sqrt();
        assert!(c.weight.iter().all(|w| w.abs() <= bound_t));
        assert!(c.weight.iter().any(|w| w.abs() > 0.9 * bound_t));
    }

    #[test]
    fn dcgan_init_draws_normal_weights_and_centres_batchnorm_at_one() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut m = Sequential::new("g")
            .with("fc", Linear::new(100, 1000, true, &mut rng))
            .with("bn", Module::BatchNorm1d(BatchNorm::new(1000)));
        init_sequential(&mut m, Init::Dcgan, &mut rng);
        let Module::Linear(l) = &m.layers[0].1 else {
            unreachable!()
        };
        let n = l.weight.len() as f32;
        let mean = l.weight.sum() / n;
        let std = (l.weight.iter().map(|w| (w - mean).powi(2)).sum::<f32>() / n).sqrt();
        // 100000 draws: the sample std is within 1% of 0.02, the mean within 4 standard errors.
        assert!((std / 0.02 - 1.0).abs() < 0.01, "{std}");
        assert!(mean.abs() < 4.0 * 0.02 / n.sqrt(), "{mean}");
        assert!(l.bias.as_ref().unwrap().iter().all(|&b| b == 0.0));
        let Module::BatchNorm1d(bn) = &m.layers[1].1 else {
            unreachable!()
        };
        let gmean = bn.gamma.sum() / 1000.0;
        assert!((gmean - 1.0).abs() < 4.0 * 0.02 / 1000f32.sqrt(), "{gmean}");
    }

    #[test]
    fn same_seed_same_weights() {
        let a = Linear::new(10, 5, true, &mut StdRng::seed_from_u64(3));
        let b = Linear::new(10, 5, true, &mut StdRng::seed_from_u64(3));
        assert_eq!(a.weight, b.weight);
        assert_eq!(a.bias, b.bias);
    }
}
