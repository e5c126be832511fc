//! Central finite-difference checks of every layer's and every loss's gradient.
//!
//! Layers are tested through the random projection `L = Σ r ⊙ y` (r uniform in [-1, 1]),
//! whose gradient with respect to `y` is `r`: the backward pass given `d_y = r` must
//! return `dL/dx` and add `dL/dθ` to each parameter's gradient.
//!
//! Everything runs in f32 (the layers' type); `L` is summed in f64. The numeric
//! derivative is `(L(x + h) - L(x - h)) / (x₊ - x₋)` with `x₊`, `x₋` the f32 values
//! actually stored, so the step's own rounding does not enter. Tolerance (see
//! [`GRAD_ABS_TOL`], [`GRAD_REL_TOL`]): elements of `y` that do not depend on the perturbed
//! value are recomputed bit-identically and cancel, so the numerator's error is the f32
//! rounding of the affected outputs (≈ 1e-7 · |y| each, up to ~100 of them for BatchNorm)
//! divided by 2h = 2e-2, about 1e-5..1e-4; the truncation error h²/6 · f''' is below 1e-4
//! for the smooth layers on inputs in [-1, 1]. Inputs stay at least 0.05 (five steps) away
//! from kinks: ReLU / LeakyReLU at 0, hinge at its margin.

use ndarray::{Array2, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tinygen_trainer::loss::{
    bce_with_logits, gaussian_kl, mse, softmax_cross_entropy, GanLoss, Reduction,
};
use tinygen_trainer::nn::{
    Activation, BatchNorm, Conv2d, ConvSpec, ConvTranspose2d, Dropout, Linear, Mode, Module,
    Reshape, Sequential,
};

/// Finite-difference step.
const H: f32 = 1e-2;
/// Absolute part of the allowed difference between numeric and analytic derivative.
const GRAD_ABS_TOL: f64 = 5e-4;
/// Relative part (of the analytic derivative's magnitude).
const GRAD_REL_TOL: f64 = 5e-3;

fn close(num: f64, ana: f64) -> bool {
    (num - ana).abs() <= GRAD_ABS_TOL + GRAD_REL_TOL * ana.abs()
}

fn random(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0f32..1.0))
}

/// Values in ±[0.05, 1]: off the kink at zero by five finite-difference steps.
fn off_zero(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let m = rng.random_range(0.05f32..1.0);
        if rng.random_bool(0.5) {
            m
        } else {
            -m
        }
    })
}

/// Central difference of `f` at `v[i]`; restores `v[i]`.
fn central(v: &mut [f32], i: usize, mut f: impl FnMut(&[f32]) -> f64) -> f64 {
    let orig = v[i];
    let (xp, xm) = (orig + H, orig - H);
    v[i] = xp;
    let lp = f(v);
    v[i] = xm;
    let lm = f(v);
    v[i] = orig;
    (lp - lm) / (f64::from(xp) - f64::from(xm))
}

/// Collects mismatches as messages; returns the largest |num - ana| seen.
fn compare(
    label: &str,
    what: &str,
    i: usize,
    num: f64,
    ana: f32,
    failures: &mut Vec<String>,
) -> f64 {
    let ana = f64::from(ana);
    if !close(num, ana) {
        failures.push(format!(
            "{label}: {what}[{i}] numeric {num:.6} analytic {ana:.6}"
        ));
    }
    (num - ana).abs()
}

fn projection(m: &mut Module, x: &ArrayD<f32>, r: &ArrayD<f32>, mode: Mode, seed: u64) -> f64 {
    // The same seed every call: dropout draws the same mask.
    let mut rng = StdRng::seed_from_u64(seed);
    let (y, _) = m.forward(x.clone(), mode, &mut rng);
    assert_eq!(y.shape(), r.shape());
    y.iter()
        .zip(r)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Checks `d_x` and every parameter gradient of `m` at `x`; returns the largest error.
fn check_module(label: &str, m: &mut Module, x: ArrayD<f32>, mode: Mode) -> f64 {
    const SEED: u64 = 99;
    let mut rng = StdRng::seed_from_u64(SEED);
    let (y, cache) = m.forward(x.clone(), mode, &mut rng);
    let r = random(y.shape(), &mut StdRng::seed_from_u64(1234));
    for p in m.parameters() {
        p.grad.fill(0.0);
    }
    let d_x = m.backward(cache, r.clone(), true).expect("input gradient");
    assert_eq!(d_x.shape(), x.shape(), "{label}: d_x shape");
    let grads: Vec<(String, Vec<f32>)> = m
        .parameters()
        .iter()
        .map(|p| (p.name.clone(), p.grad.to_vec()))
        .collect();

    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    let shape = x.shape().to_vec();
    let mut xv = x.into_raw_vec_and_offset().0;
    for i in 0..xv.len() {
        let num = central(&mut xv, i, |v| {
            let xa = ArrayD::from_shape_vec(IxDyn(&shape), v.to_vec()).expect("shape");
            projection(m, &xa, &r, mode, SEED)
        });
        worst = worst.max(compare(
            label,
            "x",
            i,
            num,
            d_x.as_slice().expect("standard")[i],
            &mut failures,
        ));
    }
    let xa = ArrayD::from_shape_vec(IxDyn(&shape), xv).expect("shape");
    for (k, (name, grad)) in grads.iter().enumerate() {
        for (j, &ana) in grad.iter().enumerate() {
            let orig = m.parameters()[k].value[j];
            let (vp, vm) = (orig + H, orig - H);
            m.parameters()[k].value[j] = vp;
            let lp = projection(m, &xa, &r, mode, SEED);
            m.parameters()[k].value[j] = vm;
            let lm = projection(m, &xa, &r, mode, SEED);
            m.parameters()[k].value[j] = orig;
            let num = (lp - lm) / (f64::from(vp) - f64::from(vm));
            worst = worst.max(compare(label, name, j, num, ana, &mut failures));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{label}: max |numeric - analytic| = {worst:.2e}");
    worst
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn linear() {
    let mut r = rng(1);
    for bias in [true, false] {
        let mut m = Module::Linear(Linear::new(5, 3, bias, &mut r));
        check_module(
            &format!("linear bias={bias}"),
            &mut m,
            random(&[4, 5], &mut r),
            Mode::Train,
        );
    }
}

/// (kernel, stride, pad) combinations, square and rectangular.
/// `(kernel, stride, pad)`, each `(h, w)`.
type ConvCase = ((usize, usize), (usize, usize), (usize, usize));

const CONV_CASES: [ConvCase; 6] = [
    ((3, 3), (1, 1), (1, 1)),
    ((4, 4), (2, 2), (1, 1)),
    ((3, 2), (2, 1), (1, 0)),
    ((1, 1), (1, 1), (0, 0)),
    ((5, 5), (3, 3), (2, 2)),
    ((2, 3), (1, 2), (0, 1)),
];

#[test]
fn conv2d() {
    let mut r = rng(2);
    for (kernel, stride, pad) in CONV_CASES {
        let spec = ConvSpec {
            in_ch: 2,
            out_ch: 3,
            kernel,
            stride,
            pad,
            output_padding: (0, 0),
        };
        let mut m = Module::Conv2d(Conv2d::new(spec, true, &mut r));
        check_module(
            &format!("conv2d {spec:?}"),
            &mut m,
            random(&[2, 2, 7, 6], &mut r),
            Mode::Train,
        );
    }
    let spec = ConvSpec::square(2, 2, 3, 2, 0);
    let mut m = Module::Conv2d(Conv2d::new(spec, false, &mut r));
    check_module(
        "conv2d without bias",
        &mut m,
        random(&[1, 2, 5, 5], &mut r),
        Mode::Train,
    );
}

#[test]
fn conv_transpose2d() {
    let mut r = rng(3);
    // (kernel, stride, pad, output_padding)
    let cases = [
        ((4, 4), (2, 2), (1, 1), (0, 0)),
        ((3, 3), (2, 2), (1, 1), (1, 1)),
        ((5, 5), (3, 3), (2, 2), (2, 1)),
        ((3, 2), (2, 1), (1, 0), (1, 0)),
        ((1, 1), (1, 1), (0, 0), (0, 0)),
        ((3, 3), (1, 1), (1, 1), (0, 0)),
    ];
    for (kernel, stride, pad, output_padding) in cases {
        let spec = ConvSpec {
            in_ch: 3,
            out_ch: 2,
            kernel,
            stride,
            pad,
            output_padding,
        };
        let mut m = Module::ConvTranspose2d(ConvTranspose2d::new(spec, true, &mut r));
        check_module(
            &format!("conv_transpose2d {spec:?}"),
            &mut m,
            random(&[2, 3, 4, 5], &mut r),
            Mode::Train,
        );
    }
    let spec = ConvSpec::square(2, 3, 4, 2, 1);
    let mut m = Module::ConvTranspose2d(ConvTranspose2d::new(spec, false, &mut r));
    check_module(
        "conv_transpose2d without bias",
        &mut m,
        random(&[1, 2, 3, 3], &mut r),
        Mode::Train,
    );
}

fn randomised_batchnorm(channels: usize, r: &mut StdRng) -> BatchNorm {
    let mut bn = BatchNorm::new(channels);
    bn.gamma.mapv_inplace(|_| r.random_range(0.5..1.5));
    bn.beta.mapv_inplace(|_| r.random_range(-0.5..0.5));
    bn.running_mean.mapv_inplace(|_| r.random_range(-0.5..0.5));
    bn.running_var.mapv_inplace(|_| r.random_range(0.5..2.0));
    bn
}

#[test]
fn batchnorm() {
    let mut r = rng(4);
    for mode in [Mode::Train, Mode::Eval] {
        let mut m = Module::BatchNorm1d(randomised_batchnorm(4, &mut r));
        check_module(
            &format!("batchnorm1d {mode:?}"),
            &mut m,
            random(&[6, 4], &mut r),
            mode,
        );
        let mut m = Module::BatchNorm2d(randomised_batchnorm(2, &mut r));
        check_module(
            &format!("batchnorm2d {mode:?}"),
            &mut m,
            random(&[3, 2, 3, 3], &mut r),
            mode,
        );
    }
}

#[test]
fn activations() {
    let mut r = rng(5);
    for a in [
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        for shape in [&[3usize, 7][..], &[2, 2, 3, 3][..]] {
            let x = off_zero(shape, &mut r).mapv(|v| 2.0 * v);
            check_module(
                &format!("{a:?} {shape:?}"),
                &mut Module::Activation(a),
                x,
                Mode::Train,
            );
        }
    }
}

#[test]
fn dropout_and_shapes() {
    let mut r = rng(6);
    let mut m = Module::Dropout(Dropout::new(0.3));
    check_module(
        "dropout train",
        &mut m,
        random(&[4, 10], &mut r),
        Mode::Train,
    );
    check_module("dropout eval", &mut m, random(&[4, 10], &mut r), Mode::Eval);
    let mut m = Module::Reshape(Reshape::chw(2, 3, 2));
    check_module("reshape", &mut m, random(&[2, 12], &mut r), Mode::Train);
    check_module(
        "flatten",
        &mut Module::Flatten,
        random(&[2, 3, 2, 2], &mut r),
        Mode::Train,
    );
}

#[test]
fn dropout_mask_is_seeded_and_scaled() {
    let d = Dropout::new(0.25);
    let x = ArrayD::from_elem(IxDyn(&[100, 100]), 1.0f32);
    let (a, _) = d.forward(x.clone(), Mode::Train, &mut rng(7));
    let (b, _) = d.forward(x, Mode::Train, &mut rng(7));
    assert_eq!(a, b, "same seed, same mask");
    // Kept values are 1 / 0.75; about 75% of 10000 are kept (binomial sd ≈ 43).
    let kept = a.iter().filter(|&&v| v != 0.0).count();
    assert!((7300..=7700).contains(&kept), "{kept}");
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
}

/// The same checks through a whole Sequential: a small DCGAN-style generator in train mode.
#[test]
fn sequential_generator() {
    let mut r = rng(8);
    let mut m = Sequential::new("gen")
        .with("fc", Linear::new(3, 2 * 2 * 2, true, &mut r))
        .with("bn0", Module::BatchNorm1d(randomised_batchnorm(8, &mut r)))
        .with("act0", Activation::Tanh)
        .with("reshape", Reshape::chw(2, 2, 2))
        .with(
            "up1",
            ConvTranspose2d::new(ConvSpec::square(2, 3, 4, 2, 1), false, &mut r),
        )
        .with("bn1", Module::BatchNorm2d(randomised_batchnorm(3, &mut r)))
        .with("act1", Activation::Sigmoid)
        .with(
            "up2",
            ConvTranspose2d::new(ConvSpec::square(3, 1, 3, 1, 1), true, &mut r),
        )
        .with("out", Activation::Tanh);
    assert_eq!(m.output_shape(&[3]).unwrap(), vec![1, 4, 4]);
    let x = random(&[4, 3], &mut r);
    let (y, caches) = m.forward(x.clone(), Mode::Train, &mut r);
    let proj = random(y.shape(), &mut rng(9));
    m.zero_grad();
    let d_x = m.backward(caches, proj.clone());
    let loss = |m: &mut Sequential, x: &ArrayD<f32>| -> f64 {
        let (y, _) = m.forward(x.clone(), Mode::Train, &mut rng(0));
        y.iter()
            .zip(&proj)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum()
    };
    let mut failures = Vec::new();
    let mut xv = x.as_slice().unwrap().to_vec();
    for i in 0..xv.len() {
        let num = central(&mut xv, i, |v| {
            loss(
                &mut m,
                &ArrayD::from_shape_vec(IxDyn(&[4, 3]), v.to_vec()).unwrap(),
            )
        });
        compare(
            "sequential",
            "x",
            i,
            num,
            d_x.as_slice().unwrap()[i],
            &mut failures,
        );
    }
    let grads: Vec<(String, Vec<f32>)> = m
        .parameters()
        .iter()
        .map(|p| (p.name.clone(), p.grad.to_vec()))
        .collect();
    assert_eq!(grads[0].0, "gen.fc.weight");
    for (k, (name, grad)) in grads.iter().enumerate() {
        for (j, &ana) in grad.iter().enumerate() {
            let orig = m.parameters()[k].value[j];
            m.parameters()[k].value[j] = orig + H;
            let vp = m.parameters()[k].value[j];
            let lp = loss(&mut m, &x);
            m.parameters()[k].value[j] = orig - H;
            let vm = m.parameters()[k].value[j];
            let lm = loss(&mut m, &x);
            m.parameters()[k].value[j] = orig;
            compare(
                "sequential",
                name,
                j,
                (lp - lm) / f64::from(vp - vm),
                ana,
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `backward_tap` carries a loss on a hidden layer's output and one on the final output to the
/// input: `L = Σ r ⊙ y + Σ q ⊙ h` with `h` the tapped layer (VAE/GAN feature reconstruction).
#[test]
fn sequential_tap() {
    let mut r = rng(21);
    let mut m = Sequential::new("disc")
        .with("fc1", Linear::new(5, 6, true, &mut r))
        .with("act1", Activation::Tanh)
        .with("fc2", Linear::new(6, 4, true, &mut r))
        .with("act2", Activation::Sigmoid)
        .with("fc3", Linear::new(4, 1, true, &mut r));
    let tap = 3;
    let x = random(&[3, 5], &mut r);
    let (y, h, caches) = m.forward_tap(x.clone(), tap, Mode::Train, &mut r);
    assert_eq!(h.shape(), &[3, 4]);
    assert_eq!(
        h,
        m.infer_tap(x.clone(), tap),
        "infer_tap gives the tapped map"
    );
    let (py, ph) = (
        random(y.shape(), &mut rng(22)),
        random(h.shape(), &mut rng(23)),
    );
    m.zero_grad();
    let d_x = m.backward_tap(caches, py.clone(), tap, ph.clone());
    let dot = |a: &ArrayD<f32>, b: &ArrayD<f32>| -> f64 {
        a.iter()
            .zip(b)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum()
    };
    let mut failures = Vec::new();
    let mut xv = x.as_slice().unwrap().to_vec();
    for i in 0..xv.len() {
        let num = central(&mut xv, i, |v| {
            let x = ArrayD::from_shape_vec(IxDyn(&[3, 5]), v.to_vec()).unwrap();
            let (y, h, _) = m.forward_tap(x, tap, Mode::Train, &mut rng(0));
            dot(&y, &py) + dot(&h, &ph)
        });
        compare(
            "tap",
            "x",
            i,
            num,
            d_x.as_slice().unwrap()[i],
            &mut failures,
        );
    }
    // The first layer's weight gradient carries both terms too.
    let ana = m.parameters()[0].grad.to_vec();
    for (j, &a) in ana.iter().enumerate() {
        let orig = m.parameters()[0].value[j];
        let at = |v: f32, m: &mut Sequential| {
            m.parameters()[0].value[j] = v;
            let stored = m.parameters()[0].value[j];
            let (y, h, _) = m.forward_tap(x.clone(), tap, Mode::Train, &mut rng(0));
            (stored, dot(&y, &py) + dot(&h, &ph))
        };
        let (vp, lp) = at(orig + H, &mut m);
        let (vm, lm) = at(orig - H, &mut m);
        m.parameters()[0].value[j] = orig;
        compare(
            "tap",
            "fc1.weight",
            j,
            (lp - lm) / f64::from(vp - vm),
            a,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A few f32 roundings of sums of O(1) terms.
const ACCUMULATE_TOL: f32 = 1e-5;

#[test]
fn backward_adds_into_parameter_gradients() {
    // Two identical backward passes must leave exactly twice the gradient of one.
    let mut r = rng(10);
    let mut m = Sequential::new("")
        .with(
            "conv",
            Conv2d::new(ConvSpec::square(1, 2, 3, 2, 1), true, &mut r),
        )
        .with("bn", Module::BatchNorm2d(BatchNorm::new(2)))
        .with("flat", Module::Flatten)
        .with("fc", Linear::new(2 * 3 * 3, 2, true, &mut r));
    let x = random(&[2, 1, 5, 5], &mut r);
    let d_y = random(&[2, 2], &mut r);
    let (_, c1) = m.forward(x.clone(), Mode::Train, &mut r);
    let (_, c2) = m.forward(x, Mode::Train, &mut r);
    m.zero_grad();
    m.backward_params(c1, d_y.clone());
    let once: Vec<Vec<f32>> = m.parameters().iter().map(|p| p.grad.to_vec()).collect();
    m.backward_params(c2, d_y);
    for (p, o) in m.parameters().iter().zip(&once) {
        assert!(o.iter().any(|&g| g != 0.0), "{} has a gradient", p.name);
        for (&g, &g1) in p.grad.iter().zip(o) {
            // Per-sample contributions are summed in a different order the second time
            // ((g + p1) + p2 instead of (0 + p1) + p2), so equality holds to f32 rounding.
            assert!(
                (g - 2.0 * g1).abs() <= ACCUMULATE_TOL * (1.0 + g1.abs()),
                "{}: {g} vs 2 * {g1}",
                p.name
            );
        }
    }
}

// ---- losses ----

/// Checks `grad` against central differences of `f` at every element of `x`.
fn check_loss(
    label: &str,
    x: &Array2<f32>,
    grad: &Array2<f32>,
    mut f: impl FnMut(&Array2<f32>) -> f64,
) {
    let mut failures = Vec::new();
    let shape = x.dim();
    let mut v = x.as_slice().unwrap().to_vec();
    for i in 0..v.len() {
        let num = central(&mut v, i, |v| {
            f(&Array2::from_shape_vec(shape, v.to_vec()).unwrap())
        });
        compare(
            label,
            "input",
            i,
            num,
            grad.as_slice().unwrap()[i],
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn random2(r: &mut StdRng, rows: usize, cols: usize, scale: f32) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || scale * r.random_range(-1.0f32..1.0))
}

const REDUCTIONS: [Reduction; 3] = [Reduction::Sum, Reduction::Mean, Reduction::BatchMean];

#[test]
fn bce_mse_and_kl() {
    let mut r = rng(11);
    for red in REDUCTIONS {
        let x = random2(&mut r, 4, 5, 3.0);
        let t = random2(&mut r, 4, 5, 1.0).mapv(|v| 0.5 * (v + 1.0));
        let (_, g) = bce_with_logits(x.view(), t.view(), red);
        check_loss(&format!("bce {red:?}"), &x, &g, |x| {
            bce_with_logits(x.view(), t.view(), red).0
        });
        let (_, g) = mse(x.view(), t.view(), red);
        check_loss(&format!("mse {red:?}"), &x, &g, |x| {
            mse(x.view(), t.view(), red).0
        });
        let mu = random2(&mut r, 4, 3, 2.0);
        let lv = random2(&mut r, 4, 3, 2.0);
        let kl = gaussian_kl(mu.view(), lv.view(), red);
        check_loss(&format!("kl d_mu {red:?}"), &mu, &kl.d_mu, |m| {
            gaussian_kl(m.view(), lv.view(), red).value
        });
        check_loss(&format!("kl d_logvar {red:?}"), &lv, &kl.d_logvar, |l| {
            gaussian_kl(mu.view(), l.view(), red).value
        });
    }
}

#[test]
fn gan_losses() {
    let mut r = rng(12);
    let kinds = [
        GanLoss::NonSaturating,
        GanLoss::Minimax,
        GanLoss::LeastSquares,
        GanLoss::Hinge,
    ];
    for kind in kinds {
        for label in [1.0f32, 0.9] {
            // Raw outputs in ±[0.05, 2.5] around the hinge margins ±1: off every kink.
            let pick = |r: &mut StdRng| {
                let v = r.random_range(-2.5f32..2.5);
                if (v.abs() - 1.0).abs() < 0.05 {
                    v + 0.1
                } else {
                    v
                }
            };
            let real = Array2::from_shape_simple_fn((6, 1), || pick(&mut r));
            let fake = Array2::from_shape_simple_fn((6, 1), || pick(&mut r));
            let d = kind.discriminator(real.view(), fake.view(), label);
            check_loss(
                &format!("{kind:?} D real label {label}"),
                &real,
                &d.d_real,
                |x| kind.discriminator(x.view(), fake.view(), label).value,
            );
            check_loss(
                &format!("{kind:?} D fake label {label}"),
                &fake,
                &d.d_fake,
                |x| kind.discriminator(real.view(), x.view(), label).value,
            );
        }
        let fake = random2(&mut r, 6, 1, 2.5).mapv(|v| {
            if (v.abs() - 1.0).abs() < 0.05 {
                v + 0.1
            } else {
                v
            }
        });
        let (_, g) = kind.generator(fake.view());
        check_loss(&format!("{kind:?} G"), &fake, &g, |x| {
            kind.generator(x.view()).0
        });
    }
}

#[test]
fn softmax_cross_entropy_gradient() {
    let mut r = rng(13);
    for red in REDUCTIONS {
        // Logits in [-4, 4] over 7 classes: smooth everywhere (no kinks), and the softmax is
        // not saturated, so the truncation error of the central difference stays small.
        let x = random2(&mut r, 5, 7, 4.0);
        let labels: Vec<u8> = (0..5).map(|_| r.random_range(0u8..7)).collect();
        let (_, g) = softmax_cross_entropy(x.view(), &labels, red);
        check_loss(&format!("softmax ce {red:?}"), &x, &g, |x| {
            softmax_cross_entropy(x.view(), &labels, red).0
        });
    }
}
