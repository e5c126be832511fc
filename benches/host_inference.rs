//! Host inference speed: the runtime (f32 and int8) against tract-onnx on the same float model,
//! batch 1, for the MLP decoder (20-400-784) and the DCGAN generator (100 -> 3136 -> 64x7x7 ->
//! ConvT 32x14x14 -> ConvT 1x28x28), plus the hot kernels alone.
//!
//! Run pinned to one core: `taskset -c 1 cargo bench --bench host_inference`.
//! Before timing, the setup checks that the runtime's f32 output and tract's agree within
//! [`F32_VS_TRACT_TOL`], so both sides compute the same thing. After criterion's report, each
//! runtime/tract pair is timed again interleaved (A, B, A, B, ...) and the ratio of the medians
//! printed: on a shared, noisy machine interleaving exposes both sides to the same load.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tinygen_export::check::tract_onnx::prelude::{tvec, IntoTValue, Tensor};
use tinygen_export::check::{max_diff, run_runtime, Load, Plan, Tract};
use tinygen_export::graph::{Conv, ConvSpec, Graph, Layer, Part, Shape};
use tinygen_export::quant::{self, QuantOptions};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_runtime::kernels::{self, ConvGeom};
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;

/// Largest allowed |runtime f32 - tract| on any output. Both add the same products in different
/// orders (up to 3136 terms of Kaiming-scale weights) and use different tanh/sigmoid
/// approximations (each within about 2e-7 relative); the observed difference is a few 1e-7.
const F32_VS_TRACT_TOL: f32 = 1e-5;

/// Seeded `N(0, std²)` values.
fn gaussian(rng: &mut Rng, n: usize, std: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    rng.fill_gaussian(&mut v);
    v.iter_mut().for_each(|x| *x *= std);
    v
}

/// A Dense layer with Kaiming-normal weights (`std = sqrt(2 / fan_in)`) and small biases.
fn dense(rng: &mut Rng, inputs: usize, outputs: usize) -> Layer {
    Layer::Dense {
        inputs,
        outputs,
        weight: gaussian(rng, inputs * outputs, (2.0 / inputs as f32).sqrt()),
        bias: gaussian(rng, outputs, 0.01),
    }
}

/// ConvTranspose 4x4, stride 2, pad 1, Kaiming-normal over the taps that reach one output
/// (`in_ch · 4 · 4 / 4`).
fn conv_t(rng: &mut Rng, in_ch: usize, out_ch: usize) -> Layer {
    let fan_in = (in_ch * 4) as f32;
    Layer::ConvTranspose2d(Conv {
        spec: ConvSpec::square(in_ch, out_ch, 4, 2, 1),
        weight: gaussian(rng, in_ch * out_ch * 16, (2.0 / fan_in).sqrt()),
        bias: gaussian(rng, out_ch, 0.01),
    })
}

/// The VAE decoder: 20-400-784, ReLU, sigmoid.
fn mlp_decoder() -> Graph {
    let mut rng = Rng::seed_from_u64(1);
    Graph {
        part: Part::Generator,
        input: Shape::flat(20),
        layers: vec![
            dense(&mut rng, 20, 400),
            Layer::Relu,
            dense(&mut rng, 400, 784),
            Layer::Sigmoid,
        ],
    }
}

/// The DCGAN generator: 100 -> Dense 3136 -> 64x7x7 -> ReLU -> ConvT 64->32 -> ReLU ->
/// ConvT 32->1 -> tanh.
fn dcgan_generator() -> Graph {
    let mut rng = Rng::seed_from_u64(2);
    Graph {
        part: Part::Generator,
        input: Shape::flat(100),
        layers: vec![
            dense(&mut rng, 100, 3136),
            Layer::Reshape {
                to: Shape::chw(64, 7, 7),
            },
            Layer::Relu,
            conv_t(&mut rng, 64, 32),
            Layer::Relu,
            conv_t(&mut rng, 32, 1),
            Layer::Tanh,
        ],
    }
}

/// The ONNX bytes in tract, optimised, with the input fixed to `shape` (batch 1).
fn tract_batch1(name: &str, onnx: &[u8], shape: &[usize]) -> Tract {
    Tract::load(
        name,
        onnx,
        &Load {
            plan: Plan::Optimized,
            input_shape: Some(shape.to_vec()),
        },
    )
    .expect("tract loads the ONNX")
}

/// An optimized tract plan of `graph` with the input fixed to batch 1.
fn tract_plan(graph: &Graph, name: &str) -> Tract {
    let onnx = tinygen_export::onnx::to_onnx_f32(graph, name).expect("ONNX export");
    // Flat latents are [N, latent] in ONNX.
    tract_batch1(name, &onnx, &[1, graph.input.len()])
}

/// One model ready to run in all three engines.
struct Case {
    name: &'static str,
    f32_file: AlignedBytes,
    i8_file: AlignedBytes,
    plan: Tract,
    z: Vec<f32>,
}

impl Case {
    fn new(name: &'static str, graph: &Graph) -> Self {
        let mut rng = Rng::seed_from_u64(99);
        let latent = graph.input.len();
        let calibration: Vec<Vec<f32>> = (0..64).map(|_| gaussian(&mut rng, latent, 1.0)).collect();
        let q = quant::quantize(graph, &calibration, &QuantOptions::default()).expect("quantize");
        let case = Case {
            name,
            f32_file: AlignedBytes::new(&tgm::write_f32(graph).expect("tgm f32")),
            i8_file: AlignedBytes::new(&tgm::write_int8(&q).expect("tgm int8")),
            plan: tract_plan(graph, name),
            z: gaussian(&mut rng, latent, 1.0),
        };
        case.check();
        case
    }

    /// Runtime f32 and tract agree on this latent (and on a few more).
    fn check(&self) {
        let model = Model::parse(&self.f32_file).expect("parse f32");
        let mut rng = Rng::seed_from_u64(7);
        let mut worst = 0.0f64;
        for i in 0..8 {
            let z = if i == 0 {
                self.z.clone()
            } else {
                gaussian(&mut rng, self.z.len(), 1.0)
            };
            let out = run_runtime(&model, &z).expect("runtime run");
            let t = self.plan.run_f32(&[1, z.len()], &z).expect("tract run");
            assert_eq!(t.len(), out.len(), "{}: output lengths", self.name);
            worst = worst.max(max_diff(&out, &t).0);
        }
        assert!(
            worst < f64::from(F32_VS_TRACT_TOL),
            "{}: runtime f32 vs tract max abs diff {worst:e}",
            self.name
        );
        println!(
            "{}: runtime f32 vs tract max |diff| = {worst:.2e} (8 latents)",
            self.name
        );
    }
}

/// A closure that runs one engine once.
type Runner<'a> = Box<dyn FnMut() + 'a>;

fn runners<'a>(case: &'a Case) -> Vec<(&'static str, Runner<'a>)> {
    let f32_model = Model::parse(&case.f32_file).expect("parse f32");
    let i8_model = Model::parse(&case.i8_file).expect("parse int8");
    let mut f32_arena = vec![0u8; f32_model.arena_bytes()];
    let mut i8_arena = vec![0u8; i8_model.arena_bytes()];
    let mut f32_out = vec![0f32; f32_model.output_len()];
    let mut i8_out = vec![0f32; i8_model.output_len()];
    let z = &case.z;
    let plan = case.plan.runnable();
    let input = Tensor::from_shape(&[1, z.len()], z).expect("input tensor");
    vec![
        (
            "runtime_f32",
            Box::new(move || {
                f32_model
                    .run(black_box(z), &mut f32_arena, &mut f32_out)
                    .expect("run");
                black_box(&f32_out);
            }),
        ),
        (
            "tract_f32",
            Box::new(move || {
                let out = plan
                    .run(tvec!(input.clone().into_tvalue()))
                    .expect("tract run");
                black_box(out);
            }),
        ),
        (
            "runtime_int8",
            Box::new(move || {
                i8_model
                    .run(black_box(z), &mut i8_arena, &mut i8_out)
                    .expect("run");
                black_box(&i8_out);
            }),
        ),
    ]
}

/// The DCGAN's first transposed convolution (64x7x7 -> 32x14x14) alone.
struct ConvTCase {
    g: ConvGeom,
    w: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    plan: Tract,
}

impl ConvTCase {
    fn new() -> Self {
        let mut rng = Rng::seed_from_u64(3);
        let layer = conv_t(&mut rng, 64, 32);
        let Layer::ConvTranspose2d(c) = &layer else {
            unreachable!()
        };
        let g = ConvGeom {
            in_ch: 64,
            in_h: 7,
            in_w: 7,
            out_ch: 32,
            out_h: 14,
            out_w: 14,
            k_h: 4,
            k_w: 4,
            stride_h: 2,
            stride_w: 2,
            pad_h: 1,
            pad_w: 1,
        };
        let x: Vec<f32> = gaussian(&mut rng, 64 * 49, 1.0)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        // The layer alone as a one-layer ONNX graph (input [N, 64, 7, 7]).
        let graph = Graph {
            part: Part::Generator,
            input: Shape::chw(64, 7, 7),
            layers: vec![layer.clone()],
        };
        let onnx = tinygen_export::onnx::export_f32(&graph, "convt").expect("ONNX export");
        let plan = tract_batch1("convt", &onnx.bytes, &[1, 64, 7, 7]);
        let case = ConvTCase {
            g,
            w: c.weight.clone(),
            b: c.bias.clone(),
            x,
            plan,
        };
        let mut y = vec![f32::NAN; 32 * 196];
        kernels::conv_transpose2d_f32(&case.g, &case.w, &case.b, &case.x, &mut y);
        let t = case.plan.run_f32(&[1, 64, 7, 7], &case.x).expect("tract");
        assert_eq!(t.len(), y.len(), "convt: output lengths");
        let (worst, _) = max_diff(&y, &t);
        assert!(
            worst < f64::from(F32_VS_TRACT_TOL),
            "convt: max abs diff {worst:e}"
        );
        case
    }

    fn runners(&self) -> Vec<(&'static str, Runner<'_>)> {
        let mut y = vec![0.0f32; 32 * 196];
        let input = Tensor::from_shape(&[1, 64, 7, 7], &self.x).expect("input");
        vec![
            (
                "runtime_f32",
                Box::new(move || {
                    kernels::conv_transpose2d_f32(
                        &self.g,
                        &self.w,
                        &self.b,
                        black_box(&self.x),
                        &mut y,
                    );
                    black_box(&y);
                }),
            ),
            (
                "tract_f32",
                Box::new(move || {
                    black_box(
                        self.plan
                            .runnable()
                            .run(tvec!(input.clone().into_tvalue()))
                            .expect("tract"),
                    );
                }),
            ),
        ]
    }
}

/// Median time of each runner, run interleaved in rounds of `batch` calls for about `total`.
fn interleaved_medians(rs: &mut [(&'static str, Runner<'_>)], total: Duration) -> Vec<f64> {
    // Calibrate a batch to ~200 us per runner so timer overhead is negligible.
    let mut batch = Vec::new();
    for (_, r) in rs.iter_mut() {
        let t = Instant::now();
        for _ in 0..10 {
            r();
        }
        let one = t.elapsed().as_secs_f64() / 10.0;
        batch.push(((200e-6 / one).ceil() as usize).max(1));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); rs.len()];
    let start = Instant::now();
    while start.elapsed() < total {
        for ((_, r), (s, &n)) in rs.iter_mut().zip(samples.iter_mut().zip(&batch)) {
            let t = Instant::now();
            for _ in 0..n {
                r();
            }
            s.push(t.elapsed().as_secs_f64() / n as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let cases = [
        Case::new("mlp_decoder", &mlp_decoder()),
        Case::new("dcgan_generator", &dcgan_generator()),
    ];
    let convt = ConvTCase::new();

    for case in &cases {
        let mut group = c.benchmark_group(case.name);
        for (id, mut r) in runners(case) {
            group.bench_function(id, |b| b.iter(&mut r));
        }
        group.finish();
    }
    {
        let mut group = c.benchmark_group("dcgan_convt_64_32");
        for (id, mut r) in convt.runners() {
            group.bench_function(id, |b| b.iter(&mut r));
        }
        group.finish();
    }
    c.final_summary();

    // The interleaved ratios (skipped when criterion runs in test mode or filters).
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("\ninterleaved medians (us) and ratios to tract_f32:");
    let mut table: Vec<(String, Vec<(&'static str, f64)>)> = Vec::new();
    for case in &cases {
        let mut rs = runners(case);
        let m = interleaved_medians(&mut rs, Duration::from_secs(4));
        table.push((
            case.name.to_string(),
            rs.iter().map(|(n, _)| *n).zip(m).collect(),
        ));
    }
    let mut rs = convt.runners();
    let m = interleaved_medians(&mut rs, Duration::from_secs(3));
    table.push((
        "dcgan_convt_64_32".to_string(),
        rs.iter().map(|(n, _)| *n).zip(m).collect(),
    ));
    for (name, rows) in &table {
        let tract = rows
            .iter()
            .find(|(n, _)| *n == "tract_f32")
            .map(|r| r.1)
            .unwrap_or(f64::NAN);
        for (n, t) in rows {
            println!(
                "  {name:18} {n:13} {:9.2} us   x{:.3} of tract_f32",
                t * 1e6,
                t / tract
            );
        }
    }
}
