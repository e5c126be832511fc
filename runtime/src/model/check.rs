//! The graph-wide checks of the parse: lifetimes (each tensor written by one op, read only
//! after it is written, its producer and last-reader fields true), placement (inside the planned
//! arena, aligned, views on their inputs) and overlap (no op writes over a tensor that is still
//! to be read). [`Model::check_op`] runs on each op as the parse decodes it, then
//! [`Model::check_tensors`] once. With these, a run only moves data where the plan says.

use super::header::tensor_at;
use super::op::{Op, Step};
use super::read::usize_to_u32;
use super::Model;
use crate::error::Error;
use crate::format::{self, header};

impl Model<'_> {
    /// The checks of op `op` against every tensor record.
    pub(super) fn check_op(&self, op: usize, step: &Step<'_>) -> Result<(), Error> {
        let elem = self.precision.element_bytes();
        if step.out.producer != op {
            return Err(Error::BadLifetime {
                tensor: step.out_index,
            });
        }
        let is_view = matches!(step.op, Op::Reshape | Op::Slice);
        if is_view {
            // Reshape's parameter is 0; a slice starts `first` channel planes in.
            let at = step
                .param
                .checked_mul(step.a.dims.h * step.a.dims.w * elem)
                .and_then(|skip| step.a.offset.checked_add(skip));
            if at != Some(step.out.offset) {
                return Err(Error::BadPlacement {
                    tensor: step.out_index,
                });
            }
        }
        let written = step.out.bytes(elem);
        for index in 0..self.tensor_count {
            let t = self.tensor(index)?;
            let read = index == step.a_index || step.b_index == Some(index);
            let written_before = index < self.input_count || t.producer < op;
            // Reads come after the write and within the tensor's lifetime, and the last
            // reader a tensor names does read it.
            if read && !written_before {
                return Err(Error::BadTensorRef { op, tensor: index });
            }
            if (read && t.last_reader < op) || (t.last_reader == op && !read) {
                return Err(Error::BadLifetime { tensor: index });
            }
            // The output overlaps no live tensor, except input a exactly, in place, when this
            // op is its last reader and b is not a.
            let live = written_before && t.last_reader >= op;
            let bytes = t.bytes(elem);
            if is_view
                || index == step.out_index
                || !live
                || bytes.end <= written.start
                || written.end <= bytes.start
            {
                continue;
            }
            let in_place = format::may_run_in_place(step.code)
                && index == step.a_index
                && bytes == written
                && t.last_reader == op
                && step.b_index != Some(index);
            if !in_place {
                return Err(Error::Overlap { op, tensor: index });
            }
        }
        Ok(())
    }

    /// The checks of the tensor table: each record on its own (shape, quantisation), placement
    /// in the arena and its size, inputs without a producer, the output live to the end.
    pub(super) fn check_tensors(&self) -> Result<(), Error> {
        let elem = self.precision.element_bytes();
        let mut peak = 0;
        for index in 0..self.tensor_count {
            let is_input = index < self.input_count;
            let t = tensor_at(self.file, index, self.precision, is_input, true)?;
            match t
                .len
                .checked_mul(elem)
                .and_then(|n| n.checked_add(t.offset))
            {
                Some(end) if t.offset.is_multiple_of(elem) => peak = peak.max(end),
                _ => return Err(Error::BadPlacement { tensor: index }),
            }
            let last_ok = (t.last_reader == self.op_count) == (index == self.output_tensor);
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
        Ok(())
    }
}
