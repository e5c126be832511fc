//! Kernel tests: hand-derived cases, then every fast kernel against `kernels::reference`.

use tinygen_runtime::kernels::{self, reference, ConvGeom, Requant};

// Ties round to even: 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4, and symmetric for negatives.
#[test]
fn requantize_hand_ties() {
    assert_eq!(kernels::requantize(5, 1, 1), 2);
    assert_eq!(kernels::requantize(7, 1, 1), 4);
    assert_eq!(kernels::requantize(-5, 1, 1), -2);
    assert_eq!(kernels::requantize(-7, 1, 1), -4);
    assert_eq!(kernels::requantize(3, 3, 2), 2); // 9/4 = 2.25
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 0), i32::MAX);
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 62), 1);
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 63), 0); // exactly 1/2
    assert_eq!(kernels::requantize(i32::MIN, i32::MIN, 255), 0);
}

// 1 channel, 2x2 input [1 2; 3 4], 2x2 kernel of ones, stride 2, no padding: each input
// value fills its own 2x2 block of the 4x4 output, plus the bias 0.5.
#[test]
fn conv_transpose_hand_blocks() {
    let g = ConvGeom {
        in_ch: 1,
        in_h: 2,
        in_w: 2,
        out_ch: 1,
        out_h: 4,
        out_w: 4,
        k_h: 2,
        k_w: 2,
        stride_h: 2,
        stride_w: 2,
        pad_h: 0,
        pad_w: 0,
    };
    let x = [1.0, 2.0, 3.0, 4.0];
    let w = [1.0; 4];
    let mut y = [f32::NAN; 16];
    kernels::conv_transpose2d_f32(&g, &w, &[0.5], &x, &mut y);
    let want = [
        1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5,
    ];
    for (a, b) in y.iter().zip(want) {
        // Every value is a small integer plus 0.5: exact in f32.
        assert!((a - b).abs() == 0.0, "{y:?}");
    }
}

// y = [1 2; 3 4] [x0-zp, x1-zp] + b with zp = 1, x = [3, 5]: acc = [1*2+2*4+1, 3*2+4*4-1] =
// [11, 21]; multiplier 1, shift 1: 5.5 -> 6, 10.5 -> 10; + out zp 2 -> [8, 12]; max 10.
#[test]
fn dense_i8_hand() {
    let rq = Requant {
        in_zero_point: 1,
        out_zero_point: 2,
        multiplier: &[1, 1],
        shift: &[1, 1],
        min: -128,
        max: 10,
    };
    let mut y = [0i8; 2];
    kernels::dense_i8(&[1, 2, 3, 4], &[1, -1], &[3, 5], &rq, &mut y);
    assert_eq!(y, [8, 10]);
    let mut r = [0i8; 2];
    reference::dense_i8(&[1, 2, 3, 4], &[1, -1], &[3, 5], &rq, &mut r);
    assert_eq!(r, y);
}
