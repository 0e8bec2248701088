//! Spreading one preview's pixel work over idle cores, and only idle ones.
//!
//! A render or an encode splits into independent jobs (row bands, JPEG stripes). [`run`] takes
//! helpers only for cores that no other render or encode of this process is using at that
//! moment, so on a busy server (as many previews in flight as cores) every preview runs on its
//! own thread as before and nothing is oversubscribed; on a quiet one a preview uses them all.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads of this crate doing pixel work right now (callers plus their helpers).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The most threads one preview may use; 0 = one per core.
static MAX_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Caps the threads one render or encode may use (`0`, the default, is one per core; `1`
/// keeps each preview on its caller's thread). Helpers are only ever taken for cores that no
/// other preview of this process is busy on.
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n, Ordering::Relaxed);
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts the calling thread as busy until dropped (held around a render or an encode).
pub(crate) struct Busy(usize);

impl Busy {
    pub(crate) fn enter() -> Busy {
        Busy::add(1)
    }
    fn add(n: usize) -> Busy {
        ACTIVE.fetch_add(n, Ordering::Relaxed);
        Busy(n)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Runs `f` on every input and returns the results in input order. Jobs are handed out one at
/// a time to the caller and to helper threads, one per idle core (none when `pixels`, the work
/// in all, is too small to be worth a thread: spawning one costs ~20–50 µs).
pub(crate) fn run<I: Send, R: Send>(
    inputs: Vec<I>,
    pixels: usize,
    f: impl Fn(I) -> R + Sync,
) -> Vec<R> {
    /// Below this many pixels (~0.5 ms of work) a helper costs more than it saves.
    const MIN_PIXELS: usize = 200_000;
    let max = match MAX_THREADS.load(Ordering::Relaxed) {
        0 => cores(),
        n => n.min(cores()),
    };
    let want = if pixels < MIN_PIXELS {
        0
    } else {
        max.saturating_sub(1).min(inputs.len().saturating_sub(1))
    };
    // Reserve idle cores in one step (the caller is already counted in ACTIVE, holding a
    // `Busy`): two renders arriving together must not both count the same idle core.
    let mut helpers = 0;
    let _ = ACTIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |active| {
        helpers = want.min(cores().saturating_sub(active));
        Some(active + helpers)
    });
    let _busy = Busy(helpers);
    if helpers == 0 {
        return inputs.into_iter().map(f).collect();
    }
    let n = inputs.len();
    let inputs: Vec<Mutex<Option<I>>> = inputs.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let outputs: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = inputs.get(i) else { break };
            // Each slot is taken exactly once, by whoever drew its index.
            let input = slot.lock().map(|mut s| s.take()).ok().flatten();
            if let Some(input) = input {
                let r = f(input);
                if let Ok(mut o) = outputs[i].lock() {
                    *o = Some(r);
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..helpers {
            // A thread the OS refuses is no loss: the caller's own `work` takes every job left.
            let _ = std::thread::Builder::new().spawn_scoped(s, work);
        }
        work();
    });
    outputs
        .into_iter()
        .filter_map(|o| o.into_inner().ok().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_idle_cores_help() {
        let _busy = Busy::enter();
        let threads = Mutex::new(std::collections::HashSet::new());
        let out = run((0..16).collect(), usize::MAX, |i: u64| {
            if let Ok(mut t) = threads.lock() {
                t.insert(std::thread::current().id());
            }
            // Long enough that a helper, once started, gets some of the jobs.
            std::thread::sleep(std::time::Duration::from_millis(5));
            i * i
        });
        assert_eq!(out, (0..16).map(|i| i * i).collect::<Vec<_>>());
        let used = threads.lock().map(|t| t.len()).unwrap_or_default();
        // No other unit test of this crate renders or encodes, so every core is idle; at least
        // one helper must have taken jobs (all of them only if the box scheduled every helper
        // within the 80 ms of work, which a busy CI box need not).
        assert!(used > 1 || cores() == 1, "threads used: {used}");
        assert!(used <= cores(), "threads used: {used}");
        // Small work stays on the caller's thread.
        let small = run(vec![1, 2, 3], 10, |i: u32| (i, std::thread::current().id()));
        assert!(small.iter().all(|(_, t)| *t == std::thread::current().id()));
    }
}
