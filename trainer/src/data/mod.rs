//! Data sets: IDX files (MNIST, Fashion-MNIST, EMNIST, KMNIST), the UCI 8x8 digits CSV, two
//! built-in data sets, normalisation and seeded mini-batch iteration.
//!
//! Every loader returns [`Splits`] (a train and a test [`Dataset`]) with pixels in `[0, 1]`, one
//! image per row of `images` (row-major `height * width` pixels). [`Dataset::set_range`] maps them
//! to `[-1, 1]` for generators that end in `tanh`. [`Batcher`] walks a data set in a shuffled order
//! that depends only on `(seed, epoch)`, copying each mini-batch into buffers it keeps.
//!
//! Two data sets are compiled into the binary, so training needs no download ([`load`] picks one
//! by name):
//! - `builtin:mnist`, the default when `--data` is left out: the MNIST test set (10,000 images of
//!   28x28), the first 8,000 images as the training split and the last 2,000 as the test split
//!   ([`builtin_mnist`]);
//! - `builtin:digits`: the UCI 8x8 digits (1,797 images), 1,498 train and 299 test
//!   ([`builtin_digits`]); small enough for tests that train in a second.
//!
//! Bad input never panics: every problem is a [`DataError`] that names the file, says what was
//! wrong and what to do.

mod batch;
mod csv;
mod idx;

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView1, Axis};
use tinygen_runtime::vocab::OutputRange;

pub use batch::{Batch, Batcher};
pub use csv::{load_digits_csv, parse_digits_csv, CSV_COLUMNS, CSV_MAX_PIXEL};
pub use idx::{load_idx_dir, load_idx_pair, parse_idx, IdxFile, MAX_IDX_DATA_BYTES};

/// The MNIST test images (`t10k-images-idx3-ubyte.gz`: 10,000 images of 28x28 bytes, gzip IDX),
/// half of the default data set [`builtin_mnist`].
///
/// Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
/// <http://yann.lecun.com/exdb/mnist/>. Licensed under CC BY-SA 3.0
/// (<https://creativecommons.org/licenses/by-sa/3.0/>); unchanged (the uncompressed file has the
/// published MD5 `2646ac647ad5339dbf082846283269ea`). See `trainer/assets/README.md`.
pub static BUILTIN_MNIST_IMAGES_GZ: &[u8] =
    include_bytes!("../../assets/t10k-images-idx3-ubyte.gz");

/// The MNIST test labels (`t10k-labels-idx1-ubyte.gz`: 10,000 bytes 0..9, gzip IDX), the other
/// half of [`builtin_mnist`]. Authors and license as [`BUILTIN_MNIST_IMAGES_GZ`].
pub static BUILTIN_MNIST_LABELS_GZ: &[u8] =
    include_bytes!("../../assets/t10k-labels-idx1-ubyte.gz");

/// The built-in 8x8 digits: the UCI optical recognition of handwritten digits, 8x8 pixels with
/// values 0..16, as scikit-learn ships it (`digits.csv.gz`, 1,797 images); [`builtin_digits`].
///
/// E. Alpaydin, C. Kaynak (1998), UCI Machine Learning Repository, <https://doi.org/10.24432/C50P49>.
/// Licensed under CC BY 4.0 (<https://creativecommons.org/licenses/by/4.0/>); unchanged.
/// See `trainer/assets/README.md`.
pub static BUILTIN_DIGITS_CSV_GZ: &[u8] = include_bytes!("../../assets/digits.csv.gz");

/// The `--data` value that names [`builtin_mnist`], the default (the same as leaving `--data`
/// out).
pub const BUILTIN_MNIST: &str = "builtin:mnist";

/// The `--data` value that names [`builtin_digits`].
pub const BUILTIN_DIGITS: &str = "builtin:digits";

/// `--data` values starting with this are names of built-in data sets, never paths (write
/// `./builtin:...` for a file of such a name).
pub const BUILTIN_PREFIX: &str = "builtin:";

/// The name [`builtin_mnist`] reports, also used in its error messages in place of a path.
pub const BUILTIN_MNIST_NAME: &str = "mnist-10k (built-in)";

/// The name [`builtin_digits`] reports, also used in its error messages in place of a path.
pub const BUILTIN_DIGITS_NAME: &str = "optdigits (built-in)";

/// Images of [`builtin_mnist`]'s training split: the first 8,000 of the MNIST test set; the last
/// 2,000 are its test split.
pub const BUILTIN_MNIST_TRAIN: usize = 8_000;

/// The range pixel values are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelRange {
    /// `[0, 1]`: black is 0, white is 1 (the form loaders return; sigmoid outputs, BCE).
    #[default]
    ZeroOne,
    /// `[-1, 1]`: black is -1, white is 1 (tanh outputs, GANs).
    MinusOneOne,
}

impl PixelRange {
    /// The value black maps to.
    pub fn low(self) -> f32 {
        match self {
            PixelRange::ZeroOne => 0.0,
            PixelRange::MinusOneOne => -1.0,
        }
    }

    /// The value white maps to.
    pub fn high(self) -> f32 {
        1.0
    }

    /// The model output range of this pixel range (the runtime's vocabulary).
    pub fn output_range(self) -> OutputRange {
        match self {
            PixelRange::ZeroOne => OutputRange::ZeroOne,
            PixelRange::MinusOneOne => OutputRange::MinusOneOne,
        }
    }

    /// Maps a value in this range to `[0, 1]` (no clamping).
    pub fn to_unit(self, v: f32) -> f32 {
        self.output_range().to_unit(v)
    }

    /// Maps a value in `[0, 1]` to this range (no clamping).
    pub fn from_unit(self, u: f32) -> f32 {
        match self {
            PixelRange::ZeroOne => u,
            PixelRange::MinusOneOne => u * 2.0 - 1.0,
        }
    }
}

/// Everything that can go wrong while loading data or iterating over it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// `--data` names a path that does not exist.
    #[error(
        "data path {path} does not exist; pass --data with a folder of IDX files \
         (train-images-idx3-ubyte.gz and its three siblings, as MNIST ships them), a digits \
         CSV(.gz) file, or a built-in data set: builtin:mnist (MNIST-10k, 28x28; the default when \
         --data is left out) or builtin:digits (UCI 8x8 digits)"
    )]
    PathNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// An IDX folder lacks one of the four files.
    #[error(
        "expected {wanted} (or {wanted}.gz) in {dir}; get MNIST (or Fashion-MNIST, KMNIST, EMNIST) \
         as the four IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz into one folder and pass it with \
         --data, or leave --data out to use the built-in MNIST-10k"
    )]
    IdxFileMissing {
        /// The folder searched.
        dir: PathBuf,
        /// The standard file name that was looked for.
        wanted: &'static str,
    },
    /// `--data` starts with `builtin:` but names no built-in data set.
    #[error(
        "{name:?} is not a built-in data set; the built-in data sets are builtin:mnist (MNIST-10k, \
         28x28; the default when --data is left out) and builtin:digits (UCI 8x8 digits); to read \
         a file or folder whose name starts with \"builtin:\", write it as ./{name}"
    )]
    UnknownBuiltin {
        /// The value given.
        name: String,
    },
    /// An IDX folder holds several candidates for one of the four files.
    #[error(
        "{dir} holds several files that could be {wanted}: {found:?}; keep one data set per \
         folder (e.g. one EMNIST split) and pass that folder with --data"
    )]
    IdxFileAmbiguous {
        /// The folder searched.
        dir: PathBuf,
        /// The standard file name that was looked for.
        wanted: &'static str,
        /// The matching file names.
        found: Vec<String>,
    },
    /// A single IDX file was given where a folder is expected.
    #[error(
        "{path} is a single IDX file; pass the folder that holds it and its three siblings \
         with --data"
    )]
    IdxFileGiven {
        /// The file given.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file starts with the gzip magic but does not decompress.
    #[error(
        "{path} starts like a gzip file but does not decompress ({source}); the download is \
         probably incomplete or corrupt: fetch it again"
    )]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// An IDX file ends inside its header.
    #[error(
        "{path}: the IDX header is truncated: {found} bytes, need {needed}; the file is \
         incomplete: fetch it again"
    )]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Bytes present (after decompression).
        found: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// An IDX file's magic number is not the one expected.
    #[error("{path}: magic number {found:#010x}, expected {expected:#010x} ({what}); {hint}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, big-endian.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// What the expected magic number stands for.
        what: &'static str,
        /// What the found number suggests and what to do.
        hint: &'static str,
    },
    /// An IDX file has a zero dimension.
    #[error(
        "{path}: IDX dimensions {dims:?} contain a zero; the file holds no data: fetch it again"
    )]
    ZeroDimension {
        /// The file.
        path: PathBuf,
        /// The dimensions the header gives.
        dims: Vec<u32>,
    },
    /// An IDX header describes an absurd amount of data.
    #[error(
        "{path}: IDX dimensions {dims:?} describe more than {limit} bytes of data; this is not \
         a real data set file"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions the header gives.
        dims: Vec<u32>,
        /// The largest data size accepted.
        limit: u64,
    },
    /// An IDX file ends before the data its header describes.
    #[error(
        "{path}: data truncated: the header describes {expected} bytes of data but only {found} \
         follow; the file is incomplete: fetch it again"
    )]
    TruncatedData {
        /// The file.
        path: PathBuf,
        /// Bytes the header describes.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// An IDX file has bytes after the data its header describes.
    #[error(
        "{path}: more bytes follow the {expected} bytes of data the header describes; the file \
         is corrupt or not an IDX file"
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Bytes the header describes.
        expected: u64,
    },
    /// The image and label files disagree on the number of samples.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels; the two files \
         must come from the same data set and split"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in the image file.
        n_images: usize,
        /// Labels in the label file.
        n_labels: usize,
    },
    /// The train and test images differ in size.
    #[error(
        "{train} holds {train_h}x{train_w} images but {test} holds {test_h}x{test_w}; the train \
         and test files must come from the same data set"
    )]
    SplitShapeMismatch {
        /// The train image file.
        train: PathBuf,
        /// Train image height.
        train_h: usize,
        /// Train image width.
        train_w: usize,
        /// The test image file.
        test: PathBuf,
        /// Test image height.
        test_h: usize,
        /// Test image width.
        test_w: usize,
    },
    /// A CSV file is not UTF-8 text.
    #[error("{path}: line {line} is not UTF-8 text; expected a digits CSV (64 pixels 0..16, then the label)")]
    CsvNotText {
        /// The file.
        path: PathBuf,
        /// The first line (1-based) that is not valid text.
        line: usize,
    },
    /// A CSV row has the wrong number of columns.
    #[error(
        "{path}:{line}: found {found} comma-separated values, expected {expected} (64 pixels \
         valued 0..16, then the label 0..9)"
    )]
    CsvColumns {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// Values found.
        found: usize,
        /// Values expected.
        expected: usize,
    },
    /// A CSV value is not a number in the allowed range.
    #[error("{path}:{line}: column {column}: {value:?} is not {expected}")]
    CsvValue {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// The text found.
        value: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A CSV file has too few rows to split.
    #[error("{path}: {rows} data rows, need at least {needed} to split into train and test")]
    CsvTooFewRows {
        /// The file.
        path: PathBuf,
        /// Rows found.
        rows: usize,
        /// Rows needed.
        needed: usize,
    },
    /// An array could not be formed (an internal invariant broke; please report it).
    #[error("internal error forming an image array: {0}")]
    Shape(#[from] ndarray::ShapeError),
    /// A batch size of zero was asked for.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// A subset index is out of range.
    #[error("index {index} is out of range for data set {name} of {len} images")]
    IndexOutOfRange {
        /// The data set's name.
        name: String,
        /// The index asked for.
        index: usize,
        /// Images in the data set.
        len: usize,
    },
}

/// Images and labels of one split.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// One image per row, `height * width` pixels row-major, values in `range`. // (n, height*width)
    pub images: Array2<f32>,
    /// One label per image (the class; 0..9 for digits). // (n,)
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// A short name for reports ("mnist", "mnist-10k (built-in)", "optdigits (built-in)", ...).
    pub name: String,
    /// The range `images` is in.
    pub range: PixelRange,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.nrows()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels per image (`height * width`).
    pub fn pixels(&self) -> usize {
        self.images.ncols()
    }

    /// Image `i` as a row of `height * width` pixels. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> ArrayView1<'_, f32> {
        self.images.row(i)
    }

    /// The first `n` images (all of them if `n >= len()`), e.g. for quick tests.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images.slice(ndarray::s![..n, ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
            height: self.height,
            width: self.width,
            name: self.name.clone(),
            range: self.range,
        }
    }

    /// The images at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset, DataError> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::IndexOutOfRange {
                name: self.name.clone(),
                index,
                len: self.len(),
            });
        }
        Ok(Dataset {
            images: self.images.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
            name: self.name.clone(),
            range: self.range,
        })
    }

    /// Converts the pixels in place to `range` (a no-op if they are already in it).
    pub fn set_range(&mut self, range: PixelRange) {
        if range != self.range {
            let from = self.range;
            self.images
                .mapv_inplace(|v| range.from_unit(from.to_unit(v)));
            self.range = range;
        }
    }

    /// [`Dataset::set_range`], by value.
    pub fn with_range(mut self, range: PixelRange) -> Dataset {
        self.set_range(range);
        self
    }

    /// Transposes every image (rows become columns) and swaps `height` and `width`. EMNIST stores
    /// its images transposed relative to MNIST; call this after loading it to see upright letters.
    pub fn transpose_images(&mut self) {
        let (h, w) = (self.height, self.width);
        let mut buf = vec![0.0f32; h * w];
        for mut row in self.images.rows_mut() {
            for (k, b) in buf.iter_mut().enumerate() {
                // Output pixel (y, x) of the w x h image is input pixel (x, y).
                let (y, x) = (k / h, k % h);
                *b = row[x * w + y];
            }
            row.iter_mut().zip(&buf).for_each(|(d, &v)| *d = v);
        }
        self.height = w;
        self.width = h;
    }

    /// Mean pixel value over all images (in the data set's current range), accumulated in f64.
    pub fn mean_pixel(&self) -> f64 {
        if self.images.is_empty() {
            return 0.0;
        }
        let sum: f64 = self.images.iter().map(|&v| f64::from(v)).sum();
        sum / self.images.len() as f64
    }

    /// Copies the images and labels at `indices` into the first `indices.len()` rows of `images`
    /// and entries of `labels`. Panics if an index is out of range or the buffers are too small.
    pub fn fill_batch(&self, indices: &[usize], images: &mut Array2<f32>, labels: &mut [u8]) {
        for ((mut dst, lab), &i) in images
            .rows_mut()
            .into_iter()
            .zip(labels.iter_mut())
            .zip(indices)
        {
            dst.assign(&self.images.row(i));
            *lab = self.labels[i];
        }
    }
}

/// A train and a test split of one data set.
#[derive(Debug, Clone)]
pub struct Splits {
    /// The training split.
    pub train: Dataset,
    /// The test split.
    pub test: Dataset,
}

impl Splits {
    /// The first `n_train` training and `n_test` test images, e.g. for quick tests.
    pub fn take(&self, n_train: usize, n_test: usize) -> Splits {
        Splits {
            train: self.train.take(n_train),
            test: self.test.take(n_test),
        }
    }

    /// Converts both splits to `range`.
    pub fn with_range(self, range: PixelRange) -> Splits {
        Splits {
            train: self.train.with_range(range),
            test: self.test.with_range(range),
        }
    }

    /// Image height in pixels (the same in both splits).
    pub fn height(&self) -> usize {
        self.train.height
    }

    /// Image width in pixels (the same in both splits).
    pub fn width(&self) -> usize {
        self.train.width
    }
}

/// The built-in default data set, MNIST-10k: the MNIST test set (10,000 images of 28x28 with
/// labels 0..9, [`BUILTIN_MNIST_IMAGES_GZ`]) split without an RNG into the first
/// [`BUILTIN_MNIST_TRAIN`] (8,000) images for training and the last 2,000 for testing. The MNIST
/// test set's first 5,000 images come from NIST's cleaner SD-3 writers and the last 5,000 from
/// SD-1, so the test split is somewhat harder than the training split. Pixels 0..255 are scaled
/// to `[0, 1]`.
pub fn builtin_mnist() -> Result<Splits, DataError> {
    idx::parse_idx_splits(
        BUILTIN_MNIST_IMAGES_GZ,
        BUILTIN_MNIST_LABELS_GZ,
        Path::new("<built-in t10k-images-idx3-ubyte.gz>"),
        Path::new("<built-in t10k-labels-idx1-ubyte.gz>"),
        BUILTIN_MNIST_TRAIN,
        BUILTIN_MNIST_NAME,
    )
}

/// The built-in 8x8 digits (`builtin:digits`), split as [`parse_digits_csv`] documents
/// (1,498 train, 299 test).
pub fn builtin_digits() -> Result<Splits, DataError> {
    parse_digits_csv(
        BUILTIN_DIGITS_CSV_GZ,
        Path::new("<built-in digits.csv.gz>"),
        BUILTIN_DIGITS_NAME,
    )
}

/// Loads what `--data` names: `None` or `builtin:mnist` gives [`builtin_mnist`] (the default),
/// `builtin:digits` gives [`builtin_digits`], any other `builtin:` name is an error; a folder is
/// read as IDX files ([`load_idx_dir`]); a file is read as a digits CSV, gzip or plain
/// ([`load_digits_csv`]).
pub fn load(data: Option<&Path>) -> Result<Splits, DataError> {
    let Some(path) = data else {
        return builtin_mnist();
    };
    if let Some(name) = path.to_str().filter(|s| s.starts_with(BUILTIN_PREFIX)) {
        return match name {
            BUILTIN_MNIST => builtin_mnist(),
            BUILTIN_DIGITS => builtin_digits(),
            _ => Err(DataError::UnknownBuiltin {
                name: name.to_string(),
            }),
        };
    }
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::PathNotFound {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if meta.is_dir() {
        return load_idx_dir(path);
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if file_name.contains("idx1-ubyte") || file_name.contains("idx3-ubyte") {
        return Err(DataError::IdxFileGiven {
            path: path.to_path_buf(),
        });
    }
    load_digits_csv(path)
}

/// True if `bytes` start with the gzip magic number (1f 8b).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_round_trip() {
        for v in [0.0f32, 0.25, 1.0] {
            let m = PixelRange::MinusOneOne.from_unit(v);
            assert!((PixelRange::MinusOneOne.to_unit(m) - v).abs() <= f32::EPSILON);
        }
        assert_eq!(PixelRange::MinusOneOne.from_unit(0.0), -1.0);
        assert_eq!(PixelRange::MinusOneOne.from_unit(1.0), 1.0);
    }

    #[test]
    fn builtin_splits_and_ranges() {
        let s = builtin_digits().unwrap();
        assert_eq!(s.train.len() + s.test.len(), 1797);
        assert_eq!((s.height(), s.width()), (8, 8));
        let lo = s.train.images.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = s
            .train
            .images
            .iter()
            .cloned()
            .fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((lo, hi), (0.0, 1.0));
        let t = s.with_range(PixelRange::MinusOneOne);
        let lo = t.train.images.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = t
            .train
            .images
            .iter()
            .cloned()
            .fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((lo, hi), (-1.0, 1.0));
        assert_eq!(t.train.range, PixelRange::MinusOneOne);
    }

    #[test]
    fn take_and_subset() {
        let s = builtin_digits().unwrap();
        let t = s.train.take(10);
        assert_eq!(t.len(), 10);
        assert_eq!(t.labels, s.train.labels[..10]);
        let sub = s.train.subset(&[3, 1]).unwrap();
        assert_eq!(sub.labels, vec![s.train.labels[3], s.train.labels[1]]);
        assert_eq!(sub.image(0), s.train.image(3));
        assert!(matches!(
            s.train.subset(&[s.train.len()]),
            Err(DataError::IndexOutOfRange { .. })
        ));
        assert_eq!(s.take(5, 7).test.len(), 7);
    }

    #[test]
    fn transpose_swaps_axes() {
        // One 2x3 image [[0,1,2],[3,4,5]] becomes the 3x2 image [[0,3],[1,4],[2,5]].
        let mut d = Dataset {
            images: Array2::from_shape_vec((1, 6), vec![0., 1., 2., 3., 4., 5.]).unwrap(),
            labels: vec![0],
            height: 2,
            width: 3,
            name: "t".into(),
            range: PixelRange::ZeroOne,
        };
        d.transpose_images();
        assert_eq!((d.height, d.width), (3, 2));
        assert_eq!(d.images.row(0).to_vec(), vec![0., 3., 1., 4., 2., 5.]);
        d.transpose_images();
        assert_eq!(d.images.row(0).to_vec(), vec![0., 1., 2., 3., 4., 5.]);
    }

    #[test]
    fn load_picks_builtin_sets_by_name() {
        let s = load(Some(Path::new(BUILTIN_DIGITS))).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (1498, 299));
        assert_eq!((s.height(), s.width()), (8, 8));
        assert_eq!(s.train.name, BUILTIN_DIGITS_NAME);

        for name in [
            "builtin:xyz",
            "builtin:",
            "builtin:MNIST",
            "builtin:digits/",
        ] {
            let err = load(Some(Path::new(name))).unwrap_err();
            assert!(matches!(err, DataError::UnknownBuiltin { .. }), "{err:?}");
            let msg = err.to_string();
            for needle in [name, BUILTIN_MNIST, BUILTIN_DIGITS, "./"] {
                assert!(msg.contains(needle), "{name}: {msg}");
            }
        }
        // A path that only contains the prefix further on is a path.
        let err = load(Some(Path::new("./builtin:xyz"))).unwrap_err();
        assert!(matches!(err, DataError::PathNotFound { .. }), "{err:?}");
    }

    #[test]
    fn load_missing_path_is_clear() {
        let err = load(Some(Path::new("/nonexistent/tinygen-data"))).unwrap_err();
        assert!(matches!(err, DataError::PathNotFound { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/tinygen-data") && msg.contains("--data"),
            "{msg}"
        );
        assert!(
            msg.contains(BUILTIN_MNIST) && msg.contains(BUILTIN_DIGITS),
            "{msg}"
        );
    }
}
