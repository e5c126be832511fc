//! Constant tensors: initializers, `Constant` nodes and the results of folding, read from
//! `TensorProto`s with every length checked.

use crate::onnx::proto::TensorProto;

/// The most values a constant may hold (16 Mi): far above any model a microcontroller runs,
/// low enough that a forged dimension cannot make the importer allocate without bound.
pub(crate) const MAX_VALUES: usize = 1 << 24;

/// Values of a constant. Integer and boolean tensors are kept as `i64` (shape arithmetic),
/// float and double as `f32` (weights).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor: its full ONNX dimensions (no batch is dropped) and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn f32(dims: Vec<usize>, v: Vec<f32>) -> Const {
        Const {
            dims,
            data: Data::F32(v),
        }
    }

    pub fn i64(dims: Vec<usize>, v: Vec<i64>) -> Const {
        Const {
            dims,
            data: Data::I64(v),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The values as f32, if the constant is a float tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            Data::I64(_) => None,
        }
    }

    /// The values as i64, if the constant is an integer tensor.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }

    /// The same values with other dimensions (the caller checked the count).
    pub fn with_dims(&self, dims: Vec<usize>) -> Const {
        Const {
            dims,
            data: self.data.clone(),
        }
    }

    /// The tensor with its axes in the order `perm` (a permutation of `0..rank`, checked by
    /// the caller): output axis `k` is input axis `perm[k]`.
    pub fn permuted(&self, perm: &[usize]) -> Const {
        let r = self.dims.len();
        let stride: Vec<usize> = (0..r)
            .map(|i| self.dims[i + 1..].iter().product())
            .collect();
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let mut idx = vec![0usize; r];
        let mut pos = Vec::with_capacity(self.len());
        for _ in 0..self.len() {
            pos.push(idx.iter().zip(perm).map(|(i, &p)| i * stride[p]).sum());
            for ax in (0..r).rev() {
                idx[ax] += 1;
                if idx[ax] < dims[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        self.pick(dims, &pos)
    }

    /// The values picked by `index` (positions into this tensor), with dimensions `dims`.
    pub fn pick(&self, dims: Vec<usize>, index: &[usize]) -> Const {
        let data = match &self.data {
            Data::F32(v) => Data::F32(index.iter().filter_map(|&i| v.get(i).copied()).collect()),
            Data::I64(v) => Data::I64(index.iter().filter_map(|&i| v.get(i).copied()).collect()),
        };
        Const { dims, data }
    }
}

/// Why a `TensorProto` cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TensorFault {
    /// The values live in another file.
    External,
    /// Anything else, said in words.
    Bad(String),
}

/// Product of `dims`, if it fits in [`MAX_VALUES`].
pub(crate) fn count(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
}

/// Elements of raw little-endian bytes of `size` bytes each.
fn chunks<const N: usize, T>(raw: &[u8], n: usize, f: impl Fn([u8; N]) -> T) -> Option<Vec<T>> {
    if raw.len() != n.checked_mul(N)? {
        return None;
    }
    Some(
        raw.chunks_exact(N)
            .map(|c| {
                let mut b = [0u8; N];
                b.copy_from_slice(c);
                f(b)
            })
            .collect(),
    )
}

/// Reads an initializer or a `Constant`'s value.
pub(crate) fn read_tensor(t: &TensorProto) -> Result<Const, TensorFault> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(TensorFault::External);
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| TensorFault::Bad(format!("negative dimension in {:?}", t.dims)))?;
    let n = count(&dims).ok_or_else(|| {
        TensorFault::Bad(format!(
            "dimensions {dims:?} hold more than {MAX_VALUES} values"
        ))
    })?;
    let raw = &t.raw_data;
    let wrong = |what: &str, got: usize| {
        TensorFault::Bad(format!("{got} {what} for dimensions {dims:?} ({n} values)"))
    };
    let ints_from_i32 = |v: &[i32]| -> Result<Vec<i64>, TensorFault> {
        if v.len() == n {
            Ok(v.iter().map(|&x| i64::from(x)).collect())
        } else {
            Err(wrong("int32_data values", v.len()))
        }
    };
    let data = match t.data_type {
        // FLOAT
        1 => Data::F32(if raw.is_empty() && n > 0 {
            if t.float_data.len() != n {
                return Err(wrong("float_data values", t.float_data.len()));
            }
            t.float_data.clone()
        } else {
            chunks::<4, _>(raw, n, f32::from_le_bytes)
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        }),
        // DOUBLE
        11 => Data::F32(if raw.is_empty() && n > 0 {
            if t.double_data.len() != n {
                return Err(wrong("double_data values", t.double_data.len()));
            }
            t.double_data.iter().map(|&x| x as f32).collect()
        } else {
            chunks::<8, _>(raw, n, |b| f64::from_le_bytes(b) as f32)
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        }),
        // INT64
        7 => Data::I64(if raw.is_empty() && n > 0 {
            if t.int64_data.len() != n {
                return Err(wrong("int64_data values", t.int64_data.len()));
            }
            t.int64_data.clone()
        } else {
            chunks::<8, _>(raw, n, i64::from_le_bytes)
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        }),
        // INT32
        6 => Data::I64(if raw.is_empty() && n > 0 {
            ints_from_i32(&t.int32_data)?
        } else {
            chunks::<4, _>(raw, n, |b| i64::from(i32::from_le_bytes(b)))
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        }),
        // UINT32
        12 => Data::I64(
            chunks::<4, _>(raw, n, |b| i64::from(u32::from_le_bytes(b)))
                .ok_or_else(|| wrong("raw bytes", raw.len()))?,
        ),
        // INT16, UINT16
        5 | 4 => Data::I64(if raw.is_empty() && n > 0 {
            ints_from_i32(&t.int32_data)?
        } else if t.data_type == 5 {
            chunks::<2, _>(raw, n, |b| i64::from(i16::from_le_bytes(b)))
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        } else {
            chunks::<2, _>(raw, n, |b| i64::from(u16::from_le_bytes(b)))
                .ok_or_else(|| wrong("raw bytes", raw.len()))?
        }),
        // UINT8, INT8, BOOL
        2 | 3 | 9 => Data::I64(if raw.is_empty() && n > 0 {
            ints_from_i32(&t.int32_data)?
        } else if raw.len() != n {
            return Err(wrong("raw bytes", raw.len()));
        } else if t.data_type == 3 {
            raw.iter().map(|&b| i64::from(b as i8)).collect()
        } else {
            raw.iter().map(|&b| i64::from(b)).collect()
        }),
        other => {
            return Err(TensorFault::Bad(format!(
                "element type {} is not read; store it as float32 or an integer type",
                data_type_name(other)
            )))
        }
    };
    Ok(Const { dims, data })
}

/// The ONNX name of a `TensorProto.DataType` code.
pub(crate) fn data_type_name(code: i32) -> String {
    let name = match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        _ => return format!("code {code}"),
    };
    name.to_owned()
}

/// Numpy broadcasting of two shapes, if they broadcast.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let at = |d: &[usize], i: usize| {
        if i + d.len() >= r {
            d.get(i + d.len() - r).copied().unwrap_or(1)
        } else {
            1
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match (x, y) {
                _ if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// For each position of a tensor of shape `out`, the position in a tensor of shape `d` that
/// broadcasts to it (`d` right-aligned, size-1 axes repeated).
pub(crate) fn broadcast_index(d: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    // Strides of `d` as seen from `out`: 0 on broadcast axes.
    let mut strides = vec![0usize; r];
    let mut s = 1usize;
    for (i, &n) in d.iter().enumerate().rev() {
        let o = r + i - d.len();
        if n != 1 {
            strides[o] = s;
        }
        s = s.saturating_mul(n);
    }
    let total: usize = out.iter().product();
    let mut idx = vec![0usize; r];
    let mut res = Vec::with_capacity(total);
    for _ in 0..total {
        res.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for ax in (0..r).rev() {
            idx[ax] += 1;
            if idx[ax] < out[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast(&[2], &[3]), None);
        assert_eq!(broadcast(&[], &[2, 2]), Some(vec![2, 2]));
        // a [2, 1] against [2, 3]: rows repeated along the columns
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn tensors_are_read_from_each_field() {
        let t = TensorProto {
            dims: vec![2],
            data_type: 7,
            int64_data: vec![3, -1],
            ..Default::default()
        };
        assert_eq!(read_tensor(&t).unwrap(), Const::i64(vec![2], vec![3, -1]));
        let t = TensorProto {
            dims: vec![1],
            data_type: 1,
            raw_data: 1.5f32.to_le_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(read_tensor(&t).unwrap(), Const::f32(vec![1], vec![1.5]));
        let t = TensorProto {
            dims: vec![1 << 40, 1 << 40],
            data_type: 1,
            ..Default::default()
        };
        assert!(matches!(read_tensor(&t), Err(TensorFault::Bad(_))));
        let t = TensorProto {
            data_location: 1,
            ..Default::default()
        };
        assert_eq!(read_tensor(&t), Err(TensorFault::External));
    }
}
