//! Load test of `lstm serve`'s streaming completions, loopback only, bounded in requests and
//! seconds: for each concurrency level (default 1, 8, 32, 64), that many clients send streaming
//! requests back to back; reports aggregate tokens/s, time to first token and time between
//! tokens (p50, p99), and errors; beside the same model generating alone through the library
//! (`lstm generate`'s entry), when the model directory is given.
//!
//! ```sh
//! # the example starts the server itself, in-process, on 127.0.0.1:0
//! cargo run --release -p lstm-serve --example loadtest -- --model-dir runs/charlm
//! # or against a running server (loopback addresses only)
//! cargo run --release -p lstm-serve --example loadtest -- --url http://127.0.0.1:8080 --model charlm
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

struct Options {
    url: Option<String>,
    model: Option<String>,
    model_dir: Option<String>,
    levels: Vec<usize>,
    max_tokens: usize,
    seconds: f64,
    requests: usize,
    prompt: String,
    max_batch: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadtest (--model-dir DIR | --url http://127.0.0.1:PORT --model NAME) \
         [--levels 1,8,32,64] [--max-tokens 128] [--seconds 20] [--requests 4 (per stream)] \
         [--prompt TEXT] [--max-batch 64]"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut o = Options {
        url: None,
        model: None,
        model_dir: None,
        levels: vec![1, 8, 32, 64],
        max_tokens: 128,
        seconds: 20.0,
        requests: 4,
        prompt: "The ".into(),
        max_batch: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--url" => o.url = Some(val()),
            "--model" => o.model = Some(val()),
            "--model-dir" => o.model_dir = Some(val()),
            "--levels" => {
                o.levels = val()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--max-tokens" => o.max_tokens = val().parse().unwrap_or_else(|_| usage()),
            "--seconds" => o.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--requests" => o.requests = val().parse().unwrap_or_else(|_| usage()),
            "--prompt" => o.prompt = val(),
            "--max-batch" => o.max_batch = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if o.url.is_none() && o.model_dir.is_none() {
        usage();
    }
    o
}

/// Refuses any address but the loopback range.
fn check_loopback(url: &str) {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => host,
    };
    let ok = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !url.starts_with("http://") || !ok {
        eprintln!("loadtest: only loopback addresses (127.0.0.0/8, [::1], localhost), got {url}");
        std::process::exit(2);
    }
}

/// One request's timings.
#[derive(Default)]
struct Sample {
    ok: bool,
    tokens: usize,
    first: Option<Duration>,
    gaps: Vec<Duration>,
}

async fn one(client: &reqwest::Client, url: &str, body: &Value) -> Sample {
    let mut s = Sample::default();
    let start = Instant::now();
    let Ok(r) = client.post(url).json(body).send().await else {
        return s;
    };
    if r.status() != 200 {
        return s;
    }
    let mut stream = r.bytes_stream();
    let mut buf = Vec::new();
    // (arrival, characters) of each chunk with text; the usage chunk's token count
    let mut chunks: Vec<(Instant, usize)> = Vec::new();
    let mut tokens = None;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return s };
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..i + 2).collect();
            let event = String::from_utf8_lossy(&event);
            let Some(data) = event.trim_end().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                let Some(n) = tokens else { return s };
                s.ok = true;
                s.tokens = n;
                // a chunk carries the pieces generated since the client last read; its share
                // of the text estimates how many (exact for a character model): they arrive
                // together, so all but the first come 0 after the one before
                let chars: usize = chunks.iter().map(|c| c.1).sum::<usize>().max(1);
                let mut last: Option<Instant> = None;
                for &(at, c) in &chunks {
                    let k = ((c * n) as f64 / chars as f64).round().max(1.0) as usize;
                    match last {
                        None => s.first = Some(at - start),
                        Some(l) => s.gaps.push(at - l),
                    }
                    s.gaps.extend(std::iter::repeat_n(Duration::ZERO, k - 1));
                    last = Some(at);
                }
                return s;
            }
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                return s;
            };
            if v.get("error").is_some() {
                return s;
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                tokens = Some(n as usize);
            }
            let text = v["choices"][0]["text"].as_str().unwrap_or("");
            if !text.is_empty() {
                chunks.push((Instant::now(), text.chars().count()));
            }
        }
    }
    s
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = parse();
    let (url, model, _server) = match (&o.url, &o.model_dir) {
        (Some(u), _) => {
            check_loopback(u);
            let m = o.model.clone().unwrap_or_else(|| usage());
            (u.trim_end_matches('/').to_string(), m, None)
        }
        (None, Some(dir)) => {
            let mut a = lstm_serve::ServeArgs::with_models([format!("m={dir}")]);
            a.max_batch = o.max_batch;
            a.queue = 1024;
            a.max_tokens = o.max_tokens.max(1);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let h = tokio::spawn(lstm_serve::serve(a, listener, async {
                let _ = rx.await;
            }));
            let c = reqwest::Client::new();
            while c.get(format!("{url}/health")).send().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (url, "m".to_string(), Some((tx, h)))
        }
        _ => usage(),
    };
    println!(
        "loadtest: {url}, model {model}, {} tokens per request, prompt {:?}",
        o.max_tokens, o.prompt
    );
    if let Some(dir) = &o.model_dir {
        // the same model alone, through `lstm generate`'s library entry
        let dir = dir.clone();
        let (tokens, prompt) = (o.max_tokens, o.prompt.clone());
        let alone = tokio::task::spawn_blocking(move || {
            let mut l = lstm::load(std::path::Path::new(&dir)).unwrap();
            let opts = |length| lstm::tasks::job::GenerateOptions {
                prime: prompt.clone(),
                length,
                temperature: 1.0,
                top_k: 0,
                bf16: false,
                seed: 1,
            };
            // a warm-up, then at least 1000 tokens timed
            lstm::tasks::job::generate(&mut l, &opts(16), &mut |_| {}).unwrap();
            let n = tokens.max(1000);
            let t = Instant::now();
            lstm::tasks::job::generate(&mut l, &opts(n), &mut |_| {}).unwrap();
            n as f64 / t.elapsed().as_secs_f64()
        })
        .await
        .unwrap();
        println!("lstm generate alone (library, one stream): {alone:.0} tokens/s");
    }
    println!(
        "{:>7} {:>8} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "streams", "requests", "errors", "tokens/s", "ttft p50", "ttft p99", "tbt p50", "tbt p99"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs((o.seconds * 3.0) as u64 + 30))
        .build()
        .unwrap();
    let mut total_errors = 0;
    for &level in &o.levels {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(o.seconds);
        let mut workers = Vec::new();
        for w in 0..level {
            let client = client.clone();
            let url = format!("{url}/v1/completions");
            let body = json!({"model": model, "prompt": o.prompt, "max_tokens": o.max_tokens,
                              "stream": true, "seed": w,
                              "stream_options": {"include_usage": true}});
            let requests = o.requests;
            workers.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..requests {
                    if Instant::now() >= deadline {
                        break;
                    }
                    out.push(one(&client, &url, &body).await);
                }
                out
            }));
        }
        let mut samples = Vec::new();
        for w in workers {
            samples.extend(w.await.unwrap());
        }
        let wall = start.elapsed().as_secs_f64();
        let errors = samples.iter().filter(|s| !s.ok).count();
        total_errors += errors;
        let tokens: usize = samples.iter().map(|s| s.tokens).sum();
        let mut first: Vec<Duration> = samples.iter().filter_map(|s| s.first).collect();
        let mut gaps: Vec<Duration> = samples.iter().flat_map(|s| s.gaps.clone()).collect();
        println!(
            "{:>7} {:>8} {:>6} {:>10.0} {:>8.1}ms {:>8.1}ms {:>7.2}ms {:>7.2}ms",
            level,
            samples.len(),
            errors,
            tokens as f64 / wall,
            pct(&mut first, 0.5),
            pct(&mut first, 0.99),
            pct(&mut gaps, 0.5),
            pct(&mut gaps, 0.99),
        );
    }
    if let Some((tx, h)) = _server {
        let _ = tx.send(());
        let _ = h.await;
    }
    if total_errors > 0 {
        std::process::exit(1);
    }
}
