//! GANs: an MLP GAN with BatchNorm in the generator, and DCGAN.

use ndarray::{Array2, ArrayD, ArrayView2, Axis};
use rand::Rng;
use tinygen_export::{Graph, Layer, Part, Shape};

use super::{
    adam_step, ema_update, load_adam, load_seq, mean_prob, normal, save_adam, save_seq, skip_optim,
    to_flat, to_input, Losses, ModelConfig, ModelError, ModelKind, NonFinite, OwnedTensor,
};
use crate::checkpoint::Checkpoint;
use crate::init::{init_sequential, Init};
use crate::nn::{
    Activation, BatchNorm, Conv2d, ConvSpec, ConvTranspose2d, Linear, Mode, Module, Reshape,
    Sequential,
};
use crate::optim::Adam;

/// Names of the values a GAN step and evaluation return: the discriminator's and the
/// generator's loss, and the discriminator's mean probability on real and generated images.
pub(super) const NAMES: &[&str] = &["d_loss", "g_loss", "d_real", "d_fake"];

/// Rows per chunk when evaluating (bounds memory, not results).
const EVAL_CHUNK: usize = 500;

/// LeakyReLU slope used throughout.
pub(super) const LEAKY: f32 = 0.2;

/// A generator and a discriminator with their optimisers, and an optional EMA generator.
#[derive(Debug, Clone)]
pub struct Gan {
    pub(crate) cfg: ModelConfig,
    /// Generator, parameters `gen.*`.
    pub gen: Sequential,
    /// Discriminator, parameters `disc.*`.
    pub disc: Sequential,
    /// Exponential moving average of the generator (`ema.gen.*`), if `--ema` is on.
    pub gen_ema: Option<Sequential>,
    opt_g: Adam,
    opt_d: Adam,
}

/// An MLP discriminator `pixels -> hidden... -> 1` with LeakyReLU 0.2.
pub(super) fn mlp_discriminator<R: Rng + ?Sized>(
    pixels: usize,
    hidden: &[usize],
    rng: &mut R,
) -> Sequential {
    let mut d = Sequential::new("disc");
    let mut prev = pixels;
    for (i, &h) in hidden.iter().enumerate() {
        d.push(format!("fc{}", i + 1), Linear::new(prev, h, true, rng));
        d.push(format!("lrelu{}", i + 1), Activation::LeakyRelu(LEAKY));
        prev = h;
    }
    d.push(
        format!("fc{}", hidden.len() + 1),
        Linear::new(prev, 1, true, rng),
    );
    d
}

impl Gan {
    pub(super) fn new<R: Rng + ?Sized>(cfg: &ModelConfig, rng: &mut R) -> Result<Self, ModelError> {
        let (l, p) = (cfg.latent, cfg.pixels());
        let (gen, disc) = if cfg.kind == ModelKind::Dcgan {
            let (c, h4, w4) = (cfg.channels, cfg.height / 4, cfg.width / 4);
            let base = 2 * c * h4 * w4;
            // BatchNorm1d on the Dense output (before the reshape), as in the Keras DCGAN
            // recipe, so that it folds into the Dense layer on export.
            let mut gen = Sequential::new("gen")
                .with("fc1", Linear::new(l, base, false, rng))
                .with("bn1", Module::BatchNorm1d(BatchNorm::new(base)))
                .with("relu1", Activation::Relu)
                .with("reshape", Reshape::chw(2 * c, h4, w4))
                .with(
                    "deconv1",
                    ConvTranspose2d::new(ConvSpec::square(2 * c, c, 4, 2, 1), false, rng),
                )
                .with("bn2", Module::BatchNorm2d(BatchNorm::new(c)))
                .with("relu2", Activation::Relu)
                .with(
                    "deconv2",
                    ConvTranspose2d::new(ConvSpec::square(c, 1, 4, 2, 1), true, rng),
                )
                .with("tanh", Activation::Tanh);
            let mut disc = Sequential::new("disc")
                .with(
                    "conv1",
                    Conv2d::new(ConvSpec::square(1, c, 4, 2, 1), true, rng),
                )
                .with("lrelu1", Activation::LeakyRelu(LEAKY))
                .with(
                    "conv2",
                    Conv2d::new(ConvSpec::square(c, 2 * c, 4, 2, 1), false, rng),
                )
                .with("bn2", Module::BatchNorm2d(BatchNorm::new(2 * c)))
                .with("lrelu2", Activation::LeakyRelu(LEAKY))
                .with("flatten", Module::Flatten)
                .with("fc1", Linear::new(base, 1, true, rng));
            init_sequential(&mut gen, Init::Dcgan, rng);
            init_sequential(&mut disc, Init::Dcgan, rng);
            (gen, disc)
        } else {
            let mut gen = Sequential::new("gen");
            let mut prev = l;
            for (i, &h) in cfg.hidden.iter().enumerate() {
                gen.push(format!("fc{}", i + 1), Linear::new(prev, h, true, rng));
                gen.push(
                    format!("bn{}", i + 1),
                    Module::BatchNorm1d(BatchNorm::new(h)),
                );
                gen.push(format!("lrelu{}", i + 1), Activation::LeakyRelu(LEAKY));
                prev = h;
            }
            gen.push(
                format!("fc{}", cfg.hidden.len() + 1),
                Linear::new(prev, p, true, rng),
            );
            gen.push("tanh", Activation::Tanh);
            (gen, mlp_discriminator(p, &cfg.d_hidden, rng))
        };
        let gan = Gan {
            cfg: cfg.clone(),
            gen_ema: cfg.ema.map(|_| gen.clone()),
            gen,
            disc,
            opt_g: Adam::new(cfg.lr_g).betas(cfg.beta1, 0.999),
            opt_d: Adam::new(cfg.lr_d).betas(cfg.beta1, 0.999),
        };
        gan.generator_graph()?;
        gan.discriminator_graph()?;
        Ok(gan)
    }

    fn conv(&self) -> bool {
        self.cfg.kind == ModelKind::Dcgan
    }

    fn input_shape(&self) -> Shape {
        if self.conv() {
            Shape::chw(1, self.cfg.height, self.cfg.width)
        } else {
            Shape::flat(self.cfg.pixels())
        }
    }

    fn real_input(&self, x: ArrayView2<'_, f32>) -> ArrayD<f32> {
        to_input(x.to_owned(), self.conv(), self.cfg.height, self.cfg.width)
    }

    /// One discriminator step per `d_steps` (each with fresh fakes, the same real batch), then
    /// one generator step on the last fakes.
    pub(super) fn train_step<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> Result<Losses, NonFinite> {
        let b = x.nrows();
        let loss = self.cfg.loss.gan_loss();
        let real_label = 1.0 - self.cfg.label_smoothing;
        let real = self.real_input(x);
        let mut last = None;
        let (mut d_loss, mut d_real, mut d_fake) = (0.0, 0.0, 0.0);
        for _ in 0..self.cfg.d_steps {
            let z = normal(rng, b, self.cfg.latent);
            let (fake, g_cache) = self.gen.forward(z.into_dyn(), Mode::Train, rng);
            let (r_logits, r_c) = self.disc.forward(real.clone(), Mode::Train, rng);
            let (f_logits, f_c) = self.disc.forward(fake.clone(), Mode::Train, rng);
            let (r_logits, f_logits) = (to_flat(r_logits), to_flat(f_logits));
            let dl = loss.discriminator(r_logits.view(), f_logits.view(), real_label);
            (d_loss, d_real, d_fake) = (dl.value, mean_prob(&r_logits), mean_prob(&f_logits));
            Losses::new(&["d_loss"], &[d_loss]).check()?;
            self.disc.backward_params(r_c, dl.d_real.into_dyn());
            self.disc.backward_params(f_c, dl.d_fake.into_dyn());
            adam_step(&mut self.opt_d, &mut self.disc);
            last = Some((fake, g_cache));
        }
        let (fake, g_cache) = last.expect("d_steps >= 1 (validated)");
        let (f_logits, f_c) = self.disc.forward(fake, Mode::Train, rng);
        let (g_loss, d_out) = loss.generator(to_flat(f_logits).view());
        let losses = Losses::new(NAMES, &[d_loss, g_loss, d_real, d_fake]);
        losses.check()?;
        let d_fake_img = self.disc.backward(f_c, d_out.into_dyn());
        // The generator's loss must not train the discriminator.
        self.disc.zero_grad();
        self.gen.backward_params(g_cache, d_fake_img);
        adam_step(&mut self.opt_g, &mut self.gen);
        if let (Some(ema), Some(decay)) = (self.gen_ema.as_mut(), self.cfg.ema) {
            ema_update(ema, &self.gen, decay);
        }
        Ok(losses)
    }

    /// Eval-mode losses and probabilities on test images against fresh fakes (from the
    /// trained generator, not the EMA), averaged over the set.
    pub(super) fn evaluate<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> Losses {
        let loss = self.cfg.loss.gan_loss();
        let mut sums = [0.0f64; 4];
        for chunk in x.axis_chunks_iter(Axis(0), EVAL_CHUNK) {
            let z = normal(rng, chunk.nrows(), self.cfg.latent);
            let fake = self.gen.infer(z.into_dyn());
            let r = to_flat(self.disc.infer(self.real_input(chunk)));
            let f = to_flat(self.disc.infer(fake));
            let dl = loss.discriminator(r.view(), f.view(), 1.0).value;
            let gl = loss.generator(f.view()).0;
            let rows = chunk.nrows() as f64;
            for (s, v) in sums.iter_mut().zip([dl, gl, mean_prob(&r), mean_prob(&f)]) {
                *s += v * rows;
            }
        }
        let n = x.nrows().max(1) as f64;
        Losses::new(NAMES, &sums.map(|s| s / n))
    }

    /// The generator used for samples and export: the EMA one when EMA is on.
    pub fn sampling_generator(&self) -> &Sequential {
        self.gen_ema.as_ref().unwrap_or(&self.gen)
    }

    /// Eval-mode generation: `z` `(n, latent)` -> `(n, pixels)` in `[-1, 1]`.
    pub fn generate(&mut self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        let g = self.gen_ema.as_mut().unwrap_or(&mut self.gen);
        to_flat(g.infer(z.to_owned().into_dyn()))
    }

    /// The generator graph (EMA weights when EMA is on): `z` -> image `[1, H, W]`.
    pub fn generator_graph(&self) -> Result<Graph, ModelError> {
        let mut g = self
            .sampling_generator()
            .to_graph(Part::Generator, Shape::flat(self.cfg.latent))?;
        if !self.conv() {
            g.layers.push(Layer::Reshape {
                to: Shape::chw(1, self.cfg.height, self.cfg.width),
            });
            g.validate().map_err(crate::nn::NnError::from)?;
        }
        Ok(g)
    }

    /// The discriminator graph: image -> one logit.
    pub fn discriminator_graph(&self) -> Result<Graph, ModelError> {
        Ok(self
            .disc
            .to_graph(Part::Discriminator, self.input_shape())?)
    }

    pub(super) fn save(&self, out: &mut Vec<OwnedTensor>, steps: &mut Vec<(String, u64)>) {
        save_seq(&self.gen, "", out);
        save_seq(&self.disc, "", out);
        if let Some(ema) = &self.gen_ema {
            save_seq(ema, "ema.", out);
        }
        save_adam("gen", &self.opt_g, out, steps);
        save_adam("disc", &self.opt_d, out, steps);
    }

    pub(super) fn load(&mut self, ck: &mut Checkpoint, with_optim: bool) -> Result<(), ModelError> {
        load_seq(&mut self.gen, "", ck)?;
        load_seq(&mut self.disc, "", ck)?;
        if let Some(ema) = self.gen_ema.as_mut() {
            load_seq(ema, "ema.", ck)?;
        }
        if with_optim {
            load_adam("gen", &mut self.opt_g, &mut self.gen, ck)?;
            load_adam("disc", &mut self.opt_d, &mut self.disc, ck)?;
        } else {
            skip_optim(ck);
        }
        Ok(())
    }
}
