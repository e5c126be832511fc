//! The `.tgm` model file: every constant of its layout lives here and nowhere else.
//!
//! All integers are little-endian. A file is a fixed [`HEADER_LEN`]-byte header, a table of
//! `layer_count` records of [`RECORD_LEN`] bytes each, zero padding up to the next multiple of
//! [`ALIGN`], then the tensors. Tensors follow in layer order and slot order, each starting at
//! the next multiple of [`ALIGN`] after the previous one ends, with zero padding between them; the
//! file ends at the end of the last tensor rounded up to [`ALIGN`] (zero padded). The layout is
//! thus canonical: every byte of a valid file is determined by its contents, and the parser
//! rejects any other placement.
//!
//! # Header ([`HEADER_LEN`] = 64 bytes)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 4 | magic | [`MAGIC`] = `b"TGM\x1a"` |
//! | 4 | 2 | version | [`VERSION`] |
//! | 6 | 1 | kind | [`KIND_GENERATOR`], [`KIND_ENCODER`] or [`KIND_DISCRIMINATOR`] |
//! | 7 | 1 | precision | [`PRECISION_F32`] or [`PRECISION_INT8`] |
//! | 8 | 6 | input shape | `c, h, w` as three `u16` |
//! | 14 | 6 | output shape | `c, h, w` as three `u16` |
//! | 20 | 1 | output range | [`RANGE_UNBOUNDED`], [`RANGE_ZERO_ONE`] or [`RANGE_MINUS_ONE_ONE`] |
//! | 21 | 1 | input zero point | `i8`; int8 only, else 0 |
//! | 22 | 1 | output zero point | `i8`; int8 only, else 0 |
//! | 23 | 1 | reserved | 0 |
//! | 24 | 4 | input scale | `f32`, a power of two; int8 only, else 0 |
//! | 28 | 4 | output scale | `f32`, positive and finite; int8 only, else 0 |
//! | 32 | 4 | layer count | `u32`, at least 1 |
//! | 36 | 4 | arena bytes | `u32`, see [`arena_bytes`] |
//! | 40 | 4 | data offset | `u32`, start of the tensors: `align(64 + 72 * layer_count)` |
//! | 44 | 4 | file length | `u32`, total bytes |
//! | 48 | 12 | reserved | 0 |
//! | 60 | 4 | crc32 | CRC-32 (IEEE) of bytes `0..60` followed by bytes `64..file length` |
//!
//! The CRC covers every byte of the file except its own four.
//!
//! # Layer record ([`RECORD_LEN`] = 72 bytes)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 1 | op | one of the `OP_*` codes |
//! | 1 | 3 | reserved | 0 |
//! | 4 | 6 | output shape | `c, h, w` as three `u16` |
//! | 10 | 2 | reserved | 0 |
//! | 12 | 16 | geometry | `k_h, k_w, stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w` as `u16` (convolutions only, else 0) |
//! | 28 | 4 | alpha | `f32` LeakyReLU slope (f32 LeakyReLU only, else 0) |
//! | 32 | 1 | input zero point | `i8` (int8 Dense, convolutions and LUT only, else 0) |
//! | 33 | 1 | output zero point | `i8` (as above) |
//! | 34 | 1 | clamp min | `i8` (int8 Dense and convolutions only, else 0) |
//! | 35 | 1 | clamp max | `i8` (as above) |
//! | 36 | 4 | reserved | 0 |
//! | 40 | 32 | tensors | [`MAX_TENSORS`] slots of `(offset: u32, length in bytes: u32)`; unused slots 0 |
//!
//! Tensor slots by op and precision (element counts follow from the shapes):
//!
//! | op | f32 file | int8 file |
//! |---|---|---|
//! | Dense | weight `f32` in output panels (see [`DENSE_PANEL`]), bias `f32 [out]` | weight `i8 [out, in]`, bias `i32 [out]`, multiplier `i32 [out]`, shift `u8 [out]` |
//! | Conv2d | weight `f32 [out_ch, in_ch, k_h, k_w]`, bias `f32 [out_ch]` | as Dense, weight `i8 [out_ch, in_ch, k_h, k_w]` |
//! | ConvTranspose2d | weight `f32 [in_ch, out_ch, k_h, k_w]`, bias | as Dense, weight `i8 [in_ch, out_ch, k_h, k_w]` |
//! | Relu, LeakyRelu, Tanh, Sigmoid | none | not allowed |
//! | Lut | not allowed | table `i8 [256]` indexed by the input byte |
//! | Reshape | none | none |
//!
//! An int8 layer computes `clamp(requantize(acc, multiplier[c], shift[c]) + out_zp, min, max)`
//! with `acc = bias[c] + sum w * (x - in_zp)`. The input zero point of every int8 layer must be
//! the zero point of the tensor it reads (the header's input zero point, then the previous
//! layer's output zero point), and the last one must equal the header's output zero point.
//!
//! The int8 path takes f32 latents `z` and quantises them as
//! `clamp(round_half_even(z / input_scale) + input_zp, -128, 127)`; its output is dequantised as
//! `(q - output_zp) * output_scale`.
#![forbid(unsafe_code)]

/// File magic, bytes 0..4.
pub const MAGIC: [u8; 4] = *b"TGM\x1a";
/// The format version this runtime reads and the exporter writes.
pub const VERSION: u16 = 2;

/// Outputs per panel of an f32 Dense weight.
///
/// An f32 Dense weight `W[out][in]` is stored panel by panel: panel `p` holds outputs
/// `DENSE_PANEL * p ..` (`r` of them: [`DENSE_PANEL`], or fewer in the last panel), as `in` groups
/// of `r` consecutive values, `W[DENSE_PANEL * p + j][i]` at `panel start + i * r + j`. The kernel
/// then reads the weights once, front to back, and accumulates each output in input order (the
/// reference order), keeping one panel of outputs in registers. See [`dense_panel_index`].
pub const DENSE_PANEL: usize = 32;

/// Position of `W[o][i]` in an f32 Dense weight of `inputs` inputs stored in panels
/// ([`DENSE_PANEL`]); `None` if `o >= outputs`, `i >= inputs` or the size overflows.
pub fn dense_panel_index(outputs: usize, inputs: usize, o: usize, i: usize) -> Option<usize> {
    if o >= outputs || i >= inputs {
        return None;
    }
    let panel = o / DENSE_PANEL;
    let start = panel.checked_mul(DENSE_PANEL)?;
    let width = (outputs - start).min(DENSE_PANEL);
    start
        .checked_mul(inputs)?
        .checked_add(i.checked_mul(width)?)?
        .checked_add(o - start)
}

/// Alignment of the tensor data, of each tensor, and of the file's length, in bytes.
/// The buffer holding the file must start at an address that is a multiple of this.
pub const ALIGN: usize = 16;
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Length of one layer record in bytes.
pub const RECORD_LEN: usize = 72;
/// Tensor slots per layer record.
pub const MAX_TENSORS: usize = 4;
/// Bytes in an int8 activation lookup table.
pub const LUT_LEN: usize = 256;
/// Largest right shift of an int8 requantisation.
pub const MAX_SHIFT: u8 = 62;

/// Header field offsets.
pub mod header {
    /// Magic (4 bytes).
    pub const MAGIC: usize = 0;
    /// Version (`u16`).
    pub const VERSION: usize = 4;
    /// Kind (`u8`).
    pub const KIND: usize = 6;
    /// Precision (`u8`).
    pub const PRECISION: usize = 7;
    /// Input shape (3 x `u16`).
    pub const INPUT_SHAPE: usize = 8;
    /// Output shape (3 x `u16`).
    pub const OUTPUT_SHAPE: usize = 14;
    /// Output range (`u8`).
    pub const OUTPUT_RANGE: usize = 20;
    /// Input zero point (`i8`).
    pub const INPUT_ZERO_POINT: usize = 21;
    /// Output zero point (`i8`).
    pub const OUTPUT_ZERO_POINT: usize = 22;
    /// Reserved byte (0).
    pub const RESERVED_A: usize = 23;
    /// Input scale (`f32`).
    pub const INPUT_SCALE: usize = 24;
    /// Output scale (`f32`).
    pub const OUTPUT_SCALE: usize = 28;
    /// Layer count (`u32`).
    pub const LAYER_COUNT: usize = 32;
    /// Arena bytes (`u32`).
    pub const ARENA_BYTES: usize = 36;
    /// Data offset (`u32`).
    pub const DATA_OFFSET: usize = 40;
    /// File length (`u32`).
    pub const FILE_LEN: usize = 44;
    /// Reserved bytes (12 x 0).
    pub const RESERVED_B: usize = 48;
    /// Length of the reserved bytes at [`RESERVED_B`].
    pub const RESERVED_B_LEN: usize = 12;
    /// CRC-32 (`u32`).
    pub const CRC: usize = 60;
}

/// Layer record field offsets (relative to the record's start).
pub mod record {
    /// Op code (`u8`).
    pub const OP: usize = 0;
    /// Reserved (3 x 0).
    pub const RESERVED_A: usize = 1;
    /// Output shape (3 x `u16`).
    pub const OUTPUT_SHAPE: usize = 4;
    /// Reserved (2 x 0).
    pub const RESERVED_B: usize = 10;
    /// Geometry (8 x `u16`): kernel h, w; stride h, w; pad h, w; output padding h, w.
    pub const GEOMETRY: usize = 12;
    /// LeakyReLU slope (`f32`).
    pub const ALPHA: usize = 28;
    /// Input zero point (`i8`).
    pub const IN_ZERO_POINT: usize = 32;
    /// Output zero point (`i8`).
    pub const OUT_ZERO_POINT: usize = 33;
    /// Clamp minimum (`i8`).
    pub const CLAMP_MIN: usize = 34;
    /// Clamp maximum (`i8`).
    pub const CLAMP_MAX: usize = 35;
    /// Reserved (4 x 0).
    pub const RESERVED_C: usize = 36;
    /// Tensor slots ([`super::MAX_TENSORS`] x (`u32` offset, `u32` length)).
    pub const TENSORS: usize = 40;
}

/// Kind code: VAE decoder or GAN generator.
pub const KIND_GENERATOR: u8 = 0;
/// Kind code: VAE encoder.
pub const KIND_ENCODER: u8 = 1;
/// Kind code: GAN discriminator.
pub const KIND_DISCRIMINATOR: u8 = 2;

/// Precision code: f32 weights and activations.
pub const PRECISION_F32: u8 = 0;
/// Precision code: int8 weights and activations.
pub const PRECISION_INT8: u8 = 1;

/// Output range code: no fixed range (pixels clamp `[0, 1]`).
pub const RANGE_UNBOUNDED: u8 = 0;
/// Output range code: `[0, 1]`.
pub const RANGE_ZERO_ONE: u8 = 1;
/// Output range code: `[-1, 1]`.
pub const RANGE_MINUS_ONE_ONE: u8 = 2;

/// Op code: dense layer.
pub const OP_DENSE: u8 = 1;
/// Op code: 2-D convolution.
pub const OP_CONV2D: u8 = 2;
/// Op code: 2-D transposed convolution.
pub const OP_CONV_TRANSPOSE2D: u8 = 3;
/// Op code: ReLU (f32 only).
pub const OP_RELU: u8 = 4;
/// Op code: LeakyReLU (f32 only).
pub const OP_LEAKY_RELU: u8 = 5;
/// Op code: tanh (f32 only).
pub const OP_TANH: u8 = 6;
/// Op code: sigmoid (f32 only).
pub const OP_SIGMOID: u8 = 7;
/// Op code: reshape (no data movement).
pub const OP_RESHAPE: u8 = 8;
/// Op code: 256-entry int8 lookup table (int8 only).
pub const OP_LUT: u8 = 9;

/// `n` rounded up to a multiple of [`ALIGN`], or `None` on overflow.
pub const fn align_up(n: usize) -> Option<usize> {
    match n.checked_add(ALIGN - 1) {
        Some(m) => Some(m / ALIGN * ALIGN),
        None => None,
    }
}

/// Bytes of one activation element at a precision code (`None` for an unknown code).
pub const fn element_bytes(precision: u8) -> Option<usize> {
    match precision {
        PRECISION_F32 => Some(4),
        PRECISION_INT8 => Some(1),
        _ => None,
    }
}

/// Slack at the start of the arena so that an arena of any alignment can be aligned to 4 bytes.
pub const ARENA_SLACK: usize = 3;

/// The arena a model needs: two ping-pong buffers, each holding the largest activation
/// (`max_elements` elements, rounded up to whole 4-byte words), plus [`ARENA_SLACK`] bytes so the
/// buffers can start at a 4-byte aligned address inside any caller buffer.
pub const fn arena_bytes(precision: u8, max_elements: usize) -> Option<usize> {
    let Some(elem) = element_bytes(precision) else {
        return None;
    };
    let Some(bytes) = max_elements.checked_mul(elem) else {
        return None;
    };
    let Some(padded) = bytes.checked_add(3) else {
        return None;
    };
    let words = padded / 4;
    match words.checked_mul(8) {
        Some(both) => both.checked_add(ARENA_SLACK),
        None => None,
    }
}

/// CRC-32 remainders of the 16 four-bit values: the checksum takes two lookups per byte, a
/// 64-byte table instead of the 1 KiB byte-wise one (flash counts on a microcontroller; the
/// checksum runs once per parse).
const CRC_NIBBLES: [u32; 16] = crc_nibbles();

const fn crc_nibbles() -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// One four-bit step of the reflected CRC.
#[inline(always)]
fn crc_nibble(c: u32) -> u32 {
    // `c & 15` is below 16: the lookup is always in bounds.
    CRC_NIBBLES[(c & 15) as usize] ^ (c >> 4)
}

/// Streaming CRC-32 (IEEE 802.3, reflected, polynomial `0xEDB88320`), as zlib and PNG use.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh checksum.
    pub const fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = crc_nibble(crc_nibble(c ^ u32::from(b)));
        }
        self.0 = c;
    }

    /// The checksum of everything fed so far.
    pub const fn finish(&self) -> u32 {
        !self.0
    }
}

/// CRC-32 of a model file as stored in its header: bytes `0..60` and `64..`, skipping the field.
/// `file` must be at least [`HEADER_LEN`] bytes; shorter input is checksummed as far as it goes.
pub fn file_crc(file: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(file.get(..header::CRC).unwrap_or(file));
    crc.update(file.get(HEADER_LEN..).unwrap_or(&[]));
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        let mut split = Crc32::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.finish(), 0xCBF4_3926);
    }

    #[test]
    fn layout_constants_are_consistent() {
        assert_eq!(header::CRC + 4, HEADER_LEN);
        assert_eq!(record::TENSORS + MAX_TENSORS * 8, RECORD_LEN);
        assert_eq!(HEADER_LEN % ALIGN, 0);
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(16));
        assert_eq!(align_up(16), Some(16));
        assert_eq!(align_up(usize::MAX), None);
    }

    #[test]
    fn arena_is_two_word_rounded_buffers_plus_slack() {
        // 5 int8 elements -> 2 words each -> 16 bytes + 3 slack.
        assert_eq!(arena_bytes(PRECISION_INT8, 5), Some(19));
        assert_eq!(arena_bytes(PRECISION_F32, 5), Some(43));
        assert_eq!(arena_bytes(7, 5), None);
        assert_eq!(arena_bytes(PRECISION_F32, usize::MAX / 2), None);
    }
}
