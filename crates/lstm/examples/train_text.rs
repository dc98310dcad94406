//! Training a character model from Rust: the `lstm train text` job through the library, then
//! sampling from the saved model. Trains a small model on the bundled Shakespeare for 300 steps
//! (a few seconds on two cores).
//!
//! `cargo run --release -p lstm --example train_text`

use std::sync::atomic::AtomicBool;

use lstm::tasks::job::{generate, GenerateOptions};
use lstm::tasks::train::Event;
use lstm::{Job, Settings, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/tinyshakespeare.txt"
    );
    let out = std::env::temp_dir().join("lstm-example-text");
    // a model directory is only written where none of another kind is: start clean
    let _ = std::fs::remove_dir_all(&out);

    // the binary's defaults for the job (`lstm train text`), then a few changes
    let mut settings = Settings::defaults(Task::Text);
    settings.data = Some(data.to_string());
    settings.layers = 1;
    settings.hidden = 128;
    settings.steps = Some(300);
    settings.minutes = None;

    let mut job = Job::new(Task::Text, settings, out.clone())?;
    let stop = AtomicBool::new(false); // raise it (from a Ctrl-C handler, say) to stop and save
    job.train(&|_dir, _train, _val| Ok(()), &stop, &mut |event| {
        if let Event::Eval { step, val_loss, .. } = event {
            println!("step {step}: validation loss {val_loss:.3}");
        }
    })?;

    // the saved directory loads like any other: `lstm generate --model <out>` reads it too
    let mut model = lstm::load(&out)?;
    let options = GenerateOptions {
        prime: "ROMEO:".to_string(),
        length: 200,
        temperature: 0.8,
        top_k: 0,
        bf16: false,
        seed: 1,
    };
    let text = generate(&mut model, &options, &mut |_piece| {})?;
    println!("{text}");
    println!("saved in {}", out.display());
    Ok(())
}
