//! A normalizing flow for images flattened to vectors: RealNVP (Dinh et al. 2017) with affine
//! couplings, actnorm (Kingma and Dhariwal 2018) and fixed permutations, trained by exact maximum
//! likelihood on dequantized, logit-transformed pixels.
//!
//! Like the layers of [`crate::nn`], each piece pairs a forward that returns its output, its
//! log-determinant per row and an explicit cache with a backward that consumes the cache, the
//! output gradient and the log-determinant's gradient; each also has its inverse beside it.
//! - [`logit`]: dequantization, the logit transform and the bits/dim formula;
//! - [`AffineCoupling`], [`ActNorm`], [`Permutation`]: the layers;
//! - [`RealNvp`]: the flow, its loss ([`RealNvp::train_pass`], [`RealNvp::neg_log_pv`]),
//!   sampling ([`RealNvp::sample`]) and export ([`RealNvp::to_dag`]).

mod actnorm;
mod coupling;
mod export;
pub mod logit;
mod realnvp;

pub use actnorm::{ActNorm, ActNormCache};
pub use coupling::{AffineCoupling, CouplingCache};
pub use logit::{dequantize, discrete_nll, LogitCache, LogitTransform};
pub use realnvp::{FlowCache, FlowConfig, FlowStep, Permutation, RealNvp};
