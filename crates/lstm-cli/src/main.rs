//! `lstm`: train, run and benchmark recurrent networks from the command line.
//!
//! The binary parses and validates arguments and calls the `lstm` library; it holds no math.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

mod args;
mod train_cmd;
mod use_cmd;

use args::*;

fn bench(args: &BenchArgs) -> Result<()> {
    let all = lstm::bench::configs();
    let names: Vec<&str> = all.iter().map(|c| c.name).collect();
    let chosen: Vec<_> = if args.config.is_empty() {
        all.clone()
    } else {
        let mut v = Vec::new();
        for n in &args.config {
            match all.iter().find(|c| c.name == n) {
                Some(c) => v.push(c.clone()),
                None => bail!(
                    "unknown benchmark configuration `{n}`; choose from: {}",
                    names.join(", ")
                ),
            }
        }
        v
    };
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    if !args.json {
        println!(
            "{:<16} {:>7} {:>14} {:>12} {:>9} {:>11} {:>5}",
            "config", "threads", "throughput", "unit", "GFLOP/s", "median ms", "reps"
        );
    }
    for c in &chosen {
        let r = lstm::bench::run(c, threads, args.seconds, args.min_reps)
            .with_context(|| format!("benchmark {} failed", c.name))?;
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            let (v, unit) = if let Some(x) = r.tokens_per_s {
                (x, "tokens/s")
            } else if let Some(x) = r.samples_per_s {
                (x, "samples/s")
            } else {
                (r.us_per_token.unwrap_or(0.0), "us/token")
            };
            println!(
                "{:<16} {:>7} {:>14.1} {:>12} {:>9.1} {:>11.3} {:>5}",
                r.name, r.threads, v, unit, r.gflops, r.median_ms, r.reps
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(a) => train_cmd::train(a),
        Command::Generate(a) => use_cmd::generate(a),
        Command::Forecast(a) => use_cmd::forecast(a),
        Command::Classify(a) => use_cmd::classify(a),
        Command::Eval(a) => use_cmd::eval(a),
        Command::Bench(a) => bench(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<train_cmd::Interrupted>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
