//! The plain f64 forward pass of an export [`Graph`], one sample at a time, CHW row-major:
//! the layers' definitions, written out loop by loop, which the ONNX writer (through tract),
//! the trainer's lowering and the runtime are each compared with.

use tinygen_export::{Graph, Layer, Shape};

/// One layer on one sample (`input` is its input shape), in f64, CHW row-major.
pub fn layer_f64(layer: &Layer, input: Shape, x: &[f64]) -> Vec<f64> {
    match layer {
        Layer::Dense {
            inputs,
            outputs,
            weight,
            bias,
        } => (0..*outputs)
            .map(|o| {
                let row = &weight[o * inputs..(o + 1) * inputs];
                bias[o] as f64 + row.iter().zip(x).map(|(&w, &v)| w as f64 * v).sum::<f64>()
            })
            .collect(),
        Layer::Conv2d(c) => {
            let (oh, ow) = c.spec.conv_out(input.h, input.w).unwrap();
            let (kh, kw) = c.spec.kernel;
            let mut y = vec![0.0; c.spec.out_ch * oh * ow];
            for o in 0..c.spec.out_ch {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = c.bias[o] as f64;
                        for ci in 0..c.spec.in_ch {
                            for a in 0..kh {
                                for b in 0..kw {
                                    // input row = i*s + a - pad, skipped where outside
                                    let r =
                                        (i * c.spec.stride.0 + a) as isize - c.spec.pad.0 as isize;
                                    let q =
                                        (j * c.spec.stride.1 + b) as isize - c.spec.pad.1 as isize;
                                    if r < 0
                                        || q < 0
                                        || r >= input.h as isize
                                        || q >= input.w as isize
                                    {
                                        continue;
                                    }
                                    let w = c.weight[((o * c.spec.in_ch + ci) * kh + a) * kw + b]
                                        as f64;
                                    acc +=
                                        w * x[(ci * input.h + r as usize) * input.w + q as usize];
                                }
                            }
                        }
                        y[(o * oh + i) * ow + j] = acc;
                    }
                }
            }
            y
        }
        Layer::ConvTranspose2d(c) => {
            // scatter: input (ci, r, q) adds w[ci, o, a, b] * x to output (r*s + a - pad, q*s + b - pad);
            // output_padding only extends the output at the end (bottom, right).
            let (oh, ow) = c.spec.conv_transpose_out(input.h, input.w).unwrap();
            let (kh, kw) = c.spec.kernel;
            let mut y = vec![0.0; c.spec.out_ch * oh * ow];
            for o in 0..c.spec.out_ch {
                y[o * oh * ow..(o + 1) * oh * ow].fill(c.bias[o] as f64);
            }
            for ci in 0..c.spec.in_ch {
                for r in 0..input.h {
                    for q in 0..input.w {
                        let v = x[(ci * input.h + r) * input.w + q];
                        for o in 0..c.spec.out_ch {
                            for a in 0..kh {
                                for b in 0..kw {
                                    let i =
                                        (r * c.spec.stride.0 + a) as isize - c.spec.pad.0 as isize;
                                    let j =
                                        (q * c.spec.stride.1 + b) as isize - c.spec.pad.1 as isize;
                                    if i < 0 || j < 0 || i >= oh as isize || j >= ow as isize {
                                        continue;
                                    }
                                    let w = c.weight[((ci * c.spec.out_ch + o) * kh + a) * kw + b]
                                        as f64;
                                    y[(o * oh + i as usize) * ow + j as usize] += w * v;
                                }
                            }
                        }
                    }
                }
            }
            y
        }
        Layer::Relu => x.iter().map(|&v| v.max(0.0)).collect(),
        Layer::LeakyRelu { alpha } => x
            .iter()
            .map(|&v| if v >= 0.0 { v } else { *alpha as f64 * v })
            .collect(),
        Layer::Tanh => x.iter().map(|&v| v.tanh()).collect(),
        Layer::Sigmoid => x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect(),
        Layer::Reshape { .. } => x.to_vec(),
    }
}

/// The whole graph on one sample `z`: every layer's output, the last being the graph's.
pub fn forward_f64(graph: &Graph, z: &[f32]) -> Vec<Vec<f64>> {
    let shapes = graph.shapes().expect("a valid graph");
    let mut x: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let mut acts = Vec::with_capacity(graph.layers.len());
    for (layer, &input) in graph.layers.iter().zip(&shapes) {
        x = layer_f64(layer, input, &x);
        acts.push(x.clone());
    }
    acts
}
