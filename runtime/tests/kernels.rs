//! Kernel tests: hand-derived cases, then every fast kernel against `kernels::reference`.

use proptest::prelude::*;
use tinygen_runtime::kernels::{self, reference, ConvGeom, Requant};

// Ties round to even: 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4, and symmetric for negatives.
#[test]
fn requantize_hand_ties() {
    assert_eq!(kernels::requantize(5, 1, 1), 2);
    assert_eq!(kernels::requantize(7, 1, 1), 4);
    assert_eq!(kernels::requantize(-5, 1, 1), -2);
    assert_eq!(kernels::requantize(-7, 1, 1), -4);
    assert_eq!(kernels::requantize(3, 3, 2), 2); // 9/4 = 2.25
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 0), i32::MAX);
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 62), 1);
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 63), 0); // exactly 1/2
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 255), 0);
}

// 1 channel, 2x2 input [1 2; 3 4], 2x2 kernel of ones, stride 2, no padding: each input
// value fills its own 2x2 block of the 4x4 output, plus the bias 0.5.
#[test]
fn conv_transpose_hand_blocks() {
    let g = ConvGeom {
        in_ch: 1,
        in_h: 2,
        in_w: 2,
        out_ch: 1,
        out_h: 4,
        out_w: 4,
        k_h: 2,
        k_w: 2,
        stride_h: 2,
        stride_w: 2,
        pad_h: 0,
        pad_w: 0,
    };
    let x = [1.0, 2.0, 3.0, 4.0];
    let w = [1.0; 4];
    let mut y = [f32::NAN; 16];
    kernels::conv_transpose2d_f32(&g, &w, &[0.5], &x, &mut y);
    let want = [
        1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5,
    ];
    for (a, b) in y.iter().zip(want) {
        // Every value is a small integer plus 0.5: exact in f32.
        assert!((a - b).abs() == 0.0, "{y:?}");
    }
}

// y = [1 2; 3 4] [x0-zp, x1-zp] + b with zp = 1, x = [3, 5]: acc = [1*2+2*4+1, 3*2+4*4-1] =
// [11, 21]; multiplier 1, shift 1: 5.5 -> 6, 10.5 -> 10; + out zp 2 -> [8, 12]; max 10.
#[test]
fn dense_i8_hand() {
    let rq = Requant {
        in_zero_point: 1,
        out_zero_point: 2,
        multiplier: &[1, 1],
        shift: &[1, 1],
        min: -128,
        max: 10,
    };
    let mut y = [0i8; 2];
    kernels::dense_i8(&[1, 2, 3, 4], &[1, -1], &[3, 5], &rq, &mut y);
    assert_eq!(y, [8, 10]);
    let mut r = [0i8; 2];
    reference::dense_i8(&[1, 2, 3, 4], &[1, -1], &[3, 5], &rq, &mut r);
    assert_eq!(r, y);
}

// ---------------------------------------------------------------------------------------
// requantize against an exact i128 model.

/// Exact `round_half_even(acc * m / 2^shift)` in i128, saturated to i32.
fn requantize_exact(acc: i32, m: i32, shift: u8) -> i32 {
    let p = i128::from(acc) * i128::from(m);
    // |p| <= 2^62, so for shift >= 64 the exact result is 0; clamping keeps the i128 shifts valid.
    let s = u32::from(shift).min(100);
    let q = p >> s; // floor
    let r = p - (q << s); // 0 <= r < 2^s
    let twice_r = r * 2;
    let one = 1i128 << s;
    let q = if twice_r > one || (twice_r == one && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    q.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

#[test]
fn requantize_exact_ties() {
    // acc * m = (2t + 1) * 2^(s-1): exactly half way between two integers.
    for s in 1u8..=62 {
        for t in [-3i64, -2, -1, 0, 1, 2, 3, 1000, -1000] {
            let p = (2 * i128::from(t) + 1) << (s - 1);
            // Split p into acc * m with both in i32 where possible.
            let m_pow = u32::from(s - 1).min(30);
            let m = 1i128 << m_pow;
            let acc = (2 * i128::from(t) + 1) << (u32::from(s - 1) - m_pow);
            let (Ok(acc), Ok(m)) = (i32::try_from(acc), i32::try_from(m)) else {
                continue;
            };
            assert_eq!(i128::from(acc) * i128::from(m), p);
            let (Some(neg_acc), Some(neg_m)) = (acc.checked_neg(), m.checked_neg()) else {
                continue;
            };
            for (a, mm) in [(acc, m), (m, acc), (neg_acc, m), (acc, neg_m)] {
                assert_eq!(
                    kernels::requantize(a, mm, s),
                    requantize_exact(a, mm, s),
                    "acc {a} m {mm} shift {s}"
                );
            }
        }
    }
}

// Shrunk by proptest: the i128 model itself shifted by 127 (out of range for the old model).
#[test]
fn requantize_pinned_zero_shift_127() {
    assert_eq!(requantize_exact(0, 0, 127), 0);
    assert_eq!(kernels::requantize(0, 0, 127), 0);
    assert_eq!(kernels::requantize(i32::MAX, i32::MAX, 127), 0);
}

#[test]
fn requantize_extremes() {
    let vals = [
        i32::MIN,
        i32::MIN + 1,
        -65536,
        -32768,
        -257,
        -1,
        0,
        1,
        255,
        32767,
        i32::MAX,
    ];
    for &a in &vals {
        for &m in &vals {
            for s in 0u8..=255 {
                let want = requantize_exact(a, m, s);
                assert_eq!(kernels::requantize(a, m, s), want, "{a} {m} {s}");
                assert_eq!(kernels::requantize_wide(a, m, s), want, "{a} {m} {s}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn requantize_matches_exact(acc in any::<i32>(), m in any::<i32>(), shift in any::<u8>()) {
        prop_assert_eq!(kernels::requantize(acc, m, shift), requantize_exact(acc, m, shift));
    }

    // Small operands, where the 32-bit path is taken.
    #[test]
    fn requantize_narrow_matches_exact(
        acc in -(1i32 << 22)..(1i32 << 22),
        m in -(1i32 << 15)..(1i32 << 15),
        shift in 0u8..40,
    ) {
        let want = requantize_exact(acc, m, shift);
        if let Some(v) = kernels::requantize_narrow(acc, m, shift) {
            prop_assert_eq!(v, want);
        }
        prop_assert_eq!(kernels::requantize_wide(acc, m, shift), want);
    }
}

// ---------------------------------------------------------------------------------------
// Fast kernels against the reference.

/// f32 tolerance, relative to `Σ|w·x| + |b|` of each output. The fast and the reference
/// kernels add the same n products in different orders; each sum is within
/// `γ_n · Σ|terms|` of the exact value, `γ_n = n·u/(1 - n·u)` with `u = ε/2`, so the two differ
/// by at most `≈ n·ε · Σ|terms|`. Here n <= 8 channels · 25 taps + 1 = 201 (Dense: 65).
const F32_SUM_ORDER_TOL_PER_TERM: f32 = f32::EPSILON;

/// Compare f32 outputs; `mag` is `Σ|w·x| + |b|` per output, `n_terms` the products per output.
fn assert_close(
    fast: &[f32],
    want: &[f32],
    mag: &[f32],
    n_terms: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(fast.len(), want.len());
    for (i, ((f, w), m)) in fast.iter().zip(want).zip(mag).enumerate() {
        let tol = F32_SUM_ORDER_TOL_PER_TERM * (n_terms as f32 + 1.0) * m;
        prop_assert!(
            f.is_finite(),
            "output {} not written or not finite: {}",
            i,
            f
        );
        prop_assert!(
            (f - w).abs() <= tol,
            "output {}: fast {} reference {} tol {}",
            i,
            f,
            w,
            tol
        );
    }
    Ok(())
}

fn abs_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// A conv geometry: (in_ch, out_ch, in_h, in_w, k_h, k_w, s_h, s_w, p_h, p_w, op_h, op_w).
fn geom_strategy() -> impl Strategy<Value = (usize, usize, usize, usize, [usize; 6], [usize; 2])> {
    (
        1usize..=8,
        1usize..=8,
        1usize..=7,
        1usize..=7,
        1usize..=5,
        1usize..=5,
        1usize..=3,
        1usize..=3,
    )
        .prop_flat_map(|(ic, oc, h, w, kh, kw, sh, sw)| {
            (
                Just((ic, oc, h, w)),
                0..kh,
                0..kw,
                0..sh,
                0..sw,
                Just([kh, kw, sh, sw]),
            )
        })
        .prop_map(|((ic, oc, h, w), ph, pw, oph, opw, [kh, kw, sh, sw])| {
            (ic, oc, h, w, [kh, kw, sh, sw, ph, pw], [oph, opw])
        })
}

/// Conv2d geometry, or `None` when the padded input is smaller than the kernel.
fn conv_geom(ic: usize, oc: usize, h: usize, w: usize, k: [usize; 6]) -> Option<ConvGeom> {
    let [kh, kw, sh, sw, ph, pw] = k;
    let out_h = (h + 2 * ph).checked_sub(kh)? / sh + 1;
    let out_w = (w + 2 * pw).checked_sub(kw)? / sw + 1;
    Some(ConvGeom {
        in_ch: ic,
        in_h: h,
        in_w: w,
        out_ch: oc,
        out_h,
        out_w,
        k_h: kh,
        k_w: kw,
        stride_h: sh,
        stride_w: sw,
        pad_h: ph,
        pad_w: pw,
    })
}

/// ConvTranspose2d geometry: `out = s·(in - 1) + output_padding + k - 2·pad`, `None` if < 1.
fn conv_t_geom(
    ic: usize,
    oc: usize,
    h: usize,
    w: usize,
    k: [usize; 6],
    op: [usize; 2],
) -> Option<ConvGeom> {
    let [kh, kw, sh, sw, ph, pw] = k;
    let out_h = (sh * (h - 1) + op[0] + kh)
        .checked_sub(2 * ph)
        .filter(|&v| v > 0)?;
    let out_w = (sw * (w - 1) + op[1] + kw)
        .checked_sub(2 * pw)
        .filter(|&v| v > 0)?;
    Some(ConvGeom {
        in_ch: ic,
        in_h: h,
        in_w: w,
        out_ch: oc,
        out_h,
        out_w,
        k_h: kh,
        k_w: kw,
        stride_h: sh,
        stride_w: sw,
        pad_h: ph,
        pad_w: pw,
    })
}

/// Deterministic values from a seed (xorshift), so a shrunk case is reproducible from it.
fn values_f32(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn values_i8(seed: u64, n: usize) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8 as i8
        })
        .collect()
}

/// Requantisation parameters: multipliers and shifts per channel, zero points and clamps.
#[derive(Debug, Clone)]
struct RqParams {
    in_zp: i32,
    out_zp: i32,
    mult: Vec<i32>,
    shift: Vec<u8>,
    min: i8,
    max: i8,
}

impl RqParams {
    fn requant(&self) -> Requant<'_> {
        Requant {
            in_zero_point: self.in_zp,
            out_zero_point: self.out_zp,
            multiplier: &self.mult,
            shift: &self.shift,
            min: self.min,
            max: self.max,
        }
    }
}

fn rq_strategy(channels: usize) -> impl Strategy<Value = RqParams> {
    (
        prop_oneof![4 => -128i32..=127, 1 => any::<i32>()],
        -128i32..=127,
        proptest::collection::vec(
            prop_oneof![3 => 1i32..128, 2 => 1i32..(1 << 15), 1 => any::<i32>()],
            channels,
        ),
        proptest::collection::vec(prop_oneof![3 => 4u8..20, 1 => any::<u8>()], channels),
        prop_oneof![3 => Just((-128i8, 127i8)), 1 => (any::<i8>(), any::<i8>())],
    )
        .prop_map(|(in_zp, out_zp, mult, shift, (min, max))| RqParams {
            in_zp,
            out_zp,
            mult,
            shift,
            min,
            max,
        })
}

/// `[n_out, n_in]` weights in the model file's panel order.
fn dense_panels(w: &[f32], n_in: usize, n_out: usize) -> Vec<f32> {
    let mut packed = vec![f32::NAN; w.len()];
    for o in 0..n_out {
        for i in 0..n_in {
            let p = tinygen_runtime::format::dense_panel_index(n_out, n_in, o, i).unwrap();
            assert!(packed[p].is_nan(), "two weights map to {p}");
            packed[p] = w[o * n_in + i];
        }
    }
    packed
}

/// The f32 Dense kernel sums every output in the reference's order: the same bits.
fn check_dense_f32(n_in: usize, n_out: usize, seed: u64) -> Result<(), TestCaseError> {
    let w = values_f32(seed, n_in * n_out);
    let b = values_f32(seed ^ 0x55, n_out);
    let x = values_f32(seed ^ 0xaa, n_in);
    let mut want = vec![f32::NAN; n_out];
    reference::dense_f32(&w, &b, &x, &mut want);
    let mut got = vec![f32::NAN; n_out];
    kernels::dense_f32(&dense_panels(&w, n_in, n_out), &b, &x, &mut got);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(bits(&got), bits(&want), "{} -> {}", n_in, n_out);
    Ok(())
}

type ConvF32 = fn(&ConvGeom, &[f32], &[f32], &[f32], &mut [f32]);

fn check_conv_f32(g: &ConvGeom, transposed: bool, seed: u64) -> Result<(), TestCaseError> {
    let n_w = g.in_ch * g.out_ch * g.k_h * g.k_w;
    let n_out = g.out_ch * g.out_h * g.out_w;
    let w = values_f32(seed, n_w);
    let b = values_f32(seed ^ 0x55, g.out_ch);
    let x = values_f32(seed ^ 0xaa, g.in_ch * g.in_h * g.in_w);
    let (fast, slow): (ConvF32, ConvF32) = if transposed {
        (
            kernels::conv_transpose2d_f32,
            reference::conv_transpose2d_f32,
        )
    } else {
        (kernels::conv2d_f32, reference::conv2d_f32)
    };
    let mut want = vec![f32::NAN; n_out];
    slow(g, &w, &b, &x, &mut want);
    let mut mag = vec![f32::NAN; n_out];
    slow(g, &abs_all(&w), &abs_all(&b), &abs_all(&x), &mut mag);
    let mut got = vec![f32::NAN; n_out];
    fast(g, &w, &b, &x, &mut got);
    assert_close(&got, &want, &mag, g.in_ch * g.k_h * g.k_w)
}

type ConvI8 = fn(&ConvGeom, &[i8], &[i32], &[i8], &Requant<'_>, &mut [i8]);

fn check_conv_i8(
    g: &ConvGeom,
    transposed: bool,
    rq: &RqParams,
    seed: u64,
) -> Result<(), TestCaseError> {
    let n_w = g.in_ch * g.out_ch * g.k_h * g.k_w;
    let n_out = g.out_ch * g.out_h * g.out_w;
    let w = values_i8(seed, n_w);
    let b: Vec<i32> = values_i8(seed ^ 0x55, g.out_ch)
        .iter()
        .map(|&v| i32::from(v) * 97)
        .collect();
    let x = values_i8(seed ^ 0xaa, g.in_ch * g.in_h * g.in_w);
    let (fast, slow, model_kernel): (ConvI8, ConvI8, ConvI8) = if transposed {
        (
            kernels::conv_transpose2d_i8,
            reference::conv_transpose2d_i8,
            kernels::dsp_conv::conv_transpose2d_i8,
        )
    } else {
        (
            kernels::conv2d_i8,
            reference::conv2d_i8,
            kernels::dsp_conv::conv2d_i8,
        )
    };
    let r = rq.requant();
    // Two sentinels: a skipped output keeps its sentinel and differs in one of the two runs.
    for sentinel in [i8::MIN, i8::MAX] {
        let mut want = vec![sentinel; n_out];
        slow(g, &w, &b, &x, &r, &mut want);
        let mut got = vec![sentinel.wrapping_add(1); n_out];
        fast(g, &w, &b, &x, &r, &mut got);
        prop_assert_eq!(&got, &want);
        // The Rust model of the Cortex-M4 packed kernel (the assembly's arithmetic).
        let mut model = vec![sentinel.wrapping_add(1); n_out];
        model_kernel(g, &w, &b, &x, &r, &mut model);
        prop_assert_eq!(&model, &want);
    }
    Ok(())
}

fn check_dense_i8(
    n_in: usize,
    n_out: usize,
    rq: &RqParams,
    seed: u64,
) -> Result<(), TestCaseError> {
    let w = values_i8(seed, n_in * n_out);
    let b: Vec<i32> = values_i8(seed ^ 0x55, n_out)
        .iter()
        .map(|&v| i32::from(v) * 97)
        .collect();
    let x = values_i8(seed ^ 0xaa, n_in);
    let r = rq.requant();
    for sentinel in [i8::MIN, i8::MAX] {
        let mut want = vec![sentinel; n_out];
        reference::dense_i8(&w, &b, &x, &r, &mut want);
        let mut got = vec![sentinel.wrapping_add(1); n_out];
        kernels::dense_i8(&w, &b, &x, &r, &mut got);
        prop_assert_eq!(&got, &want);
        let mut model = vec![sentinel.wrapping_add(1); n_out];
        kernels::dsp_model::dense_i8(&w, &b, &x, &r, &mut model);
        prop_assert_eq!(&model, &want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dense_f32_matches_reference(n_in in 1usize..64, n_out in 1usize..100, seed in any::<u64>()) {
        check_dense_f32(n_in, n_out, seed)?;
    }

    #[test]
    fn conv2d_f32_matches_reference((ic, oc, h, w, k, _op) in geom_strategy(), seed in any::<u64>()) {
        let g = conv_geom(ic, oc, h, w, k);
        prop_assume!(g.is_some());
        check_conv_f32(&g.unwrap(), false, seed)?;
    }

    #[test]
    fn conv_transpose2d_f32_matches_reference((ic, oc, h, w, k, op) in geom_strategy(), seed in any::<u64>()) {
        let g = conv_t_geom(ic, oc, h, w, k, op);
        prop_assume!(g.is_some());
        check_conv_f32(&g.unwrap(), true, seed)?;
    }

    #[test]
    fn dense_i8_matches_reference(
        (n_in, n_out, rq) in (1usize..64, 1usize..64).prop_flat_map(|(i, o)| (Just(i), Just(o), rq_strategy(o))),
        seed in any::<u64>(),
    ) {
        check_dense_i8(n_in, n_out, &rq, seed)?;
    }

    #[test]
    fn conv2d_i8_matches_reference(
        ((ic, oc, h, w, k, _op), rq) in geom_strategy().prop_flat_map(|g| { let oc = g.1; (Just(g), rq_strategy(oc)) }),
        seed in any::<u64>(),
    ) {
        let g = conv_geom(ic, oc, h, w, k);
        prop_assume!(g.is_some());
        check_conv_i8(&g.unwrap(), false, &rq, seed)?;
    }

    #[test]
    fn conv_transpose2d_i8_matches_reference(
        ((ic, oc, h, w, k, op), rq) in geom_strategy().prop_flat_map(|g| { let oc = g.1; (Just(g), rq_strategy(oc)) }),
        seed in any::<u64>(),
    ) {
        let g = conv_t_geom(ic, oc, h, w, k, op);
        prop_assume!(g.is_some());
        check_conv_i8(&g.unwrap(), true, &rq, seed)?;
    }
}

// Wide rows (more than one stack buffer of outputs) and the model's real layer shapes.
#[test]
fn wide_rows_and_model_shapes() {
    // ConvTranspose 64->32 k4 s2 p1, 7x7 -> 14x14 (the DCGAN generator), and a 1-channel
    // 200-wide row, which spans several accumulator buffers in both kernels.
    let dcgan = conv_t_geom(64, 32, 7, 7, [4, 4, 2, 2, 1, 1], [0, 0]).unwrap();
    assert_eq!((dcgan.out_h, dcgan.out_w), (14, 14));
    check_conv_f32(&dcgan, true, 7).unwrap();
    let wide_t = conv_t_geom(2, 3, 2, 100, [3, 3, 2, 2, 1, 1], [1, 1]).unwrap();
    check_conv_f32(&wide_t, true, 8).unwrap();
    let wide = conv_geom(2, 3, 3, 200, [3, 3, 1, 1, 1, 1]).unwrap();
    check_conv_f32(&wide, false, 9).unwrap();
    let rq = RqParams {
        in_zp: -3,
        out_zp: 5,
        mult: vec![77; 32],
        shift: vec![14; 32],
        min: -128,
        max: 127,
    };
    check_conv_i8(&dcgan, true, &rq, 10).unwrap();
    check_conv_i8(&wide_t, true, &rq, 11).unwrap();
    check_conv_i8(&wide, false, &rq, 12).unwrap();
    check_dense_f32(400, 37, 13).unwrap();
    check_dense_i8(
        400,
        37,
        &RqParams {
            mult: vec![77; 37],
            shift: vec![14; 37],
            ..rq
        },
        14,
    )
    .unwrap();
}
