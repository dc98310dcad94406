//! The library's thread budget: how many threads its products and passes may use.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the library's products and element-wise passes may use.
///
/// `0` means all available cores. The rayon global pool is sized on first use; this setting
/// limits how many of its threads a product asks for.
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

thread_local! {
    static LOCAL_THREADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with the library limited to `n` threads on this thread (used inside parallel
/// sections so nested products do not oversubscribe the cores).
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    /// Puts the previous budget back when dropped: after `f` returns or panics (a panic
    /// caught further up, by Python's bindings, would otherwise leave this thread on `n`).
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOCAL_THREADS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(LOCAL_THREADS.with(|c| c.replace(n)));
    f()
}

/// Elements per block of the passes that are spread over the threads in fixed blocks (the
/// optimizer update, the gradient norm, the sum of the chunks' gradients): fixed, so that their
/// results never depend on the thread count.
pub(crate) const PAR_BLOCK: usize = 1 << 15;

/// Whether a pass over `len` items in fixed blocks of `block` uses the thread pool: when it has
/// more than one block and the library more than one thread.
pub(crate) fn parallel_blocks(len: usize, block: usize) -> bool {
    len > block && num_threads() > 1
}

/// The thread count `n` stands for: `n`, or all available cores for `0` (as
/// [`set_num_threads`] reads it).
pub fn resolve_threads(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// The number of threads the library uses (see [`set_num_threads`] and [`with_threads`]).
pub fn num_threads() -> usize {
    let local = LOCAL_THREADS.with(|c| c.get());
    if local > 0 {
        return local;
    }
    resolve_threads(THREADS.load(Ordering::Relaxed))
}
