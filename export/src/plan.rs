//! The arena planner: where each activation tensor of a model file lives.
//!
//! Tensors that share storage form one buffer: a view (Reshape, Slice) lives inside its input,
//! and an element-wise op writes over its first input when nothing reads that input (or a view
//! of it) afterwards. Each buffer is live from the op that writes it to the last op that reads
//! any of its tensors; two buffers live at the same time must not overlap. Offsets come from a
//! greedy first fit by size over these live ranges (largest first, each at the lowest 4-byte
//! aligned offset clear of the buffers already placed that it meets), as TensorFlow Lite
//! Micro's greedy planner does. A chain can also run on two alternating buffers (the ping-pong
//! plan of earlier model files); when that plan is valid and smaller, it wins, so a chain's
//! arena never exceeds its ping-pong figure.

use tinygen_runtime::format;

/// What the planner needs of one op.
#[derive(Debug, Clone, Copy)]
pub struct PlanOp {
    /// The op code (`format::OP_*`).
    pub code: u8,
    /// Input a.
    pub a: usize,
    /// Input b, for ops with two inputs.
    pub b: Option<usize>,
    /// The output tensor.
    pub output: usize,
    /// For a Slice: bytes from the input's start to the view's.
    pub view_offset: usize,
}

/// A plan: each tensor's byte offset in the arena, and the arena's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Byte offset of every tensor.
    pub offsets: Vec<usize>,
    /// The highest `offset + bytes` over all tensors.
    pub peak: usize,
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// A buffer: its size and live range in op time (an op `i` runs at time `i + 1`; inputs are
/// written at time 0; the output is read at the end).
#[derive(Debug, Clone, Copy)]
struct Buffer {
    bytes: usize,
    start: usize,
    end: usize,
}

impl Buffer {
    fn meets(&self, other: &Buffer) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// Plans `bytes.len()` tensors (`bytes[t]` bytes each; tensors `0 .. inputs` are the graph
/// inputs, `output` the graph output) for `ops` in execution order.
pub fn plan(bytes: &[usize], inputs: usize, output: usize, ops: &[PlanOp]) -> Plan {
    let n = bytes.len();
    let end_time = ops.len() + 1;
    // Last read of every tensor, in op time.
    let mut last = vec![0usize; n];
    for (i, op) in ops.iter().enumerate() {
        for t in std::iter::once(op.a).chain(op.b) {
            last[t] = last[t].max(i + 1);
        }
    }
    last[output] = end_time;

    // Storage: buffer of each tensor and its offset inside the buffer.
    let mut buffer_of: Vec<usize> = (0..n).collect();
    let mut inside = vec![0usize; n];
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut index_of = vec![usize::MAX; n]; // root tensor -> buffer index
    for (t, &size) in bytes.iter().enumerate().take(inputs) {
        index_of[t] = buffers.len();
        buffers.push(Buffer {
            bytes: size,
            start: 0,
            end: last[t],
        });
    }
    for (i, op) in ops.iter().enumerate() {
        let time = i + 1;
        let root = buffer_of[op.a];
        let is_view = matches!(op.code, format::OP_RESHAPE | format::OP_SLICE);
        let members_done =
            || (0..n).all(|t| buffer_of[t] != root || t == op.output || last[t] <= time);
        let alias = is_view
            || (format::may_run_in_place(op.code)
                && last[op.a] == time
                && op.b.is_none_or(|b| buffer_of[b] != root)
                && members_done());
        if alias {
            buffer_of[op.output] = root;
            inside[op.output] = inside[op.a] + if is_view { op.view_offset } else { 0 };
            let b = &mut buffers[index_of[root]];
            b.end = b.end.max(last[op.output]);
        } else {
            index_of[op.output] = buffers.len();
            buffers.push(Buffer {
                bytes: bytes[op.output],
                start: time,
                end: last[op.output],
            });
        }
    }

    let greedy = greedy(&buffers);
    let placed = match ping_pong(&buffers) {
        Some(pp) if peak(&buffers, &pp) < peak(&buffers, &greedy) => pp,
        _ => greedy,
    };
    let offsets: Vec<usize> = (0..n)
        .map(|t| placed[index_of[buffer_of[t]]] + inside[t])
        .collect();
    let peak = (0..n).map(|t| offsets[t] + bytes[t]).max().unwrap_or(0);
    Plan { offsets, peak }
}

fn peak(buffers: &[Buffer], offsets: &[usize]) -> usize {
    buffers
        .iter()
        .zip(offsets)
        .map(|(b, &o)| o + b.bytes)
        .max()
        .unwrap_or(0)
}

/// Largest first, each at the lowest aligned offset clear of the placed buffers it meets.
fn greedy(buffers: &[Buffer]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(buffers[k].bytes), buffers[k].start, k));
    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::new();
    for k in order {
        let mut taken: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| buffers[p].meets(&buffers[k]))
            .map(|&p| (offsets[p], offsets[p] + buffers[p].bytes))
            .collect();
        taken.sort_unstable();
        let mut at = 0;
        for (start, end) in taken {
            if at + buffers[k].bytes <= start {
                break;
            }
            at = at.max(align4(end));
        }
        offsets[k] = at;
        placed.push(k);
    }
    offsets
}

/// Two alternating halves in order of writing, if no two buffers that meet share a half.
fn ping_pong(buffers: &[Buffer]) -> Option<Vec<usize>> {
    let half = align4(buffers.iter().map(|b| b.bytes).max().unwrap_or(0));
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&k| (buffers[k].start, k));
    let mut offsets = vec![0usize; buffers.len()];
    for (rank, &k) in order.iter().enumerate() {
        offsets[k] = if rank % 2 == 0 { 0 } else { half };
    }
    for (x, bx) in buffers.iter().enumerate() {
        for (y, by) in buffers.iter().enumerate().skip(x + 1) {
            if offsets[x] == offsets[y] && bx.meets(by) {
                return None;
            }
        }
    }
    Some(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(code: u8, a: usize, output: usize) -> PlanOp {
        PlanOp {
            code,
            a,
            b: None,
            output,
            view_offset: 0,
        }
    }

    #[test]
    fn a_chain_alternates_and_activations_run_in_place() {
        // z(8) -dense-> 40 -relu-> 40 -dense-> 12 -tanh-> 12
        let bytes = [8, 40, 40, 12, 12];
        let ops = [
            op(format::OP_DENSE, 0, 1),
            op(format::OP_RELU, 1, 2),
            op(format::OP_DENSE, 2, 3),
            op(format::OP_TANH, 3, 4),
        ];
        let p = plan(&bytes, 1, 4, &ops);
        assert_eq!(p.offsets[1], p.offsets[2], "relu in place");
        assert_eq!(p.offsets[3], p.offsets[4], "tanh in place");
        assert!(p.offsets[3] >= 40 || p.offsets[3] + 12 <= p.offsets[1]);
        assert!(p.peak <= 2 * 40, "{p:?}");
    }

    #[test]
    fn a_residual_input_stays_live_across_the_branch() {
        // x(16) -dense-> h(16) -relu-> h' -dense-> y(16); add(y, x) -> out
        let bytes = [16, 16, 16, 16, 16];
        let ops = [
            op(format::OP_DENSE, 0, 1),
            op(format::OP_RELU, 1, 2),
            op(format::OP_DENSE, 2, 3),
            PlanOp {
                b: Some(0),
                ..op(format::OP_ADD, 3, 4)
            },
        ];
        let p = plan(&bytes, 1, 4, &ops);
        let clear = |x: usize, y: usize| {
            p.offsets[x] + bytes[x] <= p.offsets[y] || p.offsets[y] + bytes[y] <= p.offsets[x]
        };
        for t in 1..4 {
            assert!(clear(0, t), "x overlaps tensor {t}: {p:?}");
        }
        assert_eq!(p.offsets[4], p.offsets[3], "the add runs in place on y");
        // At the second dense, x, its input and its output are all live.
        assert_eq!(p.peak, 48);
    }

    #[test]
    fn greedy_beats_ping_pong_never_by_losing() {
        // Sizes where first fit alone would need 22 bytes on a chain whose ping-pong needs 20.
        let bytes = [10, 8, 6, 9, 7];
        let ops: Vec<PlanOp> = (0..4).map(|i| op(format::OP_DENSE, i, i + 1)).collect();
        let p = plan(&bytes, 1, 4, &ops);
        assert!(p.peak <= 2 * align4(10), "{p:?}");
    }
}
