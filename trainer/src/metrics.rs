//! Per-epoch metrics, appended to `metrics.csv` (header once) and `metrics.jsonl` (one JSON
//! object per line) in a run directory, flushed to disk after every epoch.
//!
//! Reopening a directory (a resumed run) appends to the same files; the CSV header found there
//! fixes the columns, and a later epoch with other columns is an error rather than a silently
//! misaligned file. Non-finite values are written as `NaN`/`inf` in the CSV and `null` in JSON.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The CSV file's name inside the run directory.
pub const CSV_NAME: &str = "metrics.csv";
/// The JSON lines file's name inside the run directory.
pub const JSONL_NAME: &str = "metrics.jsonl";

/// Errors from the metrics log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A file could not be created, read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A metric name cannot be a CSV column.
    #[error(
        "metric name {name:?} is not usable as a column (empty, `epoch`, or contains a comma, \
         quote or line break)"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// The columns differ from the header already in the file.
    #[error(
        "{path} has columns {expected:?} but this epoch logs {found:?}; use a new run directory \
         or the same metrics as before"
    )]
    ColumnsChanged {
        /// The CSV file.
        path: PathBuf,
        /// The columns in the header.
        expected: Vec<String>,
        /// The columns given now.
        found: Vec<String>,
    },
}

/// An append-only per-epoch metrics log.
#[derive(Debug)]
pub struct MetricsLog {
    csv_path: PathBuf,
    jsonl_path: PathBuf,
    csv: File,
    jsonl: File,
    /// Metric columns (without `epoch`), once known from the file's header or the first epoch.
    columns: Option<Vec<String>>,
}

impl MetricsLog {
    /// Opens (creating if needed) `dir/metrics.csv` and `dir/metrics.jsonl` for appending.
    pub fn open(dir: &Path) -> Result<Self, MetricsError> {
        std::fs::create_dir_all(dir).map_err(|source| MetricsError::Io {
            action: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
        let csv_path = dir.join(CSV_NAME);
        let jsonl_path = dir.join(JSONL_NAME);
        let (csv, existing) = open_append(&csv_path)?;
        let (jsonl, _) = open_append(&jsonl_path)?;
        let columns = existing
            .lines()
            .next()
            .filter(|h| !h.is_empty())
            .map(|h| h.split(',').skip(1).map(str::to_string).collect());
        Ok(MetricsLog {
            csv_path,
            jsonl_path,
            csv,
            jsonl,
            columns,
        })
    }

    /// Appends one epoch's metrics to both files and flushes them to disk. The first call on a
    /// new file writes the CSV header `epoch,<names...>`; later calls must use the same names in
    /// the same order.
    pub fn log(&mut self, epoch: u64, values: &[(&str, f64)]) -> Result<(), MetricsError> {
        for (name, _) in values {
            if name.is_empty() || *name == "epoch" || name.contains([',', '"', '\n', '\r']) {
                return Err(MetricsError::BadName {
                    name: (*name).to_string(),
                });
            }
        }
        let names: Vec<String> = values.iter().map(|(n, _)| (*n).to_string()).collect();
        let mut csv_text = String::new();
        match &self.columns {
            Some(cols) if *cols != names => {
                return Err(MetricsError::ColumnsChanged {
                    path: self.csv_path.clone(),
                    expected: cols.clone(),
                    found: names,
                });
            }
            Some(_) => {}
            None => {
                csv_text.push_str("epoch");
                for n in &names {
                    csv_text.push(',');
                    csv_text.push_str(n);
                }
                csv_text.push('\n');
            }
        }
        csv_text.push_str(&epoch.to_string());
        let mut json = format!("{{\"epoch\":{epoch}");
        for (name, v) in values {
            csv_text.push(',');
            csv_text.push_str(&v.to_string());
            // Strings and f64 always serialise; non-finite f64 becomes null.
            let key = serde_json::to_string(name).unwrap_or_default();
            let val = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
            json.push_str(&format!(",{key}:{val}"));
        }
        csv_text.push('\n');
        json.push_str("}\n");
        write_synced(&mut self.csv, &self.csv_path, csv_text.as_bytes())?;
        self.columns = Some(names);
        write_synced(&mut self.jsonl, &self.jsonl_path, json.as_bytes())
    }

    /// The CSV file.
    pub fn csv_path(&self) -> &Path {
        &self.csv_path
    }

    /// The JSON lines file.
    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl_path
    }
}

/// Opens `path` for appending and returns its current text. A last line cut short by a crash
/// (no final newline) is ended, so the next record starts on a line of its own.
fn open_append(path: &Path) -> Result<(File, String), MetricsError> {
    let io = |action| {
        move |source| MetricsError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io("opening"))?;
    let mut text = String::new();
    f.seek(SeekFrom::Start(0)).map_err(io("reading"))?;
    f.read_to_string(&mut text).map_err(io("reading"))?;
    if !text.is_empty() && !text.ends_with('\n') {
        f.write_all(b"\n").map_err(io("writing"))?;
        text.push('\n');
    }
    Ok((f, text))
}

fn write_synced(f: &mut File, path: &Path, bytes: &[u8]) -> Result<(), MetricsError> {
    let io = |source| MetricsError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    };
    f.write_all(bytes).map_err(io)?;
    f.flush().map_err(io)?;
    f.sync_data().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_once_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut m = MetricsLog::open(dir.path()).unwrap();
            m.log(1, &[("train_loss", 2.5), ("test_loss", 3.0)])
                .unwrap();
            m.log(2, &[("train_loss", 1.25), ("test_loss", f64::NAN)])
                .unwrap();
        }
        {
            let mut m = MetricsLog::open(dir.path()).unwrap();
            let err = m.log(3, &[("loss", 1.0)]).unwrap_err();
            assert!(matches!(err, MetricsError::ColumnsChanged { .. }), "{err}");
            m.log(3, &[("train_loss", 1.0), ("test_loss", 0.5)])
                .unwrap();
        }
        let csv = std::fs::read_to_string(dir.path().join(CSV_NAME)).unwrap();
        assert_eq!(
            csv,
            "epoch,train_loss,test_loss\n1,2.5,3\n2,1.25,NaN\n3,1,0.5\n"
        );
        let jsonl = std::fs::read_to_string(dir.path().join(JSONL_NAME)).unwrap();
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["epoch"], 1);
        assert_eq!(lines[0]["train_loss"], 2.5);
        assert!(lines[1]["test_loss"].is_null());
        assert!(jsonl.starts_with("{\"epoch\":1,\"train_loss\":2.5,\"test_loss\":3.0}\n"));
    }

    #[test]
    fn bad_names_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CSV_NAME), "epoch,a\n1,0.5\n2,0.").unwrap();
        let mut m = MetricsLog::open(dir.path()).unwrap();
        assert!(matches!(
            m.log(3, &[("a,b", 1.0)]),
            Err(MetricsError::BadName { .. })
        ));
        m.log(3, &[("a", 0.25)]).unwrap();
        let csv = std::fs::read_to_string(dir.path().join(CSV_NAME)).unwrap();
        assert_eq!(csv, "epoch,a\n1,0.5\n2,0.\n3,0.25\n");
    }
}
