//! The server under bad requests, keys, panics and signals: 4xx JSON errors naming the field,
//! 401 without the key (except /health), a non-loopback address refused without a key, a
//! panicking request answered 500 while the server goes on, and SIGTERM finishing a running
//! stream before the binary exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::get;
use common::{client, sse_data, text_model, Server};
use lstm_serve::ServeArgs;
use serde_json::{json, Value};

fn args() -> ServeArgs {
    // a second name for the same model: names may hold a `/`, as OpenAI-style names do
    let mut a = ServeArgs::with_models([
        format!("chars={}", text_model().display()),
        format!("org/chars={}", text_model().display()),
    ]);
    a.max_prompt = 50;
    a.max_tokens = 100;
    a.max_body = 4096;
    a
}

/// Posts `body` (raw) and returns the status and the error object.
async fn error_of(s: &Server, path: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    for k in ["message", "type", "param", "code"] {
        assert!(v["error"].get(k).is_some(), "{k} in {v}");
    }
    (status, v["error"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_json_naming_the_field() {
    let s = Server::start(args()).await;
    let c = "/v1/completions";
    let long_stop =
        json!({"model": "chars", "prompt": "a", "stop": ["b".repeat(1001)]}).to_string();
    let cases: Vec<(&str, &str, u16, Value)> = vec![
        (c, r#"{"model": "chars", "prompt": "#, 400, Value::Null),
        (
            c,
            r#"{"model": "nope", "prompt": "a"}"#,
            404,
            json!("model"),
        ),
        (c, r#"{"prompt": "a"}"#, 400, json!("model")),
        // past 32 bits: refused as sent (1e39 was reported as "inf", 1e-50 as "0" and then
        // blamed on the prompt)
        (
            c,
            r#"{"model": "chars", "prompt": "a", "temperature": 1e39}"#,
            400,
            json!("temperature"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "temperature": 1e-50}"#,
            400,
            json!("temperature"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "top_p": 1e-50}"#,
            400,
            json!("top_p"),
        ),
        (c, r#"{"model": "chars"}"#, 400, json!("prompt")),
        (
            c,
            r#"{"model": "chars", "prompt": ""}"#,
            400,
            json!("prompt"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": ["a", "b"]}"#,
            400,
            json!("prompt"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "max_tokens": 101}"#,
            400,
            json!("max_tokens"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "max_tokens": -1}"#,
            400,
            json!("max_tokens"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "max_tokens": "x"}"#,
            400,
            json!("max_tokens"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "temperature": -1}"#,
            400,
            json!("temperature"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "top_p": 0}"#,
            400,
            json!("top_p"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "n": 2}"#,
            400,
            json!("n"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "stop": ["a","b","c","d","e"]}"#,
            400,
            json!("stop"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "bogus": 1}"#,
            400,
            json!("bogus"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": [1, 2, 3]}"#,
            400,
            json!("prompt"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "echo": true}"#,
            400,
            json!("echo"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "logprobs": 2}"#,
            400,
            json!("logprobs"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "presence_penalty": 0.5}"#,
            400,
            json!("presence_penalty"),
        ),
        // not one JSON object: text after it, or an array read field by field
        (
            c,
            r#"{"model": "chars", "prompt": "a", "max_tokens": 2} xyz"#,
            400,
            Value::Null,
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a"}{"a": 1}"#,
            400,
            Value::Null,
        ),
        (c, r#"["chars", "hello", 3]"#, 400, Value::Null),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "stream": true, "stream_options": {"foo": true}}"#,
            400,
            json!("stream_options.foo"),
        ),
        // as OpenAI's: options for a stream that is not asked for would go unused
        (
            c,
            r#"{"model": "chars", "prompt": "a", "stream": false, "stream_options": {"include_usage": true}}"#,
            400,
            json!("stream_options"),
        ),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "stream_options": {"include_usage": true}}"#,
            400,
            json!("stream_options"),
        ),
        (c, &long_stop, 400, json!("stop")),
        (
            c,
            r#"{"model": "chars", "prompt": "a", "seed": 1.5}"#,
            400,
            json!("seed"),
        ),
        (
            "/v1/classify",
            r#"{"model": "chars", "texts": ["a"]}"#,
            400,
            json!("model"),
        ),
        (
            "/v1/forecast",
            r#"{"model": "chars", "series": []}"#,
            400,
            json!("model"),
        ),
    ];
    for (path, body, status, param) in cases {
        let (got, e) = error_of(&s, path, body).await;
        assert_eq!(got, status, "{body}: {e}");
        assert_eq!(e["param"], param, "{body}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    // a message quoting a long name is cut
    let long_name = json!({"model": "m".repeat(3000), "prompt": "a"}).to_string();
    let (got, e) = error_of(&s, c, &long_name).await;
    assert_eq!(got, 404);
    assert!(e["message"].as_str().unwrap().chars().count() < 2100, "{e}");
    let (got, e) = error_of(&s, c, r#"{"model": "chars", "prompt": "#).await;
    assert_eq!((got, e["code"].as_str()), (400, Some("invalid_json")));
    let long = json!({"model": "chars", "prompt": "a".repeat(51)}).to_string();
    let (got, e) = error_of(&s, c, &long).await;
    assert_eq!((got, e["code"].as_str()), (400, Some("prompt_too_long")));
    assert_eq!(e["param"], "prompt");
    let huge = json!({"model": "chars", "prompt": "a".repeat(5000)}).to_string();
    let (got, e) = error_of(&s, c, &huge).await;
    assert_eq!((got, e["code"].as_str()), (413, Some("body_too_large")));
    // a prompt of token ids is told what the model reads
    let (_, e) = error_of(&s, c, r#"{"model": "chars", "prompt": [1, 2]}"#).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("token ids are not accepted"),
        "{e}"
    );
    // OpenAI's fields at their defaults, as clients send them, are accepted
    let r = client()
        .post(s.url(c))
        .json(
            &json!({"model": "chars", "prompt": "a", "max_tokens": 2, "echo": false,
                      "logprobs": null, "presence_penalty": 0, "frequency_penalty": 0.0,
                      "best_of": 1, "suffix": null, "logit_bias": {}, "user": "u"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // a body announced over --max-body is refused before it is sent
    let started = std::time::Instant::now();
    let mut tcp =
        tokio::net::TcpStream::connect(s.url("").trim_start_matches("http://").to_string())
            .await
            .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(
        b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 999999\r\n\r\n{\"model\"",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut head))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let r = client().get(s.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // a known path with another method: a 405 in the same JSON
    let r = client().get(s.url(c)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    // what the `openai` client and other real clients send (a probe, 2026-12-07): a signed
    // seed, `include_obfuscation`, a byte-order mark; `models.retrieve`
    for body in [
        json!({"model": "chars", "prompt": "a", "max_tokens": 2, "seed": -1}).to_string(),
        json!({"model": "chars", "prompt": "a", "max_tokens": 2, "stream": true,
               "stream_options": {"include_usage": true, "include_obfuscation": false}})
        .to_string(),
        format!(
            "\u{feff}{}",
            json!({"model": "chars", "prompt": "a", "max_tokens": 2})
        ),
    ] {
        let r = client()
            .post(s.url(c))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}: {}", r.text().await.unwrap());
    }
    // a negative seed is its 64 bits: the same text as that unsigned seed
    let mut texts = Vec::new();
    for seed in [json!(-1), json!(u64::MAX)] {
        let body = json!({"model": "chars", "prompt": "a", "max_tokens": 20, "seed": seed});
        let v: Value = client()
            .post(s.url(c))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        texts.push(v["choices"][0]["text"].clone());
    }
    assert_eq!(texts[0], texts[1]);
    let v: Value = client()
        .get(s.url("/v1/models/chars"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["id"].as_str(), v["object"].as_str()),
        (Some("chars"), Some("model"))
    );
    let v: Value = client()
        .get(s.url("/v1/models/org/chars"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "org/chars", "{v}");
    let r = client().get(s.url("/v1/models/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    // a compressed body is named, a key given twice has no field to name
    let r = client()
        .post(s.url(c))
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 8, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (got, e) = error_of(&s, "/v1/classify", r#"{"texts": ["a"], "texts": ["b"]}"#).await;
    assert_eq!((got, &e["param"]), (400, &Value::Null), "{e}");
    // and the server still answers
    let r = client()
        .post(s.url(c))
        .json(&json!({"model": "chars", "prompt": "a", "max_tokens": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("lstm_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"),
        "{m}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_401_without_accepted_with() {
    let mut a = args();
    a.api_key = Some("sekret-key".into());
    let s = Server::start(a).await;
    let r = client().get(s.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "/health needs no key");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer sekret-ke"),
        Some("sekret-key"),
    ] {
        for path in ["/v1/models", "/metrics", "/nope"] {
            let mut req = client().get(s.url(path));
            if let Some(h) = auth {
                req = req.header("authorization", h);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path} with {auth:?}");
            assert_eq!(
                r.headers().get("www-authenticate").map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["type"], "authentication_error");
        }
    }
    let r = client()
        .post(s.url("/v1/completions"))
        .bearer_auth("sekret-key")
        .json(&json!({"model": "chars", "prompt": "a", "max_tokens": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(s.url("/nope"))
        .bearer_auth("sekret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "an unknown path with the key");
    // the scheme's name in any case
    let r = client()
        .get(s.url("/v1/models"))
        .header("authorization", "bearer sekret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await.unwrap();
}

#[test]
fn a_non_loopback_address_needs_a_key_or_insecure() {
    use lstm_serve::server::check_exposure;
    let mut a = args();
    let public = "0.0.0.0:8080".parse().unwrap();
    let e = check_exposure(public, &a).unwrap_err().to_string();
    assert!(e.contains("--api-key") && e.contains("--insecure"), "{e}");
    assert!(check_exposure("127.0.0.1:8080".parse().unwrap(), &a).is_ok());
    assert!(check_exposure("[::1]:8080".parse().unwrap(), &a).is_ok());
    a.insecure = true;
    assert!(check_exposure(public, &a).is_ok());
    a.insecure = false;
    a.api_key = Some("k".into());
    assert!(check_exposure(public, &a).is_ok());
    // the binary refuses before binding anything
    let out = Command::new(env!("CARGO_BIN_EXE_lstm-serve"))
        .args([
            "--model",
            &text_model().display().to_string(),
            "--addr",
            "0.0.0.0:0",
        ])
        .env_remove("LSTM_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_request_does_not_take_the_server_down() {
    let state = std::sync::Arc::new(lstm_serve::server::load(&args()).unwrap());
    let extra = axum::Router::new().route(
        "/panic",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("a bug in one request");
            }
            "never"
        }),
    );
    let app = lstm_serve::server::router(state, 4096, extra);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    for _ in 0..3 {
        let r = client().get(format!("{base}/panic")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["type"], "server_error");
    }
    let r = client()
        .post(format!("{base}/v1/completions"))
        .json(&json!({"model": "chars", "prompt": "a", "max_tokens": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(m
        .text()
        .await
        .unwrap()
        .contains("lstm_requests_total{endpoint=\"/panic\",status=\"500\"} 3"));
    server.abort();
}

/// The binary on 127.0.0.1:0 with `grace` seconds to stop: the child, its stderr, its address.
fn spawn_binary(
    grace: u64,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    String,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm-serve"))
        .args([
            "--model",
            &format!("chars={}", text_model().display()),
            "--addr",
            "127.0.0.1:0",
            "--max-tokens",
            "10000000",
            "--shutdown-grace-secs",
            &grace.to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the server ended");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline);
    };
    (child, stderr, addr)
}

/// Waits (at most `secs`) for the child to exit; its exit code.
fn exit_code(child: &mut std::process::Child, secs: u64) -> Option<i32> {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if t.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("the server did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_the_running_stream_and_exits_0() {
    let (mut child, mut stderr, addr) = spawn_binary(20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (text, finish) = rt.block_on(async {
        use futures_util::StreamExt;
        let r = client()
            .post(format!("http://{addr}/v1/completions"))
            .json(
                &json!({"model": "chars", "prompt": "to", "max_tokens": 30000,
                          "stream": true, "seed": 3}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut body = r.bytes_stream();
        let mut all = Vec::new();
        all.extend_from_slice(&body.next().await.unwrap().unwrap());
        // the stream is running: ask the server to stop
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        while let Some(b) = body.next().await {
            all.extend_from_slice(&b.unwrap());
        }
        let data = sse_data(&String::from_utf8(all).unwrap());
        assert_eq!(data.last().unwrap(), "[DONE]");
        let mut text = String::new();
        let mut finish = String::new();
        for d in &data[..data.len() - 1] {
            let v: Value = serde_json::from_str(d).unwrap();
            text.push_str(v["choices"][0]["text"].as_str().unwrap());
            if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
                finish = f.into();
            }
        }
        // no new connection is accepted now
        let refused = client()
            .get(format!("http://{addr}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        assert!(refused.is_err(), "a stopping server accepts no new request");
        (text, finish)
    });
    assert_eq!(finish, "length");
    assert_eq!(
        text.chars().count(),
        30000,
        "the running stream was finished"
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the server did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn past_the_grace_period_streams_end_with_an_error_and_the_server_exits_0() {
    let (mut child, _stderr, addr) = spawn_binary(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(async {
        use futures_util::StreamExt;
        let r = client()
            .post(format!("http://{addr}/v1/completions"))
            .json(
                &json!({"model": "chars", "prompt": "to", "max_tokens": 10_000_000,
                          "stream": true}),
            )
            .send()
            .await
            .unwrap();
        let mut body = r.bytes_stream();
        body.next().await.unwrap().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        // the stream ends soon after the grace second, with an error event and [DONE]
        let mut tail = Vec::new();
        while let Some(Ok(b)) = body.next().await {
            tail.extend_from_slice(&b);
            if tail.len() > 1 << 16 {
                tail.drain(..tail.len() - 4096);
            }
        }
        let tail = String::from_utf8_lossy(&tail);
        let data = sse_data(&tail[tail.find("\n\n").map_or(0, |i| i + 2)..]);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{tail}");
        let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shutting down"),
            "{err}"
        );
        t
    });
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(exit_code(&mut child, 10), Some(0));
}

/// A client that opens a connection and sends part of a request head is cut off after
/// `HEADER_READ_TIMEOUT` (they used to hold their connections, and the server's descriptors,
/// forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(args()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        lstm_serve::server::HEADER_READ_TIMEOUT + Duration::from_secs(10),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() >= lstm_serve::server::HEADER_READ_TIMEOUT - Duration::from_secs(1));
    s.stop().await.unwrap();
}

#[test]
fn sigterm_while_the_models_load_stops_the_server_with_0() {
    // a model directory whose save looks under way (a fresh staging directory beside a
    // damaged file): loading retries it for two seconds, the window the signal lands in
    let dir = std::env::temp_dir().join(format!("lstm-serve-loading-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(text_model()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let w = dir.join("model.safetensors");
    let b = std::fs::read(&w).unwrap();
    std::fs::write(&w, &b[..b.len() / 2]).unwrap();
    std::fs::create_dir(dir.join(lstm::tasks::modeldir::STAGING)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_lstm-serve"))
        .args([
            "--model",
            &format!("chars={}", dir.display()),
            "--addr",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped while loading"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
