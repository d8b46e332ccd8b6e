//! The worker pool `run` and `bench` share: scoped threads that take work items one at a time
//! from a shared counter, with results collected by index so their order never depends on
//! scheduling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// `--jobs` as given (0 = one per core) to a worker count of at least 1.
pub fn resolve_workers(jobs: usize) -> usize {
    if jobs == 0 {
        available_cores()
    } else {
        jobs.max(1)
    }
}

/// Cores this process may use (`std::thread::available_parallelism`), 1 when unknown.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What [`run`] did.
pub struct PoolRun<R> {
    /// `work(i)`'s result at index `i`; `None` for items not run after a stop.
    pub results: Vec<Option<R>>,
    /// Wall time from the common start (after every worker's `prepare`) to the last result.
    pub elapsed: Duration,
}

/// Run `work(i)` for every `i` in `0..n` on `workers` threads (at most `n`; one worker runs on
/// the calling thread). Each worker first runs `prepare` (untimed: warm caches, validate the
/// input); once all have, `on_start` runs on the calling thread and the clock starts. `work`
/// returns `Err(())` to stop every worker early (the item's result is then `None`).
pub fn run<R: Send>(
    workers: usize,
    n: usize,
    prepare: &(dyn Fn() + Sync),
    on_start: &mut dyn FnMut(),
    work: &(dyn Fn(usize) -> Result<R, ()> + Sync),
) -> PoolRun<R> {
    let workers = workers.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let take = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            match work(i) {
                Ok(r) => results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r),
                Err(()) => stop.store(true, Ordering::Relaxed),
            }
        }
    };
    let elapsed = if workers == 1 {
        prepare();
        on_start();
        let started = Instant::now();
        take();
        started.elapsed()
    } else {
        let start = Barrier::new(workers + 1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(prepare));
                        // Reach the barrier even after a panic, or the caller waits forever.
                        start.wait();
                        if let Err(p) = ready {
                            std::panic::resume_unwind(p);
                        }
                        take();
                    })
                })
                .collect();
            start.wait();
            on_start();
            let started = Instant::now();
            for h in handles {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            started.elapsed()
        })
    };
    PoolRun {
        results: results.into_inner().unwrap_or_else(|e| e.into_inner()),
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_index_order_on_any_worker_count() {
        for workers in [1, 2, 5] {
            let r = run(workers, 50, &|| {}, &mut || {}, &|i| Ok(i * 2));
            let got: Vec<usize> = r.results.into_iter().map(Option::unwrap).collect();
            assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_error_stops_the_remaining_work() {
        let r = run(1, 10, &|| {}, &mut || {}, &|i| {
            if i == 3 {
                Err(())
            } else {
                Ok(i)
            }
        });
        assert_eq!(r.results[2], Some(2));
        assert_eq!(r.results[3], None);
        assert!(r.results[4..].iter().all(Option::is_none));
    }

    #[test]
    fn zero_jobs_means_one_per_core() {
        assert_eq!(resolve_workers(0), available_cores());
        assert_eq!(resolve_workers(3), 3);
    }
}
