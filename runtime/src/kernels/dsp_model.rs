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
    for (pw, xg) in packed.chunks_exact_mut(2).zip(x.chunks_exact(4)) {
        if let ([a, b], [x0, x1, x2, x3]) = (pw, xg) {
            *a = pack_pair(off(*x0), off(*x2));
            *b = pack_pair(off(*x1), off(*x3));
        }
    }
    Some(packed)
}

/// The Rust model of one row: the dot product of the packed groups.
#[inline(always)]
fn row_dot(row: &[i8], packed: &[u32]) -> i32 {
    let mut acc = 0i32;
    for (wg, xp) in row.chunks_exact(4).zip(packed.chunks_exact(2)) {
        if let ([w0, w1, w2, w3], [xa, xb]) = (wg, xp) {
            let w = u32::from_le_bytes([
                w0.cast_unsigned(),
                w1.cast_unsigned(),
                w2.cast_unsigned(),
                w3.cast_unsigned(),
            ]);
            acc = smlad(sxtb16(w), *xa, acc);
            acc = smlad(sxtb16_ror8(w), *xb, acc);
        }
    }
    acc
}

/// The Rust model of the four-row block: `rows` holds four rows of `n` weights.
pub(crate) fn rows4_model(rows: &[i8], n: usize, packed: &[u32]) -> [i32; 4] {
    let mut out = [0i32; 4];
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(n)) {
        *o = row_dot(row, packed);
    }
    out
}

/// The driver shared by the model and the DSP kernel; `rows4(rows, n, packed)` computes the
/// packed-group dot products of four consecutive rows of `n` weights.
#[inline(always)]
pub(crate) fn dense_i8_with(
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
    rows4: impl Fn(&[i8], usize, &[u32]) -> [i32; 4],
) {
    let n = x.len();
    let mut buf = [0u32; PACKED_WORDS];
    let Some(packed) = pack_input(x, rq.in_zero_point, &mut buf).filter(|p| !p.is_empty()) else {
        super::dense::dense_i8(w, b, x, rq, y);
        return;
    };
    let head = packed.len() * 2; // inputs covered by the packed groups
    let x_tail = x.get(head..).unwrap_or_default();
    // acc = bias + packed dot + Σ over the last n % 4 inputs.
    let finish = |o: usize, bias: i32, dot: i32, row: &[i8]| {
        let w_tail = row.get(head..).unwrap_or_default();
        let mut acc = bias.wrapping_add(dot);
        for (&wv, &xv) in w_tail.iter().zip(x_tail) {
            let xo = i32::from(xv).wrapping_sub(rq.in_zero_point);
            acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xo));
        }
        super::reference::finish_i8(acc, o, rq)
    };
    let mut o = 0;
    let Some(n4) = n.checked_mul(4) else { return };
    for ((yq, bq), wq) in y
        .chunks_exact_mut(4)
        .zip(b.chunks_exact(4))
        .zip(w.chunks_exact(n4))
    {
        let dots = rows4(wq, n, packed);
        for (((yo, &bias), dot), row) in yq.iter_mut().zip(bq).zip(dots).zip(wq.chunks_exact(n)) {
            let Some(v) = finish(o, bias, dot, row) else {
                return;
            };
            *yo = v;
            o += 1;
        }
    }
    let rows = w.get(o * n..).unwrap_or_default().chunks_exact(n);
    let b_rest = b.get(o..).unwrap_or_default();
    for ((yo, &bias), row) in y
        .get_mut(o..)
        .unwrap_or_default()
        .iter_mut()
        .zip(b_rest)
        .zip(rows)
    {
        let Some(v) = finish(o, bias, row_dot(row, packed), row) else {
            return;
        };
        *yo = v;
        o += 1;
    }
}

/// int8 Dense through the model of the DSP scheme; same contract as
/// [`super::dense_i8`], bit-exact with [`super::reference::dense_i8`].
pub fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    dense_i8_with(w, b, x, rq, y, rows4_model);
}
