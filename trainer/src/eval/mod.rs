//! Sample-quality metrics for generative models, measured through a small evaluation
//! classifier.
//!
//! - [`Classifier`]: a small CNN trained on a data set's training split (two strided
//!   convolutions, a 128-unit hidden layer whose activations are the *features*, and a linear
//!   head). It predicts classes (for class coverage and the class KL divergence) and embeds
//!   images (for the Frechet distance and precision/recall). [`load_or_train`] caches it on disk,
//!   keyed by a fingerprint of the training data.
//! - [`FeatureStats`] and [`frechet_distance`]: the Frechet distance between Gaussians fitted to
//!   two feature sets (Heusel et al. 2017), in f64.
//! - [`precision_recall`]: improved precision and recall (Kynkaanniemi et al. 2019).
//! - [`class_histogram`], [`coverage`], [`class_kl`]: how the predicted classes of samples spread.
//! - [`nearest_neighbours`]: the closest pool image (or feature vector) to each query, to see
//!   whether a generator copies its training images.
//!
//! Every image given to the classifier is `(n, height * width)` in `[0, 1]`
//! ([`PixelRange::ZeroOne`](crate::data::PixelRange)); [`unit_images`] maps other ranges there.
//!
//! The metric values depend on the number of samples (the Frechet distance is biased upwards
//! for small sets): compare numbers measured with the same sample counts only.

mod classifier;
mod stats;

use std::path::PathBuf;

pub use classifier::{
    fingerprint, load_or_train, unit_images, Classifier, ClassifierOptions, CACHE_PREFIX, KIND,
    RECIPE_VERSION,
};
pub use stats::{
    class_histogram, class_kl, coverage, frechet_distance, nearest_neighbours, precision_recall,
    FeatureStats, PrecisionRecall, COVERAGE_MIN_FRACTION,
};

use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use crate::nn::NnError;
use crate::optim::OptimError;

/// Everything that can go wrong training, loading or using the evaluation classifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A data set to train or evaluate on holds no images.
    #[error("data set {name} holds no images; the evaluation classifier needs labelled images")]
    EmptyData {
        /// The data set's name.
        name: String,
    },
    /// A label is not below the number of classes the classifier has.
    #[error(
        "data set {name} has label {label} but the classifier knows {classes} classes \
         (0..{classes}); evaluate on the data set it was trained on"
    )]
    LabelOutOfRange {
        /// The data set's name.
        name: String,
        /// The label found.
        label: u8,
        /// Classes the classifier has.
        classes: usize,
    },
    /// The data's images differ in size from the classifier's.
    #[error(
        "the data has {data_height}x{data_width} images but the classifier in {source_name} was \
         trained on {height}x{width}; use a classifier trained on this data set (delete the \
         cached file to train a new one)"
    )]
    ImageSizeMismatch {
        /// Where the classifier came from (its file, or "memory").
        source_name: String,
        /// Image height of the data.
        data_height: usize,
        /// Image width of the data.
        data_width: usize,
        /// Image height the classifier was trained on.
        height: usize,
        /// Image width the classifier was trained on.
        width: usize,
    },
    /// Images given as rows have another number of pixels than the classifier takes.
    #[error(
        "images of {pixels} pixels given to a classifier of {height}x{width} = {} pixels; \
         give images of the size the classifier was trained on",
        height * width
    )]
    PixelCountMismatch {
        /// Pixels per row given.
        pixels: usize,
        /// Image height the classifier takes.
        height: usize,
        /// Image width the classifier takes.
        width: usize,
    },
    /// A cached classifier was trained on other data than the data it is used for.
    #[error(
        "{path} holds a classifier trained on data with fingerprint {found:08x}, but the data \
         given has fingerprint {expected:08x}; the file was renamed or copied by hand: delete it \
         to train a classifier for this data"
    )]
    FingerprintMismatch {
        /// The cached file.
        path: PathBuf,
        /// The fingerprint of the data given.
        expected: u32,
        /// The fingerprint stored in the file.
        found: u32,
    },
    /// A training option is out of range.
    #[error("classifier option {name} = {value} is invalid: {expected}")]
    BadOption {
        /// The option.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A metadata value of a saved classifier is missing or cannot be parsed.
    #[error(
        "{path}: metadata {key} = {value:?} is not {expected}; the file is not an evaluation \
         classifier of this version: delete it to train a new one"
    )]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The value found (empty when missing).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Saving or loading the classifier's file failed.
    #[error("evaluation classifier: {0}; delete the file to train a new classifier")]
    Checkpoint(#[from] CheckpointError),
    /// Creating the cache folder failed.
    #[error("cannot create the classifier cache folder {path}: {source}")]
    CacheDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Iterating over the training data failed.
    #[error("evaluation classifier data: {0}")]
    Data(#[from] DataError),
    /// The network does not fit the image size (an internal invariant broke; please report it).
    #[error("evaluation classifier network: {0}")]
    Network(#[from] NnError),
    /// The optimiser refused a step (an internal invariant broke; please report it).
    #[error("evaluation classifier optimiser: {0}")]
    Optimizer(#[from] OptimError),
    /// An array could not be formed (an internal invariant broke; please report it).
    #[error("evaluation classifier: internal array shape error: {0}")]
    Shape(#[from] ndarray::ShapeError),
}
