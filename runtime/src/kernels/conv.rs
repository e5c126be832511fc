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
pub(crate) fn conv_transpose2d<M: Mac>(
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

/// Rows of the f32 transposed-convolution micro-tile: consecutive `(output channel, tap)`
/// pairs (one output channel of a 4x4 kernel). Four SSE / NEON vectors, two AVX vectors.
const MR: usize = 16;
/// Columns of the micro-tile: input pixels sharing each loaded weight vector. Two in the
/// portable build (8 SSE / NEON vectors hold the tile); the x86-64 AVX build uses six
/// (`x86::CONVT_NR`). The order of every output's additions does not depend on it (the
/// scatter visits pixels in increasing order either way), so results are the same bits on
/// every target.
pub(crate) const NR: usize = 2;
/// Input channels per packed weight block (`KC·MR` f32 = 2 KiB on the stack).
///
/// The same on every target: the partial sums of each block are added to the output in turn,
/// so `KC` fixes the order of the f32 additions, and the same model file must give the same
/// output bits on the host and on a microcontroller.
const KC: usize = 64;

/// The packed weight block, aligned so each row of [`MR`] floats is whole vectors.
#[repr(align(64))]
struct Pack([[f32; MR]; KC]);

impl Pack {
    /// Copies `kc` rows of `mr` weights, the rows `stride` apart from `w[start..]`, as f32;
    /// columns past `mr` are 0. Returns the `kc` packed rows.
    #[inline(always)]
    fn load<T: Copy + Into<f32>>(
        &mut self,
        w: &[T],
        start: usize,
        stride: usize,
        kc: usize,
        mr: usize,
    ) -> &[[f32; MR]] {
        let src = w.get(start..).unwrap_or_default();
        let rows = self.0.iter_mut().take(kc).zip(src.chunks(stride.max(1)));
        if mr == MR {
            for (dst, row) in rows {
                *dst = row
                    .first_chunk::<MR>()
                    .map_or([0.0; MR], |f| f.map(Into::into));
            }
        } else {
            for (dst, row) in rows {
                *dst = [0.0; MR];
                for (d, &v) in dst.iter_mut().zip(row.iter().take(mr)) {
                    *d = v.into();
                }
            }
        }
        self.0.get(..kc).unwrap_or_default()
    }
}

/// f32 ConvTranspose2d for speed, as a GEMM followed by a scatter ("col2im").
///
/// With the weights in their `[in_ch, out_ch·taps]` layout (row `ic` is contiguous over
/// `m = oc·taps + t`) and the input as `[in_ch, pixels]`, `C[m][p] = Σ_ic W[ic][m] · X[ic][p]`
/// is a plain matrix product. A block of [`MR`] rows × [`KC`] input channels of `W` is first
/// copied to the stack (the rows are `out_ch·taps` floats apart, a power of two in typical
/// models, so reading them in place maps them all to a few cache sets), then the product is
/// computed in register tiles of [`MR`] rows × [`NR`] pixels (8 vector accumulators on SSE /
/// NEON), and each finished tile is added at once to the outputs it reaches
/// (`oy = iy·s + ky - pad`, likewise `ox`; taps landing in the padding are dropped). The
/// output, set to the bias first, is the only accumulator. Stack: the packed block
/// (`KC·MR` f32), one tile and a table of [`MR`] output offsets.
pub(crate) fn conv_transpose2d_f32_cols(
    g: &ConvGeom,
    w: &[f32],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    conv_transpose2d_f32_tiles::<NR>(g, w, b, x, y);
}

/// [`conv_transpose2d_f32_cols`] with tiles of `N` pixels (any `N` gives the same bits).
#[inline(always)]
pub(crate) fn conv_transpose2d_f32_tiles<const N: usize>(
    g: &ConvGeom,
    w: &[f32],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    let Some(sz) = Sizes::of(g) else { return };
    if sz.out_plane == 0 {
        return;
    }
    // No overflow: `Sizes::of` checked `taps·in_ch·out_ch`.
    let taps = g.k_h * g.k_w;
    let m_total = g.out_ch * taps;
    for (yc, &bias) in y.chunks_exact_mut(sz.out_plane).zip(b).take(g.out_ch) {
        yc.fill(bias);
    }
    if m_total == 0 || sz.in_plane == 0 {
        return;
    }
    // Only the channels with a bias are written, as in the reference.
    let n_oc = b.len().min(g.out_ch);
    let mut pack = Pack([[0.0f32; MR]; KC]);
    let mut m0 = 0;
    while m0 < m_total {
        let mr = MR.min(m_total - m0);
        // (oc·out_plane + ky·out_w + kx, ky, kx) of each row of the tile; rows of channels
        // without a bias get ky = out_h + pad_h, which never lands in the output (and
        // `iy·s + ky` stays in range by `Sizes::of`).
        let never = g.out_h + g.pad_h;
        let mut tab = [(0usize, never, 0usize); MR];
        for (i, e) in tab.iter_mut().take(mr).enumerate() {
            let m = m0 + i;
            let (oc, t) = (m / taps, m % taps);
            let (ky, kx) = (t / g.k_w, t % g.k_w);
            if oc < n_oc {
                *e = (oc * sz.out_plane + ky * g.out_w + kx, ky, kx);
            }
        }
        let all_rows = mr == MR && m0 + MR <= n_oc * taps;
        let block = Block {
            g,
            in_plane: sz.in_plane,
            m0,
            m_total,
            mr,
            tab: &tab,
            all_rows,
        };
        block.run(&mut pack, w, x, y, &F32Tile::<N>);
        m0 += mr;
    }
}

/// Computes one tile of the transposed convolution's GEMM: `acc[j][i] = Σ_k wp[k][i] · x_k[j]`
/// for the `nr <= N` pixels of the tile (the rest of `acc` stays 0), `x_rows` starting at the
/// tile's first pixel of each input channel. A trait rather than a closure so that the tile is
/// inlined into an instance compiled for wider vectors.
trait Tile<X, const N: usize> {
    fn tile(
        &self,
        wp: &[[f32; MR]],
        x_rows: core::slice::Chunks<'_, X>,
        nr: usize,
    ) -> [[f32; MR]; N];
}

/// Tiles of f32 inputs.
struct F32Tile<const N: usize>;

impl<const N: usize> Tile<f32, N> for F32Tile<N> {
    #[inline(always)]
    fn tile(
        &self,
        wp: &[[f32; MR]],
        x_rows: core::slice::Chunks<'_, f32>,
        nr: usize,
    ) -> [[f32; MR]; N] {
        if nr == N {
            tile_full::<N>(wp, x_rows)
        } else {
            tile_edge::<N>(wp, x_rows, nr)
        }
    }
}

/// Tiles of int8 inputs with zero point `.0` (see [`tile_i8`]).
#[cfg(target_pointer_width = "64")]
struct I8Tile<const N: usize>(i32);

#[cfg(target_pointer_width = "64")]
impl<const N: usize> Tile<i8, N> for I8Tile<N> {
    #[inline(always)]
    fn tile(
        &self,
        wp: &[[f32; MR]],
        x_rows: core::slice::Chunks<'_, i8>,
        nr: usize,
    ) -> [[f32; MR]; N] {
        tile_i8::<N>(wp, x_rows, nr, self.0)
    }
}

/// `mr` rows (from `m0`) of the transposed convolution's GEMM over every input channel and
/// pixel: [`KC`] input channels of W are packed at a time, tiles of [`NR`] pixels computed, and
/// each tile added to the outputs `tab` names (see [`scatter`]).
struct Block<'a> {
    g: &'a ConvGeom,
    in_plane: usize,
    m0: usize,
    m_total: usize,
    mr: usize,
    tab: &'a [(usize, usize, usize); MR],
    all_rows: bool,
}

impl Block<'_> {
    /// Runs the block with `tile` computing one tile from the packed weights, the input rows
    /// (starting at the tile's first pixel) and the tile's pixel count.
    #[inline(always)]
    fn run<T: Copy + Into<f32>, X, const N: usize>(
        &self,
        pack: &mut Pack,
        w: &[T],
        x: &[X],
        y: &mut [f32],
        tile: &impl Tile<X, N>,
    ) {
        let g = self.g;
        let mut ic0 = 0;
        while ic0 < g.in_ch {
            let kc = KC.min(g.in_ch - ic0);
            let wp = pack.load(w, ic0 * self.m_total + self.m0, self.m_total, kc, self.mr);
            let x_blk = x.get(ic0 * self.in_plane..).unwrap_or_default();
            let mut p0 = 0;
            while p0 < self.in_plane {
                let nr = N.min(self.in_plane - p0);
                let x_rows = x_blk.get(p0..).unwrap_or_default().chunks(self.in_plane);
                let acc = tile.tile(wp, x_rows, nr);
                scatter(g, self.tab, &acc, p0, nr, self.all_rows, y);
                p0 += nr;
            }
            ic0 += kc;
        }
    }
}

/// Output values of one channel held by [`conv_transpose2d_i8_f32`], and its input widened to
/// f32 (16 KiB of stack each; only on 64-bit hosts, where the stack is not counted in
/// kilobytes).
#[cfg(target_pointer_width = "64")]
const PLANE: usize = 4096;

/// Largest `|w · (x - zp)|` of an int8 layer: `128 · 255`.
#[cfg(target_pointer_width = "64")]
const MAX_TERM: usize = 128 * 255;

/// int8 ConvTranspose2d through the f32 micro-kernel of [`conv_transpose2d_f32_cols`], exact.
///
/// The products `w · (x - zp)` are integers below `2^15` in magnitude, and one output sums at
/// most `in_ch · ⌈k_h / s_h⌉ · ⌈k_w / s_w⌉` of them. When that many terms of [`MAX_TERM`] stay
/// below `2^24`, every partial sum, in any order, is an integer that f32 holds exactly, so the
/// f32 sums equal the i32 sums of the reference bit for bit; the bias is added in i32 after.
/// Each output channel is accumulated in a stack plane of [`PLANE`] f32 and requantised from
/// there, so no full-size accumulator is needed.
///
/// Returns `false` (and writes nothing) when the bound or the plane size does not hold; the
/// caller then runs the integer gather.
#[cfg(target_pointer_width = "64")]
pub(crate) fn conv_transpose2d_i8_f32<M>(
    m: &M,
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    y: &mut [i8],
) -> bool
where
    M: Mac<W = i8, X = i8, A = i32, Y = i8>,
{
    conv_transpose2d_i8_tiles::<M, NR>(m, g, w, b, x, y)
}

/// [`conv_transpose2d_i8_f32`] with tiles of `N` pixels.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(crate) fn conv_transpose2d_i8_tiles<M, const N: usize>(
    m: &M,
    g: &ConvGeom,
    w: &[i8],
    b: &[i32],
    x: &[i8],
    y: &mut [i8],
) -> bool
where
    M: Mac<W = i8, X = i8, A = i32, Y = i8>,
{
    let Some(sz) = Sizes::of(g) else { return false };
    let zp = m.zero_point();
    let terms = g
        .in_ch
        .saturating_mul(g.k_h.div_ceil(g.stride_h))
        .saturating_mul(g.k_w.div_ceil(g.stride_w));
    // |x - zp| <= 255 needs an int8 zero point (every valid file has one; the kernel API
    // takes any i32).
    let zp_is_i8 = (-128..=127).contains(&zp);
    if !zp_is_i8
        || sz.out_plane == 0
        || sz.out_plane > PLANE
        || terms.saturating_mul(MAX_TERM) >= 1 << 24
    {
        return false;
    }
    let taps = g.k_h * g.k_w;
    let m_total = g.out_ch * taps;
    let mut plane = [0.0f32; PLANE];
    let mut pack = Pack([[0.0f32; MR]; KC]);
    // The whole input as f32 `x - zp`, once, when it fits: the tiles then run the f32 code.
    let mut wide = [0.0f32; PLANE];
    let wide = match g
        .in_ch
        .checked_mul(sz.in_plane)
        .and_then(|n| wide.get_mut(..n))
    {
        Some(dst) if x.len() >= dst.len() => {
            for (d, &v) in dst.iter_mut().zip(x) {
                *d = (i32::from(v) - zp) as f32;
            }
            Some(&*dst)
        }
        _ => None,
    };
    let planes = y.chunks_exact_mut(sz.out_plane).zip(b).take(g.out_ch);
    for (oc, (yc, &bias)) in planes.enumerate() {
        let Some(c) = m.channel(oc) else { return true };
        let acc_plane = plane.get_mut(..sz.out_plane).unwrap_or_default();
        acc_plane.fill(0.0);
        let mut t0 = 0;
        while t0 < taps {
            let mr = MR.min(taps - t0);
            let m0 = oc * taps + t0;
            let never = g.out_h + g.pad_h;
            let mut tab = [(0usize, never, 0usize); MR];
            for (i, e) in tab.iter_mut().take(mr).enumerate() {
                let t = t0 + i;
                let (ky, kx) = (t / g.k_w, t % g.k_w);
                *e = (ky * g.out_w + kx, ky, kx);
            }
            let all_rows = mr == MR;
            let block = Block {
                g,
                in_plane: sz.in_plane,
                m0,
                m_total,
                mr,
                tab: &tab,
                all_rows,
            };
            if let Some(xf) = wide {
                block.run(&mut pack, w, xf, acc_plane, &F32Tile::<N>);
            } else {
                block.run(&mut pack, w, x, acc_plane, &I8Tile::<N>(zp));
            }
            t0 += mr;
        }
        for (yv, &a) in yc.iter_mut().zip(acc_plane.iter()) {
            // `a` is an integer below 2^24 in magnitude: the conversion is exact.
            *yv = M::finish(&c, bias.wrapping_add(a as i32));
        }
    }
    true
}

/// A tile of int8 inputs: `acc[j][i] = Σ_k wp[k][i] · (X[k][p0 + j] - zp)` in f32 (exact under
/// the bound of [`conv_transpose2d_i8_f32`]); the rest of `acc` stays 0 when `nr < NR`.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn tile_i8<const N: usize>(
    wp: &[[f32; MR]],
    x_rows: core::slice::Chunks<'_, i8>,
    nr: usize,
    zp: i32,
) -> [[f32; MR]; N] {
    let mut acc = [[0.0f32; MR]; N];
    for (wv, xr) in wp.iter().zip(x_rows) {
        for (a, &xj) in acc.iter_mut().zip(xr.iter().take(nr)) {
            let xf = (i32::from(xj) - zp) as f32;
            for (ai, &wi) in a.iter_mut().zip(wv) {
                *ai += wi * xf;
            }
        }
    }
    acc
}

/// One full tile: `acc[j][i] = Σ_k wp[k][i] · X[k][p0 + j]`; `x_rows` start at `p0` of each
/// input channel's row.
#[inline(always)]
fn tile_full<const N: usize>(
    wp: &[[f32; MR]],
    x_rows: core::slice::Chunks<'_, f32>,
) -> [[f32; MR]; N] {
    let mut acc = [[0.0f32; MR]; N];
    for (wv, xr) in wp.iter().zip(x_rows) {
        let Some(xv) = xr.first_chunk::<N>() else {
            break;
        };
        for (a, &xj) in acc.iter_mut().zip(xv) {
            for (ai, &wi) in a.iter_mut().zip(wv) {
                *ai += wi * xj;
            }
        }
    }
    acc
}

/// A tile of `nr < N` pixels; the rest of `acc` stays 0.
#[inline(always)]
fn tile_edge<const N: usize>(
    wp: &[[f32; MR]],
    x_rows: core::slice::Chunks<'_, f32>,
    nr: usize,
) -> [[f32; MR]; N] {
    let mut acc = [[0.0f32; MR]; N];
    for (wv, xr) in wp.iter().zip(x_rows) {
        for (a, &xj) in acc.iter_mut().zip(xr.iter().take(nr)) {
            for (ai, &wi) in a.iter_mut().zip(wv) {
                *ai += wi * xj;
            }
        }
    }
    acc
}

/// Adds tile `acc` (pixels `p0..p0 + nr`, rows described by `tab`) to the outputs it reaches.
/// `all_rows` says every row of the tile belongs to a written channel, so a pixel whose whole
/// kernel footprint lies inside the output needs no per-tap test.
#[inline(always)]
fn scatter<const N: usize>(
    g: &ConvGeom,
    tab: &[(usize, usize, usize); MR],
    acc: &[[f32; MR]; N],
    p0: usize,
    nr: usize,
    all_rows: bool,
    y: &mut [f32],
) {
    let (mut iy, mut ix) = (p0 / g.in_w, p0 % g.in_w);
    for a in acc.iter().take(nr) {
        // Output row oy = by + ky - pad_h, column ox = bx + kx - pad_w.
        let (by, bx) = (iy * g.stride_h, ix * g.stride_w);
        // Index of (by - pad_h, bx - pad_w), wrapping; only used when the output is inside.
        let base = (by * g.out_w + bx).wrapping_sub(g.pad_h * g.out_w + g.pad_w);
        let inside = by >= g.pad_h
            && bx >= g.pad_w
            && by + g.k_h <= g.out_h + g.pad_h
            && bx + g.k_w <= g.out_w + g.pad_w;
        if all_rows && inside {
            for (&(off, _, _), &v) in tab.iter().zip(a) {
                if let Some(t) = y.get_mut(base.wrapping_add(off)) {
                    *t += v;
                }
            }
        } else {
            for (&(off, ky, kx), &v) in tab.iter().zip(a) {
                let oy = (by + ky).wrapping_sub(g.pad_h);
                let ox = (bx + kx).wrapping_sub(g.pad_w);
                if oy < g.out_h && ox < g.out_w {
                    if let Some(t) = y.get_mut(base.wrapping_add(off)) {
                        *t += v;
                    }
                }
            }
        }
        ix += 1;
        if ix == g.in_w {
            ix = 0;
            iy += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{reference, ConvGeom};
    use super::KC;

    /// Deterministic values in [-1, 1) (xorshift).
    fn values(seed: u64, n: usize) -> [f32; 4096] {
        let mut s = seed | 1;
        let mut v = [0.0f32; 4096];
        for e in v.iter_mut().take(n) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *e = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
        }
        v
    }

    /// The tile width does not change any output's order of additions: the same bits for
    /// every width (the portable, the AVX and the 32-bit builds use different ones).
    #[test]
    fn transposed_tile_width_keeps_bits() {
        for (in_ch, k, s, side) in [(64, 4, 2, 7), (2 * KC + 5, 3, 2, 5), (3, 5, 3, 4)] {
            let out = (side - 1) * s + k - 2;
            let g = ConvGeom {
                in_ch,
                in_h: side,
                in_w: side,
                out_ch: 3,
                out_h: out,
                out_w: out,
                k_h: k,
                k_w: k,
                stride_h: s,
                stride_w: s,
                pad_h: 1,
                pad_w: 1,
            };
            let (n_w, n_x) = (in_ch * 3 * k * k, in_ch * side * side);
            let (w, b, x) = (values(1, n_w), values(2, 3), values(3, n_x));
            let (w, b, x) = (&w[..n_w], &b[..3], &x[..n_x]);
            let n_y = 3 * out * out;
            type Kernel = fn(&ConvGeom, &[f32], &[f32], &[f32], &mut [f32]);
            let run = |f: Kernel| {
                let mut y = [f32::NAN; 4096];
                f(&g, w, b, x, &mut y[..n_y]);
                y.map(f32::to_bits)
            };
            let two = run(super::conv_transpose2d_f32_tiles::<2>);
            assert!(two.iter().take(n_y).all(|&v| !f32::from_bits(v).is_nan()));
            assert_eq!(two, run(super::conv_transpose2d_f32_tiles::<1>), "{g:?}");
            assert_eq!(two, run(super::conv_transpose2d_f32_tiles::<3>), "{g:?}");
            assert_eq!(two, run(super::conv_transpose2d_f32_tiles::<4>), "{g:?}");
            assert_eq!(two, run(super::conv_transpose2d_f32_tiles::<6>), "{g:?}");
            assert_eq!(two, run(super::super::conv_transpose2d_f32), "{g:?}");
        }
    }

    // More input channels than one packed block holds (three blocks, the last partial), and
    // more (output channel, tap) rows than one tile (3 channels x 9 taps = 27 = 16 + 11).
    #[test]
    fn transposed_several_channel_blocks() {
        let in_ch = 2 * KC + 5;
        let g = ConvGeom {
            in_ch,
            in_h: 3,
            in_w: 4,
            out_ch: 3,
            out_h: 5,
            out_w: 7,
            k_h: 3,
            k_w: 3,
            stride_h: 2,
            stride_w: 2,
            pad_h: 1,
            pad_w: 1,
        };
        let n_w = in_ch * 3 * 9;
        let n_x = in_ch * 12;
        let (w, b, x) = (values(1, n_w), values(2, 3), values(3, n_x));
        let (w, b, x) = (&w[..n_w], &b[..3], &x[..n_x]);
        let mut fast = [f32::NAN; 105];
        super::conv_transpose2d_f32_cols(&g, w, b, x, &mut fast);
        let mut want = [f32::NAN; 105];
        reference::conv_transpose2d_f32(&g, w, b, x, &mut want);
        let abs = |v: &[f32]| {
            v.iter()
                .map(|e| e.abs())
                .collect::<heapless::Vec<f32, 4096>>()
        };
        let mut mag = [f32::NAN; 105];
        reference::conv_transpose2d_f32(&g, &abs(w), &abs(b), &abs(x), &mut mag);
        // Same products summed in another order: within n·ε·Σ|terms| (n = in_ch·9 + 1).
        let n_terms = (in_ch * 9 + 1) as f32;
        for ((f, r), m) in fast.iter().zip(want).zip(mag) {
            assert!((f - r).abs() <= f32::EPSILON * n_terms * m, "{f} vs {r}");
        }
    }

    /// The f32 path of the int8 transposed convolution at its bound: every product at its
    /// largest (`-128 · 255`), 128 input channels x 4 taps = 512 terms per output (the largest
    /// count the path takes), and 129 channels (516 terms: the integer gather). Both equal the
    /// reference bit for bit.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn transposed_int8_at_the_exactness_bound() {
        for (in_ch, fast_path) in [(128, true), (129, false)] {
            let g = ConvGeom {
                in_ch,
                in_h: 2,
                in_w: 3,
                out_ch: 2,
                out_h: 4,
                out_w: 6,
                k_h: 4,
                k_w: 4,
                stride_h: 2,
                stride_w: 2,
                pad_h: 1,
                pad_w: 1,
            };
            let w = [-128i8; 129 * 2 * 16];
            let w = &w[..in_ch * 2 * 16];
            let x = [127i8; 129 * 6];
            let x = &x[..in_ch * 6];
            let b = [5, -1_000_000_000];
            let rq = super::super::Requant {
                in_zero_point: -128,
                out_zero_point: 0,
                multiplier: &[1, 1],
                shift: &[17, 30],
                min: -128,
                max: 127,
            };
            let m = super::super::I8Mac { rq: &rq };
            let mut got = [0i8; 48];
            assert_eq!(
                super::conv_transpose2d_i8_f32(&m, &g, w, &b, x, &mut got),
                fast_path
            );
            super::super::conv_transpose2d_i8(&g, w, &b, x, &rq, &mut got);
            let mut want = [1i8; 48];
            reference::conv_transpose2d_i8(&g, w, &b, x, &rq, &mut want);
            assert_eq!(got, want, "in_ch {in_ch}");
            // The sums are large: not all outputs saturate or vanish.
            assert!(got.iter().any(|&v| v != i8::MIN && v != 0), "{got:?}");
        }
    }

    /// An int8 input too large to widen on the stack takes the per-tile conversion; the same
    /// values as the reference either way.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn transposed_int8_with_and_without_the_widened_input() {
        extern crate std;
        use std::vec::Vec;
        for side in [40, 48] {
            // in_ch · side² = 3,200 (widened once) or 4,608 (> PLANE: tile by tile).
            let g = ConvGeom {
                in_ch: 2,
                in_h: side,
                in_w: side,
                out_ch: 3,
                out_h: side,
                out_w: side,
                k_h: 3,
                k_w: 3,
                stride_h: 1,
                stride_w: 1,
                pad_h: 1,
                pad_w: 1,
            };
            let w: Vec<i8> = values(7, 2 * 3 * 9)
                .iter()
                .take(54)
                .map(|v| (v * 127.0) as i8)
                .collect();
            let x: Vec<i8> = values(8, 4096)
                .iter()
                .cycle()
                .take(2 * side * side)
                .map(|v| (v * 127.0) as i8)
                .collect();
            let b = [100, -250, 7];
            let rq = super::super::Requant {
                in_zero_point: 3,
                out_zero_point: -2,
                multiplier: &[77, 91, 120],
                shift: &[17, 17, 17],
                min: -128,
                max: 127,
            };
            let n = 3 * side * side;
            let mut got = std::vec![0i8; n];
            let m = super::super::I8Mac { rq: &rq };
            assert!(super::conv_transpose2d_i8_f32(&m, &g, &w, &b, &x, &mut got));
            let mut want = std::vec![1i8; n];
            reference::conv_transpose2d_i8(&g, &w, &b, &x, &rq, &mut want);
            assert_eq!(got, want, "side {side}");
            assert!(
                got.iter()
                    .filter(|&&v| v != i8::MIN && v != i8::MAX)
                    .count()
                    > n / 2
            );
        }
    }
}
