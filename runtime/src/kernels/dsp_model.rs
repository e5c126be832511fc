//! Bit-exact Rust model of the Cortex-M4 DSP-extension int8 Dense (`dsp.rs`), run and tested
//! on every target; on `thumbv7em` the same driver runs with the inline-assembly row block.
//!
//! Scheme (after CMSIS-NN's `arm_nn_vec_mat_mult_t_s8`, with the input packed once):
//! - The input is packed once into a stack buffer: for each group of 4 inputs
//!   `x0 x1 x2 x3`, two words `(x0 - zp) | (x2 - zp) << 16` and `(x1 - zp) | (x3 - zp) << 16`
//!   (i16 halves). This needs `x - zp` to fit in i16 and at most [`MAX_PACKED_INPUTS`] inputs;
//!   otherwise the portable kernel runs.
//! - Each weight word `w0 w1 w2 w3` (little-endian) is widened by `SXTB16` to `(w0, w2)` and by
//!   `SXTB16 ..., ROR #8` to `(w1, w3)`, and two `SMLAD` add `w0·x0' + w2·x2'` and
//!   `w1·x1' + w3·x3'` to the row's accumulator (modulo 2^32, as the instruction does).
//! - Rows run four at a time; the last `n % 4` inputs and the last `out % 4` rows use the same
//!   arithmetic in Rust. Then `acc = bias + dot`, and the common requantisation.
//!
//! All sums wrap modulo 2^32 like the reference, so the result equals
//! `reference::dense_i8` bit for bit (the property tests check this model on the host).

use super::Requant;

/// Largest input length the packed path takes: the packed input lives on the stack
/// (`MAX_PACKED_INPUTS * 2` bytes).
pub const MAX_PACKED_INPUTS: usize = 512;

/// Packed words: two per group of four inputs.
const PACKED_WORDS: usize = MAX_PACKED_INPUTS / 2;

/// `SXTB16 rd, rm`: sign-extend bytes 0 and 2 to the low and high halfwords.
#[inline(always)]
pub fn sxtb16(w: u32) -> u32 {
    let lo = u32::from((w as u8 as i8 as i16).cast_unsigned());
    let hi = u32::from(((w >> 16) as u8 as i8 as i16).cast_unsigned());
    lo | hi << 16
}

/// `SXTB16 rd, rm, ROR #8`: sign-extend bytes 1 and 3.
#[inline(always)]
pub fn sxtb16_ror8(w: u32) -> u32 {
    sxtb16(w.rotate_right(8))
}

/// `SMLAD rd, rn, rm, ra`: `ra + rn.lo·rm.lo + rn.hi·rm.hi` (signed halves), modulo 2^32.
#[inline(always)]
pub fn smlad(rn: u32, rm: u32, ra: i32) -> i32 {
    let lo = i32::from(rn as u16 as i16) * i32::from(rm as u16 as i16);
    let hi = i32::from((rn >> 16) as u16 as i16) * i32::from((rm >> 16) as u16 as i16);
    ra.wrapping_add(lo).wrapping_add(hi)
}

/// `(a as u16) | (b as u16) << 16` of two i16 values.
#[inline(always)]
fn pack_pair(a: i16, b: i16) -> u32 {
    u32::from(a.cast_unsigned()) | u32::from(b.cast_unsigned()) << 16
}

/// Packs `x[..4·groups]` minus `zp` into `buf`; `None` when the packed path does not apply.
fn pack_input<'b>(x: &[i8], zp: i32, buf: &'b mut [u32; PACKED_WORDS]) -> Option<&'b [u32]> {
    // x - zp must fit in i16 for every int8 x.
    if !(-32640..=32640).contains(&zp) || x.len() > MAX_PACKED_INPUTS {
        return None;
    }
    let groups = x.len() / 4;
    let packed = buf.get_mut(..groups * 2)?;
    let off = |v: i8| i16::try_from(i32::from(v) - zp).unwrap_or(0);
    for ([a, b], [x0, x1, x2, x3]) in packed
        .as_chunks_mut::<2>()
        .0
        .iter_mut()
        .zip(x.as_chunks::<4>().0)
    {
        *a = pack_pair(off(*x0), off(*x2));
        *b = pack_pair(off(*x1), off(*x3));
    }
    Some(packed)
}

/// The Rust model of one row: the dot product of the packed groups.
#[inline(always)]
fn row_dot(row: &[i8], packed: &[u32]) -> i32 {
    let mut acc = 0i32;
    for (wg, [xa, xb]) in row.as_chunks::<4>().0.iter().zip(packed.as_chunks::<2>().0) {
        let w = u32::from_le_bytes(wg.map(i8::cast_unsigned));
        acc = smlad(sxtb16(w), *xa, acc);
        acc = smlad(sxtb16_ror8(w), *xb, acc);
    }
    acc
}

/// The Rust model of the four-row block: `rows` holds four rows of `n` weights; returns
/// `init[r]` plus row `r`'s packed-group dot product (wrapping).
pub(crate) fn rows4_model(rows: &[i8], n: usize, packed: &[u32], init: [i32; 4]) -> [i32; 4] {
    let mut out = init;
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(n)) {
        *o = o.wrapping_add(row_dot(row, packed));
    }
    out
}

/// [`super::requantize`] with a short path for the common case: `|acc| < 2^22`,
/// `0 <= m < 2^8` and `shift < 31` (the exporter's 7-bit multipliers), where the product fits
/// in 31 bits and the rounding is done in 32-bit arithmetic without branches on the shift.
/// Every other input takes [`super::requantize`]; the result is the same for all inputs
/// (tested against it).
#[inline(always)]
pub fn requantize_short(acc: i32, m: i32, shift: u8) -> i32 {
    // acc + 2^22 in [0, 2^23), m in [0, 2^8), shift in [0, 31): three unsigned compares.
    let short = (acc.wrapping_add(1 << 22).cast_unsigned() < 1 << 23)
        & (m.cast_unsigned() < 1 << 8)
        & (shift < 31);
    if !short {
        return super::requantize(acc, m, shift);
    }
    // |p| < 2^30. q = floor(p / 2^s), r = p - q 2^s in [0, 2^s). Round half to even: add one
    // when r > 2^(s-1), or r == 2^(s-1) and q is odd, i.e. when 2r + (q & 1) > 2^s
    // (2r < 2^31; for s = 0, r = 0 and the test is false).
    let p = acc.wrapping_mul(m);
    let s = u32::from(shift);
    let q = p >> s;
    let r = p.wrapping_sub(q << s).cast_unsigned();
    let up = (2 * r + (q & 1).cast_unsigned()) > 1u32 << s;
    q + i32::from(up)
}

/// Requantises one accumulator and clamps it to `[lo, hi]` (the steps of
/// `reference::finish_i8`, with the channel's parameters already fetched).
///
/// Out of line on microcontrollers: one copy serves the Dense and convolution kernels.
#[cfg_attr(target_pointer_width = "64", inline(always))]
#[cfg_attr(not(target_pointer_width = "64"), inline(never))]
pub(crate) fn finish(acc: i32, m: i32, s: u8, zp: i32, lo: i32, hi: i32) -> i8 {
    let v = requantize_short(acc, m, s).saturating_add(zp);
    // `lo` and `hi` come from i8, so the clamped value is in i8 range and the fallback never
    // happens.
    i8::try_from(v.max(lo).min(hi)).unwrap_or(0)
}

/// The driver shared by the model and the DSP kernel; `rows4(rows, n, packed, init)` returns
/// `init` plus the packed-group dot products of four consecutive rows of `n` weights.
///
/// Per row it only adds the tail inputs (when `n % 4 != 0`), requantises and stores: the
/// per-channel parameters are walked with `chunks_exact` beside the rows, so no lookup by
/// index remains in the loop.
#[inline(always)]
pub(crate) fn dense_i8_with(
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
    rows4: impl Fn(&[i8], usize, &[u32], [i32; 4]) -> [i32; 4],
) {
    let n = x.len();
    let mut buf = [0u32; PACKED_WORDS];
    let Some(packed) = pack_input(x, rq.in_zero_point, &mut buf).filter(|p| !p.is_empty()) else {
        // An input longer than the stack buffer, or a zero point outside i16: the portable
        // kernel; on Cortex-M4/M7 the reference (small code; no model of the firmware tables
        // comes near that size).
        #[cfg(not(tinygen_dsp))]
        super::dense::dense_i8(w, b, x, rq, y);
        #[cfg(tinygen_dsp)]
        super::reference::dense_i8(w, b, x, rq, y);
        return;
    };
    let head = packed.len() * 2; // inputs covered by the packed groups
    let x_tail = x.get(head..).unwrap_or_default();
    let zp_in = rq.in_zero_point;
    // Σ over the last n % 4 inputs of one row.
    let tail = |row: &[i8]| -> i32 {
        let w_tail = row.get(head..).unwrap_or_default();
        let mut acc = 0i32;
        for (&wv, &xv) in w_tail.iter().zip(x_tail) {
            let xo = i32::from(xv).wrapping_sub(zp_in);
            acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xo));
        }
        acc
    };
    let has_tail = !x_tail.is_empty();
    let (zp, lo, hi) = (rq.out_zero_point, i32::from(rq.min), i32::from(rq.max));
    // n > 0 from here on: the chunk sizes below are never zero (no panic path).
    let (Some(n4), false) = (n.checked_mul(4), n == 0) else {
        return;
    };
    // Only as many rows as every per-channel array covers.
    let rows_total = y
        .len()
        .min(b.len())
        .min(rq.multiplier.len())
        .min(rq.shift.len())
        .min(w.len().checked_div(n).unwrap_or(0));
    let blocks = rows_total / 4;
    let split = (
        y.split_at_mut_checked(blocks * 4),
        b.split_at_checked(blocks * 4),
        rq.multiplier.split_at_checked(blocks * 4),
        rq.shift.split_at_checked(blocks * 4),
        w.split_at_checked(blocks * n4),
    );
    let (
        Some((y4, y_rest)),
        Some((b4, b_rest)),
        Some((m4, m_rest)),
        Some((s4, s_rest)),
        Some((w4, w_rest)),
    ) = split
    else {
        return;
    };
    for ((((yq, wq), bq), mq), sq) in y4
        .chunks_exact_mut(4)
        .zip(w4.chunks_exact(n4))
        .zip(b4.chunks_exact(4))
        .zip(m4.chunks_exact(4))
        .zip(s4.chunks_exact(4))
    {
        let (Ok(init), Ok(m), Ok(s)) = (
            <[i32; 4]>::try_from(bq),
            <[i32; 4]>::try_from(mq),
            <[u8; 4]>::try_from(sq),
        ) else {
            return;
        };
        let mut acc = rows4(wq, n, packed, init);
        if has_tail {
            for (a, row) in acc.iter_mut().zip(wq.chunks_exact(n)) {
                *a = a.wrapping_add(tail(row));
            }
        }
        for (k, yo) in yq.iter_mut().enumerate().take(4) {
            // k < 4 = the length of every array here.
            if let (Some(&a), Some(&m), Some(&s)) = (acc.get(k), m.get(k), s.get(k)) {
                *yo = finish(a, m, s, zp, lo, hi);
            }
        }
    }
    let rest = rows_total - blocks * 4;
    for ((((yo, row), &bias), &m), &s) in y_rest
        .iter_mut()
        .zip(w_rest.chunks_exact(n))
        .zip(b_rest)
        .zip(m_rest)
        .zip(s_rest)
        .take(rest)
    {
        let acc = bias
            .wrapping_add(row_dot(row, packed))
            .wrapping_add(tail(row));
        *yo = finish(acc, m, s, zp, lo, hi);
    }
}

/// int8 Dense through the model of the DSP scheme; same contract as
/// [`super::dense_i8`], bit-exact with [`super::reference::dense_i8`].
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    dense_i8_with(w, b, x, rq, y, rows4_model);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: deterministic test values.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn requantize_short_equals_requantize() {
        // The edges of the short path's domain (acc = +-2^22, m = 0 / 2^8, shift 30 / 31),
        // every shift, exact ties, and random values inside and outside the domain.
        let accs = [
            0,
            1,
            -1,
            3,
            -3,
            (1 << 22) - 1,
            -(1 << 22),
            1 << 22,
            -(1 << 22) - 1,
            i32::MAX,
            i32::MIN,
        ];
        let ms = [0, 1, 2, 3, 127, 255, 256, -1, i32::MAX, i32::MIN];
        for &acc in &accs {
            for &m in &ms {
                for s in 0..=70u8 {
                    assert_eq!(
                        requantize_short(acc, m, s),
                        super::super::requantize(acc, m, s),
                        "acc {acc} m {m} shift {s}"
                    );
                }
            }
        }
        let mut st = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200_000 {
            let v = next(&mut st);
            let acc = match i % 3 {
                0 => (v as i32) >> 9, // |acc| <= 2^22
                1 => v as i32,
                // A multiple of a power of two: many exact ties after the shift.
                _ => ((v as i32) >> 12) << (v >> 40 & 7),
            };
            let m = if i % 5 == 0 {
                (v >> 32) as i32
            } else {
                (v >> 32) as i32 & 0x1ff
            };
            let s = (v >> 48) as u8 % 40;
            assert_eq!(
                requantize_short(acc, m, s),
                super::super::requantize(acc, m, s),
                "acc {acc} m {m} shift {s}"
            );
        }
    }
}
