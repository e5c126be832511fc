//! As `parse`, but the input's checksum field is recomputed first, so the fuzzer explores the
//! structural checks behind the CRC instead of stopping at it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygen_runtime::format::{self, header};
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;

/// Largest arena the target allocates; bigger models are parsed but not run.
const MAX_ARENA: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; data.len() + 15];
    let start = buf.as_ptr().align_offset(16).min(15);
    let file = &mut buf[start..start + data.len()];
    file.copy_from_slice(data);
    if file.len() >= format::HEADER_LEN {
        let crc = format::file_crc(file);
        file[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let file = &*file;

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
