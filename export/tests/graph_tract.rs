//! Branched graphs (a residual block, a conditional input, an affine coupling, a permutation),
//! written as ONNX with standard operators and as model files: the runtime matches tract-onnx
//! within 1e-5 in f32 (relative to the largest output, as in `onnx_tract.rs`), and bit for bit
//! in int8 (QDQ with power-of-two scales).

use tinygen_export::check::{rel_err, Tract};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_runtime::model::{Model, Precision};
use tinygen_testkit::graphs::{graphs, sample_inputs, Graph};

const REL_TOL: f64 = 1e-5;

/// ONNX input shapes, batch 1: `[1, c]` for a vector, `[1, c, h, w]` for an image.
fn input_dims(g: &Graph) -> Vec<Vec<usize>> {
    g.inputs
        .iter()
        .map(|s| {
            if s.h == 1 && s.w == 1 {
                vec![1, s.c]
            } else {
                vec![1, s.c, s.h, s.w]
            }
        })
        .collect()
}

/// The runtime's output for inputs `x` (with the second input where the model has one).
fn run(model: &Model<'_>, x: &[Vec<f32>]) -> Vec<f32> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    match x {
        [z] => model.run(z, &mut arena, &mut out).unwrap(),
        [z, c] => model.run_conditional(z, c, &mut arena, &mut out).unwrap(),
        _ => unreachable!(),
    }
    out
}

#[test]
fn branched_graphs_match_tract_in_f32() {
    for g in graphs() {
        let tract = Tract::load(
            g.name,
            &g.onnx_f32(),
            &tinygen_export::check::Load::default(),
        )
        .unwrap();
        let file = AlignedBytes::new(&tgm::write_program(&g.program(Precision::F32)).unwrap());
        let model = Model::parse(&file).unwrap();
        let shapes = g.shapes();
        for seed in 0..8 {
            let x = sample_inputs(&g, seed);
            let dims = input_dims(&g);
            let inputs: Vec<(&[usize], &[f32])> = dims
                .iter()
                .zip(&x)
                .map(|(d, v)| (d.as_slice(), v.as_slice()))
                .collect();
            let want = tract.run_f32_inputs(&inputs).unwrap();
            assert_eq!(want.len(), shapes.last().unwrap().len());
            let got = run(&model, &x);
            let err = rel_err(&got, &want).unwrap();
            assert!(err <= REL_TOL, "{} seed {seed}: {err:e}", g.name);
        }
    }
}

#[test]
fn branched_graphs_match_tract_bit_for_bit_in_int8() {
    for g in graphs() {
        let tract = Tract::load(
            g.name,
            &g.onnx_qdq(),
            &tinygen_export::check::Load::default(),
        )
        .unwrap();
        let file = AlignedBytes::new(&tgm::write_program(&g.program(Precision::Int8)).unwrap());
        let model = Model::parse(&file).unwrap();
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..16 {
            let x = sample_inputs(&g, seed);
            let dims = input_dims(&g);
            let inputs: Vec<(&[usize], &[f32])> = dims
                .iter()
                .zip(&x)
                .map(|(d, v)| (d.as_slice(), v.as_slice()))
                .collect();
            let want = tract.run_f32_inputs(&inputs).unwrap();
            let got = run(&model, &x);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{} seed {seed}",
                g.name
            );
            distinct.extend(got.iter().map(|v| v.to_bits()));
        }
        // The outputs vary, or equality says little.
        assert!(
            distinct.len() > 8,
            "{}: {} distinct values",
            g.name,
            distinct.len()
        );
    }
}
