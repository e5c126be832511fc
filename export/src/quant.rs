//! The int8 quantizer: calibration on f32 latents, per-channel symmetric int8 weights, per-tensor
//! asymmetric int8 activations, requantisation constants folded here so the device only applies
//! them, and a host simulation of the device's int8 path.
//!
//! # Scale rule (the default, `free_scales: false`)
//!
//! - Activation scales are powers of two: `s = 2^ceil(log2((hi - lo) / 255))` over the observed
//!   range widened to include 0; the zero point is `clamp(-128 - round(lo / s), -128, 127)`.
//! - Weight scales are per output channel, `max|w| / 127` rounded **up** to a 7-bit mantissa
//!   (`m * 2^e`, `64 <= m <= 127`); weights are `clamp(round(w / s_w), -127, 127)`.
//! - Bias is i32 with scale `s_in * s_w[c]` and zero point 0.
//! - Then `s_in * s_w / s_out = m * 2^-n` exactly, and the runtime's
//!   [`requantize`](tinygen_runtime::kernels::requantize)`(acc, m, n)` is the exact
//!   round-half-even of `acc * s_in * s_w / s_out`: bit-exact with ONNX QDQ in tract and
//!   onnxruntime.
//!
//! With `free_scales: true`, activation scales are `(hi - lo) / 255` and weight scales
//! `max|w| / 127` (not snapped); the multiplier is a Q31 mantissa of `s_in * s_w / s_out` with
//! its shift (at most one step from a float reference).
//!
//! A ReLU that follows a Dense or convolution (possibly through reshapes) is folded into the
//! layer's clamp (`min` = output zero point); other activations become 256-entry tables
//! `q_out = sat(round(f(s_in * (q - zp_in)) / s_out) + zp_out)`, with `f` in f32 `libm` math.

use tinygen_runtime::model::{Activation as RtActivation, Model};

use crate::graph::{Conv, ConvSpec, Graph, GraphError, Layer, OutputRange, Part, Shape};
use crate::tgm::{self, AlignedBytes, TgmError};

/// Quantisation of one int8 tensor, `real = scale * (q - zero_point)`: the runtime's
/// [`tinygen_runtime::model::Quant`], with its `quantize` and `dequantize`.
pub type QParams = tinygen_runtime::model::Quant;

/// An elementwise activation that became a lookup table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)` (when it could not be folded into the layer before it).
    Relu,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `exp(x)` (graphs only: a flow's scale).
    Exp,
}

impl Activation {
    /// The function in f32 `libm` math, as the tables are computed.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            Activation::Tanh => libm::tanhf(x),
            // The runtime's reference sigmoid: exp only sees non-positive arguments.
            Activation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + libm::expf(-x))
                } else {
                    let e = libm::expf(x);
                    e / (1.0 + e)
                }
            }
            Activation::Exp => libm::expf(x),
        }
    }

    /// The 256-entry table `q_out = sat(round_half_even(f(s_in * (q - zp_in)) / s_out) + zp_out)`,
    /// indexed by the input byte (`q as u8`).
    pub fn table(self, input: QParams, output: QParams) -> [i8; 256] {
        let mut table = [0i8; 256];
        for q in -128i32..=127 {
            let x = input.scale * (q - i32::from(input.zero_point)) as f32;
            table[usize::from(q as i8 as u8)] = output.quantize(self.apply(x));
        }
        table
    }
}

/// The int8 parts of a Dense or convolution layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinear {
    /// int8 weights in the layout of [`crate::graph`] (`[out, in]`, `[out_ch, in_ch, kh, kw]`, or
    /// `[in_ch, out_ch, kh, kw]` for ConvTranspose2d); symmetric, in `-127..=127`.
    pub weight: Vec<i8>,
    /// One weight scale per output channel (zero point 0): `w = weight_scale[c] * q`. In ONNX
    /// this is the per-axis DequantizeLinear scale (axis 0 for Gemm and Conv, 1 for ConvTranspose).
    pub weight_scale: Vec<f32>,
    /// int32 bias, one per output channel, with scale `input.scale * weight_scale[c]` and zero point 0.
    pub bias: Vec<i32>,
    /// Quantisation of the layer's input tensor.
    pub input: QParams,
    /// Quantisation of the layer's output tensor (after the folded ReLU, if any).
    pub output: QParams,
    /// Requantisation multiplier per output channel: `acc * s_in * s_w[c] / s_out` is
    /// `requantize(acc, multiplier[c], shift[c])`.
    pub multiplier: Vec<i32>,
    /// Requantisation right shift per output channel (`0..=62`).
    pub shift: Vec<u8>,
    /// A ReLU was folded into this layer: in ONNX, `op -> Relu -> QuantizeLinear(output)`.
    pub relu: bool,
    /// Lowest output value: the output zero point with a folded ReLU, else -128.
    pub min: i8,
    /// Highest output value (127).
    pub max: i8,
}

/// One layer of a quantized graph.
#[derive(Debug, Clone, PartialEq)]
pub enum QLayer {
    /// int8 Dense, `weight` `[outputs, inputs]`.
    Dense {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// The int8 tensors and constants.
        q: QLinear,
    },
    /// int8 Conv2d, `weight` `[out_ch, in_ch, kh, kw]`.
    Conv2d {
        /// Geometry.
        conv: ConvSpec,
        /// The int8 tensors and constants.
        q: QLinear,
    },
    /// int8 ConvTranspose2d, `weight` `[in_ch, out_ch, kh, kw]`.
    ConvTranspose2d {
        /// Geometry.
        conv: ConvSpec,
        /// The int8 tensors and constants.
        q: QLinear,
    },
    /// An elementwise activation as a lookup table.
    Activation {
        /// The function the table holds.
        f: Activation,
        /// Quantisation of the input tensor.
        input: QParams,
        /// Quantisation of the output tensor.
        output: QParams,
        /// `table[q as u8]` is the output for input `q`.
        table: [i8; 256],
    },
    /// Reinterpret with a new shape (the quantisation is unchanged).
    Reshape {
        /// The new shape.
        to: Shape,
    },
}

impl QLayer {
    /// The f32 layer of the same geometry with zero weights (a table stands as a ReLU): what
    /// shape rules need.
    pub(crate) fn skeleton(&self) -> Layer {
        match self {
            QLayer::Dense { inputs, outputs, q } => Layer::Dense {
                inputs: *inputs,
                outputs: *outputs,
                weight: vec![0.0; q.weight.len()],
                bias: vec![0.0; q.bias.len()],
            },
            QLayer::Conv2d { conv, q } | QLayer::ConvTranspose2d { conv, q } => {
                let c = Conv {
                    spec: *conv,
                    weight: vec![0.0; q.weight.len()],
                    bias: vec![0.0; q.bias.len()],
                };
                if matches!(self, QLayer::Conv2d { .. }) {
                    Layer::Conv2d(c)
                } else {
                    Layer::ConvTranspose2d(c)
                }
            }
            QLayer::Activation { .. } => Layer::Relu,
            QLayer::Reshape { to } => Layer::Reshape { to: *to },
        }
    }

    /// The int8 parts of a Dense or convolution layer.
    pub fn linear(&self) -> Option<&QLinear> {
        match self {
            QLayer::Dense { q, .. }
            | QLayer::Conv2d { q, .. }
            | QLayer::ConvTranspose2d { q, .. } => Some(q),
            _ => None,
        }
    }
}

/// A quantized graph: plain data read by the ONNX QDQ writer and the model file writer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantGraph {
    /// What part of a trained model this is.
    pub part: Part,
    /// Shape of the f32 input `z`.
    pub input_shape: Shape,
    /// Quantisation of the input `z` (a power-of-two scale in both modes, so that tract's
    /// reciprocal-multiply QuantizeLinear equals the division).
    pub input: QParams,
    /// The layers, in order.
    pub layers: Vec<QLayer>,
    /// Quantisation of the output tensor (the last layer's output).
    pub output: QParams,
    /// Range of the dequantised output, for pixels.
    pub output_range: OutputRange,
    /// Whether scales were left free (not snapped to the bit-exact rule).
    pub free_scales: bool,
}

impl QuantGraph {
    /// Shapes after every layer: `[input, after layer 0, ...]`.
    pub fn shapes(&self) -> Result<Vec<Shape>, GraphError> {
        let mut shapes = Vec::with_capacity(self.layers.len() + 1);
        let mut shape = self.input_shape;
        shapes.push(shape);
        for (i, layer) in self.layers.iter().enumerate() {
            let as_f32 = layer.skeleton();
            shape = as_f32.output_shape(i, shape)?;
            shapes.push(shape);
        }
        Ok(shapes)
    }
}

/// Options of [`quantize`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuantOptions {
    /// Activation scales from the observed ranges and unsnapped weight scales, with Q31
    /// multipliers (not bit-exact with ONNX runtimes; within one step).
    pub free_scales: bool,
}

/// Why a graph could not be quantized or simulated.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// No calibration latents were given.
    #[error("quantization needs at least one calibration latent vector")]
    NoCalibration,
    /// A latent vector has the wrong length.
    #[error("calibration latent {index} has {got} values, the graph takes {expected}")]
    LatentLength {
        /// Index of the latent.
        index: usize,
        /// The graph's input length.
        expected: usize,
        /// Its length.
        got: usize,
    },
    /// A calibration activation is NaN or infinite.
    #[error("layer {layer} produced a non-finite value during calibration")]
    NonFinite {
        /// Layer index (`usize::MAX` for the input).
        layer: usize,
    },
    /// A requantisation multiplier does not fit (an absurd scale ratio).
    #[error("layer {layer}: scale ratio {ratio} cannot be requantized")]
    ScaleOutOfRange {
        /// Layer index.
        layer: usize,
        /// `s_in * s_w / s_out`.
        ratio: f64,
    },
    /// The graph has a form the quantiser does not take.
    #[error("cannot quantize {what}")]
    Unsupported {
        /// What it is.
        what: String,
    },
    /// The graph is not well formed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Writing the model file for calibration or simulation failed.
    #[error(transparent)]
    Tgm(#[from] TgmError),
    /// The runtime refused to run.
    #[error("runtime: {0}")]
    Runtime(#[from] tinygen_runtime::error::Error),
}

/// Observed range of one tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub(crate) lo: f32,
    pub(crate) hi: f32,
}

impl Range {
    pub(crate) fn new() -> Self {
        Range { lo: 0.0, hi: 0.0 }
    }

    pub(crate) fn add(&mut self, xs: &[f32], layer: usize) -> Result<(), QuantError> {
        for &x in xs {
            if !x.is_finite() {
                return Err(QuantError::NonFinite { layer });
            }
            self.lo = self.lo.min(x);
            self.hi = self.hi.max(x);
        }
        Ok(())
    }
}

/// Activation quantisation of a range (which includes 0).
pub(crate) fn activation_params(r: Range, free: bool) -> QParams {
    let span = f64::from(r.hi) - f64::from(r.lo);
    let span = if span > 0.0 { span } else { 1.0 };
    let scale = if free {
        (span / 255.0) as f32
    } else {
        pow2_ceil(span / 255.0)
    };
    let zp = (-128.0 - (f64::from(r.lo) / f64::from(scale)).round_ties_even()).clamp(-128.0, 127.0);
    QParams {
        scale,
        zero_point: zp as i8,
    }
}

/// The smallest power of two at least `x` (`x > 0`), as f32.
fn pow2_ceil(x: f64) -> f32 {
    let e = x.log2().ceil() as i32;
    let mut s = 2f64.powi(e);
    // Guard the log2 rounding in both directions.
    if s < x {
        s *= 2.0;
    }
    if s / 2.0 >= x {
        s /= 2.0;
    }
    s as f32
}

/// `x` (positive) rounded up to `m * 2^e` with an integer mantissa `64 <= m <= 127`; returns
/// `(m, e)`.
fn snap_up_7bit(x: f64) -> (i32, i32) {
    let mut e = x.log2().floor() as i32 - 6;
    // Normalise so that 64 <= x / 2^e < 128.
    while x / 2f64.powi(e) >= 128.0 {
        e += 1;
    }
    while x / 2f64.powi(e) < 64.0 {
        e -= 1;
    }
    let mut m = (x / 2f64.powi(e)).ceil() as i32;
    if m == 128 {
        m = 64;
        e += 1;
    }
    (m, e)
}

/// Output-channel index of every weight element, for the three layouts.
fn channel_of(layer: &Layer, index: usize) -> usize {
    match layer {
        Layer::Dense { inputs, .. } => index / inputs,
        Layer::Conv2d(c) => index / (c.spec.in_ch * c.spec.kernel.0 * c.spec.kernel.1),
        Layer::ConvTranspose2d(c) => index / (c.spec.kernel.0 * c.spec.kernel.1) % c.spec.out_ch,
        _ => 0,
    }
}

/// Quantizes one Dense or convolution layer.
pub(crate) fn quantize_linear(
    index: usize,
    layer: &Layer,
    input: QParams,
    output: QParams,
    relu: bool,
    free: bool,
) -> Result<QLinear, QuantError> {
    let (weight, bias) = match layer {
        Layer::Dense { weight, bias, .. } => (weight, bias),
        Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => (&c.weight, &c.bias),
        _ => unreachable!("quantize_linear is only called on Dense and convolutions"),
    };
    let channels = bias.len();
    let mut max_abs = vec![0f64; channels];
    for (i, &w) in weight.iter().enumerate() {
        let c = channel_of(layer, i);
        max_abs[c] = max_abs[c].max(f64::from(w.abs()));
    }
    let s_in = f64::from(input.scale);
    let s_out = f64::from(output.scale);
    let mut weight_scale = Vec::with_capacity(channels);
    let mut multiplier = Vec::with_capacity(channels);
    let mut shift = Vec::with_capacity(channels);
    for c in 0..channels {
        // max|w| / 127, but large enough that the bias fits in 24 bits (so accumulators stay
        // far from i32 overflow), and 1/127 for an all-zero channel.
        let mut raw = max_abs[c] / 127.0;
        raw = raw.max(f64::from(bias[c].abs()) / (s_in * f64::from(1u32 << 23)));
        if raw == 0.0 || !raw.is_normal() {
            raw = 1.0 / 127.0;
        }
        let (s_w, m, n) = if free {
            let s_w = f64::from(raw as f32);
            let (m, n) = q31_multiplier(index, s_in * s_w / s_out)?;
            (s_w as f32, m, n)
        } else {
            let (m_w, e_w) = snap_up_7bit(raw);
            let s_w = f64::from(m_w) * 2f64.powi(e_w);
            // s_in * s_w / s_out = m_w * 2^(e_w + log2 s_in - log2 s_out) exactly.
            let k = e_w + s_in.log2().round() as i32 - s_out.log2().round() as i32;
            let (m, n) = if k > 0 {
                if k > 23 {
                    return Err(QuantError::ScaleOutOfRange {
                        layer: index,
                        ratio: s_in * s_w / s_out,
                    });
                }
                (m_w << k, 0u8)
            } else {
                // A shift beyond 62 gives 0 like the exact result, since |acc * m| < 2^38.
                (m_w, (-k).min(62) as u8)
            };
            (s_w as f32, m, n)
        };
        weight_scale.push(s_w);
        multiplier.push(m);
        shift.push(n);
    }
    let qweight = weight
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let s = f64::from(weight_scale[channel_of(layer, i)]);
            (f64::from(w) / s).round_ties_even().clamp(-127.0, 127.0) as i8
        })
        .collect();
    let qbias = bias
        .iter()
        .zip(&weight_scale)
        .map(|(&b, &s_w)| (f64::from(b) / (s_in * f64::from(s_w))).round_ties_even() as i32)
        .collect();
    Ok(QLinear {
        weight: qweight,
        weight_scale,
        bias: qbias,
        input,
        output,
        multiplier,
        shift,
        relu,
        min: if relu { output.zero_point } else { -128 },
        max: 127,
    })
}

/// `ratio = m * 2^-n` with a Q31 mantissa `2^30 <= m < 2^31` (rounded half to even).
fn q31_multiplier(layer: usize, ratio: f64) -> Result<(i32, u8), QuantError> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(QuantError::ScaleOutOfRange { layer, ratio });
    }
    let mut e = ratio.log2().floor() as i32 + 1;
    // Normalise so that 0.5 <= ratio / 2^e < 1.
    while ratio / 2f64.powi(e) >= 1.0 {
        e += 1;
    }
    while ratio / 2f64.powi(e) < 0.5 {
        e -= 1;
    }
    let mut m = (ratio / 2f64.powi(e) * 2f64.powi(31)).round_ties_even() as i64;
    if m == 1 << 31 {
        m = 1 << 30;
        e += 1;
    }
    let n = 31 - e;
    if n < 0 {
        return Err(QuantError::ScaleOutOfRange { layer, ratio });
    }
    if n > 62 {
        let m = ((ratio * 2f64.powi(62)).round_ties_even() as i32).max(1);
        return Ok((m, 62));
    }
    Ok((m as i32, n as u8))
}

/// Runs the f32 graph on every calibration latent through the runtime and returns the range of
/// every tensor (`[input, after layer 0, ...]`).
fn calibrate(graph: &Graph, calibration: &[Vec<f32>]) -> Result<Vec<Range>, QuantError> {
    calibrate_file(&tgm::write_f32(graph)?, graph.layers.len() + 1, calibration)
}

/// Runs the f32 model file `bytes` (one input, tensor 0; op `k` writes tensor `k + 1`) on every
/// calibration latent through the runtime and returns the range of each of its `tensors`.
pub(crate) fn calibrate_file(
    bytes: &[u8],
    tensors: usize,
    calibration: &[Vec<f32>],
) -> Result<Vec<Range>, QuantError> {
    if calibration.is_empty() {
        return Err(QuantError::NoCalibration);
    }
    let file = AlignedBytes::new(bytes);
    let model = Model::parse(&file)?;
    let mut ranges = vec![Range::new(); tensors];
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    for (index, z) in calibration.iter().enumerate() {
        if z.len() != model.latent_len() {
            return Err(QuantError::LatentLength {
                index,
                expected: model.latent_len(),
                got: z.len(),
            });
        }
        ranges[0].add(z, usize::MAX)?;
        let mut failure = None;
        model.run_inspect(z, &mut arena, &mut out, &mut |layer, act| {
            if let RtActivation::F32(xs) = act {
                if let Err(e) = ranges[layer + 1].add(xs, layer) {
                    failure.get_or_insert(e);
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(ranges)
}

/// Quantizes `graph` to int8 with activation ranges observed on `calibration` latents.
pub fn quantize(
    graph: &Graph,
    calibration: &[Vec<f32>],
    options: &QuantOptions,
) -> Result<QuantGraph, QuantError> {
    graph.validate()?;
    let free = options.free_scales;
    let ranges = calibrate(graph, calibration)?;
    // The input scale is a power of two in both modes (see `QuantGraph::input`).
    let input = activation_params(ranges[0], false);
    let mut current = input;
    let mut layers = Vec::with_capacity(graph.layers.len());
    let mut i = 0;
    while i < graph.layers.len() {
        let layer = &graph.layers[i];
        match layer {
            Layer::Dense { .. } | Layer::Conv2d(_) | Layer::ConvTranspose2d(_) => {
                // Fold a ReLU that follows, possibly through reshapes.
                let mut j = i + 1;
                while matches!(graph.layers.get(j), Some(Layer::Reshape { .. })) {
                    j += 1;
                }
                let relu = matches!(graph.layers.get(j), Some(Layer::Relu));
                let last = if relu { j } else { i };
                let output = activation_params(ranges[last + 1], free);
                let q = quantize_linear(i, layer, current, output, relu, free)?;
                layers.push(match layer {
                    Layer::Dense {
                        inputs, outputs, ..
                    } => QLayer::Dense {
                        inputs: *inputs,
                        outputs: *outputs,
                        q,
                    },
                    Layer::Conv2d(c) => QLayer::Conv2d { conv: c.spec, q },
                    Layer::ConvTranspose2d(c) => QLayer::ConvTranspose2d { conv: c.spec, q },
                    _ => unreachable!("matched above"),
                });
                if relu {
                    for l in &graph.layers[i + 1..j] {
                        if let Layer::Reshape { to } = l {
                            layers.push(QLayer::Reshape { to: *to });
                        }
                    }
                }
                current = output;
                i = last + 1;
            }
            Layer::Relu | Layer::LeakyRelu { .. } | Layer::Tanh | Layer::Sigmoid => {
                let f = match layer {
                    Layer::Relu => Activation::Relu,
                    Layer::LeakyRelu { alpha } => Activation::LeakyRelu { alpha: *alpha },
                    Layer::Tanh => Activation::Tanh,
                    _ => Activation::Sigmoid,
                };
                let output = activation_params(ranges[i + 1], free);
                layers.push(QLayer::Activation {
                    f,
                    input: current,
                    output,
                    table: f.table(current, output),
                });
                current = output;
                i += 1;
            }
            Layer::Reshape { to } => {
                layers.push(QLayer::Reshape { to: *to });
                i += 1;
            }
        }
    }
    Ok(QuantGraph {
        part: graph.part,
        input_shape: graph.input,
        input,
        layers,
        output: current,
        output_range: graph.output_range(),
        free_scales: free,
    })
}

/// The device's int8 path run on the host for one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The quantized input.
    pub input: Vec<i8>,
    /// The int8 output of every layer, in order (`layers[i]` after `QuantGraph::layers[i]`).
    pub layers: Vec<Vec<i8>>,
    /// The dequantised output.
    pub output: Vec<f32>,
}

impl Simulation {
    /// The int8 tensor entering layer `i`: the quantized input for `i = 0`, else the output
    /// of layer `i - 1` (the last layer's output for `i = layers.len()`).
    pub fn tensor(&self, i: usize) -> &[i8] {
        if i == 0 {
            &self.input
        } else {
            &self.layers[i - 1]
        }
    }
}

/// [`Simulation::tensor`] `i` of every sample of a batch, concatenated in order.
pub fn batch_tensor(sims: &[Simulation], i: usize) -> Vec<i8> {
    sims.iter()
        .flat_map(|s| s.tensor(i).iter().copied())
        .collect()
}

/// Runs the quantized graph on `z` through the runtime's int8 path (the model file the device
/// reads), recording every layer's int8 output.
pub fn simulate(q: &QuantGraph, z: &[f32]) -> Result<Simulation, QuantError> {
    let file = AlignedBytes::new(&tgm::write_int8(q)?);
    let model = Model::parse(&file)?;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut output = vec![0f32; model.output_len()];
    let mut layers = Vec::with_capacity(q.layers.len());
    model.run_inspect(z, &mut arena, &mut output, &mut |_, act| {
        if let RtActivation::I8(xs) = act {
            layers.push(xs.to_vec());
        }
    })?;
    Ok(Simulation {
        input: z.iter().map(|&x| q.input.quantize(x)).collect(),
        layers,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_up_gives_a_7bit_mantissa_not_below_the_input() {
        for &x in &[1e-3, 0.0078125, 0.3, 1.0, 1.0 / 127.0, 0.999, 5e-9] {
            let (m, e) = snap_up_7bit(x);
            assert!((64..=127).contains(&m), "{x}: m = {m}");
            let s = f64::from(m) * 2f64.powi(e);
            assert!(s >= x && s < x * (1.0 + 1.0 / 64.0), "{x} -> {s}");
        }
        // Exactly representable values stay.
        assert_eq!(snap_up_7bit(0.75), (96, -7));
    }

    #[test]
    fn pow2_ceil_is_the_smallest_power_not_below() {
        assert_eq!(pow2_ceil(1.0), 1.0);
        assert_eq!(pow2_ceil(1.0001), 2.0);
        assert_eq!(pow2_ceil(2.0 / 255.0), 1.0 / 64.0);
        assert_eq!(pow2_ceil(0.0078125), 0.0078125);
    }

    #[test]
    fn q31_multiplier_reconstructs_the_ratio() {
        for &r in &[1e-4, 0.0123, 0.5, 0.999_999_9, 3.7] {
            let (m, n) = q31_multiplier(0, r).unwrap();
            assert!((1 << 30..1i64 << 31).contains(&i64::from(m)));
            let back = f64::from(m) / 2f64.powi(i32::from(n));
            // One Q31 rounding step: relative error at most 2^-31.
            assert!((back - r).abs() <= r * 2f64.powi(-30), "{r} -> {back}");
        }
    }

    #[test]
    fn activation_params_cover_the_range_with_zero_exact() {
        // 1.99 / 255 <= 2^-7.
        let p = activation_params(Range { lo: -1.0, hi: 0.99 }, false);
        assert_eq!(p.scale, 1.0 / 128.0);
        assert_eq!(p.zero_point, 0);
        // 2 / 255 > 2^-7.
        let p = activation_params(Range { lo: -1.0, hi: 1.0 }, false);
        assert_eq!(p.scale, 1.0 / 64.0);
        assert_eq!(p.zero_point, -64);
        let p = activation_params(Range { lo: 0.0, hi: 1.0 }, false);
        assert_eq!(p.scale, 1.0 / 128.0);
        assert_eq!(p.zero_point, -128);
        assert_eq!(p.quantize(0.0), -128);
    }
}
