//! VAE-GAN: a VAE whose decoder is also the generator of a GAN.
//!
//! The discriminator learns real images against reconstructions and decoded prior samples;
//! the decoder minimises reconstruction + adversarial weight * generator loss on both, the
//! encoder reconstruction + beta * KL. With `feature_weight` > 0 both also minimise the
//! reconstruction error in the discriminator's last hidden features (Larsen et al. 2016,
//! "Autoencoding beyond pixels using a learned similarity metric"), beside the pixels.

use ndarray::{s, Array2, ArrayView2, Axis, Zip};
use rand::Rng;
use tinygen_export::{Graph, Part, Shape};

use super::gan::mlp_discriminator;
use super::{
    adam_step, ema_update, load_adam, load_seq, mean_prob, normal, save_adam, save_seq, skip_optim,
    to_flat, vstack, Losses, ModelConfig, ModelError, NonFinite, OwnedTensor, StepInfo, Vae,
};
use crate::checkpoint::Checkpoint;
use crate::loss::{gaussian_kl, Reduction};
use crate::nn::{sigmoid, Mode, Sequential};
use crate::optim::Adam;

/// Names of the values a VAE-GAN step and evaluation return.
pub(super) const NAMES: &[&str] = &[
    "loss", "recon", "kl", "d_loss", "g_loss", "d_real", "d_fake",
];

/// Rows per chunk when evaluating (bounds memory, not results).
const EVAL_CHUNK: usize = 500;

/// A [`Vae`] and an MLP discriminator.
#[derive(Debug, Clone)]
pub struct VaeGan {
    /// The VAE (its decoder is the generator).
    pub vae: Vae,
    /// Discriminator, parameters `disc.*`.
    pub disc: Sequential,
    /// Exponential moving average of the decoder (`ema.dec.*`), if `--ema` is on: samples,
    /// the exported generator and the likelihood figures use it.
    pub dec_ema: Option<Sequential>,
    opt_d: Adam,
}

/// `d_logit = d_p * p * (1 - p)` for `p = sigmoid(logit)`, added into `acc`.
fn add_through_sigmoid(acc: &mut Array2<f32>, d_p: ArrayView2<'_, f32>, p: &Array2<f32>) {
    Zip::from(acc)
        .and(d_p)
        .and(p)
        .for_each(|a, &d, &p| *a += d * p * (1.0 - p));
}

/// Gradient of `weight * 0.5 * Σ (f - t)²` per image (batch mean) over the first `t.nrows()`
/// rows of `f` (the reconstructions); zero on the rows after them (the prior samples, which
/// have no target).
fn feature_reconstruction_grad(
    f: ArrayView2<'_, f32>,
    t: ArrayView2<'_, f32>,
    weight: f32,
) -> Array2<f32> {
    let b = t.nrows();
    let mut d = Array2::zeros(f.dim());
    let scale = weight / b.max(1) as f32;
    Zip::from(d.slice_mut(s![..b, ..]))
        .and(f.slice(s![..b, ..]))
        .and(t)
        .for_each(|d, &f, &t| *d = scale * (f - t));
    d
}

impl VaeGan {
    pub(super) fn new<R: Rng + ?Sized>(cfg: &ModelConfig, rng: &mut R) -> Result<Self, ModelError> {
        let vae = Vae::new(cfg, rng)?;
        let disc = mlp_discriminator(cfg.pixels(), &cfg.d_hidden, rng);
        let m = VaeGan {
            dec_ema: cfg.ema.map(|_| vae.dec.clone()),
            vae,
            disc,
            opt_d: Adam::new(cfg.lr_d).betas(cfg.beta1, 0.999),
        };
        m.discriminator_graph()?;
        Ok(m)
    }

    pub(super) fn train_step<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        info: StepInfo,
        rng: &mut R,
    ) -> Result<Losses, NonFinite> {
        let cfg = self.vae.cfg.clone();
        let (b, l) = (x.nrows(), cfg.latent);
        let loss = cfg.loss.gan_loss();
        let (h, enc_c) = self.vae.encode_train(x, rng);
        let (z, eps, std) = self.vae.reparameterize(&h, rng);
        let (logits, dec_c) = self.vae.decode_train(z, rng);
        let (logits_p, dec_cp) = self.vae.decode_train(normal(rng, b, l), rng);
        let x_rec = logits.mapv(sigmoid);
        let x_p = logits_p.mapv(sigmoid);
        let fake = vstack(x_rec.view(), x_p.view());

        // Discriminator: real against reconstructions and prior samples.
        let (r, rc) = self.disc.forward(x.to_owned().into_dyn(), Mode::Train, rng);
        let (f, fc) = self.disc.forward(fake.clone().into_dyn(), Mode::Train, rng);
        let (r, f) = (to_flat(r), to_flat(f));
        let dl = loss.discriminator(r.view(), f.view(), 1.0 - cfg.label_smoothing);
        let (d_loss, d_real, d_fake) = (dl.value, mean_prob(&r), mean_prob(&f));
        Losses::new(&["d_loss"], &[d_loss]).check()?;
        self.disc.backward_params(rc, dl.d_real.into_dyn());
        self.disc.backward_params(fc, dl.d_fake.into_dyn());
        adam_step(&mut self.opt_d, &mut self.disc);

        // Encoder and decoder: the generator loss on reconstructions and prior samples, and
        // with `feature_weight` the reconstruction in the discriminator's last hidden features
        // (Larsen et al. 2016), whose target (the real image's features) is a constant.
        // The tap (and its copy of the features) only when the feature term is on.
        let tap = self.disc.layers.len() - 2;
        let (f2, feat, fc2) = if cfg.feature_weight > 0.0 {
            let (y, f, c) = self
                .disc
                .forward_tap(fake.into_dyn(), tap, Mode::Train, rng);
            (y, Some(f), c)
        } else {
            let (y, c) = self.disc.forward(fake.into_dyn(), Mode::Train, rng);
            (y, None, c)
        };
        let (g_loss, mut d_out) = loss.generator(to_flat(f2).view());
        d_out *= cfg.adv_weight;
        let (recon, mut d_logits) = self.vae.recon_loss(&logits, x);
        let kl = gaussian_kl(
            h.slice(s![.., ..l]),
            h.slice(s![.., l..]),
            Reduction::BatchMean,
        );
        let w = self.vae.kl_weight(info.epoch_progress);
        let total = recon + f64::from(w) * kl.value + f64::from(cfg.adv_weight) * g_loss;
        let losses = Losses::new(
            NAMES,
            &[total, recon, kl.value, d_loss, g_loss, d_real, d_fake],
        );
        losses.check()?;
        // The feature term shapes the gradients only; the reported losses leave it out.
        let d_img = to_flat(match feat {
            Some(feat) => {
                let target = to_flat(self.disc.infer_tap(x.to_owned().into_dyn(), tap));
                let d_feat = feature_reconstruction_grad(
                    to_flat(feat).view(),
                    target.view(),
                    cfg.feature_weight,
                );
                self.disc
                    .backward_tap(fc2, d_out.into_dyn(), tap, d_feat.into_dyn())
            }
            None => self.disc.backward(fc2, d_out.into_dyn()),
        });
        // The decoder's losses must not train the discriminator.
        self.disc.zero_grad();
        add_through_sigmoid(&mut d_logits, d_img.slice(s![..b, ..]), &x_rec);
        let mut d_logits_p = Array2::zeros(logits_p.dim());
        add_through_sigmoid(&mut d_logits_p, d_img.slice(s![b.., ..]), &x_p);
        let d_z = to_flat(
            self.vae
                .dec
                .backward(dec_c, self.vae.image_shaped(d_logits)),
        );
        self.vae
            .dec
            .backward_params(dec_cp, self.vae.image_shaped(d_logits_p));
        self.vae.encoder_backward(enc_c, &d_z, &eps, &std, &kl, w);
        self.vae.step_optimizers();
        if let (Some(ema), Some(decay)) = (self.dec_ema.as_mut(), cfg.ema) {
            ema_update(ema, &self.vae.dec, decay);
        }
        Ok(losses)
    }

    /// The VAE's test metrics, then the discriminator's (eval mode) on test images against
    /// their reconstructions and decoded prior samples.
    pub(super) fn evaluate<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> Losses {
        let v = self.vae.evaluate(x, rng);
        let loss = self.vae.cfg.loss.gan_loss();
        let mut sums = [0.0f64; 4];
        for chunk in x.axis_chunks_iter(Axis(0), EVAL_CHUNK) {
            let rec = self.vae.reconstruct(chunk);
            let prior = self
                .vae
                .decode(normal(rng, chunk.nrows(), self.vae.cfg.latent).view());
            let fake = vstack(rec.view(), prior.view());
            let r = to_flat(self.disc.infer(chunk.to_owned().into_dyn()));
            let f = to_flat(self.disc.infer(fake.into_dyn()));
            let dl = loss.discriminator(r.view(), f.view(), 1.0).value;
            let gl = loss.generator(f.view()).0;
            let rows = chunk.nrows() as f64;
            for (s, val) in sums.iter_mut().zip([dl, gl, mean_prob(&r), mean_prob(&f)]) {
                *s += val * rows;
            }
        }
        let n = x.nrows().max(1) as f64;
        let [dl, gl, dr, df] = sums.map(|s| s / n);
        let total = v.values[0] + f64::from(self.vae.cfg.adv_weight) * gl;
        Losses::new(NAMES, &[total, v.values[1], v.values[2], dl, gl, dr, df])
    }

    /// A copy of the VAE that samples, exports and is measured: the trained one, with the EMA
    /// decoder in place of its decoder when EMA is on.
    pub fn sampling_vae(&self) -> Vae {
        let mut v = self.vae.clone();
        if let Some(ema) = &self.dec_ema {
            v.dec = ema.clone();
        }
        v
    }

    /// Eval-mode generation through the sampling decoder: `z` -> `(n, pixels)` in `[0, 1]`.
    pub fn generate(&mut self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        match self.dec_ema.as_mut() {
            None => self.vae.decode(z),
            Some(ema) => {
                let mut y = to_flat(ema.infer(z.to_owned().into_dyn()));
                y.mapv_inplace(sigmoid);
                y
            }
        }
    }

    /// The generator graph: the decoder (EMA weights when EMA is on) and its sigmoid.
    pub fn generator_graph(&self) -> Result<Graph, ModelError> {
        self.vae
            .graph_of_decoder(self.dec_ema.as_ref().unwrap_or(&self.vae.dec))
    }

    /// The discriminator graph: image (flat) -> one logit.
    pub fn discriminator_graph(&self) -> Result<Graph, ModelError> {
        Ok(self
            .disc
            .to_graph(Part::Discriminator, Shape::flat(self.vae.cfg.pixels()))?)
    }

    pub(super) fn save(&self, out: &mut Vec<OwnedTensor>, steps: &mut Vec<(String, u64)>) {
        self.vae.save(out, steps);
        save_seq(&self.disc, "", out);
        if let Some(ema) = &self.dec_ema {
            save_seq(ema, "ema.", out);
        }
        save_adam("disc", &self.opt_d, out, steps);
    }

    pub(super) fn load(&mut self, ck: &mut Checkpoint, with_optim: bool) -> Result<(), ModelError> {
        self.vae.load(ck, with_optim)?;
        load_seq(&mut self.disc, "", ck)?;
        if let Some(ema) = self.dec_ema.as_mut() {
            load_seq(ema, "ema.", ck)?;
        }
        if with_optim {
            load_adam("disc", &mut self.opt_d, &mut self.disc, ck)?;
        } else {
            skip_optim(ck);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The feature gradient is that of `weight * 0.5 * Σ (f - t)² / b` on the first `b` rows
    /// (the reconstructions) and zero on the prior samples after them.
    #[test]
    fn feature_reconstruction_gradient() {
        let f = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 * 0.25 - 1.0);
        let t = Array2::from_shape_fn((2, 3), |(i, j)| (i + j) as f32 * 0.5);
        let loss = |f: &Array2<f32>| -> f64 {
            let diff = &f.slice(s![..2, ..]) - &t;
            1.5 * 0.5
                * diff
                    .iter()
                    .map(|&d| f64::from(d) * f64::from(d))
                    .sum::<f64>()
                / 2.0
        };
        let d = feature_reconstruction_grad(f.view(), t.view(), 1.5);
        for ((i, j), &g) in d.indexed_iter() {
            let h = 1e-2f32;
            let (mut p, mut m) = (f.clone(), f.clone());
            p[[i, j]] += h;
            m[[i, j]] -= h;
            let num = (loss(&p) - loss(&m)) / f64::from(p[[i, j]] - m[[i, j]]);
            assert!((num - f64::from(g)).abs() < 1e-4, "[{i}, {j}] {num} vs {g}");
            if i >= 2 {
                assert_eq!(g, 0.0);
            }
        }
    }
}
