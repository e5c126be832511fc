//! What every fuzz target does with its input once it has a model file: parse it, and if it
//! parses, run it with an arena of exactly `arena_bytes()` and an output of `output_len()`,
//! which must succeed (with its second input, if it has one).

use tinygen_export::import::{import_onnx, ImportOptions};
use tinygen_runtime::model::{Model, OutputRange};

/// Largest arena the targets allocate; bigger models are parsed but not run.
const MAX_ARENA: usize = 1 << 24;

/// Copies `data` to a 16-byte aligned buffer, as the parser needs, and hands it to `f`.
pub fn aligned<R>(data: &[u8], f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = vec![0u8; data.len() + 15];
    let start = buf.as_ptr().align_offset(16).min(15);
    let file = &mut buf[start..start + data.len()];
    file.copy_from_slice(data);
    f(file)
}

/// Parses `file`; a model that parses must run and generate.
pub fn parse_and_run(file: &[u8]) {
    let Ok(model) = Model::parse(file) else {
        return;
    };
    if model.arena_bytes() > MAX_ARENA || model.output_len() > MAX_ARENA {
        return;
    }
    tinygen_testkit::files::run_parsed(&model, 0.25);
}

/// Imports `data` as ONNX; a model that imports must give a model file that parses, and that
/// model must run (within the arena limit).
pub fn import_and_run(data: &[u8]) {
    let opts = ImportOptions {
        output_range: Some(OutputRange::ZeroOne),
        ..ImportOptions::default()
    };
    let Ok(imported) = import_onnx(data, &opts) else {
        return;
    };
    let Ok(file) = imported.write_f32() else {
        return;
    };
    aligned(&file, |file| {
        Model::parse(file).expect("an imported model's file parses");
        parse_and_run(file);
    });
}
