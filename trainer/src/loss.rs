//! Losses. Each returns its value and the gradient with respect to its input(s).
//!
//! Per-element terms are computed in f32, accumulated in f64 and returned as f64 (a summed
//! BCE over a batch of MNIST images is ~10⁴, where f32 accumulation would lose digits);
//! gradients are f32.

use ndarray::{Array2, ArrayView2, Zip};

/// How per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Sum over all elements (PyTorch `reduction="sum"`).
    Sum,
    /// Mean over all elements (PyTorch `reduction="mean"`).
    Mean,
    /// Sum over all elements divided by the batch size (rows): the per-sample sum,
    /// averaged, as the VAE's ELBO per image.
    BatchMean,
}

impl Reduction {
    fn divisor(self, rows: usize, elements: usize) -> f64 {
        match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => elements.max(1) as f64,
            Reduction::BatchMean => rows.max(1) as f64,
        }
    }
}

/// Elements per logarithm in [`bce_with_logits`]; `2^512` is far inside f64's range.
const LOG_BLOCK: usize = 512;

/// Binary cross-entropy on logits `x` against targets `t` in `[0, 1]`:
/// `l = max(x, 0) - x t + log(1 + exp(-|x|))`, `dl/dx = sigmoid(x) - t`.
pub fn bce_with_logits(
    logits: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
    reduction: Reduction,
) -> (f64, Array2<f32>) {
    assert_eq!(
        logits.dim(),
        targets.dim(),
        "bce_with_logits: shapes differ"
    );
    let div = reduction.divisor(logits.nrows(), logits.len());
    let mut total = 0.0f64;
    let (mut product, mut pending) = (1.0f64, 0usize);
    let mut grad = Array2::zeros(logits.dim());
    let inv = (1.0 / div) as f32;
    Zip::from(&mut grad)
        .and(&logits)
        .and(&targets)
        .for_each(|g, &x, &t| {
            // One exponential serves both terms: e = exp(-|x|) <= 1,
            // softplus(x) = max(x, 0) + ln(1 + e), sigmoid(x) = 1/(1+e) or e/(1+e).
            let e = (-x.abs()).exp();
            total += f64::from(x.max(0.0) - x * t);
            // Σ ln(1 + e) = ln Π (1 + e): one logarithm per LOG_BLOCK elements
            // (each factor is in (1, 2], so a block's product stays below 2^LOG_BLOCK).
            product *= 1.0 + f64::from(e);
            pending += 1;
            if pending == LOG_BLOCK {
                total += product.ln();
                (product, pending) = (1.0, 0);
            }
            let s = if x >= 0.0 { 1.0 } else { e } / (1.0 + e);
            *g = (s - t) * inv;
        });
    total += product.ln();
    (total / div, grad)
}

/// Squared error `l = (p - t)²`, `dl/dp = 2 (p - t)`.
pub fn mse(
    pred: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
    reduction: Reduction,
) -> (f64, Array2<f32>) {
    assert_eq!(pred.dim(), targets.dim(), "mse: shapes differ");
    let div = reduction.divisor(pred.nrows(), pred.len());
    let inv = (2.0 / div) as f32;
    let mut total = 0.0f64;
    let mut grad = Array2::zeros(pred.dim());
    Zip::from(&mut grad)
        .and(&pred)
        .and(&targets)
        .for_each(|g, &p, &t| {
            let d = p - t;
            total += f64::from(d) * f64::from(d);
            *g = d * inv;
        });
    (total / div, grad)
}

/// Softmax cross-entropy of `logits` `(batch, classes)` against class indices `labels`
/// `(batch,)`: per sample `l = logsumexp(x) - x[label]`, `dl/dx = softmax(x) - onehot(label)`.
///
/// The per-sample losses are the elements being reduced: [`Reduction::Sum`] adds them,
/// [`Reduction::Mean`] and [`Reduction::BatchMean`] both average over the batch (PyTorch's
/// `cross_entropy` with `reduction="mean"`). The log-sum-exp subtracts each row's maximum
/// first and is accumulated in f64, so logits of ±1e4 stay finite.
///
/// # Panics
/// If `labels.len()` differs from the number of rows or a label is not below the number of
/// columns (callers check labels against the class count once, when the data set is loaded).
pub fn softmax_cross_entropy(
    logits: ArrayView2<'_, f32>,
    labels: &[u8],
    reduction: Reduction,
) -> (f64, Array2<f32>) {
    let (rows, classes) = logits.dim();
    assert_eq!(
        rows,
        labels.len(),
        "softmax_cross_entropy: {rows} rows but {} labels",
        labels.len()
    );
    let div = match reduction {
        Reduction::Sum => 1.0,
        Reduction::Mean | Reduction::BatchMean => rows.max(1) as f64,
    };
    let inv = 1.0 / div;
    let mut total = 0.0f64;
    let mut grad = Array2::zeros(logits.dim());
    for ((x, mut g), &label) in logits.rows().into_iter().zip(grad.rows_mut()).zip(labels) {
        let label = usize::from(label);
        assert!(
            label < classes,
            "softmax_cross_entropy: label {label} with {classes} classes"
        );
        let max = f64::from(x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
        let log_sum = x
            .iter()
            .map(|&v| (f64::from(v) - max).exp())
            .sum::<f64>()
            .ln();
        // logsumexp(x) - x[label] = ln Σ exp(x - max) - (x[label] - max)
        total += log_sum - (f64::from(x[label]) - max);
        for ((k, gk), &v) in g.iter_mut().enumerate().zip(x.iter()) {
            let p = (f64::from(v) - max - log_sum).exp();
            let onehot = if k == label { 1.0 } else { 0.0 };
            *gk = ((p - onehot) * inv) as f32;
        }
    }
    (total / div, grad)
}

/// The analytic KL divergence of `N(mu, exp(logvar))` from `N(0, 1)`, per element
/// `-0.5 (1 + logvar - mu² - exp(logvar))`.
#[derive(Debug, Clone)]
pub struct GaussianKl {
    /// The reduced value.
    pub value: f64,
    /// `d/d mu = mu` (reduced the same way).
    pub d_mu: Array2<f32>,
    /// `d/d logvar = 0.5 (exp(logvar) - 1)`.
    pub d_logvar: Array2<f32>,
}

/// KL divergence of the encoder's Gaussian from the standard normal prior.
pub fn gaussian_kl(
    mu: ArrayView2<'_, f32>,
    logvar: ArrayView2<'_, f32>,
    reduction: Reduction,
) -> GaussianKl {
    assert_eq!(mu.dim(), logvar.dim(), "gaussian_kl: shapes differ");
    let div = reduction.divisor(mu.nrows(), mu.len());
    let inv = (1.0 / div) as f32;
    let mut total = 0.0f64;
    let mut d_mu = Array2::zeros(mu.dim());
    let mut d_logvar = Array2::zeros(mu.dim());
    Zip::from(&mut d_mu)
        .and(&mut d_logvar)
        .and(&mu)
        .and(&logvar)
        .for_each(|dm, dl, &m, &lv| {
            let e = lv.exp();
            total += -0.5 * (1.0 + f64::from(lv) - f64::from(m) * f64::from(m) - f64::from(e));
            *dm = m * inv;
            *dl = 0.5 * (e - 1.0) * inv;
        });
    GaussianKl {
        value: total / div,
        d_mu,
        d_logvar,
    }
}

/// The adversarial objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GanLoss {
    /// D: BCE (real -> 1, fake -> 0); G: BCE(fake -> 1), i.e. `-log D(G(z))` (Goodfellow's
    /// non-saturating variant, the usual default).
    #[default]
    NonSaturating,
    /// D as above; G minimises `log(1 - D(G(z)))` (the original minimax game).
    Minimax,
    /// Least squares (LSGAN, Mao et al.): D `½ (D(x) - 1)² + ½ D(G(z))²`,
    /// G `½ (D(G(z)) - 1)²` on raw outputs.
    LeastSquares,
    /// Hinge (Lim & Ye; SAGAN): D `relu(1 - D(x)) + relu(1 + D(G(z)))`, G `-D(G(z))`.
    Hinge,
}

/// Discriminator loss value and gradients with respect to its raw outputs.
#[derive(Debug, Clone)]
pub struct DiscriminatorLoss {
    /// Mean over the batch of the real term plus mean of the fake term.
    pub value: f64,
    /// `(batch, 1)` gradient for the real outputs.
    pub d_real: Array2<f32>,
    /// `(batch, 1)` gradient for the fake outputs.
    pub d_fake: Array2<f32>,
}

impl GanLoss {
    /// Discriminator loss on raw outputs (logits for the BCE losses) `real` and `fake`,
    /// each `(batch, 1)`, each term a mean over its batch.
    ///
    /// `real_label` is the target for real samples: 1.0, or e.g. 0.9 for one-sided label
    /// smoothing (Salimans et al. 2016). It applies to the BCE and least-squares losses;
    /// the hinge loss has no target and ignores it.
    pub fn discriminator(
        self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        real_label: f32,
    ) -> DiscriminatorLoss {
        match self {
            GanLoss::NonSaturating | GanLoss::Minimax => {
                let t_real = Array2::from_elem(real.dim(), real_label);
                let t_fake = Array2::zeros(fake.dim());
                let (lr, d_real) = bce_with_logits(real, t_real.view(), Reduction::Mean);
                let (lf, d_fake) = bce_with_logits(fake, t_fake.view(), Reduction::Mean);
                DiscriminatorLoss {
                    value: lr + lf,
                    d_real,
                    d_fake,
                }
            }
            GanLoss::LeastSquares => {
                // ½ mean (D - t)²: half of mse's gradient.
                let t_real = Array2::from_elem(real.dim(), real_label);
                let t_fake = Array2::zeros(fake.dim());
                let (lr, d_real) = mse(real, t_real.view(), Reduction::Mean);
                let (lf, d_fake) = mse(fake, t_fake.view(), Reduction::Mean);
                DiscriminatorLoss {
                    value: 0.5 * (lr + lf),
                    d_real: d_real * 0.5,
                    d_fake: d_fake * 0.5,
                }
            }
            GanLoss::Hinge => {
                let (lr, d_real) = hinge(real, 1.0);
                let (lf, d_fake) = hinge(fake, -1.0);
                DiscriminatorLoss {
                    value: lr + lf,
                    d_real,
                    d_fake,
                }
            }
        }
    }

    /// Generator loss on the discriminator's raw outputs for fakes, `(batch, 1)`, a mean
    /// over the batch; returns the value and its gradient with respect to `fake`.
    pub fn generator(self, fake: ArrayView2<'_, f32>) -> (f64, Array2<f32>) {
        match self {
            GanLoss::NonSaturating => {
                let ones = Array2::ones(fake.dim());
                bce_with_logits(fake, ones.view(), Reduction::Mean)
            }
            GanLoss::Minimax => {
                // log(1 - sigmoid(x)) = -softplus(x): minus the BCE against 0.
                let zeros = Array2::zeros(fake.dim());
                let (v, g) = bce_with_logits(fake, zeros.view(), Reduction::Mean);
                (-v, -g)
            }
            GanLoss::LeastSquares => {
                let ones = Array2::ones(fake.dim());
                let (v, g) = mse(fake, ones.view(), Reduction::Mean);
                (0.5 * v, g * 0.5)
            }
            GanLoss::Hinge => {
                let n = fake.len().max(1) as f64;
                let v = -fake.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
                (v, Array2::from_elem(fake.dim(), (-1.0 / n) as f32))
            }
        }
    }
}

/// `mean relu(1 - sign * x)` and its gradient (`sign` +1 for real, -1 for fake).
fn hinge(x: ArrayView2<'_, f32>, sign: f32) -> (f64, Array2<f32>) {
    let n = x.len().max(1) as f64;
    let inv = (1.0 / n) as f32;
    let mut total = 0.0f64;
    let grad = x.mapv(|v| {
        let m = 1.0 - sign * v;
        if m > 0.0 {
            total += f64::from(m);
            -sign * inv
        } else {
            0.0
        }
    });
    (total / n, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Values below are computed by hand to f64 precision; f32 inputs limit agreement to ~1e-6.
    const VALUE_TOL: f64 = 1e-6;

    #[test]
    fn bce_with_logits_known_values_and_extremes() {
        // x = 0, t = 1: log 2. x = 2, t = 0: softplus(2) = 2.126928011.
        let (v, g) = bce_with_logits(
            array![[0.0f32, 2.0]].view(),
            array![[1.0f32, 0.0]].view(),
            Reduction::Sum,
        );
        assert!(
            (v - (std::f64::consts::LN_2 + 2.126_928_011_042_972_5)).abs() < VALUE_TOL,
            "{v}"
        );
        assert!((g[[0, 0]] + 0.5).abs() < 1e-7 && (g[[0, 1]] - 0.880_797_1).abs() < 1e-6);
        // Large logits stay finite: x = 100, t = 0 costs 100; x = -100, t = 1 costs 100.
        let (v, g) = bce_with_logits(
            array![[100.0f32, -100.0]].view(),
            array![[0.0f32, 1.0]].view(),
            Reduction::Mean,
        );
        assert!((v - 100.0).abs() < 1e-9, "{v}");
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn softmax_cross_entropy_known_values_and_extremes() {
        // Equal logits over 4 classes: softmax 1/4 each, loss ln 4; d/dx = 1/4 - onehot.
        let (v, g) = softmax_cross_entropy(
            array![[0.0f32, 0.0, 0.0, 0.0]].view(),
            &[2],
            Reduction::Mean,
        );
        assert!((v - 4f64.ln()).abs() < VALUE_TOL, "{v}");
        assert!((g[[0, 2]] + 0.75).abs() < 1e-7 && (g[[0, 0]] - 0.25).abs() < 1e-7);
        // Logits (1e4, 0): the right class costs ln(1 + exp(-1e4)) = 0, the wrong one 1e4;
        // the gradient stays finite (softmax (1, 0) minus the one-hot).
        let (v, g) = softmax_cross_entropy(
            array![[1.0e4f32, 0.0], [1.0e4, 0.0]].view(),
            &[0, 1],
            Reduction::Sum,
        );
        assert!((v - 1.0e4).abs() < 1e-9, "{v}");
        assert!(g.iter().all(|x| x.is_finite()));
        assert!((g[[1, 0]] - 1.0).abs() < 1e-7 && (g[[1, 1]] + 1.0).abs() < 1e-7);
    }

    #[test]
    fn kl_is_zero_at_the_prior() {
        let z = Array2::<f32>::zeros((3, 4));
        let kl = gaussian_kl(z.view(), z.view(), Reduction::Sum);
        assert!(kl.value.abs() < VALUE_TOL);
        // mu = 1, logvar = 0: 0.5 per element.
        let kl = gaussian_kl(
            array![[1.0f32]].view(),
            array![[0.0f32]].view(),
            Reduction::Sum,
        );
        assert!((kl.value - 0.5).abs() < VALUE_TOL);
    }

    #[test]
    fn label_smoothing_moves_the_real_target() {
        let real = array![[0.0f32]];
        let fake = array![[-50.0f32]];
        let d = GanLoss::NonSaturating.discriminator(real.view(), fake.view(), 0.9);
        // d/dx at x = 0 against t = 0.9: 0.5 - 0.9.
        assert!((d.d_real[[0, 0]] + 0.4).abs() < 1e-6);
    }
}
