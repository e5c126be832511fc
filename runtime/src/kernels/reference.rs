//! Plain, slow, obviously-correct kernels: one output element at a time, every tap checked.
//!
//! Same signatures and semantics as the fast kernels in [`crate::kernels`]; the property tests
//! compare every fast kernel with these, and the exporter uses them to simulate the device.
//! Like the fast kernels they never panic: a length mismatch only means fewer outputs are
//! written, and a geometry whose sizes overflow `usize` or has a zero stride writes nothing.
//!
//! int8 accumulation wraps modulo 2^32 (`wrapping_*`): for every shape the model can hold
//! this never happens, and when it does the result still does not depend on summation order,
//! so every fast int8 kernel stays bit-exact with this one.

use super::graph::{Binary, Quant};
use super::{requantize, ConvGeom, Requant};

/// Sizes derived from a geometry, all with checked arithmetic.
#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    /// `in_h * in_w`.
    pub in_plane: usize,
    /// `out_h * out_w`.
    pub out_plane: usize,
}

impl Sizes {
    /// `None` when any size overflows, any stride is zero, or an index `o*s + k` could overflow.
    pub(crate) fn of(g: &ConvGeom) -> Option<Self> {
        if g.stride_h == 0 || g.stride_w == 0 {
            return None;
        }
        // Bound every intermediate index the kernels compute (o*s + k + pad).
        g.out_h
            .checked_mul(g.stride_h)?
            .checked_add(g.k_h)?
            .checked_add(g.pad_h)?
            .checked_add(g.in_h)?;
        g.out_w
            .checked_mul(g.stride_w)?
            .checked_add(g.k_w)?
            .checked_add(g.pad_w)?
            .checked_add(g.in_w)?;
        g.in_h
            .checked_mul(g.stride_h)?
            .checked_add(g.k_h)?
            .checked_add(g.pad_h)?
            .checked_add(g.out_h)?;
        g.in_w
            .checked_mul(g.stride_w)?
            .checked_add(g.k_w)?
            .checked_add(g.pad_w)?
            .checked_add(g.out_w)?;
        let in_plane = g.in_h.checked_mul(g.in_w)?;
        let out_plane = g.out_h.checked_mul(g.out_w)?;
        let taps = g.k_h.checked_mul(g.k_w)?;
        in_plane.checked_mul(g.in_ch)?;
        out_plane.checked_mul(g.out_ch)?;
        taps.checked_mul(g.in_ch)?.checked_mul(g.out_ch)?;
        Some(Self {
            in_plane,
            out_plane,
        })
    }
}

/// Input index of a convolution tap: `o*s + k - pad`, if inside `0..n`.
pub(crate) fn conv_src(o: usize, s: usize, k: usize, pad: usize, n: usize) -> Option<usize> {
    let i = (o * s + k).checked_sub(pad)?;
    (i < n).then_some(i)
}

/// Input index of a transposed-convolution tap: `(o + pad - k) / s`, if divisible and in `0..n`.
pub(crate) fn conv_t_src(o: usize, s: usize, k: usize, pad: usize, n: usize) -> Option<usize> {
    let t = (o + pad).checked_sub(k)?;
    // Checked: no panic path for a zero stride (which `Sizes::of` rules out first).
    if t.checked_rem(s)? != 0 {
        return None;
    }
    let i = t.checked_div(s)?;
    (i < n).then_some(i)
}

/// `y = W x + b`, `w`: `[out, in]` row-major.
pub fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    for (o, (yo, bo)) in y.iter_mut().zip(b).enumerate() {
        let mut acc = *bo;
        for (i, xi) in x.iter().enumerate() {
            let Some(wi) = o.checked_mul(x.len()).and_then(|r| w.get(r + i)) else {
                return;
            };
            acc += wi * xi;
        }
        *yo = acc;
    }
}

/// 2-D convolution; `w`: `[out_ch, in_ch, k_h, k_w]`.
pub fn conv2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let Some(sz) = Sizes::of(g) else { return };
    for oc in 0..g.out_ch {
        let Some(&bias) = b.get(oc) else { return };
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = bias;
                for ic in 0..g.in_ch {
                    for ky in 0..g.k_h {
                        let Some(iy) = conv_src(oy, g.stride_h, ky, g.pad_h, g.in_h) else {
                            continue;
                        };
                        for kx in 0..g.k_w {
                            let Some(ix) = conv_src(ox, g.stride_w, kx, g.pad_w, g.in_w) else {
                                continue;
                            };
                            let wi = ((oc * g.in_ch + ic) * g.k_h + ky) * g.k_w + kx;
                            let xi = ic * sz.in_plane + iy * g.in_w + ix;
                            if let (Some(wv), Some(xv)) = (w.get(wi), x.get(xi)) {
                                acc += wv * xv;
                            }
                        }
                    }
                }
                if let Some(out) = y.get_mut(oc * sz.out_plane + oy * g.out_w + ox) {
                    *out = acc;
                }
            }
        }
    }
}

/// 2-D transposed convolution as a gather; `w`: `[in_ch, out_ch, k_h, k_w]`.
pub fn conv_transpose2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let Some(sz) = Sizes::of(g) else { return };
    for oc in 0..g.out_ch {
        let Some(&bias) = b.get(oc) else { return };
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = bias;
                for ic in 0..g.in_ch {
                    for ky in 0..g.k_h {
                        let Some(iy) = conv_t_src(oy, g.stride_h, ky, g.pad_h, g.in_h) else {
                            continue;
                        };
                        for kx in 0..g.k_w {
                            let Some(ix) = conv_t_src(ox, g.stride_w, kx, g.pad_w, g.in_w) else {
                                continue;
                            };
                            let wi = ((ic * g.out_ch + oc) * g.k_h + ky) * g.k_w + kx;
                            let xi = ic * sz.in_plane + iy * g.in_w + ix;
                            if let (Some(wv), Some(xv)) = (w.get(wi), x.get(xi)) {
                                acc += wv * xv;
                            }
                        }
                    }
                }
                if let Some(out) = y.get_mut(oc * sz.out_plane + oy * g.out_w + ox) {
                    *out = acc;
                }
            }
        }
    }
}

/// Final step of every int8 kernel: requantise, add the output zero point, clamp.
pub(crate) fn finish_i8(acc: i32, c: usize, rq: &Requant<'_>) -> Option<i8> {
    let m = *rq.multiplier.get(c)?;
    let s = *rq.shift.get(c)?;
    let v = requantize(acc, m, s).saturating_add(rq.out_zero_point);
    let lo = i32::from(rq.min);
    let hi = i32::from(rq.max);
    // `max(lo).min(hi)` never panics (unlike `clamp` with lo > hi); the result is in i8 range.
    let v = v.max(lo).min(hi);
    i8::try_from(v).ok()
}

/// int8 Dense: `acc = b + sum w * (x - in_zp)`, then [`requantize`].
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    for (o, (yo, bo)) in y.iter_mut().zip(b).enumerate() {
        let mut acc = *bo;
        for (i, xi) in x.iter().enumerate() {
            let Some(&wi) = o.checked_mul(x.len()).and_then(|r| w.get(r + i)) else {
                return;
            };
            let xv = i32::from(*xi).wrapping_sub(rq.in_zero_point);
            acc = acc.wrapping_add(i32::from(wi).wrapping_mul(xv));
        }
        let Some(v) = finish_i8(acc, o, rq) else {
            return;
        };
        *yo = v;
    }
}

/// int8 Conv2d (padding taps contribute nothing).
pub fn conv2d_i8(g: &ConvGeom, w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    let Some(sz) = Sizes::of(g) else { return };
    for oc in 0..g.out_ch {
        let Some(&bias) = b.get(oc) else { return };
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = bias;
                for ic in 0..g.in_ch {
                    for ky in 0..g.k_h {
                        let Some(iy) = conv_src(oy, g.stride_h, ky, g.pad_h, g.in_h) else {
                            continue;
                        };
                        for kx in 0..g.k_w {
                            let Some(ix) = conv_src(ox, g.stride_w, kx, g.pad_w, g.in_w) else {
                                continue;
                            };
                            let wi = ((oc * g.in_ch + ic) * g.k_h + ky) * g.k_w + kx;
                            let xi = ic * sz.in_plane + iy * g.in_w + ix;
                            if let (Some(&wv), Some(&xv)) = (w.get(wi), x.get(xi)) {
                                let xv = i32::from(xv).wrapping_sub(rq.in_zero_point);
                                acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xv));
                            }
                        }
                    }
                }
                let Some(v) = finish_i8(acc, oc, rq) else {
                    return;
                };
                if let Some(out) = y.get_mut(oc * sz.out_plane + oy * g.out_w + ox) {
                    *out = v;
                }
            }
        }
    }
}

/// int8 ConvTranspose2d as a gather; `w`: `[in_ch, out_ch, k_h, k_w]`.
pub fn conv_transpose2d_i8(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    let Some(sz) = Sizes::of(g) else { return };
    for oc in 0..g.out_ch {
        let Some(&bias) = b.get(oc) else { return };
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = bias;
                for ic in 0..g.in_ch {
                    for ky in 0..g.k_h {
                        let Some(iy) = conv_t_src(oy, g.stride_h, ky, g.pad_h, g.in_h) else {
                            continue;
                        };
                        for kx in 0..g.k_w {
                            let Some(ix) = conv_t_src(ox, g.stride_w, kx, g.pad_w, g.in_w) else {
                                continue;
                            };
                            let wi = ((ic * g.out_ch + oc) * g.k_h + ky) * g.k_w + kx;
                            let xi = ic * sz.in_plane + iy * g.in_w + ix;
                            if let (Some(&wv), Some(&xv)) = (w.get(wi), x.get(xi)) {
                                let xv = i32::from(xv).wrapping_sub(rq.in_zero_point);
                                acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xv));
                            }
                        }
                    }
                }
                let Some(v) = finish_i8(acc, oc, rq) else {
                    return;
                };
                if let Some(out) = y.get_mut(oc * sz.out_plane + oy * g.out_w + ox) {
                    *out = v;
                }
            }
        }
    }
}

/// `max(x, 0)` in place.
pub fn relu_f32(x: &mut [f32]) {
    for v in x {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

/// `x if x >= 0 else alpha * x` in place.
pub fn leaky_relu_f32(x: &mut [f32], alpha: f32) {
    for v in x {
        if *v < 0.0 {
            *v *= alpha;
        }
    }
}

/// `tanh` in place (libm).
pub fn tanh_f32(x: &mut [f32]) {
    for v in x {
        *v = libm::tanhf(*v);
    }
}

/// `1 / (1 + exp(-x))` in place (libm), never NaN for a non-NaN input.
pub fn sigmoid_f32(x: &mut [f32]) {
    for v in x {
        *v = sigmoid(*v);
    }
}

/// Sigmoid of one value: `exp` only ever sees a non-positive argument, so it never overflows.
pub(crate) fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + libm::expf(-v))
    } else {
        let e = libm::expf(v);
        e / (1.0 + e)
    }
}

/// Table lookup in place, indexed by the byte's bit pattern (`x as u8`).
pub fn lut_i8(x: &mut [i8], table: &[i8; 256]) {
    for v in x {
        if let Some(t) = table.get(usize::from(v.cast_unsigned())) {
            *v = *t;
        }
    }
}

/// `acc[i] = op(acc[i], b[i])`, one index at a time.
pub fn binary_f32(op: Binary, acc: &mut [f32], b: &[f32]) {
    for i in 0..acc.len().min(b.len()) {
        if let (Some(a), Some(&b)) = (acc.get(i).copied(), b.get(i)) {
            if let Some(slot) = acc.get_mut(i) {
                *slot = op.apply(a, b);
            }
        }
    }
}

/// `acc[c * plane + j] = op(acc[c * plane + j], v[c])`, one index at a time.
pub fn binary_channel_f32(op: Binary, acc: &mut [f32], v: &[f32], plane: usize) {
    for i in 0..acc.len() {
        let Some(&vc) = v.get(i / plane.max(1)) else {
            break;
        };
        if let Some(slot) = acc.get_mut(i) {
            *slot = op.apply(*slot, vc);
        }
    }
}

/// `acc[i] = quantize(op(dequantize(acc[i]), dequantize(b[i])))` with the ONNX formulas
/// written out: `(q - zp) * scale`, then `clamp(rint(x / scale) + zp)`.
pub fn binary_i8(op: Binary, acc: &mut [i8], qa: Quant, b: &[i8], qb: Quant, qo: Quant) {
    let dq = |q: i8, p: Quant| (f32::from(q) - f32::from(p.zero_point)) * p.scale;
    let qz = |x: f32| {
        let r = libm::rintf(x / qo.scale);
        let r = if r.is_nan() { 0.0 } else { r };
        (r + f32::from(qo.zero_point)).clamp(-128.0, 127.0) as i8
    };
    for i in 0..acc.len().min(b.len()) {
        if let (Some(slot), Some(&b)) = (acc.get_mut(i), b.get(i)) {
            *slot = qz(op.apply(dq(*slot, qa), dq(b, qb)));
        }
    }
}

/// The per-channel form of [`binary_i8`].
pub fn binary_channel_i8(
    op: Binary,
    acc: &mut [i8],
    qa: Quant,
    v: &[f32],
    plane: usize,
    qo: Quant,
) {
    for i in 0..acc.len() {
        let Some(&vc) = v.get(i / plane.max(1)) else {
            break;
        };
        if let Some(slot) = acc.get_mut(i) {
            let x = (f32::from(*slot) - f32::from(qa.zero_point)) * qa.scale;
            let r = libm::rintf(op.apply(x, vc) / qo.scale);
            let r = if r.is_nan() { 0.0 } else { r };
            *slot = (r + f32::from(qo.zero_point)).clamp(-128.0, 127.0) as i8;
        }
    }
}

/// `exp` of each value.
pub fn exp_f32(x: &mut [f32]) {
    for v in x {
        *v = libm::expf(*v);
    }
}

/// Requantisation of each value through f32.
pub fn requantize_i8(x: &mut [i8], from: Quant, to: Quant) {
    for v in x {
        *v = to.quantize(from.dequantize(*v));
    }
}

/// Output element `(k, j)` is input element `(index[k], j)`, one element at a time.
pub fn gather<T: Copy>(index: &[u16], plane: usize, x: &[T], y: &mut [T]) {
    for (i, slot) in y.iter_mut().enumerate() {
        let (k, j) = (i / plane.max(1), i % plane.max(1));
        let Some(&from) = index.get(k) else {
            break;
        };
        if let Some(&v) = x.get(usize::from(from) * plane + j) {
            *slot = v;
        }
    }
}
