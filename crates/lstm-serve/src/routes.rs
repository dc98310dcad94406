//! The endpoints: request shapes, their checks (each error names its field), and the answers.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{ClassifyJob, ForecastJob, SeriesIn};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::server::{AppState, Served};
use crate::text::{Completion, Event};
use lstm::tasks::text::TextStream;

/// Events a completion's channel holds before its stream waits for the client to read.
const EVENTS: usize = 64;

/// The most texts of one classification request, and series of one forecast request: each
/// costs memory and time on the model's worker while others wait.
pub const MAX_ITEMS: usize = 1000;

/// Checks that a request holds between 1 and [`MAX_ITEMS`] `what` (texts, series).
fn count(what: &str, n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::bad_param(
            what,
            format!("give at least one of the {what}"),
        ));
    }
    if n > MAX_ITEMS {
        return Err(ApiError::bad_param(
            what,
            format!("{n} {what} in one request; send at most {MAX_ITEMS} (split them over several requests)"),
        ));
    }
    Ok(())
}

/// The longest stop string, in characters (every token is checked against the stop strings).
pub const MAX_STOP_CHARS: usize = 1000;

/// A prompt: a string, or OpenAI's list form with exactly one string.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "prompt must be a string, or a list of one string (token ids are not accepted: the model reads characters)"
)]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// A list (only one prompt per request is served).
    Many(Vec<String>),
}

/// Stop strings: one, or a list of up to 4.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "stop must be a string or a list of up to 4 strings"
)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `POST /v1/completions`'s body (OpenAI's fields; `top_k` is an extension).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// A served text model's name.
    pub model: String,
    /// The text to continue.
    pub prompt: Prompt,
    /// Tokens to generate (default 16, at most `--max-tokens`).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Softmax temperature, 0 (greedy) or more; default 1.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Sample among the `top_k` likeliest tokens (0: all; default 0).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Nucleus sampling, in (0, 1]; default 1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// The sampling seed (default: a random one); a negative one, as OpenAI's signed seeds
    /// allow, is read as its 64 bits (`-1` is `lstm generate --seed 18446744073709551615`).
    #[serde(default, deserialize_with = "signed_seed")]
    pub seed: Option<u64>,
    /// Stop strings: the text ends before the first one generated.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Answer as Server-Sent Events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `{"include_usage": true}`: a last chunk with the usage.
    #[serde(default, deserialize_with = "crate::json::object")]
    pub stream_options: Option<StreamOptions>,
    /// Completions per prompt: only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// The caller's id (ignored).
    #[serde(default)]
    pub user: Option<String>,
    /// OpenAI fields served only at their defaults, which clients send explicitly: `echo`
    /// false, `logprobs` null, `presence_penalty` and `frequency_penalty` 0, `best_of` 1,
    /// `suffix` null, `logit_bias` empty; anything else is refused naming the field.
    #[serde(default)]
    pub echo: Option<bool>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub logprobs: Option<u32>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub best_of: Option<u32>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub suffix: Option<String>,
    /// See [`CompletionRequest::echo`].
    #[serde(default)]
    pub logit_bias: Option<serde_json::Map<String, Value>>,
}

impl CompletionRequest {
    /// Refuses the OpenAI fields this server takes only at their defaults when they are set
    /// to anything else.
    fn check_defaults(&self) -> Result<(), ApiError> {
        let not = |field: &str, what: &str| {
            Err(ApiError::bad_param(
                field,
                format!("{what}: not served; leave {field} out (or at its default)"),
            ))
        };
        if self.echo == Some(true) {
            return not("echo", "echoing the prompt");
        }
        if self.logprobs.is_some() {
            return not("logprobs", "token log-probabilities");
        }
        if self.presence_penalty.is_some_and(|p| p != 0.0) {
            return not("presence_penalty", "a presence penalty");
        }
        if self.frequency_penalty.is_some_and(|p| p != 0.0) {
            return not("frequency_penalty", "a frequency penalty");
        }
        if self.best_of.is_some_and(|b| b != 1) {
            return not("best_of", "best_of other than 1");
        }
        if self.suffix.is_some() {
            return not("suffix", "a suffix (insertion)");
        }
        if self.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return not("logit_bias", "a logit bias");
        }
        Ok(())
    }
}

fn model<'a>(st: &'a AppState, name: &str) -> Result<&'a Served, ApiError> {
    st.models.get(name).ok_or_else(|| {
        ApiError::unknown_model(name, &st.models.keys().cloned().collect::<Vec<_>>())
    })
}

fn wrong_task(name: &str, task: &str, endpoint: &str) -> ApiError {
    ApiError::bad_param(
        "model",
        format!("the model {name:?} is a {task} model; send it to {endpoint}"),
    )
}

/// `POST /v1/completions`.
pub async fn completions(
    State(st): State<Arc<AppState>>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let worker = match model(&st, &req.model)? {
        Served::Text(w) => w,
        other => return Err(wrong_task(&req.model, other.task(), other.endpoint())),
    };
    req.check_defaults()?;
    let prompt = match req.prompt {
        Prompt::One(p) => p,
        Prompt::Many(mut v) if v.len() == 1 => v.remove(0),
        Prompt::Many(_) => {
            return Err(ApiError::bad_param(
                "prompt",
                "give one prompt per request (a string, or a list of one string)",
            ))
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::bad_param(
            "prompt",
            "the prompt is empty; give at least one character",
        ));
    }
    let prompt_tokens = worker.vocab.encode_input(&prompt).len();
    if prompt_tokens > st.limits.max_prompt {
        return Err(ApiError {
            code: Some("prompt_too_long"),
            ..ApiError::bad_param(
                "prompt",
                format!(
                    "the prompt is {prompt_tokens} tokens long; this server takes at most {} \
                     (--max-prompt)",
                    st.limits.max_prompt
                ),
            )
        });
    }
    let max_tokens = req.max_tokens.unwrap_or(16);
    if max_tokens == 0 || max_tokens > st.limits.max_tokens {
        return Err(ApiError::bad_param(
            "max_tokens",
            format!(
                "max_tokens must be between 1 and {} (--max-tokens), got {max_tokens}",
                st.limits.max_tokens
            ),
        ));
    }
    // read as sent (f64), checked, then used in 32 bits: a value that 32 bits cannot hold is
    // named as sent, not as its rounding (1e39 was "inf", 1e-50 "0")
    let temperature = req.temperature.unwrap_or(1.0);
    let held = (f32::MIN_POSITIVE as f64..=f32::MAX as f64).contains(&temperature);
    if !(temperature == 0.0 || held) {
        return Err(ApiError::bad_param(
            "temperature",
            format!(
                "temperature must be 0 (greedy) or from {:e} to {:e} (32 bits), got {temperature}",
                f32::MIN_POSITIVE,
                f32::MAX
            ),
        ));
    }
    let top_p = req.top_p.unwrap_or(1.0);
    if !(top_p >= f32::MIN_POSITIVE as f64 && top_p <= 1.0) {
        return Err(ApiError::bad_param(
            "top_p",
            format!(
                "top_p must be in (0, 1] and at least {:e} (32 bits), got {top_p}",
                f32::MIN_POSITIVE
            ),
        ));
    }
    let (temperature, top_p) = (temperature as f32, top_p as f32);
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_param("n", "only n = 1 is served"));
    }
    // OpenAI's answer too: the options would be silently unused
    if req.stream_options.is_some() && req.stream != Some(true) {
        return Err(ApiError::bad_param(
            "stream_options",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ));
    }
    let stop = match req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 {
        return Err(ApiError::bad_param("stop", "give at most 4 stop strings"));
    }
    // each generated token is checked against the stop strings: keep them short
    if let Some(s) = stop.iter().find(|s| s.chars().count() > MAX_STOP_CHARS) {
        return Err(ApiError::bad_param(
            "stop",
            format!(
                "a stop string has {} characters; give at most {MAX_STOP_CHARS}",
                s.chars().count()
            ),
        ));
    }
    // temperature 0 is greedy: the likeliest token, as OpenAI's
    let (temperature, top_k) = if temperature == 0.0 {
        (1.0, 1)
    } else {
        (temperature, req.top_k.unwrap_or(0))
    };
    let seed = req.seed.unwrap_or_else(rand::random);
    let stream = TextStream::new(
        &worker.vocab,
        &prompt,
        max_tokens,
        temperature,
        top_k,
        top_p,
        seed,
    )
    .map_err(|e| ApiError::bad_param("prompt", e.to_string()))?;
    let (tx, mut rx) = mpsc::channel(EVENTS);
    worker.submit(
        &req.model,
        Completion {
            stream,
            stop,
            events: tx,
            arrived,
        },
    )?;
    // unique across restarts and replicas too (a client's logs may hold ids of several):
    // 64 random bits, then the server's count
    let id = format!(
        "cmpl-{:016x}-{}",
        rand::random::<u64>(),
        st.next_id.fetch_add(1, Ordering::Relaxed)
    );
    // OpenAI's `created`: when the completion was made, in Unix seconds
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = req.model.clone();
    if req.stream.unwrap_or(false) {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let chunk = move |text: &str, finish: Option<&str>| {
            json!({
                "id": id, "object": "text_completion", "created": created, "model": name,
                "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
            })
        };
        // one chunk carries every piece generated since the client last read: one piece per
        // chunk while the client keeps up, fewer and longer chunks when it falls behind
        let events = futures_util::stream::unfold(Some(rx), move |rx| {
            let chunk = chunk.clone();
            async move {
                let mut rx = rx?;
                let data = |v: Value| SseEvent::default().data(v.to_string());
                let mut out = Vec::new();
                let mut text = String::new();
                let mut next = rx.recv().await;
                loop {
                    match next {
                        Some(Event::Text(t)) => {
                            text.push_str(&t);
                            match rx.try_recv() {
                                Ok(e) => next = Some(e),
                                Err(_) => {
                                    out.push(data(chunk(&text, None)));
                                    return Some((out, Some(rx)));
                                }
                            }
                        }
                        end => {
                            if !text.is_empty() {
                                out.push(data(chunk(&text, None)));
                            }
                            out.extend(stream_end(end, &chunk, include_usage, prompt_tokens));
                            return Some((out, None));
                        }
                    }
                }
            }
        })
        .flat_map(|v| futures_util::stream::iter(v.into_iter().map(Ok::<_, Infallible>)));
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut text = String::new();
    loop {
        match rx.recv().await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done {
                finish_reason,
                completion_tokens,
            }) => {
                return Ok(Json(json!({
                    "id": id, "object": "text_completion", "created": created, "model": name,
                    "choices": [{"text": text, "index": 0, "logprobs": null,
                                 "finish_reason": finish_reason}],
                    "usage": usage(prompt_tokens, completion_tokens),
                }))
                .into_response())
            }
            Some(Event::Error(m)) => return Err(ApiError::internal(m)),
            Some(Event::Shutdown) => {
                return Err(ApiError::unavailable(crate::text::SHUTDOWN_MESSAGE))
            }
            None => return Err(ApiError::unavailable("the model's worker stopped")),
        }
    }
}

/// The last events of a stream: the finishing chunk, the usage chunk when asked for, and
/// `[DONE]`; or an error event and `[DONE]`.
fn stream_end(
    end: Option<Event>,
    chunk: &dyn Fn(&str, Option<&str>) -> Value,
    include_usage: bool,
    prompt_tokens: usize,
) -> Vec<SseEvent> {
    let data = |v: Value| SseEvent::default().data(v.to_string());
    let mut out = Vec::new();
    match end {
        Some(Event::Done {
            finish_reason,
            completion_tokens,
        }) => {
            out.push(data(chunk("", Some(finish_reason))));
            if include_usage {
                let mut u = chunk("", None);
                u["choices"] = json!([]);
                u["usage"] = usage(prompt_tokens, completion_tokens);
                out.push(data(u));
            }
        }
        Some(Event::Error(m)) => out.push(data(ApiError::internal(m).body())),
        Some(Event::Shutdown) => out.push(data(
            ApiError::unavailable(crate::text::SHUTDOWN_MESSAGE).body(),
        )),
        Some(Event::Text(_)) | None => out.push(data(
            ApiError::unavailable("the model's worker stopped").body(),
        )),
    }
    out.push(SseEvent::default().data("[DONE]"));
    out
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

/// `GET /v1/models`.
pub async fn models(State(st): State<Arc<AppState>>) -> Json<Value> {
    let data: Vec<Value> = st
        .models
        .iter()
        .map(|(name, m)| {
            json!({"id": name, "object": "model", "created": st.created, "owned_by": "lstm",
                   "task": m.task(), "endpoint": m.endpoint()})
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{model}`: one served model, as OpenAI's API retrieves it; a 404
/// `model_not_found` for a name not served.
pub async fn model_info(
    State(st): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = model(&st, &name)?;
    Ok(Json(
        json!({"id": name, "object": "model", "created": st.created, "owned_by": "lstm",
               "task": m.task(), "endpoint": m.endpoint()}),
    ))
}

/// `GET /health`.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Any other path: a 404 in the JSON error shape.
pub async fn not_found() -> ApiError {
    ApiError::other(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /v1/models, /v1/completions, /v1/forecast, /v1/classify, \
         /health, /metrics",
    )
}

/// A known path with another method (`GET /v1/completions`): a 405 in the API's JSON.
pub async fn method_not_allowed() -> ApiError {
    ApiError::other(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint takes another method: POST for /v1/completions, /v1/forecast and \
         /v1/classify, GET for /v1/models, /health and /metrics",
    )
}

/// OpenAI's `stream_options`; another field is a 400 naming it, as elsewhere.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// A last chunk with the usage.
    #[serde(default)]
    pub include_usage: Option<bool>,
    /// OpenAI's random padding of streamed chunks against length side channels; accepted (the
    /// `openai` client sends it) and never added.
    #[serde(default)]
    pub include_obfuscation: Option<bool>,
}

/// A seed as OpenAI's API takes it, a signed 64-bit integer, or as `lstm generate --seed`
/// does, an unsigned one: a negative seed is its two's-complement bits.
fn signed_seed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seed {
        Unsigned(u64),
        Signed(i64),
    }
    let seed: Option<Seed> = Deserialize::deserialize(d).map_err(|_: D::Error| {
        serde::de::Error::custom("the seed must be an integer within 64 bits (signed or not)")
    })?;
    Ok(seed.map(|s| match s {
        Seed::Unsigned(u) => u,
        Seed::Signed(i) => i as u64,
    }))
}

/// `POST /v1/classify`'s body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// A served classifier's name.
    pub model: String,
    /// The texts to classify.
    pub texts: Vec<String>,
    /// Answer each text's `top_k` most probable classes (`top`) instead of every class's
    /// probability (`probabilities`); at least 1, at most the number of classes are given.
    #[serde(default)]
    pub top_k: Option<usize>,
}

/// The most class probabilities one `/v1/classify` answer holds (texts times classes, or times
/// `top_k`): about 20 MB of JSON without `top_k`; and the most numbers of one `/v1/forecast`
/// answer (series times steps times the quantile levels and the median).
pub const MAX_PROBABILITIES: usize = 1_000_000;

/// Checks that a forecast answer of `series` series, `steps` steps and `levels` quantile
/// levels (and the median) holds at most [`MAX_PROBABILITIES`] numbers, as a classification's
/// answer does: 1,000 series of 48 steps with 100 levels were about 100 MB of JSON.
fn forecast_size(series: usize, steps: usize, levels: usize) -> Result<(), ApiError> {
    let numbers = series
        .saturating_mul(steps)
        .saturating_mul(levels.saturating_add(1));
    if numbers > MAX_PROBABILITIES {
        return Err(ApiError::bad_param(
            "series",
            format!(
                "the answer would hold {numbers} numbers (series times steps times the quantile \
                 levels and the median), more than {MAX_PROBABILITIES}; send fewer series per \
                 request, or ask for fewer steps or quantiles"
            ),
        ));
    }
    Ok(())
}

/// `POST /v1/classify`.
pub async fn classify(
    State(st): State<Arc<AppState>>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> Result<Json<Value>, ApiError> {
    let (worker, labels) = match model(&st, &req.model)? {
        Served::Classify { worker, labels } => (worker, labels),
        other => return Err(wrong_task(&req.model, other.task(), other.endpoint())),
    };
    count("texts", req.texts.len())?;
    match req.top_k {
        Some(0) => {
            return Err(ApiError::bad_param(
                "top_k",
                "top_k must be at least 1 (leave it out for every class's probability)",
            ))
        }
        k => {
            let per_text = k.map_or(labels.len(), |k| k.min(labels.len()));
            let n = req.texts.len().saturating_mul(per_text);
            if n > MAX_PROBABILITIES {
                return Err(ApiError::bad_param(
                    "top_k",
                    format!(
                        "{} texts to a model of {} classes would answer {n} probabilities, more \
                         than {MAX_PROBABILITIES}; give {}top_k (each text's most probable \
                         classes) or send fewer texts per request",
                        req.texts.len(),
                        labels.len(),
                        if k.is_some() { "a smaller " } else { "" }
                    ),
                ));
            }
        }
    }
    let (tx, rx) = oneshot::channel();
    worker.submit(
        &req.model,
        ClassifyJob {
            texts: req.texts,
            reply: tx,
        },
    )?;
    let preds = rx
        .await
        .map_err(|_| ApiError::internal("the model failed on this batch"))??;
    let predictions: Vec<Value> = preds
        .iter()
        .map(|p| match req.top_k {
            None => json!({"label": p.label, "probability": p.probability,
                        "probabilities": p.probabilities}),
            Some(k) => {
                // the k most probable, ties in the order of `labels` (as the label's argmax)
                let mut order: Vec<usize> = (0..p.probabilities.len()).collect();
                order.sort_by(|&a, &b| p.probabilities[b].total_cmp(&p.probabilities[a]));
                let top: Vec<Value> = order
                    .iter()
                    .take(k)
                    .map(|&i| json!({"label": labels[i], "probability": p.probabilities[i]}))
                    .collect();
                json!({"label": p.label, "probability": p.probability, "top": top})
            }
        })
        .collect();
    Ok(Json(json!({
        "object": "classification", "model": req.model, "labels": labels,
        "predictions": predictions,
    })))
}

/// `POST /v1/forecast`'s body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// A served forecaster's name.
    pub model: String,
    /// The series to forecast.
    #[serde(deserialize_with = "crate::json::objects")]
    pub series: Vec<SeriesIn>,
    /// Steps past each series' history (default: the model's horizon).
    #[serde(default)]
    pub steps: Option<usize>,
    /// Quantile levels in (0, 1) (global forecaster); `null` is none, as for every optional
    /// field.
    #[serde(default, deserialize_with = "crate::json::null_as_default")]
    pub quantiles: Vec<f64>,
}

/// `POST /v1/forecast`.
pub async fn forecast(
    State(st): State<Arc<AppState>>,
    ApiJson(mut req): ApiJson<ForecastRequest>,
) -> Result<Json<Value>, ApiError> {
    let (worker, global, window) = match model(&st, &req.model)? {
        Served::Forecast {
            worker,
            global,
            window,
        } => (worker, global, window),
        other => return Err(wrong_task(&req.model, other.task(), other.endpoint())),
    };
    count("series", req.series.len())?;
    let horizon = global
        .as_ref()
        .map(|g| g.horizon)
        .or(window.as_ref().map(|w| w.horizon));
    if let Some(s) = req.steps {
        if s == 0 || Some(s) > horizon {
            return Err(ApiError::bad_param(
                "steps",
                format!(
                    "steps must be between 1 and the model's horizon, {}, got {s}",
                    horizon.unwrap_or(0)
                ),
            ));
        }
    }
    if req.quantiles.len() > lstm::tasks::global::MAX_LEVELS {
        return Err(ApiError::bad_param(
            "quantiles",
            format!(
                "{} quantile levels; give at most {}",
                req.quantiles.len(),
                lstm::tasks::global::MAX_LEVELS
            ),
        ));
    }
    for (i, &q) in req.quantiles.iter().enumerate() {
        if req.quantiles[..i].contains(&q) {
            return Err(ApiError::bad_param(
                format!("quantiles[{i}]"),
                format!("the level {q} is given twice; give each level once"),
            ));
        }
        if !(q > 0.0 && q < 1.0) || window.is_some() {
            return Err(ApiError::bad_param(
                format!("quantiles[{i}]"),
                if window.is_some() {
                    "this forecaster gives point forecasts only; leave quantiles out".to_string()
                } else {
                    format!("a quantile level must be in (0, 1), got {q}")
                },
            ));
        }
    }
    forecast_size(
        req.series.len(),
        req.steps.or(horizon).unwrap_or(1),
        req.quantiles.len(),
    )?;
    let (has_id, has_time, known): (bool, bool, Vec<String>) = match (&global, &window) {
        (Some(g), _) => (
            g.id_column.is_some(),
            g.time_column.is_some(),
            g.known.clone(),
        ),
        (None, Some(w)) => (false, w.date_column.is_some(), w.columns[1..].to_vec()),
        (None, None) => return Err(ApiError::internal("the model has no series description")),
    };
    if !has_id && req.series.len() > 1 {
        return Err(ApiError::bad_param(
            "series",
            "this model forecasts one series at a time (it has no id column); send one series",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, s) in req.series.iter_mut().enumerate() {
        let at = |f: &str| format!("series[{i}].{f}");
        // the model computes in 32 bits: 1e300 is no number to it
        if s.values.is_empty() || s.values.iter().any(|&v| !(v as f32).is_finite()) {
            return Err(ApiError::bad_param(
                at("values"),
                "give the series' history: at least one number, each finite in 32 bits (within ±3.4e38)",
            ));
        }
        let id = s.id.get_or_insert_with(|| i.to_string()).clone();
        // a cell of the CSV the library reads is one line
        if id.contains(['\n', '\r']) {
            return Err(ApiError::bad_param(
                at("id"),
                "an id may not contain a line break",
            ));
        }
        if let Some(j) = s.time.as_ref().and_then(|t| {
            t.iter()
                .position(|v| v.as_str().is_some_and(|x| x.contains(['\n', '\r'])))
        }) {
            return Err(ApiError::bad_param(
                format!("series[{i}].time[{j}]"),
                "a time may not contain a line break",
            ));
        }
        // ids are read as a CSV's cells are, without the blanks around them
        if !ids.insert(id.trim().to_string()) {
            return Err(ApiError::bad_param(
                at("id"),
                format!(
                    "the id {id:?} is given twice (ids are compared without surrounding blanks)"
                ),
            ));
        }
        for k in s.known.keys() {
            if !known.contains(k) {
                return Err(ApiError::bad_param(
                    format!("series[{i}].known.{k}"),
                    format!("the model reads no column {k:?}; it reads {known:?}"),
                ));
            }
        }
        let mut rows: Option<usize> = None;
        for k in &known {
            let Some(v) = s.known.get(k) else {
                return Err(ApiError::bad_param(
                    format!("series[{i}].known.{k}"),
                    format!("the model needs the column {k:?}, one value per row"),
                ));
            };
            let need_future = global.is_some();
            // the global forecaster reads them at every forecast step too
            let steps = if need_future {
                req.steps.or(horizon).unwrap_or(1)
            } else {
                0
            };
            let need = s.values.len().saturating_add(steps);
            if v.len() < need || (!need_future && v.len() != need) {
                return Err(ApiError::bad_param(
                    format!("series[{i}].known.{k}"),
                    format!(
                        "{k:?} has {} values; give one per row of history ({}){}",
                        v.len(),
                        s.values.len(),
                        if need_future {
                            format!(" and then one per forecast step ({steps}): {need}")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            if rows.is_some_and(|r| r != v.len()) {
                return Err(ApiError::bad_param(
                    format!("series[{i}].known.{k}"),
                    "every known column must have the same number of values",
                ));
            }
            rows = Some(v.len());
        }
        let rows = rows.unwrap_or(s.values.len());
        match (&s.time, has_time) {
            (None, true) => {
                return Err(ApiError::bad_param(
                    at("time"),
                    format!("the model has a time column: give {rows} times, one per row"),
                ))
            }
            (Some(_), false) => {
                return Err(ApiError::bad_param(
                    at("time"),
                    "the model has no time column; leave time out",
                ))
            }
            (Some(t), true) if t.len() != rows => {
                return Err(ApiError::bad_param(
                    at("time"),
                    format!("give {rows} times, one per row, got {}", t.len()),
                ))
            }
            _ => {}
        }
    }
    let (tx, rx) = oneshot::channel();
    worker.submit(
        &req.model,
        ForecastJob {
            series: req.series,
            steps: req.steps,
            quantiles: req.quantiles,
            reply: tx,
        },
    )?;
    let out = rx
        .await
        .map_err(|_| ApiError::internal("the model failed on this batch"))??;
    Ok(Json(
        json!({"object": "forecast", "model": req.model, "forecasts": out}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forecast_answer_is_bounded_as_a_classification_is() {
        // M4's 414 series, 48 steps, 2 levels; 1,000 series of 48 steps with 19 levels
        assert!(forecast_size(414, 48, 2).is_ok());
        assert!(forecast_size(1000, 50, 19).is_ok());
        let e = forecast_size(1000, 48, 100).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series"), "{e:?}");
        assert!(e.message.contains("4848000 numbers"), "{e:?}");
        assert!(forecast_size(usize::MAX, usize::MAX, usize::MAX).is_err());
    }

    /// A series or `stream_options` given as an array was read field by field in order.
    #[test]
    fn the_requests_nested_objects_are_not_read_from_arrays() {
        use crate::json::parse;
        let ok = parse::<ForecastRequest>(br#"{"model": "m", "series": [{"values": [1, 2]}]}"#);
        assert_eq!(ok.unwrap().series[0].values, [1.0, 2.0]);
        let e = parse::<ForecastRequest>(br#"{"model": "m", "series": [[null, null, [1, 2]]]}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series[0]"), "{e:?}");
        let e = parse::<CompletionRequest>(
            br#"{"model": "m", "prompt": "a", "stream": true, "stream_options": [true]}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("stream_options"), "{e:?}");
        let ok = parse::<CompletionRequest>(
            br#"{"model": "m", "prompt": "a", "stream_options": {"include_usage": true}}"#,
        );
        assert_eq!(
            ok.unwrap().stream_options.unwrap().include_usage,
            Some(true)
        );
    }
}
