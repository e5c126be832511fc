//! Packed int8 convolutions for the Cortex-M4 DSP extension, and their bit-exact Rust model
//! (run and tested on every target; on `thumbv7em` the same driver runs with the
//! inline-assembly block of `dsp.rs`).
//!
//! Both convolutions become dense dot products over the input channels:
//! - The input is copied once per layer, channel-last, into a stack buffer: pixel `p` holds
//!   `2·⌈in_ch / 8⌉` words, word `g` the four bytes `x[4g..4g + 4][p]` (zeros past `in_ch`).
//! - For a block of four output channels and a set of taps, the weights are packed once into
//!   i16 pairs in the order `SXTB16` unpacks an input word: for four input channels `c0..c3`
//!   of one tap and one output channel, the words `w[c0] | w[c2] << 16` and
//!   `w[c1] | w[c3] << 16`; the four output channels' pairs follow each other, so one input
//!   word (widened by `SXTB16` and `SXTB16 ..., ROR #8`) feeds eight `SMLAD`.
//! - ConvTranspose2d runs per output phase `(oy mod s_h, ox mod s_w)`: the taps landing on a
//!   phase are an ordinary stride-1 convolution of the input, the phase's taps are packed once
//!   and each output of the phase is the sum over its valid taps of one dot product.
//!   Conv2d packs all taps at once.
//! - The input is used as it is (no zero point subtracted): `Σ w·(x - zp) = Σ w·x - zp·Σ w`,
//!   and `-zp·Σ w` of each tap and output channel is added with the tap. Every sum wraps
//!   modulo 2^32 like the reference's, so the result equals `reference::conv_transpose2d_i8` /
//!   `reference::conv2d_i8` bit for bit (the property tests check this on the host).
//!
//! A geometry whose packed input or weights do not fit the stack buffers is left to the
//! portable kernels (the functions return `false`).

use super::dsp_model::{finish, smlad, sxtb16, sxtb16_ror8};
use super::reference::Sizes;
use super::{ConvGeom, Requant};
use core::num::NonZeroUsize;

/// Output channels computed together.
const R: usize = 4;
/// Largest channel-last input copy, in bytes (input channels rounded up to 4, times pixels).
pub const MAX_INPUT_BYTES: usize = 8192;
/// The input copy in words.
const X_WORDS: usize = MAX_INPUT_BYTES / 4;
/// Largest packed weight block, in words: 8 per tap and group of four input channels.
/// (ConvTranspose2d: one stride phase; for a 4x4 kernel of stride 2, 128 input channels.)
pub const MAX_WEIGHT_WORDS: usize = 512;
/// The same for Conv2d, whose block holds the whole kernel (4x4: 64 input channels; 8 KiB of
/// stack).
pub const MAX_CONV2D_WEIGHT_WORDS: usize = 2048;
/// Largest number of taps packed together (one phase of a transposed convolution, or the
/// whole kernel of a convolution).
pub const MAX_TAPS: usize = 16;

/// The dot products of one output pixel with four output channels' packed weights: `acc[r]`
/// plus `Σ_g sxtb16(x[g])·(w[8g + 2r] lanes) + sxtb16_ror8(x[g])·(w[8g + 2r + 1] lanes)`,
/// wrapping, over the `x.len()` input words (`w` holds `8·x.len()` words).
pub type Dot4 = fn([i32; R], &[u32], &[u32]) -> [i32; R];

/// The Rust model of [`Dot4`] (the assembly in `dsp.rs` computes the same sums).
pub fn dot4_model(acc: [i32; R], x: &[u32], w: &[u32]) -> [i32; R] {
    let mut a = acc;
    for (&xw, wg) in x.iter().zip(w.as_chunks::<8>().0) {
        let (lo, hi) = (sxtb16(xw), sxtb16_ror8(xw));
        for (ar, [w0, w1]) in a.iter_mut().zip(wg.as_chunks::<2>().0) {
            *ar = smlad(*w0, lo, *ar);
            *ar = smlad(*w1, hi, *ar);
        }
    }
    a
}

/// Copies `x` (`[in_ch, plane]`) channel-last into `buf`, `groups` words per pixel;
/// `None` if it does not fit.
fn pack_input<'b>(
    x: &[i8],
    in_ch: usize,
    plane: usize,
    groups: usize,
    buf: &'b mut [u32; X_WORDS],
) -> Option<&'b [u32]> {
    let words = plane.checked_mul(groups)?;
    let dst = buf.get_mut(..words)?;
    for (ic, src) in x.chunks(plane.max(1)).take(in_ch).enumerate() {
        let shift = 8 * (ic % 4);
        let mut at = ic / 4;
        for &v in src {
            if let Some(d) = dst.get_mut(at) {
                *d |= u32::from(v.cast_unsigned()) << shift;
            }
            at += groups;
        }
    }
    Some(dst)
}

/// The taps of a block: where each reads the input, and its weights.
struct Taps {
    /// Number of taps.
    n: usize,
    /// Input row of output row `j` for tap `t`: `j·step_y + dy[t]` (wrapping; outside `0..in_h`
    /// means the tap is in the padding).
    dy: [usize; MAX_TAPS],
    /// As `dy`, for columns.
    dx: [usize; MAX_TAPS],
    /// Index of the tap's weight for input channel 0 and output channel 0.
    off: [usize; MAX_TAPS],
}

impl Taps {
    const EMPTY: Self = Self {
        n: 0,
        dy: [0; MAX_TAPS],
        dx: [0; MAX_TAPS],
        off: [0; MAX_TAPS],
    };

    /// Appends a tap (ignored past [`MAX_TAPS`], which the callers rule out).
    fn push(&mut self, dy: usize, dx: usize, off: usize) {
        if let (Some(a), Some(b), Some(c)) = (
            self.dy.get_mut(self.n),
            self.dx.get_mut(self.n),
            self.off.get_mut(self.n),
        ) {
            (*a, *b, *c) = (dy, dx, off);
            self.n += 1;
        }
    }
}

/// Output pixels of a block: `oy = oy0 + j·oy_step` for `j < ny`, likewise `ox`; the input
/// pixel of tap `t` is `(j·step_y + dy[t], i·step_x + dx[t])`.
struct Grid {
    oy0: usize,
    oy_step: usize,
    ny: usize,
    ox0: usize,
    ox_step: usize,
    nx: usize,
    step_y: usize,
    step_x: usize,
}

/// What stays fixed over a layer.
struct Layer<'a> {
    g: &'a ConvGeom,
    out_plane: usize,
    groups: usize,
    /// Output channels written (those with a bias, multiplier and shift).
    n_oc: usize,
    /// Distance in `w` between the weights of consecutive input / output channels.
    ic_stride: usize,
    oc_stride: usize,
    b: &'a [i32],
    rq: &'a Requant<'a>,
    /// The channel-last input.
    xs: &'a [u32],
}

impl Layer<'_> {
    /// Packs the weights of output channels `oc0..oc0 + 4` (zeros past `n_oc`) for `taps`,
    /// and the zero-point terms `corr[t][r] = -zp·Σ_ic w`. Returns the packed words.
    fn pack_weights<'p, const N: usize>(
        &self,
        w: &[i8],
        oc0: usize,
        taps: &Taps,
        wbuf: &'p mut [u32; N],
        corr: &mut [[i32; R]; MAX_TAPS],
    ) -> &'p [u32] {
        let per_tap = self.groups * 2 * R;
        let dst = wbuf.get_mut(..taps.n * per_tap).unwrap_or_default();
        // Rows of output channels past `n_oc` and input channels past `in_ch` stay zero.
        dst.fill(0);
        let zp = self.rq.in_zero_point;
        let rn = self.n_oc.saturating_sub(oc0).min(R);
        let (in_ch, step) = (self.g.in_ch, self.ic_stride);
        for ((tw, &off), ct) in dst
            .chunks_mut(per_tap.max(1))
            .zip(&taps.off)
            .zip(corr.iter_mut())
        {
            *ct = [0; R];
            for (r, c) in ct.iter_mut().enumerate().take(rn) {
                // Output channel oc0 + r, input channels four at a time: the words (c0, c2)
                // and (c1, c3) of each group.
                let mut sum = 0i32;
                let mut i = (oc0 + r) * self.oc_stride + off;
                let mut left = in_ch;
                for gw in tw.as_chunks_mut::<{ 2 * R }>().0 {
                    let at = |k: usize| {
                        let v = if k < left { w.get(i + k * step) } else { None };
                        i32::from(v.copied().unwrap_or(0))
                    };
                    let v = [at(0), at(1), at(2), at(3)];
                    let [c0, c1, c2, c3] = v;
                    sum = sum.wrapping_add(c0 + c1 + c2 + c3);
                    let pair =
                        |a: i32, b: i32| (a & 0xffff).cast_unsigned() | (b << 16).cast_unsigned();
                    if let Some([a, b]) = gw.get_mut(2 * r..).and_then(|p| p.first_chunk_mut::<2>())
                    {
                        (*a, *b) = (pair(c0, c2), pair(c1, c3));
                    }
                    if left <= 4 {
                        break;
                    }
                    i += 4 * step;
                    left -= 4;
                }
                *c = sum.wrapping_mul(zp).wrapping_neg();
            }
        }
        dst
    }

    /// Computes the outputs of `grid` for output channels `oc0..oc0 + 4` from the packed
    /// weights and input, and writes them.
    #[allow(clippy::too_many_arguments)]
    fn run_grid(
        &self,
        oc0: usize,
        taps: &Taps,
        grid: &Grid,
        wp: &[u32],
        corr: &[[i32; R]; MAX_TAPS],
        y: &mut [i8],
        dot4: Dot4,
    ) {
        let g = self.g;
        let groups = self.groups;
        let per_tap = groups * 2 * R;
        let rn = self.n_oc.saturating_sub(oc0).min(R);
        // Bias, multiplier and shift of each channel (`n_oc` says they exist).
        let (mut base, mut mult, mut shift) = ([0i32; R], [0i32; R], [0u8; R]);
        for (r, ((bv, mv), sv)) in base
            .iter_mut()
            .zip(&mut mult)
            .zip(&mut shift)
            .enumerate()
            .take(rn)
        {
            let oc = oc0 + r;
            *bv = self.b.get(oc).copied().unwrap_or(0);
            *mv = self.rq.multiplier.get(oc).copied().unwrap_or(0);
            *sv = self.rq.shift.get(oc).copied().unwrap_or(0);
        }
        for ct in corr.iter().take(taps.n) {
            for (a, &c) in base.iter_mut().zip(ct) {
                *a = a.wrapping_add(c);
            }
        }
        let (zp, lo, hi) = (
            self.rq.out_zero_point,
            i32::from(self.rq.min),
            i32::from(self.rq.max),
        );
        for j in 0..grid.ny {
            let oy = grid.oy0 + j * grid.oy_step;
            let ry = j * grid.step_y;
            for i in 0..grid.nx {
                let rx = i * grid.step_x;
                // Starts with every tap's zero-point term; a tap in the padding takes its
                // term back (all wrapping, so the order does not matter).
                let mut acc = base;
                for (t, ct) in corr.iter().enumerate().take(taps.n) {
                    let (Some(&dy), Some(&dx)) = (taps.dy.get(t), taps.dx.get(t)) else {
                        break;
                    };
                    let (iy, ix) = (ry.wrapping_add(dy), rx.wrapping_add(dx));
                    if iy >= g.in_h || ix >= g.in_w {
                        for (a, &c) in acc.iter_mut().zip(ct) {
                            *a = a.wrapping_sub(c);
                        }
                        continue;
                    }
                    let p = (iy * g.in_w + ix) * groups;
                    let (Some(xw), Some(tw)) = (
                        self.xs.get(p..p + groups),
                        wp.get(t * per_tap..(t + 1) * per_tap),
                    ) else {
                        continue;
                    };
                    acc = dot4(acc, xw, tw);
                }
                let at = oy * g.out_w + grid.ox0 + i * grid.ox_step;
                let outs = y.get_mut(oc0 * self.out_plane + at..).unwrap_or_default();
                let outs = outs.iter_mut().step_by(self.out_plane.max(1));
                for (((yv, &a), &m), &s) in outs.zip(&acc).zip(&mult).zip(&shift).take(rn) {
                    *yv = finish(a, m, s, zp, lo, hi);
                }
            }
        }
    }
}

/// Packs the input and describes the layer, or `None` when the packed path does not apply
/// (`taps` per block, a convolution if `!transposed`).
#[allow(clippy::too_many_arguments)]
fn layer<'a, const MAX_WORDS: usize>(
    g: &'a ConvGeom,
    transposed: bool,
    taps: usize,
    w_len: usize,
    b: &'a [i32],
    x: &[i8],
    rq: &'a Requant<'a>,
    xbuf: &'a mut [u32; X_WORDS],
) -> Option<Layer<'a>> {
    let sz = Sizes::of(g)?;
    // Words of four input channels per pixel, even (the assembly takes two at a time).
    let groups = g.in_ch.div_ceil(8) * 2;
    let kk = g.k_h * g.k_w;
    // Every weight and input the reference reads must exist (a valid file always has them).
    if groups == 0
        || taps > MAX_TAPS
        || taps.saturating_mul(groups * 2 * R) > MAX_WORDS
        || w_len < g.in_ch * g.out_ch * kk
        || x.len() < g.in_ch * sz.in_plane
    {
        return None;
    }
    let xs = pack_input(x, g.in_ch, sz.in_plane, groups, xbuf)?;
    let n_oc = g
        .out_ch
        .min(b.len())
        .min(rq.multiplier.len())
        .min(rq.shift.len());
    let (ic_stride, oc_stride) = if transposed {
        (g.out_ch * kk, kk)
    } else {
        (kk, g.in_ch * kk)
    };
    Some(Layer {
        g,
        out_plane: sz.out_plane,
        groups,
        n_oc,
        ic_stride,
        oc_stride,
        b,
        rq,
        xs,
    })
}

/// int8 ConvTranspose2d through packed phases and `dot4`; `false` (nothing written) when the
/// geometry does not fit the stack buffers. Bit-exact with `reference::conv_transpose2d_i8`.
pub(crate) fn conv_transpose2d_i8_with(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
    dot4: Dot4,
) -> bool {
    // Nonzero strides: the divisions below have no panic path.
    let (Some(sh), Some(sw)) = (NonZeroUsize::new(g.stride_h), NonZeroUsize::new(g.stride_w))
    else {
        return false;
    };
    let ceil = |k: usize, s: NonZeroUsize| k / s + usize::from(k % s != 0);
    let per_phase = ceil(g.k_h, sh).saturating_mul(ceil(g.k_w, sw));
    let mut xbuf = [0u32; X_WORDS];
    let Some(l) = layer::<MAX_WEIGHT_WORDS>(g, true, per_phase, w.len(), b, x, rq, &mut xbuf)
    else {
        return false;
    };
    let mut wbuf = [0u32; MAX_WEIGHT_WORDS];
    let mut corr = [[0i32; R]; MAX_TAPS];
    let mut oc0 = 0;
    while oc0 < l.n_oc {
        for py in 0..sh.get().min(g.out_h) {
            for px in 0..sw.get().min(g.out_w) {
                // Outputs oy = py + sh·j take the taps ky ≡ py + pad_h (mod sh), reading input
                // row iy = (oy + pad_h - ky) / sh = j + (py + pad_h - ky) / sh (an exact
                // division; negative as a wrapping usize); likewise columns.
                let (ty, tx) = (py + g.pad_h, px + g.pad_w);
                let mut taps = Taps::EMPTY;
                // ky = ty mod sh + a·sh, so (ty - ky) / sh = ty / sh - a exactly.
                let (mut ky, mut dy) = (ty % sh, ty / sh);
                while ky < g.k_h {
                    let (mut kx, mut dx) = (tx % sw, tx / sw);
                    while kx < g.k_w {
                        taps.push(dy, dx, ky * g.k_w + kx);
                        kx += sw.get();
                        dx = dx.wrapping_sub(1);
                    }
                    ky += sh.get();
                    dy = dy.wrapping_sub(1);
                }
                let wp = l.pack_weights(w, oc0, &taps, &mut wbuf, &mut corr);
                let grid = Grid {
                    oy0: py,
                    oy_step: sh.get(),
                    ny: ceil(g.out_h - py, sh),
                    ox0: px,
                    ox_step: sw.get(),
                    nx: ceil(g.out_w - px, sw),
                    step_y: 1,
                    step_x: 1,
                };
                l.run_grid(oc0, &taps, &grid, wp, &corr, y, dot4);
            }
        }
        oc0 += R;
    }
    true
}

/// int8 Conv2d through packed taps and `dot4`; `false` (nothing written) when the geometry
/// does not fit the stack buffers. Bit-exact with `reference::conv2d_i8`.
pub(crate) fn conv2d_i8_with(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
    dot4: Dot4,
) -> bool {
    let mut xbuf = [0u32; X_WORDS];
    let kk = g.k_h.saturating_mul(g.k_w);
    let Some(l) = layer::<MAX_CONV2D_WEIGHT_WORDS>(g, false, kk, w.len(), b, x, rq, &mut xbuf)
    else {
        return false;
    };
    // Input row oy·s_h + ky - pad_h (wrapping when negative); likewise columns.
    let mut taps = Taps::EMPTY;
    for ky in 0..g.k_h {
        for kx in 0..g.k_w {
            let (dy, dx) = (ky.wrapping_sub(g.pad_h), kx.wrapping_sub(g.pad_w));
            taps.push(dy, dx, ky * g.k_w + kx);
        }
    }
    let grid = Grid {
        oy0: 0,
        oy_step: 1,
        ny: g.out_h,
        ox0: 0,
        ox_step: 1,
        nx: g.out_w,
        step_y: g.stride_h,
        step_x: g.stride_w,
    };
    let mut wbuf = [0u32; MAX_CONV2D_WEIGHT_WORDS];
    let mut corr = [[0i32; R]; MAX_TAPS];
    let mut oc0 = 0;
    while oc0 < l.n_oc {
        let wp = l.pack_weights(w, oc0, &taps, &mut wbuf, &mut corr);
        l.run_grid(oc0, &taps, &grid, wp, &corr, y, dot4);
        oc0 += R;
    }
    true
}

/// int8 ConvTranspose2d through the Rust model of the DSP kernel: the portable kernel where it
/// does not apply. Same contract as [`super::conv_transpose2d_i8`].
pub fn conv_transpose2d_i8(
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    if !conv_transpose2d_i8_with(g, w, b, x, rq, y, dot4_model) {
        super::reference::conv_transpose2d_i8(g, w, b, x, rq, y);
    }
}

/// int8 Conv2d through the Rust model of the DSP kernel: the portable kernel where it does
/// not apply. Same contract as [`super::conv2d_i8`].
pub fn conv2d_i8(g: &ConvGeom, w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    if !conv2d_i8_with(g, w, b, x, rq, y, dot4_model) {
        super::reference::conv2d_i8(g, w, b, x, rq, y);
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference;
    use super::*;

    /// Deterministic bytes (xorshift).
    fn bytes<const N: usize>(seed: u64) -> [i8; N] {
        let mut s = seed | 1;
        core::array::from_fn(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8 as i8
        })
    }

    /// The layers of the firmware's DCGAN generator and a discriminator's first two layers
    /// take the packed path (not the fallback) and equal the reference bit for bit.
    #[test]
    fn model_layers_take_the_packed_path() {
        let rq = Requant {
            in_zero_point: -7,
            out_zero_point: 3,
            multiplier: &[77; 32],
            shift: &[14; 32],
            min: -128,
            max: 127,
        };
        let w = bytes::<32768>(1);
        let x = bytes::<6272>(2);
        let b: [i32; 32] = core::array::from_fn(|i| i as i32 * 1000 - 16_000);
        // (in_ch, side, out_ch, transposed, stride)
        for (in_ch, side, out_ch, transposed) in [
            (64, 7, 32, true),
            (32, 14, 1, true),
            (1, 28, 32, false),
            (32, 14, 32, false),
            (64, 8, 16, false),
        ] {
            let out = if transposed { side * 2 } else { side / 2 };
            let g = ConvGeom {
                in_ch,
                in_h: side,
                in_w: side,
                out_ch,
                out_h: out,
                out_w: out,
                k_h: 4,
                k_w: 4,
                stride_h: 2,
                stride_w: 2,
                pad_h: 1,
                pad_w: 1,
            };
            let (w, x) = (&w[..in_ch * out_ch * 16], &x[..in_ch * side * side]);
            let n = out_ch * out * out;
            let mut got = [0i8; 6272];
            let mut want = [1i8; 6272];
            let taken = if transposed {
                reference::conv_transpose2d_i8(&g, w, &b, x, &rq, &mut want[..n]);
                conv_transpose2d_i8_with(&g, w, &b, x, &rq, &mut got[..n], dot4_model)
            } else {
                reference::conv2d_i8(&g, w, &b, x, &rq, &mut want[..n]);
                conv2d_i8_with(&g, w, &b, x, &rq, &mut got[..n], dot4_model)
            };
            assert!(taken, "{g:?}");
            assert_eq!(got[..n], want[..n], "{g:?}");
        }
    }
}
