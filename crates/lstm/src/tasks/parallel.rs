//! Data-parallel training over several processes: what the training loop needs from a
//! communication library ([`Collective`]: MPI in the binary, behind its `mpi` feature), and an
//! in-process group of threads ([`ThreadGroup`]) that stands in for it in tests.
//!
//! How a step runs on `N` processes (ranks): every rank draws the same global batch of `B`
//! rows (the data RNG is the same everywhere), keeps its share ([`shard`]: rows
//! `r·B/N .. (r+1)·B/N`), computes that share's gradient, and one all-reduce sums the flat
//! gradient buffer ([`crate::SequenceModel::train_step_reduced`]); every rank then applies the
//! same update to the same weights. Rank 0 broadcasts its weights at the start (and before
//! each checkpoint, so that ranks never drift apart) and alone writes checkpoints.

use std::ops::Range;
use std::sync::{Arc, Barrier, Mutex};

use crate::error::{Error, Result};

/// The collective operations data-parallel training needs, over `size()` processes.
///
/// Every rank must make the same calls in the same order (the training loop does).
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Sums `buf` element-wise over all ranks; every rank receives the same sums.
    ///
    /// # Errors
    /// A failed communication.
    fn allreduce_sum(&mut self, buf: &mut [f32]) -> Result<()>;
    /// Overwrites `buf` on every rank with rank 0's.
    ///
    /// # Errors
    /// A failed communication.
    fn broadcast(&mut self, buf: &mut [f32]) -> Result<()>;
}

/// The rows of a global batch of `batch` rows that `rank` of `size` computes.
pub fn shard(batch: usize, rank: usize, size: usize) -> Range<usize> {
    batch * rank / size..batch * (rank + 1) / size
}

/// A fingerprint of what a rank is about to train (settings and data), as two `f32`s that
/// hold 16 bits each exactly, so that the ranks can compare theirs with one all-reduce.
pub fn fingerprint_halves(bytes: &[u8]) -> [f32; 2] {
    let h = crc32fast::hash(bytes);
    [(h >> 16) as f32, (h & 0xffff) as f32]
}

/// Checks that every rank has the same fingerprint: sums each half and its square over the
/// ranks; equal values everywhere iff `N·Σx² = (Σx)²` for both halves.
///
/// # Errors
/// [`Error::Config`] naming what differs when the ranks disagree; communication errors.
pub fn check_same(c: &mut dyn Collective, what: &str, bytes: &[u8]) -> Result<()> {
    let [a, b] = fingerprint_halves(bytes);
    // 8-bit parts, so that the sums (and the sums of squares) of up to 128 ranks are exact in
    // f32; the comparison itself in f64, where the products are exact
    let parts = |x: f32| {
        let x = x as u32;
        [(x >> 8) as f32, (x & 0xff) as f32]
    };
    let (a, b) = (parts(a), parts(b));
    let v = [a[0], a[1], b[0], b[1]];
    let mut buf = [0.0f32; 8];
    for i in 0..4 {
        buf[i] = v[i];
        buf[4 + i] = v[i] * v[i];
    }
    c.allreduce_sum(&mut buf)?;
    let n = c.size() as f64;
    // N·Σx² = (Σx)² exactly when every rank holds the same x (Cauchy-Schwarz)
    let same = (0..4).all(|i| n * buf[4 + i] as f64 == (buf[i] as f64) * (buf[i] as f64));
    if !same {
        return Err(Error::Config(format!(
            "the {} ranks were started with different {what}; start every rank with the same \
             command line, data files and model directory",
            c.size()
        )));
    }
    Ok(())
}

/// `size` threads of one process acting as ranks: the stand-in for MPI in tests (sums in rank
/// order, so results are the same on every rank and from run to run).
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<GroupShared>,
}

struct GroupShared {
    size: usize,
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f32>>>,
}

impl ThreadGroup {
    /// The `size` members of a new group (give one to each thread).
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        let shared = Arc::new(GroupShared {
            size,
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    fn exchange(&mut self, buf: &mut [f32], combine: impl Fn(&[Vec<f32>], &mut [f32])) {
        let s = &self.shared;
        s.slots.lock().unwrap_or_else(|p| p.into_inner())[self.rank] = buf.to_vec();
        s.barrier.wait();
        combine(&s.slots.lock().unwrap_or_else(|p| p.into_inner()), buf);
        s.barrier.wait();
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn allreduce_sum(&mut self, buf: &mut [f32]) -> Result<()> {
        self.exchange(buf, |all, out| {
            for (i, o) in out.iter_mut().enumerate() {
                *o = all.iter().map(|v| v[i]).fold(0.0, |a, x| a + x);
            }
        });
        Ok(())
    }

    fn broadcast(&mut self, buf: &mut [f32]) -> Result<()> {
        self.exchange(buf, |all, out| out.copy_from_slice(&all[0]));
        Ok(())
    }
}
