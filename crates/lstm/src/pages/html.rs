//! Self-contained HTML pages: the activations of a trained model ([`explain_page`]), the
//! interactive one-unit cell ([`explore_page`]) and a model's training plots ([`plots_page`]).
//!
//! A page is one file with its style sheet, script and data inline (no network access when it
//! is viewed). The templates live in `crates/lstm/assets/` and are compiled in with
//! `include_str!`; the library's numbers go in as JSON in a
//! `<script type="application/json">` element (`explain-data`, `explore-data`), which the
//! page's hand-written script reads. [`embedded_json`] reads it back (the tests use it to check
//! that a page shows the library's values).
//!
//! ```
//! use lstm::explain::UnitWeights;
//! let page = lstm::pages::html::explore_page(&UnitWeights::default(), "a made-up unit").unwrap();
//! let data = lstm::pages::html::embedded_json(&page, "explore-data").unwrap();
//! assert_eq!(data["unit"]["b"][1], 1.0); // the forget gate's bias
//! ```

use serde::Serialize;

use crate::error::{Error, Result};
use crate::explain::{Explanation, UnitWeights};

const STYLE: &str = include_str!("../../assets/style.css");
const EXPLAIN_HTML: &str = include_str!("../../assets/explain.html");
const EXPLAIN_JS: &str = include_str!("../../assets/explain.js");
const EXPLORE_HTML: &str = include_str!("../../assets/explore.html");
const EXPLORE_JS: &str = include_str!("../../assets/explore.js");

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: every `<` is written `\u003c`, so no string in it
/// can close the element (and `<` only ever occurs inside JSON strings).
fn script_json<T: Serialize>(value: &T) -> Result<String> {
    let json = serde_json::to_string(value).map_err(|e| Error::Format {
        path: "page data".into(),
        reason: e.to_string(),
    })?;
    Ok(json.replace('<', "\\u003c"))
}

fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    // one pass over the template, so nothing inserted is ever read as a placeholder
    let mut page =
        String::with_capacity(template.len() + parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let key_end = rest[start..].find("}}").map(|e| start + e);
        let value = key_end.and_then(|end| {
            let key = &rest[start + 2..end];
            parts.iter().find(|p| p.0 == key).map(|p| (p.1, end + 2))
        });
        match value {
            Some((v, after)) => {
                page.push_str(&rest[..start]);
                page.push_str(v);
                rest = &rest[after..];
            }
            None => {
                page.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    page.push_str(rest);
    page
}

/// Rounds to 4 decimals: the page shows at most 4, and the file stays a quarter smaller.
fn round4(values: &mut [f32]) {
    for v in values {
        *v = (*v * 1e4).round() / 1e4;
    }
}

/// The explain page of an [`Explanation`]: the text coloured by a chosen unit's value, the
/// unit picker, the unit rankings, next-token predictions on hover and the gate-saturation
/// plots. `title` names the model; `training_svg`, when given (a model directory's
/// `loss.svg`), is shown as an image ([`svg_img`]) in a "Training" section. Activations are stored rounded to
/// 4 decimals.
///
/// # Errors
/// [`Error::Format`] if the data cannot be serialised (non-finite values are written as
/// `null` and cannot fail).
pub fn explain_page(
    explanation: &Explanation,
    title: &str,
    training_svg: Option<&str>,
) -> Result<String> {
    let mut e = explanation.clone();
    for layer in &mut e.trace.layers {
        for v in [
            &mut layer.i,
            &mut layer.f,
            &mut layer.g,
            &mut layer.o,
            &mut layer.c,
            &mut layer.h,
        ] {
            round4(v);
        }
    }
    let training = match training_svg {
        Some(svg) => format!(
            "<section>\n<h2>Training</h2>\n<div class=\"plot\">{}</div>\n</section>",
            svg_img(svg, "training loss")
        ),
        None => String::new(),
    };
    Ok(fill(
        EXPLAIN_HTML,
        &[
            ("STYLE", STYLE),
            ("SCRIPT", EXPLAIN_JS),
            ("TRAINING", &training),
            ("DATA", &script_json(&e)?),
            ("TITLE", &escape(title)),
        ],
    ))
}

#[derive(Serialize)]
struct ExploreData<'a> {
    unit: &'a UnitWeights,
}

/// The explore page: sliders for `z` (previous hidden state plus input), the previous cell
/// state and the unit's four weights and biases, with `f, i, g, o, c_t, h_t` recomputed live,
/// the equations with the current numbers and the forget/learn table. Starting slider values
/// can be given in the URL fragment (`page.html#z=0.5&c=-1&wf=2&bi=0.3&tok=4`); the computed
/// values are in elements `out-i`, `out-f`, `out-g`, `out-o`, `out-c`, `out-h`
/// (`data-value` holds the full number).
///
/// # Errors
/// [`Error::Format`] if the data cannot be serialised.
pub fn explore_page(unit: &UnitWeights, title: &str) -> Result<String> {
    Ok(fill(
        EXPLORE_HTML,
        &[
            ("STYLE", STYLE),
            ("SCRIPT", EXPLORE_JS),
            ("DATA", &script_json(&ExploreData { unit })?),
            ("TITLE", &escape(title)),
        ],
    ))
}

/// Reads back the JSON a page embeds in `<script type="application/json" id="{id}">`.
///
/// # Errors
/// [`Error::Format`] if the element is missing or its content is not JSON.
pub fn embedded_json(page: &str, id: &str) -> Result<serde_json::Value> {
    let bad = |reason: String| Error::Format {
        path: "HTML page".into(),
        reason,
    };
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = page
        .find(&open)
        .ok_or_else(|| bad(format!("no element with id `{id}`")))?
        + open.len();
    let len = page[start..]
        .find("</script>")
        .ok_or_else(|| bad(format!("element `{id}` is not closed")))?;
    serde_json::from_str(&page[start..start + len]).map_err(|e| bad(e.to_string()))
}

const PLOTS_HTML: &str = include_str!("../../assets/plots.html");

/// An SVG document as an `<img>` of a `data:` URL: drawn as inline SVG is, but a script or
/// a link inside it (a model directory is a file anyone may have edited) does not run.
pub fn svg_img(svg: &str, alt: &str) -> String {
    format!(
        "<img alt=\"{}\" style=\"max-width:100%\" src=\"data:image/svg+xml;base64,{}\">",
        escape(alt),
        base64(svg.as_bytes())
    )
}

/// A picture for [`plots_page`].
#[derive(Clone, Debug, PartialEq)]
pub enum Plot {
    /// An SVG document (such as a model directory's `loss.svg`), shown as an image
    /// ([`svg_img`]).
    Svg(String),
    /// A PNG file's bytes (such as `lstm forecast --plot`'s), shown as a `data:` image.
    Png(Vec<u8>),
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648), for `data:` URLs.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A page of training plots in the style of the other pages: a table of `facts` (name,
/// value) about the model, then one section per plot with its caption.
pub fn plots_page(
    title: &str,
    subtitle: &str,
    facts: &[(String, String)],
    plots: &[(String, Plot)],
) -> String {
    let mut body = String::new();
    if !facts.is_empty() {
        body.push_str("<section>\n<h2>The model</h2>\n<table>\n");
        for (k, v) in facts {
            body.push_str(&format!(
                "<tr><th class=\"l\">{}</th><td class=\"l mono\">{}</td></tr>\n",
                escape(k),
                escape(v)
            ));
        }
        body.push_str("</table>\n</section>\n");
    }
    for (caption, plot) in plots {
        body.push_str(&format!(
            "<section>\n<h2>{}</h2>\n<div class=\"plot\">",
            escape(caption)
        ));
        match plot {
            Plot::Svg(svg) => body.push_str(&svg_img(svg, caption)),
            Plot::Png(png) => body.push_str(&format!(
                "<img alt=\"{}\" style=\"max-width:100%\" src=\"data:image/png;base64,{}\">",
                escape(caption),
                base64(png)
            )),
        }
        body.push_str("</div>\n</section>\n");
    }
    fill(
        PLOTS_HTML,
        &[
            ("STYLE", STYLE),
            ("TITLE", &escape(title)),
            ("SUBTITLE", &escape(subtitle)),
            ("BODY", &body),
        ],
    )
}
