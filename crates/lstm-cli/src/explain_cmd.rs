//! `lstm explain`, `lstm explore` and `lstm report`: HTML pages that show what a model's cells
//! do and how its training went.

use std::path::Path;

use anyhow::{bail, Context, Result};
use lstm::explain::{self, UnitWeights};
use lstm::tasks::modeldir::{self, Loaded, Task};

use lstm::pages::html::Plot;

use crate::args::{ExplainArgs, ExploreArgs, ReportArgs};

fn load(dir: &Path) -> Result<Loaded> {
    modeldir::load_for_use(dir)
        .with_context(|| format!("cannot load the model in {}", dir.display()))
}

/// Refuses a page's `--out` that would destroy something: a file inside the model directory,
/// one of the command's input files, or an existing file that is not an HTML page.
fn check_page_out(out: &Path, model: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    crate::paths::check_out_file(out, model, inputs)?;
    crate::paths::check_file_target("--out", out)?;
    let o = crate::paths::resolved(out);
    let html = matches!(
        out.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("html" | "htm")
    );
    if o.exists() && !(html && o.is_file()) {
        bail!(
            "--out {} exists and is not an .html page; refusing to replace it: choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// The model directory's loss curve, if it holds one as a regular file (a pipe or device there
/// would block or never end).
fn loss_svg(model: &Path) -> Option<String> {
    let p = model.join("loss.svg");
    if !std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
        return None;
    }
    std::fs::read_to_string(p).ok()
}

fn write(path: &Path, page: &str) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("html") {
        eprintln!(
            "note: {} does not end in .html; browsers may not open it as a page",
            path.display()
        );
    }
    modeldir::write_atomic(path, page.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

pub fn explain(a: &ExplainArgs) -> Result<()> {
    let text_file: Vec<&Path> = a.text.iter().map(|p| p.as_path()).collect();
    check_page_out(&a.out, Some(&a.model), &text_file)?;
    let l = load(&a.model)?;
    if l.meta.task != Task::Text {
        bail!(
            "{} holds a {} model; `lstm explain` needs a text model (from `lstm train text`)",
            a.model.display(),
            l.meta.task
        );
    }
    let vocab = l
        .meta
        .vocab
        .as_ref()
        .context("the model has no vocabulary")?;
    let text = match (&a.text, &a.prime) {
        (Some(path), _) => lstm::data::text::read_text_for(path, Some(vocab))
            .with_context(|| format!("cannot read the text file {}", path.display()))?,
        (None, Some(t)) => t.clone(),
        (None, None) => bail!("give the text with --text FILE or --prime TEXT"),
    };
    if a.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let tokens = vocab.split(&text);
    if tokens.is_empty() {
        bail!("the text is empty; give at least one character");
    }
    let text = if tokens.len() > a.max_tokens {
        eprintln!(
            "note: the text has {} tokens; explaining the first {} (raise --max-tokens for more)",
            tokens.len(),
            a.max_tokens
        );
        match vocab.kind {
            lstm::data::vocab::TokenKind::Char => tokens[..a.max_tokens].concat(),
            lstm::data::vocab::TokenKind::Word => tokens[..a.max_tokens].join(" "),
        }
    } else {
        text
    };
    let unknown = vocab
        .split(&text)
        .iter()
        .filter(|t| vocab.id(t).is_none())
        .count();
    if unknown > 0 {
        eprintln!("note: {unknown} token(s) of the text are not in the model's vocabulary; they are read as the unknown token");
    }
    let e = explain::explain(&l.model, vocab, &text)
        .with_context(|| format!("cannot explain the model in {}", a.model.display()))?;
    let svg = loss_svg(&a.model);
    let page = lstm::pages::html::explain_page(&e, &a.model.display().to_string(), svg.as_deref())?;
    write(&a.out, &page)?;
    let n = e.trace.tokens.len();
    if n < explain::MIN_RANKED_TOKENS {
        eprintln!(
            "note: {n} token(s) are too few to rank units by correlation (from {} on); the page shows the trace alone",
            explain::MIN_RANKED_TOKENS
        );
    }
    if let Some(best) = e.overall.first() {
        eprintln!(
            "most interpretable unit: layer {}, unit {} ({}, r = {:.2} with {})",
            best.layer,
            best.unit,
            best.quantity.short(),
            best.correlation,
            best.feature
        );
    }
    Ok(())
}

pub fn explore(a: &ExploreArgs) -> Result<()> {
    check_page_out(&a.out, a.model.as_deref(), &[])?;
    let (unit, title) = match &a.model {
        None => (UnitWeights::default(), "a made-up unit".to_string()),
        Some(dir) => {
            let l = load(dir)?;
            let mut u = explain::unit_weights(&l.model, l.meta.vocab.as_ref(), a.layer, a.unit)
                .with_context(|| {
                    format!(
                        "cannot show unit {} of layer {} of {}",
                        a.unit,
                        a.layer,
                        dir.display()
                    )
                })?;
            u.source = format!(
                "layer {}, unit {} of {}: z is the unit's own previous hidden state, w its recurrent weight on it, b its biases",
                a.layer,
                a.unit,
                dir.display()
            );
            (u, format!("unit {} of layer {}", a.unit, a.layer))
        }
    };
    let page = lstm::pages::html::explore_page(&unit, &title)?;
    write(&a.out, &page)
}

pub fn report(a: &ReportArgs) -> Result<()> {
    let plots: Vec<&Path> = a.plot.iter().map(|p| p.as_path()).collect();
    check_page_out(&a.out, Some(&a.model), &plots)?;
    let l = load(&a.model)?;
    let cfg = l.model.config();
    let cell = match cfg.mode {
        lstm::cell::Mode::Lstm => match (cfg.peephole, cfg.coupled) {
            (false, false) => "LSTM".to_string(),
            (p, c) => format!(
                "LSTM ({}{})",
                if p { "peephole" } else { "" },
                if c {
                    if p {
                        "+coupled"
                    } else {
                        "coupled"
                    }
                } else {
                    ""
                }
            ),
        },
        m => m.torch_name().to_string(),
    };
    let last = |v: &[(u64, f32)]| {
        v.last()
            .map_or("-".to_string(), |(s, x)| format!("{x:.4} (step {s})"))
    };
    let facts = vec![
        ("task".to_string(), l.meta.task.to_string()),
        ("cell".to_string(), cell),
        (
            "layers x units".to_string(),
            format!(
                "{} x {}{}",
                cfg.num_layers,
                cfg.hidden_size,
                if cfg.bidirectional {
                    ", bidirectional"
                } else {
                    ""
                }
            ),
        ),
        ("parameters".to_string(), l.model.store.len().to_string()),
        ("steps trained".to_string(), l.state.step.to_string()),
        ("last training loss".to_string(), last(&l.state.train_loss)),
        ("last validation loss".to_string(), last(&l.state.val_loss)),
    ];
    let mut plots = Vec::new();
    if let Some(svg) = loss_svg(&a.model) {
        plots.push(("Loss".to_string(), Plot::Svg(svg)));
    }
    for p in &a.plot {
        let bytes =
            std::fs::read(p).with_context(|| format!("cannot read the plot {}", p.display()))?;
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().to_string());
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            plots.push((name, Plot::Png(bytes)));
        } else if let Ok(text) = String::from_utf8(bytes) {
            if !text.contains("<svg") {
                bail!("{} is neither a PNG nor an SVG file", p.display());
            }
            plots.push((name, Plot::Svg(text)));
        } else {
            bail!("{} is neither a PNG nor an SVG file", p.display());
        }
    }
    if plots.is_empty() {
        eprintln!("note: {} has no loss.svg and no --plot was given; the page shows only the model's facts", a.model.display());
    }
    let page = lstm::pages::html::plots_page(
        &format!("Training: {}", a.model.display()),
        "plots written by lstm train and lstm forecast, in one page",
        &facts,
        &plots,
    );
    write(&a.out, &page)
}
