//! Continuous batching for a text model: one scheduler thread owns the model and, in a loop,
//! admits waiting completions up to `--max-batch`, advances every active stream one token in
//! one batched step ([`BatchGenerator::step`]), sends each stream its new piece, and drops the
//! streams that finished (length or stop string) or whose client has gone (its channel is
//! closed: the slot is freed before the next step).
//!
//! A stream's tokens depend only on its own state and seed, so its text is the same whether it
//! ran alone or beside 63 others.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use lstm::data::vocab::Vocab;
use lstm::SequenceModel;
use tokio::sync::mpsc::error::TrySendError as EventSendError;
use tokio::sync::mpsc::Sender;

use crate::error::ApiError;
use crate::metrics::{Metrics, ModelGauges};
use lstm::model::batch::{BatchGenerator, StreamState};
use lstm::tasks::text::TextStream;

/// What a completion's client receives from the scheduler.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Newly generated text (possibly several pieces, held back while they could begin a stop
    /// string).
    Text(String),
    /// The end: `"length"` or `"stop"`, and the number of tokens generated.
    Done {
        /// OpenAI's `finish_reason`.
        finish_reason: &'static str,
        /// Tokens generated.
        completion_tokens: usize,
    },
    /// The model failed on this stream.
    Error(String),
    /// The server's shutdown grace period ended before the stream did.
    Shutdown,
}

/// What a client whose completion was cut at shutdown is told.
pub const SHUTDOWN_MESSAGE: &str =
    "the server is shutting down and its grace period is over; send the request again (to this server once it is back, or another)";

/// A completion waiting for a slot.
pub struct Completion {
    /// Its sampling.
    pub stream: TextStream,
    /// Stop strings (the text ends before the first one generated).
    pub stop: Vec<String>,
    /// Where its events go (a bounded channel: a stream whose client does not read is paused
    /// while its channel is full); a closed channel means the client has gone.
    pub events: Sender<Event>,
    /// When the request arrived (for the time-to-first-token histogram).
    pub arrived: Instant,
}

/// A text model's scheduler: its queue, and what requests need to check against.
pub struct TextWorker {
    queue: SyncSender<Completion>,
    /// `--queue`: how many may wait beyond the room left in the running batch.
    waiting: usize,
    max_batch: usize,
    gauges: Arc<ModelGauges>,
    cut: Arc<AtomicBool>,
    /// The model's vocabulary.
    pub vocab: Vocab,
}

impl TextWorker {
    /// Starts the scheduler thread of model `name`, with at most `max_batch` streams at once and
    /// `queue` waiting.
    ///
    /// # Errors
    /// A model without vocabulary, or one that batched generation does not support (GRU, RNN,
    /// bidirectional, projection, dense input, a head on the last step only).
    pub fn start(
        name: &str,
        model: SequenceModel,
        vocab: Vocab,
        max_batch: usize,
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<TextWorker> {
        if !BatchGenerator::supports(&model) {
            anyhow::bail!(
                "model {name:?}: completions need a unidirectional LSTM without projection, \
                 with token input and a head on every step; this one ({:?}) is not served",
                model.config().mode
            );
        }
        let generator = BatchGenerator::new(&model)?;
        // a request the scheduler has not admitted yet waits in the channel even when the
        // batch has room for it (it is admitted at the next step): the room counts as queue
        let (tx, rx) = sync_channel(queue + max_batch);
        let gauges = metrics.model(name, "text");
        let g = gauges.clone();
        let cut = Arc::new(AtomicBool::new(false));
        let c = cut.clone();
        std::thread::Builder::new()
            .name(format!("text-{name}"))
            .spawn(move || schedule(model, generator, rx, max_batch, g, metrics, c))?;
        Ok(TextWorker {
            queue: tx,
            waiting: queue,
            max_batch,
            gauges,
            cut,
            vocab,
        })
    }

    /// Ends every running and queued completion with [`Event::Shutdown`] (the server's grace
    /// period is over), so that each client gets an error and, streaming, `[DONE]`.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Queues a completion.
    ///
    /// # Errors
    /// 429 when the queue is full, 503 when the scheduler has stopped.
    pub fn submit(&self, name: &str, c: Completion) -> Result<(), ApiError> {
        let before = self.gauges.queued.fetch_add(1, Ordering::Relaxed);
        let room = self
            .max_batch
            .saturating_sub(self.gauges.active.load(Ordering::Relaxed));
        if before >= self.waiting + room {
            self.gauges.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::queue_full(name));
        }
        match self.queue.try_send(c) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.gauges.queued.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => ApiError::queue_full(name),
                    TrySendError::Disconnected(_) => {
                        ApiError::unavailable(format!("the model {name:?} has stopped"))
                    }
                })
            }
        }
    }
}

/// One admitted stream.
struct Active {
    c: Completion,
    state: StreamState,
    stopper: Stopper,
    finished: bool,
}

impl Active {
    fn send(&mut self, e: Event) {
        // a stream only steps with room in its channel, and sends at most two events a step
        if let Err(EventSendError::Closed(_)) = self.c.events.try_send(e) {
            // the client has gone: free the slot
            self.finished = true;
        }
    }

    /// Whether the stream may step: room for the step's events (a piece, and the end).
    fn ready(&self) -> bool {
        self.c.events.capacity() >= 3
    }
}

/// The scheduler loop; returns when the queue's sender is dropped and no stream is left.
fn schedule(
    model: SequenceModel,
    mut generator: BatchGenerator,
    rx: Receiver<Completion>,
    max_batch: usize,
    gauges: Arc<ModelGauges>,
    metrics: Arc<Metrics>,
    cut: Arc<AtomicBool>,
) {
    let mut active: Vec<Active> = Vec::new();
    let mut open = true;
    loop {
        // admit: block while idle, else take what is waiting up to the batch size
        while open && active.len() < max_batch {
            let next = if active.is_empty() {
                rx.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match next {
                Ok(c) => {
                    gauges.queued.fetch_sub(1, Ordering::Relaxed);
                    if c.events.is_closed() {
                        continue;
                    }
                    active.push(Active {
                        state: generator.new_state(),
                        stopper: Stopper::new(c.stop.clone()),
                        c,
                        finished: false,
                    });
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        // past the shutdown grace period: every stream ends, the ones just admitted too
        if cut.load(Ordering::SeqCst) {
            for a in &mut active {
                a.send(Event::Shutdown);
            }
            active.clear();
        }
        active.retain(|a| !a.c.events.is_closed());
        gauges.active.store(active.len(), Ordering::Relaxed);
        if active.is_empty() {
            if open {
                continue;
            }
            return;
        }
        // the streams whose clients keep up step; the others wait for room in their channel
        let mut ready: Vec<&mut Active> = active.iter_mut().filter(|a| a.ready()).collect();
        if ready.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        let tokens: Vec<u32> = ready.iter().map(|a| a.c.stream.input()).collect();
        let mut states: Vec<&mut StreamState> = ready.iter_mut().map(|a| &mut a.state).collect();
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            generator.step(&tokens, &mut states).map(|l| l.to_vec())
        }));
        drop(states);
        let logits = match stepped {
            Ok(Ok(l)) => l,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the model panicked".to_string(),
                };
                drop(ready);
                for a in &mut active {
                    a.send(Event::Error(why.clone()));
                }
                active.clear();
                gauges.active.store(0, Ordering::Relaxed);
                // the generator may be half-way through a step: start afresh
                match BatchGenerator::new(&model) {
                    Ok(g) => generator = g,
                    Err(_) => return,
                }
                continue;
            }
        };
        metrics.batch("text", ready.len());
        let outputs = logits.len() / ready.len();
        for (b, a) in ready.iter_mut().enumerate() {
            let row = &logits[b * outputs..(b + 1) * outputs];
            let piece = match catch_unwind(AssertUnwindSafe(|| a.c.stream.advance(row))) {
                Ok(p) => p,
                Err(_) => {
                    a.finished = true;
                    gauges.active.fetch_sub(1, Ordering::Relaxed);
                    a.send(Event::Error("sampling panicked".into()));
                    continue;
                }
            };
            let Some(piece) = piece else { continue };
            if a.c.stream.produced() == 1 {
                metrics.first_token(a.c.arrived.elapsed());
            }
            gauges.tokens.fetch_add(1, Ordering::Relaxed);
            let (text, stopped) = a.stopper.push(&piece);
            if !text.is_empty() {
                a.send(Event::Text(text));
            }
            if stopped || a.c.stream.done() {
                // its slot is free before its client hears the end: a client that sends again
                // at once was refused (429) while the slot still counted (a CI run caught it)
                a.finished = true;
                gauges.active.fetch_sub(1, Ordering::Relaxed);
                let rest = a.stopper.flush();
                if !stopped && !rest.is_empty() {
                    // the text held back while it could begin a stop string
                    a.send(Event::Text(rest));
                }
                a.send(text_end(stopped, a.c.stream.produced()));
            }
        }
        active.retain(|a| !a.finished);
        gauges.active.store(active.len(), Ordering::Relaxed);
    }
}

fn text_end(stopped: bool, completion_tokens: usize) -> Event {
    Event::Done {
        finish_reason: if stopped { "stop" } else { "length" },
        completion_tokens,
    }
}

/// Cuts a stream's text before its first stop string, holding back the end of the text while
/// it could still begin one.
#[derive(Clone, Debug)]
pub struct Stopper {
    stop: Vec<String>,
    text: String,
    sent: usize,
}

impl Stopper {
    /// A stopper for these stop strings (empty ones are ignored).
    pub fn new(stop: Vec<String>) -> Stopper {
        Stopper {
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            text: String::new(),
            sent: 0,
        }
    }

    /// Adds a piece; returns the text that may now be sent, and whether a stop string ended the
    /// text (the returned text then ends just before it).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        let tail = &self.text[self.sent..];
        if let Some(i) = self.stop.iter().filter_map(|s| tail.find(s.as_str())).min() {
            let out = tail[..i].to_string();
            self.sent = self.text.len();
            return (out, true);
        }
        let held = tail
            .char_indices()
            .map(|(i, _)| &tail[i..])
            .find(|suffix| self.stop.iter().any(|s| s.starts_with(suffix)))
            .map_or(0, str::len);
        let out = tail[..tail.len() - held].to_string();
        self.sent += out.len();
        (out, false)
    }

    /// The text held back, at the end of the stream.
    pub fn flush(&mut self) -> String {
        let out = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stop: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let mut s = Stopper::new(stop.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        for p in pieces {
            let (t, stopped) = s.push(p);
            out.push(t);
            if stopped {
                return (out, true);
            }
        }
        out.push(s.flush());
        (out, false)
    }

    #[test]
    fn stop_strings_cut_and_hold_back() {
        assert_eq!(
            run(&["\n\n"], &["a", "b", "\n", "c", "\n", "\n", "d"]),
            (
                vec![
                    "a".into(),
                    "b".into(),
                    "".into(),
                    "\nc".into(),
                    "".into(),
                    "".into()
                ],
                true
            )
        );
        assert_eq!(
            run(&["xyz"], &["ax", "y", "q"]),
            (vec!["a".into(), "".into(), "xyq".into(), "".into()], false)
        );
        assert_eq!(run(&[], &["é", "b"]).0.concat(), "éb");
        assert_eq!(run(&["b"], &["ab"]), (vec!["a".into()], true));
    }
}
