//! x86-64: the choice of AVX2 at run time, and SIMD for the int8 Dense kernel.
//!
//! Every x86-64 CPU has SSE2, which the default build targets; most also have AVX2. When the
//! CPU has it ([`has_avx2`], `cpuid` asked once), the f32 Dense panels and the transposed
//! convolutions run the same portable code compiled for AVX (wider vectors, the same operations
//! in the same order, hence the same bits; no FMA), and the int8 Dense rows use AVX2.
//!
//! int8 Dense: four rows of i8 weights against inputs widened to i16, with `pmaddwd` (two i16
//! products summed into each i32 lane), in SSE2 or AVX2. The compiler does not find this form
//! by itself: it widens to i32 and multiplies with `pmulld` (or, without SSE4.1, not at all).
//! The result equals `dense::dot4_i8_i16` (plain Rust) for every input; the tests compare the
//! two.
//!
//! Unsafe for the calls into code compiled for AVX / AVX2 (each after [`has_avx2`] said yes),
//! `xgetbv`, and the unaligned vector loads and stores, each of a fixed-size array.

use core::arch::x86_64::*;

/// Whether the CPU and the operating system support AVX and AVX2 (`cpuid` leaves 1 and 7, and
/// the OS saving the YMM registers, `xgetbv`), asked once and remembered. Always true in a
/// build that enables AVX2 at compile time.
pub(super) fn has_avx2() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    /// 0: not asked yet, 1: no, 2: yes.
    static STATE: AtomicU8 = AtomicU8::new(0);
    if cfg!(target_feature = "avx2") {
        return true;
    }
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = detect_avx2();
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// The `cpuid` / `xgetbv` query behind [`has_avx2`].
fn detect_avx2() -> bool {
    const OSXSAVE: u32 = 1 << 27;
    const AVX: u32 = 1 << 28;
    const AVX2: u32 = 1 << 5;
    /// XCR0 bits 1 and 2: the OS saves the SSE and the upper YMM state.
    const YMM_STATE: u64 = 0b110;
    // `cpuid` exists on every x86-64 CPU; leaf 0 gives the highest leaf, checked before leaf 7
    // is asked.
    let (max_leaf, leaf1) = (__cpuid(0).eax, __cpuid(1));
    if max_leaf < 7 || leaf1.ecx & (OSXSAVE | AVX) != OSXSAVE | AVX {
        return false;
    }
    // SAFETY: OSXSAVE set means the OS enabled `xgetbv`.
    let xcr0 = unsafe { xgetbv0() };
    let leaf7 = __cpuid_count(7, 0);
    xcr0 & YMM_STATE == YMM_STATE && leaf7.ebx & AVX2 != 0
}

/// XCR0.
#[target_feature(enable = "xsave")]
fn xgetbv0() -> u64 {
    // SAFETY: the caller checked OSXSAVE; register 0 always exists.
    unsafe { _xgetbv(0) }
}

/// The f32 Dense panel kernel for this CPU: the portable code compiled for AVX when the CPU has
/// it (same operations in the same order, so the same bits; twice the vector width).
pub(super) fn dense_panel_f32() -> super::dense::FullPanel {
    if has_avx2() {
        panel_f32_avx
    } else {
        super::dense::panel_f32_portable
    }
}

/// [`super::dense::panel_f32`] built with AVX enabled; only handed out by [`dense_panel_f32`]
/// after [`has_avx2`] said yes.
fn panel_f32_avx(
    w: &[[f32; super::dense::PANEL_LEN]],
    b: &[f32; super::dense::PANEL_LEN],
    x: &[f32],
    y: &mut [f32; super::dense::PANEL_LEN],
) {
    #[target_feature(enable = "avx")]
    fn run(
        w: &[[f32; super::dense::PANEL_LEN]],
        b: &[f32; super::dense::PANEL_LEN],
        x: &[f32],
        y: &mut [f32; super::dense::PANEL_LEN],
    ) {
        super::dense::panel_f32(w, b, x, y);
    }
    // SAFETY: this function is only reachable through `dense_panel_f32`, which returns it only
    // when the CPU has AVX2 (and so AVX) and the OS saves its registers.
    unsafe { run(w, b, x, y) }
}

/// Pixels per transposed-convolution tile with AVX: 16 rows x 6 pixels are 12 of its 16
/// registers (the weights and a broadcast input take 3 more). Measured on the DCGAN generator
/// against 4, 5, 7 and 8: 6 is the fastest (8 % faster than 4; 7 and 8 spill).
const CONVT_NR: usize = 6;

/// f32 ConvTranspose2d: [`super::col2im::conv_transpose2d_f32_tiles`] compiled for AVX when the
/// CPU has it (the same bits: the tile width does not change the order of any sum), else the
/// portable build.
pub(super) fn conv_transpose2d_f32(
    g: &super::ConvGeom,
    w: &[f32],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    #[target_feature(enable = "avx")]
    fn run(g: &super::ConvGeom, w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
        super::col2im::conv_transpose2d_f32_tiles::<CONVT_NR>(g, w, b, x, y);
    }
    if has_avx2() {
        // SAFETY: the CPU has AVX and the OS saves its registers (checked just above).
        unsafe { run(g, w, b, x, y) }
    } else {
        super::col2im::conv_transpose2d_f32_cols(g, w, b, x, y);
    }
}

/// int8 ConvTranspose2d through the f32 tiles: as [`super::col2im::conv_transpose2d_i8_f32`],
/// compiled for AVX when the CPU has it.
pub(super) fn conv_transpose2d_i8_f32<M>(
    m: &M,
    g: &super::ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    y: &mut [i8],
) -> bool
where
    M: super::conv::Mac<W = i8, X = i8, A = i32, Y = i8>,
{
    #[target_feature(enable = "avx")]
    fn run<M>(m: &M, g: &super::ConvGeom, w: &[i8], b: &[i32], x: &[i8], y: &mut [i8]) -> bool
    where
        M: super::conv::Mac<W = i8, X = i8, A = i32, Y = i8>,
    {
        super::col2im::conv_transpose2d_i8_tiles::<M, CONVT_NR>(m, g, w, b, x, y)
    }
    if has_avx2() {
        // SAFETY: the CPU has AVX and the OS saves its registers (checked just above).
        unsafe { run(m, g, w, b, x, y) }
    } else {
        super::col2im::conv_transpose2d_i8_f32(m, g, w, b, x, y)
    }
}

/// Inputs per SIMD step.
const STEP: usize = 16;

/// The whole blocks of [`STEP`] weights of a row.
#[inline(always)]
fn blocks(v: &[i8]) -> core::slice::Iter<'_, [i8; STEP]> {
    v.as_chunks::<STEP>().0.iter()
}

/// int8 Dense: the four-row `pmaddwd` kernel in AVX2 when the CPU has it (the whole layer,
/// requantisation included, compiled for AVX2), else in SSE2.
pub(super) fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &super::Requant<'_>, y: &mut [i8]) {
    #[target_feature(enable = "avx2")]
    fn run(w: &[i8], b: &[i32], x: &[i8], rq: &super::Requant<'_>, y: &mut [i8]) {
        super::dense::dense_i8_rows::<Avx2Rows>(w, b, x, rq, y);
    }
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and the OS saves its registers (checked just above).
        unsafe { run(w, b, x, rq, y) }
    } else {
        super::dense::dense_i8_rows::<Sse2Rows>(w, b, x, rq, y);
    }
}

/// Four rows in SSE2.
struct Sse2Rows;
/// Four rows in AVX2: only used inside [`dense_i8`]'s AVX2 branch.
struct Avx2Rows;

impl super::dense::Rows4 for Sse2Rows {
    #[inline(always)]
    fn dot4(w: &[i8], o: usize, rows: [&[i8]; 4], x: &[i16], xpad: Option<&[i16]>) -> [i32; 4] {
        dot4_i8_i16_padded::<false>(w, o, rows, x, xpad)
    }
}

impl super::dense::Rows4 for Avx2Rows {
    #[inline(always)]
    fn dot4(w: &[i8], o: usize, rows: [&[i8]; 4], x: &[i16], xpad: Option<&[i16]>) -> [i32; 4] {
        dot4_i8_i16_padded::<true>(w, o, rows, x, xpad)
    }

    #[inline(always)]
    fn rows8(
        w: &[i8],
        b: &[i32],
        x: &[i16],
        xpad: Option<&[i16]>,
        rq: &super::Requant<'_>,
        y: &mut [i8],
    ) -> Option<usize> {
        // SAFETY: `Avx2Rows` is only used after `has_avx2` said yes.
        unsafe { rows8_avx2(w, b, x, xpad, rq, y) }
    }

    #[inline(always)]
    fn finish4(acc: [i32; 4], o: usize, rq: &super::Requant<'_>) -> Option<[i8; 4]> {
        let end = o.checked_add(4)?;
        let mult = rq.multiplier.get(o..end)?.first_chunk::<4>()?;
        let shift = rq.shift.get(o..end)?.first_chunk::<4>()?;
        let min = i32::from(rq.min);
        let max = i32::from(rq.max);
        let vector = shift.iter().all(|s| (1..=62).contains(s))
            && (-128..=127).contains(&rq.out_zero_point)
            && min <= max;
        if !vector {
            return super::dense::finish4_scalar(acc, o, rq);
        }
        // SAFETY: `Avx2Rows` is only used after `has_avx2` said yes.
        Some(unsafe { requant4_avx2(acc, mult, shift, rq.out_zero_point, min, max) })
    }
}

/// The int8 Dense rows in groups of eight with AVX2 ([`super::dense::Rows4::rows8`]): each
/// block of 16 widened inputs is loaded once for eight rows, the eight sums are reduced
/// together into one vector, and requantised eight at a time in 32-bit lanes (four at a time in
/// 64-bit lanes when the narrow conditions do not hold). Only with `xpad` (rows read on to
/// a whole number of blocks, as in [`dot4_i8_i16_padded`]); groups whose last row has nothing
/// after it to read into are left to the four-row path. Returns the rows written.
#[target_feature(enable = "avx2")]
#[inline]
fn rows8_avx2(
    w: &[i8],
    b: &[i32],
    x: &[i16],
    xpad: Option<&[i16]>,
    rq: &super::Requant<'_>,
    y: &mut [i8],
) -> Option<usize> {
    let Some(xp) = xpad else { return Some(0) };
    let n = x.len();
    let span = xp.len();
    let mut o = 0usize;
    for (yo, bo) in y.chunks_exact_mut(8).zip(b.chunks_exact(8)) {
        // Rows o..o + 8, each read for `span` bytes from its start.
        let Some(block) = o
            .checked_add(7)
            .and_then(|last| last.checked_mul(n))
            .and_then(|start| start.checked_add(span))
            .and_then(|end| w.get(o.checked_mul(n)?..end))
        else {
            break;
        };
        let Some(sums) = dot8_avx2(block, n, xp) else {
            break;
        };
        let acc = _mm256_add_epi32(sums, load_i32x8(bo.first_chunk::<8>()?));
        let end = o.checked_add(8)?;
        let mult = rq.multiplier.get(o..end)?.first_chunk::<8>()?;
        let shift = rq.shift.get(o..end)?.first_chunk::<8>()?;
        if let Some(v) = requant8_narrow_avx2(acc, mult, shift, rq) {
            yo.copy_from_slice(&v);
        } else {
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` is 32 writable bytes; `storeu` has no alignment requirement.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
            let (lo, hi) = lanes.split_at(4);
            let lo = <Avx2Rows as super::dense::Rows4>::finish4(*lo.first_chunk::<4>()?, o, rq)?;
            let hi =
                <Avx2Rows as super::dense::Rows4>::finish4(*hi.first_chunk::<4>()?, o + 4, rq)?;
            let (ylo, yhi) = yo.split_at_mut(4);
            ylo.copy_from_slice(&lo);
            yhi.copy_from_slice(&hi);
        }
        o += 8;
    }
    Some(o)
}

/// Eight i32 from an array.
#[target_feature(enable = "avx2")]
#[inline]
fn load_i32x8(v: &[i32; 8]) -> __m256i {
    // SAFETY: `v` is 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// `Σ w·x` of the eight rows of `block` (rows `n` apart, each read for `xp.len()` weights, a
/// multiple of [`STEP`]), lane `r` for row `r`; `None` if `block` is shorter than
/// `7n + xp.len()`.
#[target_feature(enable = "avx2")]
#[inline]
fn dot8_avx2(block: &[i8], n: usize, xp: &[i16]) -> Option<__m256i> {
    let mut acc = [_mm256_setzero_si256(); 8];
    let (xb, _) = xp.as_chunks::<STEP>();
    let mut rows: [&[i8]; 8] = [&[]; 8];
    let mut start = 0;
    for row in rows.iter_mut() {
        *row = block.get(start..).unwrap_or_default();
        if row.len() < xb.len() * STEP {
            return None;
        }
        start += n;
    }
    for (k, xs) in xb.iter().enumerate() {
        // SAFETY: `xs` is 16 i16 = 32 readable bytes; `loadu` has no alignment requirement.
        let xv = unsafe { _mm256_loadu_si256(xs.as_ptr().cast()) };
        for (a, r) in acc.iter_mut().zip(&rows) {
            // SAFETY: every row holds at least `xb.len() * STEP` bytes (checked above), and
            // `k < xb.len()`: the 16 bytes at `k * STEP` are in the row.
            let wv = unsafe { _mm_loadu_si128(r.as_ptr().add(k * STEP).cast()) };
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(_mm256_cvtepi8_epi16(wv), xv));
        }
    }
    // Pair-wise horizontal adds: lane r of the two halves holds half of row r's sum.
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    let h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
    Some(_mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(h0, h1),
        _mm256_permute2x128_si256::<0x31>(h0, h1),
    ))
}

/// `reference::finish_i8` of eight accumulators in 32-bit lanes, when `requantize_narrow`
/// applies to all eight (`|acc| < 2^22` and `|mult| < 2^8`, so `|acc · mult| < 2^30`), every
/// shift is in `1..=30`, and the zero point and clamp bounds are int8 values with
/// `min <= max`; `None` otherwise (the caller then takes the 64-bit path). The exporter's
/// snapped scales always take this path.
#[target_feature(enable = "avx2")]
#[inline]
fn requant8_narrow_avx2(
    acc: __m256i,
    mult: &[i32; 8],
    shift: &[u8; 8],
    rq: &super::Requant<'_>,
) -> Option<[i8; 8]> {
    let (min, max) = (i32::from(rq.min), i32::from(rq.max));
    let zp = rq.out_zero_point;
    if !(-128..=127).contains(&zp) || min > max {
        return None;
    }
    let m = load_i32x8(mult);
    // SAFETY: `shift` is 8 readable bytes; `loadl_epi64` reads exactly 8, unaligned.
    let s = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(shift.as_ptr().cast()) });
    let one = _mm256_set1_epi32(1);
    let too_big = _mm256_or_si256(
        _mm256_srli_epi32::<22>(_mm256_abs_epi32(acc)),
        _mm256_srli_epi32::<8>(_mm256_abs_epi32(m)),
    );
    let shift_ok = _mm256_and_si256(
        _mm256_cmpgt_epi32(s, _mm256_setzero_si256()),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(31), s),
    );
    if _mm256_testz_si256(too_big, too_big) == 0 || _mm256_movemask_epi8(shift_ok) != -1 {
        return None;
    }
    // As `requantize_narrow`: p = acc·m exactly; q = (p + 2^(s-1) - 1 + ((p >> s) & 1)) >> s.
    let p = _mm256_mullo_epi32(acc, m);
    let half_minus_one = _mm256_sub_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(s, one)), one);
    let lsb = _mm256_and_si256(_mm256_srav_epi32(p, s), one);
    let q = _mm256_srav_epi32(
        _mm256_add_epi32(_mm256_add_epi32(p, half_minus_one), lsb),
        s,
    );
    // |q| < 2^30: adding the zero point cannot overflow (the scalar path saturates, to no
    // effect here).
    let v = _mm256_add_epi32(q, _mm256_set1_epi32(zp));
    let v = _mm256_min_epi32(
        _mm256_max_epi32(v, _mm256_set1_epi32(min)),
        _mm256_set1_epi32(max),
    );
    // In [min, max]: the saturating packs are exact. Within each 128-bit half, bytes 0..4
    // hold that half's four values.
    let b = _mm256_packs_epi16(_mm256_packs_epi32(v, v), _mm256_packs_epi32(v, v));
    let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(b)).to_le_bytes();
    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(b)).to_le_bytes();
    let [a0, a1, a2, a3] = lo.map(u8::cast_signed);
    let [a4, a5, a6, a7] = hi.map(u8::cast_signed);
    Some([a0, a1, a2, a3, a4, a5, a6, a7])
}

/// `clamp(requantize(acc, mult, shift) + zp, min, max)` for four outputs at once, equal to
/// `reference::finish_i8` when every shift is in `1..=62`, `zp` is an int8 value and
/// `min <= max` are int8 values (the caller checks). In 64-bit lanes: `p = acc · mult`
/// (`|p| <= 2^62`), `q = (p + 2^(s-1) - 1 + ((p >> s) & 1)) >> s` as in `requantize_wide`
/// (AVX2 has no arithmetic 64-bit shift: `v >> s` is computed as `((v ^ n) >>> s) ^ n` with
/// `n` the sign mask), then `q` is clamped to `±2^24` (which changes no result, since
/// `zp`, `min` and `max` lie within `±2^7`) so that the rest is exact in i32.
#[target_feature(enable = "avx2")]
#[inline]
fn requant4_avx2(
    acc: [i32; 4],
    mult: &[i32; 4],
    shift: &[u8; 4],
    zp: i32,
    min: i32,
    max: i32,
) -> [i8; 4] {
    let load = |v: &[i32; 4]| {
        // SAFETY: `v` is 16 readable bytes; `loadu` has no alignment requirement.
        _mm256_cvtepi32_epi64(unsafe { _mm_loadu_si128(v.as_ptr().cast()) })
    };
    let zero = _mm256_setzero_si256();
    let one = _mm256_set1_epi64x(1);
    let [s0, s1, s2, s3] = *shift;
    let s = _mm256_setr_epi64x(s0.into(), s1.into(), s2.into(), s3.into());
    // Arithmetic right shift by `s` of each 64-bit lane.
    let sra = |v: __m256i| {
        let n = _mm256_cmpgt_epi64(zero, v);
        _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, n), s), n)
    };
    let p = _mm256_mul_epi32(load(&acc), load(mult));
    let lsb = _mm256_and_si256(sra(p), one);
    let half_minus_one = _mm256_sub_epi64(_mm256_sllv_epi64(one, _mm256_sub_epi64(s, one)), one);
    let q = sra(_mm256_add_epi64(_mm256_add_epi64(p, half_minus_one), lsb));
    let limit = _mm256_set1_epi64x(1 << 24);
    let neg_limit = _mm256_set1_epi64x(-(1 << 24));
    let q = _mm256_blendv_epi8(q, limit, _mm256_cmpgt_epi64(q, limit));
    let q = _mm256_blendv_epi8(q, neg_limit, _mm256_cmpgt_epi64(neg_limit, q));
    // The low halves of the four lanes, now exact i32 values.
    let low = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
    let v = _mm_add_epi32(_mm256_castsi256_si128(low), _mm_set1_epi32(zp));
    let v = _mm_min_epi32(_mm_max_epi32(v, _mm_set1_epi32(min)), _mm_set1_epi32(max));
    // Each lane is in [min, max], int8 values: the low byte of each is the result.
    let bytes = _mm_shuffle_epi8(
        v,
        _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
    );
    _mm_cvtsi128_si32(bytes)
        .to_le_bytes()
        .map(|b| b.cast_signed())
}

/// `Σ w·x` in wrapping i32 for four rows of (at least) `x.len()` weights each; the same value
/// as `dense::dot4_i8_i16`. `AVX2` selects the AVX2 blocks: only instantiated with `true` where
/// the CPU is known to have AVX2.
#[inline(always)]
fn dot4_i8_i16<const AVX2: bool>(w: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let n = x.len();
    let [Some(w0), Some(w1), Some(w2), Some(w3)] = w.map(|r| r.get(..n)) else {
        return super::dense::dot4_i8_i16(w, x);
    };
    let (xb, xr) = x.as_chunks::<STEP>();
    let rows = blocks(w0).zip(blocks(w1)).zip(blocks(w2)).zip(blocks(w3));
    let blocks = rows.zip(xb);
    let mut s = if AVX2 {
        // SAFETY: `AVX2` is true only in `Avx2Rows`, used only after `has_avx2` said yes.
        unsafe { simd_blocks_avx2(blocks) }
    } else {
        // SAFETY: SSE2 is part of x86-64 (every x86-64 target enables it).
        unsafe { simd_blocks_sse2(blocks) }
    };
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
#[inline(always)]
fn dot4_i8_i16_padded<const AVX2: bool>(
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
            return dot4_i8_i16::<AVX2>([w0, w1, w2, w3], xp);
        }
    }
    dot4_i8_i16::<AVX2>(rows, x)
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
#[target_feature(enable = "sse2")]
#[inline]
fn simd_blocks_sse2(blocks: Blocks<'_>) -> [i32; 4] {
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
#[target_feature(enable = "avx2")]
#[inline]
fn simd_blocks_avx2(blocks: Blocks<'_>) -> [i32; 4] {
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
mod tests;
