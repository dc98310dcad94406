//! `lstm`: train, run and benchmark recurrent networks from the command line.
//!
//! The binary parses and validates arguments and calls the `lstm` library; it holds no math.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

/// `println!` that returns an error from the function it is in, instead of panicking, when
/// standard output cannot be written (a full disk, `> /dev/full`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*).map_err(crate::stdout_err)?
    }};
}

/// `print!` as [`outln!`] is `println!`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*).map_err(crate::stdout_err)?
    }};
}

/// The error of a write to standard output that failed.
fn stdout_err(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot write to standard output: {e}")
}

mod args;
mod experiment_cmd;
mod explain_cmd;
mod interop_cmd;
#[cfg(feature = "mpi")]
mod mpi;
mod paths;
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
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        bail!(
            "--seconds must be a positive number of seconds, at most 86400 (a day), got {}",
            args.seconds
        );
    }
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    if args.scaling {
        return scaling(args, threads);
    }
    if let Some(path) = &args.summarize {
        return summarize(path);
    }
    if !args.json {
        outln!(
            "{:<20} {:>7} {:>14} {:>12} {:>9} {:>11} {:>9} {:>5}",
            "config",
            "threads",
            "throughput",
            "unit",
            "GFLOP/s",
            "median ms",
            "mean ms",
            "reps"
        );
    }
    let bf16 = matches!(args.precision, PrecisionArg::Bf16);
    for c in &chosen {
        let mut c = c.clone();
        let renamed = bf16 && !c.bf16;
        c.bf16 |= bf16;
        let mut r = lstm::bench::run(&c, threads, args.seconds, args.min_reps as usize)
            .with_context(|| format!("benchmark {} failed", c.name))?;
        if renamed {
            r.name.push_str("-bf16");
        }
        if args.json {
            outln!("{}", serde_json::to_string(&r)?);
        } else {
            let (v, unit) = if let Some(x) = r.tokens_per_s {
                (x, "tokens/s")
            } else if let Some(x) = r.samples_per_s {
                (x, "samples/s")
            } else {
                (r.us_per_token.unwrap_or(0.0), "us/token")
            };
            outln!(
                "{:<20} {:>7} {:>14.1} {:>12} {:>9.1} {:>11.3} {:>9.3} {:>5}",
                r.name,
                r.threads,
                v,
                unit,
                r.gflops,
                r.median_ms,
                r.mean_ms,
                r.reps
            );
        }
    }
    Ok(())
}

/// `lstm bench --summarize FILE`: a side-by-side run's medians and ratios as a Markdown table.
fn summarize(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: give the $OUT file of docs/side-by-side.sh",
            path.display()
        )
    })?;
    let rows = lstm::bench::summarize_side_by_side(&text)
        .with_context(|| format!("{} is not a side-by-side run", path.display()))?;
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    let x = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}x"));
    outln!(
        "| config | unit | reps | lstm (median step) | lstm (mean) | PyTorch (median step) | \
         PyTorch (mean: its tokens_per_s) | ONNX Runtime | faster: median/median | \
         faster: mean/mean | per repetition |"
    );
    outln!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let range = r
            .ratio_range
            .map_or("-".to_string(), |(a, b)| format!("{a:.2}x-{b:.2}x"));
        outln!(
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.unit,
            r.reps,
            r.ours,
            f(r.ours_mean),
            f(r.torch),
            f(r.torch_mean),
            f(r.ort),
            x(r.ratio),
            x(r.ratio_mean),
            range
        );
    }
    outln!(
        "\nMedians over the repetitions. \"faster\": our throughput over PyTorch's (generation: \
         PyTorch's microseconds per token over ours), the median-step figures against each other \
         and the mean-step ones against each other; per repetition: mean against mean where both \
         were recorded."
    );
    Ok(())
}

/// `lstm bench --scaling`: tokens/s over batch x sequence length, then activation memory.
fn scaling(args: &BenchArgs, threads: usize) -> Result<()> {
    let (batches, lens) = ([1usize, 8, 32, 128], [16usize, 64, 256]);
    if !args.json {
        outln!(
            "charlm-2x256 training{}, tokens/s ({threads} threads; rows: batch, columns: sequence length)",
            if matches!(args.precision, PrecisionArg::Bf16) {
                " in bf16"
            } else {
                ""
            }
        );
        out!("{:>6}", "batch");
        for t in lens {
            out!(" {:>12}", format!("T={t}"));
        }
        outln!();
    }
    for b in batches {
        if !args.json {
            out!("{b:>6}");
        }
        for t in lens {
            let mut c = lstm::bench::charlm_2x256(b, t);
            c.bf16 = matches!(args.precision, PrecisionArg::Bf16);
            let mut r = lstm::bench::run(&c, threads, args.seconds, args.min_reps as usize)?;
            if c.bf16 {
                r.name.push_str("-bf16");
            }
            if args.json {
                outln!("{}", serde_json::to_string(&r)?);
            } else {
                out!(" {:>12.0}", r.tokens_per_s.unwrap_or(0.0));
                use std::io::Write;
                let _ = std::io::stdout().flush();
            }
        }
        if !args.json {
            outln!();
        }
    }
    let mem = lstm::bench::activation_memory(&[64, 256, 1024, 2048], threads)?;
    if !args.json {
        outln!("\ncharlm-2x256 activation memory, batch 32 (MiB)");
        outln!("{:>6} {:>12} {:>16}", "T", "full BPTT", "TBPTT (64)");
    }
    for m in mem {
        if args.json {
            outln!("{}", serde_json::to_string(&m)?);
        } else {
            let mib = |x: usize| x as f64 / (1 << 20) as f64;
            outln!(
                "{:>6} {:>12.1} {:>16.1}",
                m.seq_len,
                mib(m.full_bptt_bytes),
                mib(m.tbptt_bytes)
            );
        }
    }
    Ok(())
}

/// Writing to a closed pipe (`lstm eval ... | head -1`) ends the process quietly, as it does for
/// other command-line tools, instead of the panic of Rust's `println!` on a failed write. The
/// server keeps SIGPIPE ignored (Rust's default), so that a closed socket is an error it
/// handles; so do `train` and `experiment`, whose work a reader that went away
/// (`lstm train | head`) must not cost: they drop the progress lines they cannot write.
fn default_sigpipe() {
    // SAFETY: sets the disposition of one signal to the kernel's default at the top of `main`,
    // before any thread exists; no Rust code runs as a handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Ctrl-C, SIGTERM or SIGHUP during a command that writes a file under a temporary name
/// (`export`, `import`, `forecast --out`, `--plot`, pages) removes that file, then the process
/// ends by that signal as it did before (a shell loop around it stops); `train`, `experiment`
/// and `serve` stop in their own way. A signal the shell set to be ignored (a background job's
/// SIGINT, nohup's SIGHUP) stays ignored.
fn remove_pending_on_interrupt() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| !ignored(s))
        .collect();
    let Ok(mut signals) = signal_hook::iterator::Signals::new(&wanted) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            if lstm::tasks::modeldir::remove_pending() > 0 {
                eprintln!("interrupted: the file being written was removed");
            }
            // resets the signal to its default and raises it (it does not return)
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
}

/// Whether the signal `sig` is set to be ignored.
pub(crate) fn ignored(sig: i32) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current disposition into
    // `old`, a plain C struct for which all-zero bytes are valid
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The number of processes an MPI launcher (Open MPI's `mpirun`, a PMI one such as `srun`)
/// started this one among; 1 when started alone. A PMIx launcher that says no size (`srun
/// --mpi=pmix`) is asked through MPI in a build with the `mpi` feature; without it, such a
/// launch counts as one process.
fn mpi_processes() -> usize {
    let said = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok());
    #[cfg(feature = "mpi")]
    if said.is_none() {
        use lstm::tasks::parallel::Collective;
        return mpi::Mpi::init().map_or(1, |m| m.size());
    }
    said.unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Train(_) | Command::Experiment(_)
    ) {
        default_sigpipe();
        remove_pending_on_interrupt();
    }
    // only training is shared among MPI processes; any other command would run whole on each
    // of them, each writing the same output (a probe, 2026-12-07)
    let processes = match cli.command {
        Command::Train(_) => 1,
        _ => mpi_processes(),
    };
    let result = match &cli.command {
        _ if processes > 1 => Err(anyhow::anyhow!(
            "started as one of {processes} MPI processes, but only `lstm train` runs across \
             them; each process would run this whole command and write the same output: run it \
             without mpirun or srun"
        )),
        Command::Train(a) => train_cmd::train(a),
        Command::Generate(a) => use_cmd::generate(a),
        Command::Forecast(a) => use_cmd::forecast(a),
        Command::Classify(a) => use_cmd::classify(a),
        Command::Eval(a) => use_cmd::eval(a),
        Command::Bench(a) => bench(a),
        Command::Export(a) => interop_cmd::export(a),
        Command::Import(a) => interop_cmd::import(a),
        Command::Explain(a) => explain_cmd::explain(a),
        Command::Explore(a) => explain_cmd::explore(a),
        Command::Report(a) => explain_cmd::report(a),
        Command::Experiment(a) => experiment_cmd::experiment(a),
        Command::Serve(a) => lstm_serve::run(a.clone()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<train_cmd::Interrupted>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(train_cmd::stop_status())
        }
        Err(e) => {
            eprintln!("error: {e}");
            // a cause whose text its parent already shows is not repeated
            let mut shown = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !shown.contains(&c) {
                    eprintln!("  caused by: {c}");
                }
                shown = c;
            }
            ExitCode::FAILURE
        }
    }
}
