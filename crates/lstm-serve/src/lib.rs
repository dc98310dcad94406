//! `lstm serve`: trained models over HTTP.
//!
//! - Text models answer OpenAI's `POST /v1/completions` (streaming as Server-Sent Events),
//!   with **continuous batching**: one scheduler thread per model advances every active
//!   stream one token per batched step, admitting and dropping streams between steps
//!   ([`text`]).
//! - Forecasters answer `POST /v1/forecast` and classifiers `POST /v1/classify`; requests that
//!   arrive within `--batch-wait-ms` run as one library call ([`batch`]).
//! - `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text).
//! - A bounded queue per model (429 with `Retry-After` beyond it), limits on body, prompt and
//!   `max_tokens`, JSON errors naming the field, an optional bearer key, panics caught per
//!   request, and a graceful shutdown on SIGTERM or Ctrl-C.
//!
//! The CLI embeds [`ServeArgs`] and calls [`run`]:
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     serve: lstm_serve::ServeArgs,
//! }
//! lstm_serve::run(Cli::parse().serve).unwrap();
//! ```
//!
//! See `docs/serve.md` for the endpoints with examples.

#![warn(missing_docs)]

pub mod args;
pub mod batch;
pub mod error;
pub mod json;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod text;

pub use args::ServeArgs;
pub use server::{run, serve};
