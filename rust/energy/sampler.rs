//! The latest value of a counter that is slow to read, kept fresh by a background thread.
//!
//! NVML's energy counter takes 3 ms (median) to 17 ms to read on an H100 host, and it moves
//! only every few tens of milliseconds: reading it on every span or engine batch would put
//! that wait in the hot path for nothing. A `Sampler` reads once when first asked (that
//! caller waits), then a thread re-reads every `period` while readers keep asking; after
//! `idle` without a reader the thread ends, and the next reader starts it again. A reader
//! gets a value at most `period` plus one read old, without waiting. A process forked while
//! the thread ran has no such thread: its first reader sees another pid and starts its own.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::now_ns;

type ReadFn<T> = Box<dyn Fn() -> T + Send + Sync>;

pub struct Sampler<T> {
    read: ReadFn<T>,
    latest: Mutex<Option<T>>,
    last_ask_ns: AtomicU64,
    running: AtomicBool,
    /// The process whose thread is sampling (a fork's child inherits `running` alone).
    owner_pid: AtomicU32,
    period: Duration,
    idle_ns: u64,
}

impl<T: Clone + Send + 'static> Sampler<T> {
    pub fn new(
        read: impl Fn() -> T + Send + Sync + 'static,
        period: Duration,
        idle: Duration,
    ) -> Arc<Self> {
        Arc::new(Sampler {
            read: Box::new(read),
            latest: Mutex::new(None),
            last_ask_ns: AtomicU64::new(0),
            running: AtomicBool::new(false),
            owner_pid: AtomicU32::new(0),
            period,
            idle_ns: idle.as_nanos() as u64,
        })
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, Option<T>> {
        // a panic inside `read` never happens while this lock is held: still usable
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest reading; the first call (or the first after an idle spell) reads now.
    pub fn get(self: &Arc<Self>) -> T {
        self.last_ask_ns.store(now_ns(), Ordering::SeqCst);
        if self.running.load(Ordering::SeqCst) {
            if self.owner_pid.load(Ordering::SeqCst) == std::process::id() {
                if let Some(v) = self.latest().clone() {
                    return v;
                }
            } else {
                // forked: the sampling thread stayed in the parent
                self.running.store(false, Ordering::SeqCst);
            }
        }
        let v = (self.read)();
        *self.latest() = Some(v.clone());
        self.start();
        v
    }

    fn start(self: &Arc<Self>) {
        if self
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.owner_pid.store(std::process::id(), Ordering::SeqCst);
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("system0-energy-sampler".to_owned())
                .spawn(move || me.run());
            if spawned.is_err() {
                // no thread: every reader reads for itself, as without a sampler
                self.running.store(false, Ordering::SeqCst);
            }
        }
    }

    fn run(self: Arc<Self>) {
        loop {
            std::thread::sleep(self.period);
            if now_ns().saturating_sub(self.last_ask_ns.load(Ordering::SeqCst)) > self.idle_ns {
                self.running.store(false, Ordering::SeqCst);
                // a reader that came in between saw `running` and took the cached value;
                // if one did, keep going instead of leaving it to a stale cache
                let asked = self.last_ask_ns.load(Ordering::SeqCst);
                if now_ns().saturating_sub(asked) > self.idle_ns
                    || self
                        .running
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                {
                    return;
                }
            }
            let v = (self.read)();
            *self.latest() = Some(v);
        }
    }

    /// Whether the background thread is running (for tests and diagnostics).
    pub fn sampling(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn slow_counter(read_ms: u64) -> (Arc<Sampler<u64>>, Arc<std::sync::atomic::AtomicU64>) {
        let reads = Arc::new(AtomicU64::new(0));
        let r = Arc::clone(&reads);
        let s = Sampler::new(
            move || {
                std::thread::sleep(Duration::from_millis(read_ms));
                r.fetch_add(1, Ordering::SeqCst) + 1
            },
            Duration::from_millis(5),
            Duration::from_millis(200),
        );
        (s, reads)
    }

    #[test]
    fn the_first_read_waits_later_ones_take_the_latest_sample() {
        let (s, _) = slow_counter(20);
        assert_eq!(s.get(), 1);
        assert!(s.sampling());
        let t = Instant::now();
        for _ in 0..100 {
            s.get();
        }
        assert!(
            t.elapsed() < Duration::from_millis(20),
            "readers must not wait for a read"
        );
    }

    #[test]
    fn samples_keep_moving_while_asked_and_stop_when_idle() {
        let (s, reads) = slow_counter(1);
        let first = s.get();
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get() > first, "the thread re-reads in the background");
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            !s.sampling(),
            "no reader for longer than idle: the thread ends"
        );
        let settled = reads.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(reads.load(Ordering::SeqCst), settled);
        assert!(
            s.get() > settled,
            "the next reader reads now and restarts it"
        );
        assert!(s.sampling());
    }
}
