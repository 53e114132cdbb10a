//! The one facade through which the model reaches every atomic, fence and lock.
//!
//! Under `cfg(loom)` the same model code runs on loom's types, so the checker explores
//! the code that is benchmarked, never a copy. Nothing in the model imports
//! `std::sync` or `core::sync` directly.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub use loom::sync::Mutex;

#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub use std::sync::Mutex;

pub use core::sync::atomic::Ordering;

/// One turn of a busy-wait loop: a pause hint natively, a yield under loom.
///
/// After many turns the native version yields the host thread, so a simulated CPU that
/// waits for another one that has no host core of its own still makes progress.
#[inline]
pub fn spin_wait(turns: &mut u32) {
    #[cfg(loom)]
    {
        let _ = turns;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *turns = turns.wrapping_add(1);
        if *turns % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Pads and aligns a value to its own cache line (128 bytes covers adjacent-line
/// prefetching on x86 and the 128-byte lines of POWER).
///
/// Everything the kernel keeps on a line of its own (`mm_count`, each per-CPU slot) is
/// wrapped in this, so that contention in benchmarks is real contention and not false
/// sharing, and so that an uncontended line stays uncontended.
#[derive(Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
