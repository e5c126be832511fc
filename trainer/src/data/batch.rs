//! Seeded, shuffled mini-batch iteration into reusable buffers.

use ndarray::{s, Array2, ArrayView2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{DataError, Dataset};

/// One mini-batch, borrowed from the [`Batcher`]'s buffers.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The images, one per row. // (batch, height*width)
    pub images: ArrayView2<'a, f32>,
    /// Their labels. // (batch,)
    pub labels: &'a [u8],
    /// Their indices in the data set. // (batch,)
    pub indices: &'a [usize],
}

impl Batch<'_> {
    /// Images in this batch (the last batch of an epoch may be short).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True for an empty batch (never returned by [`Batcher::next_batch`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Walks a [`Dataset`] in mini-batches. Each epoch's order is a shuffle that depends only on
/// `(seed, epoch)`, so a run resumed at epoch `e` sees the same order as an uninterrupted one.
/// Batches are copied into buffers allocated once, in [`Batcher::new`].
///
/// ```
/// # use tinygen_trainer::data::{builtin_digits, Batcher};
/// let data = builtin_digits().unwrap();
/// let mut batches = Batcher::new(&data.train, 128, 42).unwrap();
/// for epoch in 0..2 {
///     batches.start_epoch(epoch);
///     while let Some(batch) = batches.next_batch() {
///         assert!(batch.len() <= 128);
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Batcher<'d> {
    data: &'d Dataset,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
    order: Vec<usize>,
    pos: usize,
    images: Array2<f32>, // (batch_size, height*width)
    labels: Vec<u8>,     // (batch_size,)
}

impl<'d> Batcher<'d> {
    /// A batcher over `data` with batches of `batch_size` and shuffles seeded from `seed`. Starts
    /// in epoch 0's order. The last, short batch of an epoch is kept (see [`Batcher::drop_last`]).
    pub fn new(data: &'d Dataset, batch_size: usize, seed: u64) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::ZeroBatchSize);
        }
        let rows = batch_size.min(data.len().max(1));
        let mut b = Batcher {
            data,
            batch_size,
            drop_last: false,
            seed,
            order: (0..data.len()).collect(),
            pos: 0,
            images: Array2::zeros((rows, data.pixels())),
            labels: vec![0; rows],
        };
        b.start_epoch(0);
        Ok(b)
    }

    /// Whether to skip an epoch's last batch when it is shorter than the batch size (useful with
    /// BatchNorm, whose statistics are noisy on a tiny batch).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// Restarts iteration in the shuffled order of `epoch`.
    pub fn start_epoch(&mut self, epoch: u64) {
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(epoch_seed(self.seed, epoch));
        self.order.shuffle(&mut rng);
        self.pos = 0;
    }

    /// Restarts iteration in the data set's own order (for evaluation).
    pub fn start_sequential(&mut self) {
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
        self.pos = 0;
    }

    /// The next batch of the current epoch, or `None` at its end.
    pub fn next_batch(&mut self) -> Option<Batch<'_>> {
        let remaining = self.order.len() - self.pos;
        let n = remaining.min(self.batch_size);
        if n == 0 || (self.drop_last && n < self.batch_size) {
            return None;
        }
        let indices = &self.order[self.pos..self.pos + n];
        self.pos += n;
        self.data
            .fill_batch(indices, &mut self.images, &mut self.labels[..n]);
        Some(Batch {
            images: self.images.slice(s![..n, ..]),
            labels: &self.labels[..n],
            indices,
        })
    }

    /// Batches per epoch under the current settings.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The data set being walked.
    pub fn dataset(&self) -> &'d Dataset {
        self.data
    }
}

/// Mixes the run seed and the epoch into one RNG seed.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::builtin_digits;

    #[test]
    fn covers_every_image_once_per_epoch() {
        let data = builtin_digits().unwrap().train;
        let mut b = Batcher::new(&data, 100, 7).unwrap();
        assert_eq!(b.batches_per_epoch(), data.len().div_ceil(100));
        let mut seen = vec![0u32; data.len()];
        let mut batches = 0;
        while let Some(batch) = b.next_batch() {
            batches += 1;
            for (r, &i) in batch.indices.iter().enumerate() {
                seen[i] += 1;
                assert_eq!(batch.images.row(r), data.image(i));
                assert_eq!(batch.labels[r], data.labels[i]);
            }
        }
        assert_eq!(batches, b.batches_per_epoch());
        assert!(seen.iter().all(|&c| c == 1));
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        let data = builtin_digits().unwrap().train;
        let first = |seed: u64, epoch: u64| {
            let mut b = Batcher::new(&data, 16, seed).unwrap();
            b.start_epoch(epoch);
            b.next_batch().unwrap().indices.to_vec()
        };
        assert_eq!(first(1, 3), first(1, 3));
        assert_ne!(first(1, 3), first(1, 4));
        assert_ne!(first(1, 3), first(2, 3));
        // Resuming: epoch 3 after running epochs 0..3 equals epoch 3 started fresh.
        let mut b = Batcher::new(&data, 16, 1).unwrap();
        for e in 0..3 {
            b.start_epoch(e);
            while b.next_batch().is_some() {}
        }
        b.start_epoch(3);
        assert_eq!(b.next_batch().unwrap().indices, first(1, 3).as_slice());
    }

    #[test]
    fn drop_last_and_sequential() {
        let data = builtin_digits().unwrap().test.take(10);
        let mut b = Batcher::new(&data, 4, 0).unwrap().drop_last(true);
        assert_eq!(b.batches_per_epoch(), 2);
        let mut sizes = Vec::new();
        while let Some(batch) = b.next_batch() {
            sizes.push(batch.len());
        }
        assert_eq!(sizes, vec![4, 4]);
        let mut b = Batcher::new(&data, 4, 0).unwrap();
        b.start_sequential();
        let mut all = Vec::new();
        while let Some(batch) = b.next_batch() {
            all.extend_from_slice(batch.indices);
        }
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(matches!(
            Batcher::new(&data, 0, 0),
            Err(DataError::ZeroBatchSize)
        ));
    }

    #[test]
    fn buffer_is_not_reallocated() {
        let data = builtin_digits().unwrap().train;
        let mut b = Batcher::new(&data, 32, 0).unwrap();
        let p0 = b.next_batch().unwrap().images.as_ptr();
        let p1 = b.next_batch().unwrap().images.as_ptr();
        assert_eq!(p0, p1);
    }
}
