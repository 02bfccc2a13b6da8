//! One side of the queue's blocking layer: a condition ("not empty" or "not full") that
//! threads wait for and that a change of the ring signals, without a lost wakeup and without
//! touching the mutex on the fast path.
//!
//! Invariant (the Dekker pairing): a waiter registers (`waiting += 1`, SeqCst) and then
//! re-checks the ring while holding the mutex; a notifier changes the ring (a SeqCst RMW
//! inside crossbeam) and then takes the mutex only if it sees a waiter. The single SeqCst
//! order makes one side see the other, so either the waiter sees the change or the notifier
//! sees the waiter.

use std::sync::atomic::{fence, AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct Signal {
    waiting: AtomicUsize,
    cond: Condvar,
}

impl Signal {
    /// Wake one waiter (or all), taking `lock` only when someone waits.
    #[inline]
    pub fn notify(&self, lock: &Mutex<()>, all: bool) {
        if self.waiting.load(SeqCst) > 0 {
            let _g = lock.lock();
            self.notify_locked(all);
        }
    }

    /// Wake waiters; the caller holds `lock`.
    #[inline]
    pub fn notify_locked(&self, all: bool) {
        if all {
            self.cond.notify_all();
        } else {
            self.cond.notify_one();
        }
    }

    /// Wait until `ready()` holds or a notify comes; false when `until` passed first.
    pub fn wait(&self, lock: &Mutex<()>, until: Option<Instant>, ready: impl Fn() -> bool) -> bool {
        let mut g = lock.lock();
        self.waiting.fetch_add(1, SeqCst);
        fence(SeqCst);
        let ok = if ready() {
            true
        } else {
            match until {
                None => {
                    self.cond.wait(&mut g);
                    true
                }
                Some(t) => !self.cond.wait_until(&mut g, t).timed_out(),
            }
        };
        self.waiting.fetch_sub(1, SeqCst);
        ok
    }
}
