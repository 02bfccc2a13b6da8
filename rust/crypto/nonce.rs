//! Randomness for nonces and keys, from the operating system's CSPRNG (`getrandom`).
//!
//! Nonces are 96 random bits. One `getrandom` call per envelope would cost more than the AES
//! work on a 1 KiB payload, so each thread keeps a pool of OS randomness and hands out 12 bytes
//! at a time. A pool copied into a child by `fork()` would hand out the same nonces twice in
//! parent and child, so a `pthread_atfork` child handler bumps a generation number and every
//! pool drawn under an older generation is thrown away before its next use.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

use crate::error::{CoreError, CoreResult};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn on_fork_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

const POOL_BYTES: usize = 4092; // a multiple of 12

struct Pool {
    bytes: [u8; POOL_BYTES],
    pos: usize,
    generation: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], pos: POOL_BYTES, generation: u64::MAX })
    };
}

/// Fill `out` straight from the OS CSPRNG (for keys: never pooled).
pub fn os_random(out: &mut [u8]) -> CoreResult<()> {
    SystemRandom::new().fill(out).map_err(|_| {
        CoreError::Crypto(
            "the operating system's random number generator failed; check /dev/urandom and \
             the getrandom syscall"
                .into(),
        )
    })
}

/// A fresh random 96-bit nonce.
pub fn random_nonce() -> CoreResult<[u8; 12]> {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic; safe in a forked child.
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_child));
        }
    });
    POOL.with(|cell| {
        let mut pool = cell.borrow_mut();
        let generation = FORK_GENERATION.load(Ordering::SeqCst);
        if pool.generation != generation || pool.pos + 12 > POOL_BYTES {
            os_random(&mut pool.bytes)?;
            pool.pos = 0;
            pool.generation = generation;
        }
        let mut nonce = [0u8; 12];
        let start = pool.pos;
        nonce.copy_from_slice(&pool.bytes[start..start + 12]);
        // Wipe what was handed out, so a later memory dump cannot be matched to envelopes.
        pool.bytes[start..start + 12].zeroize();
        pool.pos += 12;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn nonces_are_distinct_across_pool_refills() {
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            assert!(seen.insert(random_nonce().unwrap()));
        }
    }

    #[test]
    fn fork_generation_discards_the_pool() {
        let a = random_nonce().unwrap();
        on_fork_child(); // what a fork would do in the child
        let b = random_nonce().unwrap();
        assert_ne!(a, b);
        POOL.with(|p| assert_eq!(p.borrow().pos, 12));
    }
}
