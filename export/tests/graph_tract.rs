//! Branched graphs (a residual block, a conditional input, an affine coupling, a permutation),
//! written as ONNX with standard operators and as model files: the runtime matches tract-onnx
//! within 1e-5 in f32 (relative to the largest output, as in `onnx_tract.rs`), and bit for bit
//! in int8 (QDQ with power-of-two scales).

use tinygen_export::check::{rel_err, Tract};
use tinygen_export::tgm::{self, AlignedBytes};
use tinygen_runtime::model::{Model, Precision};
use tinygen_testkit::graphs::{graphs, sample_inputs, Graph};
use tinygen_testkit::{write_validation_case, write_validation_case_unoptimized, CaseTensor};

/// Where the validation cases for `tools/validate_onnx.py` (the ONNX checker and onnxruntime)
/// go: `TINYGEN_ONNX_CASES`, else the test's scratch directory.
fn cases_dir() -> std::path::PathBuf {
    std::env::var_os("TINYGEN_ONNX_CASES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-cases"))
}

/// The graph inputs `x` as validation-case tensors named `names` (the model's input names).
fn case_inputs(g: &Graph, names: &[String], x: &[Vec<f32>]) -> Vec<CaseTensor> {
    input_dims(g)
        .iter()
        .zip(x)
        .zip(names)
        .map(|((d, v), n)| CaseTensor::f32(n, d, v.clone()))
        .collect()
}

const REL_TOL: f64 = 1e-5;

/// ONNX dims of one sample: `[c]` for a vector, `[c, h, w]` for an image.
fn input_dims_of(s: tinygen_export::Shape) -> Vec<usize> {
    if s.h == 1 && s.w == 1 {
        vec![s.c]
    } else {
        vec![s.c, s.h, s.w]
    }
}

/// ONNX input shapes, batch 1.
fn input_dims(g: &Graph) -> Vec<Vec<usize>> {
    g.inputs
        .iter()
        .map(|&s| {
            let mut d = vec![1];
            d.extend(input_dims_of(s));
            d
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
        let dag = g.dag();
        let onnx = dag.to_onnx_f32(g.name).unwrap();
        let tract = Tract::load(g.name, &onnx, &tinygen_export::check::Load::default()).unwrap();
        // The exporter's graph writes the same model file as the program built by hand (which
        // leaves the output range unbounded).
        let bytes = dag.write_f32().unwrap();
        let by_hand = tgm::Program {
            range: dag.output_range(),
            ..g.program(Precision::F32)
        };
        assert!(
            bytes == tgm::write_program(&by_hand).unwrap(),
            "{}: the files differ",
            g.name
        );
        let file = AlignedBytes::new(&bytes);
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
            if seed == 0 {
                // onnxruntime gets the runtime's output to match (within 1e-5).
                let last = g.inputs.len() + g.ops.len() - 1;
                let mut dims = vec![1];
                dims.extend(&input_dims_of(shapes[last]));
                let inputs = case_inputs(&g, &dag.onnx_input_names(), &x);
                let case = write_validation_case(
                    &cases_dir(),
                    &format!("graph_f32_{}", g.name),
                    &onnx,
                    &inputs,
                    &[CaseTensor::f32(
                        tinygen_export::onnx::output_name(dag.part),
                        &dims,
                        got.clone(),
                    )],
                )
                .unwrap();
                assert!(case.exists());
            }
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
            if seed == 0 {
                // onnxruntime gets the runtime's int8 output to match bit for bit.
                let (scale, zero_point) = model.output_quantization().unwrap();
                let q: Vec<i8> = got
                    .iter()
                    .map(|&v| (v / scale).round() as i32 + i32::from(zero_point))
                    .map(|v| v as i8)
                    .collect();
                let last = g.inputs.len() + g.ops.len() - 1;
                let mut dims = vec![1];
                dims.extend(&input_dims_of(g.shapes()[last]));
                let case = write_validation_case_unoptimized(
                    &cases_dir(),
                    &format!("graph_int8_{}", g.name),
                    &g.onnx_qdq(),
                    &case_inputs(&g, &["x0".to_owned(), "x1".to_owned()], &x),
                    &[
                        CaseTensor::f32(&format!("d{last}"), &dims, got.clone()),
                        CaseTensor::i8(&format!("q{last}"), &dims, q),
                    ],
                )
                .unwrap();
                assert!(case.exists());
            }
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
