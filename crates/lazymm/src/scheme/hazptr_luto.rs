//! `hazptr-luto`: Andy Lutomirski's lightweight hazard pointers for lazy mms (the
//! January 2022 series "sched: Use lightweight hazard pointers to grab lazy mms", never
//! merged).
//!
//! # The protocol
//! Each runqueue gets two words that other CPUs may touch, together on the runqueue's
//! own line: `rq.lazy_mm`, a hazard pointer naming the mm this CPU uses lazily, and
//! `rq.drop_mm`, an `mm_count` reference another CPU handed over for this CPU to drop.
//!
//! *Into lazy mode* (user→kernel, `exit_mm`, `kthread_unuse_mm`), the CPU stores the mm
//! into its own `rq.lazy_mm`: no fence and no shared write. The store needs no fence
//! because of who still holds the mm: the task this CPU switched away from owns an
//! `mm_users` reference (for `kthread_unuse_mm`, the caller of `kthread_use_mm` does),
//! and teardown reads `rq.lazy_mm` only once `mm_users` is zero. The fully ordered
//! `mmput` that released that reference comes after the store, so the scan sees it.
//! `init_mm` is never freed and never published. (The model makes every store to
//! `rq.lazy_mm` a release store, which is a plain store on x86; see `lazy_store` for why
//! the C++ memory model wants it where Linux writes `WRITE_ONCE`.)
//!
//! *Out of lazy mode* (kernel→user, `exec_mmap` and `kthread_use_mm` from a kernel
//! thread, `sched_force_init_mm`), the CPU release-stores NULL: its last use of the
//! page tables comes before any scanner that reads the NULL goes on to free them.
//!
//! *Teardown*: in `__mmput`, after `exit_mmap`, the last user scans the candidate CPUs'
//! `rq.lazy_mm` with acquire loads. On the first match it takes `nr_cpus` references in
//! one atomic add, hands one to each matching CPU by a cmpxchg into its `rq.drop_mm`,
//! and gives the unused ones back; then it drops the reference `mm_users` held, as
//! always. It sends no IPIs: the mm is freed later, by whichever lazy CPU drops the
//! last handed-over reference.
//!
//! *The deferred drop*: every `finish_task_switch` looks at `rq.drop_mm`. A reference to
//! an mm that is no longer this CPU's lazy mm is taken out (cmpxchg to NULL) and
//! dropped; one to the mm it still uses lazily stays until it leaves it. `rq.drop_mm`
//! holds one reference, so at most one deferred reference per CPU lingers, and it goes
//! at that CPU's next switch after it left the mm (property e). If a scanner finds an
//! older reference still parked there while the CPU is lazy on the scanner's mm, the
//! old one is stale (the CPU left that mm, which is dead, so it never comes back to
//! it) and the scanner drops it on the owner's behalf.
//!
//! # Candidates
//! `hazptr-luto` scans every online CPU: an offline CPU left its lazy mm in
//! `sched_force_init_mm`. `hazptr-luto-cpumask` scans only `mm_cpumask(mm)`, which is
//! cheaper on a big machine but correct only while the arch keeps the bit of every CPU
//! that still has the mm loaded, lazily or not (every arch here does; Lutomirski's
//! mockup notes that `mm_cpumask` is not that reliable everywhere).
//!
//! # Membarrier (property f)
//! A release store is not a full barrier, and this scheme has no fully ordered drop on
//! the kernel→user path. Lutomirski's series made the barrier explicit ("membarrier:
//! Make the post-switch-mm barrier explicit", January 2022): `context_switch` calls
//! `membarrier_finish_switch_mm(rq->membarrier_state)` after `switch_mm_irqs_off`, and
//! so do `kthread_use_mm` and `exec_mmap`; its generic definition in
//! `include/linux/sched/mm.h` is `smp_mb()` only if the state has
//! `MEMBARRIER_STATE_GLOBAL_EXPEDITED` or `MEMBARRIER_STATE_PRIVATE_EXPEDITED`, so a
//! process that never registered for membarrier pays nothing. Here it is
//! `HazptrLuto::membarrier_finish_switch_mm`, called
//! from `mmdrop_lazy_tlb_sched` (the kernel→user switch: the one case property f
//! checks, since a user→user switch passes `switch_mm`) and from `mmdrop_lazy_tlb`
//! (`kthread_use_mm`, `exec_mmap`), reading the registration of the mm being switched
//! to. With `Config::membarrier_registered` off no mm is registered and a lazy round
//! trip costs no barrier beyond the scheduler's. When the barrier is skipped, the NULL
//! store to `rq.lazy_mm` is no longer ordered before the look at `rq.drop_mm`: a
//! reference a scanner parks meanwhile is then found at the next switch, which property
//! e allows.
//!
//! # When the arch moves a lazy CPU
//! x86 switches lazy CPUs to `init_mm` itself when `exit_mmap` frees page tables; the
//! core is not told, so `rq.lazy_mm` keeps naming the mm. That only makes the CPU look
//! lazy a little longer (a scanner may hand it a reference it drops at once): at its
//! next switch the CPU retires a hazard pointer that no longer names what it has loaded.
//!
//! # The race it must survive, and its mutants
//! The scan must come after `mm_users == 0`, when no new lazy use can begin. Scan
//! earlier and a task still holding the mm can go lazy after the scan and exit: its CPU
//! gets no reference and the mm is freed under it. `hazptr-luto-early-scan` scans at
//! the first `mmput` of the mm (as a design that scans "when the process starts to
//! exit" would) and hands over to the CPUs found then; the other thread's `exit_mm`
//! makes its CPU lazy after that scan, and the oracle sees the mm freed while that CPU
//! still has it loaded (b), or a speculative walk of the freed tables (b).
//!
//! `hazptr-luto-hotplug` restores the CPU-offline order from before the hotplug fix: the
//! outgoing CPU leaves `cpu_online_mask` before it leaves its lazy mm, so a teardown that
//! scans the online CPUs in that window misses its hazard pointer, and the mm is freed
//! while the dying CPU still has it loaded (b).
//!
//! `hazptr-luto-no-deferred-drop` never takes a handed-over reference out of
//! `rq.drop_mm`: the reference lingers past the CPU's next switch and the mm is never
//! freed (property e: `LingeringDeferred` while running, a leak at quiescence).

use super::Scheme;
use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::cpumask::CpuMask;
use crate::kernel::Kernel;
use crate::mm::{MmCount, MmId};
use crate::mutant::{Exercise, FaultPoint, Kind, Mutant, MutantInfo, Setting};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::sync::raw::Mutex;
use crate::sync::{CachePadded, Field, Ordering, SharedU64, Tag};

/// `hazptr-luto-early-scan`: the scan made at an mm's first `mmput`.
pub const EARLY_SCAN: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-luto-early-scan",
    kind: Kind::Broken,
    scheme: "hazptr-luto",
    arch: None,
    breaks: &[Property::A, Property::B],
    exercise: Exercise::Teardown,
    description: "scans rq.lazy_mm at the first mmput, not at mm_users == 0: a CPU that goes lazy later is missed (a, b)",
    configure: &[],
});

/// `hazptr-luto-no-deferred-drop`: `finish_task_switch` never drops `rq.drop_mm`.
pub const NO_DEFERRED_DROP: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-luto-no-deferred-drop",
    kind: Kind::Broken,
    scheme: "hazptr-luto",
    arch: None,
    breaks: &[Property::E],
    exercise: Exercise::Teardown,
    description: "finish_task_switch never drops the reference handed over in rq.drop_mm: it lingers and the mm leaks (e)",
    configure: &[],
});

/// `hazptr-luto-hotplug`: the online-mask scan with the CPU-offline order from before
/// the hotplug fix: the outgoing CPU leaves `cpu_online_mask` while its `rq.lazy_mm`
/// still names an mm, and a scan of the online CPUs misses it (Lutomirski's own "XXX: I
/// *think* this is correct when hot-unplugging").
pub const HOTPLUG: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-luto-hotplug",
    kind: Kind::Broken,
    scheme: "hazptr-luto",
    arch: None,
    breaks: &[Property::A, Property::B],
    exercise: Exercise::Hotplug,
    description: "pre-fix offline order: the outgoing CPU leaves cpu_online_mask still lazy, so the online scan misses it (a, b)",
    configure: &[Setting::OfflinePreFixOrder],
});

/// The `hazptr-luto` scheme; `CPUMASK` chooses the candidates the teardown scans:
/// every online CPU (`false`) or `mm_cpumask(mm)` (`true`).
pub struct HazptrLuto<const CPUMASK: bool = false> {
    /// Mutant `hazptr-luto-early-scan`: the scan made at each mm's first `mmput`.
    early_scans: Option<Mutex<Vec<(MmId, CpuMask)>>>,
    /// Mutant `hazptr-luto-no-deferred-drop`.
    no_deferred_drop: bool,
}

/// `hazptr-luto-cpumask`: the teardown scans only `mm_cpumask(mm)`.
pub type HazptrLutoCpumask = HazptrLuto<true>;

/// A task's state under `hazptr-luto`: nothing (there is no `active_mm`).
#[derive(Debug, Default)]
pub struct LutoTask;

/// The token for a lazy use: the hazard pointer itself lives in `rq.lazy_mm`.
#[derive(Debug)]
pub struct LutoLazy;

/// The runqueue fields this scheme adds, on the runqueue's own line.
///
/// # Invariants
/// - `lazy_mm` is 0 or the encoding of the mm this CPU uses lazily right now; while it
///   names an mm, that mm's page tables are not freed (a teardown scan that finds it
///   hands this CPU a reference instead).
/// - `drop_mm` is 0 or the encoding of an mm for which exactly one `mm_count` reference
///   is parked here, counted in that mm's `mm_count`: whoever takes a non-zero value out
///   (this CPU in `drop_deferred`, a scanner in `hand_over`) owns that reference and
///   drops it.
pub struct LutoRq {
    /// `rq->lazy_mm`: the hazard pointer (an encoded [`MmId`], 0 for none). Only this
    /// CPU writes it; scanners read it.
    lazy_mm: SharedU64,
    /// `rq->drop_mm`: a handed-over `mm_count` reference for this CPU to drop (0 for
    /// none). Scanners put one in; this CPU, or a later scanner, takes it out.
    drop_mm: SharedU64,
}

/// What only this CPU looks at: the oracle's memory for property e.
#[derive(Debug, Default)]
pub struct LutoLocal {
    /// A deferred reference this CPU found stale (its mm no longer lazy here) still
    /// parked in `rq.drop_mm` at the end of its previous switch; 0 if none.
    stale: u64,
}

impl<const CPUMASK: bool> HazptrLuto<CPUMASK> {
    /// Reads the candidate CPUs' hazard pointers: the CPUs that may use `mm` lazily.
    fn scan<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) -> CpuMask {
        let candidates = if CPUMASK {
            // mm_users reached zero through a fully ordered decrement, after every
            // user's switch to the mm set its bit (where the arch sets bits at all).
            k.mm_cpus(cpu, mm)
        } else {
            k.cpu_online_mask(cpu)
        };
        let want = mm.encode();
        let mut found = CpuMask::new(k.nr_cpus());
        for i in candidates.iter() {
            // ORDERING: Acquire pairs with the Release stores in `lazy_store` (of NULL
            // and of another mm): a CPU seen to have left `mm` has finished using its
            // page tables. A CPU that entered lazy mode on `mm` did so before the last
            // `mmput` released `mm_users` (see `mmgrab_lazy_tlb`), and this CPU acquired
            // that release in its own `mmput`, so the store is visible here.
            if k.cpus[i]
                .scheme
                .lazy_mm
                .load(&mut cpu.acct, Ordering::Acquire)
                == want
            {
                found.set(i);
            }
        }
        cpu.stats.lazy_scan_hits += found.weight() as u64;
        found
    }

    /// Hands one `mm_count` reference to each CPU in `found` through its `rq.drop_mm`.
    /// The caller holds a reference of its own (the one `mm_users` held as a whole).
    fn hand_over<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId, found: &CpuMask) {
        if found.is_empty() {
            return;
        }
        let n = k.nr_cpus();
        let Some(m) = k.mm(cpu, mm, "hazptr hand-over") else {
            return;
        };
        // Take enough references for every CPU at once: one shared RMW, however many
        // CPUs match.
        // ORDERING: Relaxed, as atomic_add: the caller's own reference keeps the count
        // above zero; the references are published by the cmpxchgs below.
        m.mm_count.fetch_add(&mut cpu.acct, n, Ordering::Relaxed);
        let want = mm.encode();
        let mut used = 0;
        for i in found.iter() {
            let rq = &k.cpus[i].scheme;
            // ORDERING: Acquire pairs with the AcqRel cmpxchg of whoever parked the
            // current value, so an older reference we may drop is a counted one.
            let mut cur = rq.drop_mm.load(&mut cpu.acct, Ordering::Acquire);
            loop {
                if cur != 0 {
                    // ORDERING: Acquire pairs with the Release in `lazy_store`.
                    if rq.lazy_mm.load(&mut cpu.acct, Ordering::Acquire) != want {
                        // The CPU has left mm since the scan: it needs no reference.
                        break;
                    }
                    // The CPU is lazy on mm, so the parked reference is to an mm it
                    // left; that mm is dead, so the CPU never uses it again.
                }
                // ORDERING: AcqRel, as Linux's fully ordered cmpxchg. Release pairs with
                // the owner's Acquire load in `drop_deferred`: the increment above is
                // visible before the owner drops the reference. Acquire: an older
                // reference we take out was counted before we drop it.
                match rq.drop_mm.compare_exchange(
                    &mut cpu.acct,
                    cur,
                    want,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(old) => {
                        // INVARIANT: `drop_mm` now holds one of the `n` references taken
                        // above, and the reference it held (if any) is ours to drop.
                        used += 1;
                        if let Some(old) = MmId::decode(old) {
                            // A stale deferred reference: drop it on the owner's behalf.
                            // The owner left that mm before it published mm (Release),
                            // and we saw mm (Acquire), so its last use is ordered before
                            // this drop.
                            k.mmdrop(cpu, MmCount(old));
                        }
                        break;
                    }
                    Err(now) => cur = now,
                }
            }
        }
        if used < n {
            // ORDERING: Relaxed, as atomic_sub: the caller's own reference keeps the
            // count above zero.
            m.mm_count
                .fetch_sub(&mut cpu.acct, n - used, Ordering::Relaxed);
        }
    }

    /// Stores this CPU's hazard pointer (0 for none).
    #[inline]
    fn lazy_store<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, word: u64) {
        // ORDERING: Release pairs with the Acquire loads in `scan` and `hand_over`.
        // Storing NULL: this CPU's last use of the old lazy mm (the switch away from its
        // page tables) happens before a scanner that reads NULL frees them. Storing an
        // mm: the same holds for a scanner that reads this later value instead of the
        // NULL. On a TSO machine this is a plain store, no fence (Linux's WRITE_ONCE).
        // Release on the mm store only keeps the C++ model honest: there, a relaxed store
        // that overwrites the release of NULL does not carry its ordering (release
        // sequences are made of RMWs only), so a scanner reading the newer mm would not
        // be ordered after this CPU's switch away from the old one.
        k.cpus[cpu.id]
            .scheme
            .lazy_mm
            .store(&mut cpu.acct, word, Ordering::Release);
    }

    /// `mmdrop_lazy()`: drops the reference parked in `rq.drop_mm` if this CPU no
    /// longer uses its mm lazily.
    fn drop_deferred<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>) {
        if k.scheme.no_deferred_drop {
            // MUTANT hazptr-luto-no-deferred-drop: the handed-over reference stays.
            return;
        }
        let rq = &k.cpus[cpu.id].scheme;
        // ORDERING: Relaxed: only this CPU writes its own hazard pointer.
        let lazy = rq.lazy_mm.load(&mut cpu.acct, Ordering::Relaxed);
        // ORDERING: Acquire pairs with the scanner's AcqRel cmpxchg in `hand_over`: the
        // reference's increment is visible before we drop it.
        let mut d = rq.drop_mm.load(&mut cpu.acct, Ordering::Acquire);
        while d != 0 && d != lazy {
            // ORDERING: Acquire, as above; no release needed: this CPU's own uses of
            // the mm are ordered before the free by the fully ordered mmdrop.
            match rq.drop_mm.compare_exchange(
                &mut cpu.acct,
                d,
                0,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // INVARIANT: `drop_mm` is 0 again, and the reference it held is ours.
                    if let Some(mm) = MmId::decode(d) {
                        k.mmdrop(cpu, MmCount(mm));
                    }
                    return;
                }
                Err(now) => d = now,
            }
        }
    }
}

impl<const CPUMASK: bool> Scheme for HazptrLuto<CPUMASK> {
    const NAME: &'static str = if CPUMASK {
        "hazptr-luto-cpumask"
    } else {
        "hazptr-luto"
    };
    const MUTANTS: &'static [Mutant] = if CPUMASK {
        &[]
    } else {
        &[EARLY_SCAN, NO_DEFERRED_DROP, HOTPLUG]
    };
    const UNLAZY_MM_IN_FLUSH: bool = true;
    type TaskState = LutoTask;
    type CpuLocal = LutoLocal;
    type CpuShared = CachePadded<LutoRq>;
    type LazyRef = LutoLazy;

    fn new(cfg: &Config) -> Self {
        HazptrLuto {
            early_scans: cfg.is(EARLY_SCAN).then(|| Mutex::new(Vec::new())),
            no_deferred_drop: cfg.is(NO_DEFERRED_DROP),
        }
    }

    fn new_cpu_shared(cpu: usize) -> CachePadded<LutoRq> {
        CachePadded(LutoRq {
            lazy_mm: SharedU64::new(0, Tag::new(Field::RqLazyMm, cpu as u32)),
            drop_mm: SharedU64::new(0, Tag::new(Field::RqDropMm, cpu as u32)),
        })
    }

    #[inline]
    fn set_user_active_mm(_: &mut LutoTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(cpu: &Cpu<Self, A>, _: &LutoTask, irq: &'g IrqGuard) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: &LazyMm<'_>,
    ) -> LutoLazy {
        let mm = mm.id();
        if !mm.is_init() {
            // INVARIANT: whoever calls this holds, or runs for a task that holds, a real
            // user of mm (prev's mm_users on user→kernel, the exiting task's in exit_mm,
            // the kthread_use_mm caller's in kthread_unuse_mm), so mm_users is not zero
            // and no scan of mm has started.
            Self::lazy_store(k, cpu, mm.encode());
        }
        LutoLazy
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: LutoLazy) {
        Self::lazy_store(k, cpu, 0);
        // kthread_use_mm() and exec_mmap() call membarrier_finish_switch_mm() too.
        Self::membarrier_finish_switch_mm(k, cpu);
        Self::drop_deferred(k, cpu);
    }

    #[inline]
    fn mmdrop_lazy_tlb_sched<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: LutoLazy) {
        Self::lazy_store(k, cpu, 0);
        Self::membarrier_finish_switch_mm(k, cpu);
    }

    #[inline]
    fn lazy_install(_: &mut LutoLocal, _: &mut LutoTask, _: LutoLazy) {}

    #[inline]
    fn lazy_take(_: &mut LutoLocal, _: &mut LutoTask) -> Option<LutoLazy> {
        // A kernel thread always runs on some lazy mm (init_mm at worst).
        Some(LutoLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut LutoLocal, _: &mut LutoTask, _: &mut LutoTask) {}

    fn fault_point<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, at: FaultPoint) {
        let (Some(early), FaultPoint::MmputEntry(mm)) = (&k.scheme.early_scans, at) else {
            return;
        };
        // MUTANT hazptr-luto-early-scan: scan at the first mmput, while other users may
        // still go lazy, and keep what was found for the teardown.
        let mut list = early.lock().unwrap_or_else(|e| e.into_inner());
        if !list.iter().any(|(id, _)| *id == mm) {
            let found = Self::scan(k, cpu, mm);
            list.push((mm, found));
        }
    }

    fn after_exit_mmap<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        let found = match &k.scheme.early_scans {
            Some(early) => {
                let mut list = early.lock().unwrap_or_else(|e| e.into_inner());
                match list.iter().position(|(id, _)| *id == mm) {
                    Some(i) => list.swap_remove(i).1,
                    None => Self::scan(k, cpu, mm),
                }
            }
            // mm_users is zero: no CPU can start using mm lazily any more.
            None => Self::scan(k, cpu, mm),
        };
        Self::hand_over(k, cpu, mm, &found);
    }

    #[inline]
    fn finish_switch<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>) {
        let rq = &k.cpus[cpu.id].scheme;
        // ORDERING: Relaxed: only this CPU writes its own hazard pointer.
        let lazy = rq.lazy_mm.load(&mut cpu.acct, Ordering::Relaxed);
        // ORDERING: Relaxed: a first look on the switch path; `drop_deferred` reads it
        // again with Acquire before it takes a reference out.
        if rq.drop_mm.load(&mut cpu.acct, Ordering::Relaxed) == 0
            && (lazy == 0 || lazy == cpu.loaded_mm().encode())
        {
            // The common case: nothing parked here, and the hazard pointer is current.
            cpu.scheme.stale = 0;
            return;
        }
        Self::finish_switch_slow(k, cpu, lazy);
    }
}

impl<const CPUMASK: bool> HazptrLuto<CPUMASK> {
    /// `membarrier_finish_switch_mm(rq->membarrier_state)`: a full barrier after the
    /// `rq->curr` store, only if the mm this CPU switched to (current's, set by now) is
    /// registered for expedited membarrier.
    #[inline]
    fn membarrier_finish_switch_mm<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>) {
        let Some(mm) = cpu.current_mm() else {
            return;
        };
        if k.membarrier_state(cpu, mm) & crate::mm::MEMBARRIER_STATE_PRIVATE_EXPEDITED != 0 {
            // ORDERING: pairs with membarrier()'s full fence between its store and its
            // reads of rq->curr (property f); it also orders the NULL store to
            // rq.lazy_mm before the look at rq.drop_mm in `finish_switch`.
            cpu.smp_mb();
        }
    }

    /// The rest of `finish_switch`: retire a hazard pointer the arch made stale, drop a
    /// deferred reference, and check property e.
    #[cold]
    fn finish_switch_slow<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, lazy: u64) {
        if lazy != 0 && lazy != cpu.loaded_mm().encode() {
            // The arch moved this CPU off its lazy mm (x86's flush when page tables are
            // freed): retire the hazard pointer.
            Self::lazy_store(k, cpu, 0);
        }
        Self::drop_deferred(k, cpu);
        // Property e: a stale deferred reference goes at the CPU's next switch. One a
        // scanner parks right after the drop above may stay until the next switch, but
        // not past it.
        let rq = &k.cpus[cpu.id].scheme;
        // ORDERING: Relaxed: an oracle read of this CPU's own words.
        let lazy = rq.lazy_mm.oracle_load(Ordering::Relaxed);
        let d = rq.drop_mm.oracle_load(Ordering::Relaxed);
        if d != 0 && d != lazy {
            if d == cpu.scheme.stale {
                let mm = MmId::decode(d).unwrap_or(MmId::INIT);
                k.report(cpu, mm, ViolationKind::LingeringDeferred);
            }
            cpu.scheme.stale = d;
        } else {
            cpu.scheme.stale = 0;
        }
    }
}
