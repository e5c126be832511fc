//! The int8 Dense kernel alone, on the host generator's 400x784 layer: gives the pure kernel's
//! instructions per MAC, and checks the fast kernel against the reference kernel on target.

use core::hint::black_box;

use tinygen_runtime::kernels::{self, Requant};

use crate::out::Line;
use crate::selected::{self as sel, PAYLOAD};
use crate::{art, probe, Check, Outcome};

/// Runs the fast kernel inside the measured window.
#[inline(never)]
fn measured(w: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    probe::bench_start();
    kernels::dense_i8(
        black_box(w),
        black_box(&sel::BIAS),
        black_box(&sel::X),
        rq,
        y,
    );
    probe::bench_stop();
}

pub fn run() -> Outcome {
    // SAFETY: i8 and u8 have the same size and alignment; the bytes are immutable statics.
    let w: &[i8] =
        unsafe { core::slice::from_raw_parts(PAYLOAD.0.as_ptr().cast::<i8>(), PAYLOAD.0.len()) };
    let rq = Requant {
        in_zero_point: sel::IN_ZERO_POINT,
        out_zero_point: sel::OUT_ZERO_POINT,
        multiplier: &sel::MULTIPLIER,
        shift: &sel::SHIFT,
        min: i8::MIN,
        max: i8::MAX,
    };
    Line::new()
        .str("int8 Dense ")
        .dec(sel::N_IN as u32)
        .str("x")
        .dec(sel::N_OUT as u32)
        .str(" (")
        .dec(sel::MACS as u32)
        .str(" MACs)")
        .print();
    let mut y = [0i8; sel::N_OUT];
    let mut y_ref = [0i8; sel::N_OUT];

    probe::repaint_below_sp();
    let sp = cortex_m::register::msp::read() as usize;
    let t0 = probe::ticks();
    measured(w, &rq, &mut y);
    let t1 = probe::ticks();
    let stack = sp - probe::lowest_used();

    kernels::reference::dense_i8(w, &sel::BIAS, &sel::X, &rq, &mut y_ref);
    let mismatches = y.iter().zip(&y_ref).filter(|(a, b)| a != b).count();
    Line::new()
        .str("fast kernel vs reference: ")
        .dec(mismatches as u32)
        .str(" of ")
        .dec(sel::N_OUT as u32)
        .str(" outputs differ")
        .print();
    Outcome {
        checks: [
            Check {
                what: "output fnv1a (host: reference kernel)",
                got: art::fnv1a(y.iter().map(|&v| v as u8)),
                expected: sel::EXPECTED_FNV,
            },
            Check {
                what: "outputs differing from the reference kernel on target",
                got: mismatches as u32,
                expected: 0,
            },
        ],
        stack,
        insns: probe::ticks_to_insns(t1 - t0),
    }
}
