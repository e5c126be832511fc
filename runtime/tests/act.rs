//! `kernels::tanh_f32` and `kernels::sigmoid_f32` against f64 references: error bounds over
//! sweeps of f32 bit patterns, special values, and the slice path against one element at a time.

use tinygen_runtime::kernels;

/// Stated bounds (see `kernels/act.rs`), in units in the last place of the f32 result.
const TANH_MAX_ULP: f64 = 2.0;
const SIGMOID_MAX_ULP: f64 = 2.5;
/// Stated bound of the relative error where the exact result is a normal f32.
const MAX_REL: f64 = 2.0e-7;

fn tanh64(x: f64) -> f64 {
    x.tanh()
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Spacing of the f32 numbers at the binade of `r` (the subnormal spacing below 2^-126).
fn ulp32(r: f64) -> f64 {
    let a = r.abs();
    let mut e = if a < f64::from(f32::MIN_POSITIVE) {
        -126
    } else {
        a.log2().floor() as i32
    };
    // log2 of a value just below a power of two can round up.
    if e > -126 && 2f64.powi(e) > a {
        e -= 1;
    }
    2f64.powi(e.max(-126) - 23)
}

fn one(f: fn(&mut [f32]), x: f32) -> f32 {
    let mut v = [x];
    f(&mut v);
    v[0]
}

#[derive(Default)]
struct Worst {
    ulp: f64,
    ulp_at: f32,
    rel: f64,
    rel_at: f32,
    count: u64,
}

impl Worst {
    fn add(&mut self, x: f32, y: f32, r: f64) {
        assert!(!y.is_nan(), "NaN for {x:e}");
        let d = (f64::from(y) - r).abs();
        let u = d / ulp32(r);
        if u > self.ulp {
            self.ulp = u;
            self.ulp_at = x;
        }
        if r.abs() >= f64::from(f32::MIN_POSITIVE) {
            let rel = d / r.abs();
            if rel > self.rel {
                self.rel = rel;
                self.rel_at = x;
            }
        }
        self.count += 1;
    }

    fn check(&self, name: &str, max_ulp: f64) {
        println!(
            "{name}: {} inputs, max {:.3} ulp at {:e}, max relative {:.3e} at {:e}",
            self.count, self.ulp, self.ulp_at, self.rel, self.rel_at
        );
        assert!(
            self.ulp <= max_ulp,
            "{name}: {} ulp at {:e}",
            self.ulp,
            self.ulp_at
        );
        assert!(
            self.rel <= MAX_REL,
            "{name}: relative {} at {:e}",
            self.rel,
            self.rel_at
        );
    }
}

/// Runs both functions over `inputs` in blocks (the vectorised path plus a remainder) and
/// returns the worst errors; also checks the range and, when `ascending`, monotonicity.
fn sweep(inputs: impl Iterator<Item = f32>, ascending: bool) -> (Worst, Worst) {
    let (mut wt, mut ws) = (Worst::default(), Worst::default());
    let mut xs = Vec::with_capacity(4099);
    let (mut t, mut s) = (Vec::new(), Vec::new());
    let (mut prev_t, mut prev_s) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    let mut inputs = inputs.peekable();
    while inputs.peek().is_some() {
        xs.clear();
        xs.extend(inputs.by_ref().take(4099));
        t.clone_from(&xs);
        s.clone_from(&xs);
        kernels::tanh_f32(&mut t);
        kernels::sigmoid_f32(&mut s);
        for ((&x, &yt), &ys) in xs.iter().zip(&t).zip(&s) {
            if x.is_nan() {
                continue;
            }
            assert!((-1.0..=1.0).contains(&yt), "tanh({x:e}) = {yt:e}");
            assert!((0.0..=1.0).contains(&ys), "sigmoid({x:e}) = {ys:e}");
            wt.add(x, yt, tanh64(f64::from(x)));
            ws.add(x, ys, sigmoid64(f64::from(x)));
            if ascending {
                // tanh is monotone everywhere; sigmoid for x >= 0 (for x < 0 the rounding of
                // `e / (1 + e)` can step down by an ulp or two).
                assert!(yt >= prev_t, "tanh decreases at {x:e}");
                if x >= 0.0 {
                    assert!(ys >= prev_s, "sigmoid decreases at {x:e}");
                }
                prev_t = yt;
                prev_s = ys;
            }
        }
    }
    (wt, ws)
}

#[test]
fn ulp_metric_counts_one_step_as_one_ulp() {
    for x in [
        1.0f32,
        0.75,
        1e-30,
        3.0e38,
        -2.5,
        f32::from_bits(5),
        f32::MIN_POSITIVE,
    ] {
        let next = f32::from_bits(x.to_bits() + 1);
        let d = (f64::from(next) - f64::from(x)).abs();
        assert_eq!(d / ulp32(f64::from(x)), 1.0, "{x:e}");
    }
    // Just below a power of two the spacing is the smaller one.
    let below = f64::from(f32::from_bits(0x3f7f_ffff));
    assert_eq!(ulp32(below), 2f64.powi(-24));
}

/// Every 97th bit pattern of all 2^32 (97 is odd, so every exponent and sign is visited).
#[test]
fn error_bound_over_all_bit_patterns() {
    let inputs = (0..=u32::MAX / 97).map(|i| f32::from_bits(i * 97));
    let (wt, ws) = sweep(inputs, false);
    assert!(wt.count > 44_000_000);
    wt.check("tanh", TANH_MAX_ULP);
    ws.check("sigmoid", SIGMOID_MAX_ULP);
}

/// Every 11th bit pattern with magnitude in [2^-8, 20], in ascending order, both signs: the
/// range where neither function is trivially 0, ±1 or x. Also checks monotonicity.
#[test]
fn error_bound_and_monotonicity_in_the_active_range() {
    let lo = (2.0f32).powi(-8).to_bits();
    let hi = 20.0f32.to_bits();
    let neg = (lo..=hi).rev().step_by(11).map(|b| -f32::from_bits(b));
    let pos = (lo..=hi).step_by(11).map(f32::from_bits);
    let (wt, ws) = sweep(neg.chain(pos), true);
    assert!(wt.count > 18_000_000);
    wt.check("tanh", TANH_MAX_ULP);
    ws.check("sigmoid", SIGMOID_MAX_ULP);
}

#[test]
fn tanh_special_values() {
    let tanh = |x: f32| one(kernels::tanh_f32, x);
    assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
    for x in [
        9.1f32,
        10.0,
        20.0,
        52.0,
        88.0,
        100.0,
        1e30,
        f32::MAX,
        f32::INFINITY,
    ] {
        assert_eq!(tanh(x), 1.0, "tanh({x:e})");
        assert_eq!(tanh(-x), -1.0, "tanh({:e})", -x);
    }
    // tanh(x) = x to f32 precision for tiny x (and for subnormals, exactly).
    for x in [
        1e-30f32,
        1e-20,
        1e-10,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x0000_1234),
        f32::from_bits(0x007f_ffff),
    ] {
        assert_eq!(tanh(x), x, "tanh({x:e})");
        assert_eq!(tanh(-x), -x, "tanh({:e})", -x);
    }
    // Odd: the sign is copied onto the result computed for |x|.
    for x in [1e-3f32, 0.1, 0.17, 0.5, 0.9, 1.0, 2.0, 5.0, 9.0] {
        assert_eq!(tanh(-x).to_bits(), (-tanh(x)).to_bits(), "tanh({x:e})");
        let r = tanh64(f64::from(x));
        assert!(
            (f64::from(tanh(x)) - r).abs() <= TANH_MAX_ULP * ulp32(r),
            "{x:e}"
        );
    }
}

#[test]
fn sigmoid_special_values() {
    let sig = |x: f32| one(kernels::sigmoid_f32, x);
    for x in [
        0.0f32,
        -0.0,
        1e-30,
        -1e-30,
        f32::from_bits(1),
        -f32::from_bits(1),
    ] {
        assert_eq!(sig(x), 0.5, "sigmoid({x:e})");
    }
    for x in [17.0f32, 88.0, 100.0, 1e30, f32::MAX, f32::INFINITY] {
        assert_eq!(sig(x), 1.0, "sigmoid({x:e})");
    }
    for x in [-104.0f32, -110.0, -1e30, f32::MIN, f32::NEG_INFINITY] {
        assert_eq!(sig(x).to_bits(), 0, "sigmoid({x:e})");
    }
    // Subnormal results (x < -87.34): exp(x) within one subnormal step (2^-149), not flushed
    // to 0 early; only for -103.97 < x <= -103.62 is the result 0 instead of 2^-149.
    for x in [
        -88.0f32, -90.0, -95.5, -100.0, -103.0, -103.5, -103.6, -103.7, -103.9,
    ] {
        let r = sigmoid64(f64::from(x));
        let y = sig(x);
        assert!(!y.is_normal(), "sigmoid({x:e}) = {y:e} is subnormal");
        assert!(
            (f64::from(y) - r).abs() <= 2f64.powi(-149),
            "sigmoid({x:e}) = {y:e}, want {r:e}"
        );
        if x >= -103.6 {
            assert!(y > 0.0, "sigmoid({x:e}) = 0");
        }
    }
}

#[test]
fn nan_gives_the_same_nan() {
    for bits in [
        f32::NAN.to_bits(),
        (-f32::NAN).to_bits(),
        0x7fc0_1234,
        0x7f80_0001, // signalling
        0xffff_ffff,
    ] {
        let x = f32::from_bits(bits);
        assert_eq!(one(kernels::tanh_f32, x).to_bits(), bits, "{bits:#x}");
        assert_eq!(one(kernels::sigmoid_f32, x).to_bits(), bits, "{bits:#x}");
    }
}

/// Inputs that cover every branch of the arithmetic: tiny, each reduction interval, the
/// clamps, subnormal results, NaN and infinities.
fn mixed_inputs() -> Vec<f32> {
    let mut s = 0x9e37_79b9u32;
    let mut v = vec![
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -100.0,
        95.0,
        f32::from_bits(3),
        0.17,
        -0.35,
    ];
    while v.len() < 48 {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        // Exponents between about 2^-12 and 2^7, either sign.
        let bits = (s & 0x807f_ffff) | ((115 + (s >> 23) % 20) << 23);
        v.push(f32::from_bits(bits));
    }
    v
}

/// The vectorised loop and its scalar remainder give the same bits, for every length and
/// several start offsets, and nothing past the slice is written.
#[test]
fn slice_matches_one_element_at_a_time() {
    let input = mixed_inputs();
    for f in [kernels::tanh_f32, kernels::sigmoid_f32] {
        let single: Vec<u32> = input.iter().map(|&x| one(f, x).to_bits()).collect();
        for off in 0..4 {
            for len in 0..=40 {
                let mut buf = input.clone();
                f(&mut buf[off..off + len]);
                for (i, (y, x)) in buf.iter().zip(&input).enumerate() {
                    let want = if (off..off + len).contains(&i) {
                        single[i]
                    } else {
                        x.to_bits()
                    };
                    assert_eq!(y.to_bits(), want, "offset {off}, length {len}, element {i}");
                }
            }
        }
    }
}
