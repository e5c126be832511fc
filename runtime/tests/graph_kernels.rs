//! The graph ops' kernels against `kernels::reference`, and the int8 QDQ rule against exact
//! arithmetic: with power-of-two scales, dequantize / compute in f32 / quantize equals the exact
//! rational result rounded once (half to even).

use proptest::prelude::*;
use tinygen_runtime::kernels::graph::{self, Binary, Quant};
use tinygen_runtime::kernels::reference;

fn binary() -> impl Strategy<Value = Binary> {
    prop_oneof![Just(Binary::Add), Just(Binary::Sub), Just(Binary::Mul)]
}

/// f32 values spread over `lo..=hi` on a grid of 2^24 steps. proptest's own f32 range
/// sampler (1.12) can trip an internal assertion on some ranges, which made these tests fail
/// at random; an integer range mapped to floats cannot.
fn uniform(lo: f32, hi: f32) -> impl Strategy<Value = f32> {
    const STEPS: u32 = 1 << 24;
    (0u32..=STEPS).prop_map(move |k| lo + (hi - lo) * (k as f32 / STEPS as f32))
}

/// A power-of-two scale `2^e`, `e` in -10..=2, and a zero point.
fn pow2_quant() -> impl Strategy<Value = Quant> {
    (-10i32..=2, any::<i8>()).prop_map(|(e, zero_point)| Quant {
        scale: 2f32.powi(e),
        zero_point,
    })
}

/// Any positive finite scale.
fn any_quant() -> impl Strategy<Value = Quant> {
    (uniform(1e-4, 10.0), any::<i8>()).prop_map(|(scale, zero_point)| Quant { scale, zero_point })
}

/// Round half to even, in exact f64 arithmetic (the values here are small dyadic rationals).
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

fn le_bytes(index: &[u16]) -> Vec<u8> {
    index.iter().flat_map(|k| k.to_le_bytes()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn binary_f32_matches_reference(
        op in binary(),
        pairs in prop::collection::vec((uniform(-1e3, 1e3), uniform(-1e3, 1e3)), 1..64),
    ) {
        let (a, b): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
        let (mut fast, mut slow) = (a.clone(), a);
        graph::binary_f32(op, &mut fast, &b);
        reference::binary_f32(op, &mut slow, &b);
        prop_assert_eq!(fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn binary_channel_f32_matches_reference(
        op in binary(),
        channels in 1usize..6,
        plane in 1usize..10,
        seed in prop::collection::vec(uniform(-50.0, 50.0), 60..61),
    ) {
        let v: Vec<f32> = seed[..channels].to_vec();
        let a: Vec<f32> = (0..channels * plane).map(|i| seed[i % seed.len()] * 0.3 + i as f32).collect();
        let (mut fast, mut slow) = (a.clone(), a);
        graph::binary_channel_f32(op, &mut fast, &v, plane);
        reference::binary_channel_f32(op, &mut slow, &v, plane);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn binary_i8_matches_reference_and_exact_arithmetic(
        op in binary(),
        qa in pow2_quant(), qb in pow2_quant(), qo in pow2_quant(),
        pairs in prop::collection::vec((any::<i8>(), any::<i8>()), 1..64),
    ) {
        let (a, b): (Vec<i8>, Vec<i8>) = pairs.into_iter().unzip();
        let (mut fast, mut slow) = (a.clone(), a.clone());
        graph::binary_i8(op, &mut fast, qa, &b, qb, qo);
        reference::binary_i8(op, &mut slow, qa, &b, qb, qo);
        prop_assert_eq!(&fast, &slow);
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            let dx = (f64::from(x) - f64::from(qa.zero_point)) * f64::from(qa.scale);
            let dy = (f64::from(y) - f64::from(qb.zero_point)) * f64::from(qb.scale);
            let exact = match op {
                Binary::Add => dx + dy,
                Binary::Sub => dx - dy,
                Binary::Mul => dx * dy,
            };
            let q = (round_half_even(exact / f64::from(qo.scale)) + f64::from(qo.zero_point))
                .clamp(-128.0, 127.0) as i8;
            prop_assert_eq!(fast[i], q, "element {}: {} {:?} {}", i, dx, op, dy);
        }
    }

    #[test]
    fn binary_i8_matches_reference_at_any_scale(
        op in binary(),
        qa in any_quant(), qb in any_quant(), qo in any_quant(),
        pairs in prop::collection::vec((any::<i8>(), any::<i8>()), 1..64),
    ) {
        let (a, b): (Vec<i8>, Vec<i8>) = pairs.into_iter().unzip();
        let (mut fast, mut slow) = (a.clone(), a);
        graph::binary_i8(op, &mut fast, qa, &b, qb, qo);
        reference::binary_i8(op, &mut slow, qa, &b, qb, qo);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn binary_channel_i8_matches_reference(
        op in binary(),
        qa in any_quant(), qo in any_quant(),
        channels in 1usize..6,
        plane in 1usize..10,
        v in prop::collection::vec(uniform(-4.0, 4.0), 6..7),
        a in prop::collection::vec(any::<i8>(), 60..61),
    ) {
        let a = a[..channels * plane].to_vec();
        let (mut fast, mut slow) = (a.clone(), a);
        graph::binary_channel_i8(op, &mut fast, qa, &v[..channels], plane, qo);
        reference::binary_channel_i8(op, &mut slow, qa, &v[..channels], plane, qo);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn exp_matches_reference(x in prop::collection::vec(uniform(-90.0, 90.0), 1..64)) {
        let (mut fast, mut slow) = (x.clone(), x);
        graph::exp_f32(&mut fast);
        reference::exp_f32(&mut slow);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn requantize_matches_reference(
        from in any_quant(), to in any_quant(),
        x in prop::collection::vec(any::<i8>(), 1..64),
    ) {
        let (mut fast, mut slow) = (x.clone(), x.clone());
        graph::requantize_i8(&mut fast, from, to);
        reference::requantize_i8(&mut slow, from, to);
        prop_assert_eq!(&fast, &slow);
        // Into the same quantisation, nothing changes.
        let mut same = x.clone();
        graph::requantize_i8(&mut same, from, from);
        prop_assert_eq!(same, x);
    }

    #[test]
    fn gather_matches_reference(
        channels in 1usize..8,
        plane in 1usize..6,
        picks in prop::collection::vec(any::<u16>(), 1..10),
    ) {
        let x: Vec<i32> = (0..(channels * plane) as i32).collect();
        let index: Vec<u16> = picks.iter().map(|&k| k % channels as u16).collect();
        let mut fast = vec![-1; index.len() * plane];
        let mut slow = fast.clone();
        graph::gather(&le_bytes(&index), plane, &x, &mut fast);
        reference::gather(&index, plane, &x, &mut slow);
        prop_assert_eq!(&fast, &slow);
        for (k, &from) in index.iter().enumerate() {
            for j in 0..plane {
                prop_assert_eq!(fast[k * plane + j], x[usize::from(from) * plane + j]);
            }
        }
    }
}

#[test]
fn quantize_by_a_power_of_two_is_exact() {
    // x / 2^e and x * 2^-e are the same f32 for every x that is not subnormal on either side;
    // the rounding rule then sees the exact quotient.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for e in -12..=4 {
        let q = Quant {
            scale: 2f32.powi(e),
            zero_point: 3,
        };
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits(state as u32 & 0x7fff_ffff) % 300.0 - 150.0;
            if !x.is_finite() {
                continue;
            }
            let exact = round_half_even(f64::from(x) / f64::from(q.scale)) + 3.0;
            assert_eq!(
                q.quantize(x),
                exact.clamp(-128.0, 127.0) as i8,
                "x = {x}, scale 2^{e}"
            );
        }
    }
}
