//! 2-D convolution and transposed convolution: im2col / col2im around sgemm, one sample
//! at a time, with the column buffer kept in the layer between calls.

use ndarray::{Array1, Array4, ArrayView2, ArrayViewMut2};
use rand::Rng;

use super::Param;
use crate::gemm::gemm;
use crate::init;

pub use tinygen_runtime::geometry::ConvSpec;

/// Weights per output channel of a plain convolution with `channels` inputs (`channels * kh *
/// kw`).
fn patch(spec: &ConvSpec, channels: usize) -> usize {
    channels * spec.kernel.0 * spec.kernel.1
}

/// Panics with the geometry's own message if `spec` cannot be used (a layer built in code).
fn check(spec: &ConvSpec, transposed: bool) {
    if let Err(e) = spec.geometry().check(transposed) {
        panic!("{e}: {spec:?}");
    }
}

/// The geometry shared by im2col and col2im: an image `(c, ih, iw)` seen through a
/// `kh x kw` window with stride and padding gives `oh x ow` columns.
#[derive(Debug, Clone, Copy)]
struct Geom {
    c: usize,
    ih: usize,
    iw: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(spec: &ConvSpec, c: usize, (ih, iw): (usize, usize), (oh, ow): (usize, usize)) -> Self {
        Geom {
            c,
            ih,
            iw,
            kh: spec.kernel.0,
            kw: spec.kernel.1,
            sh: spec.stride.0,
            sw: spec.stride.1,
            ph: spec.pad.0,
            pw: spec.pad.1,
            oh,
            ow,
        }
    }

    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn cols(&self) -> usize {
        self.oh * self.ow
    }

    /// Image row (or column) index for output position `o` and kernel offset `k`, if inside.
    #[inline]
    fn src(o: usize, k: usize, s: usize, p: usize, n: usize) -> Option<usize> {
        (o * s + k).checked_sub(p).filter(|&i| i < n)
    }
}

/// The output positions `lo..hi` (of `n_out`) whose input index `o*s + k - p` lies in `0..n_in`.
#[inline]
fn valid_range(n_out: usize, k: usize, s: usize, p: usize, n_in: usize) -> (usize, usize) {
    let lo = p.saturating_sub(k).div_ceil(s).min(n_out);
    // o*s + k < n_in + p  <=>  o < ceil((n_in + p - k) / s)
    let hi = (n_in + p).saturating_sub(k).div_ceil(s).min(n_out);
    (lo, hi.max(lo))
}

/// `cols[(c, i, j), (y, x)] = img[c, y*sh + i - ph, x*sw + j - pw]` (zero outside).
fn im2col(g: &Geom, img: &[f32], cols: &mut [f32]) {
    debug_assert_eq!(img.len(), g.c * g.ih * g.iw);
    debug_assert_eq!(cols.len(), g.rows() * g.cols());
    let n = g.cols();
    let mut rows = cols.chunks_exact_mut(n);
    for plane in img.chunks_exact(g.ih * g.iw) {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = rows.next().expect("row count matches");
                let (lo, hi) = valid_range(g.ow, j, g.sw, g.pw, g.iw);
                for (oy, seg) in row.chunks_exact_mut(g.ow).enumerate() {
                    match Geom::src(oy, i, g.sh, g.ph, g.ih) {
                        None => seg.fill(0.0),
                        Some(iy) => {
                            let line = &plane[iy * g.iw..(iy + 1) * g.iw];
                            seg[..lo].fill(0.0);
                            seg[hi..].fill(0.0);
                            if lo == hi {
                                continue;
                            }
                            // ix = ox*sw + j - pw for ox in lo..hi, all inside the line.
                            let start = lo * g.sw + j - g.pw;
                            let src = line[start..].iter().step_by(g.sw);
                            for (v, &x) in seg[lo..hi].iter_mut().zip(src) {
                                *v = x;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back into the image position it came from.
fn col2im(g: &Geom, cols: &[f32], img: &mut [f32]) {
    debug_assert_eq!(img.len(), g.c * g.ih * g.iw);
    debug_assert_eq!(cols.len(), g.rows() * g.cols());
    let n = g.cols();
    let mut rows = cols.chunks_exact(n);
    for plane in img.chunks_exact_mut(g.ih * g.iw) {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = rows.next().expect("row count matches");
                let (lo, hi) = valid_range(g.ow, j, g.sw, g.pw, g.iw);
                for (oy, seg) in row.chunks_exact(g.ow).enumerate() {
                    if let Some(iy) = Geom::src(oy, i, g.sh, g.ph, g.ih).filter(|_| lo < hi) {
                        let line = &mut plane[iy * g.iw..(iy + 1) * g.iw];
                        let start = lo * g.sw + j - g.pw;
                        let dst = line[start..].iter_mut().step_by(g.sw);
                        for (d, &v) in dst.zip(&seg[lo..hi]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

fn standard(x: Array4<f32>) -> Array4<f32> {
    if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    }
}

fn add_bias(y: &mut [f32], bias: Option<&Array1<f32>>, plane: usize) {
    match bias {
        Some(b) => {
            for (chunk, &bv) in y.chunks_exact_mut(plane).zip(b.iter()) {
                chunk.fill(bv);
            }
        }
        None => y.fill(0.0),
    }
}

fn add_bias_grad(d_b: Option<&mut Array1<f32>>, d_y: &[f32], plane: usize) {
    if let Some(d_b) = d_b {
        for (g, chunk) in d_b.iter_mut().zip(d_y.chunks_exact(plane)) {
            *g += chunk.iter().sum::<f32>();
        }
    }
}

fn slice(x: &Array4<f32>) -> &[f32] {
    x.as_slice().expect("standard layout")
}

fn slice_mut(x: &mut Array4<f32>) -> &mut [f32] {
    x.as_slice_mut().expect("standard layout")
}

fn view2(data: &[f32], r: usize, c: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((r, c), data).expect("buffer length matches")
}

fn view2_mut(data: &mut [f32], r: usize, c: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((r, c), data).expect("buffer length matches")
}

/// What a convolution's backward needs from its forward pass: the input.
#[derive(Debug, Clone)]
pub struct ConvCache {
    /// `(batch, in_ch, h, w)`
    pub x: Array4<f32>,
}

/// 2-D convolution, weight `[out_ch, in_ch, kh, kw]` as in PyTorch and ONNX.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// Sizes.
    pub spec: ConvSpec,
    /// `(out_ch, in_ch, kh, kw)`
    pub weight: Array4<f32>,
    /// `(out_ch)`
    pub bias: Option<Array1<f32>>,
    /// `(out_ch, in_ch, kh, kw)`
    pub d_weight: Array4<f32>,
    /// `(out_ch)`
    pub d_bias: Option<Array1<f32>>,
    /// im2col buffer `(in_ch * kh * kw, oh * ow)`, kept between calls.
    cols: Vec<f32>,
    /// Column gradient buffer, same shape.
    d_cols: Vec<f32>,
}

impl Conv2d {
    /// PyTorch's default initialisation (uniform in `±1/sqrt(in_ch * kh * kw)`).
    pub fn new<R: Rng + ?Sized>(spec: ConvSpec, bias: bool, rng: &mut R) -> Self {
        let mut l = Self::zeros(spec, bias);
        let fan_in = patch(&spec, spec.in_ch);
        init::torch_default(slice_mut(&mut l.weight), fan_in, rng);
        if let Some(b) = l.bias.as_mut() {
            init::torch_default(b.as_slice_mut().expect("standard layout"), fan_in, rng);
        }
        l
    }

    /// All weights zero.
    pub fn zeros(spec: ConvSpec, bias: bool) -> Self {
        check(&spec, false);
        let shape = (spec.out_ch, spec.in_ch, spec.kernel.0, spec.kernel.1);
        Conv2d {
            spec,
            weight: Array4::zeros(shape),
            bias: bias.then(|| Array1::zeros(spec.out_ch)),
            d_weight: Array4::zeros(shape),
            d_bias: bias.then(|| Array1::zeros(spec.out_ch)),
            cols: Vec::new(),
            d_cols: Vec::new(),
        }
    }

    fn geom(&self, x: &Array4<f32>) -> Geom {
        let (_, c, h, w) = x.dim();
        assert_eq!(
            c, self.spec.in_ch,
            "Conv2d: input has {c} channels, expected {}",
            self.spec.in_ch
        );
        let out = self
            .spec
            .conv_out(h, w)
            .unwrap_or_else(|| panic!("Conv2d: kernel does not fit {h}x{w}"));
        Geom::new(&self.spec, c, (h, w), out)
    }

    /// `x`: `(batch, in_ch, h, w)` -> `(batch, out_ch, oh, ow)`.
    pub fn forward(&mut self, x: Array4<f32>) -> (Array4<f32>, ConvCache) {
        let x = standard(x);
        let g = self.geom(&x);
        let batch = x.dim().0;
        let (k, n, o) = (g.rows(), g.cols(), self.spec.out_ch);
        let mut y = Array4::zeros((batch, o, g.oh, g.ow));
        self.cols.resize(k * n, 0.0);
        let w2 = view2(slice(&self.weight), o, k);
        for (x_b, y_b) in slice(&x)
            .chunks_exact(g.c * g.ih * g.iw)
            .zip(slice_mut(&mut y).chunks_exact_mut(o * n))
        {
            im2col(&g, x_b, &mut self.cols);
            add_bias(y_b, self.bias.as_ref(), n);
            // y_b (o, n) += W (o, k) · cols (k, n)
            gemm(1.0, w2, view2(&self.cols, k, n), 1.0, view2_mut(y_b, o, n));
        }
        (y, ConvCache { x })
    }

    /// Adds parameter gradients for `d_y` `(batch, out_ch, oh, ow)`; returns `d_x`.
    pub fn backward(&mut self, cache: ConvCache, d_y: &Array4<f32>) -> Array4<f32> {
        self.backward_inner(cache, d_y, true)
            .expect("input gradient requested")
    }

    /// Adds the parameter gradients only.
    pub fn backward_params(&mut self, cache: ConvCache, d_y: &Array4<f32>) {
        self.backward_inner(cache, d_y, false);
    }

    fn backward_inner(
        &mut self,
        cache: ConvCache,
        d_y: &Array4<f32>,
        want_dx: bool,
    ) -> Option<Array4<f32>> {
        let x = cache.x;
        let g = self.geom(&x);
        let d_y = d_y.as_standard_layout();
        let (k, n, o) = (g.rows(), g.cols(), self.spec.out_ch);
        assert_eq!(d_y.dim(), (x.dim().0, o, g.oh, g.ow), "Conv2d: d_y shape");
        let mut d_x = want_dx.then(|| Array4::zeros(x.dim()));
        self.cols.resize(k * n, 0.0);
        self.d_cols.resize(k * n, 0.0);
        let img = g.c * g.ih * g.iw;
        let w2 = view2(slice(&self.weight), o, k);
        let d_w2 = view2_mut(slice_mut(&mut self.d_weight), o, k);
        let mut d_w2 = d_w2;
        for (b, (x_b, d_y_b)) in slice(&x)
            .chunks_exact(img)
            .zip(d_y.as_slice().expect("standard").chunks_exact(o * n))
            .enumerate()
        {
            let d_y2 = view2(d_y_b, o, n);
            im2col(&g, x_b, &mut self.cols);
            // d_W (o, k) += d_y_b (o, n) · colsᵀ (n, k)
            gemm(1.0, d_y2, view2(&self.cols, k, n).t(), 1.0, d_w2.view_mut());
            add_bias_grad(self.d_bias.as_mut(), d_y_b, n);
            if let Some(d_x) = d_x.as_mut() {
                // d_cols (k, n) = Wᵀ (k, o) · d_y_b (o, n), scattered back into d_x_b
                gemm(1.0, w2.t(), d_y2, 0.0, view2_mut(&mut self.d_cols, k, n));
                col2im(
                    &g,
                    &self.d_cols,
                    &mut slice_mut(d_x)[b * img..(b + 1) * img],
                );
            }
        }
        d_x
    }

    /// Parameters and gradients, named `weight` and `bias`.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let mut out = vec![Param::new("weight", &mut self.weight, &mut self.d_weight)];
        if let (Some(b), Some(d_b)) = (self.bias.as_mut(), self.d_bias.as_mut()) {
            out.push(Param::new("bias", b, d_b));
        }
        out
    }
}

/// 2-D transposed convolution, weight `[in_ch, out_ch, kh, kw]` as in PyTorch and ONNX.
///
/// The forward pass is the input-gradient of a [`Conv2d`] with the same sizes: columns
/// `Wᵀ x` scattered by col2im; the backward gathers with im2col.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    /// Sizes.
    pub spec: ConvSpec,
    /// `(in_ch, out_ch, kh, kw)`
    pub weight: Array4<f32>,
    /// `(out_ch)`
    pub bias: Option<Array1<f32>>,
    /// `(in_ch, out_ch, kh, kw)`
    pub d_weight: Array4<f32>,
    /// `(out_ch)`
    pub d_bias: Option<Array1<f32>>,
    /// Column buffer `(out_ch * kh * kw, h * w)`, kept between calls.
    cols: Vec<f32>,
}

impl ConvTranspose2d {
    /// PyTorch's default initialisation: PyTorch takes the fan-in of a transposed
    /// convolution's weight `[in, out, kh, kw]` from its second axis, `out_ch * kh * kw`.
    pub fn new<R: Rng + ?Sized>(spec: ConvSpec, bias: bool, rng: &mut R) -> Self {
        let mut l = Self::zeros(spec, bias);
        let fan_in = patch(&spec, spec.out_ch);
        init::torch_default(slice_mut(&mut l.weight), fan_in, rng);
        if let Some(b) = l.bias.as_mut() {
            init::torch_default(b.as_slice_mut().expect("standard layout"), fan_in, rng);
        }
        l
    }

    /// All weights zero.
    pub fn zeros(spec: ConvSpec, bias: bool) -> Self {
        check(&spec, true);
        let shape = (spec.in_ch, spec.out_ch, spec.kernel.0, spec.kernel.1);
        ConvTranspose2d {
            spec,
            weight: Array4::zeros(shape),
            bias: bias.then(|| Array1::zeros(spec.out_ch)),
            d_weight: Array4::zeros(shape),
            d_bias: bias.then(|| Array1::zeros(spec.out_ch)),
            cols: Vec::new(),
        }
    }

    /// Geometry of the output image seen as the input of the matching convolution.
    fn geom(&self, x: &Array4<f32>) -> Geom {
        let (_, c, h, w) = x.dim();
        assert_eq!(
            c, self.spec.in_ch,
            "ConvTranspose2d: input has {c} channels, expected {}",
            self.spec.in_ch
        );
        let out = self
            .spec
            .conv_transpose_out(h, w)
            .unwrap_or_else(|| panic!("ConvTranspose2d: output of {h}x{w} input is empty"));
        Geom::new(&self.spec, self.spec.out_ch, out, (h, w))
    }

    /// `x`: `(batch, in_ch, h, w)` -> `(batch, out_ch, oh, ow)`.
    pub fn forward(&mut self, x: Array4<f32>) -> (Array4<f32>, ConvCache) {
        let x = standard(x);
        let g = self.geom(&x);
        let batch = x.dim().0;
        let (k, n, ci) = (g.rows(), g.cols(), self.spec.in_ch);
        let out_img = g.c * g.ih * g.iw;
        let mut y = Array4::zeros((batch, g.c, g.ih, g.iw));
        self.cols.resize(k * n, 0.0);
        let w2 = view2(slice(&self.weight), ci, k);
        for (x_b, y_b) in slice(&x)
            .chunks_exact(ci * n)
            .zip(slice_mut(&mut y).chunks_exact_mut(out_img))
        {
            // cols (k, n) = Wᵀ (k, in) · x_b (in, n)
            gemm(
                1.0,
                w2.t(),
                view2(x_b, ci, n),
                0.0,
                view2_mut(&mut self.cols, k, n),
            );
            add_bias(y_b, self.bias.as_ref(), g.ih * g.iw);
            col2im(&g, &self.cols, y_b);
        }
        (y, ConvCache { x })
    }

    /// Adds parameter gradients for `d_y` `(batch, out_ch, oh, ow)`; returns `d_x`.
    pub fn backward(&mut self, cache: ConvCache, d_y: &Array4<f32>) -> Array4<f32> {
        self.backward_inner(cache, d_y, true)
            .expect("input gradient requested")
    }

    /// Adds the parameter gradients only.
    pub fn backward_params(&mut self, cache: ConvCache, d_y: &Array4<f32>) {
        self.backward_inner(cache, d_y, false);
    }

    fn backward_inner(
        &mut self,
        cache: ConvCache,
        d_y: &Array4<f32>,
        want_dx: bool,
    ) -> Option<Array4<f32>> {
        let x = cache.x;
        let g = self.geom(&x);
        let d_y = d_y.as_standard_layout();
        let (k, n, ci) = (g.rows(), g.cols(), self.spec.in_ch);
        assert_eq!(
            d_y.dim(),
            (x.dim().0, g.c, g.ih, g.iw),
            "ConvTranspose2d: d_y shape"
        );
        let mut d_x = want_dx.then(|| Array4::zeros(x.dim()));
        self.cols.resize(k * n, 0.0);
        let out_img = g.c * g.ih * g.iw;
        let w2 = view2(slice(&self.weight), ci, k);
        let mut d_w2 = view2_mut(slice_mut(&mut self.d_weight), ci, k);
        let d_y_s = d_y.as_slice().expect("standard");
        for (b, (x_b, d_y_b)) in slice(&x)
            .chunks_exact(ci * n)
            .zip(d_y_s.chunks_exact(out_img))
            .enumerate()
        {
            // d_cols (k, n) = im2col(d_y_b)
            im2col(&g, d_y_b, &mut self.cols);
            let d_cols = view2(&self.cols, k, n);
            // d_W (in, k) += x_b (in, n) · d_colsᵀ (n, k)
            gemm(1.0, view2(x_b, ci, n), d_cols.t(), 1.0, d_w2.view_mut());
            add_bias_grad(self.d_bias.as_mut(), d_y_b, g.ih * g.iw);
            if let Some(d_x) = d_x.as_mut() {
                // d_x_b (in, n) = W (in, k) · d_cols (k, n)
                let d_x_b = &mut slice_mut(d_x)[b * ci * n..(b + 1) * ci * n];
                gemm(1.0, w2, d_cols, 0.0, view2_mut(d_x_b, ci, n));
            }
        }
        d_x
    }

    /// Parameters and gradients, named `weight` and `bias`.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let mut out = vec![Param::new("weight", &mut self.weight, &mut self.d_weight)];
        if let (Some(b), Some(d_b)) = (self.bias.as_mut(), self.d_bias.as_mut()) {
            out.push(Param::new("bias", b, d_b));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Direct convolution, the plain definition.
    fn conv_ref(
        spec: &ConvSpec,
        w: &Array4<f32>,
        b: Option<&Array1<f32>>,
        x: &Array4<f32>,
    ) -> Array4<f32> {
        let (bs, ci, h, wd) = x.dim();
        let (oh, ow) = spec.conv_out(h, wd).unwrap();
        let (kh, kw) = spec.kernel;
        Array4::from_shape_fn((bs, spec.out_ch, oh, ow), |(n, o, y, xx)| {
            let mut s = b.map_or(0.0, |b| f64::from(b[o]));
            for c in 0..ci {
                for i in 0..kh {
                    for j in 0..kw {
                        let iy = (y * spec.stride.0 + i) as isize - spec.pad.0 as isize;
                        let ix = (xx * spec.stride.1 + j) as isize - spec.pad.1 as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                            s += f64::from(w[[o, c, i, j]])
                                * f64::from(x[[n, c, iy as usize, ix as usize]]);
                        }
                    }
                }
            }
            s as f32
        })
    }

    /// Transposed convolution by its scatter definition: each input adds `x * w` into
    /// output position `y*s - p + i`.
    fn conv_t_ref(
        spec: &ConvSpec,
        w: &Array4<f32>,
        b: Option<&Array1<f32>>,
        x: &Array4<f32>,
    ) -> Array4<f32> {
        let (bs, ci, h, wd) = x.dim();
        let (oh, ow) = spec.conv_transpose_out(h, wd).unwrap();
        let mut acc = ndarray::Array4::<f64>::zeros((bs, spec.out_ch, oh, ow));
        for n in 0..bs {
            for o in 0..spec.out_ch {
                let bias = b.map_or(0.0, |b| f64::from(b[o]));
                acc.slice_mut(ndarray::s![n, o, .., ..]).fill(bias);
            }
            for c in 0..ci {
                for y in 0..h {
                    for xx in 0..wd {
                        for o in 0..spec.out_ch {
                            for i in 0..spec.kernel.0 {
                                for j in 0..spec.kernel.1 {
                                    let oy = (y * spec.stride.0 + i) as isize - spec.pad.0 as isize;
                                    let ox =
                                        (xx * spec.stride.1 + j) as isize - spec.pad.1 as isize;
                                    if oy >= 0
                                        && ox >= 0
                                        && (oy as usize) < oh
                                        && (ox as usize) < ow
                                    {
                                        acc[[n, o, oy as usize, ox as usize]] +=
                                            f64::from(w[[c, o, i, j]])
                                                * f64::from(x[[n, c, y, xx]]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        acc.mapv(|v| v as f32)
    }

    /// f32 sums of up to ~200 products of O(1) values against an f64 reference.
    const CONV_TOL: f32 = 1e-4;

    fn random_spec(rng: &mut StdRng) -> ConvSpec {
        let kh = rng.random_range(1..5usize);
        let kw = rng.random_range(1..5usize);
        let sh = rng.random_range(1..4usize);
        let sw = rng.random_range(1..4usize);
        ConvSpec {
            in_ch: rng.random_range(1..4),
            out_ch: rng.random_range(1..4),
            kernel: (kh, kw),
            stride: (sh, sw),
            pad: (rng.random_range(0..kh), rng.random_range(0..kw)),
            output_padding: (rng.random_range(0..sh), rng.random_range(0..sw)),
        }
    }

    #[test]
    fn conv_and_conv_transpose_match_direct_definitions_on_random_shapes() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut checked = (0, 0);
        for _ in 0..200 {
            let spec = random_spec(&mut rng);
            let h = rng.random_range(1..9usize);
            let w = rng.random_range(1..9usize);
            let bias = rng.random_bool(0.5);
            let x =
                Array4::from_shape_fn((2, spec.in_ch, h, w), |_| rng.random_range(-1.0f32..1.0));
            let plain = ConvSpec {
                output_padding: (0, 0),
                ..spec
            };
            if plain.conv_out(h, w).is_some() {
                let mut conv = Conv2d::new(plain, bias, &mut rng);
                let want = conv_ref(&plain, &conv.weight, conv.bias.as_ref(), &x);
                let (got, _) = conv.forward(x.clone());
                assert_eq!(got.dim(), want.dim());
                for (g, r) in got.iter().zip(want.iter()) {
                    assert!((g - r).abs() <= CONV_TOL, "{plain:?} {h}x{w}: {g} vs {r}");
                }
                checked.0 += 1;
            }
            if spec.conv_transpose_out(h, w).is_some() {
                let mut convt = ConvTranspose2d::new(spec, bias, &mut rng);
                let want = conv_t_ref(&spec, &convt.weight, convt.bias.as_ref(), &x);
                let (got, _) = convt.forward(x.clone());
                assert_eq!(got.dim(), want.dim());
                for (g, r) in got.iter().zip(want.iter()) {
                    assert!((g - r).abs() <= CONV_TOL, "{spec:?} {h}x{w}: {g} vs {r}");
                }
                checked.1 += 1;
            }
        }
        // The random sizes must exercise both layers many times.
        assert!(checked.0 > 50 && checked.1 > 50, "{checked:?}");
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        // <im2col(a), c> == <a, col2im(c)> for any a, c.
        let mut rng = StdRng::seed_from_u64(12);
        for _ in 0..50 {
            let spec = random_spec(&mut rng);
            let (h, w) = (rng.random_range(1..9usize), rng.random_range(1..9usize));
            let Some(out) = spec.conv_out(h, w) else {
                continue;
            };
            let g = Geom::new(&spec, spec.in_ch, (h, w), out);
            let a: Vec<f32> = (0..g.c * h * w)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let c: Vec<f32> = (0..g.rows() * g.cols())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut cols = vec![f32::NAN; c.len()];
            im2col(&g, &a, &mut cols);
            let mut img = vec![0.0; a.len()];
            col2im(&g, &c, &mut img);
            let lhs: f64 = cols
                .iter()
                .zip(&c)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            let rhs: f64 = a
                .iter()
                .zip(&img)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!(
                (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
                "{lhs} vs {rhs}"
            );
        }
    }
}
