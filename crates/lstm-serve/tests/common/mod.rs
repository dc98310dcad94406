//! Tiny models trained in the test, and the real server on 127.0.0.1:0.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lstm::{Job, Settings, Task};
use lstm_serve::ServeArgs;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A directory for this test binary's files, under cargo's `target/tmp` (the models trained
/// once per binary live in statics, which are never dropped, so the directory outlives the
/// run): `lstm-serve-test-PID`; those of runs no longer alive are removed on first use.
pub fn scratch() -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    SWEPT.call_once(|| sweep_dead_runs(root));
    let d = root.join(format!("lstm-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes the `lstm-serve-test-PID` directories in `root` whose process is gone (Linux: no
/// `/proc/PID`; elsewhere nothing is removed).
fn sweep_dead_runs(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("lstm-serve-test-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn train(task: Task, name: &str, data: &str, tweak: impl FnOnce(&mut Settings)) -> PathBuf {
    let dir = scratch();
    let ext = if task == Task::Text { "txt" } else { "csv" };
    let file = dir.join(format!("{name}.{ext}"));
    std::fs::write(&file, data).unwrap();
    let out = dir.join(name);
    let mut s = Settings::defaults(task);
    s.data = Some(file.display().to_string());
    s.minutes = None;
    s.epochs = None;
    s.steps = Some(8);
    s.threads = 1;
    s.eval_every = 1000;
    s.sample_every = 0;
    s.dropout = 0.0;
    tweak(&mut s);
    Job::new(task, s, out.clone())
        .unwrap()
        .train(&|_, _, _| Ok(()), &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    out
}

/// A 2x32 character model (trained once per test binary).
pub fn text_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let text = "the quick brown fox jumps over the lazy dog.\nto be or not to be.\n".repeat(40);
        train(Task::Text, "chars", &text, |s| {
            s.layers = 2;
            s.hidden = 32;
            s.seq_len = 16;
            s.batch = 4;
        })
    })
}

/// A global forecaster of two series `a` and `b` with an id and a time column, horizon 4.
pub fn forecast_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let mut csv = String::from("id,t,y\n");
        for (id, base) in [("a", 10.0), ("b", 50.0)] {
            for t in 1..=80 {
                let v = base + 3.0 * ((t % 6) as f64) + 0.1 * t as f64;
                csv.push_str(&format!("{id},{t},{v}\n"));
            }
        }
        train(Task::Forecast, "series", &csv, |s| {
            s.id_column = Some("id".into());
            s.date_column = Some("t".into());
            s.columns = vec!["y".into()];
            s.horizon = 4;
            s.layers = 1;
            s.hidden = 8;
            s.batch = 8;
        })
    })
}

/// A global forecaster of one series with a time column and the known column `promo`,
/// horizon 3.
pub fn known_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let mut csv = String::from("t,y,promo\n");
        for t in 1..=80 {
            let promo = u8::from(t % 5 == 0);
            let v = 10.0 + 3.0 * ((t % 6) as f64) + 4.0 * f64::from(promo);
            csv.push_str(&format!("{t},{v},{promo}\n"));
        }
        train(Task::Forecast, "promo", &csv, |s| {
            s.date_column = Some("t".into());
            s.columns = vec!["y".into()];
            s.known_columns = vec!["promo".into()];
            s.horizon = 3;
            s.layers = 1;
            s.hidden = 8;
            s.batch = 8;
        })
    })
}

/// A window forecaster (`--forecaster window`) of columns `y` (the target) and `x`, window 8.
pub fn window_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let mut csv = String::from("y,x\n");
        for t in 0..120 {
            csv.push_str(&format!("{},{}\n", 10.0 + (t % 7) as f64, (t % 3) as f64));
        }
        train(Task::Forecast, "window", &csv, |s| {
            s.forecaster = lstm::tasks::settings::Forecaster::Window;
            s.columns = vec!["y".into(), "x".into()];
            s.window = 8;
            s.horizon = 2;
            s.layers = 1;
            s.hidden = 8;
            s.batch = 8;
        })
    })
}

/// A classifier of short texts into `pos` and `neg`.
pub fn classify_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let mut csv = String::from("text,label\n");
        for i in 0..40 {
            csv.push_str(&format!(
                "good great fine {i},pos\nbad awful poor {i},neg\n"
            ));
        }
        train(Task::Classify, "sentiment", &csv, |s| {
            s.hidden = 8;
            s.embedding = 8;
            s.batch = 8;
            s.min_count = 1;
        })
    })
}

/// A classifier of 1,001 classes, one word each (`w0` is `c0`...): too many classes for every
/// probability of 1,000 texts in one answer.
pub fn many_class_model() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let mut csv = String::from("text,label\n");
        // twice, so that the validation split's labels are trained on
        for i in (0..1001).chain(0..1001) {
            csv.push_str(&format!("w{i},c{i}\n"));
        }
        train(Task::Classify, "many", &csv, |s| {
            s.hidden = 4;
            s.embedding = 4;
            s.batch = 8;
            s.steps = Some(1);
            s.min_count = 1;
        })
    })
}

/// A running in-process server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts `args` on 127.0.0.1:0 and waits for `/health`.
    pub async fn start(args: ServeArgs) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(lstm_serve::serve(args, listener, async {
            let _ = rx.await;
        }));
        let s = Server {
            base,
            stop: Some(tx),
            handle,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client().get(s.url("/health")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s
    }

    /// A raw connection that has sent `POST path` with the JSON `body` (to close it for
    /// certain, as a client that goes away).
    pub async fn raw_post(&self, path: &str, body: &str) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut conn = tokio::net::TcpStream::connect(self.base.trim_start_matches("http://"))
            .await
            .unwrap();
        conn.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        conn
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for it to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the server stops in time")
            .unwrap()
    }

    /// Waits (at most 10 s) until the metric `prefix` has the value `want`.
    pub async fn wait_metric(&self, prefix: &str, want: f64) {
        let t = Instant::now();
        loop {
            let v = self.metric(prefix).await;
            if v == want {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{prefix} is {v}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A metric's value (first line starting with `prefix`).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {prefix} in\n{text}"))
    }
}

/// A client with a timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The `data:` payloads of an SSE body, checking the framing (`data: ...` lines, events
/// separated by a blank line).
pub fn sse_data(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "events end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .filter(|e| !e.starts_with(':'))
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("an event is one data line: {e:?}"))
                .to_string()
        })
        .collect()
}
