//! Arbitrary bytes into `Model::parse`: never a panic; a model that parses runs with an arena of
//! exactly `arena_bytes()` (and an output of `output_len()`), and must succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tinygen_fuzz::aligned(data, |file| tinygen_fuzz::parse_and_run(file));
});
