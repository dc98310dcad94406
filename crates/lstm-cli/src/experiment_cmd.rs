//! `lstm experiment`: runs the library's experiments, writes the Markdown table and the plot
//! into `--out`, prints the table (or one JSON object per run with `--json`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lstm::cell::Mode;
use lstm::experiment::{self as ex, Arch, CurvePoint};

use crate::args::*;

/// Dispatches `lstm experiment <which>`.
/// Nothing is written before the runs are done: an interrupted or failed run leaves no `--out`
/// directory it created, nor a partial table or plot in one that existed.
pub fn experiment(cmd: &ExperimentCmd) -> Result<()> {
    match &cmd.which {
        ExperimentKind::Adding(a) => adding(a),
        ExperimentKind::Order(a) => order(a),
        ExperimentKind::Gradients(a) => gradients(a),
        ExperimentKind::Variants(a) => variants(a),
    }
}

fn init(i: InitArg) -> lstm::params::init::InitScheme {
    match i {
        InitArg::XavierOrthogonal => lstm::params::init::InitScheme::XavierOrthogonal,
        InitArg::Pytorch => lstm::params::init::InitScheme::PytorchUniform,
    }
}

/// Refuses a list that names an item twice (a run would be repeated and counted twice).
fn once<T: PartialEq + std::fmt::Debug>(flag: &str, items: &[T]) -> Result<()> {
    for (i, x) in items.iter().enumerate() {
        if items[..i].contains(x) {
            bail!(
                "{flag} names {} twice; name each once",
                format!("{x:?}").to_lowercase()
            );
        }
    }
    Ok(())
}

/// The architectures of `cells` with the LSTM `variant`, which other cells do not take.
fn archs(cells: &[CellArg], variant: VariantArg) -> Result<Vec<Arch>> {
    once("--cell", cells)?;
    let (peephole, coupled) = match variant {
        VariantArg::Standard => (false, false),
        VariantArg::Peephole => (true, false),
        VariantArg::Coupled => (false, true),
        VariantArg::PeepholeCoupled => (true, true),
    };
    cells
        .iter()
        .map(|&cell| {
            let mode = match cell {
                CellArg::Lstm => Mode::Lstm,
                CellArg::Gru => Mode::Gru,
                CellArg::Rnn => Mode::RnnTanh,
                CellArg::RnnRelu => Mode::RnnRelu,
            };
            if mode != Mode::Lstm && (peephole || coupled) {
                bail!(
                    "--variant {} is a variant of the LSTM cell; a {} cell has none: leave \
                     --variant out, or run the LSTM alone with it",
                    Arch::from_parts(Mode::Lstm, peephole, coupled).name(),
                    Arch::from_parts(mode, false, false).name()
                );
            }
            Ok(Arch::from_parts(mode, peephole, coupled))
        })
        .collect()
}

/// Where an experiment writes: the table, the plot, and the plot's name while it is drawn.
struct Outputs {
    dir: PathBuf,
    md: PathBuf,
    plot: PathBuf,
    drawn: PathBuf,
}

/// Sets the threads and checks `--out` before anything runs (it is created when the results
/// are written).
fn prepare(common: &ExperimentCommon, name: &str) -> Result<Outputs> {
    lstm::kernels::set_num_threads(common.threads);
    let dir = common.out.clone();
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--out {} is a file; name a directory for the table and the plot",
            dir.display()
        );
    }
    if !dir.exists() {
        // that it can be created is found now, not after the runs: its missing folders are
        // made and removed again
        let mut missing = Vec::new();
        let mut at = dir.as_path();
        while !at.as_os_str().is_empty() && !at.exists() {
            missing.push(at.to_path_buf());
            at = at.parent().unwrap_or(Path::new(""));
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
        for m in &missing {
            let _ = std::fs::remove_dir(m);
        }
    }
    let ext = if common.png { "png" } else { "svg" };
    let o = Outputs {
        md: dir.join(format!("{name}.md")),
        plot: dir.join(format!("{name}.{ext}")),
        drawn: dir.join(format!(".{name}.{}.tmp.{ext}", std::process::id())),
        dir,
    };
    for f in [&o.md, &o.plot] {
        // (a link is not replaced either: the table is written atomically, by renaming)
        if std::fs::symlink_metadata(f).is_ok_and(|m| !m.file_type().is_file()) {
            bail!(
                "{} exists and is not a file; refusing to replace it: choose another --out",
                f.display()
            );
        }
    }
    Ok(o)
}

/// Creates `--out`, draws the plot with `draw`, writes the table, prints it (unless `--json`)
/// and says where the files are. A failure leaves no partial file, and no directory it created.
fn finish(
    common: &ExperimentCommon,
    o: &Outputs,
    table: &str,
    draw: impl FnOnce(&Path) -> lstm::Result<()>,
) -> Result<()> {
    let created = !o.dir.exists();
    let r = (|| -> Result<()> {
        std::fs::create_dir_all(&o.dir)
            .with_context(|| format!("cannot create the output directory {}", o.dir.display()))?;
        draw(&o.drawn).with_context(|| format!("cannot write {}", o.plot.display()))?;
        lstm::tasks::modeldir::write_atomic(&o.md, table.as_bytes())
            .with_context(|| format!("cannot write {}", o.md.display()))?;
        std::fs::rename(&o.drawn, &o.plot)
            .with_context(|| format!("cannot write {}", o.plot.display()))?;
        Ok(())
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&o.drawn);
        if created {
            let _ = std::fs::remove_dir_all(&o.dir);
        }
    }
    r?;
    if !common.json {
        outln!("{table}");
        outln!("wrote {} and {}", o.md.display(), o.plot.display());
    }
    Ok(())
}

fn progress<'a>(
    common: &'a ExperimentCommon,
    what: String,
    unit: &'a str,
) -> impl FnMut(&CurvePoint) + 'a {
    move |p: &CurvePoint| {
        if !common.quiet {
            eprintln!(
                "{what}: step {:>6}  {:>7.1}s  train loss {:.4}  {unit} {:.4}",
                p.step, p.seconds, p.train_loss, p.metric
            );
        }
    }
}

/// Prints one run as a JSON line when `--json` is given (`json` is only built then).
fn print_json(
    common: &ExperimentCommon,
    json: impl FnOnce() -> serde_json::Result<String>,
) -> Result<()> {
    if common.json {
        outln!("{}", json()?);
    }
    Ok(())
}

fn adding(a: &AddingArgs) -> Result<()> {
    if !(a.target.is_finite() && a.target > 0.0) {
        bail!("--target is a test MSE above 0, got {}", a.target);
    }
    once("--seed", &a.seed)?;
    let o = prepare(&a.common, "adding")?;
    let mut reports = Vec::new();
    for arch in archs(&a.cell, a.variant)? {
        for &seed in &a.seed {
            let cfg = ex::AddingConfig {
                arch,
                length: a.length,
                hidden: a.hidden,
                batch: a.batch,
                lr: a.lr,
                clip: a.clip,
                forget_bias: a.forget_bias,
                init: init(a.init),
                steps: a.steps,
                eval_every: a.eval_every,
                test_size: a.test_size,
                target_mse: a.target,
                stop_at_target: a.stop_at_target,
                seed,
            };
            let label = format!("adding {} T={} seed {seed}", cfg.arch.name(), cfg.length);
            let r = ex::run_adding(&cfg, &mut progress(&a.common, label.clone(), "test MSE"))
                .with_context(|| format!("{label} failed"))?;
            print_json(&a.common, || serde_json::to_string(&r))?;
            reports.push(r);
        }
    }
    finish(&a.common, &o, &ex::adding_table(&reports), |p| {
        ex::plot_adding(p, &reports)
    })
}

fn order(a: &OrderArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.target) {
        bail!("--target is an accuracy between 0 and 1, got {}", a.target);
    }
    once("--seed", &a.seed)?;
    let o = prepare(&a.common, "order")?;
    let mut reports = Vec::new();
    for arch in archs(&a.cell, a.variant)? {
        for &seed in &a.seed {
            let cfg = ex::OrderConfig {
                arch,
                length: a.length,
                hidden: a.hidden,
                batch: a.batch,
                lr: a.lr,
                clip: a.clip,
                forget_bias: a.forget_bias,
                steps: a.steps,
                eval_every: a.eval_every,
                test_size: a.test_size,
                target_accuracy: a.target,
                stop_at_target: a.stop_at_target,
                seed,
            };
            let label = format!("order {} T={} seed {seed}", cfg.arch.name(), cfg.length);
            let r = ex::run_order(
                &cfg,
                &mut progress(&a.common, label.clone(), "test accuracy"),
            )
            .with_context(|| format!("{label} failed"))?;
            print_json(&a.common, || serde_json::to_string(&r))?;
            reports.push(r);
        }
    }
    finish(&a.common, &o, &ex::order_table(&reports), |p| {
        ex::plot_order(p, &reports)
    })
}

fn gradients(a: &GradientArgs) -> Result<()> {
    let o = prepare(&a.common, "gradients")?;
    let mut reports = Vec::new();
    for arch in archs(&a.cell, a.variant)? {
        let cfg = ex::GradientConfig {
            arch,
            length: a.length,
            hidden: a.hidden,
            probe_batch: a.probe_batch,
            train_steps: a.steps,
            batch: a.batch,
            lr: a.lr,
            clip: a.clip,
            forget_bias: a.forget_bias,
            init: init(a.init),
            seed: a.seed,
        };
        if !a.common.quiet {
            eprintln!(
                "gradients {} T={}: measuring, training {} steps, measuring",
                cfg.arch.name(),
                cfg.length,
                cfg.train_steps
            );
        }
        let r = ex::run_gradients(&cfg)
            .with_context(|| format!("gradients {} failed", cfg.arch.name()))?;
        print_json(&a.common, || serde_json::to_string(&r))?;
        reports.push(r);
    }
    finish(&a.common, &o, &ex::gradient_table(&reports), |p| {
        ex::plot_gradients(p, &reports)
    })
}

fn variants(a: &VariantsArgs) -> Result<()> {
    let mut archs = Vec::new();
    for v in &a.variants {
        match Arch::parse(v.trim()) {
            Some(x) => archs.push(x),
            None => bail!(
                "unknown variant `{v}`; choose from: standard, peephole, coupled, peephole-coupled, gru, rnn, rnn-relu"
            ),
        }
    }
    let text = match &a.data {
        Some(p) => lstm::data::text::read_text(p)
            .with_context(|| format!("cannot read the text {}", p.display()))?,
        None => lstm::tasks::job::BUNDLED_TEXT.to_string(),
    };
    let o = prepare(&a.common, "variants")?;
    let cfg = ex::VariantsConfig {
        archs,
        seeds: a.seeds.clone(),
        hidden: a.hidden,
        seq_len: a.seq_len,
        batch: a.batch,
        lr: a.lr,
        clip: a.clip,
        steps: a.steps,
        eval_every: a.eval_every,
        val_fraction: a.val_fraction,
    };
    let common = &a.common;
    let report = ex::run_variants(&cfg, &text, &mut |r| {
        if !common.quiet {
            eprintln!(
                "variants {} seed {}: validation {:.4} nats/char after {} steps, {:.1}s",
                r.arch.name(),
                r.seed,
                r.val_loss,
                r.steps,
                r.seconds
            );
        }
        if common.json {
            if let Ok(s) = serde_json::to_string(r) {
                let _ = writeln!(std::io::stdout(), "{s}");
            }
        }
    })?;
    finish(&a.common, &o, &ex::variants_table(&report), |p| {
        ex::plot_variants(p, &report)
    })
}
