//! `lstm-serve`: the server alone (the same as `lstm serve`).

use clap::Parser;

/// Serve trained models over HTTP.
#[derive(Parser)]
#[command(name = "lstm-serve", version)]
struct Cli {
    #[command(flatten)]
    serve: lstm_serve::ServeArgs,
}

fn main() {
    if let Err(e) = lstm_serve::run(Cli::parse().serve) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
