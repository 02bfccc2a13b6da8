//! `ZeroBox<T>`: a heap box whose bytes are overwritten with zeros when it is dropped.
//!
//! ring keeps expanded AES round keys, GHASH tables and Ed25519 secrets inline in plain structs
//! that it does not wipe on drop. Boxing them and wiping the allocation after `drop_in_place`
//! keeps key schedules from lingering in freed heap memory.

use std::mem::{size_of, MaybeUninit};
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{compiler_fence, Ordering};

pub struct ZeroBox<T> {
    ptr: *mut T,
}

// SAFETY: ZeroBox owns its T exactly as Box<T> does.
unsafe impl<T: Send> Send for ZeroBox<T> {}
// SAFETY: shared access only hands out &T.
unsafe impl<T: Sync> Sync for ZeroBox<T> {}

impl<T> ZeroBox<T> {
    pub fn new(value: T) -> Self {
        ZeroBox {
            ptr: Box::into_raw(Box::new(value)),
        }
    }
}

impl<T> Deref for ZeroBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: ptr came from Box::into_raw and stays valid until drop.
        unsafe { &*self.ptr }
    }
}

impl<T> Drop for ZeroBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is dropped once, then its bytes are wiped through volatile writes
        // (never read again), then the allocation is freed as MaybeUninit<T>, which has the
        // same layout and no destructor.
        unsafe {
            ptr::drop_in_place(self.ptr);
            let bytes = self.ptr as *mut u8;
            for i in 0..size_of::<T>() {
                ptr::write_volatile(bytes.add(i), 0);
            }
            compiler_fence(Ordering::SeqCst);
            drop(Box::from_raw(self.ptr as *mut MaybeUninit<T>));
        }
    }
}

impl<T> std::fmt::Debug for ZeroBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZeroBox(<redacted>)")
    }
}
