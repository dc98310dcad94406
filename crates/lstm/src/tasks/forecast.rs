//! The forecast job: training windows of a table of series, batched at random; validation on
//! the held-out windows.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::series::Windows;
use crate::error::Result;
use crate::model::{Batch, Inputs, SequenceModel, Targets};
use crate::tasks::train::{OwnedBatch, TrainTask};

/// Validation windows evaluated at once.
const VAL_CHUNK: usize = 1024;

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
        // in chunks of windows, each chunk's mean weighted by its windows: one batch of all of
        // them held every step's activations at once (a review, 2026-12-07: 3.2 GB for the
        // 20,000 validation windows of a 200,000-row series)
        let carry = model.carry.take();
        let (wf, h) = (self.window * self.features, self.horizon);
        let mut sum = 0.0f64;
        let mut out = Ok(());
        for start in (0..self.val.n).step_by(VAL_CHUNK) {
            let n = VAL_CHUNK.min(self.val.n - start);
            match model.evaluate(&Batch {
                inputs: Inputs::Dense(&self.val.x[start * wf..(start + n) * wf]),
                targets: Targets::Values(&self.val.y[start * h..(start + n) * h]),
                batch: n,
                seq_len: self.window,
                lengths: None,
            }) {
                Ok(r) => sum += f64::from(r.loss) * n as f64,
                Err(e) => {
                    out = Err(e);
                    break;
                }
            }
        }
        model.carry = carry;
        out.map(|()| (sum / self.val.n.max(1) as f64) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Head, InputKind, ModelConfig};
    use rand::SeedableRng;

    /// Validation in chunks gives the mean over every window that one batch of all of them
    /// gives.
    #[test]
    fn validation_in_chunks_is_the_mean_of_one_batch() {
        let (window, features, horizon, n) = (5, 2, 3, 2 * VAL_CHUNK + 37);
        let cfg = ModelConfig {
            input: InputKind::Dense { features },
            hidden_size: 8,
            head: Head::LastStep { outputs: horizon },
            ..Default::default()
        };
        let mut model = SequenceModel::new(&cfg, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let val = Windows {
            x: (0..n * window * features)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            y: (0..n * horizon).map(|_| rng.gen_range(-1.0..1.0)).collect(),
            n,
        };
        let whole = model
            .evaluate(&Batch {
                inputs: Inputs::Dense(&val.x),
                targets: Targets::Values(&val.y),
                batch: n,
                seq_len: window,
                lengths: None,
            })
            .unwrap()
            .loss;
        let mut data = SeriesData {
            train: Windows::default(),
            val,
            window,
            features,
            horizon,
            batch: 16,
        };
        let chunked = data.validate(&mut model).unwrap();
        assert!(
            (chunked - whole).abs() <= 1e-6 * whole.abs(),
            "{chunked} against {whole}"
        );
    }
}
