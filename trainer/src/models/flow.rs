//! The `flow` model: a [`RealNvp`] with its Adam, trained on dequantized 8-bit pixels by exact
//! maximum likelihood. Steps and evaluations report the negative log-likelihood of the discrete
//! data in nats per image and in bits per dimension ([`crate::flow::logit`] derives both).

use ndarray::{Array2, ArrayView2, Axis};
use rand::Rng;
use tinygen_export::dag::{Dag, DagNode, Op};
use tinygen_export::{Layer, Shape};

use super::{
    load_adam_params, save_adam, skip_optim, Losses, ModelConfig, ModelError, NonFinite,
    OwnedTensor,
};
use crate::checkpoint::Checkpoint;
use crate::flow::{dequantize, discrete_nll, FlowConfig, RealNvp};
use crate::optim::{Adam, Optimizer};

/// Names of the values a flow step and evaluation return: the discrete NLL in nats per image
/// and in bits per dimension.
pub(super) const NAMES: &[&str] = &["nll", "bits_per_dim"];

/// Rows per chunk when evaluating a test set (bounds memory, not results).
const EVAL_CHUNK: usize = 500;

/// Name prefix of the flow's tensors in a checkpoint (`flow.s0.actnorm.scale`).
const PREFIX: &str = "flow.";

impl ModelConfig {
    /// The flow's settings: latent = pixels (at most 65,536), one hidden width, at least one
    /// coupling, `logit_alpha` in `(0, 0.5)`.
    pub(super) fn validate_flow(&self) -> Result<(), ModelError> {
        let bad = |what: String| Err(ModelError::BadConfig(what));
        let p = self.pixels();
        if self.latent != p {
            return bad(format!(
                "a flow's latent is its image: --latent must be {p} (height x width), got {}",
                self.latent
            ));
        }
        if p < 2 || p > usize::from(u16::MAX) + 1 {
            return bad(format!(
                "a flow needs between 2 and 65536 pixels (its permutations export as 16-bit \
                 tables), got {p}"
            ));
        }
        if self.hidden.len() != 1 {
            return bad(format!(
                "a flow takes one hidden width (its couplings' MLPs), got {:?}",
                self.hidden
            ));
        }
        if self.couplings == 0 {
            return bad("a flow needs at least one coupling".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!(
                "the sampling temperature must be positive, got {}",
                self.temperature
            ));
        }
        if !(self.logit_alpha > 0.0 && self.logit_alpha < 0.5) {
            return bad(format!(
                "the logit alpha must be in (0, 0.5), got {}",
                self.logit_alpha
            ));
        }
        Ok(())
    }
}

/// A RealNVP model with its optimiser.
#[derive(Debug, Clone)]
pub struct Flow {
    pub(crate) cfg: ModelConfig,
    /// The flow.
    pub flow: RealNvp,
    opt: Adam,
}

impl Flow {
    /// The flow's own settings from a model configuration: `couplings` steps, hidden width
    /// `hidden[0]`, `logit_alpha`.
    pub fn flow_config(cfg: &ModelConfig) -> FlowConfig {
        FlowConfig {
            dim: cfg.pixels(),
            couplings: cfg.couplings,
            hidden: cfg.hidden.first().copied().unwrap_or(1),
            alpha: cfg.logit_alpha,
        }
    }

    pub(super) fn new<R: Rng + ?Sized>(cfg: &ModelConfig, rng: &mut R) -> Result<Self, ModelError> {
        let flow = RealNvp::new(&Self::flow_config(cfg), rng);
        flow.to_dag()?;
        Ok(Flow {
            cfg: cfg.clone(),
            flow,
            opt: Adam::new(cfg.lr_g).betas(cfg.beta1, 0.999),
        })
    }

    /// One maximum-likelihood step on images `x` `(batch, pixels)` in `[0, 1]`, dequantized with
    /// noise from `rng`. The loss is checked before the weights change (the actnorms' data-
    /// dependent initialisation on the first step aside).
    pub(super) fn train_step<R: Rng + ?Sized>(
        &mut self,
        x: ArrayView2<'_, f32>,
        rng: &mut R,
    ) -> Result<Losses, NonFinite> {
        let v = dequantize(x, rng);
        let neg_log_pv = self.flow.train_pass(v);
        let (nll, bpd) = discrete_nll(neg_log_pv, self.flow.dim());
        let losses = Losses::new(NAMES, &[nll, bpd]);
        if let Err(e) = losses.check() {
            self.flow.zero_grad();
            return Err(e);
        }
        let mut params = self.flow.parameters();
        self.opt
            .step(&mut params)
            .expect("the same parameters every step");
        for p in params {
            p.grad.fill(0.0);
        }
        Ok(losses)
    }

    /// The discrete NLL (nats per image) and bits/dim of test images `x`, one dequantization
    /// draw per pixel from `rng`.
    pub fn evaluate<R: Rng + ?Sized>(&mut self, x: ArrayView2<'_, f32>, rng: &mut R) -> Losses {
        let mut total = 0.0f64;
        for chunk in x.axis_chunks_iter(Axis(0), EVAL_CHUNK) {
            total += self.flow.neg_log_pv(dequantize(chunk, rng)).sum();
        }
        let (nll, bpd) = discrete_nll(total / x.nrows().max(1) as f64, self.flow.dim());
        Losses::new(NAMES, &[nll, bpd])
    }

    /// Images in (about) `[0, 1]` from latents `z` `(n, pixels)` at temperature 1.
    pub fn generate(&mut self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        self.generate_at(z, 1.0)
    }

    /// Images from latents `z` scaled by `temperature` (`z ~ N(0, T^2)` for standard `z`).
    pub fn generate_at(&mut self, z: ArrayView2<'_, f32>, temperature: f32) -> Array2<f32> {
        self.flow.sample(z, temperature)
    }

    /// The generator (`z` -> image) as a graph with branches, ending in the image's shape
    /// `[1, height, width]`.
    pub fn generator_dag(&self) -> Result<Dag, ModelError> {
        let mut dag = self.flow.to_dag()?;
        let input = dag.output();
        dag.nodes.push(DagNode {
            input,
            op: Op::Layer(Layer::Reshape {
                to: Shape::chw(1, self.cfg.height, self.cfg.width),
            }),
        });
        Ok(dag)
    }

    pub(super) fn save(&self, out: &mut Vec<OwnedTensor>, steps: &mut Vec<(String, u64)>) {
        for t in self.flow.state() {
            out.push(OwnedTensor {
                name: format!("{PREFIX}{}", t.name),
                shape: t.shape,
                data: t.data.to_vec(),
            });
        }
        save_adam("flow", &self.opt, out, steps);
    }

    pub(super) fn load(&mut self, ck: &mut Checkpoint, with_optim: bool) -> Result<(), ModelError> {
        for p in self.flow.parameters() {
            ck.take_into(&format!("{PREFIX}{}", p.name), &p.shape, p.value)?;
        }
        for step in &mut self.flow.steps {
            step.actnorm.initialized = true;
        }
        if with_optim {
            let params: Vec<(String, usize)> = self
                .flow
                .parameters()
                .iter()
                .map(|p| (p.name.clone(), p.value.len()))
                .collect();
            load_adam_params("flow", &mut self.opt, &params, ck)?;
        } else {
            skip_optim(ck);
        }
        Ok(())
    }
}
