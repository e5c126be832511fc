//! `tinygen-runtime`: runs tinygen decoders and generators on microcontrollers.
//!
//! `no_std`, no heap: the caller owns every buffer.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod error;
pub mod format;
pub mod kernels;
pub mod model;
pub mod rng;
