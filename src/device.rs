//! What a generator costs on the device: model file bytes, arena bytes, multiply-accumulates,
//! and an estimate of the Cortex-M4F instructions per sample.
//!
//! The estimate multiplies each layer's MACs by the instructions per MAC that the firmware
//! benchmark measured for that kind of layer (`tools/qemu/run-firmware.sh`, QEMU's exact
//! instruction counts on `mps2-an386`, BENCHMARKS.md "Firmware", commit ae897d8). It is an
//! estimate: the measured rates are whole-model figures of two models (an MLP 20-400-784 and
//! the DCGAN generator), which include latent sampling and output conversion; a model of
//! another shape spends another share there. QEMU counts instructions, not cycles.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tinygen_export::dag::{Dag, Op};
use tinygen_export::graph::Layer;

use crate::files::ModelFile;

/// Instructions per MAC measured on the Cortex-M4F, by layer kind and precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct M4fRates {
    /// f32 Dense (M4F MLP 20-400-784 f32: 3,268,184 instructions / 321,600 MACs).
    pub dense_f32: f64,
    /// int8 Dense (M4F MLP 20-400-784 int8: 522,825 / 321,600).
    pub dense_i8: f64,
    /// f32 convolution and transposed convolution (M4F DCGAN f32: 21,652,604 instructions
    /// for 2,019,584 MACs, less its Dense layer's 313,600 MACs at the Dense rate).
    pub conv_f32: f64,
    /// int8 convolution and transposed convolution (M4F DCGAN int8: 36,800,966 instructions,
    /// less its Dense layer at the int8 Dense rate).
    pub conv_i8: f64,
}

/// The rates of BENCHMARKS.md's firmware table (commit ae897d8).
pub const M4F_RATES: M4fRates = M4fRates {
    dense_f32: 3_268_184.0 / 321_600.0,
    dense_i8: 522_825.0 / 321_600.0,
    conv_f32: (21_652_604.0 - 313_600.0 * (3_268_184.0 / 321_600.0)) / (2_019_584.0 - 313_600.0),
    conv_i8: (36_800_966.0 - 313_600.0 * (522_825.0 / 321_600.0)) / (2_019_584.0 - 313_600.0),
};

/// Where the rates come from, for reports.
pub const M4F_RATES_SOURCE: &str = "per-layer instructions per MAC measured under QEMU \
     (mps2-an386, Cortex-M4F) by tools/qemu/run-firmware.sh on the MLP 20-400-784 and DCGAN \
     generators (BENCHMARKS.md, Firmware, commit ae897d8), times this model's MACs per layer";

/// Size and cost of a generator on the device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceCost {
    /// Multiply-accumulates per sample.
    pub macs: usize,
    /// Bytes of the f32 model file, if exported.
    pub f32_bytes: Option<usize>,
    /// Bytes of the int8 model file, if exported.
    pub int8_bytes: Option<usize>,
    /// Arena bytes of the f32 model file.
    pub f32_arena: Option<usize>,
    /// Arena bytes of the int8 model file.
    pub int8_arena: Option<usize>,
    /// Estimated Cortex-M4F instructions per sample, f32.
    pub m4f_insns_f32: f64,
    /// Estimated Cortex-M4F instructions per sample, int8.
    pub m4f_insns_int8: f64,
    /// Whether the int8 metrics were measured on the int8 file.
    pub int8_evaluated: bool,
}

/// Estimated Cortex-M4F instructions per sample of `graph`: `(f32, int8)`, from the MACs of its
/// Dense and convolution layers (a graph's element-wise ops are not counted).
pub fn m4f_instructions(graph: &Dag) -> (f64, f64) {
    let Ok(shapes) = graph.shapes() else {
        return (f64::NAN, f64::NAN);
    };
    let r = M4F_RATES;
    let n_in = graph.inputs.len();
    graph
        .nodes
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(f, q), (k, node)| {
            let Op::Layer(l) = &node.op else {
                // Element-wise graph ops (a flow's Exp, Mul, Add, ...): no MACs, not counted.
                return (f, q);
            };
            let m = l.macs(shapes[node.input], shapes[n_in + k]) as f64;
            match l {
                Layer::Dense { .. } => (f + m * r.dense_f32, q + m * r.dense_i8),
                Layer::Conv2d(_) | Layer::ConvTranspose2d(_) => {
                    (f + m * r.conv_f32, q + m * r.conv_i8)
                }
                _ => (f, q),
            }
        })
}

/// The cost of `graph`, with file and arena sizes from the model files in `export_dir`
/// (`decoder.tgm` / `generator.tgm` and their `.int8.tgm`), where they exist.
pub fn cost(graph: &Dag, export_dir: &Path) -> DeviceCost {
    let (m4f_insns_f32, m4f_insns_int8) = m4f_instructions(graph);
    let mut c = DeviceCost {
        macs: graph.macs().unwrap_or(0),
        m4f_insns_f32,
        m4f_insns_int8,
        ..DeviceCost::default()
    };
    for name in ["decoder", "generator"] {
        for (ext, bytes, arena) in [
            ("tgm", &mut c.f32_bytes, &mut c.f32_arena),
            ("int8.tgm", &mut c.int8_bytes, &mut c.int8_arena),
        ] {
            let path = export_dir.join(format!("{name}.{ext}"));
            if let Ok(file) = ModelFile::open(&path) {
                if let Ok(m) = file.model() {
                    *bytes = Some(m.bytes().len());
                    *arena = Some(m.arena_bytes());
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_reproduce_the_measured_models() {
        // The DCGAN generator: Dense 100 -> 3136 (313,600 MACs) and two transposed
        // convolutions (1,705,984 MACs); the rates must give back the measured totals.
        let r = M4F_RATES;
        let f32_total = 313_600.0 * r.dense_f32 + 1_705_984.0 * r.conv_f32;
        let i8_total = 313_600.0 * r.dense_i8 + 1_705_984.0 * r.conv_i8;
        assert!((f32_total - 21_652_604.0).abs() < 1.0, "{f32_total}");
        assert!((i8_total - 36_800_966.0).abs() < 1.0, "{i8_total}");
    }
}
