//! Trace and span ids: a per-thread wyrand generator seeded from the OS, so that id generation
//! takes no lock and no syscall. W3C forbids all-zero ids; zero is skipped.
//!
//! wyrand is not a cryptographic generator and ids are not secrets: they need to be unique and
//! uniformly spread (the sampler reads the trace id's low 56 bits as its random draw, the way
//! W3C trace-context level 2 expects), which wyrand's 64-bit output gives.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(os_seed());
}

/// A seed drawn from the OS: `RandomState` keys come from the OS random source (getrandom),
/// mixed with the thread id and the clock so that two threads never share a stream.
fn os_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(crate::clock::now_ns());
    std::thread::current().id().hash_into(&mut h);
    h.finish()
}

trait HashInto {
    fn hash_into(&self, h: &mut impl Hasher);
}

impl HashInto for std::thread::ThreadId {
    fn hash_into(&self, h: &mut impl Hasher) {
        use std::hash::Hash;
        self.hash(h);
    }
}

#[inline]
fn wyrand(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
    state.set(s);
    let t = u128::from(s).wrapping_mul(u128::from(s ^ 0xe703_7ed1_a0b4_28db));
    ((t >> 64) as u64) ^ (t as u64)
}

#[inline]
fn next_u64() -> u64 {
    // `try_with` fails only while the thread is being torn down; fall back to a fresh seed.
    STATE.try_with(wyrand).unwrap_or_else(|_| os_seed() | 1)
}

/// A new, never-zero 64-bit span id.
#[inline]
pub fn new_span_id() -> u64 {
    loop {
        let v = next_u64();
        if v != 0 {
            return v;
        }
    }
}

/// A new, never-zero 128-bit trace id.
#[inline]
pub fn new_trace_id() -> u128 {
    loop {
        let v = (u128::from(next_u64()) << 64) | u128::from(next_u64());
        if v != 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_nonzero_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let id = new_span_id();
            assert_ne!(id, 0);
            assert!(seen.insert(id));
        }
        assert_ne!(new_trace_id(), 0);
    }

    #[test]
    fn threads_draw_different_streams() {
        let a: Vec<u64> = std::thread::spawn(|| (0..8).map(|_| new_span_id()).collect())
            .join()
            .unwrap();
        let b: Vec<u64> = std::thread::spawn(|| (0..8).map(|_| new_span_id()).collect())
            .join()
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn low_bits_are_spread() {
        // The sampler uses the low 56 bits; about half of them must fall under the midpoint.
        let below = (0..20_000)
            .filter(|_| (new_trace_id() as u64 & ((1 << 56) - 1)) < (1 << 55))
            .count();
        assert!((9_000..11_000).contains(&below), "{below}");
    }
}
