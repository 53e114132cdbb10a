//! The one facade through which the model reaches every atomic, fence and lock, as
//! wrapper types that account for each access.
//!
//! Under `cfg(loom)` the same model code runs on loom's types, so the checker explores
//! the code that is benchmarked, never a copy. Nothing in the model imports
//! `std::sync` or `core::sync` directly.
//!
//! # Two paths
//! - The *protocol path*: state the kernel shares between CPUs (`mm_count`, `mm_users`,
//!   `mm_cpumask`, `rq->curr`, the IPI mailboxes, hazard slots) lives in [`SharedU64`] and
//!   [`SharedUsize`]. Every access takes the accessing CPU's [`Acct`]:
//!   each read-modify-write and each full barrier is counted there (the `shared_rmw` and
//!   `full_fences` a run reports are derived from these counts, never counted by hand),
//!   and when recording is on for that CPU, each access is appended to its log as an
//!   [`Access`] (the word's [`Tag`]: its field, its object and its line under the kernel
//!   profile; and the kind), which a host that charges coherence costs
//!   (the scale predictor) reads after every step.
//! - The *oracle path*: the checks the model makes on itself (generation checks in the
//!   arena, the oracle's reads of other CPUs' CR3, reports) use the `oracle_*` methods or
//!   the raw atomics of [`raw`]. They are never counted or recorded: they are not
//!   traffic a kernel would make.
//!
//! # Cost when recording is off
//! One predictable branch per access on a per-CPU flag the CPU owns, beside the counter
//! increment of an RMW or fence.

#[cfg(loom)]
use loom::sync::atomic::{fence as raw_fence, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
use std::sync::atomic::{fence as raw_fence, AtomicU64, AtomicUsize};

pub use core::sync::atomic::Ordering;

pub use crate::field::{Field, Tag};

/// The facade's raw atomics and locks, for the oracle and for state that is not the
/// kernel's (nothing here is counted or recorded).
pub mod raw {
    #[cfg(loom)]
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    #[cfg(loom)]
    pub use loom::sync::Mutex;
    #[cfg(not(loom))]
    pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    #[cfg(not(loom))]
    pub use std::sync::Mutex;
}

/// What one protocol access did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// An atomic load.
    Load,
    /// An atomic store.
    Store,
    /// An atomic read-modify-write (a failed compare-exchange included: on the machines
    /// modelled it takes the line exclusive all the same).
    Rmw,
    /// A full barrier (`smp_mb`, or one side of a fully ordered RMW).
    Fence,
    /// A write of the page-table root (CR3 on x86, the PID register on powerpc).
    RootWrite,
    /// An IPI sent to the CPU whose number is the `obj` of the [`Access`]'s tag.
    IpiSend,
    /// The sender of the IPIs sent since its last wait starts waiting for them (the end
    /// of one batch, logged where the model waits: `on_each_cpu_mask`).
    IpiWait,
}

/// One recorded access: what was touched and what was done. The CPU is the one whose
/// log holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The word's field and object, with the line group the recording CPU's profile
    /// gives the field ([`Tag::NONE`] for a fence or root write; for an IPI, its `obj`
    /// is the target CPU).
    pub tag: Tag,
    /// What was done.
    pub kind: AccessKind,
}

impl Access {
    /// The cache line touched, under the profile's layout: equal for two accesses
    /// exactly when the profile puts their words on one line. Identity only: nothing is
    /// ordered by it.
    #[inline]
    pub fn line(&self) -> u64 {
        (self.tag.group as u64) << 56 | (self.tag.sub as u64) << 32 | self.tag.obj as u64
    }

    /// The target CPU of an [`AccessKind::IpiSend`].
    #[inline]
    pub fn ipi_target(&self) -> usize {
        self.tag.obj as usize
    }
}

/// One CPU's accounting of its protocol accesses.
///
/// # Invariants
/// `rmw` and `fences` only grow; `log` is `Some` exactly while recording is on.
#[derive(Debug)]
pub struct Acct {
    /// Read-modify-writes on shared state.
    rmw: u64,
    /// Full barriers.
    fences: u64,
    /// The access log, while recording.
    log: Option<Vec<Access>>,
    /// The line group of each field under the machine's kernel profile.
    layout: [Field; Field::COUNT],
}

impl Default for Acct {
    /// An accounting with every field on the line the model's structures give it.
    fn default() -> Acct {
        Acct::with_layout(Field::ALL.map(Field::base_group))
    }
}

impl Acct {
    /// An accounting that stamps recorded accesses with `layout` (field → line group).
    pub fn with_layout(layout: [Field; Field::COUNT]) -> Acct {
        Acct {
            rmw: 0,
            fences: 0,
            log: None,
            layout,
        }
    }

    /// Read-modify-writes made on shared state so far.
    #[inline]
    pub fn rmw(&self) -> u64 {
        self.rmw
    }

    /// Full barriers passed so far.
    #[inline]
    pub fn fences(&self) -> u64 {
        self.fences
    }

    /// Turns recording on (with an empty log) or off (dropping the log).
    pub fn set_recording(&mut self, on: bool) {
        self.log = on.then(Vec::new);
    }

    /// Whether recording is on.
    pub fn recording(&self) -> bool {
        self.log.is_some()
    }

    /// Moves the accesses recorded since the last call into `out` (appending).
    pub fn drain_into(&mut self, out: &mut Vec<Access>) {
        if let Some(log) = &mut self.log {
            out.append(log);
        }
    }

    #[inline(always)]
    fn record(&mut self, mut tag: Tag, kind: AccessKind) {
        if let Some(log) = &mut self.log {
            tag.group = self.layout[tag.field as usize];
            log.push(Access { tag, kind });
        }
    }

    /// Records a page-table-root write (the hardware register is CPU-local: not a
    /// memory access, but a cost the predictor charges).
    #[inline]
    pub(crate) fn root_write(&mut self) {
        self.record(Tag::NONE, AccessKind::RootWrite);
    }

    /// Records an IPI sent to `target`.
    #[inline]
    pub(crate) fn ipi_send(&mut self, target: usize) {
        self.record(Tag::new(Field::None, target as u32), AccessKind::IpiSend);
    }

    /// Records the start of the wait for the IPIs sent since the last wait (the end of
    /// their batch).
    #[inline]
    pub(crate) fn ipi_wait(&mut self) {
        self.record(Tag::NONE, AccessKind::IpiWait);
    }
}

/// `smp_mb()`: a full fence, counted (and recorded) on this CPU.
#[inline]
pub fn smp_mb(a: &mut Acct) {
    fence_point();
    a.fences += 1;
    a.record(Tag::NONE, AccessKind::Fence);
    // ORDERING: callers name the access on another CPU this pairs with.
    raw_fence(Ordering::SeqCst);
}

/// Runs `rmw`, an atomic read-modify-write that Linux defines as fully ordered
/// (`atomic_dec_and_test`, `xchg`, `cmpxchg`: a full barrier on each side), with that
/// ordering, counting the two full barriers the kernel's memory model puts around it.
///
/// Under loom, and natively on weakly ordered hosts, the barriers are real
/// `fence(SeqCst)`s on both sides, so a weak-memory checker sees exactly what the kernel
/// relies on. Natively on x86 the locked instruction the RMW compiles to is itself a
/// full barrier for the hardware (which is why Linux's x86 `atomic_dec_and_test` is a bare
/// `lock decl`), so only the compiler is kept from moving accesses across it; two
/// `mfence`s more would charge the scheme for barriers the kernel never executes. The
/// recorded log shows the RMW alone, as the hardware executes it.
/// `rmw` must perform exactly one atomic read-modify-write.
#[inline(always)]
pub fn fully_ordered<T>(a: &mut Acct, rmw: impl FnOnce(&mut Acct) -> T) -> T {
    fence_point();
    a.fences += 2;
    rmw_side_barrier();
    let v = rmw(a);
    rmw_side_barrier();
    v
}

#[cfg(loom)]
loom::lazy_static! {
    /// Under loom, the word every full barrier touches first ([`fence_point`]).
    static ref FENCE_ORDER: AtomicUsize = AtomicUsize::new(0);
}

/// Under loom, an access to one word shared by every full barrier, right before the
/// barrier; nothing otherwise. Loom switches threads only at atomic operations, never
/// at a fence, and its partial-order reduction reorders two threads' steps only where
/// they touch the same object. A fence touches none, so with a store right before it
/// (arm64's `rq->curr` store and `__switch_to`'s `dsb`) loom never let another CPU run
/// between the two, as hardware can: the `SeqCst` fences' total order was never
/// explored. Every fence RMWs this word, so loom tries both orders of any two fences
/// on different CPUs, with the other CPU's steps between them.
#[inline(always)]
fn fence_point() {
    #[cfg(loom)]
    // ORDERING: Relaxed: the RMW is there to be a conflict loom must order, not to
    // order anything itself (the fence after it does).
    FENCE_ORDER.fetch_add(1, Ordering::Relaxed);
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
    raw_fence(Ordering::SeqCst);
}

macro_rules! shared_atomic {
    ($(#[$doc:meta])* $name:ident, $atomic:ident, $t:ty) => {
        $(#[$doc])*
        ///
        /// It carries its [`Tag`] (what field of what object it is), set where it is
        /// constructed and stamped on every access it records.
        pub struct $name($atomic, Tag);

        impl $name {
            /// A new word holding `v`, which is `tag`.
            pub fn new(v: $t, tag: Tag) -> Self {
                $name($atomic::new(v), tag)
            }

            /// What this word is.
            #[inline(always)]
            pub fn tag(&self) -> Tag {
                self.1
            }

            /// An atomic load by the CPU that owns `a`.
            #[inline]
            pub fn load(&self, a: &mut Acct, o: Ordering) -> $t {
                a.record(self.1, AccessKind::Load);
                self.0.load(o)
            }

            /// An atomic store by the CPU that owns `a`.
            #[inline]
            pub fn store(&self, a: &mut Acct, v: $t, o: Ordering) {
                a.record(self.1, AccessKind::Store);
                self.0.store(v, o)
            }

            /// `swap`, a read-modify-write.
            #[inline]
            pub fn swap(&self, a: &mut Acct, v: $t, o: Ordering) -> $t {
                self.rmw(a);
                self.0.swap(v, o)
            }

            /// `compare_exchange`, a read-modify-write whether or not it succeeds.
            #[inline]
            pub fn compare_exchange(
                &self,
                a: &mut Acct,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                self.rmw(a);
                self.0.compare_exchange(current, new, success, failure)
            }

            /// A load the oracle makes: never counted or recorded.
            #[inline]
            pub fn oracle_load(&self, o: Ordering) -> $t {
                self.0.load(o)
            }

            /// A store the oracle or the arena makes (poisoning, initialising a slot
            /// before it is published): never counted or recorded.
            #[inline]
            #[allow(dead_code)] // not every wrapper type's owner needs it
            pub(crate) fn oracle_store(&self, v: $t, o: Ordering) {
                self.0.store(v, o)
            }

            #[inline(always)]
            fn rmw(&self, a: &mut Acct) {
                a.rmw += 1;
                a.record(self.1, AccessKind::Rmw);
            }
        }
    };
}

macro_rules! shared_int_ops {
    ($name:ident, $t:ty) => {
        impl $name {
            /// `fetch_add`, a read-modify-write.
            #[inline]
            pub fn fetch_add(&self, a: &mut Acct, v: $t, o: Ordering) -> $t {
                self.rmw(a);
                self.0.fetch_add(v, o)
            }

            /// `fetch_sub`, a read-modify-write.
            #[inline]
            pub fn fetch_sub(&self, a: &mut Acct, v: $t, o: Ordering) -> $t {
                self.rmw(a);
                self.0.fetch_sub(v, o)
            }

            /// `fetch_or`, a read-modify-write.
            #[inline]
            pub fn fetch_or(&self, a: &mut Acct, v: $t, o: Ordering) -> $t {
                self.rmw(a);
                self.0.fetch_or(v, o)
            }

            /// `fetch_and`, a read-modify-write.
            #[inline]
            pub fn fetch_and(&self, a: &mut Acct, v: $t, o: Ordering) -> $t {
                self.rmw(a);
                self.0.fetch_and(v, o)
            }

            /// A read-modify-write the oracle makes (undoing an underflow it reported):
            /// never counted or recorded.
            #[inline]
            #[allow(dead_code)] // not every wrapper type's owner needs it
            pub(crate) fn oracle_fetch_add(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_add(v, o)
            }
        }
    };
}

shared_atomic!(
    /// A 64-bit word of state shared between CPUs.
    SharedU64,
    AtomicU64,
    u64
);
shared_int_ops!(SharedU64, u64);
shared_atomic!(
    /// A counter of state shared between CPUs (`mm_users`, `mm_count`).
    SharedUsize,
    AtomicUsize,
    usize
);
shared_int_ops!(SharedUsize, usize);
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
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
