//! `/v1/forecast` and `/v1/classify` against the real server: the library's own answers for
//! the same inputs, concurrent requests gathered into one batch, errors naming the field.

mod common;

use std::time::Duration;

use common::{
    classify_model, client, forecast_model, known_model, many_class_model, scratch, window_model,
    Server,
};
use lstm::tasks::job;
use lstm_serve::ServeArgs;
use serde_json::{json, Value};

fn args() -> ServeArgs {
    let mut a = ServeArgs::with_models([
        format!("series={}", forecast_model().display()),
        format!("sentiment={}", classify_model().display()),
    ]);
    a.batch_wait_ms = 200;
    a
}

async fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = client().post(s.url(path)).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn history(base: f64, n: usize) -> (Vec<u32>, Vec<f64>) {
    let t: Vec<u32> = (1..=n as u32).collect();
    let v = t
        .iter()
        .map(|&t| base + 3.0 * ((t % 6) as f64) + 0.1 * t as f64)
        .collect();
    (t, v)
}

/// Equal up to JSON's decimal round trip (serde_json's default parser may be off by an ulp).
fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{a:?} against {b:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_match_the_library_and_run_as_one_batch() {
    // the library's answer for series a alone, from a CSV
    let (t, v) = history(10.0, 60);
    let mut csv = String::from("id,t,y\n");
    for (t, v) in t.iter().zip(&v) {
        csv.push_str(&format!("a,{t},{v}\n"));
    }
    let file = scratch().join("a.csv");
    std::fs::write(&file, csv).unwrap();
    let mut l = lstm::load(forecast_model()).unwrap();
    let expected = job::forecast_global(&mut l, &file, Some(3), &[0.1, 0.9]).unwrap();
    let (_, want) = &expected.series[0];

    let s = Server::start(args()).await;
    let req = json!({"model": "series", "steps": 3, "quantiles": [0.1, 0.9],
                     "series": [{"id": "a", "time": t, "values": v}]});
    let (status, got) = post(&s, "/v1/forecast", &req).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "forecast");
    let f = &got["forecasts"][0];
    assert_eq!(f["id"], "a");
    assert_eq!(f["time"], json!(["61", "62", "63"]));
    let values: Vec<f64> = serde_json::from_value(f["values"].clone()).unwrap();
    close(&values, &want.median);
    let q1: Vec<f64> = serde_json::from_value(f["quantiles"]["0.1"].clone()).unwrap();
    close(&q1, &want.quantiles[0].1);
    assert!(f["quantiles"]["0.9"].is_array());

    // 6 concurrent requests of different series arrive within the batch wait: one batch
    let before = s.metric("lstm_batch_size_count{kind=\"forecast\"}").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let url = s.url("/v1/forecast");
        let (t, v) = history(10.0 + 5.0 * i as f64, 40 + i);
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "series", "steps": 2,
                              "series": [{"id": format!("s{i}"), "time": t, "values": v}]});
            let r = client().post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["forecasts"][0]["id"], format!("s{i}"));
            assert_eq!(v["forecasts"][0]["values"].as_array().unwrap().len(), 2);
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let batches = s.metric("lstm_batch_size_count{kind=\"forecast\"}").await - before;
    assert!(batches < 6.0, "6 requests ran in {batches} batches");

    // errors name the field
    let (t, v) = history(10.0, 30);
    for (body, param) in [
        (
            json!({"model": "series", "series": [{"id": "a", "values": v}]}),
            "series[0].time",
        ),
        (
            json!({"model": "series", "series": [{"id": "a", "time": t, "values": []}]}),
            "series[0].values",
        ),
        (
            json!({"model": "series", "steps": 99, "series": [{"time": t, "values": v}]}),
            "steps",
        ),
        (
            json!({"model": "series", "quantiles": [1.5], "series": [{"time": t, "values": v}]}),
            "quantiles[0]",
        ),
        (
            json!({"model": "series", "series": [{"time": t, "values": v, "known": {"x": [1]}}]}),
            "series[0].known.x",
        ),
        (
            json!({"model": "series", "series": [{"time": t[..3], "values": v}]}),
            "series[0].time",
        ),
        (
            json!({"model": "series", "series": [{"id": "a", "time": t, "values": v},
                                               {"id": "a", "time": t, "values": v}]}),
            "series[1].id",
        ),
        (
            // a CSV's cells are read without their blanks: " a" is "a"
            json!({"model": "series", "series": [{"id": "a", "time": t, "values": v},
                                               {"id": " a ", "time": t, "values": v}]}),
            "series[1].id",
        ),
        (
            json!({"model": "series", "series": [{"time": t, "values": v, "extra": 1}]}),
            "series[0].extra",
        ),
    ] {
        let (status, e) = post(&s, "/v1/forecast", &body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    // a series too short for the model: the library's message, about the request
    let (status, e) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "series", "series": [{"time": [1, 2], "values": [1.0, 2.0]}]}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        !e["error"]["message"].as_str().unwrap().contains(".csv"),
        "{e}"
    );
    // an id with blanks is answered under it (the model reads it without them)
    let (status, got) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "series", "series": [{"id": " a ", "time": t, "values": v}]}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["forecasts"][0]["id"], " a ");
    let (status, e) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "series", "series": [{"id": "a\nb", "time": t, "values": v}]}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["param"].as_str()),
        (400, Some("series[0].id")),
        "{e}"
    );
    // a time given twice is named by the request's series and rows, not a file's lines
    let mut t2 = t.clone();
    t2[5] = t2[4];
    let (status, e) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "series", "series": [{"id": "a", "time": t2, "values": v}]}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("series[0] row 5") && m.contains("series[0] row 4") && !m.contains("line "),
        "{e}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classifications_match_the_library_and_run_as_one_batch() {
    let texts: Vec<String> = ["good great fine", "bad awful poor", "great", "poor"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut l = lstm::load(classify_model()).unwrap();
    let want = job::classify(&mut l, &texts).unwrap();

    let s = Server::start(args()).await;
    let (status, got) = post(
        &s,
        "/v1/classify",
        &json!({"model": "sentiment", "texts": texts}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "classification");
    let labels: Vec<String> = serde_json::from_value(got["labels"].clone()).unwrap();
    assert_eq!(labels.len(), 2);
    for (p, w) in got["predictions"].as_array().unwrap().iter().zip(&want) {
        assert_eq!(p["label"], w.label.as_str());
        assert_eq!(p["probability"].as_f64().unwrap() as f32, w.probability);
        let probs: Vec<f32> = serde_json::from_value(p["probabilities"].clone()).unwrap();
        assert_eq!(probs, w.probabilities);
    }

    let before = s.metric("lstm_batch_size_count{kind=\"classify\"}").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = s.url("/v1/classify");
        let text = texts[i % 4].clone();
        let label = want[i % 4].label.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "sentiment", "texts": [text, "good"]});
            let r = client().post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["predictions"][0]["label"], label.as_str());
            assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let batches = s.metric("lstm_batch_size_count{kind=\"classify\"}").await - before;
    assert!(batches < 8.0, "8 requests ran in {batches} batches");

    // the k most probable classes instead of all: the label first, the rest in order
    for k in [1, 2, 5] {
        let (status, got) = post(
            &s,
            "/v1/classify",
            &json!({"model": "sentiment", "texts": texts, "top_k": k}),
        )
        .await;
        assert_eq!(status, 200, "{got}");
        for (p, w) in got["predictions"].as_array().unwrap().iter().zip(&want) {
            assert!(p.get("probabilities").is_none(), "{p}");
            let top = p["top"].as_array().unwrap();
            assert_eq!(top.len(), k.min(2), "{p}");
            assert_eq!(top[0]["label"], w.label.as_str());
            assert_eq!(
                top[0]["probability"].as_f64().unwrap() as f32,
                w.probability
            );
            for t in top {
                let i = labels
                    .iter()
                    .position(|l| t["label"] == l.as_str())
                    .unwrap();
                assert_eq!(
                    t["probability"].as_f64().unwrap() as f32,
                    w.probabilities[i]
                );
            }
            if k > 1 {
                assert!(top[1]["probability"].as_f64() <= top[0]["probability"].as_f64());
                assert_ne!(top[0]["label"], top[1]["label"]);
            }
        }
    }

    for (body, param) in [
        (
            json!({"model": "sentiment", "texts": ["a"], "top_k": 0}),
            "top_k",
        ),
        (
            json!({"model": "sentiment", "texts": ["a"], "top_k": -1}),
            "top_k",
        ),
        (json!({"model": "sentiment", "texts": []}), "texts"),
        (json!({"model": "sentiment"}), "texts"),
        (json!({"model": "sentiment", "texts": "one"}), "texts"),
        (json!({"model": "series", "texts": ["a"]}), "model"),
    ] {
        let (status, e) = post(&s, "/v1/classify", &body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_many_classes_need_top_k() {
    let many = many_class_model();
    let s = Server::start(ServeArgs::with_models([format!("many={}", many.display())])).await;
    let texts: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
    let (status, e) = post(
        &s,
        "/v1/classify",
        &json!({"model": "many", "texts": texts}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "top_k", "{e}");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("1001 classes") && m.contains("top_k"), "{m}");
    let (status, got) = post(
        &s,
        "/v1/classify",
        &json!({"model": "many", "texts": texts, "top_k": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let preds = got["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 1000);
    assert!(preds
        .iter()
        .all(|p| p["top"].as_array().unwrap().len() == 3));
    // fewer texts fit without it
    let (status, got) = post(
        &s,
        "/v1/classify",
        &json!({"model": "many", "texts": &texts[..999]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        got["predictions"][0]["probabilities"]
            .as_array()
            .unwrap()
            .len(),
        1001
    );
    s.stop().await.unwrap();
}

/// Known covariates cover the history and the forecast steps, and the field that falls short
/// is named (the times were blamed); `null` is an optional field left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_columns_cover_the_forecast_steps_and_null_is_absent() {
    let mut a = ServeArgs::with_models([format!("promo={}", known_model().display())]);
    a.batch_wait_ms = 1;
    let s = Server::start(a).await;
    let t: Vec<u32> = (1..=63).collect();
    let v: Vec<f64> = (1..=60).map(|t| 10.0 + 3.0 * ((t % 6) as f64)).collect();
    let promo =
        |n: usize| -> Vec<f64> { (1..=n).map(|t| f64::from(u8::from(t % 5 == 0))).collect() };
    // the history's 60 promo values but 63 times: the promo column is short, not the times
    let (status, e) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "promo", "steps": 3,
                "series": [{"time": t, "values": v, "known": {"promo": promo(60)}}]}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "series[0].known.promo", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one per forecast step (3): 63"),
        "{e}"
    );
    // complete, with null for the optional fields: answered, without quantiles
    let (status, got) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "promo", "steps": null, "quantiles": null,
                "series": [{"id": null, "time": t, "values": v, "known": {"promo": promo(63)}}]}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["forecasts"][0]["values"].as_array().unwrap().len(), 3);
    assert!(got["forecasts"][0].get("quantiles").is_none(), "{got}");
    // `known: null` is the column left out, which this model needs
    let (status, e) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "promo", "series": [{"time": t, "values": v, "known": null}]}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["param"].as_str()),
        (400, Some("series[0].known.promo")),
        "{e}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_forecasts_match_the_library() {
    let y: Vec<f64> = (0..30).map(|t| 10.0 + (t % 7) as f64).collect();
    let x: Vec<f64> = (0..30).map(|t| (t % 3) as f64).collect();
    let mut csv = String::from("y,x\n");
    for (a, b) in y.iter().zip(&x) {
        csv.push_str(&format!("{a},{b}\n"));
    }
    let file = scratch().join("w.csv");
    std::fs::write(&file, csv).unwrap();
    let mut l = lstm::load(window_model()).unwrap();
    let want = job::forecast(&mut l, &file, 2).unwrap();

    let s = Server::start(ServeArgs::with_models([format!(
        "w={}",
        window_model().display()
    )]))
    .await;
    let (status, got) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "w", "series": [{"values": y, "known": {"x": x}}]}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    let values: Vec<f64> = serde_json::from_value(got["forecasts"][0]["values"].clone()).unwrap();
    close(&values, &want.values);
    for (body, param) in [
        (
            json!({"model": "w", "series": [{"values": y}]}),
            "series[0].known.x",
        ),
        (
            json!({"model": "w", "series": [{"values": y, "known": {"x": [1.0]}}]}),
            "series[0].known.x",
        ),
        (
            json!({"model": "w", "quantiles": [0.5], "series": [{"values": y, "known": {"x": x}}]}),
            "quantiles[0]",
        ),
        (
            // no 32-bit number
            json!({"model": "w", "series": [{"values": [1e300, 1.0], "known": {"x": [1.0, 2.0]}}]}),
            "series[0].values",
        ),
        (
            // past the horizon (2), as serve.md says: a huge one would hold the model
            json!({"model": "w", "steps": 1_000_000_000_000u64, "series": [{"values": y, "known": {"x": x}}]}),
            "steps",
        ),
        (
            json!({"model": "w", "series": [{"values": y, "known": {"x": x}},
                                          {"values": y, "known": {"x": x}}]}),
            "series",
        ),
    ] {
        let (status, e) = post(&s, "/v1/forecast", &body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    s.stop().await.unwrap();
}

/// One request may hold at most 1,000 series or texts (a megabyte of small series used to take
/// gigabytes on the model's worker), and at most 100 quantile levels, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_bounded_in_series_texts_and_levels() {
    let s = Server::start(args()).await;
    let one = json!({"id": "a", "time": [1, 2], "values": [1.0, 2.0]});
    let many: Vec<Value> = (0..1001).map(|_| one.clone()).collect();
    let (status, v) = post(
        &s,
        "/v1/forecast",
        &json!({"model": "series", "series": many}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "series", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{v}"
    );
    let texts: Vec<&str> = vec!["fine"; 1001];
    let (status, v) = post(
        &s,
        "/v1/classify",
        &json!({"model": "sentiment", "texts": texts}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "texts", "{v}");
    let (t, vals) = history(10.0, 60);
    let series = json!([{"id": "a", "time": t, "values": vals}]);
    let levels: Vec<f64> = (1..=101).map(|i| i as f64 / 102.0).collect();
    for (q, needle) in [(json!(levels), "at most 100"), (json!([0.5, 0.5]), "twice")] {
        let body = json!({"model": "series", "series": series, "steps": 2, "quantiles": q});
        let (status, v) = post(&s, "/v1/forecast", &body).await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_whose_client_has_gone_is_not_run() {
    let s = Server::start(args()).await;
    let (t, v) = history(10.0, 60);
    let body = json!({"model": "series", "series": [{"id": "a", "time": t, "values": v}]});
    let body = body.to_string();
    // a raw connection, closed while the request waits for its batch (200 ms)
    let conn = s.raw_post("/v1/forecast", &body).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(conn);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answered = "lstm_tokens_generated_total{model=\"series\"";
    assert_eq!(s.metric(answered).await, 0.0, "the forecast ran");
    assert_eq!(s.metric("lstm_queue_depth{model=\"series\"").await, 0.0);
    // the next one runs
    let (code, _) = post(&s, "/v1/forecast", &serde_json::from_str(&body).unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(s.metric(answered).await, 1.0);
    s.stop().await.unwrap();
}
