//! Graphs beyond a chain, through the model file and the runtime: a residual block, a
//! conditional input, an affine coupling and a permutation, in f32 and int8, each against a
//! plain interpreter of the same graph built on `kernels::reference` (bit for bit); then the
//! parser's checks of tensor lifetimes and placement on such a file.

use tinygen_export::quant::QParams;
use tinygen_export::tgm::{self, AlignedBytes, Node, Program, TensorDecl};
use tinygen_export::{OutputRange, Part, Shape};
use tinygen_runtime::error::Error;
use tinygen_runtime::format::{self, header, record, tensor};
use tinygen_runtime::kernels::graph::{Binary, Quant};
use tinygen_runtime::kernels::{self, reference, Requant};
use tinygen_runtime::model::{Model, Precision};
use tinygen_runtime::rng::Rng;

/// One op of a test graph; every op writes a new tensor (the next index).
#[derive(Clone, Debug)]
enum G {
    Dense { a: usize, out: usize },
    Relu(usize),
    Tanh(usize),
    Exp(usize),
    Bin(Binary, usize, usize),
    BinChannel(Binary, usize, Vec<f32>),
    Concat(usize, usize),
    Slice { a: usize, first: usize, len: usize },
    Gather(usize, Vec<u16>),
}

impl G {
    fn input(&self) -> usize {
        match *self {
            G::Dense { a, .. }
            | G::Relu(a)
            | G::Tanh(a)
            | G::Exp(a)
            | G::Bin(_, a, _)
            | G::BinChannel(_, a, _)
            | G::Concat(a, _)
            | G::Slice { a, .. }
            | G::Gather(a, _) => a,
        }
    }
}

/// A test graph: input shapes, ops, and the weights of its Dense ops (f32 and int8).
struct Graph {
    name: &'static str,
    inputs: Vec<Shape>,
    ops: Vec<G>,
}

/// Weights of a Dense op, for both precisions.
struct DenseWeights {
    w: Vec<f32>,
    b: Vec<f32>,
    wq: Vec<i8>,
    bq: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<u8>,
}

fn dense_weights(seed: u64, inputs: usize, outputs: usize) -> DenseWeights {
    let mut r = Rng::seed_from_u64(seed);
    let mut f = |s: f32| (r.next_f32() * 2.0 - 1.0) * s;
    let w: Vec<f32> = (0..inputs * outputs).map(|_| f(0.6)).collect();
    let b: Vec<f32> = (0..outputs).map(|_| f(0.2)).collect();
    let wq = w.iter().map(|&v| (v * 127.0) as i8).collect();
    let bq = b.iter().map(|&v| (v * 300.0) as i32).collect();
    let mut r = Rng::seed_from_u64(seed ^ 0xabc);
    let multiplier = (0..outputs)
        .map(|_| (1 << 30) + (r.next_u32() >> 2) as i32)
        .collect();
    let shift = (0..outputs)
        .map(|_| 37 + (r.next_u32() % 3) as u8)
        .collect();
    DenseWeights {
        w,
        b,
        wq,
        bq,
        multiplier,
        shift,
    }
}

impl Graph {
    /// Shapes of every tensor.
    fn shapes(&self) -> Vec<Shape> {
        let mut s = self.inputs.clone();
        for op in &self.ops {
            let a = s[op.input()];
            s.push(match op {
                G::Dense { out, .. } => Shape::flat(*out),
                G::Concat(_, b) => Shape::chw(a.c + s[*b].c, a.h, a.w),
                G::Slice { len, .. } => Shape::chw(*len, a.h, a.w),
                G::Gather(_, idx) => Shape::chw(idx.len(), a.h, a.w),
                _ => a,
            });
        }
        s
    }

    fn weights(&self, k: usize) -> DenseWeights {
        let shapes = self.shapes();
        match &self.ops[k] {
            G::Dense { a, out } => dense_weights(100 + k as u64, shapes[*a].len(), *out),
            _ => unreachable!(),
        }
    }

    /// Power-of-two quantisation of every tensor (int8).
    fn quant(&self) -> Vec<Quant> {
        let mut r = Rng::seed_from_u64(7);
        let n = self.inputs.len() + self.ops.len();
        let mut q: Vec<Quant> = (0..n)
            .map(|_| Quant {
                scale: 2f32.powi(-5 - (r.next_u32() % 3) as i32),
                zero_point: (r.next_u32() % 21) as i8 - 10,
            })
            .collect();
        // Slice and Gather keep their input's quantisation.
        for (k, op) in self.ops.iter().enumerate() {
            if let G::Slice { a, .. } | G::Gather(a, _) = op {
                q[self.inputs.len() + k] = q[*a];
            }
        }
        q
    }

    fn program(&self, precision: Precision) -> Program {
        let shapes = self.shapes();
        let quant = self.quant();
        let int8 = precision == Precision::Int8;
        let n_in = self.inputs.len();
        let tensors = shapes
            .iter()
            .zip(&quant)
            .map(|(&shape, q)| TensorDecl {
                shape,
                quant: int8.then_some(QParams {
                    scale: q.scale,
                    zero_point: q.zero_point,
                }),
            })
            .collect();
        let binary_code = |op: Binary| match op {
            Binary::Add => format::OP_ADD,
            Binary::Sub => format::OP_SUB,
            Binary::Mul => format::OP_MUL,
        };
        let nodes = self
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| {
                let out = n_in + k;
                let a = op.input();
                match op {
                    G::Dense { out: n, .. } => {
                        let dw = self.weights(k);
                        let inputs = shapes[a].len();
                        Node {
                            min: if int8 { -128 } else { 0 },
                            max: if int8 { 127 } else { 0 },
                            weights: if int8 {
                                vec![
                                    dw.wq.iter().map(|&v| v as u8).collect(),
                                    dw.bq.iter().flat_map(|v| v.to_le_bytes()).collect(),
                                    dw.multiplier.iter().flat_map(|v| v.to_le_bytes()).collect(),
                                    dw.shift.clone(),
                                ]
                            } else {
                                vec![
                                    tgm::f32_weight(&tgm::dense_panels(&dw.w, inputs, *n)),
                                    tgm::f32_weight(&dw.b),
                                ]
                            },
                            ..Node::new(format::OP_DENSE, a, out)
                        }
                    }
                    G::Relu(_) | G::Tanh(_) if int8 => Node {
                        weights: vec![lut(op, quant[a], quant[out])
                            .iter()
                            .map(|&v| v as u8)
                            .collect()],
                        ..Node::new(format::OP_LUT, a, out)
                    },
                    G::Exp(_) if int8 => Node {
                        weights: vec![lut(op, quant[a], quant[out])
                            .iter()
                            .map(|&v| v as u8)
                            .collect()],
                        ..Node::new(format::OP_LUT, a, out)
                    },
                    G::Relu(_) => Node::new(format::OP_RELU, a, out),
                    G::Tanh(_) => Node::new(format::OP_TANH, a, out),
                    G::Exp(_) => Node::new(format::OP_EXP, a, out),
                    G::Bin(op, _, b) => Node {
                        b: Some(*b),
                        param: format::OPERAND_TENSOR,
                        ..Node::new(binary_code(*op), a, out)
                    },
                    G::BinChannel(op, _, v) => Node {
                        param: format::OPERAND_CHANNEL,
                        weights: vec![tgm::f32_weight(v)],
                        ..Node::new(binary_code(*op), a, out)
                    },
                    G::Concat(_, b) => Node {
                        b: Some(*b),
                        ..Node::new(format::OP_CONCAT, a, out)
                    },
                    G::Slice { first, .. } => Node {
                        param: *first as u32,
                        ..Node::new(format::OP_SLICE, a, out)
                    },
                    G::Gather(_, idx) => Node {
                        weights: vec![tgm::gather_index(idx)],
                        ..Node::new(format::OP_GATHER, a, out)
                    },
                }
            })
            .collect();
        Program {
            part: Part::Generator,
            precision,
            range: OutputRange::Unbounded,
            inputs: n_in,
            tensors,
            nodes,
            output: n_in + self.ops.len() - 1,
        }
    }

    /// The plain interpreter: f32.
    fn run_f32(&self, inputs: &[Vec<f32>]) -> Vec<f32> {
        let shapes = self.shapes();
        let mut t: Vec<Vec<f32>> = inputs.to_vec();
        for (k, op) in self.ops.iter().enumerate() {
            let a = t[op.input()].clone();
            let plane = shapes[op.input()].h * shapes[op.input()].w;
            let y = match op {
                G::Dense { out, .. } => {
                    let dw = self.weights(k);
                    let mut y = vec![0.0; *out];
                    reference::dense_f32(&dw.w, &dw.b, &a, &mut y);
                    y
                }
                G::Relu(_) => a.iter().map(|&v| v.max(0.0)).collect(),
                G::Tanh(_) => {
                    // The runtime's tanh (a polynomial, the same bits on every target; tested
                    // against libm's within 2 ulp in act.rs).
                    let mut y = a.clone();
                    kernels::tanh_f32(&mut y);
                    y
                }
                G::Exp(_) => {
                    let mut y = a.clone();
                    reference::exp_f32(&mut y);
                    y
                }
                G::Bin(op, _, b) => {
                    let mut y = a.clone();
                    reference::binary_f32(*op, &mut y, &t[*b]);
                    y
                }
                G::BinChannel(op, _, v) => {
                    let mut y = a.clone();
                    reference::binary_channel_f32(*op, &mut y, v, plane);
                    y
                }
                G::Concat(_, b) => [a.clone(), t[*b].clone()].concat(),
                G::Slice { first, len, .. } => a[first * plane..(first + len) * plane].to_vec(),
                G::Gather(_, idx) => {
                    let mut y = vec![0.0; idx.len() * plane];
                    reference::gather(idx, plane, &a, &mut y);
                    y
                }
            };
            t.push(y);
        }
        t.pop().unwrap()
    }

    /// The plain interpreter: int8, dequantised output.
    fn run_i8(&self, inputs: &[Vec<f32>]) -> Vec<f32> {
        let shapes = self.shapes();
        let q = self.quant();
        let mut t: Vec<Vec<i8>> = inputs
            .iter()
            .zip(&q)
            .map(|(x, q)| x.iter().map(|&v| q.quantize(v)).collect())
            .collect();
        let n_in = self.inputs.len();
        for (k, op) in self.ops.iter().enumerate() {
            let (ai, oi) = (op.input(), n_in + k);
            let a = t[ai].clone();
            let plane = shapes[ai].h * shapes[ai].w;
            let y = match op {
                G::Dense { out, .. } => {
                    let dw = self.weights(k);
                    let rq = Requant {
                        in_zero_point: i32::from(q[ai].zero_point),
                        out_zero_point: i32::from(q[oi].zero_point),
                        multiplier: &dw.multiplier,
                        shift: &dw.shift,
                        min: -128,
                        max: 127,
                    };
                    let mut y = vec![0; *out];
                    reference::dense_i8(&dw.wq, &dw.bq, &a, &rq, &mut y);
                    y
                }
                G::Relu(_) | G::Tanh(_) | G::Exp(_) => {
                    let table = lut(op, q[ai], q[oi]);
                    a.iter().map(|&v| table[v as u8 as usize]).collect()
                }
                G::Bin(op, _, b) => {
                    let mut y = a.clone();
                    reference::binary_i8(*op, &mut y, q[ai], &t[*b], q[*b], q[oi]);
                    y
                }
                G::BinChannel(op, _, v) => {
                    let mut y = a.clone();
                    reference::binary_channel_i8(*op, &mut y, q[ai], v, plane, q[oi]);
                    y
                }
                G::Concat(_, b) => {
                    let mut x = a.clone();
                    let mut y = t[*b].clone();
                    reference::requantize_i8(&mut x, q[ai], q[oi]);
                    reference::requantize_i8(&mut y, q[*b], q[oi]);
                    [x, y].concat()
                }
                G::Slice { first, len, .. } => a[first * plane..(first + len) * plane].to_vec(),
                G::Gather(_, idx) => {
                    let mut y = vec![0; idx.len() * plane];
                    reference::gather(idx, plane, &a, &mut y);
                    y
                }
            };
            t.push(y);
        }
        let last = n_in + self.ops.len() - 1;
        t[last].iter().map(|&v| q[last].dequantize(v)).collect()
    }
}

/// The int8 table of an activation: dequantize, apply in f32, quantize.
fn lut(op: &G, input: Quant, output: Quant) -> [i8; 256] {
    let mut table = [0i8; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let x = input.dequantize(i as u8 as i8);
        let y = match op {
            G::Relu(_) => x.max(0.0),
            G::Tanh(_) => libm::tanhf(x),
            _ => libm::expf(x),
        };
        *slot = output.quantize(y);
    }
    table
}

/// Dense, ReLU, Dense, Add of the block's input.
fn residual() -> Graph {
    Graph {
        name: "residual",
        inputs: vec![Shape::flat(12)],
        ops: vec![
            G::Dense { a: 0, out: 12 },
            G::Relu(1),
            G::Dense { a: 2, out: 12 },
            G::Bin(Binary::Add, 3, 0),
        ],
    }
}

/// Concat of the latent and a one-hot class code, then Dense, Tanh.
fn conditional() -> Graph {
    Graph {
        name: "conditional",
        inputs: vec![Shape::flat(8), Shape::flat(10)],
        ops: vec![G::Concat(0, 1), G::Dense { a: 2, out: 16 }, G::Tanh(3)],
    }
}

/// RealNVP's affine coupling, generative direction: y2 = x2 * exp(s(x1)) + t(x1), y = [x1, y2].
fn coupling() -> Graph {
    Graph {
        name: "coupling",
        inputs: vec![Shape::flat(16)],
        ops: vec![
            G::Slice {
                a: 0,
                first: 0,
                len: 8,
            }, // 1: x1
            G::Slice {
                a: 0,
                first: 8,
                len: 8,
            }, // 2: x2
            G::Dense { a: 1, out: 16 },                  // 3: hidden
            G::Relu(3),                                  // 4
            G::Dense { a: 4, out: 8 },                   // 5: s
            G::Tanh(5),                                  // 6
            G::BinChannel(Binary::Mul, 6, vec![0.5; 8]), // 7: scale
            G::Exp(7),                                   // 8
            G::Dense { a: 4, out: 8 },                   // 9: t
            G::Bin(Binary::Mul, 2, 8),                   // 10: x2 * exp(s)
            G::Bin(Binary::Add, 10, 9),                  // 11: + t
            G::Concat(1, 11),                            // 12: y
            G::BinChannel(Binary::Sub, 12, (0..16).map(|i| i as f32 * 0.01).collect()), // 13
        ],
    }
}

/// A fixed permutation of channels (of a `[6, 2, 2]` tensor), between two per-channel ops.
fn permutation() -> Graph {
    Graph {
        name: "permutation",
        inputs: vec![Shape::chw(6, 2, 2)],
        ops: vec![
            G::BinChannel(Binary::Add, 0, vec![0.1, -0.2, 0.3, 0.0, 0.5, -0.6]),
            G::Gather(1, vec![5, 3, 1, 0, 2, 4]),
            G::BinChannel(Binary::Mul, 2, vec![1.0, 0.5, 2.0, -1.0, 0.25, 1.5]),
        ],
    }
}

fn graphs() -> Vec<Graph> {
    vec![residual(), conditional(), coupling(), permutation()]
}

fn sample_inputs(g: &Graph, seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng::seed_from_u64(seed);
    g.inputs
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut x = vec![0.0; s.len()];
            if k == 0 {
                r.fill_gaussian(&mut x);
            } else {
                x[(seed as usize) % s.len()] = 1.0; // one-hot class
            }
            x
        })
        .collect()
}

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

fn fix_crc(bytes: &mut [u8]) {
    let crc = format::file_crc(bytes);
    bytes[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    Model::parse(&AlignedBytes::new(bytes)).map(|_| ())
}

/// Parses and, if it parses, runs with an arena of exactly `arena_bytes()`.
fn parse_and_run(bytes: &[u8]) -> Result<(), Error> {
    let file = AlignedBytes::new(bytes);
    let model = Model::parse(&file)?;
    assert!(model.arena_bytes() < 1 << 24);
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    let z = vec![0.5f32; model.latent_len()];
    match model.condition_len() {
        Some(n) => model.run_conditional(&z, &vec![1.0; n], &mut arena, &mut out),
        None => model.run(&z, &mut arena, &mut out),
    }
    .expect("a parsed model runs");
    Ok(())
}

fn tensor_field(t: usize, field: usize) -> usize {
    format::HEADER_LEN + t * format::TENSOR_LEN + field
}

fn op_field(file: &[u8], op: usize, field: usize) -> usize {
    let tensors = u16::from_le_bytes([file[header::TENSOR_COUNT], file[header::TENSOR_COUNT + 1]]);
    format::op_table(usize::from(tensors)).unwrap() + op * format::RECORD_LEN + field
}

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
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
