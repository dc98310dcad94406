//! Using a trained model: `generate`, `forecast`, `classify`, `eval`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use lstm::data::labelled::Examples;
use lstm::data::series;
use lstm::tasks::classify;
use lstm::tasks::modeldir::{self, Loaded, Task};
use lstm::tasks::text::{self, Encoded};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::args::*;
use crate::train_cmd::read_text;

/// The longest forecast `lstm forecast` computes at once.
const MAX_FORECAST_STEPS: usize = 10_000_000;

fn load(dir: &Path, want: Task, command: &str) -> Result<Loaded> {
    let l = modeldir::load(dir)
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

pub fn generate(a: &GenerateArgs) -> Result<()> {
    lstm::kernels::set_num_threads(a.threads);
    let mut l = load(&a.model, Task::Text, "generate")?;
    if !(a.temperature.is_finite() && a.temperature > 0.0) {
        bail!(
            "--temperature must be greater than 0 (try 0.5 to 1.0), got {}",
            a.temperature
        );
    }
    if a.prime.is_empty() {
        bail!("--prime is empty; give at least one character (the default is a newline)");
    }
    let vocab = l
        .meta
        .vocab
        .clone()
        .context("the model has no vocabulary")?;
    let unknown: Vec<String> = vocab
        .split(&a.prime)
        .into_iter()
        .filter(|t| vocab.id(t).is_none())
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "note: {} character(s) of --prime are not in the model's vocabulary ({:?}); they are read as the unknown token",
            unknown.len(),
            unknown.iter().take(5).collect::<Vec<_>>()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = write!(out, "{}", a.prime);
    let mut err = None;
    text::generate(
        &mut l.model,
        &vocab,
        &a.prime,
        a.length,
        a.temperature,
        a.top_k,
        if a.bf16 {
            lstm::model::infer::Precision::Bf16
        } else {
            lstm::model::infer::Precision::F32
        },
        &mut rng,
        &mut |piece| {
            if err.is_none() {
                if let Err(e) = write!(out, "{piece}").and_then(|_| out.flush()) {
                    err = Some(e);
                }
            }
        },
    )?;
    let _ = writeln!(out);
    match err {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub fn forecast(a: &ForecastArgs) -> Result<()> {
    let mut l = load(&a.model, Task::Forecast, "forecast")?;
    let spec = l
        .meta
        .series
        .clone()
        .context("the model has no series description")?;
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
    let table = series::read_table(&a.data, &spec.columns, spec.date_column.as_deref())?;
    let pred = spec.forecast(&mut l.model, &table, steps)?;
    let dates = table
        .dates
        .as_ref()
        .and_then(|d| series::next_dates(d, steps));
    let target = &spec.columns[0];
    let mut csv = String::new();
    match (&spec.date_column, &dates) {
        (Some(dc), Some(_)) => csv.push_str(&format!("step,{dc},{target}\n")),
        _ => csv.push_str(&format!("step,{target}\n")),
    }
    for (i, v) in pred.iter().enumerate() {
        match &dates {
            Some(d) => csv.push_str(&format!("{},{},{v}\n", i + 1, d[i])),
            None => csv.push_str(&format!("{},{v}\n", i + 1)),
        }
    }
    match &a.out {
        Some(p) => {
            modeldir::write_atomic(p, csv.as_bytes())?;
            eprintln!("wrote {steps} forecast steps to {}", p.display());
        }
        None => print!("{csv}"),
    }
    if let Some(p) = &a.plot {
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
        // drawn into a temporary file renamed into place: a failed plot leaves no half file
        let ext = p
            .extension()
            .map_or("svg".into(), |e| e.to_string_lossy().to_string());
        let tmp = p.with_extension(format!("tmp{}.{ext}", std::process::id()));
        let drawn = lstm::pages::plot::lines(
            &tmp,
            &format!("{target}: history and {steps}-step forecast"),
            &x_label,
            target,
            &[history, fc],
        )
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))
        });
        if drawn.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        drawn?;
        eprintln!("wrote the plot to {}", p.display());
    }
    Ok(())
}

pub fn classify(a: &ClassifyArgs) -> Result<()> {
    let mut l = load(&a.model, Task::Classify, "classify")?;
    let vocab = l
        .meta
        .vocab
        .clone()
        .context("the model has no vocabulary")?;
    let labels = l.meta.labels.clone().context("the model has no labels")?;
    let s = &l.meta.settings;
    let texts: Vec<String> = match &a.data {
        Some(p) => {
            if !a.texts.is_empty() {
                bail!("give texts on the command line or --data, not both");
            }
            let label_col = s.label_column.clone();
            read_texts(p, &s.text_column, &label_col)?
        }
        None => {
            if a.texts.is_empty() {
                bail!("nothing to classify: give one or more texts, or --data FILE.tsv");
            }
            a.texts.clone()
        }
    };
    let tokens = lstm::data::labelled::encode_texts(&vocab, &texts, s.max_len);
    let probs = classify::predict(&mut l.model, &tokens, 64)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (t, p) in texts.iter().zip(probs) {
        let best = p
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > p[b] { i } else { b });
        writeln!(out, "{}\t{:.4}\t{}", labels[best], p[best], t)?;
    }
    Ok(())
}

/// Texts of a file's text column (the label column may be absent).
fn read_texts(path: &Path, text_col: &str, label_col: &str) -> Result<Vec<String>> {
    match lstm::data::labelled::read_labelled(path, text_col, label_col) {
        Ok(l) => Ok(l.texts),
        Err(_) => Ok(lstm::data::labelled::read_labelled(path, text_col, text_col)?.texts),
    }
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    let mut l = modeldir::load(&a.model)
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    if let Some(t) = a.tail {
        if !(t > 0.0 && t <= 1.0) {
            bail!("--tail must be in (0, 1], got {t}");
        }
    }
    let s = l.meta.settings.clone();
    match l.meta.task {
        Task::Text => {
            let vocab = l
                .meta
                .vocab
                .clone()
                .context("the model has no vocabulary")?;
            let mut text = read_text(&a.data)?;
            if let Some(t) = a.tail {
                let chars: Vec<(usize, char)> = text.char_indices().collect();
                let cut = chars.len() - ((chars.len() as f64 * t) as usize).max(2).min(chars.len());
                text = text[chars[cut].0..].to_string();
            }
            let enc = Encoded::new(&vocab, &text);
            let e = if let Some(p) = &a.generator {
                let precision = if p == "bf16" {
                    lstm::model::infer::Precision::Bf16
                } else {
                    lstm::model::infer::Precision::F32
                };
                text::evaluate_generator(&l.model, &enc, precision)?
            } else if a.stream {
                text::evaluate_stream(&mut l.model, &enc, s.seq_len, s.batch)?
            } else {
                text::evaluate(&mut l.model, &enc, s.seq_len, s.batch)?
            };
            if a.json {
                println!(
                    "{}",
                    json!({"task": "text", "data": a.data, "mode": match (&a.generator, a.stream) { (Some(p), _) => format!("generator-{p}"), (None, true) => "stream".into(), _ => "windows".into() }, "nats_per_char": e.nats_per_token, "bits_per_char": e.bits_per_token, "chars": e.tokens, "skipped_unknown": e.skipped})
                );
            } else {
                println!(
                    "{}: {:.4} nats/char, {:.4} bits/char over {} characters ({} unknown target characters skipped)",
                    a.data.display(),
                    e.nats_per_token,
                    e.bits_per_token,
                    e.tokens,
                    e.skipped
                );
            }
        }
        Task::Forecast => {
            let spec = l
                .meta
                .series
                .clone()
                .context("the model has no series description")?;
            let table = series::read_table(&a.data, &spec.columns, spec.date_column.as_deref())?;
            let n = table.rows();
            let hold = a.holdout.unwrap_or(if s.holdout > 0 {
                s.holdout
            } else {
                spec.horizon
            });
            let lag = series::transform_lag(spec.transform);
            if hold == 0 || n < hold + spec.window + lag {
                bail!(
                    "{}: {n} rows are too few to score the last {hold} with a window of {}",
                    a.data.display(),
                    spec.window
                );
            }
            let actual = &table.columns[0][n - hold..];
            let mut one = Vec::with_capacity(hold);
            for i in 0..hold {
                one.push(spec.forecast(&mut l.model, &table.head(n - hold + i), 1)?[0]);
            }
            let h_steps = if spec.columns.len() > 1 {
                hold.min(spec.horizon)
            } else {
                hold
            };
            let multi = spec.forecast(&mut l.model, &table.head(n - hold), h_steps)?;
            let m1 = series::metrics(&one, actual);
            let mh = series::metrics(&multi, &actual[..h_steps]);
            // the seasonal-naive and naive baselines on the same points, for scale
            let hist = &table.columns[0][..n - hold];
            let naive: Vec<f64> = vec![*hist.last().expect("rows"); h_steps];
            let mn = series::metrics(&naive, &actual[..h_steps]);
            if a.json {
                println!(
                    "{}",
                    json!({"task": "forecast", "data": a.data, "holdout": hold, "one_step": m1, "multi_step": mh, "multi_steps": h_steps, "naive_last_value": mn})
                );
            } else {
                println!(
                    "{}: last {hold} rows of `{}`",
                    a.data.display(),
                    spec.columns[0]
                );
                println!(
                    "  one-step forecasts:      RMSE {:.4}  MAE {:.4}  MAPE {:.2}%",
                    m1.rmse, m1.mae, m1.mape
                );
                println!(
                    "  {h_steps}-step forecast:        RMSE {:.4}  MAE {:.4}  MAPE {:.2}%",
                    mh.rmse, mh.mae, mh.mape
                );
                println!(
                    "  (last-value baseline:    RMSE {:.4}  MAE {:.4}  MAPE {:.2}%)",
                    mn.rmse, mn.mae, mn.mape
                );
            }
        }
        Task::Classify => {
            let vocab = l
                .meta
                .vocab
                .clone()
                .context("the model has no vocabulary")?;
            let labels = l.meta.labels.clone().context("the model has no labels")?;
            let mut d =
                lstm::data::labelled::read_labelled(&a.data, &s.text_column, &s.label_column)?;
            if let Some(t) = a.tail {
                let n = d.texts.len();
                let cut = n - ((n as f64 * t) as usize).max(1).min(n);
                d.texts.drain(..cut);
                d.labels.drain(..cut);
            }
            let mut ys = Vec::new();
            for (i, lab) in d.labels.iter().enumerate() {
                match labels.iter().position(|x| x == lab) {
                    Some(p) => ys.push(p as u32),
                    None => bail!(
                        "{} row {}: label `{lab}` is not one the model knows ({:?})",
                        a.data.display(),
                        i + 1,
                        labels
                    ),
                }
            }
            let ex = Examples {
                tokens: lstm::data::labelled::encode_texts(&vocab, &d.texts, s.max_len),
                labels: ys,
            };
            let e = classify::evaluate(&mut l.model, &ex, 64, labels.len())?;
            if a.json {
                println!(
                    "{}",
                    json!({"task": "classify", "data": a.data, "accuracy": e.accuracy, "loss": e.loss, "n": e.n, "labels": labels, "confusion": e.confusion})
                );
            } else {
                println!(
                    "{}: accuracy {:.2}% on {} texts (loss {:.4})",
                    a.data.display(),
                    100.0 * e.accuracy,
                    e.n,
                    e.loss
                );
                println!("confusion (rows: true label, columns: predicted):");
                print!("{:>12}", "");
                for lab in &labels {
                    print!("{lab:>10}");
                }
                println!();
                for (i, row) in e.confusion.iter().enumerate() {
                    print!("{:>12}", labels[i]);
                    for c in row {
                        print!("{c:>10}");
                    }
                    println!();
                }
            }
        }
    }
    Ok(())
}
