/// A xorshift64 stream from `seed` (non-zero).
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// Whether the AVX2 half of a test can run. Without AVX2 the test says so on stderr (it is
/// skipped, not passed); with `TINYGEN_REQUIRE_AVX2` set (CI, whose machines have it) a
/// missing AVX2 fails the test instead.
fn avx2_or_skip(test: &str) -> bool {
    extern crate std;
    if super::has_avx2() {
        return true;
    }
    assert!(
        std::env::var_os("TINYGEN_REQUIRE_AVX2").is_none(),
        "{test}: TINYGEN_REQUIRE_AVX2 is set but this CPU has no AVX2"
    );
    std::eprintln!("SKIPPED {test}: this CPU has no AVX2");
    false
}

/// The SIMD dot products equal the plain ones for every length 0..=70 (whole blocks, tails
/// and rows longer than `x`), with extreme and random values.
#[test]
fn simd_equals_plain() {
    let avx2 = avx2_or_skip("simd_equals_plain (its AVX2 half)");
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for n in 0..=70usize {
        for extreme in [false, true] {
            let mut w = [0i8; 4 * 80];
            let mut x = [0i16; 80];
            for v in w.iter_mut() {
                *v = if extreme {
                    i8::MIN
                } else {
                    (next() >> 56) as u8 as i8
                };
            }
            for v in x.iter_mut() {
                *v = if extreme {
                    -255
                } else {
                    (next() >> 55) as i16 - 255
                };
            }
            let rows = [
                &w[..n],
                &w[80..80 + n + 3],
                &w[160..160 + n],
                &w[240..240 + n],
            ];
            let want = super::super::dense::dot4_i8_i16(rows, &x[..n]);
            assert_eq!(super::dot4_i8_i16::<false>(rows, &x[..n]), want, "n {n}");
            if avx2 {
                assert_eq!(super::dot4_i8_i16::<true>(rows, &x[..n]), want, "n {n}");
            }
        }
    }
}

/// The four-lane AVX2 requantisation equals the scalar one on random and extreme values.
#[test]
fn finish4_matches_scalar() {
    use super::super::dense::Rows4;
    use super::super::Requant;
    if !avx2_or_skip("finish4_matches_scalar") {
        return;
    }
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let extremes = [
        i32::MIN,
        i32::MIN + 1,
        -1,
        0,
        1,
        i32::MAX,
        1 << 22,
        -(1 << 22),
    ];
    for case in 0..200_000 {
        let pick = |r: u64| {
            if r.is_multiple_of(4) {
                extremes[(r >> 8) as usize % extremes.len()]
            } else {
                (r >> 16) as i32 >> (r % 31)
            }
        };
        let acc = [pick(next()), pick(next()), pick(next()), pick(next())];
        let mult = [pick(next()), pick(next()), pick(next()), pick(next())];
        let shift = [0u8; 4].map(|_| (next() % 66) as u8);
        let (a, b) = ((next() >> 40) as u8 as i8, (next() >> 40) as u8 as i8);
        let rq = Requant {
            in_zero_point: 0,
            out_zero_point: (next() >> 40) as u8 as i8 as i32,
            multiplier: &mult,
            shift: &shift,
            min: a.min(b),
            max: if case % 7 == 0 { a.min(b) } else { a.max(b) },
        };
        let want: [i8; 4] =
            core::array::from_fn(|i| super::super::reference::finish_i8(acc[i], i, &rq).unwrap());
        assert_eq!(
            super::Avx2Rows::finish4(acc, 0, &rq),
            Some(want),
            "{acc:?} {mult:?} {shift:?} {rq:?}"
        );
    }
}

/// The eight-lane 32-bit requantisation equals the scalar one whenever it applies, and
/// applies to the exporter's kind of parameters.
#[test]
fn requant8_narrow_matches_scalar() {
    use super::super::Requant;
    use core::arch::x86_64::_mm256_loadu_si256;
    if !avx2_or_skip("requant8_narrow_matches_scalar") {
        return;
    }
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut taken = 0;
    for case in 0..100_000 {
        let acc: [i32; 8] = core::array::from_fn(|_| {
            let r = next();
            match r % 8 {
                0 => (r >> 32) as i32,
                1 => [(1 << 22) - 1, -(1 << 22) + 1, 1 << 22, -(1 << 22)][(r >> 8) as usize % 4],
                _ => ((r >> 32) as i32) >> 10,
            }
        });
        let mult: [i32; 8] = core::array::from_fn(|_| {
            let r = next();
            if r.is_multiple_of(16) {
                (r >> 32) as i32
            } else {
                ((r >> 32) % 255) as i32 - 127
            }
        });
        let shift: [u8; 8] = core::array::from_fn(|_| {
            let r = next();
            if r.is_multiple_of(16) {
                (r >> 40) as u8
            } else {
                1 + (r >> 40) as u8 % 30
            }
        });
        let (a, b) = ((next() >> 40) as u8 as i8, (next() >> 40) as u8 as i8);
        let rq = Requant {
            in_zero_point: 0,
            out_zero_point: (next() >> 40) as u8 as i8 as i32,
            multiplier: &mult,
            shift: &shift,
            min: a.min(b),
            max: if case % 7 == 0 { a.min(b) } else { a.max(b) },
        };
        // SAFETY: `acc` is 32 readable bytes; `loadu` has no alignment requirement; AVX2
        // is present (checked above).
        let v = unsafe { _mm256_loadu_si256(acc.as_ptr().cast()) };
        // SAFETY: AVX2 is present (checked above).
        if let Some(got) = unsafe { super::requant8_narrow_avx2(v, &mult, &shift, &rq) } {
            taken += 1;
            let want: [i8; 8] = core::array::from_fn(|i| {
                super::super::reference::finish_i8(acc[i], i, &rq).unwrap()
            });
            assert_eq!(got, want, "{acc:?} {mult:?} {shift:?} {rq:?}");
        }
    }
    // The narrow path must actually have been exercised.
    assert!(taken > 3_000, "narrow path taken {taken} times");
}

/// The SSE2 build and the AVX / AVX2 build of each dispatched kernel give the same bits
/// (a CPU without AVX2 runs the first), and the f32 Dense equals the reference.
#[test]
fn sse2_and_avx2_paths_agree() {
    extern crate std;
    use super::super::{dense, reference, Requant};
    use std::{vec, vec::Vec};
    if !avx2_or_skip("sse2_and_avx2_paths_agree") {
        return;
    }
    let mut next = xorshift(0x0123_4567_89ab_cdef);
    for (n_in, n_out) in [(1, 1), (20, 400), (37, 70), (64, 33), (400, 48)] {
        let w: Vec<f32> = (0..n_in * n_out)
            .map(|_| (next() >> 40) as f32 / 8e6 - 1.0)
            .collect();
        let b: Vec<f32> = (0..n_out)
            .map(|_| (next() >> 40) as f32 / 8e6 - 1.0)
            .collect();
        let x: Vec<f32> = (0..n_in)
            .map(|_| (next() >> 40) as f32 / 8e6 - 1.0)
            .collect();
        let mut packed = vec![0.0f32; w.len()];
        for o in 0..n_out {
            for i in 0..n_in {
                let p = crate::format::dense_panel_index(n_out, n_in, o, i).unwrap();
                packed[p] = w[o * n_in + i];
            }
        }
        let mut want = vec![0.0f32; n_out];
        reference::dense_f32(&w, &b, &x, &mut want);
        let mut sse = vec![f32::NAN; n_out];
        dense::dense_f32(&packed, &b, &x, &mut sse, dense::panel_f32_portable);
        let mut avx = vec![f32::NAN; n_out];
        dense::dense_f32(&packed, &b, &x, &mut avx, super::panel_f32_avx);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sse), bits(&want), "{n_in}x{n_out}");
        assert_eq!(bits(&avx), bits(&want), "{n_in}x{n_out}");

        let wi: Vec<i8> = (0..n_in * n_out)
            .map(|_| (next() >> 56) as u8 as i8)
            .collect();
        let bi: Vec<i32> = (0..n_out).map(|_| (next() >> 48) as i32 - 32768).collect();
        let xi: Vec<i8> = (0..n_in).map(|_| (next() >> 56) as u8 as i8).collect();
        let mult: Vec<i32> = (0..n_out).map(|_| 1 + (next() >> 57) as i32).collect();
        let shift: Vec<u8> = (0..n_out).map(|_| 8 + (next() >> 60) as u8).collect();
        let rq = Requant {
            in_zero_point: -3,
            out_zero_point: 5,
            multiplier: &mult,
            shift: &shift,
            min: -128,
            max: 127,
        };
        let mut want = vec![0i8; n_out];
        reference::dense_i8(&wi, &bi, &xi, &rq, &mut want);
        let mut sse = vec![0i8; n_out];
        dense::dense_i8_rows::<super::Sse2Rows>(&wi, &bi, &xi, &rq, &mut sse);
        let mut avx = vec![0i8; n_out];
        super::dense_i8(&wi, &bi, &xi, &rq, &mut avx);
        assert_eq!(sse, want, "{n_in}x{n_out}");
        assert_eq!(avx, want, "{n_in}x{n_out}");
    }
}
