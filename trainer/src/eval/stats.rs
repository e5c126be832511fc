//! The metrics on features and predicted classes: Frechet distance, improved precision and
//! recall, class coverage and KL divergence, nearest neighbours.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use crate::gemm::gemm;

/// The share of the samples a class needs to count as covered in [`coverage`] (5 %).
pub const COVERAGE_MIN_FRACTION: f64 = 0.05;

/// Distance matrices are computed in blocks of at most this many entries (16 MB of f32).
const BLOCK_ENTRIES: usize = 1 << 22;

/// Mean and covariance of a set of feature vectors, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// Number of vectors.
    pub count: usize,
    /// The mean. // (dim,)
    pub mean: Array1<f64>,
    /// The unbiased covariance (divided by `count - 1`, as `numpy.cov`). // (dim, dim)
    pub cov: Array2<f64>,
}

impl FeatureStats {
    /// Statistics of the rows of `features` `(n, dim)`. With fewer than two rows the covariance
    /// is zero (and with none the mean is zero too).
    pub fn from_features(features: ArrayView2<'_, f32>) -> FeatureStats {
        let (n, d) = features.dim();
        let x = features.mapv(f64::from);
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
        let centred = &x - &mean;
        // (dim, n) · (n, dim): one f64 matrix product.
        let cov = centred.t().dot(&centred) / (n.max(2) - 1) as f64;
        FeatureStats {
            count: n,
            mean,
            cov,
        }
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// The symmetric part `(m + mᵀ) / 2` of a square array, as a nalgebra matrix.
fn symmetric(m: &Array2<f64>) -> DMatrix<f64> {
    let d = m.nrows();
    DMatrix::from_fn(d, d, |i, j| 0.5 * (m[[i, j]] + m[[j, i]]))
}

/// Eigendecomposition of a symmetric matrix; `None` if it does not converge.
fn eigen(m: DMatrix<f64>) -> Option<SymmetricEigen<f64, nalgebra::Dyn>> {
    let iterations = 100 * m.nrows() + 1000;
    SymmetricEigen::try_new(m, f64::EPSILON, iterations)
}

/// The Frechet distance between the Gaussians `N(mu1, S1)` and `N(mu2, S2)` (Heusel et al.
/// 2017): `|mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))`.
///
/// `tr(sqrt(S1 S2))` is the sum of the square roots of the eigenvalues of the symmetric positive
/// semi-definite `sqrt(S1) S2 sqrt(S1)` (similar to `S1 S2`), each clamped at zero first, with
/// `sqrt(S1)` from the eigendecomposition of `S1` (negative eigenvalues clamped too). Unlike
/// `scipy.linalg.sqrtm(S1 S2)` this needs no offset on the diagonal for nearly singular
/// covariances (fewer samples than dimensions, dead features) and never gives complex values.
/// Rounding can leave a value a few ulps below zero; the result is clamped at zero.
///
/// Returns NaN if the dimensions differ or a statistic is not finite.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> f64 {
    let d = a.dim();
    let shapes_ok = b.dim() == d && a.cov.dim() == (d, d) && b.cov.dim() == (d, d);
    let finite = |s: &FeatureStats| s.mean.iter().chain(&s.cov).all(|v| v.is_finite());
    if !shapes_ok || !finite(a) || !finite(b) {
        return f64::NAN;
    }
    let diff: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let s1 = symmetric(&a.cov);
    let s2 = symmetric(&b.cov);
    let (tr1, tr2) = (s1.trace(), s2.trace());
    let Some(e1) = eigen(s1) else {
        return f64::NAN;
    };
    let roots = e1.eigenvalues.map(|l| l.max(0.0).sqrt());
    let sqrt_s1 = &e1.eigenvectors * DMatrix::from_diagonal(&roots) * e1.eigenvectors.transpose();
    let m = &sqrt_s1 * s2 * &sqrt_s1;
    let m = (&m + m.transpose()) * 0.5;
    let Some(em) = eigen(m) else {
        return f64::NAN;
    };
    let tr_sqrt: f64 = em.eigenvalues.iter().map(|l| l.max(0.0).sqrt()).sum();
    (diff + tr1 + tr2 - 2.0 * tr_sqrt).max(0.0)
}

/// Improved precision and recall of a generated set against a real one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated points inside the real manifold estimate (sample quality).
    pub precision: f64,
    /// Fraction of real points inside the generated manifold estimate (sample diversity).
    pub recall: f64,
}

/// Squared row norms. // (n,)
fn row_norms(x: ArrayView2<'_, f32>) -> Vec<f32> {
    x.rows().into_iter().map(|r| r.dot(&r)).collect()
}

/// `x` minus the f64 mean of the rows of `centre`: distances do not change, and the
/// `|a|² + |b|² - 2 a·b` form loses fewer digits to cancellation near the origin.
fn centred(x: ArrayView2<'_, f32>, centre: ArrayView2<'_, f32>) -> Array2<f32> {
    let mean = centre
        .mapv(f64::from)
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(centre.ncols()))
        .mapv(|v| v as f32);
    &x - &mean
}

/// Squared Euclidean distances `(a rows, b rows)` into `out`: `|a|² + |b|² - 2 a·bᵀ`, clamped at
/// zero. `a_norms` and `b_norms` are the squared row norms.
fn squared_distances(
    a: ArrayView2<'_, f32>,
    a_norms: &[f32],
    b: ArrayView2<'_, f32>,
    b_norms: &[f32],
    out: &mut Array2<f32>,
) {
    // out (na, nb) = -2 a (na, d) · bᵀ (d, nb)
    gemm(-2.0, a, b.t(), 0.0, out.view_mut());
    for (mut row, &an) in out.rows_mut().into_iter().zip(a_norms) {
        for (v, &bn) in row.iter_mut().zip(b_norms) {
            *v = (*v + an + bn).max(0.0);
        }
    }
}

/// Rows per block when each row meets `cols` columns.
fn block_rows(cols: usize, block_entries: usize) -> usize {
    (block_entries / cols.max(1)).max(1)
}

/// The squared distance of each row of `x` to its `k`-th nearest other row.
fn knn_radii(x: ArrayView2<'_, f32>, k: usize, block_entries: usize) -> Vec<f32> {
    let n = x.nrows();
    let norms = row_norms(x);
    let mut radii = Vec::with_capacity(n);
    let rows = block_rows(n, block_entries);
    let mut start = 0;
    while start < n {
        let end = (start + rows).min(n);
        let mut d = Array2::zeros((end - start, n));
        squared_distances(
            x.slice(s![start..end, ..]),
            &norms[start..end],
            x,
            &norms,
            &mut d,
        );
        for (i, mut row) in d.rows_mut().into_iter().enumerate() {
            // Self excluded: its own distance goes last.
            row[start + i] = f32::INFINITY;
            let mut v = row.to_vec();
            let (_, kth, _) = v.select_nth_unstable_by(k - 1, f32::total_cmp);
            radii.push(*kth);
        }
        start = end;
    }
    radii
}

/// [`precision_recall`] with a given block size (tests use small ones to cross block edges).
fn precision_recall_blocked(
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    k: usize,
    block_entries: usize,
) -> PrecisionRecall {
    let (nr, nf) = (real.nrows(), fake.nrows());
    if k == 0 || k >= nr || k >= nf || real.ncols() != fake.ncols() {
        return PrecisionRecall {
            precision: f64::NAN,
            recall: f64::NAN,
        };
    }
    // Both sets move by the same vector (the real mean), so no distance changes.
    let fake = centred(fake, real);
    let real = centred(real, real);
    let real_radii = knn_radii(real.view(), k, block_entries);
    let fake_radii = knn_radii(fake.view(), k, block_entries);
    let real_norms = row_norms(real.view());
    let fake_norms = row_norms(fake.view());
    let mut fake_inside = vec![false; nf];
    let mut real_inside = vec![false; nr];
    let rows = block_rows(nf, block_entries);
    let mut start = 0;
    while start < nr {
        let end = (start + rows).min(nr);
        let mut d = Array2::zeros((end - start, nf));
        squared_distances(
            real.slice(s![start..end, ..]),
            &real_norms[start..end],
            fake.view(),
            &fake_norms,
            &mut d,
        );
        for (i, row) in d.rows().into_iter().enumerate() {
            let r_real = real_radii[start + i];
            for ((&dist, &r_fake), inside) in row.iter().zip(&fake_radii).zip(&mut fake_inside) {
                // Fake j lies in real i's ball: it counts for precision.
                *inside |= dist <= r_real;
                // Real i lies in fake j's ball: it counts for recall.
                real_inside[start + i] |= dist <= r_fake;
            }
        }
        start = end;
    }
    let fraction = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
    PrecisionRecall {
        precision: fraction(&fake_inside),
        recall: fraction(&real_inside),
    }
}

/// Improved precision and recall (Kynkaanniemi et al. 2019) of `fake` `(n_fake, dim)` against
/// `real` `(n_real, dim)` with `k` neighbours.
///
/// Each point's radius is the distance to its `k`-th nearest neighbour in its own set (itself
/// excluded); the union of a set's balls estimates its manifold. Precision is the fraction of fake
/// points inside at least one real ball; recall the fraction of real points inside at least one
/// fake ball. The paper uses `k = 3` on 5,000 + 5,000 VGG features; the numbers depend on `k` and
/// on the set sizes, so compare runs with the same ones.
///
/// Pairwise squared distances are computed in blocks with one matrix product each. Returns NaN
/// for both if `k` is 0 or not below both set sizes, or if the dimensions differ.
pub fn precision_recall(
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    k: usize,
) -> PrecisionRecall {
    precision_recall_blocked(real, fake, k, BLOCK_ENTRIES)
}

/// [`nearest_neighbours`] with a given block size.
fn nearest_neighbours_blocked(
    queries: ArrayView2<'_, f32>,
    pool: ArrayView2<'_, f32>,
    block_entries: usize,
) -> Vec<(usize, f32)> {
    let (nq, np) = (queries.nrows(), pool.nrows());
    if np == 0 || queries.ncols() != pool.ncols() {
        return vec![(0, f32::NAN); nq];
    }
    let q = centred(queries, pool);
    let p = centred(pool, pool);
    let q_norms = row_norms(q.view());
    let p_norms = row_norms(p.view());
    let p_max = p_norms.iter().fold(0.0f32, |m, &v| m.max(v));
    // Per query: the best squared distance by the fast formula, and every pool index within
    // the rounding error (`slack`) of it with its fast distance; rescored exactly below.
    let mut best = vec![f32::INFINITY; nq];
    let mut near: Vec<Vec<(usize, f32)>> = vec![Vec::new(); nq];
    // The rounding error of |a|² + |b|² - 2 a·b in f32 is a few ulps of |a|² + |b|² per
    // accumulated term; 1e-5 of the sum covers dimensions into the thousands.
    let slack: Vec<f32> = q_norms.iter().map(|&qn| 1e-5 * (qn + p_max)).collect();
    let cols = block_rows(nq.min(256), block_entries).min(np);
    let rows = block_rows(cols, block_entries);
    let mut qs = 0;
    while qs < nq {
        let qe = (qs + rows).min(nq);
        let mut ps = 0;
        while ps < np {
            let pe = (ps + cols).min(np);
            let mut d = Array2::zeros((qe - qs, pe - ps));
            squared_distances(
                q.slice(s![qs..qe, ..]),
                &q_norms[qs..qe],
                p.slice(s![ps..pe, ..]),
                &p_norms[ps..pe],
                &mut d,
            );
            for (i, row) in d.rows().into_iter().enumerate() {
                let qi = qs + i;
                for (j, &v) in row.iter().enumerate() {
                    if v <= best[qi] + slack[qi] {
                        near[qi].push((ps + j, v));
                        if v < best[qi] {
                            best[qi] = v;
                            let limit = v + slack[qi];
                            near[qi].retain(|&(_, dc)| dc <= limit);
                        }
                    }
                }
            }
            ps = pe;
        }
        qs = qe;
    }
    // Exact f64 distances of the candidates (in index order, so ties go to the lower index):
    // an exact copy comes out at 0.
    near.iter()
        .enumerate()
        .map(|(qi, cands)| {
            let mut top = (0usize, f64::INFINITY);
            for &(c, _) in cands {
                let dc = squared_exact(queries.row(qi), pool.row(c));
                if dc < top.1 {
                    top = (c, dc);
                }
            }
            (top.0, top.1.sqrt() as f32)
        })
        .collect()
}

/// `|a - b|²` accumulated in f64.
fn squared_exact(a: ndarray::ArrayView1<'_, f32>, b: ndarray::ArrayView1<'_, f32>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum()
}

/// For each row of `queries` `(n, dim)`, the index of the nearest row of `pool` `(m, dim)` and
/// the Euclidean distance to it (pixels or features; e.g. samples against the training images, to
/// see whether a generator copies them).
///
/// Candidates are found with blocked matrix products (`|a|² + |b|² - 2 a·b`); those within
/// the rounding error of the best are rescored exactly in f64, so an exact copy is found at
/// distance 0. Ties go to the lower index. An empty pool or differing dimensions give
/// `(0, NaN)` for every query.
pub fn nearest_neighbours(
    queries: ArrayView2<'_, f32>,
    pool: ArrayView2<'_, f32>,
) -> Vec<(usize, f32)> {
    nearest_neighbours_blocked(queries, pool, BLOCK_ENTRIES)
}

/// The fraction of `labels` in each class `0..classes` (labels at or above `classes` are not
/// counted, but do count in the total). All zero for no labels.
pub fn class_histogram(labels: &[u8], classes: usize) -> Vec<f64> {
    let mut h = vec![0.0; classes];
    for &l in labels {
        if let Some(v) = h.get_mut(usize::from(l)) {
            *v += 1.0;
        }
    }
    let n = labels.len().max(1) as f64;
    h.iter_mut().for_each(|v| *v /= n);
    h
}

/// `hist` divided by its sum (counts or fractions alike), or `None` if the sum is not positive
/// and finite.
fn normalised(hist: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = hist.iter().sum();
    (total > 0.0 && total.is_finite()).then(|| hist.iter().map(|v| v / total).collect())
}

/// The number of classes that receive at least `min_fraction` of the samples
/// ([`COVERAGE_MIN_FRACTION`] is the usual 5 %). `hist` may hold counts or fractions; it is
/// normalised first. An empty histogram covers nothing.
pub fn coverage(hist: &[f64], min_fraction: f64) -> usize {
    normalised(hist).map_or(0, |p| p.iter().filter(|&&v| v >= min_fraction).count())
}

/// `KL(p_generated || p_reference) = Σ p ln(p / q)` in nats, both histograms normalised first
/// (counts or fractions). Zero when the class frequencies match; infinite when a class the
/// reference never shows is generated; NaN if the lengths differ or a histogram is empty.
pub fn class_kl(p_generated: &[f64], p_reference: &[f64]) -> f64 {
    if p_generated.len() != p_reference.len() {
        return f64::NAN;
    }
    let (Some(p), Some(q)) = (normalised(p_generated), normalised(p_reference)) else {
        return f64::NAN;
    };
    p.iter()
        .zip(&q)
        .filter(|(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            if qi > 0.0 {
                pi * (pi / qi).ln()
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(rng: &mut StdRng, n: usize, d: usize) -> Array2<f32> {
        Array2::from_shape_simple_fn((n, d), || StandardNormal.sample(rng))
    }

    fn diagonal_stats(mean: &[f64], var: &[f64]) -> FeatureStats {
        FeatureStats {
            count: 0,
            mean: Array1::from(mean.to_vec()),
            cov: Array2::from_diag(&Array1::from(var.to_vec())),
        }
    }

    /// An orthogonal matrix from the eigenvectors of a random symmetric one.
    fn rotation(rng: &mut StdRng, d: usize) -> Array2<f64> {
        let a = gaussian(rng, d, d).mapv(f64::from);
        let e = eigen(symmetric(&a)).unwrap();
        Array2::from_shape_fn((d, d), |(i, j)| e.eigenvectors[(i, j)])
    }

    #[test]
    fn stats_mean_and_unbiased_covariance() {
        // Rows (0, 0), (2, 2), (4, -2): mean (2, 0); deviations (-2, 0), (0, 2), (2, -2);
        // cov = Σ dev devᵀ / 2 = [[8, -4], [-4, 8]] / 2 = [[4, -2], [-2, 4]].
        let x = ndarray::array![[0.0f32, 0.0], [2.0, 2.0], [4.0, -2.0]];
        let s = FeatureStats::from_features(x.view());
        assert_eq!(s.mean, ndarray::array![2.0, 0.0]);
        assert_eq!(s.cov, ndarray::array![[4.0, -2.0], [-2.0, 4.0]]);
    }

    /// FD of a set with itself is `2 tr S - 2 Σ sqrt(eig(S^½ S S^½)) = 2 tr S - 2 Σ λᵢ = 0`.
    /// In f64 the eigenvalues of `S^½ S S^½ = S²` carry an absolute error of about
    /// `d ε λ_max²`; at a zero eigenvalue (rank-deficient S) the square root turns that into
    /// `sqrt(d ε) λ_max ≈ 1.7e-7 λ_max` for d = 128. Summed over the null space and doubled,
    /// that stays below 1e-5 tr S for these sets; any real error (a missing trace term, a
    /// wrong square root) is of order tr S.
    #[test]
    fn fd_of_identical_sets_is_zero() {
        const IDENTICAL_REL_TOL: f64 = 1e-5;
        let mut rng = StdRng::seed_from_u64(1);
        // Full rank (2000 samples of 32 dims) and rank-deficient (40 samples of 128 dims).
        for (n, d) in [(2000, 32), (40, 128)] {
            let x = gaussian(&mut rng, n, d).mapv(|v| v * 3.0 + 1.0);
            let s = FeatureStats::from_features(x.view());
            let fd = frechet_distance(&s, &s);
            let tr = s.cov.diag().sum();
            assert!(
                fd.abs() <= IDENTICAL_REL_TOL * tr,
                "n {n} d {d}: FD {fd:e}, tr {tr}"
            );
        }
    }

    /// For diagonal covariances `S1 = diag(a²)`, `S2 = diag(b²)`: `sqrt(S1 S2) = diag(a b)`, so
    /// `FD = |mu1 - mu2|² + Σ (aᵢ - bᵢ)²`. Rotating both covariances by the same orthogonal
    /// `Q` (`Q S Qᵀ`) leaves the value unchanged while making them full matrices.
    #[test]
    fn fd_of_diagonal_gaussians_matches_closed_form() {
        // Values are O(10); f64 eigendecompositions agree to ~1e-13, so 1e-9 is generous.
        const CLOSED_FORM_TOL: f64 = 1e-9;
        let mu1 = [1.0, -2.0, 0.5, 3.0, 0.0];
        let mu2 = [0.0, 1.0, 0.5, -1.0, 2.0];
        let sd1 = [1.0, 2.0, 0.5, 3.0, 0.1];
        let sd2 = [2.0, 0.5, 0.5, 1.0, 4.0];
        let var = |sd: &[f64]| sd.iter().map(|v| v * v).collect::<Vec<_>>();
        let a = diagonal_stats(&mu1, &var(&sd1));
        let b = diagonal_stats(&mu2, &var(&sd2));
        let want: f64 = mu1
            .iter()
            .zip(&mu2)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            + sd1
                .iter()
                .zip(&sd2)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>();
        let fd = frechet_distance(&a, &b);
        assert!((fd - want).abs() < CLOSED_FORM_TOL, "{fd} vs {want}");

        let q = rotation(&mut StdRng::seed_from_u64(2), 5);
        let rot = |s: &FeatureStats| FeatureStats {
            cov: q.dot(&s.cov).dot(&q.t()),
            ..s.clone()
        };
        let fd = frechet_distance(&rot(&a), &rot(&b));
        assert!(
            (fd - want).abs() < CLOSED_FORM_TOL,
            "rotated: {fd} vs {want}"
        );
    }

    #[test]
    fn fd_is_symmetric_and_positive() {
        // tr sqrt(S1 S2) = tr sqrt(S2 S1) (similar matrices), so FD(a, b) = FD(b, a); computed
        // through different decompositions, the two agree to rounding (1e-9 relative).
        const SYMMETRY_REL_TOL: f64 = 1e-9;
        let mut rng = StdRng::seed_from_u64(3);
        let x = gaussian(&mut rng, 300, 16);
        // A correlated, shifted and scaled second set: non-commuting covariances.
        let mix = gaussian(&mut rng, 16, 16) * 0.5;
        let y = x.dot(&mix) + 0.3;
        let (a, b) = (
            FeatureStats::from_features(x.view()),
            FeatureStats::from_features(y.view()),
        );
        let (ab, ba) = (frechet_distance(&a, &b), frechet_distance(&b, &a));
        assert!(ab > 1.0, "{ab}");
        assert!((ab - ba).abs() <= SYMMETRY_REL_TOL * ab, "{ab} vs {ba}");
    }

    #[test]
    fn fd_refuses_mismatched_or_non_finite_stats() {
        let a = diagonal_stats(&[0.0, 0.0], &[1.0, 1.0]);
        let b = diagonal_stats(&[0.0], &[1.0]);
        assert!(frechet_distance(&a, &b).is_nan());
        let c = diagonal_stats(&[f64::NAN, 0.0], &[1.0, 1.0]);
        assert!(frechet_distance(&a, &c).is_nan());
    }

    #[test]
    fn precision_recall_of_identical_and_disjoint_sets() {
        let mut rng = StdRng::seed_from_u64(4);
        let x = gaussian(&mut rng, 300, 8);
        // Each point lies in its own ball (distance 0 <= its radius): both are exactly 1.
        let pr = precision_recall(x.view(), x.view(), 3);
        assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
        // A copy moved 100 away (radii are ~2 for 300 standard normal points in 8 dims): 0, 0.
        let far = &x + 100.0;
        let pr = precision_recall(x.view(), far.view(), 3);
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
        assert!(precision_recall(x.view(), x.view(), 0).precision.is_nan());
        assert!(precision_recall(x.view(), x.slice(s![..3, ..]), 3)
            .recall
            .is_nan());
    }

    /// Real points in 4 tight clusters 20 apart; fake points in 2 of them. Every fake point
    /// lies among real points (precision ~1); only the real points of the 2 covered clusters are
    /// near fake balls (recall ~0.5). The tolerance 0.05 allows a few boundary points per
    /// cluster of 200.
    #[test]
    fn half_the_modes_gives_half_the_recall() {
        const MODE_TOL: f64 = 0.05;
        let mut rng = StdRng::seed_from_u64(5);
        let centres = [[0.0f32, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]];
        let cluster = |rng: &mut StdRng, modes: &[[f32; 2]], per: usize| {
            let mut x = gaussian(rng, modes.len() * per, 2);
            for (i, mut r) in x.rows_mut().into_iter().enumerate() {
                let c = modes[i / per];
                r[0] += c[0];
                r[1] += c[1];
            }
            x
        };
        let real = cluster(&mut rng, &centres, 200);
        let fake = cluster(&mut rng, &centres[..2], 200);
        for block in [BLOCK_ENTRIES, 1000] {
            let pr = precision_recall_blocked(real.view(), fake.view(), 5, block);
            assert!(pr.precision >= 1.0 - MODE_TOL, "{pr:?}");
            assert!((pr.recall - 0.5).abs() <= MODE_TOL, "{pr:?}");
        }
    }

    /// Plain reference: every pair, in f64.
    fn naive_radii(x: &Array2<f32>, k: usize) -> Vec<f64> {
        (0..x.nrows())
            .map(|i| {
                let mut d: Vec<f64> = (0..x.nrows())
                    .filter(|&j| j != i)
                    .map(|j| squared_exact(x.row(i), x.row(j)))
                    .collect();
                d.sort_by(f64::total_cmp);
                d[k - 1]
            })
            .collect()
    }

    #[test]
    fn blocked_radii_match_the_plain_reference() {
        // f32 distances of O(10) between standard normal points in 6 dims: 1e-4 covers the
        // rounding of |a|² + |b|² - 2 a·b, and a wrong neighbour moves a radius by far more.
        const RADIUS_TOL: f64 = 1e-4;
        let mut rng = StdRng::seed_from_u64(6);
        let x = gaussian(&mut rng, 97, 6);
        let want = naive_radii(&x, 4);
        for block in [BLOCK_ENTRIES, 300, 1] {
            let got = knn_radii(x.view(), 4, block);
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(*g) - w).abs() <= RADIUS_TOL, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn nearest_neighbour_finds_copies_and_matches_reference() {
        let mut rng = StdRng::seed_from_u64(7);
        let pool = gaussian(&mut rng, 150, 784).mapv(|v| v.abs().min(1.0));
        // Queries: exact copies of pool rows 17 and 149, then fresh points.
        let mut queries = gaussian(&mut rng, 12, 784).mapv(|v| v.abs().min(1.0));
        queries.row_mut(0).assign(&pool.row(17));
        queries.row_mut(1).assign(&pool.row(149));
        for block in [BLOCK_ENTRIES, 500, 1] {
            let nn = nearest_neighbours_blocked(queries.view(), pool.view(), block);
            assert_eq!(nn[0], (17, 0.0));
            assert_eq!(nn[1], (149, 0.0));
            for (qi, &(j, d)) in nn.iter().enumerate() {
                let (want_j, want_d) = (0..pool.nrows())
                    .map(|c| (c, squared_exact(queries.row(qi), pool.row(c))))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                assert_eq!(j, want_j, "query {qi}");
                assert!((f64::from(d) - want_d.sqrt()).abs() <= 1e-5 * want_d.sqrt());
            }
        }
        assert!(
            nearest_neighbours(queries.view(), pool.slice(s![..0, ..]))[0]
                .1
                .is_nan()
        );
    }

    #[test]
    fn histogram_coverage_and_kl() {
        // 10 labels: 5 zeros, 4 ones, 1 two, over 4 classes.
        let h = class_histogram(&[0, 0, 0, 0, 0, 1, 1, 1, 1, 2], 4);
        assert_eq!(h, vec![0.5, 0.4, 0.1, 0.0]);
        // Classes with at least 5 %: 0, 1, 2; at least 20 %: 0, 1.
        assert_eq!(coverage(&h, COVERAGE_MIN_FRACTION), 3);
        assert_eq!(coverage(&h, 0.2), 2);
        // Counts work like fractions.
        assert_eq!(coverage(&[5.0, 4.0, 1.0, 0.0], COVERAGE_MIN_FRACTION), 3);
        assert_eq!(coverage(&[], COVERAGE_MIN_FRACTION), 0);
        // KL(p || p) = 0.
        assert!(class_kl(&h, &h).abs() < 1e-15);
        // p = (1/2, 1/2), q = (1/4, 3/4): ½ ln 2 + ½ ln(2/3) = ½ ln(4/3) = 0.143841036...
        let kl = class_kl(&[0.5, 0.5], &[1.0, 3.0]);
        assert!((kl - 0.5 * (4.0f64 / 3.0).ln()).abs() < 1e-15, "{kl}");
        // All mass on one of ten equally likely classes: ln 10.
        let mut one = vec![0.0; 10];
        one[3] = 7.0;
        assert!((class_kl(&one, &[0.1; 10]) - 10f64.ln()).abs() < 1e-12);
        // A class the reference never shows: infinite. Mismatched lengths: NaN.
        assert_eq!(class_kl(&[0.5, 0.5], &[1.0, 0.0]), f64::INFINITY);
        assert!(class_kl(&[1.0], &[0.5, 0.5]).is_nan());
    }
}
