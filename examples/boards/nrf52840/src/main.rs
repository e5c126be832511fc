//! tinygen on an nRF52840: the int8 VAE decoder in `model/` draws one digit from a seed, printed
//! as ASCII art over defmt/RTT.
#![no_std]
#![no_main]

use defmt::{info, unwrap};
use tinygen_runtime::{include_model, model::Model, rng::Rng};
use {defmt_rtt as _, panic_probe as _};

/// The constants `tinygen export` wrote beside the model file (one module per model file).
#[path = "../model/model.rs"]
mod model;
use model::decoder_int8::{ARENA_BYTES, OUTPUT_LEN};

/// The same seed gives the same digit here, on any other board and in `tinygen sample`.
const SEED: u64 = 4;
/// Pixel values 0..=255, dark to bright.
const SHADES: &[u8] = b" .:-=+*#%@";

#[cortex_m_rt::entry]
fn main() -> ! {
    let _p = embassy_nrf::init(Default::default()); // clocks and peripherals
    // Checks the whole file once (CRC, shapes, arena size); the weights stay in flash.
    let model = unwrap!(Model::parse(include_model!("../model/decoder.int8.tgm")));
    // A static arena of the exported size: a model that outgrows the RAM fails the link.
    let arena = unwrap!(cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]));

    let mut pixels = [0u8; OUTPUT_LEN];
    let mut rng = Rng::seed_from_u64(SEED);
    unwrap!(model.generate_u8(&mut rng, arena, &mut pixels));

    let width = model.output_shape().w;
    info!("seed {}: {}x{} pixels", SEED, width, OUTPUT_LEN / width);
    let mut line = [b' '; 2 * 64];
    for row in pixels.chunks(width) {
        for (&p, cell) in row.iter().zip(line.chunks_exact_mut(2)) {
            cell.fill(SHADES[usize::from(p) * SHADES.len() / 256]);
        }
        info!("|{}|", unwrap!(core::str::from_utf8(&line[..2 * width])));
    }
    loop {
        cortex_m::asm::wfe();
    }
}
