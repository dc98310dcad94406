//! Scheduling: how a batch is dealt to the threads (chunks of sequences) and how the shorter
//! sequences of a variable-length batch share lanes.

use super::*;

/// One sequence of a chunk: user batch index `u`, `len` steps, run in lane (chunk row) `lane`
/// from step `start` of the chunk's time loop.
///
/// A variable-length batch packs its shorter sequences one after the other into shared lanes
/// (first-fit, longest first, lanes as long as the chunk's longest sequence): each step's
/// recurrent product streams the whole of `W_hh` whatever its number of rows, so a chunk of
/// fewer, fuller lanes runs the same tokens in fewer passes over the weights. Where a sequence
/// hands its lane to the next (a [`Handover`]), the time loop saves the lane's state as the
/// first one's final state and starts the next from its own initial state; the backward pass
/// does the same with the gradients, so every sequence is computed exactly as alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Seg {
    pub(super) u: usize,
    /// the sequence's place in the chunk's order before the layout (longest first)
    pub(super) item: usize,
    pub(super) lane: usize,
    pub(super) start: usize,
    pub(super) len: usize,
}

/// Lane `lane` passes from sequence `prev` to sequence `next` (indices into `segs`) before
/// step `t` of a time loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Handover {
    pub(super) t: usize,
    pub(super) lane: usize,
    pub(super) prev: usize,
    pub(super) next: usize,
}

/// States of width `w` per sequence: the initial (or final-gradient) ones a time loop starts
/// each sequence from, in the user's batch order (`None`: zero), and where it leaves each
/// sequence's last one, in `segs` order.
pub(super) struct SeqStates<'a> {
    pub(super) w: usize,
    pub(super) start: Option<&'a [f32]>,
    pub(super) fin: &'a mut [f32],
}

impl SeqStates<'_> {
    /// Loads sequence `s`'s starting state into `row`.
    pub(super) fn load(&self, segs: &[Seg], s: usize, row: &mut [f32]) {
        match self.start {
            Some(v) => row.copy_from_slice(&v[segs[s].u * self.w..(segs[s].u + 1) * self.w]),
            None => row.fill(0.0),
        }
    }

    /// Saves `row` as sequence `s`'s last state.
    pub(super) fn save(&mut self, s: usize, row: &[f32]) {
        self.fin[s * self.w..(s + 1) * self.w].copy_from_slice(row);
    }

    /// Before a time loop (`forward`: in time order): each lane starts from its first
    /// sequence's state (`state (lanes, w)`).
    pub(super) fn begin(
        &self,
        segs: &[Seg],
        lanes: &[Range<usize>],
        forward: bool,
        state: &mut [f32],
    ) {
        if self.w == 0 {
            return;
        }
        for (j, r) in lanes.iter().enumerate() {
            let s = if forward { r.start } else { r.end - 1 };
            self.load(segs, s, &mut state[j * self.w..(j + 1) * self.w]);
        }
    }

    /// The handovers `due` now, on `state (lanes, w)`.
    pub(super) fn hand_over(&mut self, segs: &[Seg], due: &[Handover], state: &mut [f32]) {
        if self.w == 0 {
            return;
        }
        for ho in due {
            let row = &mut state[ho.lane * self.w..(ho.lane + 1) * self.w];
            self.save(ho.prev, row);
            self.load(segs, ho.next, row);
        }
    }

    /// After a time loop: each lane's state is its last sequence's.
    pub(super) fn end(&mut self, lanes: &[Range<usize>], forward: bool, state: &[f32]) {
        if self.w == 0 {
            return;
        }
        for (j, r) in lanes.iter().enumerate() {
            let s = if forward { r.end - 1 } else { r.start };
            self.save(s, &state[j * self.w..(j + 1) * self.w]);
        }
    }
}

/// The sequences of a chunk and the handovers of one time loop through its lanes.
#[derive(Clone, Copy)]
pub(super) struct Lanes<'a> {
    pub(super) segs: &'a [Seg],
    pub(super) handovers: &'a [Handover],
}

/// The handovers of `hand` (from `*next` on, in a loop's order) due before step `t`; advances
/// `*next` past them.
pub(super) fn due<'a>(hand: &'a [Handover], next: &mut usize, t: usize) -> &'a [Handover] {
    let n = hand[*next..].iter().take_while(|ho| ho.t == t).count();
    *next += n;
    &hand[*next - n..*next]
}

/// The handovers of a time loop through `lanes` of `segs`, in its order (`forward`: in time).
pub(super) fn handovers(segs: &[Seg], lanes: &[Range<usize>], forward: bool) -> Vec<Handover> {
    let mut v = Vec::new();
    for r in lanes {
        for s in r.start + 1..r.end {
            let (prev, next) = if forward { (s - 1, s) } else { (s, s - 1) };
            let t = if forward {
                segs[s].start
            } else {
                segs[s - 1].start + segs[s - 1].len - 1
            };
            v.push(Handover {
                t,
                lane: segs[s].lane,
                prev,
                next,
            });
        }
    }
    if forward {
        v.sort_by_key(|ho| ho.t);
    } else {
        v.sort_by_key(|ho| std::cmp::Reverse(ho.t));
    }
    v
}

/// Lays out a chunk's sequences `items` (user indices, longest first) in lanes: one lane each,
/// or with `pack`, first-fit into lanes as long as the longest (see [`Seg`]).
pub(super) fn lay_out(items: &[usize], lens: &[usize], pack: bool, chunk: &mut ChunkCache) {
    let cap = items.first().map_or(0, |&u| lens[u]);
    let mut lanes: Vec<(usize, Vec<(usize, usize)>)> = Vec::new(); // (length, (u, item))
    for (item, &u) in items.iter().enumerate() {
        let fit = if pack {
            lanes.iter().position(|(l, _)| l + lens[u] <= cap)
        } else {
            None
        };
        match fit {
            Some(j) => {
                lanes[j].0 += lens[u];
                lanes[j].1.push((u, item));
            }
            None => lanes.push((lens[u], vec![(u, item)])),
        }
    }
    // longest first (stable), so the running lanes are a prefix at every step
    lanes.sort_by_key(|l| std::cmp::Reverse(l.0));
    chunk.segs.clear();
    chunk.lanes.clear();
    for (j, (_, us)) in lanes.iter().enumerate() {
        let first = chunk.segs.len();
        let mut start = 0;
        for &(u, item) in us {
            chunk.segs.push(Seg {
                u,
                item,
                lane: j,
                start,
                len: lens[u],
            });
            start += lens[u];
        }
        chunk.lanes.push(first..chunk.segs.len());
    }
    chunk.handovers = [
        handovers(&chunk.segs, &chunk.lanes, true),
        handovers(&chunk.segs, &chunk.lanes, false),
    ];
}

thread_local! {
    static LANES: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Whether the shorter sequences of a variable-length batch share lanes (see [`with_lanes`]).
pub(super) fn lanes_on() -> bool {
    LANES.with(|c| c.get())
}

/// Runs `f` with the shorter sequences of a variable-length batch sharing lanes (the default)
/// or not, on this thread: for tests and measurements (the results are the same either way,
/// up to the order of the parameter gradients' sums, except that dropout between layers draws
/// its masks in the order of the packed rows).
#[doc(hidden)]
pub fn with_lanes<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let old = LANES.with(|c| c.replace(on));
    let r = f();
    LANES.with(|c| c.set(old));
    r
}

/// Deals the rows of a batch, `order` sorted longest first, to the chunks (the threads): each
/// row goes to the chunk whose estimated time is then least (on a tie, the first such chunk, so
/// rows of equal length go to the chunks in turn), so that the threads finish together. A chunk's time is modelled, in units of one row's share of a step's
/// recurrent products, as about five units per token (the products, the cells, the input and
/// gradient GEMMs) plus four per step its longest row runs (each step's pass over the recurrent
/// weights costs about as much as four more rows in it). Dealing in turn instead gives the
/// first chunk the longer row of every pair: 514 against 482 of `lstm bench`'s 996 tokens
/// (dealt by this model: 496 beside the row of 62, 500 beside 57).
pub(super) fn deal(order: &[usize], lens: &[usize], chunks: &mut [Vec<usize>]) {
    let mut cost = vec![0usize; chunks.len()];
    for &u in order {
        let l = lens[u];
        // the first row of a chunk is its longest (rows come longest first); an empty chunk
        // always wins, so every chunk gets a row
        let after = |c: usize| cost[c] + 5 * l + if chunks[c].is_empty() { 4 * l } else { 0 };
        let best = (0..chunks.len())
            .min_by_key(|&c| after(c))
            .expect("at least one chunk");
        cost[best] = after(best);
        chunks[best].push(u);
    }
}
