//! The firmware's generator models, built from fixed, seeded weights, written as model files
//! and run on the host through the runtime to get the checksums the firmware must reproduce.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use tinygen_export::{Conv, ConvSpec, Graph, Layer, Part, Shape};
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;

use crate::{fnv1a, write, SplitMix};

/// Seed of the latent the firmware samples (the same on host and target).
const LATENT_SEED: u64 = 2024;
/// Seed and size of the calibration latents for the int8 quantizer.
const CALIBRATION_SEED: u64 = 7;
const CALIBRATION_LATENTS: usize = 64;

/// Dense layer with uniform weights of standard deviation `std` (He: `sqrt(2 / inputs)`).
fn dense(rng: &mut SplitMix, inputs: usize, outputs: usize, std: f32) -> Layer {
    let a = std * 3f32.sqrt();
    Layer::Dense {
        inputs,
        outputs,
        weight: (0..inputs * outputs).map(|_| a * rng.uniform()).collect(),
        bias: (0..outputs).map(|_| 0.1 * a * rng.uniform()).collect(),
    }
}

/// Output Dense layer onto a `side x side` image whose columns are smooth blobs: each hidden
/// unit paints a Gaussian bump of random place, width and sign, so images look like shapes
/// rather than noise. `gain` scales the pre-activations.
fn blob_dense(rng: &mut SplitMix, inputs: usize, side: usize, gain: f32) -> Layer {
    let outputs = side * side;
    let mut weight = vec![0.0f32; inputs * outputs];
    for j in 0..inputs {
        let cy = (rng.uniform() + 1.0) * 0.5 * side as f32;
        let cx = (rng.uniform() + 1.0) * 0.5 * side as f32;
        let s = side as f32 * (0.08 + 0.06 * (rng.uniform() + 1.0));
        let amp = gain * rng.uniform();
        for o in 0..outputs {
            let (y, x) = ((o / side) as f32 + 0.5, (o % side) as f32 + 0.5);
            let d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
            weight[o * inputs + j] =
                amp * (-d2 / (2.0 * s * s)).exp() + 0.02 * gain * rng.uniform();
        }
    }
    Layer::Dense {
        inputs,
        outputs,
        weight,
        bias: vec![-0.5 * gain; outputs],
    }
}

fn conv_t(rng: &mut SplitMix, in_ch: usize, out_ch: usize, std: f32) -> Layer {
    let a = std * 3f32.sqrt();
    Layer::ConvTranspose2d(Conv {
        spec: ConvSpec::square(in_ch, out_ch, 4, 2, 1),
        weight: (0..in_ch * out_ch * 16)
            .map(|_| a * rng.uniform())
            .collect(),
        bias: (0..out_ch).map(|_| 0.1 * a * rng.uniform()).collect(),
    })
}

/// The VAE decoder: 20-400-784, ReLU, sigmoid, as a 28x28 image.
fn mlp() -> Graph {
    let mut rng = SplitMix(0x6d6c_7030);
    Graph {
        part: Part::Generator,
        input: Shape::flat(20),
        layers: vec![
            dense(&mut rng, 20, 400, (2.0f32 / 20.0).sqrt()),
            Layer::Relu,
            blob_dense(&mut rng, 400, 28, 0.6),
            Layer::Sigmoid,
            Layer::Reshape {
                to: Shape::chw(1, 28, 28),
            },
        ],
    }
}

/// The DCGAN generator: 100 -> Dense 7x7x64 -> ReLU -> ConvT 64->32 -> ReLU -> ConvT 32->1 -> tanh.
fn dcgan() -> Graph {
    let mut rng = SplitMix(0x6463_6761);
    // A k4 s2 p1 transposed convolution gathers in_ch * 4 taps per output.
    Graph {
        part: Part::Generator,
        input: Shape::flat(100),
        layers: vec![
            dense(&mut rng, 100, 7 * 7 * 64, (2.0f32 / 100.0).sqrt()),
            Layer::Reshape {
                to: Shape::chw(64, 7, 7),
            },
            Layer::Relu,
            conv_t(&mut rng, 64, 32, (2.0f32 / (64.0 * 4.0)).sqrt()),
            Layer::Relu,
            conv_t(&mut rng, 32, 1, 1.5 / (32.0f32 * 4.0).sqrt()),
            Layer::Tanh,
        ],
    }
}

/// The Cortex-M0 decoder for 8x8 digits: 10-128-64, ReLU, sigmoid.
fn tiny() -> Graph {
    let mut rng = SplitMix(0x7469_6e79);
    Graph {
        part: Part::Generator,
        input: Shape::flat(10),
        layers: vec![
            dense(&mut rng, 10, 128, (2.0f32 / 10.0).sqrt()),
            Layer::Relu,
            blob_dense(&mut rng, 128, 8, 1.0),
            Layer::Sigmoid,
            Layer::Reshape {
                to: Shape::chw(1, 8, 8),
            },
        ],
    }
}

/// Latents for the int8 quantizer's activation ranges.
fn calibration(latent: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng::seed_from_u64(CALIBRATION_SEED);
    (0..CALIBRATION_LATENTS)
        .map(|_| {
            let mut z = vec![0.0; latent];
            rng.fill_gaussian(&mut z);
            z
        })
        .collect()
}

/// Multiply-accumulates of one inference and elements of the largest activation (the input
/// included), from the ops of a file `Model::parse` accepted.
fn layer_stats(model: &Model<'_>) -> (usize, usize) {
    model
        .ops()
        .fold((0, model.input_shape().len()), |(macs, largest), op| {
            (macs + op.macs, largest.max(op.output.len()))
        })
}

/// Runs the model file on the host with the firmware's seed and writes `<name>.tgm` / `.rs`.
/// `source` names the file's origin in errors.
fn emit(dir: &Path, name: &str, source: &str, file: &[u8]) -> Result<(), String> {
    let bytes = tinygen_export::tgm::AlignedBytes::new(file);
    let model = Model::parse(bytes.as_slice())
        .map_err(|e| format!("{source}: not a valid model file: {e}"))?;
    if model.part() != Part::Generator {
        return Err(format!(
            "{source}: holds the {:?} part; the firmware runs a generator (a VAE decoder or GAN generator)",
            model.part()
        ));
    }
    let n = model.output_len();
    let shape = model.output_shape();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0.0f32; n];
    model
        .generate(&mut Rng::seed_from_u64(LATENT_SEED), &mut arena, &mut out)
        .map_err(|e| format!("{source}: generate: {e}"))?;
    let mut pixels = vec![0u8; n];
    model
        .generate_u8(
            &mut Rng::seed_from_u64(LATENT_SEED),
            &mut arena,
            &mut pixels,
        )
        .map_err(|e| format!("{source}: generate_u8: {e}"))?;
    let out_fnv = fnv1a(out.iter().flat_map(|v| v.to_bits().to_le_bytes()));
    let pix_fnv = fnv1a(pixels.iter().copied());
    let (macs, largest) = layer_stats(&model);

    write(&dir.join(format!("{name}.tgm")), file)?;
    // The exporter's constants (ARENA_BYTES, LATENT_LEN, OUTPUT_LEN, MODEL_BYTES), then ours.
    let mut rs = tinygen_export::tgm::model_rs(&model, &format!("{name}.tgm"));
    rs.push_str("\n// Added by examples/firmware/host-gen.\n");
    let _ = writeln!(rs, "/// Elements of the largest activation.");
    let _ = writeln!(rs, "pub const LARGEST_ACTIVATION: usize = {largest};");
    let _ = writeln!(rs, "/// Seed of `Rng::seed_from_u64` for the latent.");
    let _ = writeln!(rs, "pub const SEED: u64 = {LATENT_SEED:#x};");
    let _ = writeln!(rs, "/// Multiply-accumulates of one inference.");
    let _ = writeln!(rs, "pub const MACS: u64 = {macs};");
    let _ = writeln!(rs, "/// Width of the output image.");
    let _ = writeln!(rs, "pub const OUT_W: usize = {};", shape.w);
    let _ = writeln!(rs, "/// FNV-1a of `generate_u8`'s pixels on the host.");
    let _ = writeln!(rs, "pub const EXPECTED_PIXELS_FNV: u32 = {pix_fnv:#010x};");
    let _ = writeln!(
        rs,
        "/// FNV-1a of the little-endian bits of `generate`'s f32 output on the host."
    );
    let _ = writeln!(rs, "pub const EXPECTED_OUTPUT_FNV: u32 = {out_fnv:#010x};");
    write(&dir.join(format!("{name}.rs")), rs.as_bytes())?;
    println!(
        "{name:<16} {} B, {} ops, arena {} B (largest activation {largest} elements), {macs} MACs, pixels fnv {pix_fnv:#010x}",
        file.len(),
        model.op_count(),
        model.arena_bytes()
    );
    Ok(())
}

/// Stems of the built-in models; each is written as `<stem>-f32` and `<stem>-i8`.
const STEMS: [&str; 3] = ["mlp", "dcgan", "tiny"];

/// Writes every model file and its `.rs` constants.
pub fn write_all(dir: &Path) -> Result<(), String> {
    for (stem, graph) in STEMS.into_iter().zip([mlp(), dcgan(), tiny()]) {
        let f32_file =
            tinygen_export::tgm::write_f32(&graph).map_err(|e| format!("{stem}: {e}"))?;
        let name = format!("{stem}-f32");
        emit(dir, &name, &name, &f32_file)?;
        let calib = calibration(graph.input.len());
        let q = tinygen_export::quant::quantize(
            &graph,
            &calib,
            &tinygen_export::quant::QuantOptions::default(),
        )
        .map_err(|e| format!("{stem}: {e}"))?;
        let i8_file = tinygen_export::tgm::write_int8(&q).map_err(|e| format!("{stem}: {e}"))?;
        let name = format!("{stem}-i8");
        emit(dir, &name, &name, &i8_file)?;
    }
    Ok(())
}

/// Checks that `name` can be a firmware model written by [`from_file`].
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "model name {name:?}: use lowercase letters, digits, '-' and '_' (it names files and FW_MODEL)"
        ));
    }
    if name.ends_with("-kernel") {
        return Err(format!(
            "model name {name:?}: names ending in -kernel select the kernel benchmark"
        ));
    }
    if STEMS
        .iter()
        .any(|s| name == format!("{s}-f32") || name == format!("{s}-i8"))
    {
        return Err(format!("model name {name:?} is a built-in model"));
    }
    Ok(())
}

/// Writes an existing model file (e.g. one `tinygen export` wrote) as the firmware model `name`:
/// a copy as `<name>.tgm` and its `<name>.rs`, as for the built-in models.
pub fn from_file(dir: &Path, name: &str, path: &Path) -> Result<(), String> {
    check_name(name)?;
    let file = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    emit(dir, name, &path.display().to_string(), &file)
}
