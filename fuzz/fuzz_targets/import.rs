//! Arbitrary bytes (and, from the corpus, mutated valid models) into the ONNX importer: never a
//! panic; a model that imports writes a model file that parses and runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tinygen_fuzz::import_and_run(data);
});
