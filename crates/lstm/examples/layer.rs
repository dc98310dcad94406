//! A bare LSTM layer, the equivalent of `torch.nn.LSTM(3, 4, num_layers=2)`: a forward pass over
//! a batch, then the backward pass filling every parameter's gradient under PyTorch's names.
//!
//! `cargo run --release -p lstm --example layer`

use lstm::{Input, ParamStore, Recurrent, RecurrentCache, RecurrentConfig, SequenceBatch};
use rand::SeedableRng;

fn main() -> lstm::Result<()> {
    let cfg = RecurrentConfig {
        input_size: 3,
        hidden_size: 4,
        num_layers: 2,
        ..Default::default()
    };
    // the parameters, registered under PyTorch's names: lstm.weight_ih_l0 (4H, I), ...
    let mut store = ParamStore::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let layer = Recurrent::new(cfg, &mut store, "lstm.", &mut rng)?;

    // x: (T=5, B=2, I=3), time-major like nn.LSTM without batch_first
    let (t, b) = (5, 2);
    let x: Vec<f32> = (0..t * b * 3).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut cache = RecurrentCache::default();
    layer.forward(
        &store.values,
        SequenceBatch::new(Input::Dense(&x), t, b),
        &mut cache,
    )?;
    let output = cache.output(); // (T, B, H) = (5, 2, 4)
    println!(
        "output (T={t}, B={b}, H=4), last step: {:?}",
        &output[(t - 1) * b * 4..]
    );

    // loss = sum(output): dLoss/d(output) is all ones
    let d_output = vec![1.0f32; output.len()];
    // the gradients are added into store.grads, laid out like store.values
    layer.backward(&store.values, &mut store.grads, &mut cache, &d_output, None)?;
    for tensor in store.tensors() {
        let g = store.grad(&tensor.name).unwrap_or_default();
        let norm = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        println!("{:<24} {:?}  |grad| = {norm:.5}", tensor.name, tensor.shape);
    }
    Ok(())
}
