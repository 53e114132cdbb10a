//! Address spaces: the `Mm` struct, the handles that name it, the reference kinds that
//! keep it alive, and the arena that makes every use-after-free detectable.
//!
//! In the kernel a `struct mm_struct *` is a bare pointer: nothing about it says whether
//! the struct behind it is still alive. Here the equivalent is [`MmId`], a (slot,
//! generation) pair into an [`Arena`]. Freeing an mm bumps the generation of its slot and
//! poisons its counters, so every access through a stale `MmId` — even after the slot
//! was reused for a new mm — is caught and reported instead of reading freed memory.
//!
//! The two reference kinds of the kernel are two types, as in Rust-for-Linux's
//! `rust/kernel/mm.rs`:
//! - [`MmUsers`] is a real user (`mmget`/`mmput`, counted in `mm_users`): the mappings and
//!   page tables stay while one exists;
//! - [`MmCount`] keeps only the struct and its page-table root (`mmgrab`/`mmdrop`, counted
//!   in `mm_count`).
//!
//! Neither is `Clone` and neither has a `Drop`: a reference is consumed by the call that
//! releases it (`mmput`, `mmdrop`), which needs the CPU it runs on. A reference that is
//! never released shows up as a leak at quiescence.

use crate::cpumask::{CpuMask, SharedCpuMask};
use crate::sync::raw::{AtomicBool, AtomicU32, AtomicU64};
use crate::sync::{CachePadded, Field, Ordering, SharedU64, SharedUsize, Tag};
use core::fmt;

/// A handle to one mm: the arena slot and the generation the slot had when the handle
/// was made. Copying it keeps nothing alive, like copying a `struct mm_struct *`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MmId {
    slot: u32,
    gen: u32,
}

impl MmId {
    /// `init_mm`: the kernel's own address space, slot 0, never freed.
    pub const INIT: MmId = MmId { slot: 0, gen: 1 };

    /// The arena slot.
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// The slot's generation when this handle was made (odd while the mm lives).
    pub fn gen(self) -> u32 {
        self.gen
    }

    /// Whether this is `init_mm`.
    pub fn is_init(self) -> bool {
        self == Self::INIT
    }

    /// Packs the handle into one non-zero word, so per-CPU state can hold it in an atomic.
    #[inline]
    pub fn encode(self) -> u64 {
        ((self.gen as u64) << 32) | self.slot as u64
    }

    /// The inverse of [`MmId::encode`]; `0` means "no mm".
    #[inline]
    pub fn decode(word: u64) -> Option<MmId> {
        (word != 0).then_some(MmId {
            slot: word as u32,
            gen: (word >> 32) as u32,
        })
    }
}

impl fmt::Display for MmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_init() {
            write!(f, "init_mm")
        } else {
            write!(f, "mm#{}.{}", self.slot, self.gen)
        }
    }
}

/// A real user of an mm (one `mm_users` reference, `MmWithUser` in Rust-for-Linux).
///
/// # Invariants
/// While this exists, `mm_users` of the mm is at least one, so its mappings and page
/// tables exist and it holds (through `mm_users`) one `mm_count` reference.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an mm_users reference must be released with mmput"]
pub struct MmUsers(pub(crate) MmId);

impl MmUsers {
    /// The mm this reference keeps alive.
    pub fn id(&self) -> MmId {
        self.0
    }
}

/// A reference that keeps the struct and its page-table root alive (one `mm_count`
/// reference, Rust-for-Linux's `ARef<Mm>`).
///
/// # Invariants
/// While this exists, `mm_count` of the mm is at least one: the slot is not freed.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an mm_count reference must be released with mmdrop"]
pub struct MmCount(pub(crate) MmId);

impl MmCount {
    /// The mm this reference keeps alive.
    pub fn id(&self) -> MmId {
        self.0
    }
}

/// The value written into the counters of a freed slot, so that a stale increment
/// cannot bring it back to a plausible count.
pub(crate) const POISON: usize = usize::MAX / 2;

/// One `struct mm_struct`, as one arena slot.
///
/// # Invariants
/// The slot is live exactly when `gen` is odd. Each field that the kernel keeps on its
/// own cache line is padded to one, so `mm_count` traffic in benchmarks is real.
pub struct Mm {
    /// Odd while live. Freeing and allocating each add one. The oracle's, never counted.
    gen: CachePadded<AtomicU64>,
    /// Real users (`mmget`/`mmput`).
    pub(crate) mm_users: CachePadded<SharedUsize>,
    /// Struct references (`mmgrab`/`mmdrop`), including, under `refcount`, one per lazy CPU.
    pub(crate) mm_count: CachePadded<SharedUsize>,
    /// `mm_cpumask(mm)`: bit `n` is set while CPU `n` may hold TLB entries or have the mm
    /// loaded (an arch decides when bits are cleared).
    pub(crate) cpumask: CachePadded<SharedCpuMask>,
    /// Whether the page tables below the root are still allocated: `exit_mmap` frees
    /// them (`free_pgtables`), long before `__mmdrop` frees the root. The oracle's.
    pub(crate) tables_live: CachePadded<AtomicBool>,
    /// `mm->membarrier_state`: [`MEMBARRIER_STATE_PRIVATE_EXPEDITED`] once a task of
    /// the mm registered for expedited membarrier (see
    /// `Kernel::membarrier_register_private_expedited`).
    pub(crate) membarrier_state: SharedU64,
    /// The mm's concurrency-ID word a kernel profile's `mm_cid` reads or locks
    /// (`mm->cid_lock`, `mm->pcpu_cid`, `mm->mm_cid`: [`crate::profile::Item`]).
    pub(crate) cid: CachePadded<SharedU64>,
    /// `mm_cidmask(mm)` (one word in the model: the CIDs of the first 64 CPUs).
    pub(crate) cidmask: CachePadded<SharedU64>,
    /// `mm->mmap_lock`'s count word, as far as a kernel profile's `exit_mm` touches it
    /// ([`crate::profile::Item::ExitMmMmapLock`]).
    pub(crate) mmap_lock: CachePadded<SharedU64>,
}

/// `MEMBARRIER_STATE_PRIVATE_EXPEDITED_READY | MEMBARRIER_STATE_PRIVATE_EXPEDITED`: the
/// bits `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED` sets in `mm->membarrier_state`.
pub(crate) const MEMBARRIER_STATE_PRIVATE_EXPEDITED: u64 = (1 << 0) | (1 << 1);

impl Mm {
    /// Arena slot `slot`'s mm, of generation `gen`.
    fn new(gen: u64, nr_cpus: usize, slot: u32) -> Mm {
        Mm {
            gen: CachePadded(AtomicU64::new(gen)),
            mm_users: CachePadded(SharedUsize::new(0, Tag::new(Field::MmUsers, slot))),
            mm_count: CachePadded(SharedUsize::new(0, Tag::new(Field::MmCount, slot))),
            cpumask: CachePadded(SharedCpuMask::new(nr_cpus, Field::MmCpumask, slot)),
            tables_live: CachePadded(AtomicBool::new(gen % 2 == 1)),
            membarrier_state: SharedU64::new(0, Tag::new(Field::MembarrierState, slot)),
            cid: CachePadded(SharedU64::new(0, Tag::new(Field::MmCid, slot))),
            cidmask: CachePadded(SharedU64::new(0, Tag::new(Field::MmCidMask, slot))),
            mmap_lock: CachePadded(SharedU64::new(0, Tag::new(Field::MmapLock, slot))),
        }
    }

    /// Whether the page tables below the root are still allocated (never counted).
    pub fn tables_live(&self) -> bool {
        // ORDERING: Acquire pairs with the Release in `exit_mmap`: a CPU that sees the
        // tables freed also sees the TLB flushes the freeing CPU completed before (a
        // broadcast invalidation is synchronous: tlbsync; ptesync).
        self.tables_live.load(Ordering::Acquire)
    }

    /// `mm_users` now (racy by nature; for reports and tests; never counted).
    pub fn users(&self) -> usize {
        self.mm_users.oracle_load(Ordering::Relaxed)
    }

    /// `mm_count` now (racy by nature; for reports and tests; never counted).
    pub fn count(&self) -> usize {
        self.mm_count.oracle_load(Ordering::Relaxed)
    }

    /// `mm_cpumask(mm)` now, for reports and tests (never counted).
    pub fn cpumask(&self) -> CpuMask {
        self.cpumask.oracle_read()
    }
}

/// Why an access through an [`MmId`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The slot was freed (and maybe reused) after the handle was made.
    #[error("{0} was freed")]
    Freed(MmId),
}

/// The free slots of the arena: a lock-free stack (Treiber's), so that a free on the
/// switch path (the last lazy drop runs `__mmdrop` there) takes no lock.
///
/// # Invariants
/// `head` is `(tag << 32) | (slot + 1)` of the top slot, `slot + 1 == 0` when empty;
/// `next[s]` is the `slot + 1` below `s` while `s` is on the stack. The tag grows with
/// every successful push and pop, so a pop that read a stale `next` fails its
/// compare-exchange (no ABA).
struct FreeList {
    head: CachePadded<AtomicU64>,
    next: Box<[AtomicU32]>,
}

impl FreeList {
    fn new(slots: usize) -> FreeList {
        FreeList {
            head: CachePadded(AtomicU64::new(0)),
            next: (0..slots).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn push(&self, slot: u32) {
        // ORDERING: Relaxed first look; the compare-exchange below decides.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            self.next[slot as usize].store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | (slot as u64 + 1);
            // ORDERING: Release pairs with the Acquire in `pop`: the `next` link above
            // (and the slot's poisoning before the push) is visible to the popper.
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed)
            {
                // INVARIANT: `slot` is the new top, `next[slot]` names the old top (the
                // head we replaced), and the tag grew.
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    fn pop(&self) -> Option<u32> {
        // ORDERING: Acquire pairs with the Release in `push`: the top slot's `next` link
        // is the one its pusher wrote.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return None;
            }
            let below = self.next[top as usize - 1].load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | below as u64;
            // ORDERING: Acquire, as above, for the value a failed attempt reloads.
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire)
            {
                // INVARIANT: the head is the slot below the popped one, read from its
                // `next` while the tag was unchanged (so nothing pushed or popped in
                // between), and the tag grew; the popped slot is off the stack.
                Ok(_) => return Some(top - 1),
                Err(now) => head = now,
            }
        }
    }
}

/// The arena of mm slots.
///
/// # Invariants
/// Slot 0 is `init_mm` and is never freed. Every other slot is live (odd generation) or
/// free (even generation); a free slot is on the free list. A live slot is on the free
/// list only under the `none` baseline, which recycles a dead mm's slot in place
/// (`Arena::recycle`) without freeing it.
pub struct Arena {
    slots: Box<[Mm]>,
    free: FreeList,
}

impl Arena {
    /// An arena with `capacity` slots besides `init_mm`, for a machine of `nr_cpus` CPUs.
    pub fn new(capacity: usize, nr_cpus: usize) -> Arena {
        let capacity = capacity.min(u32::MAX as usize - 2);
        let slots: Box<[Mm]> = (0..=capacity)
            .map(|i| Mm::new(if i == 0 { 1 } else { 0 }, nr_cpus, i as u32))
            .collect();
        // INVARIANT: init_mm is live forever; one user and one count that nobody drops.
        slots[0].mm_users.oracle_store(1, Ordering::Relaxed);
        slots[0].mm_count.oracle_store(1, Ordering::Relaxed);
        let free = FreeList::new(slots.len());
        for slot in (1..=capacity as u32).rev() {
            free.push(slot);
        }
        Arena { slots, free }
    }

    /// Takes a free slot and makes it a new mm with `mm_users == 1` and `mm_count == 1`
    /// (`mm_alloc`). `None` when the arena is full.
    pub(crate) fn alloc(&self) -> Option<MmId> {
        let slot = self.free.pop()?;
        let mm = &self.slots[slot as usize];
        // mm_init(): the new mm is this CPU's alone until its handle is published.
        mm.mm_users.oracle_store(1, Ordering::Relaxed);
        mm.mm_count.oracle_store(1, Ordering::Relaxed);
        mm.cpumask.oracle_clear_all();
        mm.tables_live.store(true, Ordering::Relaxed);
        mm.membarrier_state.oracle_store(0, Ordering::Relaxed);
        let gen = mm.gen.load(Ordering::Relaxed);
        let gen = if gen % 2 == 1 {
            // A slot recycled in place by `recycle` keeps its generation.
            gen
        } else {
            // ORDERING: Release publishes the initialised counters with the new
            // generation; pairs with the Acquire generation load in `get` on whichever
            // CPU first uses the handle (the handle itself travels through the host's
            // own synchronisation).
            mm.gen.fetch_add(1, Ordering::Release) + 1
        };
        Some(MmId {
            slot,
            gen: gen as u32,
        })
    }

    /// Reuses a dead mm's slot in place, without freeing it: the generation stays, so
    /// old handles still work and now name the next mm allocated there. Only the `none`
    /// baseline does this (it never frees, and a churning workload would otherwise
    /// fill the arena); it is exactly the unsafety every real scheme exists to avoid.
    pub(crate) fn recycle(&self, id: MmId) {
        if id.is_init() || !self.is_live(id) {
            return;
        }
        self.free.push(id.slot);
    }

    /// Frees a live mm: bumps the generation (so every outstanding handle goes stale),
    /// poisons the counters and returns the slot to the free list.
    ///
    /// A second free of the same handle finds the generation already bumped and is
    /// refused, so an mm is freed at most once whatever a broken scheme does.
    pub(crate) fn free(&self, id: MmId) -> Result<(), Stale> {
        let mm = self.slots.get(id.slot as usize).ok_or(Stale::Freed(id))?;
        if id.is_init() {
            return Err(Stale::Freed(id));
        }
        // ORDERING: AcqRel. The generation is the source of truth: Release pairs with the
        // Acquire in `get`, so a CPU that sees the new generation treats the mm as freed;
        // Acquire pairs with the Release bump in `alloc`. The poison stores below come
        // after the bump and are best effort: they only make a stale increment that
        // slipped past the check land on an implausible count.
        mm.gen
            .compare_exchange(
                id.gen as u64,
                id.gen as u64 + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .map_err(|_| Stale::Freed(id))?;
        mm.mm_users.oracle_store(POISON, Ordering::Relaxed);
        mm.mm_count.oracle_store(POISON, Ordering::Relaxed);
        self.free.push(id.slot);
        Ok(())
    }

    /// The mm behind a handle, or [`Stale`] when it was freed since the handle was made.
    #[inline]
    pub fn get(&self, id: MmId) -> Result<&Mm, Stale> {
        let mm = self.slots.get(id.slot as usize).ok_or(Stale::Freed(id))?;
        // ORDERING: Acquire pairs with the Release generation bump in `free` (and in
        // `alloc`): a CPU that still sees the old generation saw a live mm.
        if mm.gen.load(Ordering::Acquire) == id.gen as u64 {
            Ok(mm)
        } else {
            Err(Stale::Freed(id))
        }
    }

    /// Whether the handle still names a live mm.
    #[inline]
    pub fn is_live(&self, id: MmId) -> bool {
        self.get(id).is_ok()
    }

    /// Every live mm except `init_mm` (for leak reports at quiescence).
    pub fn live_ids(&self) -> Vec<MmId> {
        self.slots
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, mm)| {
                // ORDERING: Acquire pairs with the Release bumps in `alloc` and `free`;
                // callers read this at quiescence, after every CPU has stopped.
                let gen = mm.gen.load(Ordering::Acquire);
                (gen % 2 == 1).then_some(MmId {
                    slot: i as u32,
                    gen: gen as u32,
                })
            })
            .collect()
    }
}
