//! `tinygen-runtime`: runs tinygen decoders and generators on microcontrollers.
//!
//! `no_std`, no heap: the caller owns every buffer. `unsafe` code lives in three modules only,
//! each with SAFETY comments: `model::cast` (validated bytes viewed as numbers),
//! `kernels::dsp` (Cortex-M4 `SMLAD` assembly) and `kernels::x86` (SIMD loads); the last two
//! are tested against plain Rust kernels.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod error;
pub mod format;
pub mod geometry;
pub mod kernels;
pub mod model;
pub mod rng;
pub mod vocab;
