//! Checkpoints: named f32 tensors plus a string metadata map, in the safetensors format (so
//! `safetensors.torch.load_file` opens them), written atomically.
//!
//! A checkpoint is generic: the training loop decides which tensors go in (parameters, optimiser
//! moments, EMA weights, ...) and reads them back by name and shape with [`Checkpoint::take`].
//! The metadata carries at least [`keys::FORMAT_VERSION`] (added by [`save`]); [`metadata`] builds
//! the standard set: model kind, epoch, step and the training configuration as JSON.
//!
//! Atomic write ([`write_atomic`]): the bytes go to a temporary file in the same directory, which
//! is flushed to disk (`fsync`) and renamed over the target, then the directory is synced. A crash
//! leaves either the old file or the new one, never a torn one.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, View};

/// The checkpoint layout version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Standard metadata keys.
pub mod keys {
    /// The checkpoint layout version ([`super::FORMAT_VERSION`]), written by [`super::save`].
    pub const FORMAT_VERSION: &str = "tinygen.format_version";
    /// The model kind (`vae`, `gan`, `dcgan`, ...).
    pub const KIND: &str = "tinygen.kind";
    /// Epochs completed.
    pub const EPOCH: &str = "tinygen.epoch";
    /// Optimiser steps completed.
    pub const STEP: &str = "tinygen.step";
    /// The full training configuration, as JSON.
    pub const CONFIG: &str = "tinygen.config";
}

/// Everything that can go wrong saving or loading a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint file does not exist.
    #[error("checkpoint {path} does not exist; check the path, or train without resuming")]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error(
        "{path} is not a valid safetensors checkpoint ({source}); it may be truncated or \
         corrupt: use an earlier checkpoint"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: SafeTensorError,
    },
    /// Serialising the tensors failed.
    #[error("cannot serialise checkpoint {path}: {source}")]
    Serialize {
        /// The file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: SafeTensorError,
    },
    /// A tensor to save has a data length that does not match its shape.
    #[error("tensor {name}: shape {shape:?} needs {needed} values but {len} were given")]
    DataLength {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Values the shape needs, as text (it may overflow `usize`).
        needed: String,
        /// Values given.
        len: usize,
    },
    /// Two tensors to save share a name.
    #[error("tensor name {name} is used twice")]
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// A tensor is not f32.
    #[error("{path}: tensor {name} is {dtype}, expected F32")]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// An expected tensor is absent.
    #[error(
        "{path}: tensor {name} is missing (the file holds {available:?}); the checkpoint was \
         written for a different model or settings"
    )]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor expected.
        name: String,
        /// The tensors not yet taken.
        available: Vec<String>,
    },
    /// A tensor's shape is not the one expected.
    #[error(
        "{path}: tensor {name} has shape {found:?}, expected {expected:?}; the checkpoint was \
         written for a model of other sizes"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape expected.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Tensors were left over after loading every expected one.
    #[error(
        "{path}: unexpected tensors {names:?}; the checkpoint was written for a different model"
    )]
    UnusedTensors {
        /// The file.
        path: PathBuf,
        /// The tensors nobody took.
        names: Vec<String>,
    },
    /// A metadata key is absent.
    #[error("{path}: metadata {key} is missing; this is not a tinygen checkpoint")]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A metadata value cannot be parsed.
    #[error("{path}: metadata {key} = {value:?} is not {expected}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The checkpoint is of a newer layout version.
    #[error(
        "{path}: checkpoint format version {found} is newer than this tinygen reads \
         ({supported}); upgrade tinygen"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this code reads.
        supported: u32,
    },
    /// The checkpoint holds another kind of model.
    #[error("{path} holds a {found} model, expected {expected}")]
    KindMismatch {
        /// The file.
        path: PathBuf,
        /// The kind expected.
        expected: String,
        /// The kind in the file.
        found: String,
    },
    /// The configuration could not be converted to or from JSON.
    #[error("{path}: training configuration JSON: {source}")]
    Config {
        /// The file (empty when building metadata).
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// One f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its shape (row-major).
    pub shape: Vec<usize>,
    /// Its values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// Tensors not yet taken, by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// The metadata map.
    pub metadata: BTreeMap<String, String>,
}

/// Builds the standard metadata: model kind, epochs and steps completed, and `config` as JSON.
pub fn metadata<C: serde::Serialize + ?Sized>(
    kind: &str,
    epoch: u64,
    step: u64,
    config: &C,
) -> Result<BTreeMap<String, String>, CheckpointError> {
    let config = serde_json::to_string(config).map_err(|source| CheckpointError::Config {
        path: PathBuf::new(),
        source,
    })?;
    Ok(BTreeMap::from([
        (keys::KIND.to_string(), kind.to_string()),
        (keys::EPOCH.to_string(), epoch.to_string()),
        (keys::STEP.to_string(), step.to_string()),
        (keys::CONFIG.to_string(), config),
    ]))
}

/// A borrowed f32 tensor as safetensors sees it.
struct F32View<'a> {
    shape: &'a [usize],
    data: &'a [f32],
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

/// Saves `tensors` (name, shape, values) and `metadata` to `path` atomically, adding
/// [`keys::FORMAT_VERSION`]. Tensor names must be unique and each data length must match its shape.
pub fn save(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut views = Vec::with_capacity(tensors.len());
    let mut seen = std::collections::BTreeSet::new();
    for (name, shape, data) in tensors {
        let needed = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if needed != Some(data.len()) {
            return Err(CheckpointError::DataLength {
                name: name.clone(),
                shape: shape.clone(),
                needed: needed.map_or_else(|| "more than usize::MAX".into(), |n| n.to_string()),
                len: data.len(),
            });
        }
        if !seen.insert(name.as_str()) {
            return Err(CheckpointError::DuplicateTensor { name: name.clone() });
        }
        views.push((name.as_str(), F32View { shape, data }));
    }
    let mut meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.insert(keys::FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string());
    let bytes =
        safetensors::serialize(views, Some(meta)).map_err(|source| CheckpointError::Serialize {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &bytes).map_err(|source| CheckpointError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a checkpoint: the file must exist, parse as safetensors, hold only F32 tensors and carry
/// a [`keys::FORMAT_VERSION`] this code reads.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CheckpointError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let parsed = SafeTensors::deserialize(&bytes).map_err(|source| CheckpointError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|source| CheckpointError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tensors = BTreeMap::new();
    for (name, view) in parsed.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::WrongDtype {
                path: path.to_path_buf(),
                name,
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let ckpt = Checkpoint {
        path: path.to_path_buf(),
        tensors,
        metadata,
    };
    let version: u32 = ckpt.parse_meta(keys::FORMAT_VERSION, "a version number")?;
    if version > FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(ckpt)
}

/// [`load`], then [`Checkpoint::expect_kind`].
pub fn load_kind(path: &Path, kind: &str) -> Result<Checkpoint, CheckpointError> {
    let ckpt = load(path)?;
    ckpt.expect_kind(kind)?;
    Ok(ckpt)
}

impl Checkpoint {
    /// Removes and returns the values of tensor `name`, which must have shape `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let Some(t) = self.tensors.get(name) else {
            return Err(CheckpointError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                available: self.tensors.keys().cloned().collect(),
            });
        };
        if t.shape != shape {
            return Err(CheckpointError::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape.clone(),
            });
        }
        Ok(self
            .tensors
            .remove(name)
            .map(|t| t.data)
            .unwrap_or_default())
    }

    /// [`Checkpoint::take`], copying into `dst` (whose length must match `shape`).
    pub fn take_into(
        &mut self,
        name: &str,
        shape: &[usize],
        dst: &mut [f32],
    ) -> Result<(), CheckpointError> {
        let needed = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if needed != Some(dst.len()) {
            return Err(CheckpointError::DataLength {
                name: name.to_string(),
                shape: shape.to_vec(),
                needed: needed.map_or_else(|| "more than usize::MAX".into(), |n| n.to_string()),
                len: dst.len(),
            });
        }
        let data = self.take(name, shape)?;
        dst.copy_from_slice(&data);
        Ok(())
    }

    /// Errors with [`CheckpointError::UnusedTensors`] if any tensor was not taken.
    pub fn finish(self) -> Result<(), CheckpointError> {
        if self.tensors.is_empty() {
            Ok(())
        } else {
            Err(CheckpointError::UnusedTensors {
                path: self.path,
                names: self.tensors.into_keys().collect(),
            })
        }
    }

    /// The metadata value for `key`.
    pub fn meta(&self, key: &'static str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::MissingMetadata {
                path: self.path.clone(),
                key,
            })
    }

    fn parse_meta<T: std::str::FromStr>(
        &self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<T, CheckpointError> {
        let value = self.meta(key)?;
        value.parse().map_err(|_| CheckpointError::BadMetadata {
            path: self.path.clone(),
            key,
            value: value.to_string(),
            expected,
        })
    }

    /// The model kind ([`keys::KIND`]).
    pub fn kind(&self) -> Result<&str, CheckpointError> {
        self.meta(keys::KIND)
    }

    /// Errors with [`CheckpointError::KindMismatch`] unless the model kind is `kind`.
    pub fn expect_kind(&self, kind: &str) -> Result<(), CheckpointError> {
        let found = self.kind()?;
        if found == kind {
            Ok(())
        } else {
            Err(CheckpointError::KindMismatch {
                path: self.path.clone(),
                expected: kind.to_string(),
                found: found.to_string(),
            })
        }
    }

    /// Epochs completed ([`keys::EPOCH`]).
    pub fn epoch(&self) -> Result<u64, CheckpointError> {
        self.parse_meta(keys::EPOCH, "an integer")
    }

    /// Optimiser steps completed ([`keys::STEP`]).
    pub fn step(&self) -> Result<u64, CheckpointError> {
        self.parse_meta(keys::STEP, "an integer")
    }

    /// The training configuration ([`keys::CONFIG`]), parsed from JSON.
    pub fn config<C: serde::de::DeserializeOwned>(&self) -> Result<C, CheckpointError> {
        serde_json::from_str(self.meta(keys::CONFIG)?).map_err(|source| CheckpointError::Config {
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, `fsync`, rename
/// over `path`, then a sync of the directory (where the platform allows it). On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable. Opening a directory fails on some platforms; the data is
    // already safe in the file, so that failure is not an error.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_standard_keys() {
        let m = metadata("vae", 3, 1200, &serde_json::json!({"latent": 20})).unwrap();
        assert_eq!(m[keys::KIND], "vae");
        assert_eq!(m[keys::EPOCH], "3");
        assert_eq!(m[keys::CONFIG], r#"{"latent":20}"#);
    }

    #[test]
    fn save_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let d = [1.0f32; 3];
        let err = save(&p, &[("w".into(), vec![2, 2], &d)], &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(err, CheckpointError::DataLength { len: 3, .. }),
            "{err}"
        );
        let err = save(
            &p,
            &[("w".into(), vec![3], &d), ("w".into(), vec![3], &d)],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(err, CheckpointError::DuplicateTensor { .. }),
            "{err}"
        );
        assert!(!p.exists());
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.bin")]);
        // A target that cannot be replaced (a directory) fails and leaves no temporary file.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x"), b"x").unwrap();
        assert!(write_atomic(&sub, b"data").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
