//! Using a trained model: `generate`, `forecast`, `classify`, `eval`. Each loads the model,
//! checks its job, calls one `lstm::tasks::job` entry and prints what it returns.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use lstm::tasks::job;
use lstm::tasks::modeldir::{self, Loaded, Task};

use crate::args::*;

use lstm::tasks::job::MAX_FORECAST_STEPS;

fn load(dir: &Path, want: Task, command: &str) -> Result<Loaded> {
    let l = modeldir::load_for_use(dir)
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    if l.meta.task != want {
        bail!(
            "{} holds a {} model; `lstm {command}` needs a {want} model (use `lstm {}` with it instead)",
            dir.display(),
            l.meta.task,
            match l.meta.task {
                Task::Text => "generate",
                Task::Forecast => "forecast",
                Task::Classify => "classify",
            }
        );
    }
    Ok(l)
}

/// `lstm generate`: streams a text model's continuation of `--prime` to stdout.
pub fn generate(a: &GenerateArgs) -> Result<()> {
    lstm::kernels::set_num_threads(a.threads);
    let mut l = load(&a.model, Task::Text, "generate")?;
    let o = job::GenerateOptions {
        prime: a.prime.clone(),
        length: a.length,
        temperature: a.temperature,
        top_k: a.top_k,
        bf16: a.bf16,
        seed: a.seed,
    };
    job::check_generate(&o)?;
    let unknown = job::unknown_tokens(&l, &a.prime)?;
    // the default prime, a line break, is no prime the user chose: a model of text without
    // line breaks starts from the unknown token without a note
    if !unknown.is_empty() && a.prime != "\n" {
        let mut distinct: Vec<&String> = Vec::new();
        for t in &unknown {
            if !distinct.contains(&t) {
                distinct.push(t);
            }
        }
        eprintln!(
            "note: {} character(s) of --prime are not in the model's vocabulary ({:?}{}); they are read as the unknown token",
            unknown.len(),
            distinct.iter().take(10).collect::<Vec<_>>(),
            if distinct.len() > 10 { ", ..." } else { "" }
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = write!(out, "{}", a.prime);
    let mut err = None;
    // a reader that went away (a closed pipe) stops the generation
    job::generate_until(&mut l, &o, &mut |piece| {
        if let Err(e) = write!(out, "{piece}").and_then(|_| out.flush()) {
            err = Some(e);
        }
        err.is_none()
    })?;
    let _ = writeln!(out);
    match err {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Some(e) => {
            Err(anyhow::Error::from(e)
                .context("cannot write the generated text to standard output"))
        }
        None => Ok(()),
    }
}

pub fn forecast(a: &ForecastArgs) -> Result<()> {
    if let Some(o) = &a.out {
        let same = match (std::fs::canonicalize(o), std::fs::canonicalize(&a.data)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        };
        if same {
            bail!(
                "--out {} is the --data file: the forecast would replace the history; write it to another file",
                o.display()
            );
        }
    }
    for (flag, p) in [("--out", &a.out), ("--plot", &a.plot)] {
        if let Some(p) = p {
            crate::paths::check_output(flag, p, Some(&a.model), &[&a.data])?;
            crate::paths::check_file_target(flag, p)?;
        }
    }
    let mut l = load(&a.model, Task::Forecast, "forecast")?;
    if l.meta.global.is_some() {
        return forecast_global(a, l);
    }
    if !a.quantiles.is_empty() {
        bail!("--quantiles needs a global forecaster; this model (--forecaster window) gives point forecasts");
    }
    let spec = job::series_spec(&l)?;
    let steps = a.steps.unwrap_or(spec.horizon);
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    if steps > MAX_FORECAST_STEPS {
        bail!(
            "--steps {steps} would need about {:.0} MB for the forecast and its output; forecast at most {MAX_FORECAST_STEPS} steps at once",
            steps as f64 * 48.0 / 1e6
        );
    }
    let fc = job::forecast(&mut l, &a.data, steps)?;
    let (table, pred, dates) = (&fc.table, &fc.values, &fc.dates);
    if let Some(blank) = dates
        .as_ref()
        .and_then(|d| d.iter().position(String::is_empty))
    {
        eprintln!(
            "note: the dates from step {} on cannot be written (past the year 9999, or a date format this does not continue: YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS]); their cells are left empty",
            blank + 1
        );
    }
    if let Some(k) = pred.iter().position(|v| !v.is_finite()) {
        eprintln!(
            "warning: the forecast overflows from step {} on (written `{}`): fed back on itself far past the horizon of {}, it grows without bound; forecast fewer steps",
            k + 1,
            pred[k],
            spec.horizon
        );
    }
    let target = &spec.columns[0];
    let csv = fc.to_csv();
    let draw = |tmp: &Path| -> Result<()> {
        let hist = &table.columns[0];
        let n = hist.len();
        let history = lstm::pages::plot::Line {
            label: "history",
            points: hist
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v))
                .collect(),
            color: plotters::style::RGBColor(31, 119, 180),
        };
        let mut fc_points = vec![((n - 1) as f64, hist[n - 1])];
        fc_points.extend(pred.iter().enumerate().map(|(i, &v)| ((n + i) as f64, v)));
        let fc = lstm::pages::plot::Line {
            label: "forecast",
            points: fc_points,
            color: plotters::style::RGBColor(214, 39, 40),
        };
        let x_label = match &spec.date_column {
            Some(d) => format!(
                "{d} (index; {} .. {})",
                table
                    .dates
                    .as_ref()
                    .and_then(|d| d.first().cloned())
                    .unwrap_or_default(),
                dates
                    .as_ref()
                    .and_then(|d| d.last().cloned())
                    .unwrap_or_default()
            ),
            None => "step".into(),
        };
        lstm::pages::plot::lines(
            tmp,
            &format!("{target}: history and {steps}-step forecast"),
            &x_label,
            target,
            &[history, fc],
        )?;
        Ok(())
    };
    write_outputs(a.out.as_deref(), &csv, a.plot.as_deref(), draw)?;
    if let Some(p) = &a.out {
        eprintln!("wrote {steps} forecast steps to {}", p.display());
    }
    if let Some(p) = &a.plot {
        eprintln!("wrote the plot to {}", p.display());
    }
    Ok(())
}

/// Writes a forecast's CSV to `out` (stdout without one) and its plot, drawn by `draw`, to
/// `plot`. The plot is drawn first, into a temporary file beside it renamed into place at the
/// end, so that an error leaves neither file (and an old one as it was).
fn write_outputs(
    out: Option<&Path>,
    csv: &str,
    plot: Option<&Path>,
    draw: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if let (Some(o), Some(p)) = (out, plot) {
        if crate::paths::same_file_target(o, p) {
            bail!(
                "--out and --plot both name {}; give the plot another file",
                p.display()
            );
        }
    }
    if let Some(p) = plot {
        let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase());
        if !matches!(ext.as_deref(), Some("png" | "svg")) {
            bail!(
                "--plot {}: name a .png or .svg file (the format follows the name)",
                p.display()
            );
        }
    }
    let staged = match plot {
        Some(p) => {
            let ext = p
                .extension()
                .map_or("svg".into(), |e| e.to_string_lossy().to_string());
            // through a link, the file it names is replaced (the link kept)
            let target = modeldir::link_target(p).context("--plot")?;
            let tmp = target.with_extension(format!("tmp{}.{ext}", std::process::id()));
            let pending = modeldir::Pending::new(&tmp);
            // a replaced plot keeps its permissions, as a replaced CSV does
            let keep = std::fs::metadata(&target).ok().map(|m| m.permissions());
            let drawn = modeldir::while_writing(|| {
                draw(&tmp).and_then(|()| match keep {
                    Some(p) => std::fs::set_permissions(&tmp, p).map_err(anyhow::Error::from),
                    None => Ok(()),
                })
            });
            if let Err(e) = drawn {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.context(format!("cannot draw the plot {}", p.display())));
            }
            Some((tmp, target, pending))
        }
        None => None,
    };
    let written = match out {
        Some(o) => modeldir::write_atomic(o, csv.as_bytes()).map_err(anyhow::Error::from),
        None => {
            out!("{csv}");
            Ok(())
        }
    };
    let placed = written.and_then(|_| match &staged {
        Some((tmp, target, _)) => modeldir::while_writing(|| std::fs::rename(tmp, target))
            .with_context(|| format!("cannot write {}", target.display())),
        None => Ok(()),
    });
    if placed.is_err() {
        if let Some((tmp, _, _)) = &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    placed
}

/// `lstm classify`: the likeliest label of each text, with its probability.
pub fn classify(a: &ClassifyArgs) -> Result<()> {
    let mut l = load(&a.model, Task::Classify, "classify")?;
    // another file's column names, for this run only (the model directory is not written)
    if let Some(c) = &a.text_column {
        l.meta.settings.text_column = c.clone();
    }
    let texts = match &a.data {
        Some(p) => {
            if !a.texts.is_empty() {
                bail!("give texts on the command line or --data, not both");
            }
            job::read_texts(&l, job::Texts::File(p))?
        }
        None => {
            if a.texts.is_empty() {
                bail!("nothing to classify: give one or more texts, or --data FILE.tsv");
            }
            a.texts.clone()
        }
    };
    let preds = job::classify(&mut l, &texts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // one line per text: a tab, newline or backslash inside a text or a label is written
    // escaped
    let escaped = |t: &str| -> String {
        t.chars()
            .flat_map(|c| match c {
                '\\' => vec!['\\', '\\'],
                '\t' => vec!['\\', 't'],
                '\n' => vec!['\\', 'n'],
                '\r' => vec!['\\', 'r'],
                c => vec![c],
            })
            .collect()
    };
    for (t, p) in texts.iter().zip(preds) {
        writeln!(
            out,
            "{}\t{:.4}\t{}",
            escaped(&p.label),
            p.probability,
            escaped(t)
        )
        .map_err(crate::stdout_err)?;
    }
    Ok(())
}

/// `lstm eval`: the model's metric on a file, as text or JSON.
pub fn eval(a: &EvalArgs) -> Result<()> {
    for (flag, p) in [
        ("--per-series", &a.per_series),
        ("--forecasts", &a.forecasts),
    ] {
        if let Some(p) = p {
            crate::paths::check_output(flag, p, Some(&a.model), &[&a.data])?;
            crate::paths::check_file_target(flag, p)?;
        }
    }
    if let (Some(p), Some(f)) = (&a.per_series, &a.forecasts) {
        if crate::paths::same_file_target(p, f) {
            bail!(
                "--per-series and --forecasts both name {}; give each its own file",
                p.display()
            );
        }
    }
    let mut l = modeldir::load_for_use(&a.model)
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    if let (Some(flag), None) = (
        [
            ("--per-series", &a.per_series),
            ("--forecasts", &a.forecasts),
        ]
        .iter()
        .find(|(_, p)| p.is_some())
        .map(|(f, _)| f),
        &l.meta.global,
    ) {
        bail!(
            "{flag} is for a global forecaster's backtest; {} holds a {} model, scored as a whole",
            a.model.display(),
            if l.meta.task == Task::Forecast {
                "window forecaster (--forecaster window)".to_string()
            } else {
                l.meta.task.to_string()
            }
        );
    }
    if a.text_column.is_some() || a.label_column.is_some() {
        if l.meta.task != Task::Classify {
            bail!(
                "--text-column and --label-column name a classifier's columns; {} holds a {} model",
                a.model.display(),
                l.meta.task
            );
        }
        // another file's column names, for this run only (the model directory is not written)
        if let Some(c) = &a.text_column {
            l.meta.settings.text_column = c.clone();
        }
        if let Some(c) = &a.label_column {
            l.meta.settings.label_column = c.clone();
        }
    }
    // scoring a large text takes minutes: a bar on a terminal's standard error (nothing in
    // a pipe or a file), cleared before the report
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            // as training's bar
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:30}] {percent:>3}% eta {eta:<5} scoring {len} characters",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let shown = bar.clone();
    let report = job::evaluate(
        &mut l,
        &a.data,
        &job::EvalOptions {
            tail: a.tail,
            stream: a.stream,
            generator: a.generator.clone(),
            holdout: a.holdout,
            windows: a.windows,
            forecasts: a.forecasts.is_some(),
            per_series: a.per_series.is_some(),
            progress: lstm::tasks::Progress::new(move |done, total| {
                shown.set_length(total);
                shown.set_position(done);
            }),
        },
    );
    bar.finish_and_clear();
    let report = report?;
    // the files first (a report printed means its files are there), both staged before
    // either is put in place: one that cannot be written leaves the other as it was
    if let job::EvalReport::Backtest(b) = &report {
        let mut staged = Vec::new();
        if let Some(p) = &a.per_series {
            let s = modeldir::stage_atomic(p, b.per_series_csv().as_bytes())
                .with_context(|| format!("--per-series: cannot write {}", p.display()))?;
            staged.push((
                s,
                format!("--per-series: cannot write {}", p.display()),
                format!(
                    "wrote the scores of {} series in {} window(s) to {}",
                    b.series,
                    b.windows,
                    p.display()
                ),
            ));
        }
        if let (Some(p), Some(csv)) = (&a.forecasts, &b.forecasts_csv) {
            let s = modeldir::stage_atomic(p, csv.as_bytes())
                .with_context(|| format!("--forecasts: cannot write {}", p.display()))?;
            staged.push((
                s,
                format!("--forecasts: cannot write {}", p.display()),
                format!(
                    "wrote the forecasts of {} series in {} window(s) of {} steps to {}",
                    b.series,
                    b.windows,
                    b.horizon,
                    p.display()
                ),
            ));
        }
        // a pipe or device first: writing to it can fail (a reader gone), a rename hardly
        staged.sort_by_key(|(s, _, _)| !s.is_stream());
        for (s, failed, said) in staged {
            s.commit().context(failed)?;
            eprintln!("{said}");
        }
    }
    if a.json {
        outln!("{}", report.to_json());
    } else {
        out!("{report}");
    }
    Ok(())
}

/// `lstm forecast` with a global forecaster: every series of the file, median and quantiles.
fn forecast_global(a: &ForecastArgs, mut l: lstm::tasks::modeldir::Loaded) -> Result<()> {
    let levels = if a.quantiles.is_empty() {
        vec![0.025, 0.975]
    } else {
        a.quantiles.clone()
    };
    let fc = job::forecast_global(&mut l, &a.data, a.steps, &levels)?;
    let (history, f) = &fc.series[0];
    let draw = |tmp: &Path| -> Result<()> {
        let (lo, hi) = (
            levels.iter().cloned().fold(f64::NAN, f64::min),
            levels.iter().cloned().fold(f64::NAN, f64::max),
        );
        let band = |level: f64| {
            f.quantiles
                .iter()
                .find(|(q, _)| *q == level)
                .map(|(_, v)| v.clone())
        };
        let target = &fc.spec.target;
        lstm::pages::plot::forecast_band(
            tmp,
            // one level (or none) shades no band, and says so (a probe, 2026-12-08: "0.9-0.9
            // quantiles" over no band)
            &if lo < hi {
                format!(
                    "{target} of `{}`: history, median forecast and {lo}-{hi} quantiles",
                    f.id
                )
            } else {
                format!("{target} of `{}`: history and median forecast", f.id)
            },
            target,
            history,
            &f.median,
            band(lo).zip(band(hi)).filter(|_| lo < hi),
        )?;
        Ok(())
    };
    write_outputs(a.out.as_deref(), &fc.csv, a.plot.as_deref(), draw)?;
    if let Some(p) = &a.out {
        let steps = fc.series.first().map_or(0, |(_, f)| f.median.len());
        eprintln!(
            "wrote {steps} forecast steps of {} series to {}",
            fc.series.len(),
            p.display()
        );
    }
    if let Some(p) = &a.plot {
        eprintln!(
            "drew series `{}` ({} steps of history) into {}",
            f.id,
            history.len(),
            p.display()
        );
    }
    Ok(())
}
