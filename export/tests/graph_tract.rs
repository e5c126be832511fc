//! Branched graphs (a residual block, a conditional input, an affine coupling, a permutation),
//! written as f32 ONNX with standard operators and as model files: the runtime matches tract-onnx
//! within 1e-5 (relative to the largest output, as in `onnx_tract.rs`).

use tinygen_export::check::{rel_err, Tract};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_runtime::model::{Model, Precision};
use tinygen_testkit::graphs::{graphs, sample_inputs};

const REL_TOL: f64 = 1e-5;

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
            let dims: Vec<Vec<usize>> = g
                .inputs
                .iter()
                .map(|s| {
                    if s.h == 1 && s.w == 1 {
                        vec![1, s.c]
                    } else {
                        vec![1, s.c, s.h, s.w]
                    }
                })
                .collect();
            let inputs: Vec<(&[usize], &[f32])> = dims
                .iter()
                .zip(&x)
                .map(|(d, v)| (d.as_slice(), v.as_slice()))
                .collect();
            let want = tract.run_f32_inputs(&inputs).unwrap();
            assert_eq!(want.len(), shapes.last().unwrap().len());
            let mut arena = vec![0u8; model.arena_bytes()];
            let mut got = vec![0f32; model.output_len()];
            match x.as_slice() {
                [z] => model.run(z, &mut arena, &mut got).unwrap(),
                [z, c] => model.run_conditional(z, c, &mut arena, &mut got).unwrap(),
                _ => unreachable!(),
            }
            let err = rel_err(&got, &want).unwrap();
            assert!(err <= REL_TOL, "{} seed {seed}: {err:e}", g.name);
        }
    }
}
