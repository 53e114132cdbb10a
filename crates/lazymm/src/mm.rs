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

use crate::sync::{AtomicU64, AtomicUsize, CachePadded, Mutex, Ordering};
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
    /// Odd while live. Freeing and allocating each add one.
    gen: CachePadded<AtomicU64>,
    /// Real users (`mmget`/`mmput`).
    pub(crate) mm_users: CachePadded<AtomicUsize>,
    /// Struct references (`mmgrab`/`mmdrop`), including, under `refcount`, one per lazy CPU.
    pub(crate) mm_count: CachePadded<AtomicUsize>,
    /// `mm_cpumask(mm)`: bit `n` is set while CPU `n` may hold TLB entries or have the mm
    /// loaded (an arch decides when bits are cleared).
    pub(crate) cpumask: CachePadded<AtomicU64>,
}

impl Mm {
    fn new(gen: u64) -> Mm {
        Mm {
            gen: CachePadded(AtomicU64::new(gen)),
            mm_users: CachePadded(AtomicUsize::new(0)),
            mm_count: CachePadded(AtomicUsize::new(0)),
            cpumask: CachePadded(AtomicU64::new(0)),
        }
    }

    /// `mm_users` now (racy by nature; for reports and tests).
    pub fn users(&self) -> usize {
        self.mm_users.load(Ordering::Relaxed)
    }

    /// `mm_count` now (racy by nature; for reports and tests).
    pub fn count(&self) -> usize {
        self.mm_count.load(Ordering::Relaxed)
    }

    /// `mm_cpumask(mm)` now.
    pub fn cpumask(&self) -> u64 {
        self.cpumask.load(Ordering::Relaxed)
    }
}

/// Why an access through an [`MmId`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The slot was freed (and maybe reused) after the handle was made.
    #[error("{0} was freed")]
    Freed(MmId),
}

/// The arena of mm slots.
///
/// # Invariants
/// Slot 0 is `init_mm` and is never freed. Every other slot is either live (odd
/// generation, not on the free list) or free (even generation, on the free list).
pub struct Arena {
    slots: Box<[Mm]>,
    free: Mutex<Vec<u32>>,
}

impl Arena {
    /// An arena with `capacity` slots besides `init_mm`.
    pub fn new(capacity: usize) -> Arena {
        let capacity = capacity.min(u32::MAX as usize - 1);
        let slots: Box<[Mm]> = (0..=capacity)
            .map(|i| Mm::new(if i == 0 { 1 } else { 0 }))
            .collect();
        // INVARIANT: init_mm is live forever; one user and one count that nobody drops.
        slots[0].mm_users.store(1, Ordering::Relaxed);
        slots[0].mm_count.store(1, Ordering::Relaxed);
        let free = (1..=capacity as u32).rev().collect();
        Arena {
            slots,
            free: Mutex::new(free),
        }
    }

    /// How many slots, `init_mm` included.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Takes a free slot and makes it a new mm with `mm_users == 1` and `mm_count == 1`
    /// (`mm_alloc`). `None` when the arena is full.
    pub(crate) fn alloc(&self) -> Option<MmId> {
        let slot = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        let mm = &self.slots[slot as usize];
        mm.mm_users.store(1, Ordering::Relaxed);
        mm.mm_count.store(1, Ordering::Relaxed);
        mm.cpumask.store(0, Ordering::Relaxed);
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
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.slot);
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
        mm.mm_users.store(POISON, Ordering::Relaxed);
        mm.mm_count.store(POISON, Ordering::Relaxed);
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.slot);
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
