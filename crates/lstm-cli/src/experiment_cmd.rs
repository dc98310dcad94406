//! `lstm experiment`: runs the library's experiments, writes the Markdown table and the plot
//! into `--out`, prints the table (or one JSON object per run with `--json`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lstm::cell::Mode;
use lstm::experiment::{self as ex, Arch, CurvePoint};

use crate::args::*;

/// Dispatches `lstm experiment <which>`.
/// A failed run leaves no `--out` directory it created (nor a partial table or plot in it).
pub fn experiment(cmd: &ExperimentCmd) -> Result<()> {
    let out = match &cmd.which {
        ExperimentKind::Adding(a) => &a.common.out,
        ExperimentKind::Order(a) => &a.common.out,
        ExperimentKind::Gradients(a) => &a.common.out,
        ExperimentKind::Variants(a) => &a.common.out,
    };
    let created = !out.exists();
    let r = match &cmd.which {
        ExperimentKind::Adding(a) => adding(a),
        ExperimentKind::Order(a) => order(a),
        ExperimentKind::Gradients(a) => gradients(a),
        ExperimentKind::Variants(a) => variants(a),
    };
    if r.is_err() && created {
        let _ = std::fs::remove_dir_all(out);
    }
    r
}

fn init(i: InitArg) -> lstm::params::init::InitScheme {
    match i {
        InitArg::XavierOrthogonal => lstm::params::init::InitScheme::XavierOrthogonal,
        InitArg::Pytorch => lstm::params::init::InitScheme::PytorchUniform,
    }
}

fn arch(cell: CellArg, variant: VariantArg) -> Arch {
    let mode = match cell {
        CellArg::Lstm => Mode::Lstm,
        CellArg::Gru => Mode::Gru,
        CellArg::Rnn => Mode::RnnTanh,
        CellArg::RnnRelu => Mode::RnnRelu,
    };
    let (peephole, coupled) = match variant {
        VariantArg::Standard => (false, false),
        VariantArg::Peephole => (true, false),
        VariantArg::Coupled => (false, true),
        VariantArg::PeepholeCoupled => (true, true),
    };
    Arch::from_parts(mode, peephole, coupled)
}

/// Sets the threads, creates `--out` and returns the paths of the table and the plot.
fn prepare(common: &ExperimentCommon, name: &str) -> Result<(PathBuf, PathBuf)> {
    lstm::kernels::set_num_threads(common.threads);
    std::fs::create_dir_all(&common.out).with_context(|| {
        format!(
            "cannot create the output directory {}",
            common.out.display()
        )
    })?;
    let ext = if common.png { "png" } else { "svg" };
    Ok((
        common.out.join(format!("{name}.md")),
        common.out.join(format!("{name}.{ext}")),
    ))
}

/// Writes the table, prints it (unless `--json`) and says where the files are.
fn finish(common: &ExperimentCommon, table: &str, md: &Path, plot: &Path) -> Result<()> {
    std::fs::write(md, table).with_context(|| format!("cannot write {}", md.display()))?;
    if !common.json {
        println!("{table}");
        println!("wrote {} and {}", md.display(), plot.display());
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
        println!("{}", json()?);
    }
    Ok(())
}

fn adding(a: &AddingArgs) -> Result<()> {
    if !(a.target.is_finite() && a.target > 0.0) {
        bail!("--target is a test MSE above 0, got {}", a.target);
    }
    let (md, plot) = prepare(&a.common, "adding")?;
    let mut reports = Vec::new();
    for &cell in &a.cell {
        for &seed in &a.seed {
            let cfg = ex::AddingConfig {
                arch: arch(cell, a.variant),
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
    ex::plot_adding(&plot, &reports)?;
    finish(&a.common, &ex::adding_table(&reports), &md, &plot)
}

fn order(a: &OrderArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.target) {
        bail!("--target is an accuracy between 0 and 1, got {}", a.target);
    }
    let (md, plot) = prepare(&a.common, "order")?;
    let mut reports = Vec::new();
    for &cell in &a.cell {
        for &seed in &a.seed {
            let cfg = ex::OrderConfig {
                arch: arch(cell, a.variant),
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
    ex::plot_order(&plot, &reports)?;
    finish(&a.common, &ex::order_table(&reports), &md, &plot)
}

fn gradients(a: &GradientArgs) -> Result<()> {
    let (md, plot) = prepare(&a.common, "gradients")?;
    let mut reports = Vec::new();
    for &cell in &a.cell {
        let cfg = ex::GradientConfig {
            arch: arch(cell, a.variant),
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
    ex::plot_gradients(&plot, &reports)?;
    finish(&a.common, &ex::gradient_table(&reports), &md, &plot)
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
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the text {}", p.display()))?,
        None => lstm::tasks::job::BUNDLED_TEXT.to_string(),
    };
    let (md, plot) = prepare(&a.common, "variants")?;
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
                println!("{s}");
            }
        }
    })?;
    ex::plot_variants(&plot, &report)?;
    finish(&a.common, &ex::variants_table(&report), &md, &plot)
}
