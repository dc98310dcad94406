//! The official `openai` Python client against the real server: models, a completion, a
//! stream with usage equal to it, a stop string, and its exception types for 404, 400 and 401.
//! Runs where `$LSTM_SERVE_PYTHON` (default `python3`) imports `openai`; prints SKIPPED
//! otherwise (CI does not install it).

mod common;

use common::{text_model, Server};
use lstm_serve::ServeArgs;

const SCRIPT: &str = r#"
import sys
import openai
from openai import OpenAI
base = sys.argv[1]
c = OpenAI(base_url=base + "/v1", api_key="k1", max_retries=0, timeout=30)
assert [m.id for m in c.models.list()] == ["chars"]
r = c.completions.create(model="chars", prompt="the ", max_tokens=20, seed=1, temperature=0.8)
assert r.object == "text_completion" and r.choices[0].finish_reason == "length", r
assert r.usage.completion_tokens == 20 and r.usage.prompt_tokens == 4, r.usage
text, usage = "", None
for ch in c.completions.create(model="chars", prompt="the ", max_tokens=20, seed=1,
                               temperature=0.8, stream=True,
                               stream_options={"include_usage": True}):
    if ch.choices:
        text += ch.choices[0].text
    else:
        usage = ch.usage
assert text == r.choices[0].text, (text, r.choices[0].text)
assert usage.completion_tokens == 20
full = c.completions.create(model="chars", prompt="the", max_tokens=30, temperature=0)
stop = full.choices[0].text[5:7]
cut = c.completions.create(model="chars", prompt="the", max_tokens=30, temperature=0, stop=[stop])
assert cut.choices[0].finish_reason == "stop"
assert cut.choices[0].text == full.choices[0].text[:full.choices[0].text.find(stop)]
try:
    c.completions.create(model="nope", prompt="x")
    raise SystemExit("no 404")
except openai.NotFoundError as e:
    assert e.body["param"] == "model"
try:
    c.completions.create(model="chars", prompt="x", max_tokens=100000)
    raise SystemExit("no 400")
except openai.BadRequestError as e:
    assert e.body["param"] == "max_tokens"
try:
    OpenAI(base_url=base + "/v1", api_key="bad", max_retries=0).models.list()
    raise SystemExit("no 401")
except openai.AuthenticationError:
    pass
print("openai client: ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_client_works_with_a_base_url() {
    let python = std::env::var("LSTM_SERVE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = std::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        println!("SKIPPED: {python} cannot import openai (set LSTM_SERVE_PYTHON)");
        return;
    }
    let mut a = ServeArgs::with_models([format!("chars={}", text_model().display())]);
    a.api_key = Some("k1".into());
    let s = Server::start(a).await;
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args(["-c", SCRIPT, &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await.unwrap();
}
