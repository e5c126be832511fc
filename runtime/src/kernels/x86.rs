//! x86-64 SIMD for the int8 Dense kernel: four rows of i8 weights against inputs widened to
//! i16, with `pmaddwd` (two i16 products summed into each i32 lane). SSE2, which every x86-64
//! CPU has; AVX2 when the build enables it (`RUSTFLAGS="-C target-cpu=native"` on a CPU that
//! has it), twice the width. The compiler does not find this form by itself: it widens to i32
//! and multiplies with `pmulld` (or, without SSE4.1, not at all).
//!
//! Unsafe only for the unaligned vector loads and stores, each of a fixed-size array.
//! The result equals `dense::dot4_i8_i16` (plain Rust) for every input; the tests compare the
//! two.

use core::arch::x86_64::*;

/// Inputs per SIMD step.
const STEP: usize = 16;

/// The whole blocks of [`STEP`] weights of a row.
#[inline(always)]
fn blocks(v: &[i8]) -> core::slice::Iter<'_, [i8; STEP]> {
    v.as_chunks::<STEP>().0.iter()
}

/// `Σ w·x` in wrapping i32 for four rows of (at least) `x.len()` weights each; the same value
/// as `dense::dot4_i8_i16`.
#[inline]
pub(super) fn dot4_i8_i16(w: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let n = x.len();
    let [Some(w0), Some(w1), Some(w2), Some(w3)] = w.map(|r| r.get(..n)) else {
        return super::dense::dot4_i8_i16(w, x);
    };
    let (xb, xr) = x.as_chunks::<STEP>();
    let rows = blocks(w0).zip(blocks(w1)).zip(blocks(w2)).zip(blocks(w3));
    // SAFETY: `simd_blocks` needs SSE2 (every x86-64 CPU; the x86-64 targets enable it) or,
    // when compiled for it, AVX2, which this build then requires of its CPU anyway.
    let mut s = unsafe { simd_blocks(rows.zip(xb)) };
    // The last `n % STEP` inputs.
    let done = n - xr.len();
    for (acc, row) in s.iter_mut().zip([w0, w1, w2, w3]) {
        let wr = row.get(done..).unwrap_or_default();
        for (&p, &q) in wr.iter().zip(xr) {
            *acc = acc.wrapping_add(i32::from(p) * i32::from(q));
        }
    }
    s
}

/// `xbuf[..n]` extended to the next multiple of [`STEP`] when what follows is zeros (the inputs
/// [`dot4_i8_i16_padded`] reads rows against); `None` otherwise.
pub(super) fn padded_inputs(xbuf: &[i16], n: usize) -> Option<&[i16]> {
    let padded = xbuf.get(..n.next_multiple_of(STEP))?;
    padded.get(n..)?.iter().all(|&v| v == 0).then_some(padded)
}

/// As [`dot4_i8_i16`] for rows `o..o + 4` of the `[rows, n]` matrix `w` (`rows` are those four
/// rows, `x` their `n` inputs). With `xpad` (from [`padded_inputs`]: the inputs followed by
/// zeros), each row is read on to the next multiple of [`STEP`] (into the following row, whose
/// weights meet zero inputs and add nothing), so no input is left for a scalar tail; the last
/// rows of `w`, which have nothing after them, take the exact-length path.
#[inline]
pub(super) fn dot4_i8_i16_padded(
    w: &[i8],
    o: usize,
    rows: [&[i8]; 4],
    x: &[i16],
    xpad: Option<&[i16]>,
) -> [i32; 4] {
    let n = x.len();
    if let Some(xp) = xpad {
        let row = |r: usize| {
            let start = r.checked_mul(n)?;
            w.get(start..start.checked_add(xp.len())?)
        };
        if let [Some(w0), Some(w1), Some(w2), Some(w3)] =
            [row(o), row(o + 1), row(o + 2), row(o + 3)]
        {
            return dot4_i8_i16([w0, w1, w2, w3], xp);
        }
    }
    dot4_i8_i16(rows, x)
}

/// Blocks of four rows' weights with the matching inputs.
type Blocks<'a> = core::iter::Zip<
    core::iter::Zip<
        core::iter::Zip<
            core::iter::Zip<core::slice::Iter<'a, [i8; STEP]>, core::slice::Iter<'a, [i8; STEP]>>,
            core::slice::Iter<'a, [i8; STEP]>,
        >,
        core::slice::Iter<'a, [i8; STEP]>,
    >,
    core::slice::Iter<'a, [i16; STEP]>,
>;

/// Wrapping sum of the four i32 lanes.
#[cfg(not(target_feature = "avx2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn hsum128(v: __m128i) -> i32 {
    let mut t = [0i32; 4];
    // SAFETY: `t` is 16 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(t.as_mut_ptr().cast(), v) };
    t.iter().fold(0i32, |a, &e| a.wrapping_add(e))
}

/// 16 i8 weights.
#[target_feature(enable = "sse2")]
#[inline]
fn load_w(r: &[i8; STEP]) -> __m128i {
    // SAFETY: `r` is 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(r.as_ptr().cast()) }
}

/// SSE2: per block, each row's 16 weights sign-extended to i16 (bytes doubled into 16-bit
/// lanes, shifted right by 8) and multiplied pair-wise with the 16 inputs.
#[cfg(not(target_feature = "avx2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn simd_blocks(blocks: Blocks<'_>) -> [i32; 4] {
    let mut acc = [_mm_setzero_si128(); 4];
    for ((((c0, c1), c2), c3), xs) in blocks {
        // SAFETY: `xs` is 16 i16 = 32 readable bytes: two 16-byte loads without alignment.
        let (x_lo, x_hi) = unsafe {
            (
                _mm_loadu_si128(xs.as_ptr().cast()),
                _mm_loadu_si128(xs.as_ptr().wrapping_add(8).cast()),
            )
        };
        for (a, r) in acc.iter_mut().zip([c0, c1, c2, c3]) {
            let wv = load_w(r);
            let lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(wv, wv));
            let hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(wv, wv));
            let d = _mm_add_epi32(_mm_madd_epi16(lo, x_lo), _mm_madd_epi16(hi, x_hi));
            *a = _mm_add_epi32(*a, d);
        }
    }
    let [a0, a1, a2, a3] = acc;
    [hsum128(a0), hsum128(a1), hsum128(a2), hsum128(a3)]
}

/// AVX2: per block, each row's 16 weights sign-extended to 16 i16 lanes and multiplied
/// pair-wise with the 16 inputs.
#[cfg(target_feature = "avx2")]
#[target_feature(enable = "avx2")]
#[inline]
fn simd_blocks(blocks: Blocks<'_>) -> [i32; 4] {
    let mut acc = [_mm256_setzero_si256(); 4];
    for ((((c0, c1), c2), c3), xs) in blocks {
        // SAFETY: `xs` is 16 i16 = 32 readable bytes; `loadu` has no alignment requirement.
        let xv = unsafe { _mm256_loadu_si256(xs.as_ptr().cast()) };
        for (a, r) in acc.iter_mut().zip([c0, c1, c2, c3]) {
            let wv = _mm256_cvtepi8_epi16(load_w(r));
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(wv, xv));
        }
    }
    // Pair-wise horizontal adds: lane r of the two halves of `h` holds half of row r's sum.
    let [a0, a1, a2, a3] = acc;
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    let v = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let mut t = [0i32; 4];
    // SAFETY: `t` is 16 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(t.as_mut_ptr().cast(), v) };
    t
}

#[cfg(test)]
mod tests {
    /// The SIMD dot products equal the plain ones for every length 0..=70 (whole blocks, tails
    /// and rows longer than `x`), with extreme and random values.
    #[test]
    fn simd_equals_plain() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
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
                assert_eq!(super::dot4_i8_i16(rows, &x[..n]), want, "n {n}");
            }
        }
    }
}
