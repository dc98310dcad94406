//! Forecasting a CSV from Rust: the `lstm train forecast` job (the global forecaster, here on
//! one series) on the bundled airline passengers (monthly, 1949-1960), then the next 24 months
//! with the median and a 95% interval.
//!
//! `cargo run --release -p lstm --example forecast_csv`

use std::sync::atomic::AtomicBool;

use lstm::tasks::job::forecast_global;
use lstm::{Job, Settings, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/airline_passengers.csv"
    );
    let out = std::env::temp_dir().join("lstm-example-forecast");
    let _ = std::fs::remove_dir_all(&out);

    // the defaults of `lstm train forecast`: season, horizon and context follow from the
    // monthly time column (12, 24, 48), the budget from the number of training windows
    let mut settings = Settings::defaults(Task::Forecast);
    settings.data = Some(data.to_string());
    settings.columns = vec!["passengers".to_string()];
    settings.date_column = Some("month".to_string());

    let mut job = Job::new(Task::Forecast, settings, out.clone())?;
    for note in &job.notes {
        eprintln!("{note}");
    }
    let stop = AtomicBool::new(false);
    job.train(&|_dir, _train, _val| Ok(()), &stop, &mut |_event| {})?;

    let mut model = lstm::load(&out)?;
    let fc = forecast_global(
        &mut model,
        std::path::Path::new(data),
        None,
        &[0.025, 0.975],
    )?;
    print!("{}", fc.csv); // month,passengers,q0.025,q0.975
    Ok(())
}
