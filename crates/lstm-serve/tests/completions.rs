//! `/v1/completions` and `/v1/models` against the real server on 127.0.0.1:0: the same text as
//! `lstm generate` (its library entry), alone and beside 63 other streams; OpenAI's JSON shapes
//! and SSE framing; stop strings; a client that disconnects mid-stream frees its slot; 429
//! with Retry-After beyond the queue.

mod common;

use std::time::{Duration, Instant};

use common::{client, sse_data, text_model, Server};
use futures_util::StreamExt;
use lstm::tasks::job::{self, GenerateOptions};
use lstm_serve::ServeArgs;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

fn args() -> ServeArgs {
    let mut a = ServeArgs::with_models([format!("chars={}", text_model().display())]);
    a.max_tokens = 10_000_000;
    a
}

/// What `lstm generate --prime P --length N --seed S --temperature T --top-k K` prints.
fn generate(prime: &str, length: usize, seed: u64, temperature: f32, top_k: usize) -> String {
    let mut l = lstm::load(text_model()).unwrap();
    job::generate(
        &mut l,
        &GenerateOptions {
            prime: prime.into(),
            length,
            temperature,
            top_k,
            bf16: false,
            seed,
        },
        &mut |_| {},
    )
    .unwrap()
}

async fn complete(s: &Server, body: Value) -> Value {
    let r = client()
        .post(s.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn stream_text(s: &Server, mut body: Value) -> (String, String) {
    body["stream"] = json!(true);
    let r = client()
        .post(s.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let data = sse_data(&r.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let mut text = String::new();
    let mut finish = String::new();
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert_eq!(v["object"], "text_completion");
        text.push_str(v["choices"][0]["text"].as_str().unwrap());
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = f.to_string();
        }
    }
    (text, finish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_text_as_lstm_generate_alone_and_beside_63_others() {
    let expected = generate("the ", 60, 7, 0.8, 5);
    let s = Server::start(args()).await;
    let req = json!({"model": "chars", "prompt": "the ", "max_tokens": 60, "seed": 7,
                     "temperature": 0.8, "top_k": 5, "top_p": 1.0});
    let alone = complete(&s, req.clone()).await;
    assert_eq!(alone["choices"][0]["text"], expected.as_str());
    // the same request joining 63 running streams of other prompts, seeds and lengths
    let mut tasks = Vec::new();
    for i in 0..63u64 {
        let s_url = s.url("/v1/completions");
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "chars", "prompt": format!("to {i}"),
                              "max_tokens": 3000 + i, "seed": i, "stream": i % 2 == 0});
            let r = client().post(s_url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    let t = Instant::now();
    while s.metric("lstm_active_streams{model=\"chars\"").await < 63.0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the 63 streams did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (together, _) = stream_text(&s, req.clone()).await;
    assert_eq!(together, expected);
    let again = complete(&s, req.clone()).await;
    assert_eq!(again["choices"][0]["text"], expected.as_str());
    for t in tasks {
        t.await.unwrap();
    }
    s.wait_metric("lstm_active_streams{model=\"chars\"", 0.0)
        .await;
    // steps of more than 32 streams ran
    let steps = s.metric("lstm_batch_size_count{kind=\"text\"}").await;
    let small = s
        .metric("lstm_batch_size_bucket{kind=\"text\",le=\"32\"}")
        .await;
    assert!(
        steps - small > 100.0,
        "{steps} steps, {small} of at most 32 streams"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_shapes_and_sse_framing() {
    let s = Server::start(args()).await;
    let models: Value = client()
        .get(s.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "chars");
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(models["data"][0]["owned_by"], "lstm");

    let v = complete(
        &s,
        json!({"model": "chars", "prompt": ["to be"], "max_tokens": 12, "seed": 1}),
    )
    .await;
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "chars");
    let c = &v["choices"][0];
    assert_eq!(c["index"], 0);
    assert_eq!(c["finish_reason"], "length");
    assert_eq!(c["text"].as_str().unwrap().chars().count(), 12);
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17})
    );

    // streaming: one data line per event, chunks of the same id, [DONE] last, the usage chunk
    // when asked for
    let r = client()
        .post(s.url("/v1/completions"))
        .json(
            &json!({"model": "chars", "prompt": "to be", "max_tokens": 12, "seed": 1,
                      "stream": true, "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data = sse_data(&r.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, c["text"].as_str().unwrap(), "streamed = not streamed");
    for c in &chunks[..chunks.len() - 2] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
        assert!(c["id"].as_str().unwrap().starts_with("cmpl-"));
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_end_the_text_before_them() {
    let s = Server::start(args()).await;
    // greedy: the same text every time
    let req = json!({"model": "chars", "prompt": "the", "max_tokens": 40, "temperature": 0});
    let full = complete(&s, req.clone()).await["choices"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let chars: Vec<char> = full.chars().collect();
    let stop: String = chars[10..13].iter().collect();
    let before = &full[..full.find(&stop).unwrap()];
    let mut with_stop = req.clone();
    with_stop["stop"] = json!(["\u{1}never", stop]);
    let v = complete(&s, with_stop.clone()).await;
    assert_eq!(v["choices"][0]["text"], before);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let (streamed, finish) = stream_text(&s, with_stop).await;
    assert_eq!((streamed.as_str(), finish.as_str()), (before, "stop"));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_frees_its_slot() {
    let s = Server::start(args()).await;
    let body = json!({"model": "chars", "prompt": "to", "max_tokens": 10_000_000,
                      "stream": true});
    let mut conn = s.raw_post("/v1/completions", &body.to_string()).await;
    let mut head = vec![0u8; 4096];
    let n = conn.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let t = Instant::now();
    while s.metric("lstm_active_streams{model=\"chars\"").await != 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the stream did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut more = vec![0u8; 4096];
    assert!(conn.read(&mut more).await.unwrap() > 0, "pieces arrive");
    drop(conn);
    let t = Instant::now();
    loop {
        if s.metric("lstm_active_streams{model=\"chars\"").await == 0.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tokens = s
        .metric("lstm_tokens_generated_total{model=\"chars\"")
        .await;
    assert!(tokens < 10_000_000.0, "it stopped early: {tokens} tokens");
    // and the model serves the next request
    complete(
        &s,
        json!({"model": "chars", "prompt": "to", "max_tokens": 3}),
    )
    .await;
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let mut a = args();
    a.max_batch = 1;
    a.queue = 1;
    let s = Server::start(a).await;
    let long = json!({"model": "chars", "prompt": "to", "max_tokens": 10_000_000, "stream": true});
    // the one slot
    let r1 = client()
        .post(s.url("/v1/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    let mut b1 = r1.bytes_stream();
    b1.next().await.unwrap().unwrap();
    // the one place in the queue
    let s_url = s.url("/v1/completions");
    let long2 = long.clone();
    let waiting = tokio::spawn(async move { client().post(s_url).json(&long2).send().await });
    let t = Instant::now();
    while s.metric("lstm_queue_depth{model=\"chars\"").await < 1.0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r3 = client()
        .post(s.url("/v1/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(r3.status(), 429);
    assert_eq!(r3.headers()["retry-after"], "1");
    let e: Value = r3.json().await.unwrap();
    assert_eq!(e["error"]["type"], "rate_limit_error");
    assert_eq!(e["error"]["code"], "queue_full");
    // the first client leaves: the waiting one gets the slot
    drop(b1);
    let r2 = waiting.await.unwrap().unwrap();
    assert_eq!(r2.status(), 200);
    let mut b2 = r2.bytes_stream();
    assert!(b2.next().await.unwrap().unwrap().starts_with(b"data: "));
    drop(b2);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_that_fits_the_batch_and_the_queue_is_all_served() {
    let mut a = args();
    a.max_batch = 4;
    a.queue = 4;
    let s = Server::start(a).await;
    // 4 running and 4 waiting fit; the ones not admitted yet when the burst arrives used to
    // count against --queue while the batch had room, and got 429
    for round in 0..3 {
        let sends: Vec<_> = (0..8)
            .map(|k| {
                let url = s.url("/v1/completions");
                tokio::spawn(async move {
                    client()
                        .post(url)
                        .json(&json!({"model": "chars", "prompt": "to", "max_tokens": 300, "seed": k}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect();
        for (k, h) in sends.into_iter().enumerate() {
            assert_eq!(h.await.unwrap(), 200, "round {round}, request {k}");
        }
    }
    s.stop().await.unwrap();
}
