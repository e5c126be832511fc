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
mod check;
mod decode;
mod exec;
mod header;
mod op;
mod read;

use crate::error::Error;
use crate::format;
pub use crate::kernels::graph::Quant;
use crate::rng::Rng;
pub use crate::vocab::{OutputRange, Part, Precision};
use exec::{Final, Source};
use header::{tensor_at, Header};
pub use op::{OpInfo, Ops};
use read::*;

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
    Quant { scale, zero_point }.quantize(x)
}

/// `(q - zero_point) * scale`: the int8 path's output dequantiser (ONNX `DequantizeLinear`).
pub fn dequantize(q: i8, scale: f32, zero_point: i8) -> f32 {
    Quant { scale, zero_point }.dequantize(q)
}

/// A parsed, validated model borrowing its file.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    file: &'a [u8],
    part: Part,
    precision: Precision,
    range: OutputRange,
    input_count: usize,
    output_tensor: usize,
    tensor_count: usize,
    op_count: usize,
    data_offset: usize,
    arena_bytes: usize,
    input: Dims,
    input_quant: Quant,
    /// Shape of the second input, if the model has one.
    condition: Option<Dims>,
    output: Dims,
    output_quant: Quant,
}

impl<'a> Model<'a> {
    /// Parses and validates a model file, borrowing its weights in place.
    ///
    /// `file` must start at a 16-byte aligned address (see the module docs) and hold exactly the
    /// file. Every length, offset, code, shape, padding byte, tensor placement and lifetime and
    /// the CRC-32 are checked here, once, so running the result cannot fail except on caller
    /// buffer sizes.
    pub fn parse(file: &'a [u8]) -> Result<Model<'a>, Error> {
        let h = Header::parse(file)?;
        let input = tensor_at(file, 0, h.precision, true, false)?;
        let condition = if cfg!(feature = "graph") && h.input_count > 1 {
            Some(tensor_at(file, 1, h.precision, true, false)?.dims)
        } else {
            None
        };
        let output = tensor_at(file, h.output_tensor, h.precision, false, false)?;
        let model = Model {
            file,
            part: h.part,
            precision: h.precision,
            range: h.range,
            input_count: h.input_count,
            output_tensor: h.output_tensor,
            tensor_count: h.tensor_count,
            op_count: h.op_count,
            data_offset: h.data_offset,
            arena_bytes: h.arena_bytes,
            input: input.dims,
            input_quant: input.quant,
            condition,
            output: output.dims,
            output_quant: output.quant,
        };

        let expected_tensors = h.input_count + h.op_count;
        if h.tensor_count != expected_tensors {
            return Err(Error::BadHeaderField {
                offset: format::header::TENSOR_COUNT,
                found: usize_to_u32(h.tensor_count),
                expected: usize_to_u32(expected_tensors),
            });
        }
        model.check_tensors()?;
        let mut ops = model.decoder();
        ops.full_check = true;
        while let Some(step) = ops.next_step()? {
            model.check_op(ops.index - 1, &step)?;
        }
        let expected_len = format::align_up(ops.end).ok_or(truncated(usize::MAX, file.len()))?;
        if expected_len != h.file_len {
            return Err(Error::BadHeaderField {
                offset: format::header::FILE_LEN,
                found: usize_to_u32(h.file_len),
                expected: usize_to_u32(expected_len),
            });
        }
        check_zero(file, ops.end, h.file_len)?;
        Ok(model)
    }

    /// Elements of the latent vector `z` (the first input).
    pub fn latent_len(&self) -> usize {
        self.input.len()
    }

    /// Shape of the first input.
    pub fn input_shape(&self) -> Dims {
        self.input
    }

    /// Elements of the second input (a class code or other condition), if the model has one.
    pub fn condition_len(&self) -> Option<usize> {
        self.condition.map(|d| d.len())
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

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.op_count
    }

    /// Number of activation tensors (inputs included).
    pub fn tensor_count(&self) -> usize {
        self.tensor_count
    }

    /// The file this model borrows.
    pub fn bytes(&self) -> &'a [u8] {
        self.file
    }

    /// Input quantisation `(scale, zero point)` of an int8 model (`None` for f32).
    pub fn input_quantization(&self) -> Option<(f32, i8)> {
        (self.precision == Precision::Int8)
            .then_some((self.input_quant.scale, self.input_quant.zero_point))
    }

    /// Output dequantisation `(scale, zero point)` of an int8 model (`None` for f32).
    pub fn output_quantization(&self) -> Option<(f32, i8)> {
        (self.precision == Precision::Int8)
            .then_some((self.output_quant.scale, self.output_quant.zero_point))
    }

    /// Runs the model on latent `z` (`latent_len()` values) and writes `output_len()` values to
    /// the start of `out`; an int8 model quantises `z` and dequantises its output.
    pub fn run(&self, z: &[f32], arena: &mut [u8], out: &mut [f32]) -> Result<(), Error> {
        self.run_inspect(z, arena, out, &mut |_, _| {})
    }

    /// As [`Model::run`] for a model with a second input: `condition` holds `condition_len()`
    /// values (for a class, its one-hot code).
    pub fn run_conditional(
        &self,
        z: &[f32],
        condition: &[f32],
        arena: &mut [u8],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_input(0, z.len())?;
        self.check_input(1, condition.len())?;
        self.check_out(out.len())?;
        let last = self.execute(
            arena,
            [Some(Source::Given(z)), Some(Source::Given(condition))],
            &mut |_, _| {},
        )?;
        self.write_f32(last, out);
        Ok(())
    }

    /// As [`Model::run`], and calls `inspect(op, activation)` after every op with that op's
    /// output (int8 models give their int8 activations).
    pub fn run_inspect(
        &self,
        z: &[f32],
        arena: &mut [u8],
        out: &mut [f32],
        inspect: &mut dyn FnMut(usize, Activation<'_>),
    ) -> Result<(), Error> {
        self.check_input(0, z.len())?;
        self.check_no_condition()?;
        self.check_out(out.len())?;
        let last = self.execute(arena, [Some(Source::Given(z)), None], inspect)?;
        self.write_f32(last, out);
        Ok(())
    }

    /// Runs the model on `z` and writes `output_len()` pixels (see [`OutputRange::to_pixel`]).
    pub fn run_u8(&self, z: &[f32], arena: &mut [u8], out: &mut [u8]) -> Result<(), Error> {
        self.check_input(0, z.len())?;
        self.check_no_condition()?;
        self.check_out(out.len())?;
        let last = self.execute(arena, [Some(Source::Given(z)), None], &mut |_, _| {})?;
        self.write_u8(last, out);
        Ok(())
    }

    /// Samples `z ~ N(0, 1)` from `rng` (`latent_len()` calls of [`Rng::next_gaussian`]) and runs
    /// the model on it. Buffer sizes are checked before the generator is touched.
    pub fn generate(&self, rng: &mut Rng, arena: &mut [u8], out: &mut [f32]) -> Result<(), Error> {
        self.check_no_condition()?;
        self.check_out(out.len())?;
        let last = self.execute(arena, [Some(Source::Sampled(rng)), None], &mut |_, _| {})?;
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
        self.check_no_condition()?;
        self.check_out(out.len())?;
        let last = self.execute(arena, [Some(Source::Sampled(rng)), None], &mut |_, _| {})?;
        self.write_u8(last, out);
        Ok(())
    }

    fn check_input(&self, input: usize, got: usize) -> Result<(), Error> {
        let expected = match input {
            0 => self.latent_len(),
            _ => self.condition_len().unwrap_or(0),
        };
        if got != expected || expected == 0 {
            return Err(Error::InputLength {
                input,
                expected,
                got,
            });
        }
        Ok(())
    }

    /// A model with a second input needs [`Model::run_conditional`].
    fn check_no_condition(&self) -> Result<(), Error> {
        match self.condition_len() {
            Some(expected) => Err(Error::InputLength {
                input: 1,
                expected,
                got: 0,
            }),
            None => Ok(()),
        }
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
                    *o = self.output_quant.dequantize(q);
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
                    *o = self.range.to_pixel(self.output_quant.dequantize(q));
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
