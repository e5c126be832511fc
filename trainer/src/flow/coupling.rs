//! RealNVP's affine coupling (Dinh et al. 2017, section 3.3), forward and inverse side by side.
//!
//! The input `x` `(batch, D)` is split into its first `d_a = D / 2` features `x_a` and the
//! remaining `d_b = D - d_a` features `x_b`. A small MLP of `x_a` (Linear-ReLU-Linear-ReLU-Linear)
//! gives `2 d_b` outputs `[raw_s, t]`, and
//!
//! `s = scale ⊙ tanh(raw_s)`, `y_a = x_a`, `y_b = x_b ⊙ exp(s) + t`, `log|det J| = Σ_j s_j`,
//!
//! with `scale` a learned per-dimension factor (the tanh keeps `|s| <= |scale|`, so one large
//! network output cannot overflow `exp`). The inverse reads `x_a = y_a` and recomputes `s` and `t`
//! from it: `x_b = (y_b - t) ⊙ exp(-s)`.

use ndarray::{s, Array1, Array2, ArrayView2, Axis, Zip};
use rand::Rng;

use crate::nn::{Activation, Caches, Linear, Mode, Param, Sequential};

/// An affine coupling layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct AffineCoupling {
    /// `x_a` `(batch, d_a)` -> `[raw_s, t]` `(batch, 2 d_b)`; parameters named `net.fc*`.
    pub net: Sequential,
    /// `(d_b)`: the bound of `|s|` per dimension.
    pub scale: Array1<f32>,
    /// `(d_b)`, accumulated by [`AffineCoupling::backward`].
    pub d_scale: Array1<f32>,
    dim: usize,
}

/// What [`AffineCoupling::backward`] needs from the forward pass.
#[derive(Debug, Clone)]
pub struct CouplingCache {
    net: Caches,
    /// `(batch, d_b)`
    x_b: Array2<f32>,
    /// `(batch, d_b)`: `tanh(raw_s)`.
    tanh_s: Array2<f32>,
    /// `(batch, d_b)`: `exp(s)`.
    exp_s: Array2<f32>,
}

/// `[a, b]` along the features, in standard layout.
fn concat(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = Array2::zeros((a.nrows(), a.ncols() + b.ncols()));
    out.slice_mut(s![.., ..a.ncols()]).assign(&a);
    out.slice_mut(s![.., a.ncols()..]).assign(&b);
    out
}

/// A generator for [`Sequential::forward`]: the MLP has no dropout, so it draws nothing.
fn no_rng() -> rand::rngs::StdRng {
    <rand::rngs::StdRng as rand::SeedableRng>::from_seed([0; 32])
}

impl AffineCoupling {
    /// A coupling of `dim` features with hidden width `hidden`. The MLP's hidden layers have
    /// PyTorch's default initialisation and its last layer is zero, so a new coupling is the
    /// identity (`s = t = 0`), as in Glow; `scale` starts at 1.
    pub fn new<R: Rng + ?Sized>(dim: usize, hidden: usize, rng: &mut R) -> Self {
        assert!(
            dim >= 2,
            "a coupling needs at least two features, got {dim}"
        );
        let (d_a, d_b) = (dim / 2, dim - dim / 2);
        let net = Sequential::new("net")
            .with("fc1", Linear::new(d_a, hidden, true, rng))
            .with("relu1", Activation::Relu)
            .with("fc2", Linear::new(hidden, hidden, true, rng))
            .with("relu2", Activation::Relu)
            .with("fc3", Linear::zeros(hidden, 2 * d_b, true));
        AffineCoupling {
            net,
            scale: Array1::ones(d_b),
            d_scale: Array1::zeros(d_b),
            dim,
        }
    }

    /// Features in and out.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `(d_a, d_b)`: the sizes of the kept and the transformed part.
    pub fn split(&self) -> (usize, usize) {
        (self.dim / 2, self.dim - self.dim / 2)
    }

    /// `(tanh(raw_s), t)`, each `(batch, d_b)`, from the network's output `(batch, 2 d_b)`.
    fn split_net(&self, h: &Array2<f32>) -> (Array2<f32>, Array2<f32>) {
        let d_b = self.split().1;
        let tanh_s = h.slice(s![.., ..d_b]).mapv(f32::tanh);
        (tanh_s, h.slice(s![.., d_b..]).to_owned())
    }

    fn run_net(&mut self, x_a: Array2<f32>) -> (Array2<f32>, Caches) {
        let (h, caches) = self.net.forward(x_a.into_dyn(), Mode::Train, &mut no_rng());
        let h = h
            .into_dimensionality::<ndarray::Ix2>()
            .expect("the MLP ends in a Linear layer");
        (h, caches)
    }

    /// `x` `(batch, D)` -> `(y (batch, D), log|det J| (batch), cache)`.
    pub fn forward(&mut self, x: &Array2<f32>) -> (Array2<f32>, Array1<f32>, CouplingCache) {
        assert_eq!(x.ncols(), self.dim, "coupling: input width");
        let d_a = self.split().0;
        let x_a = x.slice(s![.., ..d_a]).to_owned();
        let x_b = x.slice(s![.., d_a..]).to_owned();
        let (h, net) = self.run_net(x_a);
        let (tanh_s, t) = self.split_net(&h);
        // s = scale ⊙ tanh(raw_s); y_b = x_b ⊙ exp(s) + t
        let mut exp_s = tanh_s.clone();
        exp_s
            .axis_iter_mut(Axis(0))
            .for_each(|mut row| row.zip_mut_with(&self.scale, |v, &c| *v *= c));
        let log_det = exp_s.sum_axis(Axis(1));
        exp_s.mapv_inplace(f32::exp);
        let mut y_b = t;
        Zip::from(&mut y_b)
            .and(&x_b)
            .and(&exp_s)
            .for_each(|y, &xb, &e| *y += xb * e);
        let y = concat(x.slice(s![.., ..d_a]), y_b.view());
        let cache = CouplingCache {
            net,
            x_b,
            tanh_s,
            exp_s,
        };
        (y, log_det, cache)
    }

    /// `y` `(batch, D)` -> `x`: `x_a = y_a`, `x_b = (y_b - t) ⊙ exp(-s)`.
    pub fn inverse(&mut self, y: &Array2<f32>) -> Array2<f32> {
        assert_eq!(y.ncols(), self.dim, "coupling: input width");
        let d_a = self.split().0;
        let (h, _) = self.run_net(y.slice(s![.., ..d_a]).to_owned());
        let (tanh_s, t) = self.split_net(&h);
        let mut x_b = y.slice(s![.., d_a..]).to_owned();
        // exp(-s) with -s = (-scale) ⊙ tanh(raw_s): the order of operations of the exported graph.
        Zip::from(&mut x_b)
            .and(&t)
            .and(&tanh_s)
            .and_broadcast(&self.scale)
            .for_each(|x, &t, &th, &c| *x = (*x - t) * (-c * th).exp());
        concat(y.slice(s![.., ..d_a]), x_b.view())
    }

    /// Consumes the cache: given `d_y` `(batch, D)` and `d_log_det` `(batch)` (the loss's
    /// gradient with respect to each row's log-determinant), adds the parameter gradients and
    /// returns `d_x` `(batch, D)`.
    pub fn backward(
        &mut self,
        cache: CouplingCache,
        d_y: &Array2<f32>,
        d_log_det: &Array1<f32>,
    ) -> Array2<f32> {
        let d_a = self.split().0;
        let CouplingCache {
            net,
            x_b,
            tanh_s,
            exp_s,
        } = cache;
        let d_yb = d_y.slice(s![.., d_a..]);
        // d_x_b = d_y_b ⊙ exp(s); d_t = d_y_b
        let mut d_xb = d_yb.to_owned();
        d_xb *= &exp_s;
        // d_s = d_y_b ⊙ x_b ⊙ exp(s) + d_log_det (broadcast over the row)
        let mut d_s = d_xb.clone();
        d_s *= &x_b;
        d_s.axis_iter_mut(Axis(0))
            .zip(d_log_det)
            .for_each(|(mut row, &g)| row += g);
        // s = c ⊙ th: d_c += Σ_batch d_s ⊙ th; d_raw_s = d_s ⊙ c ⊙ (1 - th²)
        Zip::from(&mut self.d_scale)
            .and(d_s.columns())
            .and(tanh_s.columns())
            .for_each(|g, ds, th| *g += ds.dot(&th));
        let mut d_raw = d_s;
        Zip::from(&mut d_raw)
            .and(&tanh_s)
            .and_broadcast(&self.scale)
            .for_each(|d, &th, &c| *d *= c * (1.0 - th * th));
        let d_h = concat(d_raw.view(), d_yb);
        let d_xa = self.net.backward(net, d_h.into_dyn());
        let mut d_xa = d_xa
            .into_dimensionality::<ndarray::Ix2>()
            .expect("the MLP starts with a Linear layer");
        d_xa += &d_y.slice(s![.., ..d_a]);
        concat(d_xa.view(), d_xb.view())
    }

    /// Parameters: the MLP's (`net.fc1.weight`, ...) and `scale`.
    pub fn parameters(&mut self) -> Vec<Param<'_>> {
        let mut out = self.net.parameters();
        out.push(Param::new("scale", &mut self.scale, &mut self.d_scale));
        out
    }
}
