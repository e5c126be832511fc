//! Parser robustness: truncations, bit flips, corrupted fields with a recomputed checksum, and
//! random bytes must each give an error or a model that runs without panicking; and each kind of
//! defect is reported as what it is.

use tinygen_export::quant::{self, QuantOptions};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_export::{Conv, ConvSpec, Graph, Layer, Part, Shape};
use tinygen_runtime::error::Error;
use tinygen_runtime::format::{self, header, record, tensor};
use tinygen_runtime::model::Model;
use tinygen_runtime::rng::Rng;
use tinygen_testkit::files::{fix_crc, op_field, parse_and_run};

fn weights(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

/// A small DCGAN-like generator: Dense, Reshape, ReLU, ConvTranspose, LeakyReLU, Conv, Tanh.
fn generator() -> Graph {
    let mut r = Rng::seed_from_u64(1);
    let conv = |r: &mut Rng, i: usize, o: usize, k: usize, s: usize, op: usize| Conv {
        spec: ConvSpec {
            in_ch: i,
            out_ch: o,
            kernel: (k, k),
            stride: (s, s),
            pad: (1, 1),
            output_padding: (op, op),
        },
        weight: weights(r, i * o * k * k, 0.4),
        bias: weights(r, o, 0.1),
    };
    Graph {
        part: Part::Generator,
        input: Shape::flat(6),
        layers: vec![
            Layer::Dense {
                inputs: 6,
                outputs: 18,
                weight: weights(&mut r, 108, 0.5),
                bias: weights(&mut r, 18, 0.1),
            },
            Layer::Reshape {
                to: Shape::chw(2, 3, 3),
            },
            Layer::Relu,
            Layer::ConvTranspose2d(conv(&mut r, 2, 2, 4, 2, 0)),
            Layer::LeakyRelu { alpha: 0.2 },
            Layer::Conv2d(conv(&mut r, 2, 1, 3, 1, 0)),
            Layer::Tanh,
        ],
    }
}

fn f32_file() -> Vec<u8> {
    tgm::write_f32(&generator()).unwrap()
}

fn int8_file() -> Vec<u8> {
    let mut r = Rng::seed_from_u64(2);
    let calib: Vec<Vec<f32>> = (0..16)
        .map(|_| {
            let mut z = vec![0.0; 6];
            r.fill_gaussian(&mut z);
            z
        })
        .collect();
    let q = quant::quantize(&generator(), &calib, &QuantOptions::default()).unwrap();
    tgm::write_int8(&q).unwrap()
}

/// Start of a file's op table.
fn op_table(file: &[u8]) -> usize {
    op_field(file, 0, 0)
}

#[test]
fn valid_files_parse_and_run() {
    for (name, file) in [("f32.tgm", f32_file()), ("int8.tgm", int8_file())] {
        parse_and_run(&file).unwrap();
        // Seeds for the fuzzer: `TINYGEN_FUZZ_CORPUS=fuzz/corpus/parse cargo test ...`.
        if let Some(dir) = std::env::var_os("TINYGEN_FUZZ_CORPUS") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(std::path::Path::new(&dir).join(name), &file).unwrap();
        }
    }
}

#[test]
fn crc_matches_crc32fast() {
    let file = f32_file();
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..header::CRC]);
    h.update(&file[format::HEADER_LEN..]);
    let expected = h.finalize();
    assert_eq!(format::file_crc(&file), expected);
    assert_eq!(
        u32::from_le_bytes(file[header::CRC..header::CRC + 4].try_into().unwrap()),
        expected
    );
}

#[test]
fn every_truncation_is_an_error() {
    for file in [f32_file(), int8_file()] {
        for len in 0..file.len() {
            let err = parse_and_run(&file[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Truncated { .. } | Error::BadMagic | Error::UnsupportedVersion { .. }
                ),
                "length {len}: {err}"
            );
        }
    }
}

#[test]
fn single_bit_flips_are_all_caught() {
    for file in [f32_file(), int8_file()] {
        let mut bytes = file.clone();
        for bit in 0..file.len() * 8 {
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_and_run(&bytes).is_err(), "flip of bit {bit} accepted");
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
    }
}

#[test]
fn random_multi_bit_flips_give_an_error_or_a_running_model() {
    let mut rng = Rng::seed_from_u64(20);
    for file in [f32_file(), int8_file()] {
        let mut accepted = 0;
        for _ in 0..10_000 {
            let mut bytes = file.clone();
            let flips = 2 + rng.next_u32() as usize % 7;
            for _ in 0..flips {
                let bit = rng.next_u32() as usize % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            if parse_and_run(&bytes).is_ok() {
                accepted += 1;
            }
        }
        // Only flips that cancel each other leave a valid file.
        assert!(accepted < 10, "{accepted} corrupted files accepted");
    }
}

/// Corrupts bytes of the header, tensor table and op table, then recomputes the checksum so the structural
/// checks (not the CRC) must catch it.
#[test]
fn corrupted_fields_with_a_valid_crc_give_an_error_or_a_running_model() {
    let mut rng = Rng::seed_from_u64(21);
    for file in [f32_file(), int8_file()] {
        let data = u32::from_le_bytes(
            file[header::DATA_OFFSET..header::DATA_OFFSET + 4]
                .try_into()
                .unwrap(),
        ) as usize;
        // The header, the tensor table and the op table (and the padding after them).
        let table_end = data;
        let (mut errors, mut ran) = (0, 0);
        for i in 0..20_000 {
            let mut bytes = file.clone();
            let edits = 1 + rng.next_u32() as usize % 3;
            for _ in 0..edits {
                let at = rng.next_u32() as usize % table_end;
                bytes[at] = match i % 3 {
                    0 => rng.next_u32() as u8,
                    1 => bytes[at] ^ (1 << (rng.next_u32() % 8)),
                    _ => [0, 1, 0xFF, 0x80, 0x7F][rng.next_u32() as usize % 5],
                };
            }
            fix_crc(&mut bytes);
            match parse_and_run(&bytes) {
                Ok(()) => ran += 1,
                Err(Error::ChecksumMismatch { .. }) => panic!("checksum was recomputed"),
                Err(_) => errors += 1,
            }
        }
        assert_eq!(errors + ran, 20_000);
        // Most single-field edits break an invariant; a few (LeakyReLU slope, clamp bounds,
        // zero points and scales, output range) leave a model that runs.
        assert!(errors > 15_000, "only {errors} errors");
    }
}

#[test]
fn corrupted_tensor_bytes_with_a_valid_crc_still_run() {
    // Weights are not validated beyond their layout: any values give a model that runs
    // (int8 multipliers and shifts are checked, so some edits there are errors).
    let mut rng = Rng::seed_from_u64(22);
    for file in [f32_file(), int8_file()] {
        let data = u32::from_le_bytes(
            file[header::DATA_OFFSET..header::DATA_OFFSET + 4]
                .try_into()
                .unwrap(),
        ) as usize;
        for _ in 0..2_000 {
            let mut bytes = file.clone();
            let at = data + rng.next_u32() as usize % (file.len() - data);
            bytes[at] = rng.next_u32() as u8;
            fix_crc(&mut bytes);
            match parse_and_run(&bytes) {
                Ok(()) | Err(Error::BadRequant { .. } | Error::NonZeroReserved { .. }) => {}
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
    }
}

#[test]
fn random_bytes_and_random_headers_are_rejected_without_panic() {
    let mut rng = Rng::seed_from_u64(23);
    for i in 0..5_000 {
        let len = rng.next_u32() as usize % 700;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        assert!(parse_and_run(&bytes).is_err());
        // The same with a plausible header: magic, version, its own length and a valid CRC.
        if len >= format::HEADER_LEN {
            bytes[..4].copy_from_slice(&format::MAGIC);
            bytes[header::VERSION..header::VERSION + 2]
                .copy_from_slice(&format::VERSION.to_le_bytes());
            bytes[header::FILE_LEN..header::FILE_LEN + 4]
                .copy_from_slice(&(len as u32).to_le_bytes());
            if i % 2 == 0 {
                // Small plausible counts so the walk reaches the records.
                let n = 1 + rng.next_u32() % 4;
                bytes[header::OP_COUNT..header::OP_COUNT + 4].copy_from_slice(&n.to_le_bytes());
                bytes[header::TENSOR_COUNT..header::TENSOR_COUNT + 2]
                    .copy_from_slice(&(n as u16 + 1).to_le_bytes());
                bytes[header::INPUT_COUNT] = 1;
                bytes[header::OUTPUT_TENSOR] = n as u8;
                bytes[header::KIND] = 0;
                bytes[header::PRECISION] = (rng.next_u32() % 2) as u8;
                bytes[header::OUTPUT_RANGE] = 0;
            }
            fix_crc(&mut bytes);
            let _ = parse_and_run(&bytes);
        }
    }
}

#[test]
fn defects_are_reported_as_what_they_are() {
    let file = f32_file();
    let parse = |b: &[u8]| Model::parse(&AlignedBytes::new(b)).map(|_| ());

    let mut b = file.clone();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(Error::BadMagic));

    let mut b = file.clone();
    b[header::VERSION] = 9;
    assert_eq!(parse(&b), Err(Error::UnsupportedVersion { found: 9 }));

    let mut b = file.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert!(matches!(parse(&b), Err(Error::ChecksumMismatch { .. })));

    let mut b = file.clone();
    b.extend_from_slice(&[0; 16]);
    assert_eq!(
        parse(&b),
        Err(Error::TrailingBytes {
            expected: file.len(),
            got: file.len() + 16
        })
    );

    let ops = op_table(&file);
    let mut b = file.clone();
    b[ops + record::OP] = 42;
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadOpCode { op: 0, code: 42 }));

    let mut b = file.clone();
    b[ops + format::RECORD_LEN + record::OP] = format::OP_LUT;
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::BadOpCode {
            op: 1,
            code: format::OP_LUT
        }),
        "LUT in an f32 file"
    );

    let mut b = file.clone();
    b[header::RESERVED_B + 3] = 1;
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::NonZeroReserved {
            offset: header::RESERVED_B + 3
        })
    );

    let mut b = file.clone();
    // Dense output 18 -> 17 (tensor 1): its weights no longer fit.
    b[format::HEADER_LEN + format::TENSOR_LEN + tensor::SHAPE] = 17;
    fix_crc(&mut b);
    assert!(
        matches!(parse(&b), Err(Error::TensorLength { op: 0, .. })),
        "{:?}",
        parse(&b)
    );

    let mut b = file.clone();
    b[header::ARENA_BYTES] ^= 4;
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Err(Error::BadHeaderField {
            offset: header::ARENA_BYTES,
            ..
        })
    ));

    // The file one byte past an aligned address.
    let aligned = AlignedBytes::new(&[&[0u8][..], &file].concat());
    assert!(matches!(
        Model::parse(&aligned[1..]),
        Err(Error::Misaligned { .. })
    ));
}

#[test]
fn caller_buffers_are_checked_up_front() {
    for file in [f32_file(), int8_file()] {
        let file = AlignedBytes::new(&file);
        let model = Model::parse(&file).unwrap();
        let n = model.arena_bytes();
        let mut out = vec![0f32; model.output_len()];
        let z = vec![0f32; model.latent_len()];
        let mut arena = vec![0u8; n];
        assert_eq!(
            model.run(&z, &mut arena[..n - 1], &mut out),
            Err(Error::ArenaTooSmall {
                needed: n,
                got: n - 1
            })
        );
        let short = model.output_len() - 1;
        assert_eq!(
            model.run(&z, &mut arena, &mut out[..short]),
            Err(Error::OutputTooSmall {
                needed: model.output_len(),
                got: short
            })
        );
        assert_eq!(
            model.run(&z[1..], &mut arena, &mut out),
            Err(Error::InputLength {
                input: 0,
                expected: model.latent_len(),
                got: z.len() - 1
            })
        );
        // An arena of exactly arena_bytes() works at every alignment.
        let mut big = vec![0u8; n + 3];
        for skew in 0..4 {
            model.run(&z, &mut big[skew..skew + n], &mut out).unwrap();
        }
        // A failed size check leaves the generator untouched.
        let mut rng = Rng::seed_from_u64(5);
        let before = rng.clone();
        assert!(model.generate(&mut rng, &mut arena[..1], &mut out).is_err());
        assert_eq!(rng, before);
    }
}

#[test]
fn include_model_embeds_at_an_aligned_address_relative_to_the_caller() {
    // Any file will do to check placement; the path is relative to this file, as with
    // `include_bytes!`.
    let bytes: &'static [u8] = tinygen_runtime::include_model!("parse.rs");
    assert_eq!(bytes.as_ptr() as usize % format::ALIGN, 0);
    assert_eq!(bytes, include_bytes!("parse.rs"));
}
