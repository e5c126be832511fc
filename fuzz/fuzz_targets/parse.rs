//! Arbitrary bytes into `Model::parse`: never a panic; a model that parses runs with an arena of
//! exactly `arena_bytes()` (and an output of `output_len()`), and must succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;

/// Largest arena the target allocates; bigger models are parsed but not run.
const MAX_ARENA: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    // The parser needs a 16-byte aligned buffer: copy the input into one with slack.
    let mut buf = vec![0u8; data.len() + 15];
    let start = buf.as_ptr().align_offset(16).min(15);
    buf[start..start + data.len()].copy_from_slice(data);
    let file = &buf[start..start + data.len()];

    let Ok(model) = Model::parse(file) else {
        return;
    };
    if model.arena_bytes() > MAX_ARENA || model.output_len() > MAX_ARENA {
        return;
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    let z = vec![0.25f32; model.latent_len()];
    model
        .run(&z, &mut arena, &mut out)
        .expect("a parsed model runs");
    let mut px = vec![0u8; model.output_len()];
    model
        .generate_u8(&mut Rng::seed_from_u64(1), &mut arena, &mut px)
        .expect("a parsed model generates");
});
