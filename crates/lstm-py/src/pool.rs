//! Threads after `fork()`. The library computes on rayon's global pool, whose threads stay in
//! the process that started them: a child forked after its parent computed (a `DataLoader`'s
//! workers, `multiprocessing` under Linux's default start method) finds a pool of threads that
//! do not exist and waits for them forever (a probe, 2026-12-07). [`run`] computes on the
//! global pool in the process that imported the package, and in a forked child on a pool made
//! for that child. There the call waits on a worker of that pool: Ctrl-C reaches a long `fit`
//! when it ends, not at its next step, and a fork while another thread was inside a call on the
//! same layer or model leaves the child's calls on it waiting for a lock that was held.

use std::sync::{Mutex, OnceLock};

/// The process that imported the package (whose global pool is its own).
static OWNER: OnceLock<u32> = OnceLock::new();

/// A forked child's pool, with the child's process id (a grandchild makes its own).
static CHILD: Mutex<Option<(u32, &'static rayon::ThreadPool)>> = Mutex::new(None);

/// Records the importing process; called when the module is imported.
pub(crate) fn init() {
    OWNER.get_or_init(std::process::id);
}

/// Runs `f`, which may compute on rayon's pool, on a pool whose threads exist in this process.
pub(crate) fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pid = std::process::id();
    if *OWNER.get_or_init(|| pid) == pid {
        return f();
    }
    match child_pool(pid) {
        Some(pool) => pool.install(f),
        // no thread can be started here: the global pool is all there is
        None => f(),
    }
}

/// The pool of the forked child `pid`, made on its first call.
fn child_pool(pid: u32) -> Option<&'static rayon::ThreadPool> {
    let mut child = CHILD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, pool)) = *child {
        if p == pid {
            return Some(pool);
        }
    }
    // the pool of a parent that forked this process is left alone (its threads are not here
    // to stop) and a new one is kept for the life of the process
    // two threads at least: a call made from a worker that waits for another call (a fit's
    // progress callback that predicts with another model) needs a second one
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(2).build())
        .ok()?;
    let pool: &'static rayon::ThreadPool = Box::leak(Box::new(pool));
    *child = Some((pid, pool));
    Some(pool)
}
