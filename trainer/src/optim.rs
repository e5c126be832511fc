//! Optimisers: Adam and SGD with momentum, following PyTorch's update rules exactly.
//!
//! One optimiser instance serves one parameter group (one model part: encoder, decoder,
//! generator, discriminator) with its own learning rate. Its state is keyed by parameter
//! name and exportable for checkpoints with PyTorch's names (`exp_avg`, `exp_avg_sq`,
//! `momentum_buffer`, and the step count).

use crate::nn::Param;

/// Why an optimiser step or state load was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// The parameters differ from those the state was built for.
    #[error("optimiser state is for parameter {expected:?} ({expected_len} values), got {got:?} ({got_len} values)")]
    ParamMismatch {
        /// The name the state holds.
        expected: String,
        /// Its length.
        expected_len: usize,
        /// The name passed.
        got: String,
        /// Its length.
        got_len: usize,
    },
    /// A different number of parameters than the state holds.
    #[error("optimiser state holds {expected} parameters, got {got}")]
    ParamCount {
        /// State's count.
        expected: usize,
        /// Passed count.
        got: usize,
    },
    /// The state lacks a tensor this optimiser needs.
    #[error("optimiser state lacks {what} for {param}")]
    MissingState {
        /// Which buffer.
        what: &'static str,
        /// For which parameter.
        param: String,
    },
}

/// One named per-parameter buffer of an optimiser's state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateTensor {
    /// Parameter name, e.g. `enc.fc1.weight`.
    pub param: String,
    /// Buffer name as in PyTorch: `exp_avg`, `exp_avg_sq` or `momentum_buffer`.
    pub key: &'static str,
    /// Values, same length as the parameter.
    pub data: Vec<f32>,
}

/// An optimiser's complete state, for checkpoints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimState {
    /// Steps taken.
    pub step: u64,
    /// Buffers, in parameter order.
    pub tensors: Vec<StateTensor>,
}

/// The common interface of the optimisers.
pub trait Optimizer {
    /// Applies one update from the gradients in `params` (the same parameters, in the same
    /// order, every call).
    fn step(&mut self, params: &mut [Param<'_>]) -> Result<(), OptimError>;
    /// Current learning rate.
    fn learning_rate(&self) -> f32;
    /// Changes the learning rate (schedules).
    fn set_learning_rate(&mut self, lr: f32);
    /// Exports the state.
    fn state(&self) -> OptimState;
    /// Restores a state from [`Optimizer::state`].
    fn load_state(&mut self, state: OptimState) -> Result<(), OptimError>;
}

/// Per-parameter buffers with the parameter's name.
#[derive(Debug, Clone, Default)]
struct Slots {
    names: Vec<String>,
    bufs: Vec<Vec<Vec<f32>>>,
}

impl Slots {
    /// Creates zeroed buffers on the first call, then checks that names and sizes match.
    fn ensure(&mut self, params: &[Param<'_>], per_param: usize) -> Result<(), OptimError> {
        if self.names.is_empty() {
            self.names = params.iter().map(|p| p.name.clone()).collect();
            self.bufs = params
                .iter()
                .map(|p| vec![vec![0.0; p.value.len()]; per_param])
                .collect();
            return Ok(());
        }
        if self.names.len() != params.len() {
            return Err(OptimError::ParamCount {
                expected: self.names.len(),
                got: params.len(),
            });
        }
        for ((name, bufs), p) in self.names.iter().zip(&self.bufs).zip(params) {
            let len = bufs.first().map_or(0, Vec::len);
            if *name != p.name || len != p.value.len() || p.grad.len() != p.value.len() {
                return Err(OptimError::ParamMismatch {
                    expected: name.clone(),
                    expected_len: len,
                    got: p.name.clone(),
                    got_len: p.value.len(),
                });
            }
        }
        Ok(())
    }

    fn export(&self, keys: &[&'static str]) -> Vec<StateTensor> {
        let mut out = Vec::new();
        for (name, bufs) in self.names.iter().zip(&self.bufs) {
            for (key, data) in keys.iter().zip(bufs) {
                out.push(StateTensor {
                    param: name.clone(),
                    key,
                    data: data.clone(),
                });
            }
        }
        out
    }

    fn import(tensors: Vec<StateTensor>, keys: &[&'static str]) -> Result<Self, OptimError> {
        let mut slots = Slots::default();
        for t in tensors {
            let i = match slots.names.iter().position(|n| *n == t.param) {
                Some(i) => i,
                None => {
                    slots.names.push(t.param.clone());
                    slots.bufs.push(vec![Vec::new(); keys.len()]);
                    slots.names.len() - 1
                }
            };
            if let Some(k) = keys.iter().position(|k| *k == t.key) {
                slots.bufs[i][k] = t.data;
            }
        }
        for (name, bufs) in slots.names.iter().zip(&slots.bufs) {
            let len = bufs[0].len();
            for (key, b) in keys.iter().zip(bufs) {
                if b.len() != len || b.is_empty() {
                    return Err(OptimError::MissingState {
                        what: key,
                        param: name.clone(),
                    });
                }
            }
        }
        Ok(slots)
    }
}

/// Adam (Kingma & Ba) as `torch.optim.Adam`: L2 weight decay added to the gradient,
/// bias-corrected moments, `eps` added after the square root.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay (0.9; DCGAN uses 0.5).
    pub beta1: f32,
    /// Second-moment decay (0.999).
    pub beta2: f32,
    /// Added to the denominator (1e-8).
    pub eps: f32,
    /// L2 penalty coefficient added to the gradient as `wd * p` (0).
    pub weight_decay: f32,
    step: u64,
    slots: Slots,
}

impl Adam {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            step: 0,
            slots: Slots::default(),
        }
    }

    /// Sets the betas (builder style).
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets the L2 weight decay (builder style).
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }
}

const ADAM_KEYS: [&str; 2] = ["exp_avg", "exp_avg_sq"];
const SGD_KEYS: [&str; 1] = ["momentum_buffer"];

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [Param<'_>]) -> Result<(), OptimError> {
        self.slots.ensure(params, 2)?;
        self.step += 1;
        let t = self.step as f64;
        let bc1 = 1.0 - f64::from(self.beta1).powf(t);
        let bc2 = 1.0 - f64::from(self.beta2).powf(t);
        let step_size = (f64::from(self.lr) / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        for (p, bufs) in params.iter_mut().zip(&mut self.slots.bufs) {
            let [m, v] = bufs.as_mut_slice() else {
                unreachable!("two Adam buffers")
            };
            for (((w, &g), m), v) in p
                .value
                .iter_mut()
                .zip(p.grad.iter())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                let g = g + wd * *w;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *w -= step_size * *m / denom;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> OptimState {
        OptimState {
            step: self.step,
            tensors: self.slots.export(&ADAM_KEYS),
        }
    }

    fn load_state(&mut self, state: OptimState) -> Result<(), OptimError> {
        self.slots = Slots::import(state.tensors, &ADAM_KEYS)?;
        self.step = state.step;
        Ok(())
    }
}

/// SGD with momentum as `torch.optim.SGD` (dampening 0): `buf = momentum * buf + g`
/// (`buf = g` on the first step), update `g + momentum * buf` if Nesterov, else `buf`.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 for plain SGD).
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty coefficient added to the gradient.
    pub weight_decay: f32,
    step: u64,
    slots: Slots,
}

impl Sgd {
    /// SGD with the given learning rate and momentum.
    pub fn new(lr: f32, momentum: f32) -> Self {
        Sgd {
            lr,
            momentum,
            nesterov: false,
            weight_decay: 0.0,
            step: 0,
            slots: Slots::default(),
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [Param<'_>]) -> Result<(), OptimError> {
        self.slots.ensure(params, 1)?;
        let first = self.step == 0;
        self.step += 1;
        let (lr, mo, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        for (p, bufs) in params.iter_mut().zip(&mut self.slots.bufs) {
            let buf = &mut bufs[0];
            for ((w, &g), b) in p.value.iter_mut().zip(p.grad.iter()).zip(buf.iter_mut()) {
                let g = g + wd * *w;
                let d = if mo == 0.0 {
                    g
                } else {
                    *b = if first { g } else { mo * *b + g };
                    if nesterov {
                        g + mo * *b
                    } else {
                        *b
                    }
                };
                *w -= lr * d;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> OptimState {
        OptimState {
            step: self.step,
            tensors: self.slots.export(&SGD_KEYS),
        }
    }

    fn load_state(&mut self, state: OptimState) -> Result<(), OptimError> {
        self.slots = Slots::import(state.tensors, &SGD_KEYS)?;
        self.step = state.step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(name: &str, v: &'a mut [f32], g: &'a mut [f32]) -> Param<'a> {
        Param {
            name: name.into(),
            shape: vec![v.len()],
            value: v,
            grad: g,
        }
    }

    /// The updates are a handful of f32 operations from hand-computed values.
    const STEP_TOL: f32 = 1e-6;

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        // After bias correction m̂ = g and v̂ = g², so the step is lr * g / (|g| + eps).
        let (mut w, mut g) = ([1.0f32, -2.0], [0.5f32, -3.0]);
        let mut opt = Adam::new(0.1);
        opt.step(&mut [param("w", &mut w, &mut g)]).unwrap();
        assert!(
            (w[0] - 0.9).abs() < STEP_TOL && (w[1] + 1.9).abs() < STEP_TOL,
            "{w:?}"
        );
    }

    #[test]
    fn adam_minimises_a_quadratic_and_state_round_trips() {
        // f(w) = Σ (w - 3)², grad 2 (w - 3).
        let mut w = [0.0f32; 4];
        let mut opt = Adam::new(0.05).weight_decay(0.0);
        for _ in 0..500 {
            let mut g: Vec<f32> = w.iter().map(|x| 2.0 * (x - 3.0)).collect();
            opt.step(&mut [param("w", &mut w, &mut g)]).unwrap();
        }
        assert!(w.iter().all(|x| (x - 3.0).abs() < 1e-2), "{w:?}");
        // Continuing from an exported state equals continuing the original.
        let mut twin = Adam::new(0.05);
        twin.load_state(opt.state()).unwrap();
        let (mut a, mut b) = (w, w);
        let mut g1: Vec<f32> = w.iter().map(|x| 2.0 * (x - 3.0) + 1.0).collect();
        let mut g2 = g1.clone();
        opt.step(&mut [param("w", &mut a, &mut g1)]).unwrap();
        twin.step(&mut [param("w", &mut b, &mut g2)]).unwrap();
        assert_eq!(a, b);
        assert_eq!(twin.steps(), 501);
    }

    #[test]
    fn mismatched_parameters_are_refused() {
        let (mut w, mut g) = ([0.0f32; 2], [0.0f32; 2]);
        let mut opt = Adam::new(0.1);
        opt.step(&mut [param("a", &mut w, &mut g)]).unwrap();
        let err = opt.step(&mut [param("b", &mut w, &mut g)]).unwrap_err();
        assert!(matches!(err, OptimError::ParamMismatch { .. }), "{err}");
    }

    #[test]
    fn sgd_momentum_follows_pytorch() {
        // g = 1 constantly, momentum 0.9, lr 0.1: buf = 1, 1.9, 2.71; w = -0.1, -0.29, -0.561.
        let mut w = [0.0f32];
        let mut opt = Sgd::new(0.1, 0.9);
        for _ in 0..3 {
            let mut g = [1.0f32];
            opt.step(&mut [param("w", &mut w, &mut g)]).unwrap();
        }
        assert!((w[0] + 0.561).abs() < STEP_TOL, "{w:?}");
    }
}
