//! The graph-wide checks of the parse, run once after every op decoded: lifetimes (each tensor
//! written once, read only after it is written, producer and last-reader fields true), placement
//! (inside the planned arena, aligned, views on their inputs) and overlap (no op writes over a
//! tensor that is still to be read). With these, a run only moves data where the plan says.

use super::header::{tensor_at, Tensor};
use super::ops::{Op, Step};
use super::read::usize_to_u32;
use super::Model;
use crate::error::Error;
use crate::format::{self, header};
use core::ops::Range;

fn overlaps(x: &Range<usize>, y: &Range<usize>) -> bool {
    x.start < y.end && y.start < x.end
}

/// The tensors op `step` reads: input a, and b when it has one (once if they are the same).
fn reads(step: &Step<'_>) -> [Option<usize>; 2] {
    let b = step.op.second_input().filter(|&b| b != step.a_index);
    [Some(step.a_index), b]
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

    /// Every graph-wide check; the ops and tensor records were checked one by one before.
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

        // Placement in the arena, and the lifetime fields that need no op.
        let mut peak = 0;
        for index in 0..self.tensor_count {
            let t = self.tensor(index)?;
            let bytes = t
                .len
                .checked_mul(elem)
                .and_then(|n| n.checked_add(t.offset));
            match bytes {
                Some(end) if t.offset.is_multiple_of(elem) => peak = peak.max(end),
                _ => return Err(Error::BadPlacement { tensor: index }),
            }
            let output = index == self.output_tensor;
            let lifetime_ok = (index >= self.input_count || t.producer == 0)
                && (t.last_reader == self.op_count) == output;
            if !lifetime_ok {
                return Err(Error::BadLifetime { tensor: index });
            }
        }
        let arena = format::arena_bytes(peak).ok_or(Error::BadHeaderField {
            offset: header::ARENA_BYTES,
            found: usize_to_u32(self.arena_bytes),
            expected: u32::MAX,
        })?;
        if arena != self.arena_bytes {
            return Err(Error::BadHeaderField {
                offset: header::ARENA_BYTES,
                found: usize_to_u32(self.arena_bytes),
                expected: usize_to_u32(arena),
            });
        }

        // Producers, reads after writes, last readers, views.
        let mut last_reads = 0;
        let mut ops = self.decoder();
        while let Some(step) = ops.next_step()? {
            let op = ops.index - 1;
            if step.out.producer != op {
                return Err(Error::BadLifetime {
                    tensor: step.out_index,
                });
            }
            for index in reads(&step).into_iter().flatten() {
                let t = self.tensor(index)?;
                if index >= self.input_count && t.producer >= op {
                    return Err(Error::BadTensorRef { op, tensor: index });
                }
                if t.last_reader < op {
                    return Err(Error::BadLifetime { tensor: index });
                }
                if t.last_reader == op {
                    last_reads += 1;
                }
            }
            let view_at = match step.op {
                Op::Reshape => Some(step.a.offset),
                Op::Slice => step
                    .first
                    .checked_mul(step.a.dims.h * step.a.dims.w * elem)
                    .and_then(|skip| step.a.offset.checked_add(skip)),
                _ => continue,
            };
            if view_at != Some(step.out.offset) {
                return Err(Error::BadPlacement {
                    tensor: step.out_index,
                });
            }
        }
        // Each tensor but the output has one last reader, which matched above exactly when the
        // op it names reads it.
        if last_reads != self.tensor_count - 1 {
            return Err(Error::BadLifetime {
                tensor: self.unread_tensor()?,
            });
        }

        // No op writes over a tensor that is live while it runs, except in place.
        let mut ops = self.decoder();
        while let Some(step) = ops.next_step()? {
            if step.op.is_view() {
                continue;
            }
            let op = ops.index - 1;
            let written = step.out.bytes(elem);
            for index in 0..self.tensor_count {
                if index == step.out_index {
                    continue;
                }
                let t = self.tensor(index)?;
                let live = (index < self.input_count || t.producer < op) && t.last_reader >= op;
                if !live || !overlaps(&written, &t.bytes(elem)) {
                    continue;
                }
                let in_place = step.op.in_place()
                    && index == step.a_index
                    && t.bytes(elem) == written
                    && t.last_reader == op
                    && step.op.second_input() != Some(index);
                if !in_place {
                    return Err(Error::Overlap { op, tensor: index });
                }
            }
        }
        Ok(())
    }

    /// The first tensor (other than the output) whose last reader does not read it.
    fn unread_tensor(&self) -> Result<usize, Error> {
        for index in 0..self.tensor_count {
            if index == self.output_tensor {
                continue;
            }
            let last = self.tensor(index)?.last_reader;
            let mut ops = self.decoder();
            let mut read = false;
            while let Some(step) = ops.next_step()? {
                if ops.index - 1 == last {
                    read = reads(&step).contains(&Some(index));
                    break;
                }
            }
            if !read {
                return Ok(index);
            }
        }
        // Unreachable after a count mismatch; name the output rather than panic.
        Ok(self.output_tensor)
    }
}
