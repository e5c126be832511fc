//! The RealNVP flow: every layer and the whole flow invert, the summed log-determinant is the
//! log-determinant of the finite-difference Jacobian, each new layer's backward passes a
//! finite-difference gradient check, the exported generator computes the trainer's samples in
//! the runtime, and a short run on the built-in 8x8 digits learns and is deterministic.

use std::sync::atomic::AtomicBool;

use nalgebra::DMatrix;
use ndarray::{s, Array1, Array2};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tinygen_export::check::rel_err;
use tinygen_export::tgm::AlignedBytes;
use tinygen_trainer::flow::{
    discrete_nll, ActNorm, AffineCoupling, FlowConfig, LogitTransform, Permutation, RealNvp,
};
use tinygen_trainer::models::{Losses, Model, ModelConfig, ModelKind};
use tinygen_trainer::nn::{Module, Param};
use tinygen_trainer::train::{load_run, EpochReport, Observer, Outcome, Run, TrainConfig};

/// Round trips: the largest difference relative to the largest value (`rel_err`) stays within
/// a few f32 roundings of values of size about 1 through a few exp/tanh layers.
const INVERSE_REL_TOL: f64 = 1e-5;
/// Exported graph in the runtime vs the trainer's `sample`, relative to the largest output (the
/// tolerance of the verification chain in DESIGN.md).
const EXPORT_REL_TOL: f64 = 1e-5;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn uniform(r: &mut StdRng, rows: usize, cols: usize, lo: f32, hi: f32) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || r.random_range(lo..hi))
}

/// A flow whose couplings are not the identity: the zero-initialised last layers, the actnorms
/// and the coupling scales set to random values (scales in [0.5, 1.5]).
fn random_flow(dim: usize, couplings: usize, hidden: usize, seed: u64) -> RealNvp {
    let mut r = rng(seed);
    let cfg = FlowConfig {
        dim,
        couplings,
        hidden,
        alpha: 0.05,
    };
    let mut flow = RealNvp::new(&cfg, &mut r);
    for p in flow.parameters() {
        let (lo, hi) = if p.name.ends_with("scale") {
            (0.5, 1.5)
        } else if p.name.contains("fc3") || p.name.ends_with("actnorm.bias") {
            (-0.3, 0.3)
        } else {
            continue;
        };
        p.value.iter_mut().for_each(|v| *v = r.random_range(lo..hi));
    }
    for step in &mut flow.steps {
        step.actnorm.initialized = true;
    }
    flow
}

fn random_coupling(dim: usize, hidden: usize, seed: u64) -> AffineCoupling {
    random_flow(dim, 1, hidden, seed).steps.remove(0).coupling
}

fn random_actnorm(dim: usize, seed: u64) -> ActNorm {
    random_flow(dim, 1, 1, seed).steps.remove(0).actnorm
}

fn rel(got: &Array2<f32>, want: &Array2<f32>) -> f64 {
    assert_eq!(got.dim(), want.dim());
    let (g, w): (Vec<f32>, Vec<f32>) = (
        got.iter().copied().collect(),
        want.iter().copied().collect(),
    );
    rel_err(&g, &w).unwrap()
}

#[test]
fn every_layer_and_the_whole_flow_invert() {
    for (dim, seed) in [(6, 1), (7, 2), (64, 3)] {
        let mut r = rng(seed + 100);
        let x = uniform(&mut r, 16, dim, -2.0, 2.0);
        let mut c = random_coupling(dim, 16, seed);
        let (y, _, _) = c.forward(&x);
        let e = rel(&c.inverse(&y), &x);
        assert!(e <= INVERSE_REL_TOL, "coupling D={dim}: {e:e}");
        assert!(rel(&y, &x) > 1e-2, "coupling D={dim} is the identity");

        let a = random_actnorm(dim, seed);
        let e = rel(&a.inverse(&a.forward(x.clone()).0), &x);
        assert!(e <= INVERSE_REL_TOL, "actnorm D={dim}: {e:e}");

        let p = Permutation::seeded(dim, seed as usize);
        assert_eq!(p.inverse(&p.forward(&x)), x, "permutation D={dim}");

        let logit = LogitTransform::new(0.05);
        let v = uniform(&mut r, 16, dim, 0.0, 1.0);
        let e = rel(&logit.inverse(&logit.forward(v.clone()).0), &v);
        assert!(e <= INVERSE_REL_TOL, "logit D={dim}: {e:e}");

        let mut flow = random_flow(dim, 4, 16, seed);
        let (z, _, _) = flow.forward(&x);
        let e = rel(&flow.inverse(&z), &x);
        assert!(e <= INVERSE_REL_TOL, "flow D={dim}: x -> z -> x {e:e}");
        let back = flow.inverse(&x);
        let e = rel(&flow.forward(&back).0, &x);
        assert!(e <= INVERSE_REL_TOL, "flow D={dim}: z -> x -> z {e:e}");
    }
}

/// Central-difference Jacobian of `f` at `x` (one row), in f64 from f32 evaluations.
fn jacobian(x: &[f32], h: f32, mut f: impl FnMut(&Array2<f32>) -> Array2<f32>) -> DMatrix<f64> {
    let d = x.len();
    let mut j = DMatrix::zeros(d, d);
    for col in 0..d {
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[col] += h;
        xm[col] -= h;
        let step = f64::from(xp[col]) - f64::from(xm[col]);
        let yp = f(&Array2::from_shape_vec((1, d), xp).unwrap());
        let ym = f(&Array2::from_shape_vec((1, d), xm).unwrap());
        for row in 0..d {
            j[(row, col)] = (f64::from(yp[[0, row]]) - f64::from(ym[[0, row]])) / step;
        }
    }
    j
}

/// ln|det J| by finite differences against the flow's summed log-determinant, D = 6.
///
/// Step `h = 4e-3`: each Jacobian entry carries a truncation error `h²/6 · f‴ ≈ 3e-6` and a
/// rounding error of about `6e-8 · |y| / (2h) ≈ 2e-5` (outputs of size up to ~3, rounded once in
/// f32). `δ ln|det J| = tr(J⁻¹ δJ)` sums 36 such errors of random sign weighted by `J⁻¹` (entries
/// of size about 1 here), about `6 · 2e-5 ≈ 1e-4`; seen: at most 6e-5. The same holds for the
/// whole density path `v -> z` including the logit transform, on `v` in [0.1, 0.9] where its
/// derivative is at most ~11 and `J⁻¹` correspondingly smaller.
const LOG_DET_H: f32 = 4e-3;
/// Allowed |ln|det J| - log_det|: five times the estimate above.
const LOG_DET_TOL: f64 = 5e-4;

#[test]
fn log_det_is_that_of_the_finite_difference_jacobian() {
    let mut flow = random_flow(6, 3, 8, 11);
    let mut r = rng(12);
    let x = uniform(&mut r, 5, 6, -1.5, 1.5);
    let (_, log_det, _) = flow.forward(&x);
    for (i, row) in x.rows().into_iter().enumerate() {
        let j = jacobian(row.as_slice().unwrap(), LOG_DET_H, |x| flow.forward(x).0);
        let numeric = j.determinant().abs().ln();
        let got = f64::from(log_det[i]);
        eprintln!("flow row {i}: log|det J| {got:.6}, finite differences {numeric:.6}");
        assert!(
            (numeric - got).abs() <= LOG_DET_TOL,
            "row {i}: flow log|det J| {got} vs finite differences {numeric}"
        );
    }
    // v -> logit -> flow: the log-determinants add.
    let logit = flow.logit;
    let v = uniform(&mut r, 3, 6, 0.1, 0.9);
    let (y, ld_logit, _) = logit.forward(v.clone());
    let (_, ld_flow, _) = flow.forward(&y);
    for (i, row) in v.rows().into_iter().enumerate() {
        let j = jacobian(row.as_slice().unwrap(), LOG_DET_H, |v| {
            flow.forward(&logit.forward(v.clone()).0).0
        });
        let numeric = j.determinant().abs().ln();
        let got = f64::from(ld_logit[i]) + f64::from(ld_flow[i]);
        assert!(
            (numeric - got).abs() <= LOG_DET_TOL,
            "row {i}: v -> z log|det J| {got} vs finite differences {numeric}"
        );
    }
}

// Gradient checks, as in `gradcheck.rs`: the layers are tested through the projection
// `L = Σ r ⊙ y + Σ q ⊙ log_det` (r, q uniform in [-1, 1]), whose gradients with respect to `y`
// and `log_det` are `r` and `q`. Same step, tolerances and reasoning as there: f32 layers, `L`
// summed in f64, the divisor the difference of the f32 values actually stored. Inputs are
// chosen so that every ReLU input of the couplings' MLPs is at least 0.05 (five steps) from 0.

/// Finite-difference step.
const H: f32 = 1e-2;
/// Absolute part of the allowed difference between numeric and analytic derivative.
const GRAD_ABS_TOL: f64 = 5e-4;
/// Relative part (of the analytic derivative's magnitude).
const GRAD_REL_TOL: f64 = 5e-3;
/// Distance of every ReLU input from its kink.
const KINK_MARGIN: f32 = 0.05;

fn projection(y: &Array2<f32>, ld: &Array1<f32>, r: &Array2<f32>, q: &Array1<f32>) -> f64 {
    let a: f64 = y
        .iter()
        .zip(r)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let b: f64 = ld
        .iter()
        .zip(q)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    a + b
}

/// Central difference of `loss` in the value `*v`; restores it.
fn central(v: &mut f32, mut loss: impl FnMut(&mut f32) -> f64) -> f64 {
    let orig = *v;
    let (xp, xm) = (orig + H, orig - H);
    *v = xp;
    let lp = loss(v);
    *v = xm;
    let lm = loss(v);
    *v = orig;
    (lp - lm) / (f64::from(xp) - f64::from(xm))
}

fn compare(label: &str, i: usize, num: f64, ana: f32, failures: &mut Vec<String>) {
    let ana = f64::from(ana);
    if (num - ana).abs() > GRAD_ABS_TOL + GRAD_REL_TOL * ana.abs() {
        failures.push(format!("{label}[{i}]: numeric {num:.6} analytic {ana:.6}"));
    }
}

/// `x -> (y, log_det)`.
type Forward<L> = fn(&mut L, &Array2<f32>) -> (Array2<f32>, Array1<f32>);
/// `(x, d_y, d_log_det) -> d_x`, adding the parameter gradients.
type Backward<L> = fn(&mut L, &Array2<f32>, &Array2<f32>, &Array1<f32>) -> Array2<f32>;

/// A layer under test: its forward `x -> (y, log_det)`, its backward (recomputing the forward
/// for the cache) `(x, d_y, d_log_det) -> d_x`, and its parameters.
struct Layer<L> {
    forward: Forward<L>,
    backward: Backward<L>,
    params: fn(&mut L) -> Vec<Param<'_>>,
}

/// Checks `d_x` and every parameter gradient of `layer` at `x`.
fn check_layer<L>(label: &str, layer: &mut L, x: &Array2<f32>, f: &Layer<L>) {
    let (y, ld) = (f.forward)(layer, x);
    let mut r = rng(1234);
    let d_y = uniform(&mut r, y.nrows(), y.ncols(), -1.0, 1.0);
    let d_ld = Array1::from_shape_simple_fn(ld.len(), || r.random_range(-1.0f32..1.0));
    for p in (f.params)(layer) {
        p.grad.fill(0.0);
    }
    let d_x = (f.backward)(layer, x, &d_y, &d_ld);
    assert_eq!(d_x.dim(), x.dim(), "{label}: d_x shape");
    let grads: Vec<(String, Vec<f32>)> = (f.params)(layer)
        .iter()
        .map(|p| (p.name.clone(), p.grad.to_vec()))
        .collect();
    let loss = |layer: &mut L, x: &Array2<f32>| {
        let (y, ld) = (f.forward)(layer, x);
        projection(&y, &ld, &d_y, &d_ld)
    };
    let mut failures = Vec::new();
    let mut xv = x.clone();
    for (i, &ana) in d_x.iter().enumerate() {
        let mut v = xv.as_slice().unwrap()[i];
        let num = central(&mut v, |v| {
            xv.as_slice_mut().unwrap()[i] = *v;
            loss(layer, &xv)
        });
        xv.as_slice_mut().unwrap()[i] = v;
        compare(&format!("{label}: x"), i, num, ana, &mut failures);
    }
    for (k, (name, grad)) in grads.iter().enumerate() {
        for (j, &ana) in grad.iter().enumerate() {
            let mut v = (f.params)(layer)[k].value[j];
            let num = central(&mut v, |v| {
                (f.params)(layer)[k].value[j] = *v;
                loss(layer, x)
            });
            (f.params)(layer)[k].value[j] = v;
            compare(&format!("{label}: {name}"), j, num, ana, &mut failures);
        }
    }
    assert_no_failures(label, &failures);
}

/// The smallest |input| of every ReLU in `c`'s MLP for the rows `x`.
fn relu_margin(c: &AffineCoupling, x: &Array2<f32>) -> f32 {
    let (d_a, _) = c.split();
    let mut h = x.slice(s![.., ..d_a]).to_owned();
    let mut margin = f32::INFINITY;
    for (_, m) in &c.net.layers {
        match m {
            Module::Linear(l) => h = l.forward(h).0,
            _ => {
                margin = margin.min(h.iter().fold(f32::INFINITY, |a, v| a.min(v.abs())));
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
    }
    margin
}

/// The smallest ReLU margin over every coupling of `flow` on input `y`.
fn flow_margin(flow: &mut RealNvp, y: &Array2<f32>) -> f32 {
    let mut h = y.clone();
    let mut margin = f32::INFINITY;
    for step in &mut flow.steps {
        h = step.actnorm.forward(h).0;
        margin = margin.min(relu_margin(&step.coupling, &h));
        h = step.coupling.forward(&h).0;
        if let Some(p) = &step.permutation {
            h = p.forward(&h);
        }
    }
    margin
}

/// Draws inputs until every ReLU is off its kink.
fn input_off_kinks(
    r: &mut StdRng,
    rows: usize,
    dim: usize,
    mut margin: impl FnMut(&Array2<f32>) -> f32,
) -> Array2<f32> {
    for _ in 0..1000 {
        let x = uniform(r, rows, dim, -1.0, 1.0);
        if margin(&x) >= KINK_MARGIN {
            return x;
        }
    }
    panic!("no input off the ReLU kinks in 1000 draws");
}

fn assert_no_failures(label: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{label}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn coupling_gradient() {
    let f = Layer {
        forward: |c: &mut AffineCoupling, x| {
            let (y, ld, _) = c.forward(x);
            (y, ld)
        },
        backward: |c, x, d_y, d_ld| {
            let (_, _, cache) = c.forward(x);
            c.backward(cache, d_y, d_ld)
        },
        params: AffineCoupling::parameters,
    };
    // An even and an odd width (halves of 3 and 3, of 2 and 3).
    for (dim, seed) in [(6, 21), (5, 22)] {
        let mut c = random_coupling(dim, 6, seed);
        let x = input_off_kinks(&mut rng(seed), 3, dim, |x| relu_margin(&c, x));
        check_layer(&format!("coupling D={dim}"), &mut c, &x, &f);
    }
}

#[test]
fn actnorm_gradient() {
    let f = Layer {
        forward: |a: &mut ActNorm, x| {
            let (y, ld, _) = a.forward(x.clone());
            (y, ld)
        },
        backward: |a, x, d_y, d_ld| {
            let (_, _, cache) = a.forward(x.clone());
            a.backward(cache, d_y, d_ld)
        },
        params: ActNorm::parameters,
    };
    let mut a = random_actnorm(5, 31);
    let x = uniform(&mut rng(32), 4, 5, -1.0, 1.0);
    check_layer("actnorm", &mut a, &x, &f);
}

fn no_params(_: &mut LogitTransform) -> Vec<Param<'_>> {
    Vec::new()
}

#[test]
fn logit_transform_gradient() {
    let f = Layer {
        forward: |t: &mut LogitTransform, v| {
            let (y, ld, _) = t.forward(v.clone());
            (y, ld)
        },
        backward: |t, v, d_y, d_ld| {
            let (_, _, cache) = t.forward(v.clone());
            t.backward(cache, d_y, d_ld)
        },
        params: no_params,
    };
    // v in [0.1, 0.9]: dy/dv <= 1 / (0.1 * 0.9) keeps the truncation error small.
    for alpha in [0.05, 1e-3] {
        let mut t = LogitTransform::new(alpha);
        let v = uniform(&mut rng(41), 3, 6, 0.1, 0.9);
        check_layer(&format!("logit alpha={alpha}"), &mut t, &v, &f);
    }
}

#[test]
fn whole_flow_gradient() {
    let f = Layer {
        forward: |flow: &mut RealNvp, x| {
            let (z, ld, _) = flow.forward(x);
            (z, ld)
        },
        backward: |flow, x, d_z, d_ld| {
            let (_, _, cache) = flow.forward(x);
            flow.backward(cache, d_z, d_ld)
        },
        params: RealNvp::parameters,
    };
    let mut flow = random_flow(4, 3, 4, 51);
    let x = input_off_kinks(&mut rng(52), 2, 4, |x| flow_margin(&mut flow, x));
    check_layer("flow D=4", &mut flow, &x, &f);
}

/// The training loss: `train_pass` returns the mean `-log p_V(v)` and adds its gradient; the
/// numeric derivative of `neg_log_pv`'s mean in every parameter must match.
#[test]
fn negative_log_likelihood_gradient() {
    let mut flow = random_flow(4, 2, 4, 61);
    let mut r = rng(62);
    let logit = flow.logit;
    let v = (0..1000)
        .map(|_| uniform(&mut r, 3, 4, 0.1, 0.9))
        .find(|v| flow_margin(&mut flow, &logit.forward(v.clone()).0) >= KINK_MARGIN)
        .expect("an input off the kinks");
    flow.zero_grad();
    let loss = flow.train_pass(v.clone());
    let mean = |flow: &mut RealNvp| flow.neg_log_pv(v.clone()).mean().unwrap();
    assert!((loss - mean(&mut flow)).abs() < 1e-9);
    let grads: Vec<Vec<f32>> = flow.parameters().iter().map(|p| p.grad.to_vec()).collect();
    let names: Vec<String> = flow.parameters().iter().map(|p| p.name.clone()).collect();
    let mut failures = Vec::new();
    for (k, grad) in grads.iter().enumerate() {
        for (j, &ana) in grad.iter().enumerate() {
            let mut p = flow.parameters()[k].value[j];
            let num = central(&mut p, |p| {
                flow.parameters()[k].value[j] = *p;
                mean(&mut flow)
            });
            flow.parameters()[k].value[j] = p;
            compare(&names[k], j, num, ana, &mut failures);
        }
    }
    assert_no_failures("nll", &failures);
}

/// The runtime's output for each row of `z`.
fn run_in_runtime(bytes: &[u8], z: &Array2<f32>) -> Array2<f32> {
    let file = AlignedBytes::new(bytes);
    let model = tinygen_runtime::model::Model::parse(file.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = Array2::zeros((z.nrows(), model.output_len()));
    for (row, mut o) in z.rows().into_iter().zip(out.rows_mut()) {
        model
            .run(
                row.as_slice().unwrap(),
                &mut arena,
                o.as_slice_mut().unwrap(),
            )
            .unwrap();
    }
    out
}

#[test]
fn exported_generator_computes_the_trainers_samples() {
    for (dim, couplings, seed) in [(64, 4, 71), (7, 3, 72), (784, 2, 73)] {
        let mut flow = random_flow(dim, couplings, 32, seed);
        let dag = flow.to_dag().unwrap();
        let bytes = dag.write_f32().unwrap();
        assert!(!dag.to_onnx_f32("flow").unwrap().is_empty());
        let z = uniform(&mut rng(seed), 5, dim, -2.0, 2.0);
        let want = flow.sample(z.view(), 1.0);
        let got = run_in_runtime(&bytes, &z);
        for (i, (g, w)) in got.rows().into_iter().zip(want.rows()).enumerate() {
            let e = rel_err(g.as_slice().unwrap(), w.as_slice().unwrap()).unwrap();
            assert!(e <= EXPORT_REL_TOL, "D={dim} latent {i}: {e:e}");
        }
        // Temperature scales the latent before the graph.
        let t = 0.7;
        let got = run_in_runtime(&bytes, &z.mapv(|v| v * t));
        let e = rel(&got, &flow.sample(z.view(), t));
        assert!(e <= EXPORT_REL_TOL, "D={dim} at T={t}: {e:e}");
    }
}

/// Records every epoch report.
#[derive(Default)]
struct Recorder {
    reports: Vec<EpochReport>,
}

impl Observer for Recorder {
    fn step(&mut self, _epoch: u64, _step: usize, _losses: &Losses) {}
    fn epoch(&mut self, r: &EpochReport) {
        self.reports.push(r.clone());
    }
}

fn digits_config(epochs: u64, seed: u64) -> TrainConfig {
    let mut model = ModelConfig::defaults(ModelKind::Flow, 8, 8);
    model.hidden = vec![64];
    model.couplings = 4;
    TrainConfig {
        model,
        data: Some(tinygen_trainer::data::BUILTIN_DIGITS.into()),
        epochs,
        seed,
        batch_size: 64,
        limit_train: None,
        limit_test: None,
    }
}

fn train(dir: &std::path::Path, cfg: TrainConfig) -> Vec<EpochReport> {
    let splits = cfg.load_data().unwrap();
    let mut run = Run::create(dir, cfg).unwrap();
    let mut rec = Recorder::default();
    let out = run
        .train(&splits, &AtomicBool::new(false), &mut rec)
        .unwrap();
    assert!(matches!(out, Outcome::Finished { .. }));
    rec.reports
}

fn bits_per_dim(l: &Losses) -> f64 {
    l.iter().find(|(n, _)| *n == "bits_per_dim").unwrap().1
}

#[test]
fn flow_learns_the_digits_deterministically() {
    let cfg = digits_config(4, 5);
    let splits = cfg.load_data().unwrap();
    let mut fresh = Model::new(&cfg.model, &mut rng(0)).unwrap();
    let initial = fresh.evaluate(splits.test.images.view(), &mut rng(1));
    let (nll, bpd) = (initial.values[0], bits_per_dim(&initial));
    assert!((bpd - discrete_nll(nll - 64.0 * 256f64.ln(), 64).1).abs() < 1e-12);

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = train(a.path(), cfg.clone());
    let test: Vec<f64> = ra.iter().map(|r| bits_per_dim(&r.test)).collect();
    eprintln!("test bits/dim: untrained {bpd:.3}, after each epoch {test:.3?}");
    // Four epochs (96 steps) take the test bits/dim from about 10 (untrained) to under 6 on
    // the 17-level digits; requiring a fall every epoch and by a third overall fails a flow
    // that does not learn.
    assert!(test.windows(2).all(|w| w[1] < w[0]), "{test:?}");
    assert!(test[test.len() - 1] < 0.67 * bpd, "{bpd} -> {test:?}");

    let rb = train(b.path(), cfg.clone());
    let bits = |r: &[EpochReport]| -> Vec<u64> {
        r.iter()
            .flat_map(|r| {
                r.train
                    .iter()
                    .chain(r.test.iter())
                    .map(|(_, v)| v.to_bits())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&ra), bits(&rb), "same seed, different losses");

    // The checkpoint restores the trained flow: the same test figures, and its exported
    // generator draws what it draws.
    let (_, mut loaded) = load_run(a.path()).unwrap();
    let again = loaded.evaluate(splits.test.images.view(), &mut rng(9));
    let mut run_b = Run::resume(b.path(), None, None).unwrap();
    let b_eval = run_b
        .model_mut()
        .evaluate(splits.test.images.view(), &mut rng(9));
    assert_eq!(again.values, b_eval.values);
    let z = uniform(&mut rng(3), 4, 64, -1.0, 1.0);
    let dag = loaded.dag(tinygen_export::Part::Generator).unwrap();
    let got = run_in_runtime(&dag.write_f32().unwrap(), &z);
    let Model::Flow(trained) = &mut loaded else {
        panic!("a flow run loads as a flow");
    };
    let e = rel(&got, &trained.flow.sample(z.view(), 1.0));
    assert!(e <= EXPORT_REL_TOL, "trained flow exported: {e:e}");
}

#[test]
fn flow_settings_are_checked() {
    let good = ModelConfig::defaults(ModelKind::Flow, 8, 8);
    assert_eq!((good.latent, good.couplings), (64, 8));
    assert!(Model::new(&good, &mut rng(0)).is_ok());
    let bad = [
        ModelConfig {
            latent: 20,
            ..good.clone()
        },
        ModelConfig {
            hidden: vec![64, 64],
            ..good.clone()
        },
        ModelConfig {
            couplings: 0,
            ..good.clone()
        },
        ModelConfig {
            logit_alpha: 0.5,
            ..good.clone()
        },
    ];
    for cfg in bad {
        let err = Model::new(&cfg, &mut rng(0)).unwrap_err().to_string();
        assert!(err.contains("flow") || err.contains("alpha"), "{err}");
    }
    // The generator has branches: a chain is refused with a pointer to the graph form.
    let model = Model::new(&good, &mut rng(0)).unwrap();
    assert!(model.graph(tinygen_export::Part::Generator).is_err());
    assert!(model.dag(tinygen_export::Part::Generator).is_ok());
}
