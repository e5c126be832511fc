//! Decoding and checking the layer table: [`Walker`] turns one record at a time into a
//! [`Step`] that borrows its tensors from the file, with every check the parse needs.

use super::cast;
use super::read::*;
use super::{Dims, Model, Precision};
use crate::error::Error;
use crate::format::{self, record};
use crate::geometry::ConvGeometry;
use crate::kernels::{ConvGeom, Requant};

/// One decoded layer, borrowing its tensors from the file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op<'a> {
    DenseF32 {
        w: &'a [f32],
        b: &'a [f32],
    },
    ConvF32 {
        g: ConvGeom,
        w: &'a [f32],
        b: &'a [f32],
    },
    ConvTransposeF32 {
        g: ConvGeom,
        w: &'a [f32],
        b: &'a [f32],
    },
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Tanh,
    Sigmoid,
    Reshape,
    DenseI8 {
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    ConvI8 {
        g: ConvGeom,
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    ConvTransposeI8 {
        g: ConvGeom,
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    Lut {
        table: &'a [i8; format::LUT_LEN],
    },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Step<'a> {
    pub(super) op: Op<'a>,
    pub(super) input: Dims,
    pub(super) output: Dims,
}

/// Walks the layer table, decoding and validating one record at a time. `Model::parse` runs it
/// to the end once; `run` runs it again, so both use the same checks and a model that parsed
/// decodes the same way every time.
pub(super) struct Walker<'a> {
    pub(super) file: &'a [u8],
    pub(super) precision: Precision,
    pub(super) count: usize,
    pub(super) index: usize,
    pub(super) dims: Dims,
    pub(super) zero_point: i8,
    /// End of the previous tensor (the data offset before the first).
    pub(super) end: usize,
    /// Whether to check the per-byte contents again (the parse does; a run walks a file the
    /// parse accepted and the model borrows immutably, so it only repeats the O(1) checks).
    pub(super) full_check: bool,
}

/// What a tensor slot holds, for length computation.
#[derive(Clone, Copy)]
pub(super) enum Elem {
    F32,
    I8,
    I32,
    U8,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F32 | Elem::I32 => 4,
            Elem::I8 | Elem::U8 => 1,
        }
    }
}

impl<'a> Walker<'a> {
    pub(super) fn next_step(&mut self) -> Result<Option<Step<'a>>, Error> {
        if self.index >= self.count {
            return Ok(None);
        }
        let layer = self.index;
        let base = layer
            .checked_mul(format::RECORD_LEN)
            .and_then(|o| o.checked_add(format::HEADER_LEN))
            .ok_or(Error::BadShape { layer })?;
        let file = self.file;
        let at = |field: usize| base + field;
        let int8 = self.precision == Precision::Int8;

        let code = u8_at(file, at(record::OP))?;
        check_zero(file, at(record::RESERVED_A), at(record::OUTPUT_SHAPE))?;
        check_zero(file, at(record::RESERVED_B), at(record::GEOMETRY))?;
        check_zero(file, at(record::RESERVED_C), at(record::TENSORS))?;
        let output = dims_at(file, at(record::OUTPUT_SHAPE))?;
        let out_len = output
            .checked_len()
            .filter(|&n| n > 0)
            .ok_or(Error::BadShape { layer })?;
        let input = self.dims;
        let in_len = input.checked_len().ok_or(Error::BadShape { layer })?;

        let is_conv = matches!(code, format::OP_CONV2D | format::OP_CONV_TRANSPOSE2D);
        let is_linear = is_conv || code == format::OP_DENSE;
        let uses_zp = int8 && (is_linear || code == format::OP_LUT);
        let allowed = match code {
            format::OP_DENSE
            | format::OP_CONV2D
            | format::OP_CONV_TRANSPOSE2D
            | format::OP_RESHAPE => true,
            format::OP_RELU | format::OP_LEAKY_RELU | format::OP_TANH | format::OP_SIGMOID => !int8,
            format::OP_LUT => int8,
            _ => false,
        };
        if !allowed {
            return Err(Error::BadOpCode { layer, code });
        }
        let enabled = match code {
            format::OP_CONV2D => cfg!(feature = "conv2d"),
            format::OP_CONV_TRANSPOSE2D => cfg!(feature = "conv-transpose2d"),
            _ => true,
        };
        if !enabled {
            return Err(Error::OpDisabled { layer, code });
        }
        // Fields an op does not use must be zero.
        if !is_conv {
            check_zero(file, at(record::GEOMETRY), at(record::ALPHA))?;
        }
        if int8 || code != format::OP_LEAKY_RELU {
            check_zero(file, at(record::ALPHA), at(record::IN_ZERO_POINT))?;
        }
        if !uses_zp {
            check_zero(file, at(record::IN_ZERO_POINT), at(record::CLAMP_MIN))?;
        }
        if !(int8 && is_linear) {
            check_zero(file, at(record::CLAMP_MIN), at(record::RESERVED_C))?;
        }

        let in_zp = i8_at(file, at(record::IN_ZERO_POINT))?;
        let out_zp = i8_at(file, at(record::OUT_ZERO_POINT))?;
        if uses_zp && in_zp != self.zero_point {
            return Err(Error::ZeroPointMismatch {
                layer,
                expected: self.zero_point,
                found: in_zp,
            });
        }
        let clamp_min = i8_at(file, at(record::CLAMP_MIN))?;
        let clamp_max = i8_at(file, at(record::CLAMP_MAX))?;

        let mismatch = |expected: usize| Error::ShapeMismatch {
            layer,
            expected,
            found: out_len,
        };
        let same_shape = |expected: Dims| {
            if output == expected {
                Ok(())
            } else {
                Err(mismatch(in_len))
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
            let g = |i: usize| -> Result<usize, Error> {
                Ok(usize::from(u16_at(file, at(record::GEOMETRY) + 2 * i)?))
            };
            let geometry = ConvGeometry {
                kernel: (g(0)?, g(1)?),
                stride: (g(2)?, g(3)?),
                pad: (g(4)?, g(5)?),
                output_padding: (g(6)?, g(7)?),
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
                return Err(Error::BadAttribute { layer });
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

        // Shape rules and the tensors each op needs.
        let overflow = Error::BadShape { layer };
        let mut slots: [Option<(usize, Elem)>; format::MAX_TENSORS] = [None; format::MAX_TENSORS];
        match code {
            format::OP_DENSE | format::OP_CONV2D | format::OP_CONV_TRANSPOSE2D => {
                let weights = if code == format::OP_DENSE {
                    if output.h != 1 || output.w != 1 {
                        return Err(Error::BadAttribute { layer });
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
                    return Err(Error::BadAttribute { layer });
                }
            }
            format::OP_RELU | format::OP_TANH | format::OP_SIGMOID | format::OP_LEAKY_RELU => {
                same_shape(input)?
            }
            format::OP_LUT => {
                same_shape(input)?;
                slots[0] = Some((format::LUT_LEN, Elem::I8));
            }
            _ => {
                // Reshape: same number of elements.
                if out_len != in_len {
                    return Err(mismatch(in_len));
                }
            }
        }

        // Tensor slots: canonical offsets, exact lengths, zero padding, aligned addresses.
        let mut tensors: [&'a [u8]; format::MAX_TENSORS] = [&[]; format::MAX_TENSORS];
        for (slot, (spec, tensor)) in slots.iter().zip(tensors.iter_mut()).enumerate() {
            let slot_at = at(record::TENSORS) + 8 * slot;
            let offset = usize_at(file, slot_at)?;
            let len = usize_at(file, slot_at + 4)?;
            let Some((count, elem)) = *spec else {
                check_zero(file, slot_at, slot_at + 8)?;
                continue;
            };
            let expected_len = count.checked_mul(elem.size()).ok_or(overflow)?;
            let expected_offset = format::align_up(self.end).ok_or(overflow)?;
            if offset != expected_offset {
                return Err(Error::TensorOffset {
                    layer,
                    slot,
                    expected: expected_offset,
                    found: offset,
                });
            }
            if len != expected_len {
                return Err(Error::TensorLength {
                    layer,
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
            *tensor = bytes;
            self.end = end;
        }

        let misaligned = |slot: usize| Error::Misaligned {
            offset: usize_at(file, at(record::TENSORS) + 8 * slot).unwrap_or(0),
        };
        let [t0, t1, t2, t3] = tensors;
        let f32s = |t: &'a [u8], slot| cast::f32s(t).ok_or(misaligned(slot));
        let i32s = |t: &'a [u8], slot| cast::i32s(t).ok_or(misaligned(slot));
        let rq = |multiplier: &'a [i32], shift: &'a [u8]| -> Result<Requant<'a>, Error> {
            if self.full_check {
                for (channel, (&m, &s)) in multiplier.iter().zip(shift).enumerate() {
                    if m <= 0 || s > format::MAX_SHIFT {
                        return Err(Error::BadRequant { layer, channel });
                    }
                }
            }
            Ok(Requant {
                in_zero_point: i32::from(in_zp),
                out_zero_point: i32::from(out_zp),
                multiplier,
                shift,
                min: clamp_min,
                max: clamp_max,
            })
        };
        let op = match (code, int8) {
            (format::OP_DENSE, false) => Op::DenseF32 {
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_CONV2D, false) => Op::ConvF32 {
                g: geom,
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_CONV_TRANSPOSE2D, false) => Op::ConvTransposeF32 {
                g: geom,
                w: f32s(t0, 0)?,
                b: f32s(t1, 1)?,
            },
            (format::OP_DENSE, true) => Op::DenseI8 {
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_CONV2D, true) => Op::ConvI8 {
                g: geom,
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_CONV_TRANSPOSE2D, true) => Op::ConvTransposeI8 {
                g: geom,
                w: cast::i8s(t0),
                b: i32s(t1, 1)?,
                rq: rq(i32s(t2, 2)?, t3)?,
            },
            (format::OP_RELU, _) => Op::Relu,
            (format::OP_LEAKY_RELU, _) => {
                let alpha = f32::from_bits(u32_at(file, at(record::ALPHA))?);
                if !alpha.is_finite() {
                    return Err(Error::BadAttribute { layer });
                }
                Op::LeakyRelu { alpha }
            }
            (format::OP_TANH, _) => Op::Tanh,
            (format::OP_SIGMOID, _) => Op::Sigmoid,
            (format::OP_LUT, _) => Op::Lut {
                table: <&[i8; format::LUT_LEN]>::try_from(cast::i8s(t0)).map_err(|_| {
                    Error::TensorLength {
                        layer,
                        slot: 0,
                        expected: format::LUT_LEN,
                        found: t0.len(),
                    }
                })?,
            },
            _ => Op::Reshape,
        };
        if uses_zp {
            self.zero_point = out_zp;
        }
        self.dims = output;
        self.index += 1;
        Ok(Some(Step { op, input, output }))
    }
}

impl<'a> Model<'a> {
    pub(super) fn walker(&self) -> Walker<'a> {
        Walker {
            file: self.file,
            precision: self.precision,
            count: self.layer_count,
            index: 0,
            dims: self.input,
            zero_point: self.input_zero_point,
            end: self.data_offset,
            full_check: false,
        }
    }
}
