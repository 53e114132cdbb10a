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

/// One turn of a busy-wait loop: a pause hint natively, a yield under loom, and a
/// yield to the checker's scheduler when one is installed on this host thread.
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
        if let Some(hook) = SPIN_HOOK.with(core::cell::Cell::get) {
            // A deterministic scheduler runs one simulated CPU at a time: a waiting CPU
            // must hand the turn to the one it waits for, or nobody makes progress.
            hook();
            return;
        }
        *turns = turns.wrapping_add(1);
        if *turns % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static SPIN_HOOK: core::cell::Cell<Option<fn()>> = const { core::cell::Cell::new(None) };
}

/// Installs (or, with `None`, removes) the function every [`spin_wait`] on this host
/// thread calls instead of spinning: the checker's scheduler uses it to switch to
/// another simulated CPU. A thread-local, because `spin_wait` has no machine at hand;
/// natively it costs one thread-local read per turn of a loop that is waiting anyway.
#[cfg(not(loom))]
pub fn set_spin_hook(hook: Option<fn()>) {
    SPIN_HOOK.with(|h| h.set(hook));
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
