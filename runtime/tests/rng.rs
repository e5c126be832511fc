//! The sampler against `rand_xoshiro` and the moments of the standard normal.

use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinygen_runtime::rng::{self, Rng};

#[test]
fn stream_matches_rand_xoshiro_seed_from_u64() {
    for seed in [0u64, 1, 42, u64::MAX, 0x1234_5678_9ABC_DEF0] {
        let mut ours = Rng::seed_from_u64(seed);
        let mut theirs = Xoshiro128PlusPlus::seed_from_u64(seed);
        for i in 0..1000 {
            assert_eq!(ours.next_u32(), theirs.next_u32(), "seed {seed}, draw {i}");
        }
    }
}

#[test]
fn gaussian_moments() {
    // 200k samples: the standard errors of the mean, variance and fourth moment are
    // 1/sqrt(n) = 0.0022, sqrt(2/n) = 0.0032 and sqrt(96/n) = 0.022; the bounds are 4-5 of them.
    const N: usize = 200_000;
    let mut r = Rng::seed_from_u64(77);
    let (mut s1, mut s2, mut s4) = (0f64, 0f64, 0f64);
    let mut z = vec![0f32; N];
    r.fill_gaussian(&mut z);
    for &x in &z {
        let x = f64::from(x);
        assert!(x.is_finite());
        s1 += x;
        s2 += x * x;
        s4 += x * x * x * x;
    }
    let n = N as f64;
    let (mean, var, m4) = (s1 / n, s2 / n, s4 / n);
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.015, "variance {var}");
    assert!((m4 - 3.0).abs() < 0.1, "fourth moment {m4}");
}

#[test]
fn fill_gaussian_equals_repeated_next_gaussian() {
    let mut a = Rng::seed_from_u64(8);
    let mut b = Rng::seed_from_u64(8);
    let mut v = [0f32; 7];
    a.fill_gaussian(&mut v);
    for x in v {
        assert_eq!(x.to_bits(), b.next_gaussian().to_bits());
    }
}

#[test]
fn gaussian_is_box_muller_of_the_uniform_stream() {
    // Recompute Box-Muller in f64 from rand_xoshiro's stream: u1 = 1 - top24(a) / 2^24,
    // u2 = top24(b) / 2^24, r = sqrt(-2 ln u1), pair (r cos 2 pi u2, r sin 2 pi u2).
    // f32 against f64: a few ulp each for log, sqrt, sin and cos; 1e-5 relative (+1e-6
    // absolute near zero) is ~100 ulp and catches any change of formula or pairing.
    let mut ours = Rng::seed_from_u64(2024);
    let mut theirs = Xoshiro128PlusPlus::seed_from_u64(2024);
    for _ in 0..5000 {
        let u1 = 1.0 - f64::from(theirs.next_u32() >> 8) / 16_777_216.0;
        let u2 = f64::from(theirs.next_u32() >> 8) / 16_777_216.0;
        let r = (-2.0 * u1.ln()).sqrt();
        // The sampler takes sine and cosine of the exact angle 2 pi u2 (`sin_cos_turns` reduces
        // u2 itself; no rounding of 2 pi u2 to f32 as an earlier libm `sincosf` version did).
        let angle = std::f64::consts::TAU * u2;
        for want in [r * angle.cos(), r * angle.sin()] {
            let got = f64::from(ours.next_gaussian());
            assert!(
                (got - want).abs() <= 1e-5 * want.abs() + 1e-6,
                "{got} vs {want}"
            );
        }
    }
}

/// `sqrt_f32` is the IEEE square root: equal to the host's (hardware, correctly rounded)
/// `f32::sqrt` for every significand of both exponent parities (every float in [1, 4): the
/// digit loop sees only the significand and the parity), for every exponent with a spread of
/// significands, for subnormals, and for the special values.
#[test]
fn sqrt_f32_is_correctly_rounded() {
    let check = |x: f32| {
        let (got, want) = (rng::sqrt_f32(x), x.sqrt());
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "sqrt({x:e} = {:#010x}) = {got:e}, want {want:e}",
            x.to_bits()
        );
    };
    for bits in 1.0f32.to_bits()..4.0f32.to_bits() {
        check(f32::from_bits(bits));
    }
    for exp in 0u32..=255 {
        for k in 0u32..4096 {
            let mant = k.wrapping_mul(0x9E37_79B9) >> 9;
            check(f32::from_bits((exp << 23) | mant));
        }
    }
    for bits in 1u32..1 << 16 {
        check(f32::from_bits(bits));
    }
    for x in [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -1.0,
        f32::NAN,
        f32::MAX,
        f32::MIN_POSITIVE,
    ] {
        check(x);
    }
}
