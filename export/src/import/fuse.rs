//! After mapping: per-channel affine ops folded into the Dense or convolution before them
//! (BatchNormalization's Mul and Add, MatMul's bias Add), a Reshape before a Dense or another
//! Reshape skipped, the nodes the output does not need dropped, and the tensors renumbered.

use crate::dag::{Binary, DagNode, Op, Operand};
use crate::graph::Layer;

/// Scales output channel `o` of `layer` by `s` and adds `add` to its bias (`y' = s y + add`).
fn affine(layer: &mut Layer, s: &[f32], add: &[f32]) -> bool {
    match layer {
        Layer::Dense {
            inputs,
            weight,
            bias,
            ..
        } => {
            for (o, row) in weight.chunks_exact_mut((*inputs).max(1)).enumerate() {
                row.iter_mut().for_each(|w| *w *= s[o]);
            }
            bias.iter_mut()
                .enumerate()
                .for_each(|(o, b)| *b = *b * s[o] + add[o]);
            true
        }
        Layer::Conv2d(c) => {
            let per = c.spec.in_ch * c.spec.kernel.0 * c.spec.kernel.1;
            for (o, block) in c.weight.chunks_exact_mut(per.max(1)).enumerate() {
                block.iter_mut().for_each(|w| *w *= s[o]);
            }
            c.bias
                .iter_mut()
                .enumerate()
                .for_each(|(o, b)| *b = *b * s[o] + add[o]);
            true
        }
        Layer::ConvTranspose2d(c) => {
            // [in, out, kh, kw]: block k of kh * kw belongs to output channel k % out.
            let per = c.spec.kernel.0 * c.spec.kernel.1;
            let out = c.spec.out_ch.max(1);
            for (k, block) in c.weight.chunks_exact_mut(per.max(1)).enumerate() {
                block.iter_mut().for_each(|w| *w *= s[k % out]);
            }
            c.bias
                .iter_mut()
                .enumerate()
                .for_each(|(o, b)| *b = *b * s[o] + add[o]);
            true
        }
        _ => false,
    }
}

fn reads(node: &DagNode) -> impl Iterator<Item = usize> + '_ {
    let second = match &node.op {
        Op::Binary(_, Operand::Tensor(b)) | Op::Concat(b) => Some(*b),
        _ => None,
    };
    std::iter::once(node.input).chain(second)
}

/// Folds, prunes and renumbers `nodes` (tensors `0..n_in` are the inputs); `output` is the
/// graph's output tensor. Returns the new nodes, whose last one computes the output.
pub(crate) fn simplify(n_in: usize, nodes: Vec<DagNode>, output: usize) -> Vec<DagNode> {
    let total = n_in + nodes.len();
    let mut readers = vec![0usize; total];
    for node in &nodes {
        for t in reads(node) {
            readers[t] += 1;
        }
    }
    readers[output] += 1;
    // alias[t]: the tensor that now holds t's values.
    let mut alias: Vec<usize> = (0..total).collect();
    let mut nodes: Vec<Option<DagNode>> = nodes.into_iter().map(Some).collect();
    for j in 0..nodes.len() {
        let Some(node) = nodes[j].as_mut() else {
            continue;
        };
        node.input = alias[node.input];
        if let Op::Binary(_, Operand::Tensor(b)) | Op::Concat(b) = &mut node.op {
            *b = alias[*b];
        }
        // A Dense reads any shape, and a Reshape only the values: skip a Reshape before them.
        if matches!(
            node.op,
            Op::Layer(Layer::Dense { .. } | Layer::Reshape { .. })
        ) && node.input >= n_in
            && readers[node.input] == 1
        {
            let before = node.input;
            if let Some(Some(DagNode {
                input,
                op: Op::Layer(Layer::Reshape { .. }),
            })) = nodes.get(before - n_in)
            {
                let input = *input;
                if let Some(Some(node)) = nodes.get_mut(j) {
                    node.input = input;
                }
                readers[before] = 0;
            }
        }
        let Some(node) = nodes[j].as_ref() else {
            continue;
        };
        let (input, op) = (node.input, node.op.clone());
        let Op::Binary(code, Operand::Channel(v)) = op else {
            continue;
        };
        if input < n_in || readers[input] != 1 {
            continue;
        }
        let ones = vec![1.0; v.len()];
        let zeros = vec![0.0; v.len()];
        let neg: Vec<f32> = v.iter().map(|x| -x).collect();
        let (s, add) = match code {
            Binary::Mul => (&v, &zeros),
            Binary::Add => (&ones, &v),
            Binary::Sub => (&ones, &neg),
        };
        let Some(Some(DagNode {
            op: Op::Layer(layer),
            ..
        })) = nodes.get_mut(input - n_in)
        else {
            continue;
        };
        if affine(layer, s, add) {
            alias[n_in + j] = input;
            readers[input] = readers[n_in + j];
            nodes[j] = None;
        }
    }
    // Keep what the output needs.
    let output = alias[output];
    let mut live = vec![false; total];
    live[output] = true;
    for j in (0..nodes.len()).rev() {
        if !live[n_in + j] {
            continue;
        }
        if let Some(node) = &nodes[j] {
            for t in reads(node) {
                live[t] = true;
            }
        }
    }
    let mut number: Vec<usize> = (0..total).collect();
    let mut out = Vec::new();
    for (j, node) in nodes.into_iter().enumerate() {
        let Some(mut node) = node else { continue };
        if !live[n_in + j] {
            continue;
        }
        node.input = number[node.input];
        if let Op::Binary(_, Operand::Tensor(b)) | Op::Concat(b) = &mut node.op {
            *b = number[*b];
        }
        number[n_in + j] = n_in + out.len();
        out.push(node);
    }
    out
}
