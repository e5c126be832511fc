//! IDX files, the format of MNIST, Fashion-MNIST, EMNIST and KMNIST.
//!
//! Layout (big-endian): two zero bytes, the element type (0x08 = unsigned byte), the number of
//! dimensions, then one u32 per dimension, then the data. Images are `0x00000803` (n, rows, cols),
//! labels `0x00000801` (n). Files may be gzip-compressed; that is detected by the gzip magic number,
//! not the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use ndarray::Array2;

use super::{is_gzip, read_file, DataError, Dataset, PixelRange, Splits};

/// Largest IDX payload accepted (8 GiB; EMNIST ByClass train, the largest common set, is 547 MB).
pub const MAX_IDX_DATA_BYTES: u64 = 1 << 33;

/// Magic number of an IDX image file: unsigned bytes, 3 dimensions.
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX label file: unsigned bytes, 1 dimension.
const LABELS_MAGIC: u32 = 0x0000_0801;

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone)]
pub struct IdxFile {
    /// The dimensions from the header.
    pub dims: Vec<usize>,
    /// The data, row-major, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads up to `buf.len()` bytes, stopping early only at the end of the stream.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses an IDX file of unsigned bytes with `rank` dimensions from `bytes` (gzip or raw),
/// validating the magic number, the dimensions and the data length. `path` only names the file
/// in errors.
pub fn parse_idx(bytes: &[u8], rank: u8, path: &Path) -> Result<IdxFile, DataError> {
    let gz = is_gzip(bytes);
    let mut reader: Box<dyn Read + '_> = if gz {
        Box::new(GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let stream_err = |source: std::io::Error| {
        if gz {
            DataError::Gzip {
                path: path.to_path_buf(),
                source,
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };

    let header_len = 4 + 4 * usize::from(rank);
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut reader, &mut header).map_err(stream_err)?;
    if got < 4 {
        return Err(DataError::TruncatedHeader {
            path: path.to_path_buf(),
            found: got,
            needed: header_len,
        });
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let expected = 0x0800 | u32::from(rank);
    if magic != expected {
        let (what, hint) = describe_magic(rank, magic);
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: magic,
            expected,
            what,
            hint,
        });
    }
    if got < header_len {
        return Err(DataError::TruncatedHeader {
            path: path.to_path_buf(),
            found: got,
            needed: header_len,
        });
    }
    let dims32: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if dims32.contains(&0) {
        return Err(DataError::ZeroDimension {
            path: path.to_path_buf(),
            dims: dims32,
        });
    }
    let too_large = || DataError::TooLarge {
        path: path.to_path_buf(),
        dims: dims32.clone(),
        limit: MAX_IDX_DATA_BYTES,
    };
    let expected_len = dims32
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&n| n <= MAX_IDX_DATA_BYTES)
        .ok_or_else(too_large)?;
    let expected_usize = usize::try_from(expected_len).map_err(|_| too_large())?;
    let dims: Vec<usize> = dims32
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_large()))
        .collect::<Result<_, _>>()?;

    // Read at most one byte past the promised length. The buffer grows only as data actually
    // arrives, so a header that promises gigabytes over a small file allocates little.
    let mut data = Vec::with_capacity(expected_usize.min(1 << 28));
    reader
        .take(expected_len + 1)
        .read_to_end(&mut data)
        .map_err(stream_err)?;
    let found = data.len() as u64;
    if found < expected_len {
        return Err(DataError::TruncatedData {
            path: path.to_path_buf(),
            expected: expected_len,
            found,
        });
    }
    if found > expected_len {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            expected: expected_len,
        });
    }
    Ok(IdxFile { dims, data })
}

fn describe_magic(rank: u8, found: u32) -> (&'static str, &'static str) {
    let what = if rank == 3 {
        "IDX images: unsigned bytes, 3 dimensions"
    } else {
        "IDX labels: unsigned bytes, 1 dimension"
    };
    let hint = if rank == 3 && found == LABELS_MAGIC {
        "this is a label file: are the image and label files swapped?"
    } else if rank == 1 && found == IMAGES_MAGIC {
        "this is an image file: are the image and label files swapped?"
    } else if found >> 16 != 0 {
        "this is not an IDX file; fetch the data set again"
    } else if (found >> 8) & 0xff != 0x08 {
        "the elements are not unsigned bytes; only IDX files of unsigned bytes are supported"
    } else {
        "the number of dimensions is wrong for this kind of file"
    };
    (what, hint)
}

fn load_file(path: &Path, rank: u8) -> Result<IdxFile, DataError> {
    parse_idx(&read_file(path)?, rank, path)
}

/// Loads one split from an IDX image file and an IDX label file (each gzip or raw). Pixels are
/// scaled from 0..255 to `[0, 1]`.
pub fn load_idx_pair(images: &Path, labels: &Path, name: &str) -> Result<Dataset, DataError> {
    let img = load_file(images, 3)?;
    let lab = load_file(labels, 1)?;
    let (height, width) = check_pair(&img, &lab, images, labels)?;
    to_dataset(&img.data, lab.data, height, width, name)
}

/// Parses an IDX image file and an IDX label file from memory (each gzip or raw) and splits them
/// in order: the first `n_train` images (all, if there are fewer) are the training split, the
/// rest the test split. Pixels are scaled from 0..255 to `[0, 1]`. The paths only name the
/// sources in errors.
pub(super) fn parse_idx_splits(
    images: &[u8],
    labels: &[u8],
    images_path: &Path,
    labels_path: &Path,
    n_train: usize,
    name: &str,
) -> Result<Splits, DataError> {
    let img = parse_idx(images, 3, images_path)?;
    let mut lab = parse_idx(labels, 1, labels_path)?;
    let (height, width) = check_pair(&img, &lab, images_path, labels_path)?;
    let n_train = n_train.min(lab.data.len());
    let test_labels = lab.data.split_off(n_train);
    // img.data holds n * height * width bytes (checked by parse_idx and check_pair).
    let (train_pixels, test_pixels) = img.data.split_at(n_train * height * width);
    Ok(Splits {
        train: to_dataset(train_pixels, lab.data, height, width, name)?,
        test: to_dataset(test_pixels, test_labels, height, width, name)?,
    })
}

/// Checks that an image file (n, height, width) and a label file (n) hold the same number of
/// samples; returns `(height, width)`.
fn check_pair(
    img: &IdxFile,
    lab: &IdxFile,
    images: &Path,
    labels: &Path,
) -> Result<(usize, usize), DataError> {
    // parse_idx returned exactly `rank` dimensions: 3 for images, 1 for labels.
    let (n, height, width) = (img.dims[0], img.dims[1], img.dims[2]);
    let n_labels = lab.dims[0];
    if n != n_labels {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images: n,
            n_labels,
        });
    }
    Ok((height, width))
}

/// One split from `labels.len()` images of `height * width` bytes each, scaled to `[0, 1]`.
fn to_dataset(
    pixels: &[u8],
    labels: Vec<u8>,
    height: usize,
    width: usize,
    name: &str,
) -> Result<Dataset, DataError> {
    let pixels: Vec<f32> = pixels.iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok(Dataset {
        images: Array2::from_shape_vec((labels.len(), height * width), pixels)?,
        labels,
        height,
        width,
        name: name.to_string(),
        range: PixelRange::ZeroOne,
    })
}

/// Finds the file for the standard IDX name `wanted` in `dir`: `wanted` or `wanted.gz`
/// (the uncompressed file preferred), the dotted variant (`train-images.idx3-ubyte`), or else a
/// single file whose name ends in `-wanted[.gz]` (EMNIST: `emnist-digits-train-images-idx3-ubyte.gz`).
fn find_idx_file(dir: &Path, wanted: &'static str) -> Result<PathBuf, DataError> {
    // "train-images-idx3-ubyte" -> "train-images.idx3-ubyte"
    let dotted = match wanted.rfind("-idx") {
        Some(i) => format!("{}.{}", &wanted[..i], &wanted[i + 1..]),
        None => wanted.to_string(),
    };
    for name in [
        wanted.to_string(),
        format!("{wanted}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let matches =
            stem.ends_with(&format!("-{wanted}")) || stem.ends_with(&format!("-{dotted}"));
        if matches && entry.path().is_file() {
            found.push(name);
        }
    }
    found.sort();
    // A raw file and its .gz are the same data: prefer the raw one.
    if found.len() == 2 && found[1] == format!("{}.gz", found[0]) {
        found.truncate(1);
    }
    match found.len() {
        0 => Err(DataError::IdxFileMissing {
            dir: dir.to_path_buf(),
            wanted,
        }),
        1 => Ok(dir.join(&found[0])),
        _ => Err(DataError::IdxFileAmbiguous {
            dir: dir.to_path_buf(),
            wanted,
            found,
        }),
    }
}

/// Loads the train and test splits from a folder of IDX files: `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally
/// gzip-compressed (detected by content) and optionally prefixed as EMNIST names them. The data
/// set is named after the folder.
pub fn load_idx_dir(dir: &Path) -> Result<Splits, DataError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(DataError::IdxFileGiven {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::PathNotFound {
                path: dir.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(DataError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let train_images = find_idx_file(dir, "train-images-idx3-ubyte")?;
    let train_labels = find_idx_file(dir, "train-labels-idx1-ubyte")?;
    let test_images = find_idx_file(dir, "t10k-images-idx3-ubyte")?;
    let test_labels = find_idx_file(dir, "t10k-labels-idx1-ubyte")?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let train = load_idx_pair(&train_images, &train_labels, &name)?;
    let test = load_idx_pair(&test_images, &test_labels, &name)?;
    if (train.height, train.width) != (test.height, test.width) {
        return Err(DataError::SplitShapeMismatch {
            train: train_images,
            train_h: train.height,
            train_w: train.width,
            test: test_images,
            test_h: test.height,
            test_w: test.width,
        });
    }
    Ok(Splits { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    fn p() -> &'static Path {
        Path::new("x-idx3-ubyte")
    }

    #[test]
    fn parses_small_images() {
        let f = parse_idx(&idx(IMAGES_MAGIC, &[2, 1, 3], &[1, 2, 3, 4, 5, 6]), 3, p()).unwrap();
        assert_eq!(f.dims, vec![2, 1, 3]);
        assert_eq!(f.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn gzip_detected_by_content() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let raw = idx(LABELS_MAGIC, &[3], &[7, 8, 9]);
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        let f = parse_idx(&gz, 1, Path::new("labels-without-gz-suffix")).unwrap();
        assert_eq!(f.data, vec![7, 8, 9]);
    }

    #[test]
    fn rejects_bad_headers() {
        type Check = fn(&DataError) -> bool;
        let cases: Vec<(Vec<u8>, u8, Check)> = vec![
            (vec![0, 0, 8], 3, |e| {
                matches!(e, DataError::TruncatedHeader { found: 3, .. })
            }),
            (idx(IMAGES_MAGIC, &[2, 1], &[]), 3, |e| {
                matches!(
                    e,
                    DataError::TruncatedHeader {
                        found: 12,
                        needed: 16,
                        ..
                    }
                )
            }),
            (idx(LABELS_MAGIC, &[1], &[0]), 3, |e| {
                matches!(e, DataError::BadMagic { .. })
            }),
            (idx(0x0000_0903, &[1, 1, 1], &[0]), 3, |e| {
                matches!(e, DataError::BadMagic { .. })
            }),
            (idx(IMAGES_MAGIC, &[0, 28, 28], &[]), 3, |e| {
                matches!(e, DataError::ZeroDimension { .. })
            }),
            (
                idx(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[]),
                3,
                |e| matches!(e, DataError::TooLarge { .. }),
            ),
            (idx(IMAGES_MAGIC, &[100_000, 100, 1000], &[]), 3, |e| {
                matches!(e, DataError::TooLarge { .. })
            }),
            (idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 7]), 3, |e| {
                matches!(
                    e,
                    DataError::TruncatedData {
                        expected: 8,
                        found: 7,
                        ..
                    }
                )
            }),
            (idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 9]), 3, |e| {
                matches!(e, DataError::TrailingData { expected: 8, .. })
            }),
            (vec![0x1f, 0x8b, 8, 0, 1, 2, 3], 1, |e| {
                matches!(e, DataError::Gzip { .. })
            }),
        ];
        for (i, (bytes, rank, check)) in cases.into_iter().enumerate() {
            let err = parse_idx(&bytes, rank, p()).unwrap_err();
            assert!(check(&err), "case {i}: {err:?}");
            assert!(err.to_string().contains("x-idx3-ubyte"), "case {i}: {err}");
        }
    }

    #[test]
    fn magic_hints() {
        let err = parse_idx(&idx(LABELS_MAGIC, &[1], &[0]), 3, p()).unwrap_err();
        assert!(err.to_string().contains("swapped"), "{err}");
        let err = parse_idx(b"PK\x03\x04zipfile....", 3, p()).unwrap_err();
        assert!(err.to_string().contains("not an IDX file"), "{err}");
    }
}
