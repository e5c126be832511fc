//! Fast Conv2d and ConvTranspose2d drivers, shared by the f32 and int8 kernels.
//!
//! Both compute one output row (or one stride phase of it) at a time in a stack buffer of
//! [`ROW`] accumulators, so the inner loop is a contiguous `acc[j] += w * x[j]` over the input
//! row, and the per-output work (tap validity, divisibility) moves out of the loop:
//! - Conv2d: for each `(ic, ky, kx)` the range of output columns whose tap lands inside the
//!   input is computed once; the input is read with the stride (contiguous when 1).
//! - ConvTranspose2d (gather): the outputs of row `oy` with `ox ≡ px (mod stride)` (one
//!   phase) read, for each `kx ≡ px + pad (mod stride)`, the input columns `j + const`: a
//!   contiguous input run for a contiguous run of phase outputs. Only the valid `(ky, kx)`
//!   taps of the phase are visited, so no divisibility test remains and no full-size
//!   accumulator is needed.

use super::reference::Sizes;
use super::ConvGeom;

/// Accumulators per stack buffer (output columns handled at once).
pub(crate) const ROW: usize = 64;

/// One multiply-accumulate step and its types.
pub(crate) trait Mac {
    /// Weight element.
    type W: Copy;
    /// Input element.
    type X: Copy;
    /// Accumulator (also the bias).
    type A: Copy;
    /// Output element.
    type Y;
    /// Per-output-channel parameters of the final step.
    type C;
    /// `a + w * x` (with the input zero point subtracted for int8).
    fn mac(&self, a: Self::A, w: Self::W, x: Self::X) -> Self::A;
    /// Parameters of output channel `oc`; `None` stops the kernel.
    fn channel(&self, oc: usize) -> Option<Self::C>;
    /// Accumulator to output element.
    fn finish(c: &Self::C, a: Self::A) -> Self::Y;
    /// The input zero point (0 for f32); used by the 64-bit int8 transposed convolution.
    #[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
    fn zero_point(&self) -> i32 {
        0
    }
}

/// `acc[j] += w * x[j]` over the common length.
#[inline(always)]
fn axpy<M: Mac>(m: &M, acc: &mut [M::A], w: M::W, x: &[M::X]) {
    for (a, &xv) in acc.iter_mut().zip(x) {
        *a = m.mac(*a, w, xv);
    }
}

/// `acc[j] += w * x[j * step]`.
#[inline(always)]
fn axpy_strided<M: Mac>(m: &M, acc: &mut [M::A], w: M::W, x: &[M::X], step: usize) {
    if step == 1 {
        axpy(m, acc, w, x);
    } else {
        for (a, &xv) in acc.iter_mut().zip(x.iter().step_by(step)) {
            *a = m.mac(*a, w, xv);
        }
    }
}

/// Conv2d. `m.channel(oc)` gives the per-channel output parameters (`None` stops), `fin` turns
/// an accumulator into an output element.
pub(crate) fn conv2d<M: Mac>(
    m: &M,
    g: &ConvGeom,
    w: &[M::W],
    b: &[M::A],
    x: &[M::X],
    y: &mut [M::Y],
) {
    let Some(sz) = Sizes::of(g) else { return };
    if sz.out_plane == 0 {
        return;
    }
    let (s, pad) = (g.stride_w, g.pad_w);
    let w_per_oc = g.in_ch * g.k_h * g.k_w;
    for ((oc, yc), &bias) in y.chunks_exact_mut(sz.out_plane).enumerate().zip(b) {
        let (Some(c), Some(wc)) = (m.channel(oc), w.get(oc * w_per_oc..(oc + 1) * w_per_oc)) else {
            return;
        };
        for (oy, yrow) in yc.chunks_exact_mut(g.out_w).enumerate() {
            for (cx, ychunk) in yrow.chunks_mut(ROW).enumerate() {
                let ox_base = cx * ROW;
                let mut buf = [bias; ROW];
                let acc = buf.get_mut(..ychunk.len()).unwrap_or_default();
                let ox_end = ox_base + acc.len();
                for ic in 0..g.in_ch {
                    let x_ic = ic * sz.in_plane;
                    for ky in 0..g.k_h {
                        let Some(iy) =
                            super::reference::conv_src(oy, g.stride_h, ky, g.pad_h, g.in_h)
                        else {
                            continue;
                        };
                        let xo = x_ic + iy * g.in_w;
                        let wo = (ic * g.k_h + ky) * g.k_w;
                        let (Some(xrow), Some(wrow)) =
                            (x.get(xo..xo + g.in_w), wc.get(wo..wo + g.k_w))
                        else {
                            continue;
                        };
                        for (kx, &wv) in wrow.iter().enumerate() {
                            // Outputs with 0 <= ox*s + kx - pad < in_w.
                            if g.in_w + pad <= kx {
                                continue;
                            }
                            let lo = pad.saturating_sub(kx).div_ceil(s).max(ox_base);
                            let hi = ((g.in_w - 1 + pad - kx) / s + 1).min(ox_end);
                            if lo >= hi {
                                continue;
                            }
                            let ix0 = lo * s + kx - pad;
                            if let (Some(a), Some(xs)) =
                                (acc.get_mut(lo - ox_base..hi - ox_base), xrow.get(ix0..))
                            {
                                axpy_strided(m, a, wv, xs, s);
                            }
                        }
                    }
                }
                for (yv, &a) in ychunk.iter_mut().zip(acc.iter()) {
                    *yv = M::finish(&c, a);
                }
            }
        }
    }
}

/// ConvTranspose2d as a gather, per (output channel, output row, column phase).
#[cfg_attr(tinygen_dsp, allow(dead_code))]
pub(crate) fn conv_transpose2d<M: Mac>(
    m: &M,
    g: &ConvGeom,
    w: &[M::W],
    b: &[M::A],
    x: &[M::X],
    y: &mut [M::Y],
) {
    let Some(sz) = Sizes::of(g) else { return };
    if sz.out_plane == 0 || g.out_w == 0 {
        return;
    }
    let (sh, sw, ph, pw) = (g.stride_h, g.stride_w, g.pad_h, g.pad_w);
    let taps = g.k_h * g.k_w;
    for ((oc, yc), &bias) in y.chunks_exact_mut(sz.out_plane).enumerate().zip(b) {
        let Some(c) = m.channel(oc) else { return };
        for (oy, yrow) in yc.chunks_exact_mut(g.out_w).enumerate() {
            // Taps ky with (oy + ph - ky) divisible by sh, then iy = (oy + ph - ky) / sh.
            let ky0 = (oy + ph) % sh;
            for px in 0..sw.min(g.out_w) {
                // Outputs ox = px + sw * j of this phase; taps kx ≡ px + pw (mod sw).
                let n_phase = (g.out_w - px).div_ceil(sw);
                let kx0 = (px + pw) % sw;
                let mut jb = 0;
                while jb < n_phase {
                    let n = (n_phase - jb).min(ROW);
                    let mut buf = [bias; ROW];
                    let acc = buf.get_mut(..n).unwrap_or_default();
                    for ic in 0..g.in_ch {
                        let w_base = (ic * g.out_ch + oc) * taps;
                        let x_ic = ic * sz.in_plane;
                        for ky in (ky0..g.k_h).step_by(sh) {
                            if ky > oy + ph {
                                break;
                            }
                            let iy = (oy + ph - ky) / sh;
                            if iy >= g.in_h {
                                continue;
                            }
                            let xo = x_ic + iy * g.in_w;
                            let wo = w_base + ky * g.k_w;
                            let (Some(xrow), Some(wrow)) =
                                (x.get(xo..xo + g.in_w), w.get(wo..wo + g.k_w))
                            else {
                                continue;
                            };
                            for (kx, &wv) in wrow.iter().enumerate().skip(kx0).step_by(sw) {
                                // ix = j + (px + pw - kx) / sw, exact division.
                                let (lo, hi, xs) = if px + pw >= kx {
                                    let e = (px + pw - kx) / sw;
                                    // j in [0, in_w - e) ∩ [jb, jb + n).
                                    let hi = g.in_w.saturating_sub(e).min(jb + n);
                                    (jb, hi, xrow.get(jb + e..))
                                } else {
                                    let f = (kx - px - pw) / sw;
                                    // j in [f, in_w + f) ∩ [jb, jb + n).
                                    let lo = f.max(jb);
                                    let hi = (g.in_w + f).min(jb + n);
                                    (lo, hi, xrow.get(lo.saturating_sub(f)..))
                                };
                                if lo >= hi {
                                    continue;
                                }
                                if let (Some(a), Some(xs)) = (acc.get_mut(lo - jb..hi - jb), xs) {
                                    axpy(m, a, wv, xs);
                                }
                            }
                        }
                    }
                    let start = px + sw * jb;
                    let outs = yrow.iter_mut().skip(start).step_by(sw);
                    for (yv, &a) in outs.zip(acc.iter()) {
                        *yv = M::finish(&c, a);
                    }
                    jb += n;
                }
            }
        }
    }
}
