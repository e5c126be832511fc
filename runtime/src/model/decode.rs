//! Decoding and checking the op table: [`Decoder`] turns one record at a time into a [`Step`]
//! that borrows its weights from the file, with every per-op check of the parse (codes, shapes,
//! attributes, weight placement). The graph-wide checks (lifetimes, placement, overlap) are in
//! `check`.

use super::cast;
use super::header::{tensor_at, Tensor};
use super::op::{Op, Operand, Step};
use super::read::*;
use super::{Dims, Model, Precision};
use crate::error::Error;
use crate::format::{self, record};
use crate::geometry::ConvGeometry;
use crate::kernels::graph::Binary;
use crate::kernels::{ConvGeom, Requant};

/// Decodes the op table one record at a time. `Model::parse` runs it to the end with every
/// check; a run decodes the same records again, repeating only the O(1) checks, so both see the
/// same ops.
pub(super) struct Decoder<'a> {
    pub(super) file: &'a [u8],
    pub(super) precision: Precision,
    pub(super) tensor_count: usize,
    pub(super) input_count: usize,
    pub(super) count: usize,
    pub(super) index: usize,
    /// End of the previous weight (the data offset before the first).
    pub(super) end: usize,
    /// Whether to check per-byte contents (padding, requantisation, gather indices) and tensor
    /// records: the parse does, a run walks a file the parse accepted.
    pub(super) full_check: bool,
}

/// What a weight slot holds, for length computation.
#[derive(Clone, Copy)]
enum Elem {
    F32,
    I8,
    I32,
    U8,
    U16,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F32 | Elem::I32 => 4,
            Elem::U16 => 2,
            Elem::I8 | Elem::U8 => 1,
        }
    }
}

impl<'a> Decoder<'a> {
    /// Reads tensor `index` named by op `op`.
    fn tensor(&self, op: usize, index: usize) -> Result<Tensor, Error> {
        if index >= self.tensor_count {
            return Err(Error::BadTensorRef { op, tensor: index });
        }
        tensor_at(
            self.file,
            index,
            self.precision,
            index < self.input_count,
            self.full_check,
        )
    }

    pub(super) fn next_step(&mut self) -> Result<Option<Step<'a>>, Error> {
        if self.index >= self.count {
            return Ok(None);
        }
        let op = self.index;
        let base = format::op_table(self.tensor_count)
            .and_then(|t| t.checked_add(op.checked_mul(format::RECORD_LEN)?))
            .ok_or(truncated(usize::MAX, self.file.len()))?;
        let file = self.file;
        let at = |field: usize| base + field;
        // A constant when one precision is compiled in (the header refuses the other), so the
        // compiler keeps only that precision's decoding.
        let int8 = if !cfg!(feature = "f32") {
            true
        } else if !cfg!(feature = "int8") {
            false
        } else {
            self.precision == Precision::Int8
        };

        // The record is bounds-checked once; its fields come out of it without further checks.
        let rec = Fields::<{ format::RECORD_LEN }>::read(file, base)?;
        let code = rec.u8(record::OP);
        // Unused fields are zero: checked by the parse; a run decodes what the parse accepted.
        let full_check = self.full_check;
        let zero = |start, end| {
            if full_check {
                rec.zero(start, end)
            } else {
                Ok(())
            }
        };
        zero(record::RESERVED_A, record::INPUT_A)?;
        zero(record::RESERVED_B, record::CLAMP_MIN)?;
        zero(record::RESERVED_C, record::WEIGHTS)?;

        // With a cargo feature off, its ops were refused above (`OpDisabled`); these constants
        // let the compiler drop their decoding too.
        let graph = cfg!(feature = "graph");
        let conv = cfg!(any(feature = "conv2d", feature = "conv-transpose2d"));
        let is_conv = conv && matches!(code, format::OP_CONV2D | format::OP_CONV_TRANSPOSE2D);
        let is_linear = is_conv || code == format::OP_DENSE;
        let is_binary = graph && matches!(code, format::OP_ADD | format::OP_SUB | format::OP_MUL);
        let allowed = match code {
            format::OP_DENSE
            | format::OP_CONV2D
            | format::OP_CONV_TRANSPOSE2D
            | format::OP_RESHAPE
            | format::OP_ADD
            | format::OP_SUB
            | format::OP_MUL
            | format::OP_CONCAT
            | format::OP_SLICE
            | format::OP_GATHER => true,
            format::OP_RELU
            | format::OP_LEAKY_RELU
            | format::OP_TANH
            | format::OP_SIGMOID
            | format::OP_EXP => !int8,
            format::OP_LUT => int8,
            _ => false,
        };
        if !allowed {
            return Err(Error::BadOpCode { op, code });
        }
        let enabled = match code {
            format::OP_CONV2D => cfg!(feature = "conv2d"),
            format::OP_CONV_TRANSPOSE2D => cfg!(feature = "conv-transpose2d"),
            format::OP_ADD
            | format::OP_SUB
            | format::OP_MUL
            | format::OP_EXP
            | format::OP_CONCAT
            | format::OP_SLICE
            | format::OP_GATHER => cfg!(feature = "graph"),
            _ => true,
        };
        if !enabled {
            return Err(Error::OpDisabled { op, code });
        }

        // Tensors and parameter.
        let a_index = rec.u16(record::INPUT_A);
        let b_index = rec.u16(record::INPUT_B);
        let out_index = rec.u16(record::OUTPUT);
        let param = rec.u32(record::PARAM);
        let operand_tensor = is_binary && param == format::OPERAND_TENSOR;
        if is_binary && param != format::OPERAND_TENSOR && param != format::OPERAND_CHANNEL {
            return Err(Error::BadAttribute { op });
        }
        let is_slice = graph && code == format::OP_SLICE;
        if !(is_binary || is_slice) && param != 0 {
            return Err(Error::NonZeroReserved {
                offset: at(record::PARAM),
            });
        }
        let uses_b = operand_tensor || (graph && code == format::OP_CONCAT);
        if !uses_b {
            zero(record::INPUT_B, record::OUTPUT)?;
        }
        if out_index < self.input_count {
            return Err(Error::BadTensorRef {
                op,
                tensor: out_index,
            });
        }
        let a = self.tensor(op, a_index)?;
        let b = if uses_b {
            Some(self.tensor(op, b_index)?)
        } else {
            None
        };
        let out = self.tensor(op, out_index)?;
        let (input, output) = (a.dims, out.dims);
        let (in_len, out_len) = (a.len, out.len);

        // Fields an op does not use must be zero.
        if !is_conv {
            zero(record::GEOMETRY, record::ALPHA)?;
        }
        if int8 || code != format::OP_LEAKY_RELU {
            zero(record::ALPHA, record::RESERVED_B)?;
        }
        if !(int8 && is_linear) {
            zero(record::CLAMP_MIN, record::RESERVED_C)?;
        }
        let clamp_min = rec.u8(record::CLAMP_MIN) as i8;
        let clamp_max = rec.u8(record::CLAMP_MAX) as i8;

        let mismatch = |expected: usize| Error::ShapeMismatch {
            op,
            expected,
            found: out_len,
        };
        let same_shape = |expected: Dims| {
            if output == expected {
                Ok(())
            } else {
                Err(mismatch(expected.len()))
            }
        };
        let same_plane = |x: Dims| {
            if output.h == x.h && output.w == x.w {
                Ok(())
            } else {
                Err(mismatch(0))
            }
        };
        let same_quant = |x: &Tensor| {
            if int8
                && (x.quant.scale.to_bits(), x.quant.zero_point)
                    != (out.quant.scale.to_bits(), out.quant.zero_point)
            {
                Err(Error::QuantMismatch { op })
            } else {
                Ok(())
            }
        };

        // Geometry of convolutions, with the output shape it implies.
        let mut geom = ConvGeom {
            in_ch: input.c,
            in_h: input.h,
            in_w: input.w,
            out_ch: output.c,
            out_h: output.h,
            out_w: output.w,
            k_h: 0,
            k_w: 0,
            stride_h: 0,
            stride_w: 0,
            pad_h: 0,
            pad_w: 0,
        };
        if is_conv {
            let g = |i: usize| rec.u16(record::GEOMETRY + 2 * i);
            let geometry = ConvGeometry {
                kernel: (g(0), g(1)),
                stride: (g(2), g(3)),
                pad: (g(4), g(5)),
                output_padding: (g(6), g(7)),
            };
            // With one convolution compiled in, the other cannot reach here (OpDisabled
            // above), so the compiler keeps only the output-size rule of the one in use.
            let transposed = if !cfg!(feature = "conv2d") {
                true
            } else if !cfg!(feature = "conv-transpose2d") {
                false
            } else {
                code == format::OP_CONV_TRANSPOSE2D
            };
            if geometry.check(transposed).is_err() {
                return Err(Error::BadAttribute { op });
            }
            match geometry.output_size(transposed, input.h, input.w) {
                Some((h, w)) if h == output.h && w == output.w => {}
                Some((h, w)) => {
                    return Err(mismatch(output.c.saturating_mul(h).saturating_mul(w)));
                }
                None => return Err(mismatch(0)),
            }
            (geom.k_h, geom.k_w) = geometry.kernel;
            (geom.stride_h, geom.stride_w) = geometry.stride;
            (geom.pad_h, geom.pad_w) = geometry.pad;
        }

        // Shape rules and the weights each op needs.
        let overflow = Error::ShapeMismatch {
            op,
            expected: 0,
            found: out_len,
        };
        let mut slots: [Option<(usize, Elem)>; format::MAX_WEIGHTS] = [None; format::MAX_WEIGHTS];
        match code {
            format::OP_DENSE | format::OP_CONV2D | format::OP_CONV_TRANSPOSE2D if is_linear => {
                let weights = if code == format::OP_DENSE {
                    if output.h != 1 || output.w != 1 {
                        return Err(Error::BadAttribute { op });
                    }
                    in_len.checked_mul(out_len).ok_or(overflow)?
                } else {
                    input
                        .c
                        .checked_mul(output.c)
                        .and_then(|n| n.checked_mul(geom.k_h))
                        .and_then(|n| n.checked_mul(geom.k_w))
                        .ok_or(overflow)?
                };
                let ch = output.c;
                slots = if int8 {
                    [
                        Some((weights, Elem::I8)),
                        Some((ch, Elem::I32)),
                        Some((ch, Elem::I32)),
                        Some((ch, Elem::U8)),
                    ]
                } else {
                    [
                        Some((weights, Elem::F32)),
                        Some((ch, Elem::F32)),
                        None,
                        None,
                    ]
                };
                if int8 && clamp_min > clamp_max {
                    return Err(Error::BadAttribute { op });
                }
            }
            format::OP_RELU
            | format::OP_TANH
            | format::OP_SIGMOID
            | format::OP_LEAKY_RELU
            | format::OP_EXP => same_shape(input)?,
            format::OP_LUT => {
                same_shape(input)?;
                slots[0] = Some((format::LUT_LEN, Elem::I8));
            }
            format::OP_ADD | format::OP_SUB | format::OP_MUL if graph => {
                same_shape(input)?;
                match b {
                    Some(b) => {
                        if b.dims != input {
                            return Err(mismatch(0));
                        }
                    }
                    None => slots[0] = Some((input.c, Elem::F32)),
                }
            }
            format::OP_CONCAT if graph => {
                let b = b.map_or(input, |b| b.dims);
                same_plane(input)?;
                same_plane(b)?;
                let channels = input.c.checked_add(b.c).ok_or(overflow)?;
                if output.c != channels {
                    return Err(mismatch(output.h * output.w * channels));
                }
            }
            format::OP_SLICE if graph => {
                same_plane(input)?;
                same_quant(&a)?;
                let first = usize::try_from(param).map_err(|_| Error::BadAttribute { op })?;
                match first.checked_add(output.c) {
                    Some(end) if end <= input.c => {}
                    _ => return Err(Error::BadAttribute { op }),
                }
            }
            format::OP_GATHER if graph => {
                same_plane(input)?;
                same_quant(&a)?;
                slots[0] = Some((output.c, Elem::U16));
            }
            _ => {
                // Reshape: same number of elements.
                same_quant(&a)?;
                if out_len != in_len {
                    return Err(mismatch(in_len));
                }
            }
        }

        // Weight slots: canonical offsets, exact lengths, zero padding, aligned addresses.
        let mut weights: [&'a [u8]; format::MAX_WEIGHTS] = [&[]; format::MAX_WEIGHTS];
        for (slot, (spec, weight)) in slots.iter().zip(weights.iter_mut()).enumerate() {
            let field = record::WEIGHTS + 8 * slot;
            let offset = rec.usize(field);
            let len = rec.usize(field + 4);
            let Some((count, elem)) = *spec else {
                zero(field, field + 8)?;
                continue;
            };
            let expected_len = count.checked_mul(elem.size()).ok_or(overflow)?;
            let expected_offset = format::align_up(self.end).ok_or(overflow)?;
            if offset != expected_offset {
                return Err(Error::TensorOffset {
                    op,
                    slot,
                    expected: expected_offset,
                    found: offset,
                });
            }
            if len != expected_len {
                return Err(Error::TensorLength {
                    op,
                    slot,
                    expected: expected_len,
                    found: len,
                });
            }
            if self.full_check {
                check_zero(file, self.end, offset)?;
            }
            let end = offset
                .checked_add(len)
                .ok_or(truncated(usize::MAX, file.len()))?;
            let bytes = file.get(offset..end).ok_or(truncated(end, file.len()))?;
            if !bytes.as_ptr().addr().is_multiple_of(format::ALIGN) {
                return Err(Error::Misaligned { offset });
            }
            *weight = bytes;
            self.end = end;
        }

        let misaligned = |slot: usize| Error::Misaligned {
            offset: rec.usize(record::WEIGHTS + 8 * slot),
        };
        let [t0, t1, t2, t3] = weights;
        let f32s = |t: &'a [u8], slot| cast::f32s(t).ok_or(misaligned(slot));
        let i32s = |t: &'a [u8], slot| cast::i32s(t).ok_or(misaligned(slot));
        let rq = |multiplier: &'a [i32], shift: &'a [u8]| -> Result<Requant<'a>, Error> {
            if self.full_check {
                for (channel, (&m, &s)) in multiplier.iter().zip(shift).enumerate() {
                    if m <= 0 || s > format::MAX_SHIFT {
                        return Err(Error::BadRequant { op, channel });
                    }
                }
            }
            Ok(Requant {
                in_zero_point: i32::from(a.quant.zero_point),
                out_zero_point: i32::from(out.quant.zero_point),
                multiplier,
                shift,
                min: clamp_min,
                max: clamp_max,
            })
        };
        let binary = |kind: Binary| -> Result<Op<'a>, Error> {
            Ok(Op::Binary {
                kind,
                operand: if operand_tensor {
                    Operand::Tensor(b_index)
                } else {
                    Operand::Channel(f32s(t0, 0)?)
                },
            })
        };
        let decoded = match (code, int8) {
            (format::OP_DENSE, false) => Op::DenseF32 {
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_CONV2D, false) if is_conv => Op::ConvF32 {
                g: geom,
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_CONV_TRANSPOSE2D, false) if is_conv => Op::ConvTransposeF32 {
                g: geom,
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_DENSE, true) => Op::DenseI8 {
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_CONV2D, true) if is_conv => Op::ConvI8 {
                g: geom,
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_CONV_TRANSPOSE2D, true) if is_conv => Op::ConvTransposeI8 {
                g: geom,
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_RELU, _) => Op::Relu,
            (format::OP_LEAKY_RELU, _) => {
                let alpha = f32::from_bits(rec.u32(record::ALPHA));
                if !alpha.is_finite() {
                    return Err(Error::BadAttribute { op });
                }
                Op::LeakyRelu { alpha }
            }
            (format::OP_TANH, _) => Op::Tanh,
            (format::OP_SIGMOID, _) => Op::Sigmoid,
            (format::OP_EXP, _) if graph => Op::Exp,
            (format::OP_LUT, _) => Op::Lut {
                table: <&[i8; format::LUT_LEN]>::try_from(cast::i8s(t0)).map_err(|_| {
                    Error::TensorLength {
                        op,
                        slot: 0,
                        expected: format::LUT_LEN,
                        found: t0.len(),
                    }
                })?,
            },
            (format::OP_ADD, _) if graph => binary(Binary::Add)?,
            (format::OP_SUB, _) if graph => binary(Binary::Sub)?,
            (format::OP_MUL, _) if graph => binary(Binary::Mul)?,
            (format::OP_CONCAT, _) if graph => Op::Concat { b: b_index },
            (format::OP_SLICE, _) if graph => Op::Slice,
            (format::OP_GATHER, _) if graph => {
                if self.full_check {
                    for pair in t0.chunks_exact(2) {
                        let k = pair
                            .iter()
                            .rev()
                            .fold(0usize, |k, &b| k << 8 | usize::from(b));
                        if k >= input.c {
                            return Err(Error::BadAttribute { op });
                        }
                    }
                }
                Op::Gather { index: t0 }
            }
            _ => Op::Reshape,
        };
        self.index += 1;
        Ok(Some(Step {
            op: decoded,
            a,
            out,
            code,
            a_index,
            b_index: uses_b.then_some(b_index),
            out_index,
            param: usize::try_from(param).unwrap_or(usize::MAX),
        }))
    }
}

impl<'a> Model<'a> {
    pub(super) fn decoder(&self) -> Decoder<'a> {
        Decoder {
            file: self.file,
            precision: self.precision,
            tensor_count: self.tensor_count,
            input_count: self.input_count,
            count: self.op_count,
            index: 0,
            end: self.data_offset,
            full_check: false,
        }
    }
}
