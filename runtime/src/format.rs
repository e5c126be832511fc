//! The `.tgm` model file: every constant of its layout lives here and nowhere else.
//!
//! All integers are little-endian. A file (format version [`VERSION`]) is a static graph: a
//! fixed [`HEADER_LEN`]-byte header, a table of `tensor_count` activation tensor records of
//! [`TENSOR_LEN`] bytes, a table of `op_count` op records of [`RECORD_LEN`] bytes, zero padding up
//! to the next multiple of [`ALIGN`], then the weights. Weights follow in op order and slot order,
//! each starting at the next multiple of [`ALIGN`] after the previous one ends, with zero padding
//! between them; the file ends at the end of the last weight rounded up to [`ALIGN`] (zero
//! padded). The layout is thus canonical: every byte of a valid file is determined by its
//! contents, and the parser rejects any other placement.
//!
//! # Header ([`HEADER_LEN`] = 64 bytes)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 4 | magic | [`MAGIC`] = `b"TGM\x1a"` |
//! | 4 | 2 | version | [`VERSION`] |
//! | 6 | 1 | part | [`KIND_GENERATOR`], [`KIND_ENCODER`] or [`KIND_DISCRIMINATOR`] |
//! | 7 | 1 | precision | [`PRECISION_F32`] or [`PRECISION_INT8`] |
//! | 8 | 1 | output range | [`RANGE_UNBOUNDED`], [`RANGE_ZERO_ONE`] or [`RANGE_MINUS_ONE_ONE`] |
//! | 9 | 1 | input count | 1 (the latent is tensor 0) or 2 (a second input, tensor 1) |
//! | 10 | 2 | output tensor | `u16` index of the tensor the model returns |
//! | 12 | 2 | tensor count | `u16`, at most [`MAX_GRAPH_TENSORS`] |
//! | 14 | 2 | reserved | 0 |
//! | 16 | 4 | op count | `u32`, 1 to [`MAX_OPS`] |
//! | 20 | 4 | arena bytes | `u32`: [`ARENA_SLACK`] plus the end of the highest tensor in the arena |
//! | 24 | 4 | data offset | `u32`, start of the weights: `align(64 + 20 * tensors + 72 * ops)` |
//! | 28 | 4 | file length | `u32`, total bytes |
//! | 32 | 28 | reserved | 0 |
//! | 60 | 4 | crc32 | CRC-32 (IEEE) of bytes `0..60` followed by bytes `64..file length` |
//!
//! The CRC covers every byte of the file except its own four.
//!
//! # Tensor record ([`TENSOR_LEN`] = 20 bytes)
//!
//! Activations live in numbered tensors placed in one arena by the exporter's planner. The
//! graph inputs are tensors `0 .. input count`; every other tensor is written by exactly one op.
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 6 | shape | `c, h, w` as three `u16`, none zero |
//! | 6 | 1 | zero point | `i8`; int8 only, else 0 |
//! | 7 | 1 | reserved | 0 |
//! | 8 | 4 | arena offset | `u32` bytes from the arena's aligned start; a multiple of the element size |
//! | 12 | 4 | scale | `f32`; int8: positive and finite (a power of two for the inputs), f32: 0 |
//! | 16 | 2 | producer | `u16` index of the op that writes it (0 for an input) |
//! | 18 | 2 | last reader | `u16` index of the last op that reads it (the op count for the output) |
//!
//! The parser checks, once, that the producer and last reader are what the op table says, that no
//! op reads a tensor before it is written, that every tensor lies inside the arena, and that an
//! op's output overlaps no tensor that is live while it runs (written before it and read by it or
//! later). The exceptions are in place and views:
//! - an element-wise op ([`OP_RELU`], [`OP_LEAKY_RELU`], [`OP_TANH`], [`OP_SIGMOID`], [`OP_EXP`],
//!   [`OP_LUT`], [`OP_ADD`], [`OP_SUB`], [`OP_MUL`]) may write exactly over its first input when
//!   that input is last read by it (and the second input does not overlap it);
//! - [`OP_RESHAPE`] and [`OP_SLICE`] write nothing: their output is a view, placed at the input's
//!   offset (plus the first channel's offset for a slice).
//!
//! # Op record ([`RECORD_LEN`] = 72 bytes)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 1 | op | one of the `OP_*` codes |
//! | 1 | 1 | reserved | 0 |
//! | 2 | 2 | input a | `u16` tensor index |
//! | 4 | 2 | input b | `u16` tensor index (binary ops with a tensor operand, Concat), else 0 |
//! | 6 | 2 | output | `u16` tensor index |
//! | 8 | 4 | parameter | `u32`: Slice: first channel; Add, Sub, Mul: [`OPERAND_TENSOR`] or [`OPERAND_CHANNEL`]; else 0 |
//! | 12 | 16 | geometry | `k_h, k_w, stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w` as `u16` (convolutions only, else 0) |
//! | 28 | 4 | alpha | `f32` LeakyReLU slope (f32 LeakyReLU only, else 0) |
//! | 32 | 2 | reserved | 0 |
//! | 34 | 1 | clamp min | `i8` (int8 Dense and convolutions only, else 0) |
//! | 35 | 1 | clamp max | `i8` (as above) |
//! | 36 | 4 | reserved | 0 |
//! | 40 | 32 | weights | [`MAX_WEIGHTS`] slots of `(offset: u32, length in bytes: u32)`; unused slots 0 |
//!
//! Ops, their shapes and their weight slots (element counts follow from the shapes):
//!
//! | op | shapes | f32 file | int8 file |
//! |---|---|---|---|
//! | Dense | output `[n, 1, 1]` | weight `f32` in output panels (see [`DENSE_PANEL`]), bias `f32 [out]` | weight `i8 [out, in]`, bias `i32 [out]`, multiplier `i32 [out]`, shift `u8 [out]` |
//! | Conv2d | from the geometry | weight `f32 [out_ch, in_ch, k_h, k_w]`, bias `f32 [out_ch]` | as Dense, weight `i8 [out_ch, in_ch, k_h, k_w]` |
//! | ConvTranspose2d | from the geometry | weight `f32 [in_ch, out_ch, k_h, k_w]`, bias | as Dense, weight `i8 [in_ch, out_ch, k_h, k_w]` |
//! | Relu, LeakyRelu, Tanh, Sigmoid, Exp | same as input | none | not allowed |
//! | Lut | same as input | not allowed | table `i8 [256]` indexed by the input byte |
//! | Reshape | same length | none | none |
//! | Add, Sub, Mul | all three alike; with [`OPERAND_CHANNEL`] no input b | per-channel operand `f32 [c]` (with [`OPERAND_CHANNEL`]) | the same |
//! | Concat | channels `a.c + b.c`, same `h, w` | none | none |
//! | Slice | channels `first .. first + out.c` of the input, same `h, w` | none | none |
//! | Gather | channel `k` of the output is channel `index[k]` of the input, same `h, w` | index `u16 [out.c]` | the same |
//!
//! An int8 linear layer computes `clamp(requantize(acc, multiplier[c], shift[c]) + out_zp, min,
//! max)` with `acc = bias[c] + sum w * (x - in_zp)`, the zero points being those of its input and
//! output tensors. The other int8 ops follow the ONNX QDQ graph the exporter writes: dequantize
//! every input (`(q - zp) * scale`), compute in f32, quantize the result
//! (`clamp(round_half_even(x / scale) + zp, -128, 127)`); for power-of-two scales this equals the
//! exact rational result rounded once. Reshape, Slice and Gather keep the quantisation: their
//! output tensor has the input's scale and zero point. A per-channel operand is stored as f32 in
//! both precisions (in the QDQ graph, the dequantized constant).
//!
//! The int8 path takes f32 inputs and quantises them with their tensor's scale and zero point;
//! its output is dequantised the same way.
#![forbid(unsafe_code)]

/// File magic, bytes 0..4.
pub const MAGIC: [u8; 4] = *b"TGM\x1a";
/// The format version this runtime reads and the exporter writes. Version 2 files (a chain of
/// layers through two ping-pong buffers) are refused with `Error::UnsupportedVersion`: export
/// the model again.
pub const VERSION: u16 = 3;

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

/// Alignment of the weights, of each weight tensor, and of the file's length, in bytes.
/// The buffer holding the file must start at an address that is a multiple of this.
pub const ALIGN: usize = 16;
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Length of one op record in bytes.
pub const RECORD_LEN: usize = 72;
/// Length of one activation tensor record in bytes.
pub const TENSOR_LEN: usize = 20;
/// Weight slots per op record.
pub const MAX_WEIGHTS: usize = 4;
/// Most ops a file may hold (the parser's checks are linear in ops times tensors).
pub const MAX_OPS: usize = 1024;
/// Most activation tensors a file may hold.
pub const MAX_GRAPH_TENSORS: usize = MAX_OPS + 2;
/// Most graph inputs (the latent, and an optional second input such as a class code).
pub const MAX_INPUTS: usize = 2;
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
    /// Part (`u8`).
    pub const KIND: usize = 6;
    /// Precision (`u8`).
    pub const PRECISION: usize = 7;
    /// Output range (`u8`).
    pub const OUTPUT_RANGE: usize = 8;
    /// Input count (`u8`).
    pub const INPUT_COUNT: usize = 9;
    /// Output tensor (`u16`).
    pub const OUTPUT_TENSOR: usize = 10;
    /// Tensor count (`u16`).
    pub const TENSOR_COUNT: usize = 12;
    /// Reserved (2 x 0).
    pub const RESERVED_A: usize = 14;
    /// Op count (`u32`).
    pub const OP_COUNT: usize = 16;
    /// Arena bytes (`u32`).
    pub const ARENA_BYTES: usize = 20;
    /// Data offset (`u32`).
    pub const DATA_OFFSET: usize = 24;
    /// File length (`u32`).
    pub const FILE_LEN: usize = 28;
    /// Reserved bytes (28 x 0).
    pub const RESERVED_B: usize = 32;
    /// CRC-32 (`u32`).
    pub const CRC: usize = 60;
}

/// Tensor record field offsets (relative to the record's start).
pub mod tensor {
    /// Shape (3 x `u16`).
    pub const SHAPE: usize = 0;
    /// Zero point (`i8`).
    pub const ZERO_POINT: usize = 6;
    /// Reserved (0).
    pub const RESERVED: usize = 7;
    /// Arena offset (`u32`).
    pub const OFFSET: usize = 8;
    /// Scale (`f32`).
    pub const SCALE: usize = 12;
    /// Producer op (`u16`).
    pub const PRODUCER: usize = 16;
    /// Last reader op (`u16`).
    pub const LAST_READER: usize = 18;
}

/// Op record field offsets (relative to the record's start).
pub mod record {
    /// Op code (`u8`).
    pub const OP: usize = 0;
    /// Reserved (0).
    pub const RESERVED_A: usize = 1;
    /// Input a (`u16` tensor index).
    pub const INPUT_A: usize = 2;
    /// Input b (`u16` tensor index).
    pub const INPUT_B: usize = 4;
    /// Output (`u16` tensor index).
    pub const OUTPUT: usize = 6;
    /// Parameter (`u32`).
    pub const PARAM: usize = 8;
    /// Geometry (8 x `u16`): kernel h, w; stride h, w; pad h, w; output padding h, w.
    pub const GEOMETRY: usize = 12;
    /// LeakyReLU slope (`f32`).
    pub const ALPHA: usize = 28;
    /// Reserved (2 x 0).
    pub const RESERVED_B: usize = 32;
    /// Clamp minimum (`i8`).
    pub const CLAMP_MIN: usize = 34;
    /// Clamp maximum (`i8`).
    pub const CLAMP_MAX: usize = 35;
    /// Reserved (4 x 0).
    pub const RESERVED_C: usize = 36;
    /// Weight slots ([`super::MAX_WEIGHTS`] x (`u32` offset, `u32` length)).
    pub const WEIGHTS: usize = 40;
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
/// Op code: element-wise `a + b` (or `a + v[c]`).
pub const OP_ADD: u8 = 10;
/// Op code: element-wise `a - b` (or `a - v[c]`).
pub const OP_SUB: u8 = 11;
/// Op code: element-wise `a * b` (or `a * v[c]`).
pub const OP_MUL: u8 = 12;
/// Op code: `exp(x)` (f32 only; an int8 file uses [`OP_LUT`]).
pub const OP_EXP: u8 = 13;
/// Op code: concatenation of inputs a and b along the channel axis.
pub const OP_CONCAT: u8 = 14;
/// Op code: a run of channels of input a (a view, no data movement).
pub const OP_SLICE: u8 = 15;
/// Op code: channels of input a picked by a constant index table (a fixed permutation).
pub const OP_GATHER: u8 = 16;

/// Whether an op may write its output exactly over its first input (when nothing reads that
/// input afterwards): the element-wise ops. The exporter's planner and the parser both use it.
pub const fn may_run_in_place(op: u8) -> bool {
    matches!(
        op,
        OP_RELU | OP_LEAKY_RELU | OP_TANH | OP_SIGMOID | OP_EXP | OP_LUT | OP_ADD | OP_SUB | OP_MUL
    )
}

/// Parameter of Add, Sub and Mul: the second operand is the tensor named by input b.
pub const OPERAND_TENSOR: u32 = 0;
/// Parameter of Add, Sub and Mul: the second operand is a per-channel `f32` vector (weight slot 0).
pub const OPERAND_CHANNEL: u32 = 1;

/// `n` rounded up to a multiple of [`ALIGN`], or `None` on overflow.
pub const fn align_up(n: usize) -> Option<usize> {
    match n.checked_add(ALIGN - 1) {
        Some(m) => Some(m / ALIGN * ALIGN),
        None => None,
    }
}

/// Slack at the start of the arena so that an arena of any alignment can be aligned to 4 bytes:
/// tensor offsets count from the first 4-byte aligned address in the caller's buffer.
pub const ARENA_SLACK: usize = 3;

/// Bytes of the arena for tensors that end at `peak` bytes (the highest `offset + length`).
pub const fn arena_bytes(peak: usize) -> Option<usize> {
    peak.checked_add(ARENA_SLACK)
}

/// Start of the op table: after the header and `tensors` tensor records.
pub const fn op_table(tensors: usize) -> Option<usize> {
    match tensors.checked_mul(TENSOR_LEN) {
        Some(t) => t.checked_add(HEADER_LEN),
        None => None,
    }
}

/// Start of the weights: the end of `ops` op records after [`op_table`], aligned.
pub const fn data_offset(tensors: usize, ops: usize) -> Option<usize> {
    let Some(table) = op_table(tensors) else {
        return None;
    };
    let Some(records) = ops.checked_mul(RECORD_LEN) else {
        return None;
    };
    match table.checked_add(records) {
        Some(end) => align_up(end),
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
        assert_eq!(record::WEIGHTS + MAX_WEIGHTS * 8, RECORD_LEN);
        assert_eq!(tensor::LAST_READER + 2, TENSOR_LEN);
        assert_eq!(data_offset(1, 1), Some(160)); // 64 + 20 + 72 = 156, aligned
        assert_eq!(data_offset(usize::MAX, 1), None);
        assert_eq!(HEADER_LEN % ALIGN, 0);
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(16));
        assert_eq!(align_up(16), Some(16));
        assert_eq!(align_up(usize::MAX), None);
    }

    #[test]
    fn arena_is_the_peak_plus_slack() {
        assert_eq!(arena_bytes(16), Some(19));
        assert_eq!(arena_bytes(usize::MAX), None);
    }
}
