//! Decoding and checking the header and the activation tensor table.

use super::read::*;
use super::{Dims, Model, OutputRange, Part, Precision};
use crate::error::Error;
use crate::format::{self, header, tensor};
use crate::kernels::graph::Quant;

/// The header's fields, checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) part: Part,
    pub(super) precision: Precision,
    pub(super) range: OutputRange,
    pub(super) input_count: usize,
    pub(super) output_tensor: usize,
    pub(super) tensor_count: usize,
    pub(super) op_count: usize,
    pub(super) arena_bytes: usize,
    pub(super) data_offset: usize,
    pub(super) file_len: usize,
}

/// A count field over its limit (or zero where one is needed).
fn count_error(offset: usize, found: usize, limit: usize) -> Error {
    Error::BadHeaderField {
        offset,
        found: usize_to_u32(found),
        expected: usize_to_u32(limit),
    }
}

impl Header {
    /// Reads and checks the header: magic, version, length, CRC, codes, counts, data offset.
    /// The arena size and the output tensor are checked against the tables later.
    pub(super) fn parse(file: &[u8]) -> Result<Header, Error> {
        if file.len() < format::HEADER_LEN {
            return Err(truncated(format::HEADER_LEN, file.len()));
        }
        let h = Fields::<{ format::HEADER_LEN }>::read(file, 0)?;
        if bytes_at::<4>(file, header::MAGIC)? != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let version = h.u16(header::VERSION) as u16;
        if version != format::VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let file_len = h.usize(header::FILE_LEN);
        if file.len() < file_len {
            return Err(truncated(file_len, file.len()));
        }
        if file.len() > file_len {
            return Err(Error::TrailingBytes {
                expected: file_len,
                got: file.len(),
            });
        }
        let stored_crc = h.u32(header::CRC);
        let crc = format::file_crc(file);
        if crc != stored_crc {
            return Err(Error::ChecksumMismatch {
                expected: stored_crc,
                found: crc,
            });
        }

        let code = h.u8(header::KIND);
        let part = Part::from_code(code).ok_or(Error::BadKind { code })?;
        let code = h.u8(header::PRECISION);
        let precision = Precision::from_code(code).ok_or(Error::BadPrecision { code })?;
        let compiled_in = match precision {
            Precision::F32 => cfg!(feature = "f32"),
            Precision::Int8 => cfg!(feature = "int8"),
        };
        if !compiled_in {
            return Err(Error::PrecisionDisabled { code });
        }
        let code = h.u8(header::OUTPUT_RANGE);
        let range = OutputRange::from_code(code).ok_or(Error::BadOutputRange { code })?;
        h.zero(header::RESERVED_A, header::OP_COUNT)?;
        h.zero(header::RESERVED_B, header::CRC)?;

        let input_count = usize::from(h.u8(header::INPUT_COUNT));
        if input_count == 0 || input_count > format::MAX_INPUTS {
            return Err(count_error(
                header::INPUT_COUNT,
                input_count,
                format::MAX_INPUTS,
            ));
        }
        if input_count > 1 && !cfg!(feature = "graph") {
            return Err(count_error(header::INPUT_COUNT, input_count, 1));
        }
        let tensor_count = h.u16(header::TENSOR_COUNT);
        if tensor_count <= input_count || tensor_count > format::MAX_GRAPH_TENSORS {
            return Err(count_error(
                header::TENSOR_COUNT,
                tensor_count,
                format::MAX_GRAPH_TENSORS,
            ));
        }
        let op_count = h.usize(header::OP_COUNT);
        if op_count == 0 || op_count > format::MAX_OPS {
            return Err(count_error(header::OP_COUNT, op_count, format::MAX_OPS));
        }
        let output_tensor = h.u16(header::OUTPUT_TENSOR);
        if output_tensor < input_count || output_tensor >= tensor_count {
            return Err(count_error(
                header::OUTPUT_TENSOR,
                output_tensor,
                tensor_count.saturating_sub(1),
            ));
        }
        // Both counts are bounded above, so these sizes cannot overflow.
        let table_end = format::op_table(tensor_count)
            .and_then(|t| t.checked_add(op_count.checked_mul(format::RECORD_LEN)?))
            .ok_or(truncated(usize::MAX, file.len()))?;
        let data_offset =
            format::data_offset(tensor_count, op_count).ok_or(truncated(usize::MAX, file.len()))?;
        if data_offset > file.len() {
            return Err(truncated(data_offset, file.len()));
        }
        let stored = h.u32(header::DATA_OFFSET);
        if usize::try_from(stored).ok() != Some(data_offset) {
            return Err(Error::BadHeaderField {
                offset: header::DATA_OFFSET,
                found: stored,
                expected: usize_to_u32(data_offset),
            });
        }
        check_zero(file, table_end, data_offset)?;
        let arena_bytes = h.usize(header::ARENA_BYTES);
        Ok(Header {
            part,
            precision,
            range,
            input_count,
            output_tensor,
            tensor_count,
            op_count,
            arena_bytes,
            data_offset,
            file_len,
        })
    }
}

/// One activation tensor's record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tensor {
    pub(super) dims: Dims,
    /// Elements.
    pub(super) len: usize,
    /// Byte offset in the arena.
    pub(super) offset: usize,
    pub(super) quant: Quant,
    pub(super) producer: usize,
    pub(super) last_reader: usize,
}

impl Tensor {
    /// Element range in an arena of `elem`-byte elements (the offset is a multiple of `elem`,
    /// checked by the parse).
    pub(super) fn range(&self, elem: usize) -> core::ops::Range<usize> {
        let start = self.offset / elem.max(1);
        start..start.saturating_add(self.len)
    }

    /// Byte range in the arena.
    pub(super) fn bytes(&self, elem: usize) -> core::ops::Range<usize> {
        self.offset..self.offset.saturating_add(self.len.saturating_mul(elem))
    }
}

/// Reads tensor `index`'s record. With `check`, also checks its shape, reserved byte and
/// quantisation for `precision` (the parse does; a run reads records the parse accepted).
pub(super) fn tensor_at(
    file: &[u8],
    index: usize,
    precision: Precision,
    is_input: bool,
    check: bool,
) -> Result<Tensor, Error> {
    let bad = Error::BadTensor { tensor: index };
    let base = index
        .checked_mul(format::TENSOR_LEN)
        .and_then(|o| o.checked_add(format::HEADER_LEN))
        .ok_or(bad)?;
    let r = Fields::<{ format::TENSOR_LEN }>::read(file, base)?;
    let dims = Dims {
        c: r.u16(tensor::SHAPE),
        h: r.u16(tensor::SHAPE + 2),
        w: r.u16(tensor::SHAPE + 4),
    };
    let len = dims.checked_len().filter(|&n| n > 0).ok_or(bad)?;
    let quant = Quant {
        scale: f32::from_bits(r.u32(tensor::SCALE)),
        zero_point: r.u8(tensor::ZERO_POINT) as i8,
    };
    if check {
        r.zero(tensor::RESERVED, tensor::OFFSET)?;
        // Constant when one precision is compiled in (the header refuses the other).
        let int8 = if !cfg!(feature = "f32") {
            true
        } else if !cfg!(feature = "int8") {
            false
        } else {
            precision == Precision::Int8
        };
        let good = if !int8 {
            quant.scale.to_bits() == 0 && quant.zero_point == 0
        } else if is_input {
            is_power_of_two_f32(quant.scale)
        } else {
            quant.scale.is_finite() && quant.scale > 0.0
        };
        if !good {
            return Err(bad);
        }
    }
    Ok(Tensor {
        dims,
        len,
        offset: r.usize(tensor::OFFSET),
        quant,
        producer: r.u16(tensor::PRODUCER),
        last_reader: r.u16(tensor::LAST_READER),
    })
}

impl Model<'_> {
    /// Tensor `index`'s record, as the parse accepted it.
    pub(super) fn tensor(&self, index: usize) -> Result<Tensor, Error> {
        tensor_at(
            self.file,
            index,
            self.precision,
            index < self.input_count,
            false,
        )
    }
}
