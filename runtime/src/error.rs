//! The runtime's one error type.
#![forbid(unsafe_code)]

use core::fmt;

/// Everything that can go wrong when parsing or running a model: what was found, with numbers.
///
/// Parsing reports the first problem it meets. After a successful parse, running can only fail
/// on caller buffer sizes ([`Error::ArenaTooSmall`], [`Error::OutputTooSmall`],
/// [`Error::LatentLength`]), which are checked before any work is done.
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
    /// The file has a format version this runtime does not read.
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
    },
    /// Unknown kind code in the header.
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
    /// The file declares no layers.
    NoLayers,
    /// A header field disagrees with what the layer table implies.
    BadHeaderField {
        /// Byte offset of the field in the file.
        offset: usize,
        /// The value found.
        found: u32,
        /// The value expected.
        expected: u32,
    },
    /// A quantisation scale is not a positive finite number (or the input scale is not a power of two).
    BadScale {
        /// Byte offset of the field in the file.
        offset: usize,
    },
    /// An op code that is unknown or not allowed at this precision.
    BadOpCode {
        /// Layer index.
        layer: usize,
        /// The code found.
        code: u8,
    },
    /// The file's precision (f32 or int8) was left out of this build of the runtime (cargo
    /// features `f32` and `int8`).
    PrecisionDisabled {
        /// The precision code of the file.
        code: u8,
    },
    /// The layer's op was left out of this build of the runtime (cargo feature `conv` for
    /// Conv2d and ConvTranspose2d).
    OpDisabled {
        /// Layer index.
        layer: usize,
        /// The op code.
        code: u8,
    },
    /// A layer's attribute is out of range (zero kernel or stride, output padding not below the stride,
    /// clamp min above max, non-finite LeakyReLU slope).
    BadAttribute {
        /// Layer index.
        layer: usize,
    },
    /// A layer's declared output shape is not what its input and attributes produce.
    ShapeMismatch {
        /// Layer index.
        layer: usize,
        /// Elements the layer would produce (0 if its attributes do not fit its input).
        expected: usize,
        /// Elements in the declared shape.
        found: usize,
    },
    /// A dimension is zero or a size computation overflows.
    BadShape {
        /// Layer index (the header's shapes count as layer `usize::MAX`).
        layer: usize,
    },
    /// An int8 layer's input zero point is not the zero point of the tensor it reads.
    ZeroPointMismatch {
        /// Layer index (`usize::MAX` for the header's output zero point).
        layer: usize,
        /// The zero point of the tensor.
        expected: i8,
        /// The zero point declared.
        found: i8,
    },
    /// A tensor slot's offset is not where the canonical layout puts it.
    TensorOffset {
        /// Layer index.
        layer: usize,
        /// Slot index.
        slot: usize,
        /// Expected offset.
        expected: usize,
        /// Offset found.
        found: usize,
    },
    /// A tensor slot's length is not what the layer's shapes imply.
    TensorLength {
        /// Layer index.
        layer: usize,
        /// Slot index.
        slot: usize,
        /// Expected length in bytes.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A tensor does not start at a 16-byte aligned address: the buffer holding the file is not
    /// aligned (see [`crate::model::Aligned`]).
    Misaligned {
        /// File offset of the tensor.
        offset: usize,
    },
    /// A requantisation multiplier is not positive or a shift exceeds the maximum.
    BadRequant {
        /// Layer index.
        layer: usize,
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
    /// The latent vector passed to `run` does not have `latent_len()` elements.
    LatentLength {
        /// Elements expected.
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
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported model file version {found}")
            }
            Error::BadKind { code } => write!(f, "unknown model kind code {code}"),
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
            Error::NoLayers => f.write_str("model file has no layers"),
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
            Error::BadScale { offset } => write!(f, "bad quantisation scale at offset {offset}"),
            Error::BadOpCode { layer, code } => write!(f, "layer {layer}: bad op code {code}"),
            Error::PrecisionDisabled { code } => write!(
                f,
                "precision code {code} is not compiled into this runtime (cargo features `f32`, `int8`)"
            ),
            Error::OpDisabled { layer, code } => write!(
                f,
                "layer {layer}: op code {code} is not compiled into this runtime (cargo feature `conv`)"
            ),
            Error::BadAttribute { layer } => write!(f, "layer {layer}: attribute out of range"),
            Error::ShapeMismatch {
                layer,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer}: output shape has {found} elements, expected {expected}"
                )
            }
            Error::BadShape { layer } => write!(f, "layer {layer}: zero or overflowing size"),
            Error::ZeroPointMismatch {
                layer,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer}: input zero point {found}, tensor has {expected}"
                )
            }
            Error::TensorOffset {
                layer,
                slot,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer} tensor {slot}: offset {found}, expected {expected}"
                )
            }
            Error::TensorLength {
                layer,
                slot,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer} tensor {slot}: {found} bytes, expected {expected}"
                )
            }
            Error::Misaligned { offset } => {
                write!(
                    f,
                    "tensor at file offset {offset} is not 16-byte aligned in memory"
                )
            }
            Error::BadRequant { layer, channel } => {
                write!(
                    f,
                    "layer {layer} channel {channel}: bad requantisation multiplier or shift"
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
            Error::LatentLength { expected, got } => {
                write!(f, "latent vector has {got} elements, expected {expected}")
            }
        }
    }
}

impl core::error::Error for Error {}
