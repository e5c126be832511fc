//! Graphs beyond a chain, through the model file and the runtime: a residual block, a
//! conditional input, an affine coupling and a permutation, in f32 and int8, each against a
//! plain interpreter of the same graph built on `kernels::reference` (bit for bit); then the
//! parser's checks of tensor lifetimes and placement on such a file.

use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_runtime::error::Error;
use tinygen_runtime::format::{self, header, record, tensor};
use tinygen_runtime::model::{Model, Precision};
use tinygen_runtime::rng::Rng;
use tinygen_testkit::files::{fix_crc, op_field, parse_and_run, set_u16, set_u32, tensor_field};
use tinygen_testkit::graphs::{
    conditional, coupling, graphs, permutation, residual, sample_inputs,
};

fn run(model: &Model<'_>, inputs: &[Vec<f32>]) -> Vec<f32> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0.0; model.output_len()];
    match inputs {
        [z] => model.run(z, &mut arena, &mut out).unwrap(),
        [z, c] => model.run_conditional(z, c, &mut arena, &mut out).unwrap(),
        _ => unreachable!(),
    }
    out
}

#[test]
fn branched_graphs_match_the_interpreter_bit_for_bit() {
    for g in graphs() {
        for precision in [Precision::F32, Precision::Int8] {
            let file = tgm::write_program(&g.program(precision)).unwrap();
            // Seeds for the fuzzer: `TINYGEN_FUZZ_CORPUS=fuzz/corpus/parse cargo test ...`.
            if let Some(dir) = std::env::var_os("TINYGEN_FUZZ_CORPUS") {
                std::fs::create_dir_all(&dir).unwrap();
                let name = format!("{}-{precision:?}.tgm", g.name);
                std::fs::write(std::path::Path::new(&dir).join(name), &file).unwrap();
            }
            let bytes = AlignedBytes::new(&file);
            let model = Model::parse(&bytes).unwrap();
            assert_eq!(model.condition_len().is_some(), g.inputs.len() == 2);
            for seed in 0..20 {
                let x = sample_inputs(&g, seed);
                let want = match precision {
                    Precision::F32 => g.run_f32(&x),
                    Precision::Int8 => g.run_i8(&x),
                };
                let got = run(&model, &x);
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{} {precision:?} seed {seed}",
                    g.name
                );
            }
        }
    }
}

#[test]
fn the_planner_reuses_memory_and_keeps_live_tensors_apart() {
    for g in graphs() {
        let program = g.program(Precision::F32);
        let bytes = AlignedBytes::new(&tgm::write_program(&program).unwrap());
        let model = Model::parse(&bytes).unwrap();
        let total: usize = g.shapes().iter().map(|s| s.len() * 4).sum();
        // Slices are views and in-place ops share memory, so the arena is below the sum of
        // all tensors (the parse has checked that no live tensors overlap).
        assert!(
            model.arena_bytes() < total + format::ARENA_SLACK,
            "{}: arena {} for {total} bytes of tensors",
            g.name,
            model.arena_bytes()
        );
    }
}

#[test]
fn inputs_are_checked_against_the_model() {
    let g = conditional();
    let bytes = AlignedBytes::new(&tgm::write_program(&g.program(Precision::F32)).unwrap());
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0.0; model.output_len()];
    let z = vec![0.0; 8];
    assert_eq!(
        model.run(&z, &mut arena, &mut out),
        Err(Error::InputLength {
            input: 1,
            expected: 10,
            got: 0
        }),
        "a conditional model needs its condition"
    );
    assert_eq!(
        model.run_conditional(&z, &[0.0; 9], &mut arena, &mut out),
        Err(Error::InputLength {
            input: 1,
            expected: 10,
            got: 9
        })
    );
    let plain = residual();
    let bytes = AlignedBytes::new(&tgm::write_program(&plain.program(Precision::F32)).unwrap());
    let model = Model::parse(&bytes).unwrap();
    assert_eq!(
        model.run_conditional(&[0.0; 12], &[1.0], &mut arena, &mut out),
        Err(Error::InputLength {
            input: 1,
            expected: 0,
            got: 1
        })
    );
}

// ---- the parser on graph files ----

fn coupling_file(precision: Precision) -> Vec<u8> {
    tgm::write_program(&coupling().program(precision)).unwrap()
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    Model::parse(&AlignedBytes::new(bytes)).map(|_| ())
}

#[test]
fn every_truncation_and_bit_flip_of_a_graph_file_is_an_error() {
    for precision in [Precision::F32, Precision::Int8] {
        let file = coupling_file(precision);
        for len in 0..file.len() {
            assert!(parse_and_run(&file[..len]).is_err(), "length {len}");
        }
        let mut bytes = file.clone();
        for bit in 0..file.len() * 8 {
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_and_run(&bytes).is_err(), "flip of bit {bit} accepted");
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
    }
}

#[test]
fn corrupted_graph_tables_with_a_valid_crc_give_an_error_or_a_running_model() {
    let mut rng = Rng::seed_from_u64(31);
    for g in graphs() {
        for precision in [Precision::F32, Precision::Int8] {
            let file = tgm::write_program(&g.program(precision)).unwrap();
            let data = u32::from_le_bytes(
                file[header::DATA_OFFSET..header::DATA_OFFSET + 4]
                    .try_into()
                    .unwrap(),
            ) as usize;
            let (mut errors, mut ran) = (0, 0);
            for i in 0..5_000 {
                let mut bytes = file.clone();
                for _ in 0..1 + rng.next_u32() % 3 {
                    let at = rng.next_u32() as usize % data;
                    bytes[at] = match i % 3 {
                        0 => rng.next_u32() as u8,
                        1 => bytes[at] ^ (1 << (rng.next_u32() % 8)),
                        _ => [0, 1, 2, 3, 0xFF][rng.next_u32() as usize % 5],
                    };
                }
                fix_crc(&mut bytes);
                match parse_and_run(&bytes) {
                    Ok(()) => ran += 1,
                    Err(Error::ChecksumMismatch { .. }) => panic!("checksum was recomputed"),
                    Err(_) => errors += 1,
                }
            }
            assert!(
                errors > 3_000,
                "{} {precision:?}: only {errors} errors ({ran} ran)",
                g.name
            );
        }
    }
}

#[test]
fn lifetime_and_placement_defects_are_reported_as_what_they_are() {
    let file = coupling_file(Precision::F32);
    let offset_of = |t: usize| {
        let at = tensor_field(t, tensor::OFFSET);
        u32::from_le_bytes(file[at..at + 4].try_into().unwrap())
    };

    // An op reads a tensor written later: op 2 (the first Dense) reads tensor 5 instead of x1
    // (tensor 1, still read by the Concat), a cycle through the op table.
    let mut b = file.clone();
    set_u16(&mut b, op_field(&file, 2, record::INPUT_A), 5);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadTensorRef { op: 2, tensor: 5 }));
    // An op reads its own output: the residual block's first Dense reads tensor 1 (the block's
    // input stays read by the Add).
    let res = tgm::write_program(&residual().program(Precision::F32)).unwrap();
    let mut b = res.clone();
    set_u16(&mut b, op_field(&res, 0, record::INPUT_A), 1);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadTensorRef { op: 0, tensor: 1 }));
    // The Mul of op 9 reads its own output instead of exp(s): exp(s) is never read.
    let mut b = file.clone();
    set_u16(&mut b, op_field(&file, 9, record::INPUT_B), 10);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadLifetime { tensor: 8 }));
    // An op writes a graph input.
    let mut b = file.clone();
    set_u16(&mut b, op_field(&file, 3, record::OUTPUT), 0);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadTensorRef { op: 3, tensor: 0 }));
    // A last-reader field that ends a tensor's life early.
    let mut b = file.clone();
    set_u16(&mut b, tensor_field(4, tensor::LAST_READER), 4);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadLifetime { tensor: 4 }));
    // A producer field that names the wrong op.
    let mut b = file.clone();
    set_u16(&mut b, tensor_field(5, tensor::PRODUCER), 2);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadLifetime { tensor: 5 }));
    // The hidden layer (tensor 3) placed over x2 (tensor 2), which is read later.
    let mut b = file.clone();
    set_u32(&mut b, tensor_field(3, tensor::OFFSET), offset_of(2));
    fix_crc(&mut b);
    assert!(
        matches!(
            parse(&b),
            Err(Error::Overlap { op: 2, .. }) | Err(Error::BadHeaderField { .. })
        ),
        "{:?}",
        parse(&b)
    );
    // A slice that is not a view of its input.
    let mut b = file.clone();
    set_u32(&mut b, tensor_field(2, tensor::OFFSET), offset_of(2) + 4);
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Err(Error::BadPlacement { tensor: 2 }) | Err(Error::BadHeaderField { .. })
    ));
    // A misaligned f32 tensor.
    let mut b = file.clone();
    set_u32(&mut b, tensor_field(3, tensor::OFFSET), offset_of(3) + 1);
    fix_crc(&mut b);
    assert!(matches!(parse(&b), Err(Error::BadPlacement { tensor: 3 })));
    // An arena smaller than the plan.
    let mut b = file.clone();
    let arena = u32::from_le_bytes(
        b[header::ARENA_BYTES..header::ARENA_BYTES + 4]
            .try_into()
            .unwrap(),
    );
    set_u32(&mut b, header::ARENA_BYTES, arena - 4);
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Err(Error::BadHeaderField {
            offset: header::ARENA_BYTES,
            ..
        })
    ));
    // A gather index past the input's channels.
    let g = permutation();
    let file = tgm::write_program(&g.program(Precision::F32)).unwrap();
    let slot = op_field(&file, 1, record::WEIGHTS);
    let at = u32::from_le_bytes(file[slot..slot + 4].try_into().unwrap()) as usize;
    let mut b = file.clone();
    set_u16(&mut b, at, 6);
    fix_crc(&mut b);
    assert_eq!(parse(&b), Err(Error::BadAttribute { op: 1 }));
}
