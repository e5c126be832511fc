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

/// The microcontrollers' 8x2 tile gives the same bits as the generic tile of two pixels.
#[test]
fn tile_by_8x2_keeps_bits() {
    for k in [1usize, 7, 64] {
        let (w, x) = (values(5, k * super::MR), values(6, k * 9));
        let mut wp = [[0.0f32; super::MR]; 64];
        for (d, s) in wp.iter_mut().zip(w.chunks(super::MR)).take(k) {
            d.copy_from_slice(s);
        }
        let x = &x[..k * 9];
        let a = super::tile_full::<2>(&wp[..k], x.chunks(9));
        let b = super::tile_full_by8x2(&wp[..k], x.chunks(9));
        assert_eq!(
            a.map(|r| r.map(f32::to_bits)),
            b.map(|r| r.map(f32::to_bits)),
            "k {k}"
        );
    }
}
