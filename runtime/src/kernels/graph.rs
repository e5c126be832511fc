//! The graph ops' kernels: element-wise arithmetic, exp, requantisation and channel gathers.
//!
//! int8 ops follow the ONNX QDQ graph: dequantize each input, compute in f32, quantize the
//! result. With power-of-two scales every step is exact in f32 (an int8 value times a power of
//! two, a sum or product of two such values), so the result is the exact rational value rounded
//! once, half to even.

/// A quantised tensor's `scale` and `zero_point`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    /// Scale (positive, finite).
    pub scale: f32,
    /// Zero point.
    pub zero_point: i8,
}

impl Quant {
    /// `(q - zero_point) * scale` (ONNX `DequantizeLinear`).
    #[inline]
    pub fn dequantize(self, q: i8) -> f32 {
        (i32::from(q) - i32::from(self.zero_point)) as f32 * self.scale
    }

    /// `clamp(round_half_even(x / scale) + zero_point, -128, 127)` (ONNX `QuantizeLinear`).
    /// NaN quantises to the zero point.
    #[inline]
    pub fn quantize(self, x: f32) -> i8 {
        let q = libm::rintf(x / self.scale) as i32; // `as` saturates; NaN gives 0
        q.saturating_add(i32::from(self.zero_point))
            .clamp(-128, 127) as i8
    }
}

/// An element-wise binary op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
}

impl Binary {
    /// The op on two f32 values.
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
        }
    }
}

/// `acc[i] = op(acc[i], b[i])`.
pub fn binary_f32(op: Binary, acc: &mut [f32], b: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(b) {
        *a = op.apply(*a, b);
    }
}

/// `acc[c, i] = op(acc[c, i], v[c])` over channel planes of `plane` elements.
pub fn binary_channel_f32(op: Binary, acc: &mut [f32], v: &[f32], plane: usize) {
    for (channel, &v) in acc.chunks_mut(plane.max(1)).zip(v) {
        for a in channel {
            *a = op.apply(*a, v);
        }
    }
}

/// `acc[i] = Q_out(op(DQ_a(acc[i]), DQ_b(b[i])))`.
pub fn binary_i8(op: Binary, acc: &mut [i8], qa: Quant, b: &[i8], qb: Quant, qo: Quant) {
    for (a, &b) in acc.iter_mut().zip(b) {
        *a = qo.quantize(op.apply(qa.dequantize(*a), qb.dequantize(b)));
    }
}

/// `acc[c, i] = Q_out(op(DQ_a(acc[c, i]), v[c]))` over channel planes of `plane` elements.
pub fn binary_channel_i8(
    op: Binary,
    acc: &mut [i8],
    qa: Quant,
    v: &[f32],
    plane: usize,
    qo: Quant,
) {
    for (channel, &v) in acc.chunks_mut(plane.max(1)).zip(v) {
        for a in channel {
            *a = qo.quantize(op.apply(qa.dequantize(*a), v));
        }
    }
}

/// `exp(x)` in place (libm's `expf`: the same bits on every target).
pub fn exp_f32(x: &mut [f32]) {
    for v in x {
        *v = libm::expf(*v);
    }
}

/// `x[i] = Q_to(DQ_from(x[i]))` in place: an int8 tensor moved to another quantisation.
pub fn requantize_i8(x: &mut [i8], from: Quant, to: Quant) {
    if from != to {
        for v in x {
            *v = to.quantize(from.dequantize(*v));
        }
    }
}

/// Output channel `k` is input channel `index[k]`: `index` holds little-endian `u16`s, channels
/// are planes of `plane` elements. An index past the input writes nothing for that channel.
pub fn gather<T: Copy>(index: &[u8], plane: usize, x: &[T], y: &mut [T]) {
    let plane = plane.max(1);
    for (out, k) in y.chunks_mut(plane).zip(index.chunks_exact(2)) {
        let from = usize::from(u16::from_le_bytes([
            k.first().copied().unwrap_or(0),
            k.get(1).copied().unwrap_or(0),
        ]));
        let Some(src) = from
            .checked_mul(plane)
            .and_then(|s| x.get(s..s.checked_add(out.len())?))
        else {
            continue;
        };
        out.copy_from_slice(src);
    }
}
