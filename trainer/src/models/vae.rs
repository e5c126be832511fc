//! Variational autoencoders: the MLP of pytorch/examples `vae` and a convolutional variant.
//!
//! The encoder ends in one Linear layer to `2 * latent` outputs, `[mu, logvar]`; the decoder
//! ends in logits, and the sigmoid is applied by the loss (Bernoulli: BCE with logits) or
//! after it (Gaussian, sampling, export).

use ndarray::{s, Array2, ArrayView2, Axis, Zip};
use rand::Rng;
use tinygen_export::{Graph, Layer, Part, Shape};

use super::{
    adam_step, fill_normal, load_adam, load_seq, save_adam, save_seq, skip_optim, to_flat,
    to_input, Losses, ModelConfig, ModelError, ModelKind, NonFinite, OwnedTensor, StepInfo,
};
use crate::checkpoint::Checkpoint;
use crate::loss::{bce_with_logits, gaussian_kl, Reduction};
use crate::nn::{
    sigmoid, Activation, Conv2d, ConvSpec, ConvTranspose2d, Linear, Mode, Module, Reshape,
    Sequential,
};
use crate::optim::Adam;

/// Names of the values a VAE step and evaluation return (per image, in nats).
pub(super) const NAMES: &[&str] = &["loss", "recon", "kl"];

/// Rows per chunk when evaluating a test set (bounds memory, not results).
const EVAL_CHUNK: usize = 500;

/// A VAE: encoder `x -> [mu, logvar]`, decoder `z -> logits`.
#[derive(Debug, Clone)]
pub struct Vae {
    pub(crate) cfg: ModelConfig,
    /// Encoder, parameters named `enc.*`.
    pub enc: Sequential,
    /// Decoder, parameters named `dec.*` (ends in logits; the sigmoid is separate).
    pub dec: Sequential,
    opt_enc: Adam,
    opt_dec: Adam,
}

fn mlp(name: &str, sizes: &[usize], rng: &mut (impl Rng + ?Sized)) -> Sequential {
    let mut seq = Sequential::new(name);
    for (i, pair) in sizes.windows(2).enumerate() {
        seq.push(
            format!("fc{}", i + 1),
            Linear::new(pair[0], pair[1], true, rng),
        );
        if i + 2 < sizes.len() {
            seq.push(format!("relu{}", i + 1), Activation::Relu);
        }
    }
    seq
}

impl Vae {
    pub(super) fn new<R: Rng + ?Sized>(cfg: &ModelConfig, rng: &mut R) -> Result<Self, ModelError> {
        let (l, p) = (cfg.latent, cfg.pixels());
        let (enc, dec) = match cfg.kind {
            ModelKind::VaeConv => {
                let (c, h4, w4) = (cfg.channels, cfg.height / 4, cfg.width / 4);
                let enc = Sequential::new("enc")
                    .with(
                        "conv1",
                        Conv2d::new(ConvSpec::square(1, c, 4, 2, 1), true, rng),
                    )
                    .with("relu1", Activation::Relu)
                    .with(
                        "conv2",
                        Conv2d::new(ConvSpec::square(c, 2 * c, 4, 2, 1), true, rng),
                    )
                    .with("relu2", Activation::Relu)
                    .with("flatten", Module::Flatten)
                    .with("fc1", Linear::new(2 * c * h4 * w4, 2 * l, true, rng));
                let dec = Sequential::new("dec")
                    .with("fc1", Linear::new(l, 2 * c * h4 * w4, true, rng))
                    .with("relu1", Activation::Relu)
                    .with("reshape", Reshape::chw(2 * c, h4, w4))
                    .with(
                        "deconv1",
                        ConvTranspose2d::new(ConvSpec::square(2 * c, c, 4, 2, 1), true, rng),
                    )
                    .with("relu2", Activation::Relu)
                    .with(
                        "deconv2",
                        ConvTranspose2d::new(ConvSpec::square(c, 1, 4, 2, 1), true, rng),
                    );
                (enc, dec)
            }
            _ => {
                let mut sizes = vec![p];
                sizes.extend(&cfg.hidden);
                sizes.push(2 * l);
                let enc = mlp("enc", &sizes, rng);
                let mut sizes = vec![l];
                sizes.extend(cfg.hidden.iter().rev());
                sizes.push(p);
                let dec = mlp("dec", &sizes, rng);
                (enc, dec)
            }
        };
        let vae = Vae {
            cfg: cfg.clone(),
            enc,
            dec,
            opt_enc: Adam::new(cfg.lr_g).betas(cfg.beta1, 0.999),
            opt_dec: Adam::new(cfg.lr_g).betas(cfg.beta1, 0.999),
        };
        vae.encoder_graph()?;
        vae.decoder_graph()?;
        Ok(vae)
    }

    pub(super) fn conv(&self) -> bool {
        self.cfg.kind == ModelKind::VaeConv
    }

    fn input_shape(&self) -> Shape {
        if self.conv() {
            Shape::chw(1, self.cfg.height, self.cfg.width)
        } else {
            Shape::flat(self.cfg.pixels())
        }
    }

    /// The KL weight at `epoch_progress`: `beta`, ramped linearly over `kl_warmup` epochs.
    pub(super) fn kl_weight(&self, epoch_progress: f64) -> f32 {
        let w = if self.cfg.kl_warmup == 0 {
            1.0
        } else {
            (epoch_progress / self.cfg.kl_warmup as f64).min(1.0)
        };
        self.cfg.beta * w as f32
    }

    /// Encoder forward: `(mu_logvar (batch, 2L), caches)`.
    pub(super) fn encode_train<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> (Array2<f32>, crate::nn::Caches) {
        let (h, w, conv) = (self.cfg.height, self.cfg.width, self.conv());
        let (y, c) = self
            .enc
            .forward(to_input(x.to_owned(), conv, h, w), Mode::Train, rng);
        (to_flat(y), c)
    }

    /// `z = mu + eps * exp(logvar / 2)`; returns `(z, eps, std)`, each `(batch, latent)`.
    pub(super) fn reparameterize<R: Rng + ?Sized>(
        &self,
        h: &Array2<f32>,
        rng: &mut R,
    ) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
        let l = self.cfg.latent;
        let mut eps = Array2::zeros((h.nrows(), l));
        fill_normal(rng, &mut eps);
        let std = h.slice(s![.., l..]).mapv(|lv| (0.5 * lv).exp());
        let mut z = h.slice(s![.., ..l]).to_owned();
        Zip::from(&mut z)
            .and(&eps)
            .and(&std)
            .for_each(|z, &e, &s| *z += e * s);
        (z, eps, std)
    }

    /// Reconstruction loss per image and its gradient with respect to the logits.
    pub(super) fn recon_loss(
        &self,
        logits: &Array2<f32>,
        x: ArrayView2<'_, f32>,
    ) -> (f64, Array2<f32>) {
        match self.cfg.likelihood {
            super::Likelihood::Bernoulli => bce_with_logits(logits.view(), x, Reduction::BatchMean),
            super::Likelihood::Gaussian => {
                // loss = 0.5 * Σ (p - x)² / batch with p = sigmoid(logit);
                // d loss / d logit = (p - x) * p * (1 - p) / batch.
                let inv = 1.0 / logits.nrows().max(1) as f32;
                let mut total = 0.0f64;
                let mut grad = logits.clone();
                Zip::from(&mut grad).and(&x).for_each(|g, &t| {
                    let p = sigmoid(*g);
                    let d = p - t;
                    total += 0.5 * f64::from(d) * f64::from(d);
                    *g = d * p * (1.0 - p) * inv;
                });
                (total * f64::from(inv), grad)
            }
        }
    }

    /// The decoder's train-mode forward on `z`: `(logits (batch, pixels), caches)`.
    pub(super) fn decode_train<R: Rng + ?Sized>(
        &mut self,
        z: Array2<f32>,
        rng: &mut R,
    ) -> (Array2<f32>, crate::nn::Caches) {
        let (y, c) = self.dec.forward(z.into_dyn(), Mode::Train, rng);
        (to_flat(y), c)
    }

    /// `(batch, pixels)` in the decoder's output shape (`(batch, 1, h, w)` for `vae-conv`).
    pub(super) fn image_shaped(&self, d: Array2<f32>) -> ndarray::ArrayD<f32> {
        to_input(d, self.conv(), self.cfg.height, self.cfg.width)
    }

    /// Backward of the encoder given the gradient at `z` plus the KL term; steps nothing.
    pub(super) fn encoder_backward(
        &mut self,
        caches: crate::nn::Caches,
        d_z: &Array2<f32>,
        eps: &Array2<f32>,
        std: &Array2<f32>,
        kl: &crate::loss::GaussianKl,
        kl_weight: f32,
    ) {
        let l = self.cfg.latent;
        let mut d_h = Array2::zeros((d_z.nrows(), 2 * l));
        // z = mu + eps * std, std = exp(logvar / 2): dz/dmu = 1, dz/dlogvar = eps * std / 2.
        Zip::from(d_h.slice_mut(s![.., ..l]))
            .and(d_z)
            .and(&kl.d_mu)
            .for_each(|d, &dz, &dk| *d = dz + kl_weight * dk);
        Zip::from(d_h.slice_mut(s![.., l..]))
            .and(d_z)
            .and(eps)
            .and(std)
            .and(&kl.d_logvar)
            .for_each(|d, &dz, &e, &s, &dk| *d = dz * e * s * 0.5 + kl_weight * dk);
        self.enc.backward_params(caches, d_h.into_dyn());
    }

    /// One step of the ELBO objective.
    pub(super) fn train_step<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        info: StepInfo,
        rng: &mut R,
    ) -> Result<Losses, NonFinite> {
        let l = self.cfg.latent;
        let (h, enc_c) = self.encode_train(x, rng);
        let (z, eps, std) = self.reparameterize(&h, rng);
        let (logits, dec_c) = self.decode_train(z, rng);
        let (recon, d_logits) = self.recon_loss(&logits, x);
        let kl = gaussian_kl(
            h.slice(s![.., ..l]),
            h.slice(s![.., l..]),
            Reduction::BatchMean,
        );
        let w = self.kl_weight(info.epoch_progress);
        let losses = Losses::new(NAMES, &[recon + f64::from(w) * kl.value, recon, kl.value]);
        losses.check()?;
        let d_z = to_flat(self.dec.backward(dec_c, self.image_shaped(d_logits)));
        self.encoder_backward(enc_c, &d_z, &eps, &std, &kl, w);
        self.step_optimizers();
        Ok(losses)
    }

    /// Applies the accumulated encoder and decoder gradients and zeroes them.
    pub(super) fn step_optimizers(&mut self) {
        adam_step(&mut self.opt_enc, &mut self.enc);
        adam_step(&mut self.opt_dec, &mut self.dec);
    }

    /// Eval-mode loss per image (`recon + beta * kl`, z sampled as in training), recon and KL.
    pub(super) fn evaluate<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> Losses {
        let l = self.cfg.latent;
        let (mut recon, mut kl) = (0.0f64, 0.0f64);
        let n = x.nrows();
        for chunk in x.axis_chunks_iter(Axis(0), EVAL_CHUNK) {
            let h = to_flat(self.enc.infer(to_input(
                chunk.to_owned(),
                self.conv(),
                self.cfg.height,
                self.cfg.width,
            )));
            let (z, _, _) = self.reparameterize(&h, rng);
            let logits = to_flat(self.dec.infer(z.into_dyn()));
            let rows = chunk.nrows() as f64;
            recon += self.recon_loss(&logits, chunk).0 * rows;
            kl += gaussian_kl(
                h.slice(s![.., ..l]),
                h.slice(s![.., l..]),
                Reduction::BatchMean,
            )
            .value
                * rows;
        }
        let (recon, kl) = (recon / n.max(1) as f64, kl / n.max(1) as f64);
        Losses::new(NAMES, &[recon + f64::from(self.cfg.beta) * kl, recon, kl])
    }

    /// Eval-mode decoding to pixels in `[0, 1]`: `z` `(n, latent)` -> `(n, pixels)`.
    pub fn decode(&mut self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut y = to_flat(self.dec.infer(z.to_owned().into_dyn()));
        y.mapv_inplace(sigmoid);
        y
    }

    /// Eval-mode reconstruction through the posterior mean.
    pub fn reconstruct(&mut self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let h = to_flat(self.enc.infer(to_input(
            x.to_owned(),
            self.conv(),
            self.cfg.height,
            self.cfg.width,
        )));
        let mu = h.slice(s![.., ..self.cfg.latent]).to_owned();
        self.decode(mu.view())
    }

    /// The decoder as a generator graph: `z` -> image `[1, H, W]` in `[0, 1]`.
    pub fn decoder_graph(&self) -> Result<Graph, ModelError> {
        self.graph_of_decoder(&self.dec)
    }

    /// [`Vae::decoder_graph`] with the weights of `dec` (a copy of the decoder, e.g. its EMA).
    pub(super) fn graph_of_decoder(&self, dec: &Sequential) -> Result<Graph, ModelError> {
        let mut g = dec.to_graph(Part::Generator, Shape::flat(self.cfg.latent))?;
        g.layers.push(Layer::Sigmoid);
        if !self.conv() {
            g.layers.push(Layer::Reshape {
                to: Shape::chw(1, self.cfg.height, self.cfg.width),
            });
        }
        g.validate().map_err(crate::nn::NnError::from)?;
        Ok(g)
    }

    /// The encoder graph: image -> `[mu, logvar]` (`2 * latent` values).
    pub fn encoder_graph(&self) -> Result<Graph, ModelError> {
        Ok(self.enc.to_graph(Part::Encoder, self.input_shape())?)
    }

    pub(super) fn save(&self, out: &mut Vec<OwnedTensor>, steps: &mut Vec<(String, u64)>) {
        save_seq(&self.enc, "", out);
        save_seq(&self.dec, "", out);
        save_adam("enc", &self.opt_enc, out, steps);
        save_adam("dec", &self.opt_dec, out, steps);
    }

    pub(super) fn load(&mut self, ck: &mut Checkpoint, with_optim: bool) -> Result<(), ModelError> {
        load_seq(&mut self.enc, "", ck)?;
        load_seq(&mut self.dec, "", ck)?;
        if with_optim {
            load_adam("enc", &mut self.opt_enc, &mut self.enc, ck)?;
            load_adam("dec", &mut self.opt_dec, &mut self.dec, ck)?;
        } else {
            skip_optim(ck);
        }
        Ok(())
    }
}
