//! Parsing a model file once and running it without allocation.
//!
//! [`Model::parse`] validates every byte of a [`crate::format`] file and borrows the tensors in
//! place. Running needs a caller-owned arena of [`Model::arena_bytes`] bytes (any alignment: the
//! runtime aligns inside it) and an output buffer; nothing else can fail.
//!
//! # Alignment of the model bytes
//!
//! Tensors are used in place as `&[f32]` / `&[i32]`, so the buffer holding the file must start at
//! a 16-byte aligned address ([`crate::format::ALIGN`]); `parse` returns
//! [`Error::Misaligned`] otherwise. On a microcontroller, embed the file with [`include_model!`]
//! (or, equivalently, through [`Aligned`]):
//!
//! ```ignore
//! static MODEL: &tinygen_runtime::model::Aligned<[u8]> =
//!     &tinygen_runtime::model::Aligned(*include_bytes!("decoder.tgm"));
//! let model = Model::parse(&MODEL.0)?;
//! ```
//!
//! On a host, `tinygen_export::tgm::AlignedBytes` copies a file into an aligned heap buffer.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cast;

use crate::error::Error;
use crate::format::{self, header, record};
use crate::geometry::ConvGeometry;
use crate::kernels::{self, ConvGeom, Requant};
use crate::rng::Rng;
pub use crate::vocab::{OutputRange, Part, Precision};

/// A value aligned to [`format::ALIGN`] bytes, for embedding a model file:
/// `static M: &Aligned<[u8]> = &Aligned(*include_bytes!("model.tgm"));` then `&M.0`.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Aligned<T: ?Sized>(pub T);

/// Embeds a model file at a 16-byte aligned address and evaluates to its `&'static [u8]`.
///
/// ```ignore
/// let model = tinygen_runtime::model::Model::parse(tinygen_runtime::include_model!("decoder.tgm"))?;
/// ```
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        static MODEL: &$crate::model::Aligned<[u8]> =
            &$crate::model::Aligned(*include_bytes!($path));
        &MODEL.0
    }};
}

/// Channels, height and width of one sample's activation (row-major CHW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims {
    /// Channels (features, for a flat vector).
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Dims {
    /// Number of elements (the product of the three sizes, each at most 65535).
    pub fn len(&self) -> usize {
        self.c.saturating_mul(self.h).saturating_mul(self.w)
    }

    /// True if a size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn checked_len(&self) -> Option<usize> {
        self.c.checked_mul(self.h)?.checked_mul(self.w)
    }
}

/// An intermediate activation handed to the callback of [`Model::run_inspect`].
#[derive(Debug, Clone, Copy)]
pub enum Activation<'b> {
    /// An f32 model's activation.
    F32(&'b [f32]),
    /// An int8 model's activation (in the quantisation of the layer that produced it).
    I8(&'b [i8]),
}

/// `clamp(round_half_even(x / scale) + zero_point, -128, 127)`: the int8 path's input quantiser
/// (ONNX `QuantizeLinear`). NaN quantises to the zero point.
pub fn quantize(x: f32, scale: f32, zero_point: i8) -> i8 {
    let q = libm::rintf(x / scale) as i32; // `as` saturates; NaN gives 0
    q.saturating_add(i32::from(zero_point)).clamp(-128, 127) as i8
}

/// `(q - zero_point) * scale`: the int8 path's output dequantiser (ONNX `DequantizeLinear`).
pub fn dequantize(q: i8, scale: f32, zero_point: i8) -> f32 {
    (i32::from(q) - i32::from(zero_point)) as f32 * scale
}

/// A parsed, validated model borrowing its file.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    file: &'a [u8],
    part: Part,
    precision: Precision,
    range: OutputRange,
    input: Dims,
    output: Dims,
    layer_count: usize,
    data_offset: usize,
    arena_bytes: usize,
    /// Largest activation in elements: each ping-pong buffer holds this many.
    max_elements: usize,
    input_scale: f32,
    input_zero_point: i8,
    output_scale: f32,
    output_zero_point: i8,
}

fn truncated(needed: usize, got: usize) -> Error {
    Error::Truncated { needed, got }
}

fn bytes_at<const N: usize>(file: &[u8], offset: usize) -> Result<[u8; N], Error> {
    let end = offset
        .checked_add(N)
        .ok_or(truncated(usize::MAX, file.len()))?;
    file.get(offset..end)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(truncated(end, file.len()))
}

fn u8_at(file: &[u8], offset: usize) -> Result<u8, Error> {
    Ok(u8::from_le_bytes(bytes_at::<1>(file, offset)?))
}

fn i8_at(file: &[u8], offset: usize) -> Result<i8, Error> {
    Ok(i8::from_le_bytes(bytes_at::<1>(file, offset)?))
}

fn u16_at(file: &[u8], offset: usize) -> Result<u16, Error> {
    Ok(u16::from_le_bytes(bytes_at::<2>(file, offset)?))
}

fn u32_at(file: &[u8], offset: usize) -> Result<u32, Error> {
    Ok(u32::from_le_bytes(bytes_at::<4>(file, offset)?))
}

fn usize_at(file: &[u8], offset: usize) -> Result<usize, Error> {
    // A u32 always fits the 32- and 64-bit targets this crate supports; on a 16-bit target the
    // conversion fails and the value reads as too large.
    Ok(usize::try_from(u32_at(file, offset)?).unwrap_or(usize::MAX))
}

fn dims_at(file: &[u8], offset: usize) -> Result<Dims, Error> {
    Ok(Dims {
        c: usize::from(u16_at(file, offset)?),
        h: usize::from(u16_at(file, offset + 2)?),
        w: usize::from(u16_at(file, offset + 4)?),
    })
}

fn check_zero(file: &[u8], start: usize, end: usize) -> Result<(), Error> {
    let bytes = file.get(start..end).ok_or(truncated(end, file.len()))?;
    match bytes.iter().position(|&b| b != 0) {
        Some(i) => Err(Error::NonZeroReserved { offset: start + i }),
        None => Ok(()),
    }
}

fn is_power_of_two_f32(x: f32) -> bool {
    let bits = x.to_bits();
    let exponent = (bits >> 23) & 0xFF;
    bits >> 31 == 0 && exponent != 0 && exponent != 0xFF && bits & 0x7F_FFFF == 0
}

fn usize_to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One decoded layer, borrowing its tensors from the file.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
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
struct Step<'a> {
    op: Op<'a>,
    input: Dims,
    output: Dims,
}

/// Walks the layer table, decoding and validating one record at a time. `Model::parse` runs it
/// to the end once; `run` runs it again, so both use the same checks and a model that parsed
/// decodes the same way every time.
struct Walker<'a> {
    file: &'a [u8],
    precision: Precision,
    count: usize,
    index: usize,
    dims: Dims,
    zero_point: i8,
    /// End of the previous tensor (the data offset before the first).
    end: usize,
    /// Whether to check the per-byte contents again (the parse does; a run walks a file the
    /// parse accepted and the model borrows immutably, so it only repeats the O(1) checks).
    full_check: bool,
}

/// What a tensor slot holds, for length computation.
#[derive(Clone, Copy)]
enum Elem {
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
    fn next_step(&mut self) -> Result<Option<Step<'a>>, Error> {
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
            let transposed = code == format::OP_CONV_TRANSPOSE2D;
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

/// Where the latent vector comes from.
enum Latent<'z> {
    Given(&'z [f32]),
    Sampled(&'z mut Rng),
}

/// The final activation, borrowed from the arena.
enum Final<'b> {
    F32(&'b [f32]),
    I8(&'b [i8]),
}

fn prefix<T>(s: &[T], n: usize, arena: usize, needed: usize) -> Result<&[T], Error> {
    s.get(..n)
        .ok_or(Error::ArenaTooSmall { needed, got: arena })
}

fn prefix_mut<T>(s: &mut [T], n: usize, arena: usize, needed: usize) -> Result<&mut [T], Error> {
    s.get_mut(..n)
        .ok_or(Error::ArenaTooSmall { needed, got: arena })
}

impl<'a> Model<'a> {
    /// Parses and validates a model file, borrowing its tensors in place.
    ///
    /// `file` must start at a 16-byte aligned address (see the module docs) and hold exactly the
    /// file. Every length, offset, code, shape, padding byte and the CRC-32 are checked here, so
    /// running the result cannot fail except on caller buffer sizes.
    pub fn parse(file: &'a [u8]) -> Result<Model<'a>, Error> {
        if file.len() < format::HEADER_LEN {
            return Err(truncated(format::HEADER_LEN, file.len()));
        }
        if bytes_at::<4>(file, header::MAGIC)? != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(file, header::VERSION)?;
        if version != format::VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let file_len = usize_at(file, header::FILE_LEN)?;
        if file.len() < file_len {
            return Err(truncated(file_len, file.len()));
        }
        if file.len() > file_len {
            return Err(Error::TrailingBytes {
                expected: file_len,
                got: file.len(),
            });
        }
        let stored_crc = u32_at(file, header::CRC)?;
        let crc = format::file_crc(file);
        if crc != stored_crc {
            return Err(Error::ChecksumMismatch {
                expected: stored_crc,
                found: crc,
            });
        }

        let code = u8_at(file, header::KIND)?;
        let part = Part::from_code(code).ok_or(Error::BadKind { code })?;
        let precision_code = u8_at(file, header::PRECISION)?;
        let precision = Precision::from_code(precision_code).ok_or(Error::BadPrecision {
            code: precision_code,
        })?;
        let compiled_in = match precision {
            Precision::F32 => cfg!(feature = "f32"),
            Precision::Int8 => cfg!(feature = "int8"),
        };
        if !compiled_in {
            return Err(Error::PrecisionDisabled {
                code: precision_code,
            });
        }
        let code = u8_at(file, header::OUTPUT_RANGE)?;
        let range = OutputRange::from_code(code).ok_or(Error::BadOutputRange { code })?;
        check_zero(file, header::RESERVED_A, header::RESERVED_A + 1)?;
        check_zero(
            file,
            header::RESERVED_B,
            header::RESERVED_B + header::RESERVED_B_LEN,
        )?;

        let input_scale = f32::from_bits(u32_at(file, header::INPUT_SCALE)?);
        let output_scale = f32::from_bits(u32_at(file, header::OUTPUT_SCALE)?);
        let input_zero_point = i8_at(file, header::INPUT_ZERO_POINT)?;
        let output_zero_point = i8_at(file, header::OUTPUT_ZERO_POINT)?;
        match precision {
            Precision::F32 => {
                check_zero(file, header::INPUT_ZERO_POINT, header::RESERVED_A)?;
                check_zero(file, header::INPUT_SCALE, header::LAYER_COUNT)?;
            }
            Precision::Int8 => {
                if !is_power_of_two_f32(input_scale) {
                    return Err(Error::BadScale {
                        offset: header::INPUT_SCALE,
                    });
                }
                if !(output_scale.is_finite() && output_scale > 0.0) {
                    return Err(Error::BadScale {
                        offset: header::OUTPUT_SCALE,
                    });
                }
            }
        }

        let input = dims_at(file, header::INPUT_SHAPE)?;
        let output = dims_at(file, header::OUTPUT_SHAPE)?;
        let header_shapes = Error::BadShape { layer: usize::MAX };
        let in_len = input
            .checked_len()
            .filter(|&n| n > 0)
            .ok_or(header_shapes)?;
        output
            .checked_len()
            .filter(|&n| n > 0)
            .ok_or(header_shapes)?;

        let layer_count = usize_at(file, header::LAYER_COUNT)?;
        if layer_count == 0 {
            return Err(Error::NoLayers);
        }
        let table_end = layer_count
            .checked_mul(format::RECORD_LEN)
            .and_then(|n| n.checked_add(format::HEADER_LEN))
            .ok_or(truncated(usize::MAX, file.len()))?;
        let data_offset = format::align_up(table_end).ok_or(truncated(usize::MAX, file.len()))?;
        if data_offset > file.len() {
            return Err(truncated(data_offset, file.len()));
        }
        let stored_data_offset = u32_at(file, header::DATA_OFFSET)?;
        if usize::try_from(stored_data_offset).ok() != Some(data_offset) {
            return Err(Error::BadHeaderField {
                offset: header::DATA_OFFSET,
                found: stored_data_offset,
                expected: usize_to_u32(data_offset),
            });
        }
        check_zero(file, table_end, data_offset)?;

        let mut walker = Walker {
            file,
            precision,
            count: layer_count,
            index: 0,
            dims: input,
            zero_point: input_zero_point,
            end: data_offset,
            full_check: true,
        };
        let mut max_elements = in_len;
        while let Some(step) = walker.next_step()? {
            max_elements = max_elements.max(step.output.len());
        }
        if walker.dims != output {
            let found = [output.c, output.h, output.w];
            let expected = [walker.dims.c, walker.dims.h, walker.dims.w];
            for (k, (f, e)) in found.iter().zip(expected).enumerate() {
                if *f != e {
                    return Err(Error::BadHeaderField {
                        offset: header::OUTPUT_SHAPE + 2 * k,
                        found: usize_to_u32(*f),
                        expected: usize_to_u32(e),
                    });
                }
            }
        }
        if precision == Precision::Int8 && walker.zero_point != output_zero_point {
            return Err(Error::ZeroPointMismatch {
                layer: usize::MAX,
                expected: walker.zero_point,
                found: output_zero_point,
            });
        }
        let expected_len = format::align_up(walker.end).ok_or(truncated(usize::MAX, file.len()))?;
        if expected_len != file_len {
            return Err(Error::BadHeaderField {
                offset: header::FILE_LEN,
                found: usize_to_u32(file_len),
                expected: usize_to_u32(expected_len),
            });
        }
        check_zero(file, walker.end, file_len)?;

        let arena_bytes = format::arena_bytes(precision_code, max_elements)
            .ok_or(Error::BadShape { layer: usize::MAX })?;
        let stored_arena = u32_at(file, header::ARENA_BYTES)?;
        if usize::try_from(stored_arena).ok() != Some(arena_bytes) {
            return Err(Error::BadHeaderField {
                offset: header::ARENA_BYTES,
                found: stored_arena,
                expected: usize_to_u32(arena_bytes),
            });
        }

        Ok(Model {
            file,
            part,
            precision,
            range,
            input,
            output,
            layer_count,
            data_offset,
            arena_bytes,
            max_elements,
            input_scale,
            input_zero_point,
            output_scale,
            output_zero_point,
        })
    }

    /// Elements of the latent vector `z` (the input).
    pub fn latent_len(&self) -> usize {
        self.input.len()
    }

    /// Shape of the input.
    pub fn input_shape(&self) -> Dims {
        self.input
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> Dims {
        self.output
    }

    /// Elements of one output sample.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Bytes the arena passed to `run` must hold (any alignment).
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Precision of the weights and activations.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// What part of a trained model this is.
    pub fn part(&self) -> Part {
        self.part
    }

    /// The output's range.
    pub fn output_range(&self) -> OutputRange {
        self.range
    }

    /// Number of layers.
    pub fn layer_count(&self) -> usize {
        self.layer_count
    }

    /// The file this model borrows.
    pub fn bytes(&self) -> &'a [u8] {
        self.file
    }

    /// Input quantisation `(scale, zero point)` of an int8 model (`None` for f32).
    pub fn input_quantization(&self) -> Option<(f32, i8)> {
        (self.precision == Precision::Int8).then_some((self.input_scale, self.input_zero_point))
    }

    /// Output dequantisation `(scale, zero point)` of an int8 model (`None` for f32).
    pub fn output_quantization(&self) -> Option<(f32, i8)> {
        (self.precision == Precision::Int8).then_some((self.output_scale, self.output_zero_point))
    }

    /// Runs the model on latent `z` (`latent_len()` values) and writes `output_len()` values to
    /// the start of `out`; an int8 model quantises `z` and dequantises its output.
    pub fn run(&self, z: &[f32], arena: &mut [u8], out: &mut [f32]) -> Result<(), Error> {
        self.run_inspect(z, arena, out, &mut |_, _| {})
    }

    /// As [`Model::run`], and calls `inspect(layer, activation)` after every layer with that
    /// layer's output (int8 models give their int8 activations).
    pub fn run_inspect(
        &self,
        z: &[f32],
        arena: &mut [u8],
        out: &mut [f32],
        inspect: &mut dyn FnMut(usize, Activation<'_>),
    ) -> Result<(), Error> {
        self.check_latent(z)?;
        self.check_out(out.len())?;
        let last = self.execute(arena, Latent::Given(z), inspect)?;
        self.write_f32(last, out);
        Ok(())
    }

    /// Runs the model on `z` and writes `output_len()` pixels (see [`OutputRange::to_pixel`]).
    pub fn run_u8(&self, z: &[f32], arena: &mut [u8], out: &mut [u8]) -> Result<(), Error> {
        self.check_latent(z)?;
        self.check_out(out.len())?;
        let last = self.execute(arena, Latent::Given(z), &mut |_, _| {})?;
        self.write_u8(last, out);
        Ok(())
    }

    /// Samples `z ~ N(0, 1)` from `rng` (`latent_len()` calls of [`Rng::next_gaussian`]) and runs
    /// the model on it. Buffer sizes are checked before the generator is touched.
    pub fn generate(&self, rng: &mut Rng, arena: &mut [u8], out: &mut [f32]) -> Result<(), Error> {
        self.check_out(out.len())?;
        let last = self.execute(arena, Latent::Sampled(rng), &mut |_, _| {})?;
        self.write_f32(last, out);
        Ok(())
    }

    /// As [`Model::generate`], writing pixels.
    pub fn generate_u8(
        &self,
        rng: &mut Rng,
        arena: &mut [u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check_out(out.len())?;
        let last = self.execute(arena, Latent::Sampled(rng), &mut |_, _| {})?;
        self.write_u8(last, out);
        Ok(())
    }

    fn check_latent(&self, z: &[f32]) -> Result<(), Error> {
        if z.len() != self.latent_len() {
            return Err(Error::LatentLength {
                expected: self.latent_len(),
                got: z.len(),
            });
        }
        Ok(())
    }

    fn check_out(&self, got: usize) -> Result<(), Error> {
        if got < self.output_len() {
            return Err(Error::OutputTooSmall {
                needed: self.output_len(),
                got,
            });
        }
        Ok(())
    }

    fn write_f32(&self, last: Final<'_>, out: &mut [f32]) {
        match last {
            Final::F32(y) => {
                for (o, &v) in out.iter_mut().zip(y) {
                    *o = v;
                }
            }
            Final::I8(y) => {
                for (o, &q) in out.iter_mut().zip(y) {
                    *o = dequantize(q, self.output_scale, self.output_zero_point);
                }
            }
        }
    }

    fn write_u8(&self, last: Final<'_>, out: &mut [u8]) {
        match last {
            Final::F32(y) => {
                for (o, &v) in out.iter_mut().zip(y) {
                    *o = self.range.to_pixel(v);
                }
            }
            Final::I8(y) => {
                for (o, &q) in out.iter_mut().zip(y) {
                    *o = self.range.to_pixel(dequantize(
                        q,
                        self.output_scale,
                        self.output_zero_point,
                    ));
                }
            }
        }
    }

    fn walker(&self) -> Walker<'a> {
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

    /// Runs every layer through two ping-pong buffers in `arena`; returns the last activation.
    fn execute<'b>(
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

#[cfg(test)]
mod tests {
    use super::*;

    static EMBEDDED: &Aligned<[u8]> = &Aligned([1u8, 2, 3]);

    #[test]
    fn aligned_wrapper_places_unsized_bytes_at_16() {
        assert_eq!(EMBEDDED.0.as_ptr().addr() % format::ALIGN, 0);
        assert_eq!(&EMBEDDED.0, &[1, 2, 3]);
    }

    #[test]
    fn pixels_map_the_output_range() {
        assert_eq!(OutputRange::ZeroOne.to_pixel(0.0), 0);
        assert_eq!(OutputRange::ZeroOne.to_pixel(1.0), 255);
        assert_eq!(OutputRange::ZeroOne.to_pixel(2.0), 255);
        assert_eq!(OutputRange::MinusOneOne.to_pixel(-1.0), 0);
        assert_eq!(OutputRange::MinusOneOne.to_pixel(0.0), 128); // 127.5 rounds to even
        assert_eq!(OutputRange::MinusOneOne.to_pixel(1.0), 255);
        assert_eq!(OutputRange::Unbounded.to_pixel(f32::NAN), 0);
        assert_eq!(OutputRange::Unbounded.to_pixel(-3.0), 0);
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        // scale 1/2: 0.25 / 0.5 = 0.5 -> 0; 0.75 / 0.5 = 1.5 -> 2.
        assert_eq!(quantize(0.25, 0.5, 0), 0);
        assert_eq!(quantize(0.75, 0.5, 0), 2);
        assert_eq!(quantize(-0.75, 0.5, 3), 1);
        assert_eq!(quantize(1e9, 0.5, 0), 127);
        assert_eq!(quantize(-1e9, 0.5, 0), -128);
        assert_eq!(quantize(f32::NAN, 0.5, 7), 7);
        assert_eq!(dequantize(-128, 0.25, -128), 0.0);
        assert_eq!(dequantize(127, 0.25, -128), 63.75);
    }
}
