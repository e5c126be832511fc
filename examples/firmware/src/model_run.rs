//! Generates one image from the embedded model with the host's seed and checks it.

use cortex_m_semihosting::hprintln;
use tinygen_runtime::model::{Model, Precision};
use tinygen_runtime::rng::Rng;

use crate::selected::{self as sel, PAYLOAD};
use crate::{art, probe, Check, Outcome};

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
        panic!("buffers taken twice");
    };

    let t0 = probe::ticks();
    let model = match Model::parse(&PAYLOAD.0) {
        Ok(m) => m,
        Err(e) => panic!("model file rejected: {:?}", e),
    };
    let parse_insns = probe::ticks_to_insns(probe::ticks() - t0);
    let precision = match model.precision() {
        Precision::F32 => "f32",
        Precision::Int8 => "int8",
    };
    hprintln!(
        "{} model, {} bytes, {} layers, arena {} B, {} MACs, seed {:#x}; parse (incl. CRC): ~{} insns",
        precision,
        PAYLOAD.0.len(),
        model.layer_count(),
        model.arena_bytes(),
        sel::MACS,
        sel::SEED,
        parse_insns
    );

    probe::repaint_below_sp();
    let sp = cortex_m::register::msp::read() as usize;
    let mut rng = Rng::seed_from_u64(sel::SEED);
    let t0 = probe::ticks();
    let r = measured(&model, &mut rng, arena, out);
    let t1 = probe::ticks();
    let stack = sp - probe::lowest_used();
    if let Err(e) = r {
        panic!("generate failed: {:?}", e);
    }

    // The pixel path, from the same seed (outside the measured window).
    let mut rng = Rng::seed_from_u64(sel::SEED);
    if let Err(e) = model.generate_u8(&mut rng, arena, pixels) {
        panic!("generate_u8 failed: {:?}", e);
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
