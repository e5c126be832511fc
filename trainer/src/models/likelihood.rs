//! A VAE's likelihood figures on held-out images: the evidence lower bound (ELBO), the
//! importance-weighted estimate of the negative log-likelihood (Burda et al. 2015) and the
//! number of active latent units.
//!
//! With the encoder's `q(z|x) = N(mu, exp(logvar))`, the prior `p(z) = N(0, I)` and the
//! decoder's likelihood `p(x|z)` (the training loss's, so the figures are in the units of the
//! loss printed per epoch), every sample `z_i ~ q(z|x)` has the weight
//!
//! `log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)`,
//!
//! and `log p(x) >= L_k = log (1/k Σ_{i<k} exp(log w_i))`, a bound that tightens as `k` grows
//! (Burda et al., Theorem 1); `L_1` is the ELBO in expectation. The estimate uses the first `k`
//! of the same `K` draws for every `k` of a ladder, so the figures of one call are comparable.
//! `log p(x|z)` is the negative reconstruction loss of the run (Bernoulli: `-BCE` summed over
//! pixels, on grey levels as pytorch/examples does; Gaussian: `-0.5 Σ (p - x)²` without the
//! normalising constant), so `-L_k` compares directly with the test loss `recon + KL`.

use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;

use super::{fill_normal, to_flat, to_input, Likelihood, Vae};
use crate::nn::sigmoid;

/// Rows of latents decoded at once (bounds memory; the figures do not depend on it).
const DECODE_ROWS: usize = 1024;

/// Variance of the posterior mean across the data above which a latent unit counts as active
/// (Burda et al. 2015, section 5.2).
pub const ACTIVE_UNIT_THRESHOLD: f64 = 0.01;

/// Likelihood figures of a VAE on a set of images, per image, in nats.
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodReport {
    /// Images evaluated.
    pub images: usize,
    /// Test loss `E_q[-log p(x|z)] + KL(q || p)` (KL in closed form, the reconstruction term
    /// averaged over the `K` draws): the negative ELBO.
    pub elbo_loss: f64,
    /// Its reconstruction term.
    pub recon: f64,
    /// Its KL term.
    pub kl: f64,
    /// `(k, -L_k)`: the importance-weighted NLL estimate for each `k` of the ladder, the last
    /// being `K`.
    pub iw_nll: Vec<(usize, f64)>,
}

impl LikelihoodReport {
    /// The estimate with the most samples.
    pub fn nll(&self) -> f64 {
        self.iw_nll.last().map_or(f64::NAN, |&(_, v)| v)
    }
}

/// `1, 10, 100, ...` below `k`, then `k`.
pub fn k_ladder(k: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |&v| v.checked_mul(10))
        .take_while(|&v| v < k)
        .collect();
    ks.push(k);
    ks
}

/// `log(1/n Σ exp(v_i))` over the first `n` values, stable for large magnitudes.
fn log_mean_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    let s: f64 = v.iter().map(|&x| (x - m).exp()).sum();
    m + (s / v.len() as f64).ln()
}

impl Vae {
    /// Eval-mode posterior parameters `(mu, logvar)`, each `(n, latent)`, of images `x`
    /// `(n, pixels)` in `[0, 1]`.
    pub fn posterior(&mut self, x: ArrayView2<'_, f32>) -> (Array2<f32>, Array2<f32>) {
        let l = self.cfg.latent;
        let (h, w, conv) = (self.cfg.height, self.cfg.width, self.conv());
        let mut mu = Array2::zeros((x.nrows(), l));
        let mut logvar = Array2::zeros((x.nrows(), l));
        for (i, chunk) in x.axis_chunks_iter(Axis(0), DECODE_ROWS).enumerate() {
            let out = to_flat(self.enc.infer(to_input(chunk.to_owned(), conv, h, w)));
            let rows = s![i * DECODE_ROWS..i * DECODE_ROWS + chunk.nrows(), ..];
            mu.slice_mut(rows).assign(&out.slice(s![.., ..l]));
            logvar.slice_mut(rows).assign(&out.slice(s![.., l..]));
        }
        (mu, logvar)
    }

    /// Latent units whose posterior mean varies across `x` by more than
    /// [`ACTIVE_UNIT_THRESHOLD`] (variance over the images): `(active, per-unit variances)`.
    pub fn active_units(&mut self, x: ArrayView2<'_, f32>) -> (usize, Vec<f64>) {
        let (mu, _) = self.posterior(x);
        let n = mu.nrows().max(1) as f64;
        let vars: Vec<f64> = mu
            .columns()
            .into_iter()
            .map(|c| {
                let mean = c.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                c.iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / n
            })
            .collect();
        let active = vars.iter().filter(|&&v| v > ACTIVE_UNIT_THRESHOLD).count();
        (active, vars)
    }

    /// `-log p(x | z)` of one image `x` for each row of decoder logits: the training loss's
    /// reconstruction term, per row, accumulated in f64.
    fn neg_log_likelihood_rows(&self, logits: &Array2<f32>, x: ArrayView1<'_, f32>) -> Vec<f64> {
        logits
            .rows()
            .into_iter()
            .map(|row| match self.cfg.likelihood {
                Likelihood::Bernoulli => {
                    // max(l, 0) - l x + ln(1 + exp(-|l|)), the logarithms of a row taken as the
                    // logarithm of the product of its factors (each in (1, 2]; 2^784 fits f64).
                    let (mut linear, mut product) = (0.0f64, 1.0f64);
                    for (&l, &t) in row.iter().zip(x) {
                        linear += f64::from(l.max(0.0) - l * t);
                        product *= 1.0 + f64::from((-l.abs()).exp());
                    }
                    linear + product.ln()
                }
                Likelihood::Gaussian => row
                    .iter()
                    .zip(x)
                    .map(|(&l, &t)| 0.5 * f64::from(sigmoid(l) - t).powi(2))
                    .sum(),
            })
            .collect()
    }

    /// The ELBO and the importance-weighted NLL of each image of `x` (`(n, pixels)` in
    /// `[0, 1]`) with `k` draws from the posterior per image (`k >= 1`), averaged over the
    /// images. The draws come from `rng`; the decoder runs in eval mode.
    pub fn likelihood<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        k: usize,
        rng: &mut R,
    ) -> LikelihoodReport {
        let k = k.max(1);
        let l = self.cfg.latent;
        let ladder = k_ladder(k);
        let (mu, logvar) = self.posterior(x);
        let mut sums_iw = vec![0.0f64; ladder.len()];
        let (mut recon_sum, mut kl_sum) = (0.0f64, 0.0f64);
        let mut log_w = Vec::with_capacity(k);
        for (i, image) in x.rows().into_iter().enumerate() {
            let (m, lv) = (mu.row(i), logvar.row(i));
            let std: Vec<f32> = lv.iter().map(|&v| (0.5 * v).exp()).collect();
            // KL(N(mu, σ²) || N(0, 1)) = -0.5 Σ (1 + logvar - mu² - σ²).
            kl_sum += -0.5
                * m.iter()
                    .zip(lv)
                    .map(|(&mu, &lv)| {
                        1.0 + f64::from(lv) - f64::from(mu).powi(2) - f64::from(lv).exp()
                    })
                    .sum::<f64>();
            // log q(z|x) - log p(z) does not depend on the decoder; its constant parts
            // -0.5 ln 2π cancel, leaving -0.5 Σ (eps² + logvar) + 0.5 Σ z².
            log_w.clear();
            let mut recon_image = 0.0f64;
            let mut done = 0;
            while done < k {
                let rows = (k - done).min(DECODE_ROWS);
                let mut eps = Array2::zeros((rows, l));
                fill_normal(rng, &mut eps);
                let mut z = eps.clone();
                for mut zr in z.rows_mut() {
                    for ((zv, &mv), &sd) in zr.iter_mut().zip(m).zip(&std) {
                        *zv = mv + *zv * sd;
                    }
                }
                let logits = to_flat(self.dec.infer(z.clone().into_dyn()));
                let nll = self.neg_log_likelihood_rows(&logits, image);
                for ((e, zr), nll) in eps.rows().into_iter().zip(z.rows()).zip(nll) {
                    let log_q_minus_p: f64 = e
                        .iter()
                        .zip(zr)
                        .zip(lv)
                        .map(|((&e, &z), &lv)| {
                            -0.5 * (f64::from(e).powi(2) + f64::from(lv))
                                + 0.5 * f64::from(z).powi(2)
                        })
                        .sum();
                    recon_image += nll;
                    log_w.push(-nll - log_q_minus_p);
                }
                done += rows;
            }
            recon_sum += recon_image / k as f64;
            for (s, &kk) in sums_iw.iter_mut().zip(&ladder) {
                *s += -log_mean_exp(&log_w[..kk]);
            }
        }
        let n = x.nrows().max(1) as f64;
        let (recon, kl) = (recon_sum / n, kl_sum / n);
        LikelihoodReport {
            images: x.nrows(),
            elbo_loss: recon + kl,
            recon,
            kl,
            iw_nll: ladder
                .into_iter()
                .zip(sums_iw.iter().map(|s| s / n))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_ends_in_k() {
        assert_eq!(k_ladder(1), vec![1]);
        assert_eq!(k_ladder(10), vec![1, 10]);
        assert_eq!(k_ladder(5000), vec![1, 10, 100, 1000, 5000]);
    }

    #[test]
    fn log_mean_exp_is_stable() {
        // log((e^1000 + e^1000) / 2) = 1000.
        assert!((log_mean_exp(&[1000.0, 1000.0]) - 1000.0).abs() < 1e-12);
        // log((e^0 + e^ln3) / 2) = log 2.
        assert!((log_mean_exp(&[0.0, 3f64.ln()]) - 2f64.ln()).abs() < 1e-12);
    }
}

#[cfg(test)]
mod trained_tests {
    use std::path::Path;

    use rand::rngs::Xoshiro256PlusPlus;
    use rand::SeedableRng;

    use super::*;
    use crate::data::{self, Batcher};
    use crate::models::{normal, Model, ModelConfig, ModelKind, StepInfo};

    /// A VAE with a 2-D latent trained for a few epochs on the 8x8 digits, and the test images.
    fn trained_vae() -> (Model, Array2<f32>) {
        let csv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/optdigits/digits.csv.gz");
        let splits = data::load(Some(&csv)).expect("the UCI digits in ../shared/data");
        let mut cfg = ModelConfig::defaults(ModelKind::Vae, 8, 8);
        cfg.latent = 2;
        cfg.hidden = vec![64];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut model = Model::new(&cfg, &mut rng).expect("model");
        let mut batches = Batcher::new(&splits.train, 64, 5).expect("batcher");
        for epoch in 0..15 {
            batches.start_epoch(epoch);
            while let Some(b) = batches.next_batch() {
                let info = StepInfo {
                    epoch_progress: epoch as f64,
                };
                model
                    .train_step(b.images, info, &mut rng)
                    .expect("finite losses");
            }
        }
        let test = splits.test.images.clone();
        (model, test)
    }

    #[test]
    fn iw_bound_tightens_and_matches_prior_sampling() {
        let (model, test) = trained_vae();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut vae = model.sampling_vae().expect("a VAE");
        let r = vae.likelihood(test.view(), 100, &mut rng);
        let nll: Vec<f64> = r.iw_nll.iter().map(|&(_, v)| v).collect();
        // Burda et al.: E[L_k] rises with k, so the NLL estimate falls. This 2-D posterior is
        // close to the true one, so the gains are small (hundredths of a nat); averaged over
        // all 299 test images they stand above the Monte Carlo noise up to k = 100, beyond
        // which one run's noise can exceed the expected gain.
        assert!(nll.windows(2).all(|w| w[1] < w[0]), "{:?}", r.iw_nll);
        assert!(r.nll() <= r.elbo_loss, "{} > {}", r.nll(), r.elbo_loss);

        // The same log p(x) by plain Monte Carlo over the prior, feasible in 2-D:
        // p(x) ≈ 1/N Σ p(x | z_j), z_j ~ N(0, I), with 200,000 draws shared by the first 40
        // images.
        let test = test.slice(s![..40, ..]);
        let r = vae.likelihood(test, 100, &mut rng);
        let z = normal(&mut rng, 200_000, 2);
        let logits = to_flat(vae.dec.infer(z.into_dyn()));
        let mut prior_nll = 0.0;
        for image in test.rows() {
            let log_px: Vec<f64> = vae
                .neg_log_likelihood_rows(&logits, image)
                .into_iter()
                .map(|v| -v)
                .collect();
            prior_nll -= log_mean_exp(&log_px);
        }
        prior_nll /= test.nrows() as f64;
        // Both estimate the same -log p(x); the prior estimate is biased upward (Jensen) and
        // noisy where the posterior is narrow, the IW one biased upward by less. A wrong
        // density term (a missing logvar, a sign) moves the IW figure by nats per dimension.
        let gap = r.nll() - prior_nll;
        assert!(
            gap.abs() < 0.1,
            "IW {} vs prior sampling {prior_nll}",
            r.nll()
        );
    }

    #[test]
    fn active_units_of_a_trained_2d_vae() {
        let (model, test) = trained_vae();
        let (active, vars) = model
            .sampling_vae()
            .expect("a VAE")
            .active_units(test.view());
        assert_eq!(vars.len(), 2);
        // A 2-D VAE trained on digits uses both units (variances of order one).
        assert_eq!(active, 2, "{vars:?}");
    }
}
