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

/// Runs `rmw`, an atomic read-modify-write that Linux defines as fully ordered
/// (`atomic_dec_and_test`, `xchg`, `cmpxchg`: a full barrier on each side), with that
/// ordering.
///
/// Under loom, and natively on weakly ordered hosts, the barriers are real
/// `fence(SeqCst)`s on both sides, so a weak-memory checker sees exactly what the kernel
/// relies on. Natively on x86 the locked instruction the RMW compiles to is itself a
/// full barrier for the hardware (which is why Linux's x86 `atomic_dec_and_test` is a bare
/// `lock decl`), so only the compiler is kept from moving accesses across it; two
/// `mfence`s more would charge the scheme for barriers the kernel never executes.
/// `rmw` must perform exactly one atomic read-modify-write.
#[inline(always)]
pub fn fully_ordered<T>(rmw: impl FnOnce() -> T) -> T {
    rmw_side_barrier();
    let v = rmw();
    rmw_side_barrier();
    v
}

/// One side of a fully ordered RMW's barrier, as [`fully_ordered`] explains.
#[inline(always)]
fn rmw_side_barrier() {
    #[cfg(all(not(loom), any(target_arch = "x86", target_arch = "x86_64")))]
    // ORDERING: x86's locked RMW orders every earlier access before it and every later
    // one after it (the hardware's half of the full barrier); the compiler fence is the
    // compiler's half, as the "memory" clobber of Linux's atomics.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(not(all(not(loom), any(target_arch = "x86", target_arch = "x86_64"))))]
    // ORDERING: a full fence on this side of the RMW, as Linux defines a fully ordered
    // atomic; callers name what they pair with.
    fence(Ordering::SeqCst);
}

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
