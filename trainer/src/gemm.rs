//! Matrix products through `matrixmultiply::sgemm`, passing ndarray strides so that a
//! transposed view (`a.t()`) costs nothing.
//!
//! Threads: matrixmultiply's `threading` feature is on. It reads the environment variable
//! `MATMUL_NUM_THREADS` once, at the first product, and uses between 1 and 4 threads
//! (default: the number of physical cores). [`set_num_threads`] sets that variable; the
//! command line's `--threads N` calls it before any training starts.

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c = alpha * a · b + beta * c`.
///
/// `a` is `(m, k)`, `b` is `(k, n)`, `c` is `(m, n)`; any of them may be a transposed or
/// otherwise strided view. When `beta == 0`, `c` is not read (it may hold NaN).
///
/// # Panics
/// If the shapes do not chain (a programming error, never a data error).
pub fn gemm(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    mut c: ArrayViewMut2<'_, f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "gemm: a is {m}x{k} but b is {k2}x{n}");
    assert_eq!(
        c.dim(),
        (m, n),
        "gemm: c is {:?}, expected ({m}, {n})",
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    let [rsa, csa] = strides(a.strides());
    let [rsb, csb] = strides(b.strides());
    let [rsc, csc] = strides(c.strides());
    // An output with a zero stride along a dimension longer than one would alias itself.
    assert!(
        (m == 1 || rsc != 0) && (n == 1 || csc != 0),
        "gemm: c must not alias"
    );
    // SAFETY: the pointers come from live ndarray views whose shapes were checked above to
    // be (m, k), (k, n) and (m, n); with the views' own strides every index i < m, l < k,
    // j < n addresses an element inside the respective view. `c` is borrowed mutably and
    // its strides do not alias (checked above), `a` and `b` are shared borrows that cannot
    // overlap `c` because Rust forbids a mutable and a shared borrow of the same data.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

fn strides(s: &[isize]) -> [isize; 2] {
    [s[0], s[1]]
}

/// Sets the number of threads matrix products use (1 to 4; more are clamped to 4).
///
/// matrixmultiply reads `MATMUL_NUM_THREADS` once, at the first matrix product of the
/// process, so this must run before any training or inference; later calls have no effect.
/// Call it from `main` before other threads start (it writes the process environment).
pub fn set_num_threads(n: usize) {
    // Writing the environment is only racy with concurrent readers in other threads; the
    // command line calls this first thing in `main`, single-threaded.
    std::env::set_var("MATMUL_NUM_THREADS", n.max(1).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn naive(
        alpha: f32,
        a: &Array2<f32>,
        b: &Array2<f32>,
        beta: f32,
        c: &Array2<f32>,
    ) -> Array2<f32> {
        let (m, k) = a.dim();
        let n = b.ncols();
        Array2::from_shape_fn((m, n), |(i, j)| {
            let mut s = 0.0f64;
            for l in 0..k {
                s += f64::from(a[[i, l]]) * f64::from(b[[l, j]]);
            }
            let prior = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta) * f64::from(c[[i, j]])
            };
            (f64::from(alpha) * s + prior) as f32
        })
    }

    fn random(rng: &mut StdRng, r: usize, c: usize) -> Array2<f32> {
        Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0f32..1.0))
    }

    /// Absolute tolerance for sums of up to 40 products of values in [-1, 1]: f32 rounding
    /// of each step is about 6e-8 relative, so 1e-5 leaves a wide margin yet catches any
    /// missing or doubled term (which moves the result by ~0.1 or more).
    const GEMM_TOL: f32 = 1e-5;

    #[test]
    fn all_transpose_combinations_match_naive_product() {
        let mut rng = StdRng::seed_from_u64(7);
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 40, 9), (8, 1, 13), (33, 31, 2)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                        let a = random(&mut rng, m, k);
                        let b = random(&mut rng, k, n);
                        let a_store = if ta { a.t().to_owned() } else { a.clone() };
                        let b_store = if tb { b.t().to_owned() } else { b.clone() };
                        let a_view = if ta { a_store.t() } else { a_store.view() };
                        let b_view = if tb { b_store.t() } else { b_store.view() };
                        let c0 = random(&mut rng, m, n);
                        let mut c = if beta == 0.0 {
                            Array2::from_elem((m, n), f32::NAN)
                        } else {
                            c0.clone()
                        };
                        gemm(alpha, a_view, b_view, beta, c.view_mut());
                        let want = naive(alpha, &a, &b, beta, &c0);
                        for (g, w) in c.iter().zip(want.iter()) {
                            assert!(
                                (g - w).abs() <= GEMM_TOL,
                                "m{m} k{k} n{n} ta{ta} tb{tb}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_output_view_is_written_in_place() {
        let mut rng = StdRng::seed_from_u64(8);
        let a = random(&mut rng, 4, 6);
        let b = random(&mut rng, 6, 5);
        let mut ct = Array2::from_elem((5, 4), f32::NAN);
        gemm(1.0, a.view(), b.view(), 0.0, ct.view_mut().reversed_axes());
        let want = naive(1.0, &a, &b, 0.0, &Array2::zeros((4, 5)));
        for (g, w) in ct.t().iter().zip(want.iter()) {
            assert!((g - w).abs() <= GEMM_TOL);
        }
    }

    #[test]
    fn empty_inner_dimension_scales_c_by_beta() {
        let a = Array2::<f32>::zeros((2, 0));
        let b = Array2::<f32>::zeros((0, 3));
        let mut c = Array2::from_elem((2, 3), 2.0f32);
        gemm(1.0, a.view(), b.view(), 0.5, c.view_mut());
        assert!(c.iter().all(|&v| (v - 1.0).abs() <= GEMM_TOL));
    }
}
