//! Inference kernels, f32 and int8. (API contract; bodies being written.)
//!
//! Activations are row-major `[C, H, W]`. Every kernel trusts its caller (the model, after
//! `Model::parse` validated every shape) for slice lengths, but still never indexes out of
//! bounds: it iterates with `zip` / `chunks_exact`, and a length mismatch only means fewer
//! outputs are written.

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
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i32 {
    let _ = (acc, multiplier, shift);
    todo!()
}

/// `y = W x + b`, `w`: `[out, in]` row-major.
pub fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let _ = (w, b, x, y);
    todo!()
}

/// 2-D convolution; `w`: `[out_ch, in_ch, k_h, k_w]`.
pub fn conv2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let _ = (g, w, b, x, y);
    todo!()
}

/// 2-D transposed convolution as a gather; `w`: `[in_ch, out_ch, k_h, k_w]`.
pub fn conv_transpose2d_f32(g: &ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let _ = (g, w, b, x, y);
    todo!()
}

/// int8 Dense: `acc = b + sum w * (x - in_zp)`, then [`requantize`].
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    let _ = (w, b, x, rq, y);
    todo!()
}

/// int8 Conv2d (padding taps contribute nothing).
pub fn conv2d_i8(g: &ConvGeom, w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    let _ = (g, w, b, x, rq, y);
    todo!()
}

/// int8 ConvTranspose2d as a gather.
pub fn conv_transpose2d_i8(g: &ConvGeom, w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    let _ = (g, w, b, x, rq, y);
    todo!()
}

/// Elementwise activations in place, f32.
pub fn relu_f32(x: &mut [f32]) {
    let _ = x;
    todo!()
}
/// LeakyReLU in place.
pub fn leaky_relu_f32(x: &mut [f32], alpha: f32) {
    let _ = (x, alpha);
    todo!()
}
/// tanh in place (libm).
pub fn tanh_f32(x: &mut [f32]) {
    let _ = x;
    todo!()
}
/// sigmoid in place (libm).
pub fn sigmoid_f32(x: &mut [f32]) {
    let _ = x;
    todo!()
}
/// int8 elementwise activation through a 256-entry table indexed by `x as u8`.
pub fn lut_i8(x: &mut [i8], table: &[i8; 256]) {
    let _ = (x, table);
    todo!()
}
