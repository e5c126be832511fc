//! The graph-wide checks of the parse, run once after every op record was decoded and checked
//! on its own: lifetimes (each tensor written by one op, read only after it is written, its
//! producer and last-reader fields true), placement (inside the planned arena, aligned, views on
//! their inputs) and overlap (no op writes over a tensor that is still to be read). With these,
//! a run only moves data where the plan says.

use super::header::{tensor_at, Tensor};
use super::read::{usize_to_u32, Fields};
use super::Model;
use crate::error::Error;
use crate::format::{self, header, record};
use core::ops::Range;

fn overlaps(x: &Range<usize>, y: &Range<usize>) -> bool {
    x.start < y.end && y.start < x.end
}

/// The tensors an op record names, read straight from the record (which the decoder checked).
struct Refs {
    code: u8,
    a: usize,
    /// Input b, for the ops that read it.
    b: Option<usize>,
    out: usize,
    param: usize,
}

impl Refs {
    /// Ops that may write over input a.
    fn in_place(&self) -> bool {
        matches!(
            self.code,
            format::OP_RELU
                | format::OP_LEAKY_RELU
                | format::OP_TANH
                | format::OP_SIGMOID
                | format::OP_EXP
                | format::OP_LUT
                | format::OP_ADD
                | format::OP_SUB
                | format::OP_MUL
        )
    }

    /// Views, which write nothing.
    fn is_view(&self) -> bool {
        matches!(self.code, format::OP_RESHAPE | format::OP_SLICE)
    }

    /// The tensors the op reads (b only if it differs from a).
    fn reads(&self) -> [Option<usize>; 2] {
        [Some(self.a), self.b.filter(|&b| b != self.a)]
    }
}

impl Model<'_> {
    fn tensor(&self, index: usize) -> Result<Tensor, Error> {
        tensor_at(
            self.file,
            index,
            self.precision,
            index < self.input_count,
            false,
        )
    }

    fn refs(&self, op: usize) -> Result<Refs, Error> {
        let base = format::op_table(self.tensor_count)
            .and_then(|t| t.checked_add(op.checked_mul(format::RECORD_LEN)?))
            .unwrap_or(usize::MAX);
        let r = Fields::<{ format::RECORD_LEN }>::read(self.file, base)?;
        let param = r.u32(record::PARAM);
        let code = r.u8(record::OP);
        // Input b is a tensor only for the ops that read one (it is 0 in the others).
        let uses_b = code == format::OP_CONCAT
            || (matches!(code, format::OP_ADD | format::OP_SUB | format::OP_MUL)
                && param == format::OPERAND_TENSOR);
        Ok(Refs {
            code,
            a: r.u16(record::INPUT_A),
            b: uses_b.then(|| r.u16(record::INPUT_B)),
            out: r.u16(record::OUTPUT),
            param: usize::try_from(param).unwrap_or(usize::MAX),
        })
    }

    /// Every graph-wide check.
    pub(super) fn check_graph(&self) -> Result<(), Error> {
        let elem = self.precision.element_bytes();
        let expected_tensors = self.input_count + self.op_count;
        if self.tensor_count != expected_tensors {
            return Err(Error::BadHeaderField {
                offset: header::TENSOR_COUNT,
                found: usize_to_u32(self.tensor_count),
                expected: usize_to_u32(expected_tensors),
            });
        }

        // Placement in the arena; inputs have no producer; the output lives to the end, every
        // other tensor's last reader reads it.
        let mut peak = 0;
        for index in 0..self.tensor_count {
            let t = self.tensor(index)?;
            match t
                .len
                .checked_mul(elem)
                .and_then(|n| n.checked_add(t.offset))
            {
                Some(end) if t.offset.is_multiple_of(elem) => peak = peak.max(end),
                _ => return Err(Error::BadPlacement { tensor: index }),
            }
            let last_ok = if index == self.output_tensor {
                t.last_reader == self.op_count
            } else {
                t.last_reader < self.op_count
                    && self.refs(t.last_reader)?.reads().contains(&Some(index))
            };
            if !last_ok || (index < self.input_count && t.producer != 0) {
                return Err(Error::BadLifetime { tensor: index });
            }
        }
        let arena = format::arena_bytes(peak).unwrap_or(usize::MAX);
        if arena != self.arena_bytes {
            return Err(Error::BadHeaderField {
                offset: header::ARENA_BYTES,
                found: usize_to_u32(self.arena_bytes),
                expected: usize_to_u32(arena),
            });
        }

        for op in 0..self.op_count {
            let r = self.refs(op)?;
            let out = self.tensor(r.out)?;
            if out.producer != op {
                return Err(Error::BadLifetime { tensor: r.out });
            }
            // Reads after writes, within the reader's lifetime.
            for index in r.reads().into_iter().flatten() {
                let t = self.tensor(index)?;
                if index >= self.input_count && t.producer >= op {
                    return Err(Error::BadTensorRef { op, tensor: index });
                }
                if t.last_reader < op {
                    return Err(Error::BadLifetime { tensor: index });
                }
            }
            let a = self.tensor(r.a)?;
            if r.is_view() {
                // Reshape's parameter is 0; a slice starts `first` channel planes in.
                let at = r
                    .param
                    .checked_mul(a.dims.h * a.dims.w * elem)
                    .and_then(|skip| a.offset.checked_add(skip));
                if at != Some(out.offset) {
                    return Err(Error::BadPlacement { tensor: r.out });
                }
                continue;
            }
            // The output overlaps no live tensor, except input a exactly, in place, when this
            // op is its last reader and b is not a.
            let written = out.bytes(elem);
            for index in 0..self.tensor_count {
                let t = self.tensor(index)?;
                let live = (index < self.input_count || t.producer < op) && t.last_reader >= op;
                if index == r.out || !live || !overlaps(&written, &t.bytes(elem)) {
                    continue;
                }
                let in_place = r.in_place()
                    && index == r.a
                    && t.bytes(elem) == written
                    && t.last_reader == op
                    && r.b != Some(index);
                if !in_place {
                    return Err(Error::Overlap { op, tensor: index });
                }
            }
        }
        Ok(())
    }
}
