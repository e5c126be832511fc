//! The UCI 8x8 digits as CSV (scikit-learn's `digits.csv.gz`): one image per line, 64 pixel
//! values 0..16 (integers, `3` or `3.0`), then the label 0..9. Gzip or plain, detected by content.
//! A first line whose values are all non-numeric is taken as a header and skipped; blank lines are
//! skipped.
//!
//! Split (deterministic, no RNG): the last `rows / 6` rows (integer division) are the test split,
//! the rest the training split. For the 1,797 rows of the UCI file that is 1,498 train and 299
//! test; the file is ordered by writer, so the test split's writers are mostly unseen in training.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use ndarray::Array2;

use super::{is_gzip, read_file, DataError, Dataset, PixelRange, Splits};

/// Values per CSV line: 64 pixels, then the label.
pub const CSV_COLUMNS: usize = 65;
/// The largest pixel value (a count of set pixels in a 4x4 block of the 32x32 original).
pub const CSV_MAX_PIXEL: f32 = 16.0;
/// Image side in pixels.
const SIDE: usize = 8;
/// Fewest data rows that give a non-empty test split (`rows / 6 >= 1`).
const MIN_ROWS: usize = 6;

/// Loads a digits CSV file (gzip or plain) and splits it; the data set is named after the file.
pub fn load_digits_csv(path: &Path) -> Result<Splits, DataError> {
    let bytes = read_file(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let name = name
        .strip_suffix(".gz")
        .unwrap_or(&name)
        .strip_suffix(".csv")
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    parse_digits_csv(&bytes, path, &name)
}

/// Parses a digits CSV from `bytes` (gzip or plain) and splits it as the module documents.
/// `path` only names the source in errors.
pub fn parse_digits_csv(bytes: &[u8], path: &Path, name: &str) -> Result<Splits, DataError> {
    let decompressed;
    let raw: &[u8] = if is_gzip(bytes) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        decompressed = out;
        &decompressed
    } else {
        bytes
    };

    let mut pixels: Vec<f32> = Vec::new();
    let mut labels: Vec<u8> = Vec::new();
    let mut fields: Vec<&str> = Vec::with_capacity(CSV_COLUMNS);
    for (i, line_bytes) in raw.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let line = std::str::from_utf8(line_bytes).map_err(|_| DataError::CsvNotText {
            path: path.to_path_buf(),
            line: line_no,
        })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(',').map(str::trim));
        if labels.is_empty()
            && pixels.is_empty()
            && fields.iter().all(|f| f.parse::<f64>().is_err())
        {
            continue; // header
        }
        if fields.len() != CSV_COLUMNS {
            return Err(DataError::CsvColumns {
                path: path.to_path_buf(),
                line: line_no,
                found: fields.len(),
                expected: CSV_COLUMNS,
            });
        }
        for (c, f) in fields[..CSV_COLUMNS - 1].iter().enumerate() {
            let v = parse_int_in(f, 16).ok_or_else(|| DataError::CsvValue {
                path: path.to_path_buf(),
                line: line_no,
                column: c + 1,
                value: (*f).to_string(),
                expected: "a pixel value: an integer 0..16",
            })?;
            pixels.push(f32::from(v) / CSV_MAX_PIXEL);
        }
        let f = fields[CSV_COLUMNS - 1];
        let label = parse_int_in(f, 9).ok_or_else(|| DataError::CsvValue {
            path: path.to_path_buf(),
            line: line_no,
            column: CSV_COLUMNS,
            value: f.to_string(),
            expected: "a label: an integer 0..9",
        })?;
        labels.push(label);
    }

    let rows = labels.len();
    if rows < MIN_ROWS {
        return Err(DataError::CsvTooFewRows {
            path: path.to_path_buf(),
            rows,
            needed: MIN_ROWS,
        });
    }
    let n_test = rows / 6;
    let n_train = rows - n_test;
    let pix = SIDE * SIDE;
    let test_pixels = pixels.split_off(n_train * pix);
    let test_labels = labels.split_off(n_train);
    let make = |px: Vec<f32>, lab: Vec<u8>| -> Result<Dataset, DataError> {
        Ok(Dataset {
            // px.len() == lab.len() * 64 by construction above.
            images: Array2::from_shape_vec((lab.len(), pix), px)?,
            labels: lab,
            height: SIDE,
            width: SIDE,
            name: name.to_string(),
            range: PixelRange::ZeroOne,
        })
    };
    Ok(Splits {
        train: make(pixels, labels)?,
        test: make(test_pixels, test_labels)?,
    })
}

/// Parses `s` as an integer in `0..=max`, written as `7` or `7.0`.
fn parse_int_in(s: &str, max: u8) -> Option<u8> {
    if let Ok(v) = s.parse::<u8>() {
        return (v <= max).then_some(v);
    }
    let v = s.parse::<f64>().ok()?;
    if v.is_finite() && v.fract() == 0.0 && (0.0..=f64::from(max)).contains(&v) {
        Some(v as u8)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(px: u8, label: &str) -> String {
        let mut s = vec![px.to_string(); 64].join(",");
        s.push(',');
        s.push_str(label);
        s
    }

    #[test]
    fn parses_and_splits() {
        let text: Vec<String> = (0..12).map(|i| row(16, &(i % 10).to_string())).collect();
        let s = parse_digits_csv(text.join("\n").as_bytes(), Path::new("d.csv"), "d").unwrap();
        assert_eq!((s.train.len(), s.test.len()), (10, 2));
        assert_eq!(s.test.labels, vec![0, 1]);
        assert_eq!(s.train.images[[0, 0]], 1.0);
    }

    #[test]
    fn header_and_float_values() {
        let mut text = vec![(0..65)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",")];
        text.extend((0..6).map(|_| row(8, "3.0")));
        let s = parse_digits_csv(text.join("\r\n").as_bytes(), Path::new("d.csv"), "d").unwrap();
        assert_eq!(s.train.len() + s.test.len(), 6);
        assert_eq!(s.train.images[[0, 5]], 0.5);
        assert_eq!(s.train.labels[0], 3);
    }

    #[test]
    fn errors_name_line_and_column() {
        let mut text: Vec<String> = (0..8).map(|_| row(1, "2")).collect();
        text[4] = row(17, "2");
        let err =
            parse_digits_csv(text.join("\n").as_bytes(), Path::new("d.csv"), "d").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CsvValue {
                    line: 5,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("d.csv:5"), "{err}");

        text[4] = row(1, "10");
        let err =
            parse_digits_csv(text.join("\n").as_bytes(), Path::new("d.csv"), "d").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CsvValue {
                    line: 5,
                    column: 65,
                    ..
                }
            ),
            "{err:?}"
        );

        text[4] = "1,2,3".to_string();
        let err =
            parse_digits_csv(text.join("\n").as_bytes(), Path::new("d.csv"), "d").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CsvColumns {
                    line: 5,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );

        let err = parse_digits_csv(row(1, "1").as_bytes(), Path::new("d.csv"), "d").unwrap_err();
        assert!(
            matches!(err, DataError::CsvTooFewRows { rows: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parse_int_rules() {
        assert_eq!(parse_int_in("16", 16), Some(16));
        assert_eq!(parse_int_in("16.0", 16), Some(16));
        assert_eq!(parse_int_in("16.5", 16), None);
        assert_eq!(parse_int_in("-1", 16), None);
        assert_eq!(parse_int_in("NaN", 16), None);
        assert_eq!(parse_int_in("", 16), None);
    }
}
