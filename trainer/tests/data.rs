//! Data, image and checkpoint I/O against real files: MNIST from `../shared/data`, the built-in
//! digits, damaged copies of them, PNG and safetensors round trips.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use tinygen_trainer::checkpoint::{self, CheckpointError};
use tinygen_trainer::data::{self, DataError, PixelRange};
use tinygen_trainer::image::{self, GridOptions};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A folder of raw (uncompressed) IDX files made from MNIST's test split, used for both splits
/// so tests stay small; `edit` may damage one file's bytes.
fn raw_idx_dir(edit: impl Fn(&str, &mut Vec<u8>)) -> tempfile::TempDir {
    let mnist = shared_data().join("mnist");
    let images = gunzip(&mnist.join("t10k-images-idx3-ubyte.gz"));
    let labels = gunzip(&mnist.join("t10k-labels-idx1-ubyte.gz"));
    let dir = tempfile::tempdir().unwrap();
    for name in NAMES {
        let mut bytes = if name.contains("images") {
            images.clone()
        } else {
            labels.clone()
        };
        edit(name, &mut bytes);
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn mnist_loads_with_plausible_statistics() {
    let splits = data::load(Some(&shared_data().join("mnist"))).unwrap();
    assert_eq!(splits.train.len(), 60_000);
    assert_eq!(splits.test.len(), 10_000);
    assert_eq!((splits.height(), splits.width()), (28, 28));
    assert_eq!(splits.train.pixels(), 784);
    assert_eq!(splits.train.name, "mnist");
    assert_eq!(&splits.train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&splits.test.labels[..3], &[7, 2, 1]);
    // The widely quoted normalisation constant for MNIST train is mean 0.1307 (std 0.3081).
    // The exact mean is 0.130660 (33.318 / 255); 1e-3 allows only for summation order.
    let mean = splits.train.mean_pixel();
    assert!((mean - 0.1307).abs() < 1e-3, "mean {mean}");
    let (lo, hi) = splits
        .train
        .images
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    assert_eq!((lo, hi), (0.0, 1.0));
    let mut counts = [0usize; 10];
    for &l in &splits.train.labels {
        counts[usize::from(l)] += 1;
    }
    // Published class counts of the MNIST training set.
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

#[test]
fn builtin_digits_load() {
    let s = data::load(Some(Path::new(data::BUILTIN_DIGITS))).unwrap();
    assert_eq!(s.train.len() + s.test.len(), 1797);
    assert_eq!((s.train.len(), s.test.len()), (1498, 299));
    assert_eq!((s.height(), s.width()), (8, 8));
    assert_eq!(s.train.labels[..3], [0, 1, 2]);
    // First image, first row of pixels in the file: 0,0,5,13,9,1,0,0 (of 16).
    let row: Vec<f32> = s.train.image(0).iter().take(8).copied().collect();
    let want = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0].map(|v: f32| v / 16.0);
    assert_eq!(row, want);
    // The same file from shared/ gives the same data.
    let f = data::load(Some(&shared_data().join("optdigits/digits.csv.gz"))).unwrap();
    assert_eq!(f.train.images, s.train.images);
    assert_eq!(f.test.labels, s.test.labels);
}

#[test]
fn builtin_mnist_is_the_default() {
    let s = data::load(None).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (8_000, 2_000));
    assert_eq!((s.height(), s.width()), (28, 28));
    assert_eq!(s.train.pixels(), 784);
    assert_eq!(s.train.name, data::BUILTIN_MNIST_NAME);
    // The MNIST test set starts 7, 2, 1, 0, 4 and ends 4, 5, 6.
    assert_eq!(s.train.labels[..5], [7, 2, 1, 0, 4]);
    assert_eq!(s.test.labels[s.test.len() - 3..], [4, 5, 6]);
    for split in [&s.train, &s.test] {
        let mut counts = [0usize; 10];
        for &l in &split.labels {
            counts[usize::from(l)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), split.len());
        let (lo, hi) = split
            .images
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        assert_eq!((lo, hi), (0.0, 1.0));
    }
    // Deterministic, and the same as `builtin:mnist`.
    let again = data::load(Some(Path::new(data::BUILTIN_MNIST))).unwrap();
    assert_eq!(again.train.images, s.train.images);
    assert_eq!(again.test.images, s.test.images);
    assert_eq!(again.train.labels, s.train.labels);
    assert_eq!(again.test.labels, s.test.labels);
}

#[test]
fn builtin_mnist_is_the_mnist_test_set() {
    // The embedded files decompress to the bytes of MNIST's t10k files in ../shared/data (whose
    // images file has the published MD5 2646ac647ad5339dbf082846283269ea).
    let ungz = |gz: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let mnist = shared_data().join("mnist");
    let images = ungz(data::BUILTIN_MNIST_IMAGES_GZ);
    assert_eq!(images.len(), 16 + 10_000 * 784);
    assert!(images == gunzip(&mnist.join("t10k-images-idx3-ubyte.gz")));
    let labels = ungz(data::BUILTIN_MNIST_LABELS_GZ);
    assert!(labels == gunzip(&mnist.join("t10k-labels-idx1-ubyte.gz")));
    // The two splits are the test set's first 8,000 and last 2,000 images, in order.
    let whole = data::load_idx_pair(
        &mnist.join("t10k-images-idx3-ubyte.gz"),
        &mnist.join("t10k-labels-idx1-ubyte.gz"),
        "mnist",
    )
    .unwrap();
    let s = data::builtin_mnist().unwrap();
    let n = data::BUILTIN_MNIST_TRAIN;
    assert_eq!(s.train.images, whole.images.slice(ndarray::s![..n, ..]));
    assert_eq!(s.test.images, whole.images.slice(ndarray::s![n.., ..]));
    assert_eq!(s.train.labels, whole.labels[..n]);
    assert_eq!(s.test.labels, whole.labels[n..]);
}

#[test]
fn raw_idx_matches_gzip() {
    let dir = raw_idx_dir(|_, _| {});
    let raw = data::load_idx_dir(dir.path()).unwrap();
    let gz = data::load_idx_pair(
        &shared_data().join("mnist/t10k-images-idx3-ubyte.gz"),
        &shared_data().join("mnist/t10k-labels-idx1-ubyte.gz"),
        "mnist",
    )
    .unwrap();
    assert_eq!(raw.train.len(), 10_000);
    assert_eq!(raw.train.images, gz.images);
    assert_eq!(raw.test.labels, gz.labels);
}

#[test]
fn gzip_detected_by_content_not_name() {
    // A gzip file without the .gz suffix, and a raw file with it.
    let mnist = shared_data().join("mnist");
    let dir = tempfile::tempdir().unwrap();
    for name in NAMES {
        let gz = std::fs::read(mnist.join(format!("{name}.gz"))).unwrap();
        if name.starts_with("train") {
            std::fs::write(dir.path().join(name), gz).unwrap();
        } else {
            std::fs::write(
                dir.path().join(format!("{name}.gz")),
                gunzip(&mnist.join(format!("{name}.gz"))),
            )
            .unwrap();
        }
    }
    let s = data::load_idx_dir(dir.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
}

/// Checks the error variant and that its message names the damaged file.
fn expect_error(dir: &Path, file: &str, check: impl Fn(&DataError) -> bool) {
    let err = data::load(Some(dir)).unwrap_err();
    assert!(check(&err), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(file), "message does not name {file}: {msg}");
}

#[test]
fn damaged_idx_files_give_clear_errors() {
    let dir = raw_idx_dir(|name, b| {
        if name == "train-images-idx3-ubyte" {
            b.truncate(10);
        }
    });
    expect_error(dir.path(), "train-images-idx3-ubyte", |e| {
        matches!(
            e,
            DataError::TruncatedHeader {
                found: 10,
                needed: 16,
                ..
            }
        )
    });

    let dir = raw_idx_dir(|name, b| {
        if name == "t10k-labels-idx1-ubyte" {
            b[3] = 0x03;
        }
    });
    expect_error(dir.path(), "t10k-labels-idx1-ubyte", |e| {
        matches!(
            e,
            DataError::BadMagic {
                found: 0x803,
                expected: 0x801,
                ..
            }
        )
    });

    let dir = raw_idx_dir(|name, b| {
        if name == "train-labels-idx1-ubyte" {
            // Claim 9,999 labels and drop the last one.
            b[4..8].copy_from_slice(&9_999u32.to_be_bytes());
            b.pop();
        }
    });
    let err = data::load(Some(dir.path())).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 10_000,
                n_labels: 9_999,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("train-labels-idx1-ubyte"),
        "{msg}"
    );

    let dir = raw_idx_dir(|name, b| {
        if name == "t10k-images-idx3-ubyte" {
            b.truncate(b.len() - 100);
        }
    });
    expect_error(dir.path(), "t10k-images-idx3-ubyte", |e| {
        matches!(
            e,
            DataError::TruncatedData {
                expected: 7_840_000,
                found: 7_839_900,
                ..
            }
        )
    });

    let dir = raw_idx_dir(|_, _| {});
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    expect_error(dir.path(), "t10k-labels-idx1-ubyte", |e| {
        matches!(e, DataError::IdxFileMissing { .. })
    });
}

#[test]
fn truncated_gzip_is_an_error() {
    let mnist = shared_data().join("mnist");
    let dir = tempfile::tempdir().unwrap();
    for name in NAMES {
        let mut gz = std::fs::read(mnist.join(format!("{name}.gz"))).unwrap();
        if name == "t10k-labels-idx1-ubyte" {
            gz.truncate(gz.len() / 2);
        }
        std::fs::write(dir.path().join(format!("{name}.gz")), gz).unwrap();
    }
    expect_error(dir.path(), "t10k-labels-idx1-ubyte.gz", |e| {
        matches!(e, DataError::Gzip { .. } | DataError::TruncatedData { .. })
    });
}

#[test]
fn missing_dir_and_wrong_file() {
    let missing = shared_data().join("no-such-data-set");
    expect_error(&missing, "no-such-data-set", |e| {
        matches!(e, DataError::PathNotFound { .. })
    });
    let idx = shared_data().join("mnist/t10k-labels-idx1-ubyte.gz");
    expect_error(&idx, "t10k-labels-idx1-ubyte.gz", |e| {
        matches!(e, DataError::IdxFileGiven { .. })
    });
    let empty = tempfile::tempdir().unwrap();
    let err = data::load(Some(empty.path())).unwrap_err();
    assert!(matches!(
        err,
        DataError::IdxFileMissing {
            wanted: "train-images-idx3-ubyte",
            ..
        }
    ));
    assert!(err.to_string().contains("--data"), "{err}");
}

#[test]
fn csv_bad_row_names_the_line() {
    let text = String::from_utf8(gunzip(&shared_data().join("optdigits/digits.csv.gz"))).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[41] = "0,0,5,x";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("digits.csv");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let err = data::load(Some(&p)).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CsvColumns {
                line: 42,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("digits.csv:42"), "{err}");
}

#[test]
fn png_grid_round_trip() {
    let s = data::builtin_digits()
        .unwrap()
        .train
        .take(10)
        .with_range(PixelRange::MinusOneOne);
    let opts = GridOptions::for_images(8, 8, 4, PixelRange::MinusOneOne);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    image::write_grid(&path, s.images.view(), 8, 8, &opts).unwrap();
    let expected = image::grid(s.images.view(), 8, 8, &opts).unwrap();
    // 4 columns x 3 rows of 24x24 cells with 1-pixel padding.
    assert_eq!((expected.width, expected.height), (4 * 24 + 5, 3 * 24 + 4));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert_eq!(
        (info.width as usize, info.height as usize),
        (expected.width, expected.height)
    );
    assert_eq!(&buf[..info.buffer_size()], expected.pixels.as_slice());
    // Pixel (row 2, col 3) of image 5, scaled x3, lands at cell (1, 1).
    let cell = 1 + 25; // pad, then one 24-pixel cell and its pad
    let (x, y) = (cell + 3 * 3 + 1, cell + 2 * 3 + 2);
    let v = s.images[[5, 2 * 8 + 3]];
    assert_eq!(
        buf[y * expected.width + x],
        image::to_gray(v, PixelRange::MinusOneOne)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");

    // Originals | reconstructions: the right half shows the second array.
    let zeros = Array2::<f32>::from_elem((10, 64), -1.0);
    let cmp = image::comparison(s.images.view(), zeros.view(), 8, 8, &opts).unwrap();
    assert_eq!(cmp.width, 2 * expected.width + 2);
    for (row, left) in cmp
        .pixels
        .chunks_exact(cmp.width)
        .zip(expected.pixels.chunks_exact(expected.width))
    {
        assert_eq!(&row[..expected.width], left);
    }
    image::write_comparison(
        &dir.path().join("cmp.png"),
        s.images.view(),
        zeros.view(),
        8,
        8,
        &opts,
    )
    .unwrap();
}

fn sample_tensors() -> (Vec<f32>, Vec<f32>) {
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
    let b = vec![f32::MIN_POSITIVE, -0.0, 1e30];
    (w, b)
}

#[test]
fn checkpoint_round_trip() {
    let (w, b) = sample_tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let meta = checkpoint::metadata(
        "vae",
        4,
        1880,
        &serde_json::json!({"latent": 20, "lr": 1e-3}),
    )
    .unwrap();
    checkpoint::save(
        &path,
        &[
            ("dec.w".into(), vec![3, 4], &w),
            ("dec.b".into(), vec![3], &b),
        ],
        &meta,
    )
    .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");

    let mut ck = checkpoint::load_kind(&path, "vae").unwrap();
    assert_eq!(ck.epoch().unwrap(), 4);
    assert_eq!(ck.step().unwrap(), 1880);
    let cfg: serde_json::Value = ck.config().unwrap();
    assert_eq!(cfg["latent"], 20);
    assert_eq!(ck.meta(checkpoint::keys::FORMAT_VERSION).unwrap(), "1");
    // Bit-exact: the file stores the f32 values themselves.
    let got_w = ck.take("dec.w", &[3, 4]).unwrap();
    assert!(got_w
        .iter()
        .zip(&w)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut got_b = vec![0.0; 3];
    ck.take_into("dec.b", &[3], &mut got_b).unwrap();
    assert!(got_b
        .iter()
        .zip(&b)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    ck.finish().unwrap();

    let err = checkpoint::load_kind(&path, "gan").unwrap_err();
    assert!(matches!(err, CheckpointError::KindMismatch { .. }), "{err}");
}

#[test]
fn checkpoint_errors_name_file_and_tensor() {
    let (w, b) = sample_tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let meta = checkpoint::metadata("gan", 1, 10, &()).unwrap();
    checkpoint::save(
        &path,
        &[("g.w".into(), vec![3, 4], &w), ("g.b".into(), vec![3], &b)],
        &meta,
    )
    .unwrap();

    let mut ck = checkpoint::load(&path).unwrap();
    let err = ck.take("g.gamma", &[3]).unwrap_err();
    assert!(
        matches!(err, CheckpointError::MissingTensor { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("ck.safetensors") && msg.contains("g.gamma"),
        "{msg}"
    );

    let err = ck.take("g.w", &[4, 3]).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::ShapeMismatch { expected, found, .. } if expected == &[4, 3] && found == &[3, 4]),
        "{err}"
    );
    assert!(err.to_string().contains("g.w"), "{err}");

    ck.take("g.w", &[3, 4]).unwrap();
    let err = ck.finish().unwrap_err();
    assert!(
        matches!(&err, CheckpointError::UnusedTensors { names, .. } if names == &["g.b"]),
        "{err}"
    );

    let bytes = std::fs::read(&path).unwrap();
    for cut in [4, 20, bytes.len() - 1] {
        let t = dir.path().join("truncated.safetensors");
        std::fs::write(&t, &bytes[..cut]).unwrap();
        let err = checkpoint::load(&t).unwrap_err();
        assert!(
            matches!(err, CheckpointError::Parse { .. }),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated.safetensors"), "{err}");
    }

    let err = checkpoint::load(&dir.path().join("absent.safetensors")).unwrap_err();
    assert!(matches!(err, CheckpointError::NotFound { .. }), "{err}");
}

#[test]
fn checkpoint_file_is_standard_safetensors() {
    // Layout check independent of the safetensors crate: u64 LE header length, JSON header with
    // dtype/shape/data_offsets and __metadata__, then little-endian data.
    let (w, _) = sample_tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    let meta = BTreeMap::from([("note".to_string(), "hi".to_string())]);
    checkpoint::save(&path, &[("w".into(), vec![3, 4], &w)], &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["w"]["dtype"], "F32");
    assert_eq!(header["w"]["shape"], serde_json::json!([3, 4]));
    assert_eq!(header["w"]["data_offsets"], serde_json::json!([0, 48]));
    assert_eq!(header["__metadata__"]["note"], "hi");
    assert_eq!(header["__metadata__"]["tinygen.format_version"], "1");
    let data = &bytes[8 + n..];
    assert_eq!(data.len(), 48);
    assert_eq!(f32::from_le_bytes(data[4..8].try_into().unwrap()), w[1]);
}
