//! Fast Dense kernels (portable Rust, written for the auto-vectoriser).

use super::Requant;

/// Lanes of the independent partial sums: two SSE/NEON vectors of f32, or eight i32.
const LANES: usize = 8;

/// Dot product with [`LANES`] independent partial sums (vectorises; the order of the sum
/// differs from the sequential one, within the tolerance the tests name).
#[inline(always)]
fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let wc = w.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (wv, xv) in wc.zip(xc) {
        for ((a, &p), &q) in acc.iter_mut().zip(wv).zip(xv) {
            *a += p * q;
        }
    }
    for ((a, &p), &q) in acc.iter_mut().zip(wr).zip(xr) {
        *a += p * q;
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// `acc[l] += w[l] * x[l]` on one block of [`LANES`].
#[inline(always)]
fn fma_lanes(acc: &mut [f32; LANES], w: &[f32; LANES], x: &[f32; LANES]) {
    for ((a, &p), &q) in acc.iter_mut().zip(w).zip(x) {
        *a += p * q;
    }
}

/// Horizontal sum of the lanes, pairwise.
#[inline(always)]
fn hsum(a: [f32; LANES]) -> f32 {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = a;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// The whole blocks of [`LANES`] of a slice.
#[inline(always)]
fn blocks(v: &[f32]) -> core::slice::Iter<'_, [f32; LANES]> {
    v.as_chunks::<LANES>().0.iter()
}

/// Four dot products sharing `x`: each input block is loaded once per four rows.
#[inline(always)]
fn dot4_f32(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let [w0, w1, w2, w3] = w;
    let mut a = [[0.0f32; LANES]; 4];
    let rows = blocks(w0).zip(blocks(w1)).zip(blocks(w2)).zip(blocks(w3));
    let [a0, a1, a2, a3] = &mut a;
    for ((((c0, c1), c2), c3), xv) in rows.zip(blocks(x)) {
        fma_lanes(a0, c0, xv);
        fma_lanes(a1, c1, xv);
        fma_lanes(a2, c2, xv);
        fma_lanes(a3, c3, xv);
    }
    let xr = x.as_chunks::<LANES>().1;
    let mut out = [0.0f32; 4];
    for ((o, acc), row) in out.iter_mut().zip(a.iter_mut()).zip([w0, w1, w2, w3]) {
        for ((s, &p), &q) in acc.iter_mut().zip(row.as_chunks::<LANES>().1).zip(xr) {
            *s += p * q;
        }
        *o = hsum(*acc);
    }
    out
}

/// `y = W x + b`, `w`: `[out, in]`.
pub(crate) fn dense_f32(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        for (yo, bo) in y.iter_mut().zip(b) {
            *yo = *bo;
        }
        return;
    }
    let Some(n4) = n.checked_mul(4) else { return };
    let mut yq = y.chunks_exact_mut(4);
    let mut bq = b.chunks_exact(4);
    let mut wq = w.chunks_exact(n4);
    let mut done = 0;
    for ((yo, bo), wr) in (&mut yq).zip(&mut bq).zip(&mut wq) {
        let (w0, r) = wr.split_at(n);
        let (w1, r) = r.split_at(n);
        let (w2, w3) = r.split_at(n);
        let d = dot4_f32([w0, w1, w2, w3], x);
        for ((o, &bb), dd) in yo.iter_mut().zip(bo).zip(d) {
            *o = bb + dd;
        }
        done += 4;
    }
    let w_rest = w.get(done * n..).unwrap_or_default();
    let y_rest = y.get_mut(done..).unwrap_or_default();
    let b_rest = b.get(done..).unwrap_or_default();
    for ((yo, bo), wr) in y_rest.iter_mut().zip(b_rest).zip(w_rest.chunks_exact(n)) {
        *yo = bo + dot_f32(wr, x);
    }
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

/// The whole groups of four rows of [`dense_i8`]'s buffered path (`xbuf[..n]` holds `x - zp`,
/// zeros after): the number of rows written, `None` if a multiplier or shift is missing.
#[cfg(target_pointer_width = "64")]
fn rows4(
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
    let mut o = 0;
    for ((yq, bq), wq) in y
        .chunks_exact_mut(4)
        .zip(b.chunks_exact(4))
        .zip(w.chunks_exact(n4))
    {
        let (w0, r) = wq.split_at(n);
        let (w1, r) = r.split_at(n);
        let (w2, w3) = r.split_at(n);
        #[cfg(target_arch = "x86_64")]
        let d = super::x86::dot4_i8_i16_padded(w, o, [w0, w1, w2, w3], x, xpad);
        #[cfg(not(target_arch = "x86_64"))]
        let d = dot4_i8_i16([w0, w1, w2, w3], x);
        for ((yo, bo), dd) in yq.iter_mut().zip(bq).zip(d) {
            *yo = super::reference::finish_i8(bo.wrapping_add(dd), o, rq)?;
            o += 1;
        }
    }
    Some(o)
}

/// int8 Dense. When the input fits [`XW`] and `x - zp` fits i16 (every real zero point), the
/// input is widened once to `x - zp` in i16 and each row is an i8 × i16 dot product the
/// compiler turns into pair-wise multiply-adds. Otherwise `Σ w·(x - zp) = Σ w·x - zp·Σ w`
/// (exact modulo 2^32, like the reference).
pub(crate) fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
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
        let Some(o) = rows4(w, b, &buf, n, rq, y) else {
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
