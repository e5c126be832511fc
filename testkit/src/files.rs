//! Model files in robustness tests: parse and run whatever parses, and reach into the tables to
//! corrupt one field at a time.

use tinygen_export::tgm::AlignedBytes;
use tinygen_runtime::error::Error;
use tinygen_runtime::format::{self, header};
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;

/// Parses `bytes` (copied to an aligned buffer) and, if it parses, runs it with an arena of
/// exactly `arena_bytes()` (with a one-hot second input if it has one) and generates from it:
/// neither may fail or panic. Returns the parse error, if any.
pub fn parse_and_run(bytes: &[u8]) -> Result<(), Error> {
    let file = AlignedBytes::new(bytes);
    let model = Model::parse(&file)?;
    assert!(
        model.arena_bytes() < 1 << 24,
        "a file this small cannot need {} bytes",
        model.arena_bytes()
    );
    run_parsed(&model, 0.5);
    Ok(())
}

/// Runs a parsed model with an arena of exactly `arena_bytes()` and every latent element
/// `z` (with a one-hot second input if it has one), then generates from it when it has one
/// input: neither may fail.
pub fn run_parsed(model: &Model<'_>, z: f32) {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    let z = vec![z; model.latent_len()];
    match model.condition_len() {
        Some(n) => {
            let mut condition = vec![0f32; n];
            condition[0] = 1.0;
            model
                .run_conditional(&z, &condition, &mut arena, &mut out)
                .expect("a parsed model runs with arena_bytes()");
        }
        None => {
            model
                .run(&z, &mut arena, &mut out)
                .expect("a parsed model runs with arena_bytes()");
            let mut px = vec![0u8; model.output_len()];
            model
                .generate_u8(&mut Rng::seed_from_u64(3), &mut arena, &mut px)
                .expect("a parsed model generates");
        }
    }
}

/// Recomputes the header's CRC, so that a test reaches the structural checks behind it.
pub fn fix_crc(bytes: &mut [u8]) {
    let crc = format::file_crc(bytes);
    bytes[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// File offset of field `field` of tensor record `t`.
pub fn tensor_field(t: usize, field: usize) -> usize {
    format::HEADER_LEN + t * format::TENSOR_LEN + field
}

/// File offset of field `field` of op record `op` in `file`.
pub fn op_field(file: &[u8], op: usize, field: usize) -> usize {
    let tensors = u16::from_le_bytes([file[header::TENSOR_COUNT], file[header::TENSOR_COUNT + 1]]);
    format::op_table(usize::from(tensors)).unwrap() + op * format::RECORD_LEN + field
}

/// Writes a little-endian `u16` at `at`.
pub fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian `u32` at `at`.
pub fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
