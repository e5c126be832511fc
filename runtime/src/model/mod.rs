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
mod exec;
mod read;
mod walk;

use crate::error::Error;
use crate::format::{self, header};
use crate::rng::Rng;
pub use crate::vocab::{OutputRange, Part, Precision};
use exec::{Final, Latent};
use read::*;
use walk::Walker;

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
