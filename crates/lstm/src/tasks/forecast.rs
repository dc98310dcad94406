//! The forecast job: training windows of a table of series, batched at random; validation on
//! the held-out windows.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::series::Windows;
use crate::error::Result;
use crate::model::{Batch, Inputs, SequenceModel, Targets};
use crate::tasks::train::{OwnedBatch, TrainTask};

/// Training data of the forecast job: random batches of training windows, MSE on the
/// validation windows (in scaled units).
#[derive(Clone, Debug)]
pub struct SeriesData {
    /// Training windows.
    pub train: Windows,
    /// Validation windows.
    pub val: Windows,
    /// Input window.
    pub window: usize,
    /// Features per row.
    pub features: usize,
    /// Steps predicted.
    pub horizon: usize,
    /// Windows per batch.
    pub batch: usize,
}

impl TrainTask for SeriesData {
    fn epoch_items(&self) -> u64 {
        self.train.n as u64
    }

    fn batch_items(&self) -> u64 {
        self.batch.min(self.train.n) as u64
    }

    fn next_batch(&mut self, rng: &mut ChaCha8Rng, _position: u64) -> OwnedBatch {
        let b = self.batch.min(self.train.n);
        let (wf, h) = (self.window * self.features, self.horizon);
        let mut out = OwnedBatch {
            batch: b,
            seq_len: self.window,
            items: b as u64,
            ..Default::default()
        };
        for _ in 0..b {
            let i = rng.gen_range(0..self.train.n);
            out.dense
                .extend_from_slice(&self.train.x[i * wf..(i + 1) * wf]);
            out.values
                .extend_from_slice(&self.train.y[i * h..(i + 1) * h]);
        }
        out
    }

    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32> {
        let carry = model.carry.take();
        let out = model.evaluate(&Batch {
            inputs: Inputs::Dense(&self.val.x),
            targets: Targets::Values(&self.val.y),
            batch: self.val.n,
            seq_len: self.window,
            lengths: None,
        });
        model.carry = carry;
        Ok(out?.loss)
    }
}
