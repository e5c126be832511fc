//! A decoded op: what it computes, with its weights borrowed from the file ([`Op`]), the
//! tensors it reads and writes ([`Step`]), and the public summary of each op ([`OpInfo`]).

use super::decode::Decoder;
use super::header::Tensor;
use super::{Dims, Model};
use crate::format;
use crate::kernels::graph::Binary;
use crate::kernels::{ConvGeom, Requant};

/// The second operand of an element-wise binary op.
#[derive(Debug, Clone, Copy)]
pub(super) enum Operand<'a> {
    /// A tensor of the same shape (its index).
    Tensor(usize),
    /// One f32 value per channel.
    Channel(&'a [f32]),
}

/// One decoded op, borrowing its weights from the file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op<'a> {
    DenseF32 {
        w: &'a [f32],
        b: &'a [f32],
    },
    ConvF32 {
        g: ConvGeom,
        w: &'a [f32],
        b: &'a [f32],
    },
    ConvTransposeF32 {
        g: ConvGeom,
        w: &'a [f32],
        b: &'a [f32],
    },
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Tanh,
    Sigmoid,
    Exp,
    DenseI8 {
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    ConvI8 {
        g: ConvGeom,
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    ConvTransposeI8 {
        g: ConvGeom,
        w: &'a [i8],
        b: &'a [i32],
        rq: Requant<'a>,
    },
    Lut {
        table: &'a [i8; format::LUT_LEN],
    },
    /// A view: nothing to compute.
    Reshape,
    /// A view of channels: nothing to compute.
    Slice,
    Binary {
        kind: Binary,
        operand: Operand<'a>,
    },
    Concat {
        b: usize,
    },
    Gather {
        index: &'a [u8],
    },
}

impl Op<'_> {
    /// True for ops that may write over their first input: the ops of
    /// [`format::may_run_in_place`], read from the decoded op on the executor's hot path.
    pub(super) fn in_place(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::LeakyRelu { .. }
                | Op::Tanh
                | Op::Sigmoid
                | Op::Exp
                | Op::Lut { .. }
                | Op::Binary { .. }
        )
    }
}

/// One decoded op with the tensors it reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step<'a> {
    pub(super) op: Op<'a>,
    /// Input a.
    pub(super) a: Tensor,
    /// The output.
    pub(super) out: Tensor,
    /// The record's op code.
    pub(super) code: u8,
    /// Index of input a.
    pub(super) a_index: usize,
    /// Index of input b, for the ops that read one.
    pub(super) b_index: Option<usize>,
    /// Index of the output.
    pub(super) out_index: usize,
    /// The record's parameter (a slice's first channel; 0 for a reshape).
    pub(super) param: usize,
}

/// What one op of a parsed model does, for reports and cost estimates ([`Model::ops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    /// The op code (`format::OP_*`).
    pub code: u8,
    /// Shape of its first input.
    pub input: Dims,
    /// Shape of its output.
    pub output: Dims,
    /// Multiply-accumulates of one run (Dense and convolutions; 0 for the others).
    pub macs: usize,
}

/// The ops of a parsed model, in order (see [`Model::ops`]).
pub struct Ops<'a>(Decoder<'a>);

impl Iterator for Ops<'_> {
    type Item = OpInfo;

    fn next(&mut self) -> Option<OpInfo> {
        // The parse decoded every op already, so this cannot fail.
        let step = self.0.next_step().ok()??;
        let kernel = match step.op {
            Op::ConvF32 { g, .. }
            | Op::ConvTransposeF32 { g, .. }
            | Op::ConvI8 { g, .. }
            | Op::ConvTransposeI8 { g, .. } => g.k_h.saturating_mul(g.k_w),
            _ => 0,
        };
        let (i, o) = (step.a.dims, step.out.dims);
        let macs = match step.op {
            Op::DenseF32 { .. } | Op::DenseI8 { .. } => i.len().saturating_mul(o.len()),
            Op::ConvF32 { .. } | Op::ConvI8 { .. } => {
                o.len().saturating_mul(i.c).saturating_mul(kernel)
            }
            Op::ConvTransposeF32 { .. } | Op::ConvTransposeI8 { .. } => {
                i.len().saturating_mul(o.c).saturating_mul(kernel)
            }
            _ => 0,
        };
        Some(OpInfo {
            code: step.code,
            input: i,
            output: o,
            macs,
        })
    }
}

impl<'a> Model<'a> {
    /// The ops in execution order, with their shapes and multiply-accumulates.
    pub fn ops(&self) -> Ops<'a> {
        Ops(self.decoder())
    }
}
