//! Fast Dense kernels (portable Rust, written for the auto-vectoriser).

use super::Requant;
use crate::format;

/// Lanes of the independent partial sums of the int8 row dot product: eight i32.
const LANES: usize = 8;

/// Outputs of one f32 Dense panel.
pub(super) const PANEL_LEN: usize = format::DENSE_PANEL;
use PANEL_LEN as PANEL;

/// Outputs accumulated together within a panel on 64-bit hosts: the whole panel (eight SSE or
/// four AVX registers, enough independent additions to hide their latency). 32-bit
/// microcontrollers take eight ([`panel_f32_by8`]: their 32 single-precision registers hold
/// eight sums, the eight weights of an input and the input). Each output's sum is the same
/// sequence of operations either way.
#[cfg(target_pointer_width = "64")]
const GROUP: usize = PANEL;

/// Eight outputs' sums `acc[j] + Σ w[j]·x` over `rows` (eight weights and the input each), in
/// row order, with the eight sums in named locals: the compiler keeps them in registers without
/// unrolling a loop (which it does not at opt-level "s"), one multiply and one add per term
/// (no FMA, so every target rounds the same way).
#[inline(always)]
fn sum8<'a>(acc: [f32; 8], rows: impl Iterator<Item = (&'a [f32; 8], f32)>) -> [f32; 8] {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = acc;
    for (&[w0, w1, w2, w3, w4, w5, w6, w7], xi) in rows {
        a0 += w0 * xi;
        a1 += w1 * xi;
        a2 += w2 * xi;
        a3 += w3 * xi;
        a4 += w4 * xi;
        a5 += w5 * xi;
        a6 += w6 * xi;
        a7 += w7 * xi;
    }
    [a0, a1, a2, a3, a4, a5, a6, a7]
}

/// [`panel_f32`] eight outputs at a time through [`sum8`] (the 32-bit microcontrollers' build;
/// tested on every target).
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[inline(always)]
pub(super) fn panel_f32_by8(w: &[[f32; PANEL]], b: &[f32; PANEL], x: &[f32], y: &mut [f32; PANEL]) {
    let groups = b.as_chunks::<8>().0.iter();
    for (g, (bg, yg)) in groups.zip(y.as_chunks_mut::<8>().0).enumerate() {
        let rows = w.iter().map_while(|row| row.as_chunks::<8>().0.get(g));
        *yg = sum8(*bg, rows.zip(x.iter().copied()));
    }
}

/// One full panel: `y[j] = b[j] + Σ_i w[i][j] · x[i]` in input order, `w`: `[in][PANEL]` with
/// its outputs taken [`GROUP`] at a time (a stride of [`PANEL`] between inputs).
#[cfg(not(target_pointer_width = "64"))]
#[inline(always)]
pub(super) fn panel_f32(w: &[[f32; PANEL]], b: &[f32; PANEL], x: &[f32], y: &mut [f32; PANEL]) {
    panel_f32_by8(w, b, x, y);
}

/// See above.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(super) fn panel_f32(w: &[[f32; PANEL]], b: &[f32; PANEL], x: &[f32], y: &mut [f32; PANEL]) {
    let groups = b.as_chunks::<GROUP>().0.iter();
    for (g, (bg, yg)) in groups.zip(y.as_chunks_mut::<GROUP>().0).enumerate() {
        let mut acc = *bg;
        for (row, &xi) in w.iter().zip(x) {
            let Some(wg) = row.as_chunks::<GROUP>().0.get(g) else {
                return;
            };
            for (a, &wj) in acc.iter_mut().zip(wg) {
                *a += wj * xi;
            }
        }
        *yg = acc;
    }
}

/// A last panel of `r = y.len() < PANEL` outputs, `w`: `[in][r]`, eight outputs at a time
/// (a stride of `r` between inputs), then the last `r % 8` one by one.
fn panel_rest_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    const EIGHT: usize = 8;
    let r = y.len();
    let (yg, yt) = y.as_chunks_mut::<EIGHT>();
    let (bg, bt) = b.as_chunks::<EIGHT>();
    for (g, (yo, bo)) in yg.iter_mut().zip(bg).enumerate() {
        let first = w.get(g * EIGHT..).unwrap_or_default();
        let rows = first.chunks(r).map_while(|row| row.first_chunk::<EIGHT>());
        *yo = sum8(*bo, rows.zip(x.iter().copied()));
    }
    let done = r - yt.len();
    for (j, (yo, &bo)) in yt.iter_mut().zip(bt).enumerate() {
        let mut acc = bo;
        let column = w.get(done + j..).unwrap_or_default();
        for (wj, &xi) in column.iter().step_by(r).zip(x) {
            acc += wj * xi;
        }
        *yo = acc;
    }
}

/// `y = W x + b`, `w` in panels ([`format::DENSE_PANEL`]): bit-identical with
/// `reference::dense_f32`, since every output is summed in the same order.
pub(crate) fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32], full: FullPanel) {
    let n = x.len();
    let Some(panel_len) = n.checked_mul(PANEL) else {
        return;
    };
    let mut rest = w;
    let yp = y.as_chunks_mut::<PANEL>();
    let bp = b.as_chunks::<PANEL>();
    for (yo, bo) in yp.0.iter_mut().zip(bp.0) {
        let Some((panel, r)) = rest.split_at_checked(panel_len) else {
            return;
        };
        rest = r;
        full(panel.as_chunks::<PANEL>().0, bo, x, yo);
    }
    if !yp.1.is_empty() {
        panel_rest_f32(rest, bp.1, x, yp.1);
    }
}

/// The kernel of one full panel (portable, or a SIMD build of the same code on x86-64).
pub(crate) type FullPanel = fn(&[[f32; PANEL]], &[f32; PANEL], &[f32], &mut [f32; PANEL]);

/// The portable full-panel kernel.
pub(crate) fn panel_f32_portable(
    w: &[[f32; PANEL]],
    b: &[f32; PANEL],
    x: &[f32],
    y: &mut [f32; PANEL],
) {
    panel_f32(w, b, x, y);
}

/// `(Σ w·x, Σ w)` of one int8 row, in wrapping i32 with [`LANES`] partial sums.
#[inline(always)]
fn dot_i8(w: &[i8], x: &[i8]) -> (i32, i32) {
    let mut s = [0i32; LANES];
    let mut t = [0i32; LANES];
    let wc = w.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (wv, xv) in wc.zip(xc) {
        for (((a, c), &p), &q) in s.iter_mut().zip(t.iter_mut()).zip(wv).zip(xv) {
            *a = a.wrapping_add(i32::from(p) * i32::from(q));
            *c = c.wrapping_add(i32::from(p));
        }
    }
    for (((a, c), &p), &q) in s.iter_mut().zip(t.iter_mut()).zip(wr).zip(xr) {
        *a = a.wrapping_add(i32::from(p) * i32::from(q));
        *c = c.wrapping_add(i32::from(p));
    }
    let sum = |v: [i32; LANES]| v.iter().fold(0i32, |acc, &e| acc.wrapping_add(e));
    (sum(s), sum(t))
}

/// Inputs held widened to i16 on the stack by [`dense_i8`], 2 bytes each: 1 KiB on 64-bit
/// hosts, 256 bytes on 32-bit microcontrollers (where a longer input takes the unbuffered path).
#[cfg(target_pointer_width = "64")]
const XW: usize = 512;
/// See above.
#[cfg(not(target_pointer_width = "64"))]
const XW: usize = 128;

/// `Σ w·x` of i8 × i16 in wrapping i32 for four rows sharing `x` (each input is loaded once
/// per four rows), in plain Rust: four reductions in one loop. Exact: each product is below
/// 2^23 in magnitude and i32 addition modulo 2^32 is associative, so any order gives the
/// reference's value. On x86-64 the SIMD version in `x86.rs` is used instead; this one is
/// what it is tested against.
#[cfg_attr(
    any(target_arch = "x86_64", not(target_pointer_width = "64")),
    allow(dead_code)
)]
#[inline(always)]
pub(super) fn dot4_i8_i16(w: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let [w0, w1, w2, w3] = w;
    let mut s = [0i32; 4];
    let rows = w0.iter().zip(w1).zip(w2).zip(w3);
    for ((((&p0, &p1), &p2), &p3), &q) in rows.zip(x) {
        let q = i32::from(q);
        s[0] = s[0].wrapping_add(i32::from(p0) * q);
        s[1] = s[1].wrapping_add(i32::from(p1) * q);
        s[2] = s[2].wrapping_add(i32::from(p2) * q);
        s[3] = s[3].wrapping_add(i32::from(p3) * q);
    }
    s
}

/// `Σ w·x` of one row (the rows left over by [`dot4_i8_i16`]).
#[inline(always)]
fn dot_i8_i16(w: &[i8], x: &[i16]) -> i32 {
    w.iter().zip(x).fold(0i32, |s, (&p, &q)| {
        s.wrapping_add(i32::from(p) * i32::from(q))
    })
}

/// Four rows' `Σ w·x` for [`dense_i8_rows`] (used on 64-bit hosts): rows `o..o + 4` of the
/// `[rows, n]` matrix `w` (`rows` are those four rows, `x` their `n` inputs; `xpad`, when
/// given, the inputs followed by zeros up to a whole SIMD block, see `x86::padded_inputs`).
pub(super) trait Rows4 {
    #[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
    fn dot4(w: &[i8], o: usize, rows: [&[i8]; 4], x: &[i16], xpad: Option<&[i16]>) -> [i32; 4];

    /// Rows in groups of eight before the groups of four, if the kernel has them (`x` the
    /// widened inputs, `xpad` as for [`Rows4::dot4`]): the number of leading rows written;
    /// `None` if a multiplier or shift is missing.
    #[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
    #[inline(always)]
    fn rows8(
        w: &[i8],
        b: &[i32],
        x: &[i16],
        xpad: Option<&[i16]>,
        rq: &Requant<'_>,
        y: &mut [i8],
    ) -> Option<usize> {
        let _ = (w, b, x, xpad, rq, y);
        Some(0)
    }

    /// The outputs `o..o + 4` from their accumulators (`reference::finish_i8` of each);
    /// `None` if a multiplier or shift is missing.
    #[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
    #[inline(always)]
    fn finish4(acc: [i32; 4], o: usize, rq: &Requant<'_>) -> Option<[i8; 4]> {
        finish4_scalar(acc, o, rq)
    }
}

/// [`Rows4::finish4`] one output at a time.
#[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
#[inline(always)]
pub(super) fn finish4_scalar(acc: [i32; 4], o: usize, rq: &Requant<'_>) -> Option<[i8; 4]> {
    let [a0, a1, a2, a3] = acc;
    Some([
        super::reference::finish_i8(a0, o, rq)?,
        super::reference::finish_i8(a1, o + 1, rq)?,
        super::reference::finish_i8(a2, o + 2, rq)?,
        super::reference::finish_i8(a3, o + 3, rq)?,
    ])
}

/// [`Rows4`] in plain Rust.
#[cfg(not(target_arch = "x86_64"))]
pub(super) struct PlainRows;

#[cfg(not(target_arch = "x86_64"))]
impl Rows4 for PlainRows {
    #[inline(always)]
    fn dot4(_: &[i8], _: usize, rows: [&[i8]; 4], x: &[i16], _: Option<&[i16]>) -> [i32; 4] {
        dot4_i8_i16(rows, x)
    }
}

/// The whole groups of four rows of [`dense_i8`]'s buffered path (`xbuf[..n]` holds `x - zp`,
/// zeros after): the number of rows written, `None` if a multiplier or shift is missing.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn rows4<R: Rows4>(
    w: &[i8],
    b: &[i32],
    xbuf: &[i16],
    n: usize,
    rq: &Requant<'_>,
    y: &mut [i8],
) -> Option<usize> {
    let n4 = n.checked_mul(4)?;
    let x = xbuf.get(..n)?;
    #[cfg(target_arch = "x86_64")]
    let xpad = super::x86::padded_inputs(xbuf, n);
    #[cfg(not(target_arch = "x86_64"))]
    let xpad = None;
    let mut o = R::rows8(w, b, x, xpad, rq, y)?;
    for ((yq, bq), wq) in y
        .get_mut(o..)?
        .chunks_exact_mut(4)
        .zip(b.get(o..)?.chunks_exact(4))
        .zip(w.get(o.checked_mul(n)?..)?.chunks_exact(n4))
    {
        let (w0, r) = wq.split_at(n);
        let (w1, r) = r.split_at(n);
        let (w2, w3) = r.split_at(n);
        let d = R::dot4(w, o, [w0, w1, w2, w3], x, xpad);
        let mut acc = [0i32; 4];
        for ((a, &bo), dd) in acc.iter_mut().zip(bq).zip(d) {
            *a = bo.wrapping_add(dd);
        }
        yq.copy_from_slice(&R::finish4(acc, o, rq)?);
        o += 4;
    }
    Some(o)
}

/// int8 Dense. When the input fits [`XW`] and `x - zp` fits i16 (every real zero point), the
/// input is widened once to `x - zp` in i16 and each row is an i8 × i16 dot product the
/// compiler turns into pair-wise multiply-adds. Otherwise `Σ w·(x - zp) = Σ w·x - zp·Σ w`
/// (exact modulo 2^32, like the reference).
pub(crate) fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    super::x86::dense_i8(w, b, x, rq, y);
    #[cfg(not(target_arch = "x86_64"))]
    dense_i8_rows::<PlainRows>(w, b, x, rq, y);
}

/// [`dense_i8`] with the four-row dot products of `R` (64-bit hosts; 32-bit targets take one
/// row at a time).
#[inline(always)]
pub(super) fn dense_i8_rows<R: Rows4>(
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    let n = x.len();
    if n == 0 {
        for (o, (yo, bo)) in y.iter_mut().zip(b).enumerate() {
            let Some(v) = super::reference::finish_i8(*bo, o, rq) else {
                return;
            };
            *yo = v;
        }
        return;
    }
    // x - zp in [-128 - zp, 127 - zp] fits i16 for these zero points.
    let zp_fits = (-32640..=32640).contains(&rq.in_zero_point);
    if n <= XW && zp_fits {
        // Zeros after the first n (the x86-64 rows read on into them).
        let mut buf = [0i16; XW];
        for (d, &v) in buf.iter_mut().zip(x) {
            // In i16 range by `zp_fits`; the fallback never happens.
            *d = i16::try_from(i32::from(v) - rq.in_zero_point).unwrap_or(0);
        }
        let xw = buf.get(..n).unwrap_or_default();
        // 64-bit hosts: four rows per input load. 32-bit microcontrollers: one row at a time
        // (400 bytes less code; the Cortex-M4 has its own kernel in `dsp.rs`).
        #[cfg(target_pointer_width = "64")]
        let Some(o) = rows4::<R>(w, b, &buf, n, rq, y) else {
            return;
        };
        #[cfg(not(target_pointer_width = "64"))]
        let o = 0;
        let rest = y.iter_mut().zip(b).zip(w.chunks_exact(n)).skip(o);
        for (o, ((yo, bo), wr)) in rest.enumerate().map(|(i, e)| (o + i, e)) {
            let acc = bo.wrapping_add(dot_i8_i16(wr, xw));
            let Some(v) = super::reference::finish_i8(acc, o, rq) else {
                return;
            };
            *yo = v;
        }
        return;
    }
    let rows = w.chunks_exact(n);
    for (o, ((yo, bo), wr)) in y.iter_mut().zip(b).zip(rows).enumerate() {
        let (wx, ws) = dot_i8(wr, x);
        let acc = bo
            .wrapping_add(wx)
            .wrapping_sub(ws.wrapping_mul(rq.in_zero_point));
        let Some(v) = super::reference::finish_i8(acc, o, rq) else {
            return;
        };
        *yo = v;
    }
}

/// ReLU in place, as a select the compiler vectorises (the reference's conditional store does
/// not vectorise). Same values bit for bit: `-0.0` and NaN pass through unchanged.
pub(crate) fn relu_f32(x: &mut [f32]) {
    for v in x {
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

/// LeakyReLU in place, as a select (same values bit for bit as the reference).
pub(crate) fn leaky_relu_f32(x: &mut [f32], alpha: f32) {
    for v in x {
        *v = if *v < 0.0 { *v * alpha } else { *v };
    }
}

#[cfg(test)]
mod tests {
    use super::super::{reference, Requant};
    use super::XW;

    // Inputs longer than the widened buffer, and a zero point whose `x - zp` does not fit
    // i16: both take the weight-sum path, which must match the reference exactly.
    #[test]
    fn int8_unbuffered_paths() {
        let n = XW + 37;
        let rows = 5;
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8 as i8
        };
        let w: heapless::Vec<i8, 4096> = (0..n * rows).map(|_| next()).collect();
        let x: heapless::Vec<i8, 1024> = (0..n).map(|_| next()).collect();
        let b = [5, -7, 1000, -1000, 0];
        for (len, zp) in [(n, -3), (40, 40_000), (40, -40_000)] {
            let rq = Requant {
                in_zero_point: zp,
                out_zero_point: 3,
                multiplier: &[77; 5],
                shift: &[14; 5],
                min: -128,
                max: 127,
            };
            let (w, x) = (&w[..len * rows], &x[..len]);
            let mut fast = [0i8; 5];
            super::dense_i8(w, &b, x, &rq, &mut fast);
            let mut want = [1i8; 5];
            reference::dense_i8(w, &b, x, &rq, &mut want);
            assert_eq!(fast, want, "n {len} zp {zp}");
        }
    }
}

#[cfg(test)]
mod f32_tests {
    use super::super::reference;
    use super::{dense_f32, panel_f32_by8, PANEL};

    /// The microcontrollers' eight-at-a-time panels give the reference's bits (every output
    /// summed in input order), for full panels and a last partial one.
    #[test]
    fn eight_output_groups_keep_the_reference_bits() {
        let mut s = 3u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (n_in, n_out) in [(20, 2 * PANEL + 16), (37, PANEL + 3), (5, 8)] {
            let w: heapless::Vec<f32, 8192> = (0..n_in * n_out).map(|_| next()).collect();
            let b: heapless::Vec<f32, 128> = (0..n_out).map(|_| next()).collect();
            let x: heapless::Vec<f32, 64> = (0..n_in).map(|_| next()).collect();
            let mut packed = [0.0f32; 8192];
            for o in 0..n_out {
                for i in 0..n_in {
                    let p = crate::format::dense_panel_index(n_out, n_in, o, i).unwrap();
                    packed[p] = w[o * n_in + i];
                }
            }
            let mut want = [f32::NAN; 128];
            reference::dense_f32(&w, &b, &x, &mut want[..n_out]);
            let mut got = [f32::NAN; 128];
            dense_f32(
                &packed[..n_in * n_out],
                &b,
                &x,
                &mut got[..n_out],
                panel_f32_by8,
            );
            let bits = |v: &[f32]| {
                v.iter()
                    .map(|f| f.to_bits())
                    .collect::<heapless::Vec<u32, 128>>()
            };
            assert_eq!(
                bits(&got[..n_out]),
                bits(&want[..n_out]),
                "{n_in} -> {n_out}"
            );
        }
    }
}
