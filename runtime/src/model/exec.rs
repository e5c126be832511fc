//! Running a parsed model: one pass over the ops, each reading and writing tensors where the
//! exporter's plan placed them in the caller's arena. One executor serves both precisions: the
//! data movement (views, in-place ops, concatenation, gathers) is generic over the element, and
//! [`Element`] maps each op to its kernel.

use super::op::{Op, Operand};
use super::{cast, Activation, Model, Precision};
use crate::error::Error;
use crate::format;
use crate::kernels::graph::{self, Binary, Quant};
use crate::kernels::{self};
use crate::rng::Rng;
use core::ops::Range;

/// Where an input vector comes from.
pub(super) enum Source<'z> {
    Given(&'z [f32]),
    Sampled(&'z mut Rng),
}

/// The output tensor, borrowed from the arena.
pub(super) enum Final<'b> {
    F32(&'b [f32]),
    I8(&'b [i8]),
}

/// An activation element: f32 or int8, with the kernels of each op at that precision.
trait Element: Copy + 'static {
    /// Converts an f32 input value into the tensor's element.
    fn from_f32(x: f32, q: Quant) -> Self;
    /// Dense and convolutions (`false` if `op` is not one at this precision or was compiled out).
    fn linear(op: &Op<'_>, x: &[Self], y: &mut [Self]) -> bool;
    /// Element-wise activations in place.
    fn unary(op: &Op<'_>, x: &mut [Self]);
    /// `acc = op(acc, b)`, element-wise.
    fn binary(op: Binary, acc: &mut [Self], qa: Quant, b: &[Self], qb: Quant, qo: Quant);
    /// `acc = op(acc, v[c])` over channel planes.
    fn binary_channel(op: Binary, acc: &mut [Self], qa: Quant, v: &[f32], plane: usize, qo: Quant);
    /// Moves values into another quantisation (nothing for f32).
    fn requantize(x: &mut [Self], from: Quant, to: Quant);
    /// The activation handed to `run_inspect`'s callback.
    fn activation(x: &[Self]) -> Activation<'_>;
}

impl Element for f32 {
    #[inline]
    fn from_f32(x: f32, _: Quant) -> f32 {
        x
    }
    fn linear(op: &Op<'_>, x: &[f32], y: &mut [f32]) -> bool {
        match *op {
            Op::DenseF32 { w, b } => kernels::dense_f32(w, b, x, y),
            Op::ConvF32 { g, w, b } if cfg!(feature = "conv2d") => {
                kernels::conv2d_f32(&g, w, b, x, y)
            }
            Op::ConvTransposeF32 { g, w, b } if cfg!(feature = "conv-transpose2d") => {
                kernels::conv_transpose2d_f32(&g, w, b, x, y)
            }
            _ => return false,
        }
        true
    }
    fn unary(op: &Op<'_>, x: &mut [f32]) {
        match *op {
            Op::Relu => kernels::relu_f32(x),
            Op::LeakyRelu { alpha } => kernels::leaky_relu_f32(x, alpha),
            Op::Tanh => kernels::tanh_f32(x),
            Op::Sigmoid => kernels::sigmoid_f32(x),
            Op::Exp if cfg!(feature = "graph") => graph::exp_f32(x),
            _ => {}
        }
    }
    fn binary(op: Binary, acc: &mut [f32], _: Quant, b: &[f32], _: Quant, _: Quant) {
        graph::binary_f32(op, acc, b);
    }
    fn binary_channel(op: Binary, acc: &mut [f32], _: Quant, v: &[f32], plane: usize, _: Quant) {
        graph::binary_channel_f32(op, acc, v, plane);
    }
    fn requantize(_: &mut [f32], _: Quant, _: Quant) {}
    fn activation(x: &[f32]) -> Activation<'_> {
        Activation::F32(x)
    }
}

impl Element for i8 {
    #[inline]
    fn from_f32(x: f32, q: Quant) -> i8 {
        q.quantize(x)
    }
    fn linear(op: &Op<'_>, x: &[i8], y: &mut [i8]) -> bool {
        match *op {
            Op::DenseI8 { w, b, rq } => kernels::dense_i8(w, b, x, &rq, y),
            Op::ConvI8 { g, w, b, rq } if cfg!(feature = "conv2d") => {
                kernels::conv2d_i8(&g, w, b, x, &rq, y)
            }
            Op::ConvTransposeI8 { g, w, b, rq } if cfg!(feature = "conv-transpose2d") => {
                kernels::conv_transpose2d_i8(&g, w, b, x, &rq, y)
            }
            _ => return false,
        }
        true
    }
    fn unary(op: &Op<'_>, x: &mut [i8]) {
        if let Op::Lut { table } = *op {
            kernels::lut_i8(x, table);
        }
    }
    fn binary(op: Binary, acc: &mut [i8], qa: Quant, b: &[i8], qb: Quant, qo: Quant) {
        graph::binary_i8(op, acc, qa, b, qb, qo);
    }
    fn binary_channel(op: Binary, acc: &mut [i8], qa: Quant, v: &[f32], plane: usize, qo: Quant) {
        graph::binary_channel_i8(op, acc, qa, v, plane, qo);
    }
    fn requantize(x: &mut [i8], from: Quant, to: Quant) {
        graph::requantize_i8(x, from, to);
    }
    fn activation(x: &[i8]) -> Activation<'_> {
        Activation::I8(x)
    }
}

/// `read` as shared and `write` as exclusive, if they are disjoint and inside `buf`.
fn split<T>(buf: &mut [T], read: Range<usize>, write: Range<usize>) -> Option<(&[T], &mut [T])> {
    if read.end <= write.start {
        let (lo, hi) = buf.split_at_mut(write.start.min(buf.len()));
        Some((lo.get(read)?, hi.get_mut(..write.len())?))
    } else if write.end <= read.start {
        let (lo, hi) = buf.split_at_mut(read.start.min(buf.len()));
        Some((hi.get(..read.len())?, lo.get_mut(write)?))
    } else {
        None
    }
}

/// Copies `src` to `dst_start` inside `buf`, if both fit and they are the same place or
/// disjoint (the parse allows nothing else; a plain copy keeps `memmove` out of the image).
fn copy<T: Copy>(buf: &mut [T], src: Range<usize>, dst_start: usize) -> Option<()> {
    if src.start == dst_start {
        return Some(());
    }
    let dst = dst_start..dst_start.checked_add(src.len())?;
    let (x, y) = split(buf, src, dst)?;
    for (d, &v) in y.iter_mut().zip(x) {
        *d = v;
    }
    Some(())
}

/// `out`'s elements, after copying `a` there unless the op runs in place.
fn prepare<T: Copy>(buf: &mut [T], a: Range<usize>, out: Range<usize>) -> Option<&mut [T]> {
    copy(buf, a, out.start)?;
    buf.get_mut(out)
}

impl<'a> Model<'a> {
    /// Runs every op; returns the output tensor.
    pub(super) fn execute<'b>(
        &self,
        arena: &'b mut [u8],
        inputs: [Option<Source<'_>>; format::MAX_INPUTS],
        inspect: &mut dyn FnMut(usize, Activation<'_>),
    ) -> Result<Final<'b>, Error> {
        let got = arena.len();
        if got < self.arena_bytes {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_bytes,
                got,
            });
        }
        // `Model::parse` rejects precisions left out by cargo features, so the guards only let
        // the compiler drop the code of those kernels.
        match self.precision {
            Precision::F32 if cfg!(feature = "f32") => Ok(Final::F32(self.execute_as(
                cast::aligned_f32s_mut(arena),
                inputs,
                inspect,
            )?)),
            Precision::Int8 if cfg!(feature = "int8") => Ok(Final::I8(self.execute_as(
                cast::aligned_i8s_mut(arena),
                inputs,
                inspect,
            )?)),
            precision => Err(Error::PrecisionDisabled {
                code: precision.code(),
            }),
        }
    }

    fn execute_as<'b, T: Element>(
        &self,
        buf: &'b mut [T],
        inputs: [Option<Source<'_>>; format::MAX_INPUTS],
        inspect: &mut dyn FnMut(usize, Activation<'_>),
    ) -> Result<&'b [T], Error> {
        let short = Error::ArenaTooSmall {
            needed: self.arena_bytes,
            got: buf.len().saturating_mul(core::mem::size_of::<T>()),
        };
        let elem = self.precision.element_bytes();
        // A second input needs the `graph` feature (the parse refuses it otherwise).
        let count = if cfg!(feature = "graph") {
            self.input_count
        } else {
            1
        };
        for (index, source) in inputs.into_iter().enumerate().take(count) {
            let t = self.tensor(index)?;
            let x = buf.get_mut(t.range(elem)).ok_or(short)?;
            match source {
                Some(Source::Given(z)) => {
                    for (d, &v) in x.iter_mut().zip(z) {
                        *d = T::from_f32(v, t.quant);
                    }
                }
                Some(Source::Sampled(rng)) => {
                    for d in x.iter_mut() {
                        *d = T::from_f32(rng.next_gaussian(), t.quant);
                    }
                }
                None => {}
            }
        }
        let mut ops = self.decoder();
        while let Some(step) = ops.next_step()? {
            let (a, out) = (step.a.range(elem), step.out.range(elem));
            let plane = step.a.dims.h * step.a.dims.w;
            match step.op {
                Op::Reshape | Op::Slice => {}
                op if op.in_place() => {
                    if let Op::Binary { kind, operand } = op {
                        match operand {
                            Operand::Tensor(b) if cfg!(feature = "graph") => {
                                let b = self.tensor(b)?;
                                copy(buf, a, out.start).ok_or(short)?;
                                let (x, y) = split(buf, b.range(elem), out).ok_or(short)?;
                                T::binary(kind, y, step.a.quant, x, b.quant, step.out.quant);
                            }
                            Operand::Channel(v) if cfg!(feature = "graph") => {
                                let y = prepare(buf, a, out).ok_or(short)?;
                                T::binary_channel(kind, y, step.a.quant, v, plane, step.out.quant);
                            }
                            _ => {}
                        }
                    } else {
                        T::unary(&op, prepare(buf, a, out).ok_or(short)?);
                    }
                }
                Op::Concat { b } if cfg!(feature = "graph") => {
                    let b = self.tensor(b)?;
                    let mut at = out.start;
                    for part in [step.a, b] {
                        let range = part.range(elem);
                        let len = range.len();
                        copy(buf, range, at).ok_or(short)?;
                        let end = at.checked_add(len).ok_or(short)?;
                        T::requantize(
                            buf.get_mut(at..end).ok_or(short)?,
                            part.quant,
                            step.out.quant,
                        );
                        at = end;
                    }
                }
                Op::Gather { index } if cfg!(feature = "graph") => {
                    let (x, y) = split(buf, a, out).ok_or(short)?;
                    graph::gather(index, plane, x, y);
                }
                op => {
                    // Dense and convolutions (and ops compiled out, which the parse refused).
                    let (x, y) = split(buf, a, out).ok_or(short)?;
                    T::linear(&op, x, y);
                }
            }
            inspect(
                ops.index - 1,
                T::activation(buf.get(step.out.range(elem)).ok_or(short)?),
            );
        }
        let t = self.tensor(self.output_tensor)?;
        buf.get(t.range(elem)).ok_or(short)
    }
}
