//! The server's flags ([`ServeArgs`]) and the model list they name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// Flags of `lstm serve` (and of the `lstm-serve` binary); embeddable in another clap parser
/// with `#[command(flatten)]` or as a subcommand's arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// A model directory to serve, repeatable; its name is the directory's file name, or give
    /// `NAME=DIR`.
    #[arg(long = "model", value_name = "[NAME=]DIR", required = true)]
    pub models: Vec<String>,
    /// The address to listen on; a non-loopback address needs --api-key (or --insecure).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Every request except `GET /health` must send `Authorization: Bearer KEY`.
    #[arg(long, env = "LSTM_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow a non-loopback --addr without --api-key.
    #[arg(long)]
    pub insecure: bool,
    /// Streams a text model advances together, one token each per batched step; forecast series
    /// or classify texts per batch.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Requests that may wait for a slot, per model (at most 65,536); beyond them, 429 with
    /// Retry-After.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Largest `max_tokens` a completion may ask for.
    #[arg(long, default_value_t = 2048)]
    pub max_tokens: usize,
    /// Longest prompt, in the model's tokens (characters for a character model).
    #[arg(long, default_value_t = 4096)]
    pub max_prompt: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// How long a forecast or classify request waits for others to run with it as one batch.
    #[arg(long, default_value_t = 5)]
    pub batch_wait_ms: u64,
    /// After SIGTERM or Ctrl-C, how long running streams may take to finish before the server
    /// exits anyway.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
}

/// The largest `--queue`: every slot of a model's queue is allocated at start (a few hundred
/// bytes each).
pub const MAX_QUEUE: usize = 65_536;

impl ServeArgs {
    /// Arguments with every default and the given model specs (`[NAME=]DIR`).
    pub fn with_models<S: Into<String>>(models: impl IntoIterator<Item = S>) -> ServeArgs {
        ServeArgs {
            models: models.into_iter().map(Into::into).collect(),
            addr: "127.0.0.1:8080".parse().expect("a valid address"),
            api_key: None,
            insecure: false,
            max_batch: 64,
            queue: 256,
            max_tokens: 2048,
            max_prompt: 4096,
            max_body: 1 << 20,
            batch_wait_ms: 5,
            shutdown_grace_secs: 30,
        }
    }

    /// The batch wait as a duration.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    /// Checks the limits and the model specs; returns `(name, dir)` for each model.
    ///
    /// # Errors
    /// A zero limit, an empty key, a spec without a name, two models of one name.
    pub fn check(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        for (flag, v) in [
            ("--max-batch", self.max_batch),
            ("--queue", self.queue),
            ("--max-tokens", self.max_tokens),
            ("--max-prompt", self.max_prompt),
            ("--max-body", self.max_body),
        ] {
            if v == 0 {
                bail!("{flag} must be at least 1");
            }
        }
        if self.queue > MAX_QUEUE {
            bail!(
                "--queue {} is more than {MAX_QUEUE}: its slots are allocated when the server starts; give at most {MAX_QUEUE}",
                self.queue
            );
        }
        if self.batch_wait_ms > 10_000 {
            bail!(
                "--batch-wait-ms {} would hold every batched request that long; give at most 10000",
                self.batch_wait_ms
            );
        }
        if self.api_key.as_deref() == Some("") {
            bail!("--api-key is empty; give a key, or leave it out to serve without one");
        }
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        for spec in &self.models {
            let (name, dir) = parse_model_spec(spec)?;
            if out.iter().any(|(n, _)| *n == name) {
                bail!("two models are named {name:?}; name them apart with --model NAME=DIR");
            }
            out.push((name, dir));
        }
        Ok(out)
    }
}

/// Reads `--addr`: an IP address and port, or `localhost:PORT` (the loopback, 127.0.0.1; no
/// other name is looked up: the address must not depend on a resolver).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    match s.strip_prefix("localhost:").map(str::parse::<u16>) {
        Some(Ok(port)) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        _ => Err(format!(
            "{s:?} is not an address and port: give one like 127.0.0.1:8080, [::1]:8080 or localhost:8080"
        )),
    }
}

/// Reads `[NAME=]DIR`: the name given, or the directory's file name.
///
/// # Errors
/// An empty name or directory, a directory without a file name (`/`, `..`).
pub fn parse_model_spec(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    // a name may hold a `/` (`org/charlm=DIR`, as model names often do); a directory whose
    // own name holds `=` is read as the directory it is
    let (name, dir) = match spec.split_once('=') {
        Some(("", _)) => {
            bail!("--model {spec:?}: give a name before `=` (NAME=DIR), or the directory alone")
        }
        Some((n, d)) if !Path::new(spec).is_dir() => (Some(n.to_string()), d),
        _ => (None, spec),
    };
    if dir.is_empty() {
        bail!("--model {spec:?}: give a model directory");
    }
    let dir = PathBuf::from(dir);
    let name = match name {
        Some(n) => n,
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .with_context(|| {
                format!("--model {spec:?}: the directory has no name; give --model NAME=DIR")
            })?,
    };
    Ok((name, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs() {
        assert_eq!(
            parse_model_spec("runs/shakespeare").unwrap(),
            ("shakespeare".into(), PathBuf::from("runs/shakespeare"))
        );
        assert_eq!(
            parse_model_spec("chat=runs/x").unwrap(),
            ("chat".into(), PathBuf::from("runs/x"))
        );
        assert!(parse_model_spec("/").is_err());
        assert_eq!(
            parse_model_spec("org/charlm=runs/x").unwrap(),
            ("org/charlm".into(), PathBuf::from("runs/x"))
        );
        assert!(parse_model_spec("=runs/x").is_err());
        assert_eq!(
            parse_addr("localhost:9000"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        assert_eq!(parse_addr("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert!(parse_addr("example.com:80").is_err());
        assert!(parse_addr("localhost").is_err());
        // a directory whose name holds `=` is that directory
        let dir = std::env::temp_dir().join(format!("lstm-spec-{}/a=b", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = dir.to_str().unwrap();
        assert_eq!(parse_model_spec(spec).unwrap(), ("a=b".into(), dir.clone()));
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
        let mut a = ServeArgs::with_models(["a=x", "a=y"]);
        assert!(a.check().is_err());
        a.models = vec!["a=x".into(), "b=x".into()];
        assert_eq!(a.check().unwrap().len(), 2);
        a.queue = 0;
        assert!(a.check().unwrap_err().to_string().contains("--queue"));
        a.queue = MAX_QUEUE + 1;
        assert!(a.check().unwrap_err().to_string().contains("--queue"));
        a.queue = MAX_QUEUE;
        assert!(a.check().is_ok());
    }
}
