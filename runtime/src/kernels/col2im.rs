//! The transposed convolution as a matrix product followed by a scatter ("col2im"): the f32
//! kernel of every target, and the int8 kernel of 64-bit hosts (exact in f32 below a bound on
//! the terms). Split from the row drivers in `conv` by what they compute.

#[cfg(target_pointer_width = "64")]
use super::conv::Mac;
use super::reference::Sizes;
use super::ConvGeom;

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
            full_tile::<N>(wp, x_rows)
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

/// [`tile_full`], or on 32-bit microcontrollers with two pixels [`tile_full_by8x2`] (the same
/// sums in the same order).
#[inline(always)]
fn full_tile<const N: usize>(
    wp: &[[f32; MR]],
    x_rows: core::slice::Chunks<'_, f32>,
) -> [[f32; MR]; N] {
    #[cfg(not(target_pointer_width = "64"))]
    if let Ok(t) = <[[f32; MR]; N]>::try_from(&tile_full_by8x2(wp, x_rows.clone())[..]) {
        return t;
    }
    tile_full::<N>(wp, x_rows)
}

/// Eight rows by two pixels of a tile, `acc[j][i] = Σ_k w_k[i] · x_k[j]` in `k` order from 0,
/// with the sixteen sums in named locals (kept in registers without unrolling a loop, which
/// the compiler does not do at opt-level "s"); one multiply and one add per term.
#[inline(always)]
fn sum8x2<'a>(rows: impl Iterator<Item = (&'a [f32; 8], [f32; 2])>) -> [[f32; 8]; 2] {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = [0.0f32; 8];
    let [mut b0, mut b1, mut b2, mut b3, mut b4, mut b5, mut b6, mut b7] = [0.0f32; 8];
    for (&[w0, w1, w2, w3, w4, w5, w6, w7], [x0, x1]) in rows {
        a0 += w0 * x0;
        a1 += w1 * x0;
        a2 += w2 * x0;
        a3 += w3 * x0;
        a4 += w4 * x0;
        a5 += w5 * x0;
        a6 += w6 * x0;
        a7 += w7 * x0;
        b0 += w0 * x1;
        b1 += w1 * x1;
        b2 += w2 * x1;
        b3 += w3 * x1;
        b4 += w4 * x1;
        b5 += w5 * x1;
        b6 += w6 * x1;
        b7 += w7 * x1;
    }
    [
        [a0, a1, a2, a3, a4, a5, a6, a7],
        [b0, b1, b2, b3, b4, b5, b6, b7],
    ]
}

/// A full tile of two pixels as two halves of eight rows ([`sum8x2`]): the same bits as
/// `tile_full::<2>` (each sum over `k` in order from 0).
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[inline(always)]
fn tile_full_by8x2(wp: &[[f32; MR]], x_rows: core::slice::Chunks<'_, f32>) -> [[f32; MR]; 2] {
    let mut acc = [[0.0f32; MR]; 2];
    for h in 0..MR / 8 {
        let rows = wp
            .iter()
            .map_while(|r| r.as_chunks::<8>().0.get(h))
            .zip(x_rows.clone().map_while(|x| x.first_chunk::<2>().copied()));
        let [p0, p1] = sum8x2(rows);
        let [d0, d1] = &mut acc;
        for (d, v) in [d0, d1].into_iter().zip([p0, p1]) {
            if let Some(dst) = d.get_mut(8 * h..8 * h + 8) {
                dst.copy_from_slice(&v);
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
mod tests;
