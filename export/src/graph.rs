//! The neutral graph: an ordered list of inference layers with f32 weights.
//!
//! The trainer lowers a decoder, generator, encoder or discriminator into a [`Graph`]
//! (BatchNorm folded into the layer before it, dropout removed); the ONNX writer, the
//! quantizer and the model file writer all read it.
//!
//! Activations are row-major `[C, H, W]` tensors for one sample. A flat vector of `n`
//! features is the shape `[n, 1, 1]`. The graph input is the latent vector `z`.

use std::fmt;
pub use tinygen_runtime::geometry::ConvSpec;
pub use tinygen_runtime::vocab::{OutputRange, Part};

/// Shape of one sample's activation: channels, height, width (row-major, CHW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Channels (or features, for a flat vector).
    pub c: usize,
    /// Height (1 for a flat vector).
    pub h: usize,
    /// Width (1 for a flat vector).
    pub w: usize,
}

impl Shape {
    /// A flat vector of `n` features.
    pub const fn flat(n: usize) -> Self {
        Shape { c: n, h: 1, w: 1 }
    }

    /// A `[c, h, w]` image-like tensor.
    pub const fn chw(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True if the shape holds no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.h == 1 && self.w == 1 {
            write!(f, "[{}]", self.c)
        } else {
            write!(f, "[{}, {}, {}]", self.c, self.h, self.w)
        }
    }
}

/// A 2-D convolution or transposed convolution, in the ONNX / PyTorch weight layout.
///
/// Padding is symmetric (`pad` on both sides of each axis).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Channels, kernel, stride and padding.
    pub spec: ConvSpec,
    /// Weights: `[out_ch, in_ch, kh, kw]` for Conv2d, `[in_ch, out_ch, kh, kw]` for
    /// ConvTranspose2d (the ONNX layouts), row-major.
    pub weight: Vec<f32>,
    /// Bias, one per output channel.
    pub bias: Vec<f32>,
}

/// One inference layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `y = W x + b` on a flat input; `weight` is `[outputs, inputs]` row-major.
    Dense {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// `[outputs, inputs]`, row-major.
        weight: Vec<f32>,
        /// `[outputs]`.
        bias: Vec<f32>,
    },
    /// 2-D convolution, weights `[out_ch, in_ch, kh, kw]`.
    Conv2d(Conv),
    /// 2-D transposed convolution, weights `[in_ch, out_ch, kh, kw]`.
    ConvTranspose2d(Conv),
    /// `max(x, 0)`.
    Relu,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Reinterpret the activation with a new shape of the same length (no data movement).
    Reshape {
        /// The new shape.
        to: Shape,
    },
}

impl Layer {
    /// Weights and biases of a Dense or convolution layer (BatchNorm is folded into them);
    /// 0 for the others.
    pub fn parameters(&self) -> usize {
        match self {
            Layer::Dense { weight, bias, .. } => weight.len() + bias.len(),
            Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => c.weight.len() + c.bias.len(),
            _ => 0,
        }
    }

    /// Multiply-accumulates per sample with `input` and `output` shapes: Dense `in * out`;
    /// Conv `out pixels * out_ch * in_ch * kh * kw`; ConvTranspose `in pixels * in_ch * out_ch
    /// * kh * kw` (every input meets every tap); 0 for activations and reshapes.
    pub fn macs(&self, input: Shape, output: Shape) -> usize {
        match self {
            Layer::Dense {
                inputs, outputs, ..
            } => inputs * outputs,
            Layer::Conv2d(c) => {
                output.h
                    * output.w
                    * c.spec.out_ch
                    * c.spec.in_ch
                    * c.spec.kernel.0
                    * c.spec.kernel.1
            }
            Layer::ConvTranspose2d(c) => {
                input.h * input.w * c.spec.in_ch * c.spec.out_ch * c.spec.kernel.0 * c.spec.kernel.1
            }
            _ => 0,
        }
    }

    /// A short name for messages and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "Dense",
            Layer::Conv2d(_) => "Conv2d",
            Layer::ConvTranspose2d(_) => "ConvTranspose2d",
            Layer::Relu => "Relu",
            Layer::LeakyRelu { .. } => "LeakyRelu",
            Layer::Tanh => "Tanh",
            Layer::Sigmoid => "Sigmoid",
            Layer::Reshape { .. } => "Reshape",
        }
    }

    /// Output shape of this layer for input `input`, or why it does not fit.
    pub fn output_shape(&self, index: usize, input: Shape) -> Result<Shape, GraphError> {
        let mismatch = |expected: String| GraphError::ShapeMismatch {
            layer: index,
            op: self.name(),
            input,
            expected,
        };
        match self {
            Layer::Dense {
                inputs,
                outputs,
                weight,
                bias,
            } => {
                if input.len() != *inputs {
                    return Err(mismatch(format!("{inputs} features")));
                }
                check_len(index, "weight", weight.len(), inputs * outputs)?;
                check_len(index, "bias", bias.len(), *outputs)?;
                Ok(Shape::flat(*outputs))
            }
            Layer::Conv2d(c) | Layer::ConvTranspose2d(c) => {
                let transposed = matches!(self, Layer::ConvTranspose2d(_));
                if input.c != c.spec.in_ch {
                    return Err(mismatch(format!("{} input channels", c.spec.in_ch)));
                }
                let (kh, kw) = c.spec.kernel;
                c.spec
                    .geometry()
                    .check(transposed)
                    .map_err(|e| GraphError::BadAttribute {
                        layer: index,
                        what: e.message(),
                    })?;
                check_len(
                    index,
                    "weight",
                    c.weight.len(),
                    c.spec.in_ch * c.spec.out_ch * kh * kw,
                )?;
                check_len(index, "bias", c.bias.len(), c.spec.out_ch)?;
                let (h, w) = c
                    .spec
                    .geometry()
                    .output_size(transposed, input.h, input.w)
                    .ok_or_else(|| mismatch("a spatial size the kernel fits".into()))?;
                Ok(Shape::chw(c.spec.out_ch, h, w))
            }
            Layer::Relu | Layer::Tanh | Layer::Sigmoid => Ok(input),
            Layer::LeakyRelu { alpha } => {
                if !alpha.is_finite() {
                    return Err(GraphError::BadAttribute {
                        layer: index,
                        what: "alpha must be finite",
                    });
                }
                Ok(input)
            }
            Layer::Reshape { to } => {
                if to.len() != input.len() {
                    return Err(mismatch(format!("{} elements for {to}", to.len())));
                }
                Ok(*to)
            }
        }
    }
}

fn check_len(
    layer: usize,
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), GraphError> {
    if got == expected {
        Ok(())
    } else {
        Err(GraphError::TensorLength {
            layer,
            what,
            got,
            expected,
        })
    }
}

/// An ordered list of inference layers from an input vector to an output tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// What this graph is.
    pub part: Part,
    /// Shape of one input sample (the latent vector for a generator).
    pub input: Shape,
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

impl Graph {
    /// Multiply-accumulates per sample of every layer ([`Layer::macs`]).
    pub fn layer_macs(&self) -> Result<Vec<usize>, GraphError> {
        let shapes = self.shapes()?;
        Ok(self
            .layers
            .iter()
            .zip(shapes.windows(2))
            .map(|(l, io)| l.macs(io[0], io[1]))
            .collect())
    }

    /// Shapes after every layer: `shapes()[0]` is the input, `shapes()[i + 1]` the output of layer `i`.
    pub fn shapes(&self) -> Result<Vec<Shape>, GraphError> {
        if self.input.is_empty() {
            return Err(GraphError::EmptyInput);
        }
        if self.layers.is_empty() {
            return Err(GraphError::NoLayers);
        }
        let mut shapes = Vec::with_capacity(self.layers.len() + 1);
        let mut shape = self.input;
        shapes.push(shape);
        for (i, layer) in self.layers.iter().enumerate() {
            shape = layer.output_shape(i, shape)?;
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// Checks that every layer fits the one before it and every tensor has its length.
    pub fn validate(&self) -> Result<(), GraphError> {
        self.shapes().map(|_| ())
    }

    /// Shape of the graph's output.
    pub fn output_shape(&self) -> Result<Shape, GraphError> {
        Ok(*self.shapes()?.last().ok_or(GraphError::NoLayers)?)
    }

    /// The output range implied by the last activation layer.
    pub fn output_range(&self) -> OutputRange {
        let last_activation = self
            .layers
            .iter()
            .rev()
            .find(|l| !matches!(l, Layer::Reshape { .. }));
        match last_activation {
            Some(Layer::Sigmoid) => OutputRange::ZeroOne,
            Some(Layer::Tanh) => OutputRange::MinusOneOne,
            _ => OutputRange::Unbounded,
        }
    }

    /// Number of weight and bias parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(Layer::parameters).sum()
    }

    /// Multiply-accumulates for one sample (the sum of [`Graph::layer_macs`]).
    pub fn macs(&self) -> Result<usize, GraphError> {
        Ok(self.layer_macs()?.iter().sum())
    }
}

/// Why a graph is not well formed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// The input shape holds no elements.
    #[error("the graph input is empty")]
    EmptyInput,
    /// The graph has no layers.
    #[error("the graph has no layers")]
    NoLayers,
    /// A layer does not accept the shape the previous layer produces.
    #[error("layer {layer} ({op}) gets input {input} but needs {expected}")]
    ShapeMismatch {
        /// Layer index.
        layer: usize,
        /// Layer name.
        op: &'static str,
        /// The shape it gets.
        input: Shape,
        /// What it needs.
        expected: String,
    },
    /// A weight or bias tensor has the wrong number of elements.
    #[error("layer {layer}: {what} has {got} values, expected {expected}")]
    TensorLength {
        /// Layer index.
        layer: usize,
        /// Which tensor.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the layer's sizes imply.
        expected: usize,
    },
    /// An attribute is out of range.
    #[error("layer {layer}: {what}")]
    BadAttribute {
        /// Layer index.
        layer: usize,
        /// What is wrong.
        what: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcgan_like() -> Graph {
        let convt = |i: usize, o: usize| Conv {
            spec: ConvSpec::square(i, o, 4, 2, 1),
            weight: vec![0.0; i * o * 16],
            bias: vec![0.0; o],
        };
        Graph {
            part: Part::Generator,
            input: Shape::flat(100),
            layers: vec![
                Layer::Dense {
                    inputs: 100,
                    outputs: 7 * 7 * 64,
                    weight: vec![0.0; 100 * 3136],
                    bias: vec![0.0; 3136],
                },
                Layer::Reshape {
                    to: Shape::chw(64, 7, 7),
                },
                Layer::Relu,
                Layer::ConvTranspose2d(convt(64, 32)),
                Layer::Relu,
                Layer::ConvTranspose2d(convt(32, 1)),
                Layer::Tanh,
            ],
        }
    }

    #[test]
    fn dcgan_generator_shapes_chain_to_28x28() {
        let g = dcgan_like();
        assert_eq!(g.output_shape().unwrap(), Shape::chw(1, 28, 28));
        assert_eq!(g.output_range(), OutputRange::MinusOneOne);
        // 100*3136 + 7*7*64*32*16 + 14*14*32*1*16
        assert_eq!(g.macs().unwrap(), 313_600 + 1_605_632 + 100_352);
    }

    #[test]
    fn mismatched_dense_is_reported_with_its_index() {
        let mut g = dcgan_like();
        g.input = Shape::flat(99);
        let err = g.validate().unwrap_err();
        assert!(
            matches!(err, GraphError::ShapeMismatch { layer: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn conv_transpose_output_size_follows_onnx() {
        let c = Conv {
            spec: ConvSpec {
                in_ch: 1,
                out_ch: 1,
                kernel: (3, 3),
                stride: (2, 2),
                pad: (1, 1),
                output_padding: (1, 1),
            },
            weight: vec![0.0; 9],
            bias: vec![0.0],
        };
        // 2 * (8 - 1) + 1 + 3 - 2 = 16
        assert_eq!(c.spec.conv_transpose_out(8, 8), Some((16, 16)));
        // (8 + 2 - 3) / 2 + 1 = 4
        assert_eq!(c.spec.conv_out(8, 8), Some((4, 4)));
    }
}
