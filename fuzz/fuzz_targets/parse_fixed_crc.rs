//! As `parse`, but the input's checksum field is recomputed first, so the fuzzer explores the
//! structural checks behind the CRC instead of stopping at it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygen_runtime::format::{self, header};

fuzz_target!(|data: &[u8]| {
    tinygen_fuzz::aligned(data, |file| {
        if file.len() >= format::HEADER_LEN {
            let crc = format::file_crc(file);
            file[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        }
        tinygen_fuzz::parse_and_run(file);
    });
});
