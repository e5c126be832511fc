//! Inference kernels, f32 and int8.
//!
//! Activations are row-major `[C, H, W]`. Every kernel trusts its caller (the model, after
//! `Model::parse` validated every shape) for slice lengths, but still never indexes out of
//! bounds: it iterates with `zip` / `chunks_exact`, and a length mismatch only means fewer
//! outputs are written. A geometry whose sizes overflow `usize`, or with a zero stride, writes
//! nothing. [`reference`] holds the plain implementation of every kernel.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod act;
mod col2im;
mod conv;
// On Cortex-M4/M7 only the f32 parts are used (the int8 Dense has its own kernel).
#[cfg_attr(tinygen_dsp, allow(dead_code))]
mod dense;
#[cfg(tinygen_dsp)]
#[allow(unsafe_code)]
mod dsp;
pub mod dsp_conv;
pub mod dsp_model;
pub mod graph;
pub mod reference;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

use conv::Mac;

/// f32 multiply-accumulate.
struct F32Mac;

impl Mac for F32Mac {
    type W = f32;
    type X = f32;
    type A = f32;
    type Y = f32;
    type C = ();
    #[inline(always)]
    fn mac(&self, a: f32, w: f32, x: f32) -> f32 {
        a + w * x
    }
    fn channel(&self, _oc: usize) -> Option<()> {
        Some(())
    }
    #[inline(always)]
    fn finish(_c: &(), a: f32) -> f32 {
        a
    }
}

/// int8 multiply-accumulate: `a + w * (x - zp)`, wrapping like the reference.
#[cfg_attr(tinygen_dsp, allow(dead_code))]
struct I8Mac<'a, 'r> {
    rq: &'a Requant<'r>,
}

impl Mac for I8Mac<'_, '_> {
    type W = i8;
    type X = i8;
    type A = i32;
    type Y = i8;
    type C = I8Out;
    #[inline(always)]
    fn mac(&self, a: i32, w: i8, x: i8) -> i32 {
        a.wrapping_add(i32::from(w).wrapping_mul(i32::from(x).wrapping_sub(self.rq.in_zero_point)))
    }
    fn channel(&self, oc: usize) -> Option<I8Out> {
        I8Out::of(self.rq, oc)
    }
    #[inline(always)]
    fn finish(c: &I8Out, a: i32) -> i8 {
        c.apply(a)
    }
    fn zero_point(&self) -> i32 {
        self.rq.in_zero_point
    }
}

/// Per-channel output parameters of an int8 layer.
#[cfg_attr(tinygen_dsp, allow(dead_code))]
struct I8Out {
    multiplier: i32,
    shift: u8,
    out_zero_point: i32,
    min: i32,
    max: i32,
}

impl I8Out {
    fn of(rq: &Requant<'_>, c: usize) -> Option<Self> {
        Some(Self {
            multiplier: *rq.multiplier.get(c)?,
            shift: *rq.shift.get(c)?,
            out_zero_point: rq.out_zero_point,
            min: i32::from(rq.min),
            max: i32::from(rq.max),
        })
    }

    /// Same steps as `reference::finish_i8`.
    #[inline(always)]
    fn apply(&self, acc: i32) -> i8 {
        let v = requantize(acc, self.multiplier, self.shift).saturating_add(self.out_zero_point);
        // In i8 range after the clamp to [min, max] (both i8), so the fallback never happens.
        i8::try_from(v.max(self.min).min(self.max)).unwrap_or(0)
    }
}

/// Geometry of a convolution or transposed convolution (symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels, height, width.
    pub in_ch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding on top and bottom.
    pub pad_h: usize,
    /// Padding on left and right.
    pub pad_w: usize,
}

/// Per-output-channel requantisation of int8 layers:
/// `y = clamp(round_half_even(acc * multiplier[c] / 2^shift[c]) + out_zero_point, min, max)`.
#[derive(Debug, Clone, Copy)]
pub struct Requant<'a> {
    /// Zero point of the input activation (subtracted from every input).
    pub in_zero_point: i32,
    /// Zero point of the output activation.
    pub out_zero_point: i32,
    /// One multiplier per output channel.
    pub multiplier: &'a [i32],
    /// One right shift per output channel (0..=62).
    pub shift: &'a [u8],
    /// Lowest output value (for a folded ReLU: the output zero point).
    pub min: i8,
    /// Highest output value.
    pub max: i8,
}

/// `round_half_even(acc * multiplier / 2^shift)`, saturated to i32. The one rounding rule
/// of the int8 path (ONNX QuantizeLinear rounding, one step).
///
/// Exact for every `acc`, `multiplier` and `shift` (a shift of 63 or more gives 0, which is
/// the exact result). When the product provably fits in 31 bits it is computed in 32-bit
/// arithmetic (no 64-bit multiply, which costs a library call on Cortex-M0); otherwise in i64.
/// Both paths are tested against an exact i128 model.
///
/// Out of line on microcontrollers: one copy serves every kernel (it runs once per output, and
/// the fast kernels inline a shorter path for the common case first).
#[cfg_attr(target_pointer_width = "64", inline)]
#[cfg_attr(not(target_pointer_width = "64"), inline(never))]
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i32 {
    // Cortex-M4/M7 multiply 32 x 32 -> 64 bits in one instruction: the 32-bit path would only
    // add code (the DSP kernels inline their own short path first).
    #[cfg(tinygen_dsp)]
    return requantize_wide(acc, multiplier, shift);
    #[cfg(not(tinygen_dsp))]
    requantize_narrow(acc, multiplier, shift)
        .unwrap_or_else(|| requantize_wide(acc, multiplier, shift))
}

/// The 64-bit path of [`requantize`], valid for every input.
#[inline]
pub fn requantize_wide(acc: i32, multiplier: i32, shift: u8) -> i32 {
    // |p| <= 2^62, so no step below overflows i64.
    let p = i64::from(acc) * i64::from(multiplier);
    let q = match shift {
        0 => p,
        // |p / 2^63| <= 1/2, and exactly 1/2 rounds to the even 0.
        63.. => 0,
        s => {
            // floor((p + 2^(s-1) - 1 + lsb(floor(p / 2^s))) / 2^s): adds one exactly when the
            // remainder is above one half, or equal to one half with an odd quotient.
            let half_minus_one = (1i64 << (s - 1)) - 1;
            (p + half_minus_one + ((p >> s) & 1)) >> s
        }
    };
    // Saturate; `max/min` keep the value in i32 range, so the conversion cannot fail.
    i32::try_from(q.max(i64::from(i32::MIN)).min(i64::from(i32::MAX))).unwrap_or(0)
}

/// The 32-bit path of [`requantize`]: `Some` when `|acc * multiplier| < 2^30`, as guaranteed
/// by `|multiplier| < 2^8 && |acc| < 2^22` or `|multiplier| < 2^15 && |acc| < 2^15`
/// (the snapped-scale multipliers of the exporter are below 2^7), `None` otherwise.
#[inline]
pub fn requantize_narrow(acc: i32, multiplier: i32, shift: u8) -> Option<i32> {
    let a = acc.unsigned_abs();
    let m = multiplier.unsigned_abs();
    if !((m >> 8 == 0 && a >> 22 == 0) || (m >> 15 == 0 && a >> 15 == 0)) {
        return None;
    }
    // |p| < 2^30 by the test above.
    let p = acc.wrapping_mul(multiplier);
    Some(match shift {
        0 => p,
        // |p / 2^s| < 1/2.
        31.. => 0,
        // As in `requantize_wide`; |p| + 2^(s-1) < 2^31 because s <= 30.
        s => (p + ((1i32 << (s - 1)) - 1) + ((p >> s) & 1)) >> s,
    })
}

/// `y = W x + b`, `w` in output panels ([`crate::format::DENSE_PANEL`]; pack a `[out, in]`
/// matrix with [`crate::format::dense_panel_index`]). Bit-identical with
/// [`reference::dense_f32`] on the unpacked matrix.
pub fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    let panel = x86::dense_panel_f32();
    #[cfg(not(target_arch = "x86_64"))]
    let panel = dense::panel_f32_portable;
    dense::dense_f32(w, b, x, y, panel);
}

/// 2-D convolution; `w`: `[out_ch, in_ch, k_h, k_w]`.
pub fn conv2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    conv::conv2d(&F32Mac, g, w, b, x, y);
}

/// 2-D transposed convolution as a gather; `w`: `[in_ch, out_ch, k_h, k_w]`.
pub fn conv_transpose2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    x86::conv_transpose2d_f32(g, w, b, x, y);
    #[cfg(not(target_arch = "x86_64"))]
    col2im::conv_transpose2d_f32_cols(g, w, b, x, y);
}

/// int8 Dense: `acc = b + sum w * (x - in_zp)`, then [`requantize`].
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    #[cfg(tinygen_dsp)]
    dsp::dense_i8(w, b, x, rq, y);
    #[cfg(not(tinygen_dsp))]
    dense::dense_i8(w, b, x, rq, y);
}

/// int8 Conv2d (padding taps contribute nothing).
pub fn conv2d_i8(g: &ConvGeom, w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    // Cortex-M4/M7: the packed DSP kernel from 4 input channels on (with fewer, most of each
    // eight-channel word would be zeros: a 1-channel 4x4 layer costs 29 instructions per MAC
    // there); a layer too large for its stack buffers, or with fewer channels, takes the
    // row kernel.
    #[cfg(tinygen_dsp)]
    if g.in_ch >= 4 && dsp_conv::conv2d_i8_with(g, w, b, x, rq, y, dsp::dot4) {
        return;
    }
    conv::conv2d(&I8Mac { rq }, g, w, b, x, y);
}

/// int8 ConvTranspose2d as a gather.
pub fn conv_transpose2d_i8(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    // Cortex-M4/M7: as `conv2d_i8`.
    #[cfg(tinygen_dsp)]
    if !dsp_conv::conv_transpose2d_i8_with(g, w, b, x, rq, y, dsp::dot4) {
        reference::conv_transpose2d_i8(g, w, b, x, rq, y);
    }
    #[cfg(not(tinygen_dsp))]
    conv_transpose2d_i8_portable(g, w, b, x, rq, y);
}

/// [`conv_transpose2d_i8`] on targets without the DSP kernel.
#[cfg(not(tinygen_dsp))]
fn conv_transpose2d_i8_portable(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    let m = I8Mac { rq };
    #[cfg(target_arch = "x86_64")]
    if x86::conv_transpose2d_i8_f32(&m, g, w, b, x, y) {
        return;
    }
    #[cfg(all(target_pointer_width = "64", not(target_arch = "x86_64")))]
    if col2im::conv_transpose2d_i8_f32(&m, g, w, b, x, y) {
        return;
    }
    conv::conv_transpose2d(&m, g, w, b, x, y);
}

/// Elementwise activations in place, f32.
pub fn relu_f32(x: &mut [f32]) {
    dense::relu_f32(x);
}
/// LeakyReLU in place.
pub fn leaky_relu_f32(x: &mut [f32], alpha: f32) {
    dense::leaky_relu_f32(x, alpha);
}
/// tanh in place: branch-free range reduction and polynomial (within 2 ulp, the same bits on
/// every target; see `act`). NaN stays NaN, any other input gives a value in [-1, 1].
pub fn tanh_f32(x: &mut [f32]) {
    act::tanh_f32(x);
}
/// sigmoid in place: branch-free range reduction and polynomial (within 2.5 ulp, the same bits
/// on every target; see `act`). NaN stays NaN, any other input gives a value in [0, 1].
pub fn sigmoid_f32(x: &mut [f32]) {
    act::sigmoid_f32(x);
}
/// int8 elementwise activation through a 256-entry table indexed by `x as u8`.
pub fn lut_i8(x: &mut [i8], table: &[i8; 256]) {
    reference::lut_i8(x, table);
}
