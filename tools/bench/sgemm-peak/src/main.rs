//! Times `matrixmultiply::sgemm` on the matrix products of one training step of the VAE recipe
//! (784-400-20, batch 128) in the trainer's layouts, and reports GFLOP/s per product and for
//! the whole step, so that the trainer's epoch throughput can be set against the library's
//! own peak on the same shapes.
//!
//! Usage: `cargo run --release -- [--threads N] [--batch B] [--reps R]`
//! (threads: matrixmultiply's `MATMUL_NUM_THREADS`, set before the first product; default 1).

use std::hint::black_box;
use std::time::Instant;

/// One product `c (m, n) = a (m, k) · b (k, n) (+ c)` with its operands' layouts.
struct Product {
    what: String,
    m: usize,
    k: usize,
    n: usize,
    /// `a` is stored transposed, as `(k, m)` row-major.
    a_t: bool,
    /// `b` is stored transposed, as `(n, k)` row-major.
    b_t: bool,
    /// Accumulate into `c` (beta = 1) rather than overwrite (beta = 0).
    acc: bool,
}

/// The products of one VAE step with the trainer's layouts (weights `(out, in)`):
/// forward `y = x · Wᵀ` (beta 1 on the broadcast bias), weight gradient `dW += dyᵀ · x`,
/// input gradient `dx = dy · W` (not for the first layer, whose input is data).
fn vae_products(batch: usize) -> Vec<Product> {
    // (name, in, out) in forward order: encoder fc1, fc2 (mean and log variance together),
    // decoder fc1, fc2.
    let layers = [
        ("enc.fc1", 784, 400),
        ("enc.fc2", 400, 40),
        ("dec.fc1", 20, 400),
        ("dec.fc2", 400, 784),
    ];
    let mut v = Vec::new();
    for &(name, i, o) in &layers {
        v.push(Product {
            what: format!("{name} forward"),
            m: batch,
            k: i,
            n: o,
            a_t: false,
            b_t: true,
            acc: true,
        });
    }
    for (idx, &(name, i, o)) in layers.iter().enumerate().rev() {
        v.push(Product {
            what: format!("{name} dW"),
            m: o,
            k: batch,
            n: i,
            a_t: true,
            b_t: false,
            acc: true,
        });
        if idx > 0 {
            v.push(Product {
                what: format!("{name} dx"),
                m: batch,
                k: o,
                n: i,
                a_t: false,
                b_t: false,
                acc: false,
            });
        }
    }
    v
}

/// Deterministic fill in [-0.5, 0.5) (an LCG: the values do not matter, only that they are
/// ordinary finite floats).
fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

struct Buffers {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

fn run(p: &Product, buf: &mut Buffers) {
    let (m, k, n) = (p.m, p.k, p.n);
    // Row-major (m, k) or its transpose stored as (k, m).
    let (rsa, csa) = if p.a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if p.b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let beta = if p.acc { 1.0 } else { 0.0 };
    // SAFETY: `a` holds m*k, `b` k*n and `c` m*n elements, and the strides above address
    // exactly those (row-major or transposed row-major); `c` does not overlap `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            buf.a.as_ptr(),
            rsa,
            csa,
            buf.b.as_ptr(),
            rsb,
            csb,
            beta,
            buf.c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    black_box(&buf.c);
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a number, got {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads", 1);
    let batch = arg(&args, "--batch", 128);
    let reps = arg(&args, "--reps", 300);
    // matrixmultiply reads this once, at its first product.
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());

    let products = vae_products(batch);
    let mut bufs: Vec<Buffers> = products
        .iter()
        .enumerate()
        .map(|(i, p)| Buffers {
            a: fill(p.m * p.k, 3 * i as u32),
            b: fill(p.k * p.n, 3 * i as u32 + 1),
            c: vec![0.0; p.m * p.n],
        })
        .collect();
    println!("matrixmultiply sgemm, MATMUL_NUM_THREADS={threads}, batch {batch}, {reps} reps");
    println!(
        "{:<16} {:>5} {:>5} {:>5} {:>10} {:>10}",
        "product", "m", "k", "n", "us/call", "GFLOP/s"
    );
    let mut step_flop = 0.0;
    let mut step_best = 0.0;
    for (p, buf) in products.iter().zip(bufs.iter_mut()) {
        let flop = 2.0 * (p.m * p.k * p.n) as f64;
        for _ in 0..reps / 10 + 1 {
            run(p, buf);
        }
        // Best of 5 blocks of `reps` calls: the least disturbed by other processes.
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                run(p, buf);
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        // Accumulating products grow `c`; reset so the values stay ordinary.
        buf.c.fill(0.0);
        step_flop += flop;
        step_best += best;
        println!(
            "{:<16} {:>5} {:>5} {:>5} {:>10.1} {:>10.1}",
            p.what,
            p.m,
            p.k,
            p.n,
            best * 1e6,
            flop / best / 1e9
        );
    }
    // The whole step back to back, as the trainer runs it (caches warm or cold as they fall).
    let mut best_seq = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps / 10 + 1 {
            for (p, buf) in products.iter().zip(bufs.iter_mut()) {
                run(p, buf);
            }
        }
        best_seq = best_seq.min(t.elapsed().as_secs_f64() / (reps / 10 + 1) as f64);
        for buf in bufs.iter_mut() {
            buf.c.fill(0.0);
        }
    }
    let train = 60_000.0;
    let epoch_flop = step_flop / batch as f64 * train;
    println!(
        "step: {:.3} MFLOP; sum of best per product {:.3} ms ({:.1} GFLOP/s); \
         products in sequence {:.3} ms ({:.1} GFLOP/s)",
        step_flop / 1e6,
        step_best * 1e3,
        step_flop / step_best / 1e9,
        best_seq * 1e3,
        step_flop / best_seq / 1e9
    );
    println!(
        "epoch of {train} images: {:.1} GFLOP; sgemm alone would take {:.2} s at the per-product \
         best, {:.2} s in sequence",
        epoch_flop / 1e9,
        step_best * train / batch as f64,
        best_seq * train / batch as f64
    );
}
