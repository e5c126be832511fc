//! Generates one image from the embedded model with the host's seed and checks it.

use tinygen_runtime::model::{Model, Precision};
use tinygen_runtime::rng::Rng;

use crate::out::{self, Line};
use crate::selected::{self as sel, PAYLOAD};
use crate::{art, fail, probe, Check, Outcome};

/// Reports a runtime error and exits with status 1. The error's text is not printed (that
/// needs `core::fmt`); parsing the same file on the host (`Model::parse`) gives the details.
fn failed(what: &str) -> ! {
    Line::new()
        .str(what)
        .str(" failed (the same call on the host shows the error)")
        .print();
    fail()
}

/// Runs `generate` inside the measured window.
#[inline(never)]
fn measured(
    model: &Model<'_>,
    rng: &mut Rng,
    arena: &mut [u8],
    out: &mut [f32],
) -> Result<(), tinygen_runtime::error::Error> {
    probe::bench_start();
    let r = model.generate(rng, arena, out);
    probe::bench_stop();
    r
}

pub fn run() -> Outcome {
    let arena = cortex_m::singleton!(: [u8; sel::ARENA_BYTES] = [0; sel::ARENA_BYTES]);
    let out = cortex_m::singleton!(: [f32; sel::OUTPUT_LEN] = [0.0; sel::OUTPUT_LEN]);
    let pixels = cortex_m::singleton!(: [u8; sel::OUTPUT_LEN] = [0; sel::OUTPUT_LEN]);
    let (Some(arena), Some(out), Some(pixels)) = (arena, out, pixels) else {
        out::line("buffers taken twice");
        fail()
    };

    let t0 = probe::ticks();
    let Ok(model) = Model::parse(&PAYLOAD.0) else {
        failed("Model::parse")
    };
    let parse_insns = probe::ticks_to_insns(probe::ticks() - t0);
    let precision = match model.precision() {
        Precision::F32 => "f32",
        Precision::Int8 => "int8",
    };
    Line::new()
        .str(precision)
        .str(" model, ")
        .dec(PAYLOAD.0.len() as u32)
        .str(" bytes, ")
        .dec(model.op_count() as u32)
        .str(" ops, arena ")
        .dec(model.arena_bytes() as u32)
        .str(" B, ")
        .dec(sel::MACS as u32)
        .str(" MACs, seed ")
        .hex(sel::SEED as u32)
        .str("; parse (incl. CRC): ~")
        .dec(u32::try_from(parse_insns).unwrap_or(u32::MAX))
        .str(" insns")
        .print();

    probe::repaint_below_sp();
    let sp = cortex_m::register::msp::read() as usize;
    let mut rng = Rng::seed_from_u64(sel::SEED);
    let t0 = probe::ticks();
    let r = measured(&model, &mut rng, arena, out);
    let t1 = probe::ticks();
    let stack = sp - probe::lowest_used();
    if r.is_err() {
        failed("generate");
    }

    // The pixel path, from the same seed (outside the measured window).
    let mut rng = Rng::seed_from_u64(sel::SEED);
    if model.generate_u8(&mut rng, arena, pixels).is_err() {
        failed("generate_u8");
    }
    art::print_image(pixels, sel::OUT_W);

    Outcome {
        checks: [
            Check {
                what: "pixels fnv1a",
                got: art::fnv1a(pixels.iter().copied()),
                expected: sel::EXPECTED_PIXELS_FNV,
            },
            Check {
                what: "f32 output bits fnv1a",
                got: art::fnv1a_f32(out),
                expected: sel::EXPECTED_OUTPUT_FNV,
            },
        ],
        stack,
        insns: probe::ticks_to_insns(t1 - t0),
    }
}
