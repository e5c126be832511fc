//! The runtime's one error type.
#![forbid(unsafe_code)]

use core::fmt;

/// Everything that can go wrong when parsing or running a model: what was found, with numbers.
///
/// Parsing reports the first problem it meets; a problem in an op names the op's index, one in
/// an activation tensor the tensor's index. After a successful parse, running can only fail on
/// caller buffer sizes ([`Error::ArenaTooSmall`], [`Error::OutputTooSmall`],
/// [`Error::InputLength`]), which are checked before any work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The file is shorter than its header or its declared length says.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The buffer holds more bytes than the file's declared length.
    TrailingBytes {
        /// Declared file length.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// The first four bytes are not the model file magic.
    BadMagic,
    /// The file has a format version this runtime does not read (version 2 files: export the
    /// model again).
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
    },
    /// Unknown part code in the header.
    BadKind {
        /// The code found.
        code: u8,
    },
    /// Unknown precision code in the header.
    BadPrecision {
        /// The code found.
        code: u8,
    },
    /// Unknown output range code in the header.
    BadOutputRange {
        /// The code found.
        code: u8,
    },
    /// A reserved or padding byte is not zero, or a field an op does not use is set.
    NonZeroReserved {
        /// Byte offset in the file.
        offset: usize,
    },
    /// The CRC-32 in the header does not match the file.
    ChecksumMismatch {
        /// The checksum stored in the header.
        expected: u32,
        /// The checksum of the bytes.
        found: u32,
    },
    /// A header field is out of its range or disagrees with what the tables imply.
    BadHeaderField {
        /// Byte offset of the field in the file.
        offset: usize,
        /// The value found.
        found: u32,
        /// The value expected (for a count over its limit: the limit).
        expected: u32,
    },
    /// An activation tensor's record is wrong: a zero or overflowing shape, a bad quantisation
    /// scale, a zero point or scale in an f32 file.
    BadTensor {
        /// Tensor index.
        tensor: usize,
    },
    /// A tensor's producer or last-reader field is not what the op table says, or a tensor is
    /// never read.
    BadLifetime {
        /// Tensor index.
        tensor: usize,
    },
    /// A tensor does not lie inside the arena, is not aligned to its element size, or a view
    /// (Reshape, Slice) is not placed on its input.
    BadPlacement {
        /// Tensor index.
        tensor: usize,
    },
    /// An op's output overlaps a tensor that is live while the op runs.
    Overlap {
        /// Op index.
        op: usize,
        /// The live tensor it would overwrite.
        tensor: usize,
    },
    /// An op names a tensor that does not exist, reads one before it is written, or writes a
    /// graph input.
    BadTensorRef {
        /// Op index.
        op: usize,
        /// The tensor index found.
        tensor: usize,
    },
    /// An op code that is unknown or not allowed at this precision.
    BadOpCode {
        /// Op index.
        op: usize,
        /// The code found.
        code: u8,
    },
    /// The file's precision (f32 or int8) was left out of this build of the runtime (cargo
    /// features `f32` and `int8`).
    PrecisionDisabled {
        /// The precision code of the file.
        code: u8,
    },
    /// The op was left out of this build of the runtime (cargo features `conv2d`,
    /// `conv-transpose2d`, `graph`).
    OpDisabled {
        /// Op index.
        op: usize,
        /// The op code.
        code: u8,
    },
    /// An op's attribute is out of range (zero kernel or stride, output padding not below the
    /// stride, clamp min above max, non-finite LeakyReLU slope, unknown operand kind, a gather
    /// index past the input's channels).
    BadAttribute {
        /// Op index.
        op: usize,
    },
    /// An op's output tensor does not have the shape its inputs and attributes produce, or its
    /// inputs do not fit together.
    ShapeMismatch {
        /// Op index.
        op: usize,
        /// Elements the op would produce (0 if its inputs and attributes do not fit together).
        expected: usize,
        /// Elements in the output tensor.
        found: usize,
    },
    /// An int8 op that keeps the quantisation (Reshape, Slice, Gather) has an output tensor whose
    /// scale or zero point differs from its input's.
    QuantMismatch {
        /// Op index.
        op: usize,
    },
    /// A weight slot's offset is not where the canonical layout puts it.
    TensorOffset {
        /// Op index.
        op: usize,
        /// Slot index.
        slot: usize,
        /// Expected offset.
        expected: usize,
        /// Offset found.
        found: usize,
    },
    /// A weight slot's length is not what the op's shapes imply.
    TensorLength {
        /// Op index.
        op: usize,
        /// Slot index.
        slot: usize,
        /// Expected length in bytes.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A weight does not start at a 16-byte aligned address: the buffer holding the file is not
    /// aligned (see [`crate::model::Aligned`]).
    Misaligned {
        /// File offset of the weight.
        offset: usize,
    },
    /// A requantisation multiplier is not positive or a shift exceeds the maximum.
    BadRequant {
        /// Op index.
        op: usize,
        /// Output channel.
        channel: usize,
    },
    /// The arena passed to `run` is smaller than `arena_bytes()`.
    ArenaTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The output buffer passed to `run` is smaller than `output_len()`.
    OutputTooSmall {
        /// Elements needed.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// An input passed to `run` does not have its tensor's length, or the model has a second
    /// input the call did not give (or the other way round).
    InputLength {
        /// Input index (0 for the latent).
        input: usize,
        /// Elements expected (0: the model has no such input).
        expected: usize,
        /// Elements given.
        got: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "model file truncated: need {needed} bytes, got {got}")
            }
            Error::TrailingBytes { expected, got } => {
                write!(
                    f,
                    "model file is {expected} bytes but the buffer holds {got}"
                )
            }
            Error::BadMagic => f.write_str("not a tinygen model file (bad magic)"),
            Error::UnsupportedVersion { found } => write!(
                f,
                "unsupported model file version {found} (this runtime reads version {}; export the model again)",
                crate::format::VERSION
            ),
            Error::BadKind { code } => write!(f, "unknown model part code {code}"),
            Error::BadPrecision { code } => write!(f, "unknown precision code {code}"),
            Error::BadOutputRange { code } => write!(f, "unknown output range code {code}"),
            Error::NonZeroReserved { offset } => {
                write!(f, "reserved byte at offset {offset} is not zero")
            }
            Error::ChecksumMismatch { expected, found } => {
                write!(
                    f,
                    "checksum mismatch: header says {expected:#010x}, bytes give {found:#010x}"
                )
            }
            Error::BadHeaderField {
                offset,
                found,
                expected,
            } => {
                write!(
                    f,
                    "header field at offset {offset} is {found}, expected {expected}"
                )
            }
            Error::BadTensor { tensor } => write!(
                f,
                "tensor {tensor}: zero or overflowing shape, or bad scale or zero point"
            ),
            Error::BadLifetime { tensor } => write!(
                f,
                "tensor {tensor}: producer or last reader is not what the ops say (or it is never read)"
            ),
            Error::BadPlacement { tensor } => write!(
                f,
                "tensor {tensor}: outside the arena, misaligned, or a view not placed on its input"
            ),
            Error::Overlap { op, tensor } => {
                write!(f, "op {op}: output overlaps live tensor {tensor}")
            }
            Error::BadTensorRef { op, tensor } => write!(
                f,
                "op {op}: tensor {tensor} does not exist, is read before it is written, or is a graph input written"
            ),
            Error::BadOpCode { op, code } => write!(f, "op {op}: bad op code {code}"),
            Error::PrecisionDisabled { code } => write!(
                f,
                "precision code {code} is not compiled into this runtime (cargo features `f32`, `int8`)"
            ),
            Error::OpDisabled { op, code } => write!(
                f,
                "op {op}: op code {code} is not compiled into this runtime (cargo features `conv2d`, `conv-transpose2d`, `graph`)"
            ),
            Error::BadAttribute { op } => write!(f, "op {op}: attribute out of range"),
            Error::ShapeMismatch {
                op,
                expected,
                found,
            } => {
                write!(
                    f,
                    "op {op}: output tensor has {found} elements, expected {expected}"
                )
            }
            Error::QuantMismatch { op } => write!(
                f,
                "op {op}: output scale or zero point differs from the input's"
            ),
            Error::TensorOffset {
                op,
                slot,
                expected,
                found,
            } => {
                write!(
                    f,
                    "op {op} weight {slot}: offset {found}, expected {expected}"
                )
            }
            Error::TensorLength {
                op,
                slot,
                expected,
                found,
            } => {
                write!(
                    f,
                    "op {op} weight {slot}: {found} bytes, expected {expected}"
                )
            }
            Error::Misaligned { offset } => {
                write!(
                    f,
                    "weight at file offset {offset} is not 16-byte aligned in memory"
                )
            }
            Error::BadRequant { op, channel } => {
                write!(
                    f,
                    "op {op} channel {channel}: bad requantisation multiplier or shift"
                )
            }
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: need {needed} bytes, got {got}")
            }
            Error::OutputTooSmall { needed, got } => {
                write!(
                    f,
                    "output buffer too small: need {needed} elements, got {got}"
                )
            }
            Error::InputLength {
                input,
                expected,
                got,
            } => {
                write!(
                    f,
                    "input {input} has {got} elements, the model expects {expected}"
                )
            }
        }
    }
}

impl core::error::Error for Error {}
