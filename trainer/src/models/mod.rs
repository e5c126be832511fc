//! The generative models: `vae`, `vae-conv`, `gan`, `dcgan`, `vaegan` and `flow`.
//!
//! A [`Model`] owns its networks (as [`Sequential`]s) and their optimisers. It takes one training
//! step on a batch ([`Model::train_step`]), evaluates a test set ([`Model::evaluate`]), generates
//! images from latents in eval mode ([`Model::generate`]), lowers its parts to the export graph
//! ([`Model::graph`]) and saves or restores everything a checkpoint holds.
//!
//! Parameter names follow a PyTorch module with attributes `enc`, `dec`, `gen`, `disc`
//! (`dec.fc1.weight`), so the safetensors checkpoint loads into such a module by name.

mod flow;
mod gan;
pub mod likelihood;
mod vae;
mod vaegan;

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use tinygen_export::dag::Dag;
use tinygen_export::{Graph, Part};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::data::PixelRange;
use crate::loss::GanLoss;
use crate::nn::{NnError, Sequential};
use crate::optim::{Adam, OptimState, Optimizer, StateTensor};

pub use flow::Flow;
pub use gan::Gan;
pub use vae::Vae;
pub use vaegan::VaeGan;

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    /// MLP variational autoencoder (pytorch/examples `vae`).
    #[serde(rename = "vae")]
    Vae,
    /// Convolutional variational autoencoder.
    #[serde(rename = "vae-conv")]
    VaeConv,
    /// MLP GAN with BatchNorm in the generator.
    #[serde(rename = "gan")]
    Gan,
    /// DCGAN (pytorch/examples `dcgan`, scaled to 28x28).
    #[serde(rename = "dcgan")]
    Dcgan,
    /// VAE whose decoder is also a GAN generator.
    #[serde(rename = "vaegan")]
    VaeGan,
    /// RealNVP normalizing flow (exact likelihood).
    #[serde(rename = "flow")]
    Flow,
}

impl ModelKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Vae,
        ModelKind::VaeConv,
        ModelKind::Gan,
        ModelKind::Dcgan,
        ModelKind::VaeGan,
        ModelKind::Flow,
    ];

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Vae => "vae",
            ModelKind::VaeConv => "vae-conv",
            ModelKind::Gan => "gan",
            ModelKind::Dcgan => "dcgan",
            ModelKind::VaeGan => "vaegan",
            ModelKind::Flow => "flow",
        }
    }

    /// True for the models trained with a variational (ELBO) loss.
    pub fn is_vae(self) -> bool {
        matches!(
            self,
            ModelKind::Vae | ModelKind::VaeConv | ModelKind::VaeGan
        )
    }

    /// Epochs of the model's default recipe: 20 for `dcgan` (at 10 its samples starve one
    /// class on MNIST; BENCHMARKS.md), 10 for the others.
    pub fn default_epochs(self) -> u64 {
        match self {
            ModelKind::Dcgan => 20,
            _ => 10,
        }
    }

    /// True for the models with a discriminator.
    pub fn has_discriminator(self) -> bool {
        matches!(self, ModelKind::Gan | ModelKind::Dcgan | ModelKind::VaeGan)
    }

    /// The range the model's output (and so its training data) lies in: `[0, 1]` for the VAEs
    /// (sigmoid) and the flow (8-bit pixels), `[-1, 1]` for the GANs (tanh).
    pub fn pixel_range(self) -> PixelRange {
        if self.is_vae() || self == ModelKind::Flow {
            PixelRange::ZeroOne
        } else {
            PixelRange::MinusOneOne
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown model {s:?}; expected one of vae, vae-conv, gan, dcgan, vaegan, flow"
                )
            })
    }
}

/// The VAE's reconstruction likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Bernoulli: binary cross-entropy on the decoder's logits, summed over pixels.
    #[default]
    Bernoulli,
    /// Gaussian with unit variance: `0.5 * (sigmoid(logits) - x)²` summed over pixels.
    Gaussian,
}

impl FromStr for Likelihood {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bernoulli" => Ok(Likelihood::Bernoulli),
            "gaussian" => Ok(Likelihood::Gaussian),
            _ => Err(format!(
                "unknown likelihood {s:?}; expected bernoulli or gaussian"
            )),
        }
    }
}

/// The adversarial loss (see [`GanLoss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvLoss {
    /// Generator maximises `log D(G(z))`.
    #[default]
    Nonsaturating,
    /// Generator minimises `log(1 - D(G(z)))`.
    Minimax,
    /// Least squares (LSGAN).
    Lsgan,
    /// Hinge.
    Hinge,
}

impl AdvLoss {
    /// The loss functions.
    pub fn gan_loss(self) -> GanLoss {
        match self {
            AdvLoss::Nonsaturating => GanLoss::NonSaturating,
            AdvLoss::Minimax => GanLoss::Minimax,
            AdvLoss::Lsgan => GanLoss::LeastSquares,
            AdvLoss::Hinge => GanLoss::Hinge,
        }
    }
}

impl FromStr for AdvLoss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nonsaturating" => Ok(AdvLoss::Nonsaturating),
            "minimax" => Ok(AdvLoss::Minimax),
            "lsgan" => Ok(AdvLoss::Lsgan),
            "hinge" => Ok(AdvLoss::Hinge),
            _ => Err(format!(
                "unknown GAN loss {s:?}; expected nonsaturating, minimax, lsgan or hinge"
            )),
        }
    }
}

/// Architecture and loss settings of a model: everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which model.
    pub kind: ModelKind,
    /// Image height (from the data set).
    pub height: usize,
    /// Image width (from the data set).
    pub width: usize,
    /// Latent dimension.
    pub latent: usize,
    /// Hidden widths of the MLP parts: the VAE encoder (the decoder mirrors it) or the GAN
    /// generator. For `vae-conv` and `dcgan` unused.
    pub hidden: Vec<usize>,
    /// Hidden widths of an MLP discriminator (`gan`, `vaegan`).
    pub d_hidden: Vec<usize>,
    /// Channels of the first convolution (`vae-conv`, `dcgan`); the second has twice as many.
    pub channels: usize,
    /// Weight of the KL term (VAEs).
    pub beta: f32,
    /// Epochs over which the KL weight rises linearly from 0 to `beta` (0: none).
    pub kl_warmup: u64,
    /// Reconstruction likelihood (VAEs).
    pub likelihood: Likelihood,
    /// Adversarial loss (GANs, VAE-GAN).
    pub loss: AdvLoss,
    /// One-sided label smoothing: real labels are `1 - label_smoothing`.
    pub label_smoothing: f32,
    /// Learning rate of the generator / decoder (and a VAE's encoder).
    pub lr_g: f32,
    /// Learning rate of the discriminator.
    pub lr_d: f32,
    /// Adam's beta1.
    pub beta1: f32,
    /// Discriminator steps per generator step.
    pub d_steps: usize,
    /// Decay of the exponential moving average of the generator's weights (none if `None`).
    pub ema: Option<f32>,
    /// Weight of the generator's adversarial loss in the VAE-GAN decoder loss.
    pub adv_weight: f32,
    /// VAE-GAN: weight of the reconstruction error measured in the discriminator's last hidden
    /// features (0: pixels only). Absent from run configs written before it existed.
    #[serde(default)]
    pub feature_weight: f32,
    /// Flow: coupling layers (each with an actnorm; the hidden width is `hidden[0]`). Absent
    /// from run configs written before the flow existed.
    #[serde(default = "default_couplings")]
    pub couplings: usize,
    /// Flow: `α` of the logit transform `logit(α + (1 - 2α) x)`, in `(0, 0.5)`.
    #[serde(default = "default_logit_alpha")]
    pub logit_alpha: f32,
    /// Flow: the temperature of the second sample grid (`z ~ N(0, T^2)`; the first is at 1).
    #[serde(default = "default_temperature")]
    pub temperature: f32,
}

fn default_couplings() -> usize {
    8
}

fn default_logit_alpha() -> f32 {
    0.05
}

fn default_temperature() -> f32 {
    0.7
}

impl ModelConfig {
    /// The recipe defaults for `kind` on `height` x `width` images.
    pub fn defaults(kind: ModelKind, height: usize, width: usize) -> Self {
        let gan = matches!(kind, ModelKind::Gan | ModelKind::Dcgan | ModelKind::VaeGan);
        ModelConfig {
            kind,
            height,
            width,
            latent: match kind {
                ModelKind::Gan | ModelKind::Dcgan => 100,
                // A flow's latent is the image itself.
                ModelKind::Flow => height * width,
                _ => 20,
            },
            // vaegan: two hidden layers, which the adversarial term turns into a large gain
            // in FD and recall over the same VAE (BENCHMARKS.md, "vaegan").
            hidden: match kind {
                ModelKind::Gan => vec![256, 512, 1024],
                ModelKind::VaeGan => vec![512, 512],
                ModelKind::Flow => vec![256],
                _ => vec![400],
            },
            d_hidden: vec![512, 256],
            channels: 32,
            beta: 1.0,
            kl_warmup: 0,
            likelihood: Likelihood::Bernoulli,
            loss: AdvLoss::Nonsaturating,
            label_smoothing: 0.0,
            // The VAE-GAN's encoder and decoder learn at the VAE's rate, its discriminator
            // at the GAN's.
            lr_g: if matches!(kind, ModelKind::Gan | ModelKind::Dcgan) {
                2e-4
            } else {
                1e-3
            },
            lr_d: 2e-4,
            beta1: if gan { 0.5 } else { 0.9 },
            d_steps: 1,
            ema: None,
            adv_weight: 1.0,
            feature_weight: 0.0,
            couplings: default_couplings(),
            logit_alpha: default_logit_alpha(),
            temperature: default_temperature(),
        }
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Checks the settings a model needs, with a message a user can act on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: String| Err(ModelError::BadConfig(what));
        if self.height == 0 || self.width == 0 {
            return bad(format!(
                "image size {}x{} is empty",
                self.height, self.width
            ));
        }
        if self.latent == 0 {
            return bad("--latent must be at least 1".into());
        }
        if self.hidden.contains(&0) || self.d_hidden.contains(&0) {
            return bad("hidden widths must be at least 1".into());
        }
        if self.kind == ModelKind::Flow {
            self.validate_flow()?;
        }
        if self.channels == 0 {
            return bad("--channels must be at least 1".into());
        }
        if matches!(self.kind, ModelKind::VaeConv | ModelKind::Dcgan)
            && (!self.height.is_multiple_of(4) || !self.width.is_multiple_of(4))
        {
            return bad(format!(
                "{} needs image sides divisible by 4 (two stride-2 layers), got {}x{}",
                self.kind, self.height, self.width
            ));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return bad(format!("--beta must be finite and >= 0, got {}", self.beta));
        }
        for (flag, lr) in [("--lr-g", self.lr_g), ("--lr-d", self.lr_d)] {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(format!(
                    "{flag} (or --lr) must be a positive number, got {lr}"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) {
            return bad(format!("Adam beta1 must be in [0, 1), got {}", self.beta1));
        }
        if self.d_steps == 0 {
            return bad("--d-steps must be at least 1".into());
        }
        if let Some(d) = self.ema {
            if !(0.0..1.0).contains(&d) {
                return bad(format!(
                    "--ema must be a decay in [0, 1), e.g. 0.999; got {d}"
                ));
            }
        }
        if !(self.feature_weight.is_finite() && self.feature_weight >= 0.0) {
            return bad(format!(
                "--feature-weight must be finite and >= 0, got {}",
                self.feature_weight
            ));
        }
        if !(self.adv_weight.is_finite() && self.adv_weight >= 0.0) {
            return bad(format!(
                "--adv-weight must be finite and >= 0, got {}",
                self.adv_weight
            ));
        }
        Ok(())
    }
}

/// Errors from building, lowering or restoring a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A setting is out of range.
    #[error("{0}")]
    BadConfig(String),
    /// The model has no such part.
    #[error("a {kind} model has no {part:?} part")]
    NoSuchPart {
        /// The model.
        kind: ModelKind,
        /// The part asked for.
        part: Part,
    },
    /// The part is a graph with branches (the flow's generator): see [`Model::dag`].
    #[error("the {kind} model's {part:?} has branches; lower it with Model::dag")]
    NotAChain {
        /// The model.
        kind: ModelKind,
        /// The part asked for.
        part: Part,
    },
    /// The networks do not fit together (a bug or an impossible size).
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A checkpoint does not fit the model.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// An optimiser state does not fit the parameters.
    #[error("optimiser state in checkpoint: {0}")]
    Optim(#[from] crate::optim::OptimError),
}

/// A loss, NaN or infinite, caught before it reached the weights.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("loss {loss} is {value}")]
pub struct NonFinite {
    /// Which loss.
    pub loss: &'static str,
    /// Its value.
    pub value: f64,
}

/// Up to eight named values from one step or one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Losses {
    /// Names, e.g. `["loss", "recon", "kl"]`.
    pub names: &'static [&'static str],
    /// Values, the first `names.len()` used.
    pub values: [f64; 8],
}

impl Losses {
    fn new(names: &'static [&'static str], vals: &[f64]) -> Self {
        let mut values = [0.0; 8];
        values[..vals.len()].copy_from_slice(vals);
        Losses { names, values }
    }

    /// `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.names.iter().copied().zip(self.values.iter().copied())
    }

    /// The first non-finite value, if any.
    pub fn check(&self) -> Result<(), NonFinite> {
        match self.iter().find(|(_, v)| !v.is_finite()) {
            Some((loss, value)) => Err(NonFinite { loss, value }),
            None => Ok(()),
        }
    }
}

/// Per-step settings the loop supplies.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    /// Epochs completed, plus the fraction of the current one (for the KL warm-up).
    pub epoch_progress: f64,
}

/// A trained or training model.
#[derive(Debug, Clone)]
pub enum Model {
    /// `vae`, `vae-conv`.
    Vae(Vae),
    /// `gan`, `dcgan`.
    Gan(Gan),
    /// `vaegan`.
    VaeGan(VaeGan),
    /// `flow`.
    Flow(Flow),
}

impl Model {
    /// A freshly initialised model drawing its weights from `rng`.
    pub fn new<R: Rng + ?Sized>(cfg: &ModelConfig, rng: &mut R) -> Result<Model, ModelError> {
        cfg.validate()?;
        Ok(match cfg.kind {
            ModelKind::Vae | ModelKind::VaeConv => Model::Vae(Vae::new(cfg, rng)?),
            ModelKind::Gan | ModelKind::Dcgan => Model::Gan(Gan::new(cfg, rng)?),
            ModelKind::VaeGan => Model::VaeGan(VaeGan::new(cfg, rng)?),
            ModelKind::Flow => Model::Flow(Flow::new(cfg, rng)?),
        })
    }

    /// The settings it was built from.
    pub fn config(&self) -> &ModelConfig {
        match self {
            Model::Vae(m) => &m.cfg,
            Model::Gan(m) => &m.cfg,
            Model::VaeGan(m) => &m.vae.cfg,
            Model::Flow(m) => &m.cfg,
        }
    }

    /// Latent dimension.
    pub fn latent(&self) -> usize {
        self.config().latent
    }

    /// The range of generated pixels.
    pub fn output_range(&self) -> PixelRange {
        self.config().kind.pixel_range()
    }

    /// Names of the values [`Model::train_step`] returns.
    pub fn train_names(&self) -> &'static [&'static str] {
        match self {
            Model::Vae(_) => vae::NAMES,
            Model::Gan(_) => gan::NAMES,
            Model::VaeGan(_) => vaegan::NAMES,
            Model::Flow(_) => flow::NAMES,
        }
    }

    /// One training step on `x` (`(batch, pixels)`, in [`Model::output_range`]). Every loss is
    /// checked before any weight changes; a non-finite one is returned as [`NonFinite`].
    pub fn train_step<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        info: StepInfo,
        rng: &mut R,
    ) -> Result<Losses, NonFinite> {
        match self {
            Model::Vae(m) => m.train_step(x, info, rng),
            Model::Gan(m) => m.train_step(x, rng),
            Model::VaeGan(m) => m.train_step(x, info, rng),
            Model::Flow(m) => m.train_step(x, rng),
        }
    }

    /// Eval-mode metrics on `x` (test images), per image, same names as training.
    pub fn evaluate<R: Rng + ?Sized>(&mut self, x: ArrayView2<'_, f32>, rng: &mut R) -> Losses {
        match self {
            Model::Vae(m) => m.evaluate(x, rng),
            Model::Gan(m) => m.evaluate(x, rng),
            Model::VaeGan(m) => m.evaluate(x, rng),
            Model::Flow(m) => m.evaluate(x, rng),
        }
    }

    /// Eval-mode generation: `z` `(n, latent)` -> images `(n, height * width)` in
    /// [`Model::output_range`]. A GAN with EMA uses the averaged weights.
    pub fn generate(&mut self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        match self {
            Model::Vae(m) => m.decode(z),
            Model::Gan(m) => m.generate(z),
            Model::VaeGan(m) => m.generate(z),
            Model::Flow(m) => m.generate(z),
        }
    }

    /// A flow's images from latents `z` scaled by its sampling temperature
    /// ([`ModelConfig::temperature`]); `None` for the other models.
    pub fn generate_at_temperature(&mut self, z: ArrayView2<'_, f32>) -> Option<Array2<f32>> {
        match self {
            Model::Flow(m) => Some(m.generate_at(z, m.cfg.temperature)),
            _ => None,
        }
    }

    /// Eval-mode reconstruction through the posterior mean (VAEs only).
    pub fn reconstruct(&mut self, x: ArrayView2<'_, f32>) -> Option<Array2<f32>> {
        match self {
            Model::Vae(m) => Some(m.reconstruct(x)),
            Model::Gan(_) | Model::Flow(_) => None,
            Model::VaeGan(m) => Some(m.vae.reconstruct(x)),
        }
    }

    /// A copy of the VAE inside (`vae`, `vae-conv`, and the VAE of `vaegan` with its sampling
    /// decoder, see [`VaeGan::sampling_vae`]), for the likelihood figures.
    pub fn sampling_vae(&self) -> Option<Vae> {
        match self {
            Model::Vae(m) => Some(m.clone()),
            Model::Gan(_) | Model::Flow(_) => None,
            Model::VaeGan(m) => Some(m.sampling_vae()),
        }
    }

    /// The parts this model can export.
    pub fn parts(&self) -> &'static [Part] {
        match self {
            Model::Vae(_) => &[Part::Generator, Part::Encoder],
            Model::Gan(_) => &[Part::Generator, Part::Discriminator],
            Model::VaeGan(_) => &[Part::Generator, Part::Encoder, Part::Discriminator],
            Model::Flow(_) => &[Part::Generator],
        }
    }

    /// Lowers `part` to the export graph (eval mode, BatchNorm folded, EMA weights for a
    /// generator when EMA is on). The encoder outputs `[mu, logvar]` concatenated; the
    /// discriminator outputs one logit.
    pub fn graph(&self, part: Part) -> Result<Graph, ModelError> {
        let kind = self.config().kind;
        match (self, part) {
            (Model::Vae(m), Part::Generator) => m.decoder_graph(),
            (Model::VaeGan(m), Part::Generator) => m.generator_graph(),
            (Model::Vae(m), Part::Encoder)
            | (Model::VaeGan(VaeGan { vae: m, .. }), Part::Encoder) => m.encoder_graph(),
            (Model::Gan(m), Part::Generator) => m.generator_graph(),
            (Model::Gan(m), Part::Discriminator) => m.discriminator_graph(),
            (Model::VaeGan(m), Part::Discriminator) => m.discriminator_graph(),
            (Model::Flow(_), Part::Generator) => Err(ModelError::NotAChain { kind, part }),
            _ => Err(ModelError::NoSuchPart { kind, part }),
        }
    }

    /// Lowers `part` to a graph with branches: the flow's generator as itself, every chain
    /// ([`Model::graph`]) as a graph without branches.
    pub fn dag(&self, part: Part) -> Result<Dag, ModelError> {
        match (self, part) {
            (Model::Flow(m), Part::Generator) => m.generator_dag(),
            _ => Ok(Dag::from_chain(&self.graph(part)?)),
        }
    }

    /// Everything a checkpoint holds: weights, BatchNorm statistics, optimiser state, EMA.
    /// Returns owned tensors and the optimisers' step counts (for the metadata).
    pub fn checkpoint_tensors(&self) -> (Vec<OwnedTensor>, Vec<(String, u64)>) {
        let mut t = Vec::new();
        let mut steps = Vec::new();
        match self {
            Model::Vae(m) => m.save(&mut t, &mut steps),
            Model::Gan(m) => m.save(&mut t, &mut steps),
            Model::VaeGan(m) => m.save(&mut t, &mut steps),
            Model::Flow(m) => m.save(&mut t, &mut steps),
        }
        (t, steps)
    }

    /// Restores the weights (and, if `with_optim`, the optimiser state) from `ck`. Every
    /// tensor must be present with its shape; leftover tensors are an error.
    pub fn load_checkpoint(
        &mut self,
        ck: &mut Checkpoint,
        with_optim: bool,
    ) -> Result<(), ModelError> {
        match self {
            Model::Vae(m) => m.load(ck, with_optim),
            Model::Gan(m) => m.load(ck, with_optim),
            Model::VaeGan(m) => m.load(ck, with_optim),
            Model::Flow(m) => m.load(ck, with_optim),
        }
    }
}

/// A tensor copied out of a model for a checkpoint.
#[derive(Debug, Clone)]
pub struct OwnedTensor {
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// Metadata key of an optimiser's step count.
pub fn optim_step_key(group: &str) -> String {
    format!("tinygen.optim.{group}.step")
}

const ADAM_KEYS: [&str; 2] = ["exp_avg", "exp_avg_sq"];

/// A network's weights and statistics, with `prefix` before each name (`ema.` for EMA copies).
fn save_seq(seq: &Sequential, prefix: &str, out: &mut Vec<OwnedTensor>) {
    for t in seq.state() {
        out.push(OwnedTensor {
            name: format!("{prefix}{}", t.name),
            shape: t.shape,
            data: t.data.to_vec(),
        });
    }
}

fn load_seq(seq: &mut Sequential, prefix: &str, ck: &mut Checkpoint) -> Result<(), ModelError> {
    for t in seq.state_mut() {
        ck.take_into(&format!("{prefix}{}", t.name), &t.shape, t.data)?;
    }
    Ok(())
}

/// An Adam state as `optim.<param>.<exp_avg|exp_avg_sq>`, flat, and its step count.
fn save_adam(group: &str, opt: &Adam, out: &mut Vec<OwnedTensor>, steps: &mut Vec<(String, u64)>) {
    let st = opt.state();
    for t in st.tensors {
        out.push(OwnedTensor {
            name: format!("optim.{}.{}", t.param, t.key),
            shape: vec![t.data.len()],
            data: t.data,
        });
    }
    steps.push((optim_step_key(group), st.step));
}

fn load_adam(
    group: &str,
    opt: &mut Adam,
    seq: &mut Sequential,
    ck: &mut Checkpoint,
) -> Result<(), ModelError> {
    let params: Vec<(String, usize)> = seq
        .parameters()
        .iter()
        .map(|p| (p.name.clone(), p.value.len()))
        .collect();
    load_adam_params(group, opt, &params, ck)
}

/// [`load_adam`] for the parameters `(name, length)` of any model.
fn load_adam_params(
    group: &str,
    opt: &mut Adam,
    params: &[(String, usize)],
    ck: &mut Checkpoint,
) -> Result<(), ModelError> {
    let key = optim_step_key(group);
    let step: u64 = match ck.metadata.get(&key) {
        Some(v) => v.parse().map_err(|_| {
            ModelError::BadConfig(format!(
                "{}: metadata {key} = {v:?} is not an integer",
                ck.path.display()
            ))
        })?,
        None => {
            return Err(CheckpointError::MissingMetadata {
                path: ck.path.clone(),
                key: "tinygen.optim.<group>.step",
            }
            .into())
        }
    };
    if step == 0 {
        return Ok(());
    }
    let mut tensors = Vec::new();
    for (name, len) in params {
        for k in ADAM_KEYS {
            let data = ck.take(&format!("optim.{name}.{k}"), &[*len])?;
            tensors.push(StateTensor {
                param: name.clone(),
                key: k,
                data,
            });
        }
    }
    opt.load_state(OptimState { step, tensors })?;
    Ok(())
}

/// Drops optimiser tensors from `ck` (loading for export or sampling).
fn skip_optim(ck: &mut Checkpoint) {
    ck.tensors.retain(|name, _| !name.starts_with("optim."));
}

/// `(n, k)` standard normal draws.
pub fn normal<R: Rng + ?Sized>(rng: &mut R, n: usize, k: usize) -> Array2<f32> {
    Array2::from_shape_simple_fn((n, k), || rng.sample::<f32, _>(StandardNormal))
}

/// Fills `a` with standard normal draws.
fn fill_normal<R: Rng + ?Sized>(rng: &mut R, a: &mut Array2<f32>) {
    a.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
}

/// `(batch, pixels)` to the network input shape (`(batch, pixels)` or `(batch, 1, h, w)`).
fn to_input(x: Array2<f32>, conv: bool, h: usize, w: usize) -> ArrayD<f32> {
    if conv {
        let n = x.nrows();
        x.into_shape_with_order(IxDyn(&[n, 1, h, w]))
            .expect("standard layout")
    } else {
        x.into_dyn()
    }
}

/// Network output to `(batch, features)`.
fn to_flat(y: ArrayD<f32>) -> Array2<f32> {
    let n = y.shape()[0];
    let f = y.len() / n.max(1);
    let y = if y.is_standard_layout() {
        y
    } else {
        y.as_standard_layout().into_owned()
    };
    y.into_shape_with_order((n, f)).expect("standard layout")
}

/// Rows `a` then rows `b`.
fn vstack(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    ndarray::concatenate(Axis(0), &[a, b]).expect("same width")
}

/// Mean of `sigmoid(logit)` (the discriminator's probability).
fn mean_prob(logits: &Array2<f32>) -> f64 {
    let n = logits.len().max(1) as f64;
    logits
        .iter()
        .map(|&l| f64::from(crate::nn::sigmoid(l)))
        .sum::<f64>()
        / n
}

/// Steps an Adam over a network and zeroes its gradients.
fn adam_step(opt: &mut Adam, seq: &mut Sequential) {
    let mut params = seq.parameters();
    opt.step(&mut params)
        .expect("the same parameters every step");
    for p in params {
        p.grad.fill(0.0);
    }
}

/// `ema = decay * ema + (1 - decay) * param` for weights; BatchNorm statistics copied.
pub(super) fn ema_update(ema: &mut Sequential, model: &Sequential, decay: f32) {
    for (e, m) in ema.state_mut().into_iter().zip(model.state()) {
        if e.name.ends_with("running_mean") || e.name.ends_with("running_var") {
            e.data.copy_from_slice(m.data);
        } else {
            for (a, &b) in e.data.iter_mut().zip(m.data) {
                *a = decay * *a + (1.0 - decay) * b;
            }
        }
    }
}
