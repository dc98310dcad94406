//! The application: models loaded into their workers, the router, keys, metrics, panics, and
//! the listening loop with its graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lstm::data::series::SeriesSpec;
use lstm::tasks::global::GlobalSpec;
use lstm::Task;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::args::ServeArgs;
use crate::batch::{self, BatchWorker, ClassifyJob, ForecastJob};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes;
use crate::text::TextWorker;

/// A served model: its worker and what requests are checked against.
pub enum Served {
    /// A text model behind its continuous-batching scheduler.
    Text(TextWorker),
    /// A forecaster behind its batch worker.
    Forecast {
        /// The worker.
        worker: BatchWorker<ForecastJob>,
        /// The global forecaster's description.
        global: Option<Box<GlobalSpec>>,
        /// The window forecaster's description.
        window: Option<Box<SeriesSpec>>,
    },
    /// A classifier behind its batch worker.
    Classify {
        /// The worker.
        worker: BatchWorker<ClassifyJob>,
        /// The labels, in the order of the probabilities.
        labels: Vec<String>,
    },
}

impl Served {
    /// `text`, `forecast` or `classify`.
    pub fn task(&self) -> &'static str {
        match self {
            Served::Text(_) => "text",
            Served::Forecast { .. } => "forecast",
            Served::Classify { .. } => "classify",
        }
    }

    /// The endpoint that serves it.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Served::Text(_) => "/v1/completions",
            Served::Forecast { .. } => "/v1/forecast",
            Served::Classify { .. } => "/v1/classify",
        }
    }
}

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest `max_tokens`.
    pub max_tokens: usize,
    /// Longest prompt, in tokens.
    pub max_prompt: usize,
}

/// What every handler shares.
pub struct AppState {
    /// The models by name.
    pub models: BTreeMap<String, Served>,
    /// The figures of `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The key every request but `/health` must bear.
    pub api_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Start time, seconds since the Unix epoch (the `created` of models and completions).
    pub created: u64,
    /// The next completion id.
    pub next_id: AtomicU64,
}

/// Loads every model of `args` and starts its worker.
///
/// # Errors
/// Bad flags, a directory that does not load, a text model that batched generation does not
/// support.
pub fn load(args: &ServeArgs) -> anyhow::Result<AppState> {
    let specs = args.check()?;
    let metrics = Arc::new(Metrics::default());
    let mut models = BTreeMap::new();
    for (name, dir) in specs {
        let loaded = lstm::tasks::modeldir::load_for_use(&dir)
            .with_context(|| format!("--model {name}={}", dir.display()))?;
        let served = match loaded.meta.task {
            Task::Text => {
                let vocab = loaded
                    .meta
                    .vocab
                    .clone()
                    .with_context(|| format!("model {name:?} has no vocabulary"))?;
                Served::Text(TextWorker::start(
                    &name,
                    loaded.model,
                    vocab,
                    args.max_batch,
                    args.queue,
                    metrics.clone(),
                )?)
            }
            Task::Forecast => Served::Forecast {
                global: loaded.meta.global.clone().map(Box::new),
                window: if loaded.meta.global.is_some() {
                    None
                } else {
                    loaded.meta.series.clone().map(Box::new)
                },
                worker: BatchWorker::start(
                    &name,
                    "forecast",
                    loaded,
                    args.queue,
                    args.max_batch,
                    args.batch_wait(),
                    metrics.clone(),
                    batch::run_forecast,
                )?,
            },
            Task::Classify => Served::Classify {
                labels: loaded.meta.labels.clone().unwrap_or_default(),
                worker: BatchWorker::start(
                    &name,
                    "classify",
                    loaded,
                    args.queue,
                    args.max_batch,
                    args.batch_wait(),
                    metrics.clone(),
                    batch::run_classify,
                )?,
            },
        };
        models.insert(name, served);
    }
    Ok(AppState {
        models,
        metrics,
        api_key: args.api_key.clone(),
        limits: Limits {
            max_tokens: args.max_tokens,
            max_prompt: args.max_prompt,
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        next_id: AtomicU64::new(1),
    })
}

/// The router: the endpoints, then (inside out) panics caught into 500s, the key check, and
/// the request metrics; `extra` routes get the same layers (tests add a panicking one).
pub fn router(state: Arc<AppState>, max_body: usize, extra: Router<Arc<AppState>>) -> Router {
    Router::new()
        .route("/v1/completions", post(routes::completions))
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{*model}", get(routes::model_info))
        .route("/v1/forecast", post(routes::forecast))
        .route("/v1/classify", post(routes::classify))
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .merge(extra)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .route_layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("the server failed on this request (a panic); it goes on serving")
                .into_response()
        }))
        .route_layer(middleware::from_fn_with_state(max_body, announced_size))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        // an unknown path is a 401 too without the key: it tells nothing of the endpoints
        .fallback(|State(st): State<Arc<AppState>>, req: Request| async move {
            match refused(&st, &req) {
                Some(r) => r,
                None => routes::not_found().await.into_response(),
            }
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// A body whose `Content-Length` is over `--max-body` is refused at once (413), before it is
/// read (and before a client waiting on `Expect: 100-continue` sends it).
async fn announced_size(State(max_body): State<usize>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > max_body as u64 => ApiError::other(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is {n} bytes, larger than the server's --max-body ({max_body})"
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Every request but `/health` bears `Authorization: Bearer KEY` when the server has a key;
/// compared in constant time.
async fn authorize(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match refused(&st, &req) {
        Some(r) => r,
        None => next.run(req).await,
    }
}

/// The 401 of a request without the server's key (`None`: it may go on).
fn refused(st: &AppState, req: &Request) -> Option<Response> {
    let key = st.api_key.as_ref()?;
    if req.uri().path() == "/health" {
        return None;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // the scheme's name is case-insensitive (RFC 9110)
        .and_then(|v| {
            v.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("bearer "))
                .map(|_| &v[7..])
        });
    match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(key.as_bytes())) => None,
        Some(_) => Some(ApiError::unauthorized("the API key is wrong").into_response()),
        None => Some(
            ApiError::unauthorized(
                "this server needs an API key: send the header `Authorization: Bearer KEY`",
            )
            .into_response(),
        ),
    }
}

/// Counts each request by endpoint and status, with its time to the response head.
async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |m| m.as_str().to_string());
    let t = Instant::now();
    let r = next.run(req).await;
    st.metrics
        .request(&endpoint, r.status().as_u16(), t.elapsed());
    r
}

/// Refuses a non-loopback address without a key unless `--insecure`.
///
/// # Errors
/// As said.
pub fn check_exposure(addr: std::net::SocketAddr, args: &ServeArgs) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && args.api_key.is_none() && !args.insecure {
        bail!(
            "--addr {addr} is reachable from other machines and no --api-key is set: give \
             --api-key KEY (or LSTM_API_KEY), or --insecure to serve without one"
        );
    }
    Ok(())
}

/// Serves `args`' models on `listener` until `shutdown` completes; then stops accepting,
/// lets running requests and streams finish for at most `--shutdown-grace-secs`, and returns.
///
/// # Errors
/// Bad flags, an exposed address without a key, a model that does not load, a failing
/// listener.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    check_exposure(addr, &args)?;
    // the shutdown signal is listened to from the start: a SIGTERM while the models load
    // stops the server as one while it serves does, not by the signal's default
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopping = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        if rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let a = args.clone();
    let state = tokio::select! {
        loaded = tokio::task::spawn_blocking(move || load(&a)) => Arc::new(loaded??),
        _ = stopping(rx.clone()) => {
            eprintln!("lstm serve: stopped while loading the models; nothing was served");
            return Ok(());
        }
    };
    let names: Vec<String> = state
        .models
        .iter()
        .map(|(n, m)| format!("{n} ({})", m.task()))
        .collect();
    let app = router(state.clone(), args.max_body, Router::new());
    let server = accept(listener, app, stopping(rx.clone()));
    let mut server = tokio::spawn(server);
    eprintln!(
        "lstm serve: listening on http://{addr} with {}",
        names.join(", ")
    );
    tokio::select! {
        r = &mut server => r??,
        _ = stopping(rx) => {
            let grace = Duration::from_secs(args.shutdown_grace_secs);
            eprintln!(
                "lstm serve: stopping; finishing running requests (at most {}s)",
                grace.as_secs()
            );
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => r??,
                Err(_) => {
                    // the completions still running end with an error (and [DONE]) first,
                    // and the forecasts and classifications still queued are answered so
                    for m in state.models.values() {
                        match m {
                            Served::Text(w) => w.cut(),
                            Served::Forecast { worker, .. } => worker.cut(),
                            Served::Classify { worker, .. } => worker.cut(),
                        }
                    }
                    eprintln!(
                        "lstm serve: grace period over; completions still running and requests still queued were answered with an error"
                    );
                    match tokio::time::timeout(CUT_WAIT, &mut server).await {
                        Ok(r) => r??,
                        Err(_) => {
                            server.abort();
                            eprintln!("lstm serve: connections still open were closed");
                        }
                    }
                }
            }
        }
    }
    eprintln!("lstm serve: stopped");
    Ok(())
}

/// How long the streams still running at the end of the grace period have to send their last
/// events (an error and `[DONE]`) before their connections are closed.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// How long a client may take to send a request's head (line and headers) before its
/// connection is closed: a client that opens connections and sends nothing (or a few bytes)
/// must not hold them, and the server's file descriptors, forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `app` on each (HTTP/1.1, a request head
/// within [`HEADER_READ_TIMEOUT`]) until `stop` resolves; then closes idle connections, lets
/// the running requests finish and returns. As `axum::serve`, with the timeouts it does not
/// offer. A client that closes its side of the connection has gone, as for Go's `net/http`
/// and nginx: its request is dropped (a queued forecast or classification is not run, a
/// completion stops), and it gets no response.
async fn accept(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .half_close(false);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                // out of file descriptors and the like: wait, and go on serving the others
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Builds the runtime, binds `--addr`, serves until SIGTERM or Ctrl-C, and returns once the
/// running requests have finished (or the grace period is over).
///
/// # Errors
/// As [`serve`], and an address that cannot be bound.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    check_exposure(args.addr, &args)?;
    args.check()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lstm-serve")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        serve(args, listener, signal()).await
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
