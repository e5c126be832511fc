//! Running a parsed model: one pass over the layers through two ping-pong buffers in the
//! caller's arena.

use super::walk::Op;
use super::{cast, quantize};
use super::{Activation, Model, Precision};
use crate::error::Error;
use crate::format;
use crate::kernels;
use crate::rng::Rng;

/// Where the latent vector comes from.
pub(super) enum Latent<'z> {
    Given(&'z [f32]),
    Sampled(&'z mut Rng),
}

/// The final activation, borrowed from the arena.
pub(super) enum Final<'b> {
    F32(&'b [f32]),
    I8(&'b [i8]),
}

pub(super) fn prefix<T>(s: &[T], n: usize, arena: usize, needed: usize) -> Result<&[T], Error> {
    s.get(..n)
        .ok_or(Error::ArenaTooSmall { needed, got: arena })
}

pub(super) fn prefix_mut<T>(
    s: &mut [T],
    n: usize,
    arena: usize,
    needed: usize,
) -> Result<&mut [T], Error> {
    s.get_mut(..n)
        .ok_or(Error::ArenaTooSmall { needed, got: arena })
}

impl<'a> Model<'a> {
    /// Runs every layer through two ping-pong buffers in `arena`; returns the last activation.
    pub(super) fn execute<'b>(
        &self,
        arena: &'b mut [u8],
        latent: Latent<'_>,
        inspect: &mut dyn FnMut(usize, Activation<'_>),
    ) -> Result<Final<'b>, Error> {
        let got = arena.len();
        let needed = self.arena_bytes;
        if got < needed {
            return Err(Error::ArenaTooSmall { needed, got });
        }
        let n = self.max_elements;
        let mut walker = self.walker();
        // `Model::parse` (and the walker below) reject precisions and ops left out by cargo
        // features, so the guards only let the compiler drop the code of those kernels.
        match self.precision {
            Precision::F32 if cfg!(feature = "f32") => {
                let words = cast::aligned_f32s_mut(arena);
                let (a, rest) = words
                    .split_at_mut_checked(n)
                    .ok_or(Error::ArenaTooSmall { needed, got })?;
                let b = prefix_mut(rest, n, got, needed)?;
                let (mut cur, mut other) = (a, b);
                let mut len = self.latent_len();
                let x = prefix_mut(cur, len, got, needed)?;
                match latent {
                    Latent::Given(z) => {
                        for (d, &v) in x.iter_mut().zip(z) {
                            *d = v;
                        }
                    }
                    Latent::Sampled(rng) => rng.fill_gaussian(x),
                }
                while let Some(step) = walker.next_step()? {
                    let layer = walker.index - 1;
                    let out_len = step.output.len();
                    let x = prefix(cur, step.input.len(), got, needed)?;
                    let mut swap = true;
                    match step.op {
                        Op::DenseF32 { w, b } => {
                            kernels::dense_f32(w, b, x, prefix_mut(other, out_len, got, needed)?)
                        }
                        Op::ConvF32 { g, w, b } if cfg!(feature = "conv2d") => kernels::conv2d_f32(
                            &g,
                            w,
                            b,
                            x,
                            prefix_mut(other, out_len, got, needed)?,
                        ),
                        Op::ConvTransposeF32 { g, w, b } if cfg!(feature = "conv-transpose2d") => {
                            kernels::conv_transpose2d_f32(
                                &g,
                                w,
                                b,
                                x,
                                prefix_mut(other, out_len, got, needed)?,
                            )
                        }
                        // Also conv ops whose feature (`conv2d`, `conv-transpose2d`) is off: unreachable, the walker
                        // returned `OpDisabled` for them.
                        op => {
                            swap = false;
                            let x = prefix_mut(cur, out_len, got, needed)?;
                            match op {
                                Op::Relu => kernels::relu_f32(x),
                                Op::LeakyRelu { alpha } => kernels::leaky_relu_f32(x, alpha),
                                Op::Tanh => kernels::tanh_f32(x),
                                Op::Sigmoid => kernels::sigmoid_f32(x),
                                _ => {}
                            }
                        }
                    }
                    if swap {
                        core::mem::swap(&mut cur, &mut other);
                    }
                    len = out_len;
                    inspect(layer, Activation::F32(prefix(cur, len, got, needed)?));
                }
                Ok(Final::F32(prefix(cur, len, got, needed)?))
            }
            Precision::Int8 if cfg!(feature = "int8") => {
                let bytes = cast::i8s_mut(arena);
                let half = n
                    .checked_add(3)
                    .map(|m| m / 4 * 4)
                    .ok_or(Error::ArenaTooSmall { needed, got })?;
                let (a, rest) = bytes
                    .split_at_mut_checked(half)
                    .ok_or(Error::ArenaTooSmall { needed, got })?;
                let b = prefix_mut(rest, n, got, needed)?;
                let (mut cur, mut other) = (a, b);
                let mut len = self.latent_len();
                let x = prefix_mut(cur, len, got, needed)?;
                let (scale, zp) = (self.input_scale, self.input_zero_point);
                match latent {
                    Latent::Given(z) => {
                        for (q, &v) in x.iter_mut().zip(z) {
                            *q = quantize(v, scale, zp);
                        }
                    }
                    Latent::Sampled(rng) => {
                        for q in x.iter_mut() {
                            *q = quantize(rng.next_gaussian(), scale, zp);
                        }
                    }
                }
                while let Some(step) = walker.next_step()? {
                    let layer = walker.index - 1;
                    let out_len = step.output.len();
                    let x = prefix(cur, step.input.len(), got, needed)?;
                    let mut swap = true;
                    match step.op {
                        Op::DenseI8 { w, b, rq } => kernels::dense_i8(
                            w,
                            b,
                            x,
                            &rq,
                            prefix_mut(other, out_len, got, needed)?,
                        ),
                        Op::ConvI8 { g, w, b, rq } if cfg!(feature = "conv2d") => {
                            kernels::conv2d_i8(
                                &g,
                                w,
                                b,
                                x,
                                &rq,
                                prefix_mut(other, out_len, got, needed)?,
                            )
                        }
                        Op::ConvTransposeI8 { g, w, b, rq }
                            if cfg!(feature = "conv-transpose2d") =>
                        {
                            kernels::conv_transpose2d_i8(
                                &g,
                                w,
                                b,
                                x,
                                &rq,
                                prefix_mut(other, out_len, got, needed)?,
                            )
                        }
                        // As above for conv ops whose feature is off.
                        op => {
                            swap = false;
                            if let Op::Lut { table } = op {
                                kernels::lut_i8(prefix_mut(cur, out_len, got, needed)?, table);
                            }
                        }
                    }
                    if swap {
                        core::mem::swap(&mut cur, &mut other);
                    }
                    len = out_len;
                    inspect(layer, Activation::I8(prefix(cur, len, got, needed)?));
                }
                Ok(Final::I8(prefix(cur, len, got, needed)?))
            }
            Precision::F32 => Err(Error::PrecisionDisabled {
                code: format::PRECISION_F32,
            }),
            Precision::Int8 => Err(Error::PrecisionDisabled {
                code: format::PRECISION_INT8,
            }),
        }
    }
}
