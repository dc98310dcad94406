//! Forecasting a CSV from Rust: the `lstm train forecast --forecaster window` job (the point
//! forecaster of one table) on the bundled airline passengers (monthly, 1949-1960), then 12
//! months past the end of the file.
//!
//! `cargo run --release -p lstm --example forecast_csv`

use std::sync::atomic::AtomicBool;

use lstm::data::series::Transform;
use lstm::tasks::job::forecast;
use lstm::tasks::settings::Forecaster;
use lstm::{Job, Settings, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/airline_passengers.csv"
    );
    let out = std::env::temp_dir().join("lstm-example-forecast");
    let _ = std::fs::remove_dir_all(&out);

    let mut settings = Settings::defaults(Task::Forecast);
    settings.data = Some(data.to_string());
    settings.columns = vec!["passengers".to_string()];
    settings.date_column = Some("month".to_string());
    settings.forecaster = Forecaster::Window;
    settings.window = 24;
    settings.transform = Transform::LogDiff;

    let mut job = Job::new(Task::Forecast, settings, out.clone())?;
    let stop = AtomicBool::new(false);
    job.train(&|_dir, _train, _val| Ok(()), &stop, &mut |_event| {})?;

    let mut model = lstm::load(&out)?;
    let fc = forecast(&mut model, std::path::Path::new(data), 12)?;
    print!("{}", fc.to_csv());
    Ok(())
}
