//! The server's counters, gauges and histograms, written out in Prometheus' text format by
//! `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Latency buckets, seconds.
const SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Batch size buckets.
const SIZES: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A cumulative histogram over fixed buckets.
#[derive(Clone, Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (c, &b) in self.counts.iter_mut().zip(self.bounds) {
            if v <= b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (c, b) in self.counts.iter().zip(self.bounds) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        // no labels: no braces (`_sum{}` is allowed, but read by fewer parsers)
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

/// One model's live figures, shared with its worker thread.
#[derive(Debug, Default)]
pub struct ModelGauges {
    /// Requests waiting for a slot.
    pub queued: AtomicUsize,
    /// Streams being generated (text models).
    pub active: AtomicUsize,
    /// Tokens generated (text) or items answered (forecast series, classified texts).
    pub tokens: AtomicU64,
}

/// Every figure `GET /metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    first_token: Mutex<Option<Histogram>>,
    batch: Mutex<BTreeMap<String, Histogram>>,
    models: Mutex<BTreeMap<String, (String, Arc<ModelGauges>)>>,
}

impl Metrics {
    /// Registers a model (`task`: text, forecast, classify) and returns its gauges.
    pub fn model(&self, name: &str, task: &str) -> Arc<ModelGauges> {
        let g = Arc::new(ModelGauges::default());
        self.models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), (task.to_string(), g.clone()));
        g
    }

    /// Counts a finished request and its time to the response head.
    pub fn request(&self, endpoint: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((endpoint.to_string(), status))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(endpoint.to_string())
            .or_insert_with(|| Histogram::new(&SECONDS))
            .observe(took.as_secs_f64());
    }

    /// Records a completion's time from arrival to its first generated piece.
    pub fn first_token(&self, took: Duration) {
        self.first_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| Histogram::new(&SECONDS))
            .observe(took.as_secs_f64());
    }

    /// Records the size of one batched step (`kind`: text, forecast, classify).
    pub fn batch(&self, kind: &str, size: usize) {
        self.batch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_insert_with(|| Histogram::new(&SIZES))
            .observe(size as f64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP lstm_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE lstm_requests_total counter\n");
        for ((e, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "lstm_requests_total{{endpoint=\"{e}\",status=\"{s}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP lstm_request_duration_seconds Time from a request's arrival to its response \
             head (for a stream: its headers).\n",
        );
        out.push_str("# TYPE lstm_request_duration_seconds histogram\n");
        for (e, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h.write(
                &mut out,
                "lstm_request_duration_seconds",
                &format!("endpoint=\"{e}\""),
            );
        }
        out.push_str(
            "# HELP lstm_time_to_first_token_seconds Time from a completion's arrival to its \
             first generated piece.\n",
        );
        out.push_str("# TYPE lstm_time_to_first_token_seconds histogram\n");
        if let Some(h) = &*self.first_token.lock().unwrap_or_else(|p| p.into_inner()) {
            h.write(&mut out, "lstm_time_to_first_token_seconds", "");
        }
        out.push_str(
            "# HELP lstm_batch_size Streams per batched text step, requests' items per \
             forecast or classify batch.\n",
        );
        out.push_str("# TYPE lstm_batch_size histogram\n");
        for (k, h) in self.batch.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            h.write(&mut out, "lstm_batch_size", &format!("kind=\"{k}\""));
        }
        let models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        for (metric, kind, help) in [
            ("lstm_queue_depth", "gauge", "Requests waiting for a slot."),
            (
                "lstm_active_streams",
                "gauge",
                "Completions being generated.",
            ),
            (
                "lstm_tokens_generated_total",
                "counter",
                "Tokens generated (text), series forecast or texts classified.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for (name, (task, g)) in models.iter() {
                let v = match metric {
                    "lstm_queue_depth" => g.queued.load(Ordering::Relaxed) as u64,
                    "lstm_active_streams" => g.active.load(Ordering::Relaxed) as u64,
                    _ => g.tokens.load(Ordering::Relaxed),
                };
                let _ = writeln!(out, "{metric}{{model=\"{name}\",task=\"{task}\"}} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        let g = m.model("shake", "text");
        g.active.store(3, Ordering::Relaxed);
        m.request("/v1/completions", 200, Duration::from_millis(3));
        m.batch("text", 5);
        m.first_token(Duration::from_millis(2));
        let t = m.render();
        // a histogram without labels is written without braces
        assert!(
            t.contains("lstm_time_to_first_token_seconds_count 1\n"),
            "{t}"
        );
        assert!(!t.contains("{}"), "{t}");
        assert!(t.contains("lstm_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1"));
        assert!(t.contains("lstm_active_streams{model=\"shake\",task=\"text\"} 3"));
        assert!(t.contains("lstm_batch_size_bucket{kind=\"text\",le=\"4\"} 0"));
        assert!(t.contains("lstm_batch_size_bucket{kind=\"text\",le=\"8\"} 1"));
        assert!(t.contains("lstm_request_duration_seconds_count{endpoint=\"/v1/completions\"} 1"));
    }
}
