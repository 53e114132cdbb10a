//! Arch `x86`: `cpu_tlbstate` and the TLB flushes of `arch/x86/mm/tlb.c`, as mainline
//! has them since 2025.
//!
//! # What the CPU knows
//! Each CPU keeps `loaded_mm`, the mm its CR3 belongs to, `loaded_mm_asid`, the PCID it
//! runs it under, and `is_lazy`, whether it runs that mm only lazily; for each of its
//! [`TLB_NR_DYN_ASIDS`] PCIDs it remembers which mm (`ctx_id`) the TLB entries tagged
//! with it belong to, and up to which `tlb_gen` of that mm they are current.
//! `switch_mm_irqs_off` ignores its `prev` argument and reads `loaded_mm` instead: the
//! arch, not the task, knows what is loaded. This is what lets a scheme drop `active_mm`
//! on x86.
//!
//! # The switch window, and NMIs
//! An NMI can hit anywhere, inside `switch_mm_irqs_off` too, and perf's NMI handler walks
//! the user stack with `copy_from_user_nmi()`. It first asks `nmi_uaccess_okay()`: is
//! `loaded_mm` the mm of `current`? During a context switch `current` is still `prev`
//! (it changes in `switch_to`, after `switch_mm`), so in the window after the CR3 write
//! and before the `loaded_mm` store, `loaded_mm == current->mm == prev` while the
//! hardware already runs `next`'s page tables. The switch therefore writes the sentinel
//! `LOADED_MM_SWITCHING` before the CR3 write and the new mm after it: an NMI in the
//! window sees the sentinel and refuses (property g). The mutant
//! `x86-no-switching-sentinel` skips the sentinel; the engine's NMIs inside the window
//! catch it.
//!
//! # Flushes that free no page tables, and `tlb_gen`
//! Every flush of an mm (`flush_tlb_mm_range`) first bumps `mm->context.tlb_gen` with a
//! fully ordered `atomic64_inc_return`, then asks `should_flush_tlb()` of each CPU in
//! `mm_cpumask`: a lazy CPU is skipped ("Lazy TLB will get flushed at the next context
//! switch"), a CPU inside a switch (`LOADED_MM_SWITCHING`) or running the mm is flushed,
//! a CPU that has moved on is flushed only now and then, to trim it from the mask. A
//! flushed CPU catches its PCID up to the mm's `tlb_gen` (`flush_tlb_func`). A skipped
//! one catches up by itself: leaving lazy mode on the same mm, `switch_mm_irqs_off`
//! clears `is_lazy`, issues `smp_mb()` and reads `tlb_gen` (the store-buffering pair of
//! the flusher's increment and its read of `is_lazy`); switching to another mm, it reads
//! the mm's `tlb_gen` after it set its bit in `mm_cpumask`, and `choose_new_asid` flushes
//! the PCID if it is behind.
//!
//! That second read is only right in one order, the one Dave Hansen's fea4e317f9e7
//! ("x86/mm: Eliminate window where TLB flushes may be inadvertently skipped", May 2025)
//! relies on when `should_flush_tlb()` answers yes for `LOADED_MM_SWITCHING`: the
//! sentinel is published *before* the CPU sets its bit and reads `tlb_gen` (stable trees
//! had the two blocks the other way round until Stephen Dolan's "x86/mm: Fix check/use
//! ordering in switch_mm_irqs_off()", October 2025), with a full barrier between the bit
//! and the read even when the bit was already set (83b0177a6c48, "x86/mm: Fix SMP
//! ordering in switch_mm_irqs_off()"). The mutant `x86-cpumask-before-sentinel` is the
//! older order: the CPU's bit is set and `tlb_gen` read while `loaded_mm` still names
//! `prev`, so a flusher in that window skips it (`prev` is neither lazy, switching nor the
//! flushed mm), the CPU saw the old `tlb_gen`, reuses a PCID whose entries predate the
//! flush, and returns to user space through translations the flush removed. The oracle's
//! property h catches it at the next user access.
//!
//! # Freeing page tables
//! When `exit_mmap` frees page tables, the flush IPIs every CPU in `mm_cpumask`, lazy
//! ones included: a lazy CPU's paging-structure caches could otherwise walk the freed
//! lower tables (Rik van Riel's 2018 bug; mutant `x86-no-freed-tables-flush` skips the
//! lazy CPUs again, and property b's check of the lower tables catches it). A lazy CPU
//! handles it by switching to `init_mm` (`flush_tlb_func`), which is the "no `active_mm`"
//! proposal of 2024 falling out of the TLB flush: after `exit_mmap`, no CPU has the mm
//! loaded, so `lazy-percpu` needs no shootdown of its own (`shootdown`, whose
//! `current->active_mm` still names the mm, IPIs again). Under a scheme that
//! sets [`Scheme::UNLAZY_MM_IN_FLUSH`] (Lutomirski's series, "x86/mm: Use
//! unlazy_mm_irqs_off() in TLB flush IPIs"), the switch also tells the scheduler: the
//! CPU gives up its lazy reference there and then, so the hazard-pointer scan after
//! `exit_mmap` finds almost nobody. A flush that reaches a CPU no longer running the mm
//! clears its bit (lazy `mm_cpumask` trimming), so the mask shrinks back to the CPUs that
//! may cache the mm.
//!
//! # Two configurations where the freeing flush does not un-lazy
//! The paragraph above holds on bare metal without INVLPGB, the default. Two
//! configuration switches, off by default, model where it does not (V3 of the third
//! fidelity review); `lazymm schemes` lists them under `configurations` and `findings`.
//!
//! **INVLPGB** ([`Config::x86_invlpgb`]; Rik van Riel's "AMD broadcast TLB
//! invalidation" series, v6.15: be88a1dd6112 "x86/mm: Handle global ASID context switch
//! and TLB flush", 4afeb0ed1753 "x86/mm: Enable broadcast TLB invalidation for
//! multi-threaded processes"; `use_global_asid`, `mm_global_asid`, `broadcast_tlb_flush`
//! in `arch/x86/mm/tlb.c`, read as of v6.18). In the kernel,
//! `flush_tlb_mm_range` does `if (mm_global_asid(mm)) broadcast_tlb_flush(info); else if
//! (cpumask_any_but(mm_cpumask(mm), cpu) < nr_cpu_ids) { ...; flush_tlb_multi(...);
//! consider_global_asid(mm); }`: an mm with a global ASID is flushed by INVLPGB on every
//! CPU and TLBSYNC, with no IPI, the freeing flush of `exit_mmap` included, so no lazy CPU
//! runs `flush_tlb_func`: it keeps CR3 on the mm and its bit in `mm_cpumask` (nothing
//! trims the mask of a global-ASID mm). `choose_new_asid` hands out the global ASID with
//! no flush, `switch_mm_irqs_off` returns early on a same-mm switch whose ASID is global
//! ("Broadcast TLB invalidation keeps this ASID up to date all the time"), and
//! `flush_tlb_func` returns before its lazy test for a global ASID (v6.18's order; Rik van
//! Riel's May 2025 "x86/mm: fix race between flush_tlb_func and idle task leave_mm",
//! `20250520102036.5d61f565@fangorn`, would test `is_lazy` first; no IPI reaches a
//! global-ASID mm in the model, so the two orders act alike here). Refcounting is
//! unaffected (the lazy CPU's `mm_count` reference keeps the root); `lazy-percpu`, which
//! skips its shootdown on x86, frees the root under the lazy CPU (property b).
//! Simplification (named): with the switch on, every user mm has its global ASID from
//! birth, as `consider_global_asid` gives it to an mm active on more than three CPUs
//! (checked once in a while, after an IPI flush); the transition (`mm_needs_global_asid`,
//! `finish_asid_transition`, which IPIs stragglers still on a dynamic ASID) and the
//! global ASID allocator are left out. A global ASID's TLB entries are always current,
//! so property h has nothing to check on it.
//!
//! **KVM paravirt flush** ([`Config::kvm_pv_tlb_flush`]; `arch/x86/kernel/kvm.c`
//! `kvm_flush_tlb_multi`, the `pv_ops.mmu.flush_tlb_multi` of a guest with
//! `KVM_FEATURE_PV_TLB_FLUSH`: 858a43aae236 "KVM: X86: use paravirtualized TLB
//! Shootdown", v4.16; `kvm_flush_tlb_others` until 4ce94eabac16 "x86/mm/tlb: Flush
//! remote and local TLBs concurrently", v5.13). Before `native_flush_tlb_multi` sends
//! its IPIs, it reads each target vCPU's `steal_time.preempted`; for a vCPU the host has
//! preempted it sets `KVM_VCPU_FLUSH_TLB` there (a `try_cmpxchg`) and drops the vCPU from
//! the mask. The host flushes that vCPU's TLB (`kvm_vcpu_flush_tlb_guest`, from
//! `record_steal_time`) when it next enters it. The guest's `flush_tlb_func` never runs
//! there, so a lazy vCPU stays lazily on the mm through the freeing flush, CR3 and all.
//! Simplification (named): whether a target vCPU is preempted is a seeded choice of the
//! flushing CPU, one target in two, made per target per flush (`flush_tlb_multi`'s path
//! only: the local vCPU is never preempted); the model does not stop the vCPU. The
//! host's flush is applied in two halves that stand for the one at its next entry:
//! the paging-structure caches of the mm at once (the vCPU does not run until the host
//! flushes them), and its PCIDs' TLB entries before its next user access, recorded as
//! each PCID being current with its mm's `tlb_gen` (the model's TLB holds exactly the
//! translations of the `tlb_gen` its context records; an empty one is current). That
//! record is the guest's `cpu_tlbstate.ctxs`, so a vCPU back from such a flush skips one
//! guest flush the kernel would still make (redundant: costs, not safety). The
//! `steal_time` reads and `try_cmpxchg` are oracle words, not counted accesses.
//!
//! # What is left out
//! Flushes are always full (Linux flushes a range when the CPU is exactly one
//! generation behind); `should_trim_cpumask()`'s once a second is one flush in
//! [`TRIM_PERIOD`] of each mm; LAM, Intel RAR, Hyper-V's and Xen's paravirt flushes, and
//! the INVLPGB and KVM simplifications above. The model's TLB for a PCID holds exactly
//! the translations as of the `tlb_gen` its context records (a real one holds a subset).

use super::{cpumask_clear_cpu, cpumask_set_cpu, Arch};
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::cpumask::CpuMask;
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::Setting;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::scheme::Scheme;
use crate::sync::{raw, CachePadded, Field, Ordering, SharedU64, Tag};

/// `x86-no-switching-sentinel`: no `LOADED_MM_SWITCHING` around the CR3 write.
pub const NO_SWITCHING_SENTINEL: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-no-switching-sentinel",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::G],
    exercise: Exercise::Teardown,
    description: "no LOADED_MM_SWITCHING: an NMI in the CR3 switch window reads user memory of the wrong mm (g)",
    configure: &[],
});

/// `x86-no-freed-tables-flush`: the exit flush skips lazy CPUs (Rik van Riel's 2018
/// bug, before `freed_tables` made such flushes reach lazy CPUs too).
pub const NO_FREED_TABLES_FLUSH: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-no-freed-tables-flush",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description: "exit_mmap's flush skips lazy CPUs: their paging-structure caches still walk the freed lower tables (b)",
    configure: &[],
});

/// `x86-cpumask-before-sentinel`: `switch_mm_irqs_off` sets the `mm_cpumask` bit and
/// reads `tlb_gen` before it publishes `LOADED_MM_SWITCHING`: the order of the stable
/// trees (6.1.y, 6.6.y, 6.12.y, from a bad backport of fea4e317f9e7), fixed there in
/// October 2025. The name is kept.
pub const CPUMASK_BEFORE_SENTINEL: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-cpumask-before-sentinel",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::H],
    exercise: Exercise::TlbFlush,
    description: "the stable trees' order until October 2025: mm_cpumask bit and tlb_gen read before LOADED_MM_SWITCHING, so a flush skips the switching CPU, which returns to user space on stale TLB entries (h)",
    configure: &[],
});

/// `x86-no-mb-cpumask-set`: `switch_mm_irqs_off` before 83b0177a6c48 ("x86/mm: Fix SMP
/// ordering in switch_mm_irqs_off()", tip x86/urgent, October 2025): when this CPU's
/// bit in `mm_cpumask(next)` is already set, nothing orders the `LOADED_MM_SWITCHING`
/// store before the `tlb_gen` read. That is store buffering against the flusher's
/// `tlb_gen` increment and its `loaded_mm` read: the flusher skips the CPU as one that
/// has moved on, the CPU reads the old `tlb_gen` and keeps a PCID the flush made stale
/// (h). Only a weak-memory run shows it, so it is not in [`Arch::MUTANTS`]: the checker
/// runs the model sequentially consistent and could never catch it. The loom model
/// `tlb_flush_litmus` (tests/loom.rs) does.
pub const NO_MB_CPUMASK_SET: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-no-mb-cpumask-set",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::H],
    exercise: Exercise::TlbFlush,
    description: "before 83b0177a6c48: no smp_mb() between LOADED_MM_SWITCHING and the tlb_gen read when the mm_cpumask bit is already set, so a flush skips the switching CPU, which keeps a stale PCID (h; weak memory only: loom, not listed)",
    configure: &[],
});

/// Finding: `lazy-percpu` on x86 with INVLPGB. Its teardown trusts the freeing flush
/// of `exit_mmap` to have moved every lazy CPU to `init_mm`; a global-ASID mm's flush is
/// an INVLPGB broadcast that sends no IPI, so a lazy CPU keeps CR3 on the root that
/// `__mmdrop` frees.
pub const LAZY_PERCPU_INVLPGB: Mutant = Mutant::declare(&MutantInfo {
    name: "finding-lazy-percpu-x86-invlpgb",
    kind: Kind::Finding,
    scheme: "lazy-percpu",
    arch: Some("x86"),
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description: "lazy-percpu with INVLPGB: the global-ASID mm's freeing flush is a broadcast with no IPI, no lazy CPU leaves for init_mm, and __mmdrop frees the root they still have loaded (b)",
    configure: &[Setting::X86Invlpgb],
});

/// Finding: `lazy-percpu` in a KVM guest with the paravirt TLB flush. A preempted lazy
/// vCPU gets no flush IPI (the host flushes its TLB at its next entry), so it stays
/// lazily on the mm whose root `__mmdrop` frees.
pub const LAZY_PERCPU_KVM_PV: Mutant = Mutant::declare(&MutantInfo {
    name: "finding-lazy-percpu-x86-kvm-pv-flush",
    kind: Kind::Finding,
    scheme: "lazy-percpu",
    arch: Some("x86"),
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description: "lazy-percpu in a KVM guest with PV TLB flush: kvm_flush_tlb_multi skips a preempted lazy vCPU, which keeps CR3 on the root __mmdrop frees (b)",
    configure: &[Setting::KvmPvTlbFlush],
});

/// The INVLPGB finding's configuration with the proposed fix: `lazy-percpu` asks this
/// boot's x86 whether the freeing flush reached every lazy CPU
/// ([`Arch::freeing_flush_unlazies`]: not with INVLPGB) and shoots them down itself.
pub const LAZY_PERCPU_INVLPGB_FIXED: Mutant = Mutant::declare(&MutantInfo {
    name: "fixed-lazy-percpu-x86-invlpgb",
    kind: Kind::Fixed,
    scheme: "lazy-percpu",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::Teardown,
    description: "the INVLPGB finding's configuration with lazy-percpu shooting lazy CPUs down itself when the freeing flush is a broadcast: clean",
    configure: &[Setting::X86Invlpgb, Setting::LazyPercpuAskFlush],
});

/// The KVM PV flush finding's configuration with the same fix.
pub const LAZY_PERCPU_KVM_PV_FIXED: Mutant = Mutant::declare(&MutantInfo {
    name: "fixed-lazy-percpu-x86-kvm-pv-flush",
    kind: Kind::Fixed,
    scheme: "lazy-percpu",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::Teardown,
    description: "the KVM PV flush finding's configuration with lazy-percpu shooting lazy CPUs down itself when the freeing flush may skip a preempted vCPU: clean",
    configure: &[Setting::KvmPvTlbFlush, Setting::LazyPercpuAskFlush],
});

/// `refcount` on x86 with INVLPGB: the lazy CPUs' references keep the root; clean.
pub const REFCOUNT_INVLPGB: Mutant = Mutant::declare(&MutantInfo {
    name: "refcount-x86-invlpgb",
    kind: Kind::Config,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::Teardown,
    description:
        "refcount on x86 with INVLPGB (global ASIDs, broadcast flushes, no flush IPIs): clean",
    configure: &[Setting::X86Invlpgb],
});

/// `shootdown` on x86 with INVLPGB: the lazy CPUs stay in `mm_cpumask`, so `__mmdrop`'s
/// shootdown reaches them; clean.
pub const SHOOTDOWN_INVLPGB: Mutant = Mutant::declare(&MutantInfo {
    name: "shootdown-x86-invlpgb",
    kind: Kind::Config,
    scheme: "shootdown",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::Teardown,
    description: "shootdown on x86 with INVLPGB: lazy CPUs stay in mm_cpumask and __mmdrop's IPIs reach them: clean",
    configure: &[Setting::X86Invlpgb],
});

/// `refcount` in a KVM guest with the paravirt TLB flush: clean.
pub const REFCOUNT_KVM_PV: Mutant = Mutant::declare(&MutantInfo {
    name: "refcount-x86-kvm-pv-flush",
    kind: Kind::Config,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::TlbFlush,
    description: "refcount in a KVM guest with PV TLB flush (preempted vCPUs flushed by the host at their next entry): clean",
    configure: &[Setting::KvmPvTlbFlush],
});

/// `shootdown` in a KVM guest with the paravirt TLB flush: `__mmdrop`'s shootdown IPIs
/// are ordinary IPIs (only `flush_tlb_multi` is paravirtualised); clean.
pub const SHOOTDOWN_KVM_PV: Mutant = Mutant::declare(&MutantInfo {
    name: "shootdown-x86-kvm-pv-flush",
    kind: Kind::Config,
    scheme: "shootdown",
    arch: Some("x86"),
    breaks: &[],
    exercise: Exercise::Teardown,
    description: "shootdown in a KVM guest with PV TLB flush: the shootdown's IPIs are not paravirtualised and reach every lazy vCPU: clean",
    configure: &[Setting::KvmPvTlbFlush],
});

/// Finding about a configuration no kernel builds: x86 with
/// `CONFIG_MMU_LAZY_TLB_SHOOTDOWN` (the `shootdown-debug` scheme, which adds
/// `DEBUG_VM_SHOOT_LAZIES`). `MMU_LAZY_TLB_SHOOTDOWN` requires `mm_cpumask` to cover
/// every CPU that may use the mm lazily at the final `mmdrop`; x86 breaks that. A flush
/// sent while a CPU ran the mm for real (here a kworker inside `kthread_use_mm`) reaches
/// it after it went lazy, so `flush_tlb_func` switches it to `init_mm` and leaves
/// `current->active_mm` naming the mm; the freeing flush of `exit_mmap` then finds
/// `loaded_mm != mm` and clears its bit, and `cleanup_lazy_tlbs` shoots down everyone
/// but it (`do_check_lazy_tlb` warns: property c). No scheme × arch that a kernel
/// builds is affected; `check --all` lists it (`findings/x86-shootdown-lazy-trim.md`).
pub const SHOOTDOWN_LAZY_TRIM: Mutant = Mutant::declare(&MutantInfo {
    name: "finding-x86-shootdown-lazy-trim",
    kind: Kind::Finding,
    scheme: "shootdown-debug",
    arch: Some("x86"),
    breaks: &[Property::C],
    exercise: Exercise::TlbFlush,
    description: "what-if x86 selected MMU_LAZY_TLB_SHOOTDOWN: a late flush IPI moves a lazy CPU to init_mm, the freeing flush then clears its mm_cpumask bit while current->active_mm still names the mm, and the shootdown misses it (c)",
    configure: &[],
});

/// `TLB_NR_DYN_ASIDS`: the PCIDs each CPU hands out to the mms it runs.
pub const TLB_NR_DYN_ASIDS: usize = 6;

/// The ASID a CPU runs a global-ASID mm under (INVLPGB): outside the dynamic ones, as
/// the kernel's global ASIDs are above `TLB_NR_DYN_ASIDS`. The model needs only one
/// value (it never compares two global ASIDs).
pub const GLOBAL_ASID: usize = TLB_NR_DYN_ASIDS;

/// `is_global_asid(asid)`.
fn is_global_asid(asid: usize) -> bool {
    asid >= TLB_NR_DYN_ASIDS
}

/// One flush in this many of each mm also flushes (and so trims from `mm_cpumask`) the
/// CPUs that no longer run it: the model's stand-in for `should_trim_cpumask()`, which
/// does it at most once a second.
pub const TRIM_PERIOD: u64 = 8;

/// `LOADED_MM_SWITCHING` as the shared `loaded_mm` word holds it.
const SWITCHING_WORD: u64 = u64::MAX;

/// The `x86` arch.
pub struct X86 {
    no_sentinel: bool,
    no_freed_tables_flush: bool,
    cpumask_before_sentinel: bool,
    no_mb_cpumask_set: bool,
    /// [`Config::x86_invlpgb`]: every user mm has a global ASID.
    invlpgb: bool,
    /// [`Config::kvm_pv_tlb_flush`]: `flush_tlb_multi` is `kvm_flush_tlb_multi`.
    kvm_pv: bool,
    /// `mm->context` of every arena slot (slot 0 is `init_mm`). A slot's `tlb_gen` keeps
    /// counting across the mms it holds; the PCID contexts tell them apart by `ctx_id`,
    /// the generation-checked handle.
    ctx: Box<[CachePadded<MmContext>]>,
}

/// `mm->context`, the part this model needs, and what the oracle keeps beside it.
pub struct MmContext {
    /// `mm->context.tlb_gen`: bumped by every flush of the mm.
    tlb_gen: SharedU64,
    /// The oracle's: the highest `tlb_gen` whose flush has returned, after which what it
    /// unmapped may be freed. Never counted.
    flushed_gen: raw::AtomicU64,
}

/// `cpu_tlbstate.loaded_mm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedMm {
    /// This mm's page tables are loaded in CR3.
    Mm(MmId),
    /// `LOADED_MM_SWITCHING`: a CR3 write is in progress.
    Switching,
}

impl LoadedMm {
    fn word(self) -> u64 {
        match self {
            LoadedMm::Mm(mm) => mm.encode(),
            LoadedMm::Switching => SWITCHING_WORD,
        }
    }
}

/// `cpu_tlbstate.ctxs[asid]`: whose entries a PCID tags, and how current they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbContext {
    /// `ctx_id`: the mm the PCID's entries belong to (`None`: never used).
    pub ctx_id: Option<MmId>,
    /// `tlb_gen`: the mm's `tlb_gen` the entries are current with.
    pub tlb_gen: u64,
}

/// `cpu_tlbstate`, the part this model needs: what only this CPU reads.
///
/// # Invariants
/// Outside `switch_mm_irqs_off`, `loaded_mm` is `Mm(cr3)` and agrees with the generic
/// `Cpu::loaded_mm`, `ctxs[loaded_mm_asid].ctx_id` names it, and the shared copies in
/// [`TlbShared`] hold the same `loaded_mm` and `is_lazy`; inside it, with the sentinel
/// on, `loaded_mm` is `Switching` from before the CR3 write until after it.
#[derive(Debug)]
pub struct TlbState {
    /// `cpu_tlbstate.loaded_mm`.
    pub loaded_mm: LoadedMm,
    /// `cpu_tlbstate.loaded_mm_asid`.
    pub loaded_mm_asid: usize,
    /// `cpu_tlbstate_shared.is_lazy` (this CPU's own copy; flushers read the shared one).
    pub is_lazy: bool,
    /// `cpu_tlbstate.next_asid`.
    next_asid: usize,
    /// `cpu_tlbstate.ctxs`.
    pub ctxs: [TlbContext; TLB_NR_DYN_ASIDS],
}

impl Default for TlbState {
    fn default() -> Self {
        let mut ctxs = [TlbContext {
            ctx_id: None,
            tlb_gen: 0,
        }; TLB_NR_DYN_ASIDS];
        ctxs[0].ctx_id = Some(MmId::INIT);
        TlbState {
            loaded_mm: LoadedMm::Mm(MmId::INIT),
            loaded_mm_asid: 0,
            is_lazy: false,
            next_asid: 1,
            ctxs,
        }
    }
}

/// What flushers on other CPUs read in `should_flush_tlb()`: `cpu_tlbstate.loaded_mm`
/// and `cpu_tlbstate_shared.is_lazy`, written only by this CPU.
pub struct TlbShared {
    loaded_mm: SharedU64,
    is_lazy: SharedU64,
    /// `steal_time.preempted & KVM_VCPU_FLUSH_TLB` (KVM guests only): a flusher skipped
    /// this preempted vCPU, and the host flushes its TLB at its next entry. An oracle
    /// word (the guest-host page is not priced).
    kvm_flush_on_enter: raw::AtomicBool,
}

/// The new PCID `choose_new_asid` picked, and whether it must be flushed.
struct NewAsid {
    asid: usize,
    need_flush: bool,
}

/// `flush_tlb_func` for a flush that freed page tables.
const IPI_FLUSH_FREED_TABLES: u8 = 0;
/// `flush_tlb_func` for a flush that freed none (`munmap`, `madvise(MADV_DONTNEED)`).
const IPI_FLUSH_TLB_FUNC: u8 = 1;

/// `nmi_uaccess_okay()`: may an NMI on this CPU touch current's user memory?
pub fn nmi_uaccess_okay<S: Scheme>(cpu: &Cpu<S, X86>) -> bool {
    match cpu.arch.loaded_mm {
        LoadedMm::Switching => false,
        LoadedMm::Mm(mm) => cpu.current_mm() == Some(mm),
    }
}

impl X86 {
    /// `mm_global_asid(mm) != 0`: with INVLPGB every user mm has one (see the module
    /// doc's simplification); `init_mm` never does.
    fn has_global_asid(&self, mm: MmId) -> bool {
        self.invlpgb && !mm.is_init()
    }

    /// `mm->context` of `mm`.
    fn ctx(&self, mm: MmId) -> &MmContext {
        &self.ctx[mm.slot() as usize]
    }

    /// `this_cpu_write(cpu_tlbstate.loaded_mm, v)`.
    fn set_loaded_mm<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, v: LoadedMm) {
        cpu.arch.loaded_mm = v;
        // ORDERING: Release, as smp_store_release(&this_tlbstate->loaded_mm, ..): pairs
        // with the Acquire load in `should_flush_tlb`, so a flusher that sees this value
        // also sees the `is_lazy` store made before it.
        k.cpus[cpu.id]
            .arch
            .loaded_mm
            .store(&mut cpu.acct, v.word(), Ordering::Release);
    }

    /// `this_cpu_write(cpu_tlbstate_shared.is_lazy, lazy)`.
    fn set_is_lazy<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, lazy: bool) {
        cpu.arch.is_lazy = lazy;
        // ORDERING: Relaxed, as this_cpu_write(): leaving lazy mode, the smp_mb() (or
        // the locked bit set) before the `tlb_gen` read orders it against the flusher's
        // fully ordered `tlb_gen` increment and its read of `is_lazy`; entering, a
        // flusher that misses it sends one IPI too many.
        k.cpus[cpu.id]
            .arch
            .is_lazy
            .store(&mut cpu.acct, u64::from(lazy), Ordering::Relaxed);
    }

    /// `choose_new_asid(next, next_tlb_gen)`: the PCID whose entries already belong to
    /// `next` (flushed if they are behind `next_tlb_gen`), or the next one round robin.
    fn choose_new_asid<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        next: MmId,
        next_tlb_gen: u64,
    ) -> NewAsid {
        // TLB consistency for global ASIDs is maintained with hardware assisted remote
        // TLB flushing: they are always up to date.
        if k.arch.has_global_asid(next) {
            return NewAsid {
                asid: GLOBAL_ASID,
                need_flush: false,
            };
        }
        let tlb = &mut cpu.arch;
        if let Some(asid) = tlb.ctxs.iter().position(|c| c.ctx_id == Some(next)) {
            return NewAsid {
                asid,
                need_flush: tlb.ctxs[asid].tlb_gen < next_tlb_gen,
            };
        }
        let asid = tlb.next_asid;
        tlb.next_asid = (asid + 1) % TLB_NR_DYN_ASIDS;
        NewAsid {
            asid,
            need_flush: true,
        }
    }

    /// `should_flush_tlb(cpu, info)`: does a flush of `mm` (that frees no page tables)
    /// need to reach CPU `target`?
    fn should_flush_tlb<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        target: usize,
        mm: MmId,
        trim_cpumask: bool,
    ) -> bool {
        let t = &k.cpus[target].arch;
        // ORDERING: Acquire, as the load followed by smp_rmb(): pairs with the Release
        // stores of `loaded_mm`, so `is_lazy` is read at least as new as `loaded_mm`.
        let loaded = t.loaded_mm.load(&mut cpu.acct, Ordering::Acquire);
        // Lazy TLB will get flushed at the next context switch.
        // ORDERING: Relaxed, ordered after the load above by its Acquire.
        if t.is_lazy.load(&mut cpu.acct, Ordering::Relaxed) != 0 {
            return false;
        }
        // While switching, the CPU may have state of either mm: flush (fea4e317f9e7).
        if loaded == SWITCHING_WORD {
            return true;
        }
        // The target mm is loaded, and the CPU is not lazy.
        if loaded == mm.encode() {
            return true;
        }
        // In the mask but not the loaded mm: now and then, flush it to trim it.
        trim_cpumask
    }

    /// `flush_tlb_func(info)` on this CPU, interrupts off: leave a lazily used mm, or
    /// bring the PCID up to the mm's `tlb_gen`.
    fn flush_tlb_func<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        mm: MmId,
        freed_tables: bool,
    ) {
        let LoadedMm::Mm(loaded) = cpu.arch.loaded_mm else {
            unreachable!("cpu {}: flush IPI inside switch_mm", cpu.id);
        };
        if loaded != mm {
            // Can only happen on remote CPUs: the CPU was left in the mm_cpumask of the
            // target mm. Clear it.
            cpumask_clear_cpu(k, cpu, mm);
            return;
        }
        if loaded.is_init() {
            return;
        }
        // Broadcast ASIDs are always kept up to date with INVLPGB (the transition
        // into a global ASID, which reloads it here, is not modelled).
        if is_global_asid(cpu.arch.loaded_mm_asid) {
            return;
        }
        if cpu.arch.is_lazy {
            // Lazy mode: switching to init_mm is barely slower than a minimal flush and
            // keeps speculation away from freed tables.
            k.switch_to_init_mm_in_irq(cpu, mm);
            if S::UNLAZY_MM_IN_FLUSH {
                // unlazy_mm_irqs_off(): the scheduler is told, and the CPU's lazy
                // reference goes (the scheme's end of a switch retires it).
                S::finish_switch(k, cpu);
            }
            return;
        }
        let asid = cpu.arch.loaded_mm_asid;
        let local_tlb_gen = cpu.arch.ctxs[asid].tlb_gen;
        // ORDERING: Relaxed, as atomic64_read(&loaded_mm->context.tlb_gen): the IPI's
        // Release/Acquire hand-off orders it after the flusher's increment.
        let mm_tlb_gen = k
            .arch
            .ctx(mm)
            .tlb_gen
            .load(&mut cpu.acct, Ordering::Relaxed);
        if local_tlb_gen < mm_tlb_gen || freed_tables {
            // A full flush: the TLB and paging-structure caches of this PCID.
            cpu.arch.ctxs[asid].tlb_gen = cpu.arch.ctxs[asid].tlb_gen.max(mm_tlb_gen);
            k.cpus[cpu.id].flush_walk_cache(mm);
        }
    }

    /// `kvm_flush_tlb_multi`'s filter, before `native_flush_tlb_multi`: every other
    /// vCPU of `mask` that the host has preempted (a seeded choice, one in two: see the
    /// module doc) gets `KVM_VCPU_FLUSH_TLB` and leaves the mask. The host's flush at its
    /// next entry empties its paging-structure caches of `mm` (done here: the vCPU runs
    /// nothing before it) and its TLB (before its next user access).
    fn kvm_skip_preempted<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        mask: &mut CpuMask,
        mm: MmId,
    ) {
        let others: Vec<usize> = mask.iter().filter(|&i| i != cpu.id).collect();
        for i in others {
            if cpu.rand() % 2 != 0 {
                continue;
            }
            // ORDERING: SeqCst, the oracle's: set before this flush's `flushed_gen` is
            // recorded, so the vCPU's next user access sees it whenever it sees the
            // flush as done.
            k.cpus[i]
                .arch
                .kvm_flush_on_enter
                .store(true, Ordering::SeqCst);
            k.cpus[i].flush_walk_cache(mm);
            mask.clear(i);
        }
    }

    /// The host's TLB flush at a vCPU's entry, if a flusher left one pending
    /// (`KVM_VCPU_FLUSH_TLB`): every PCID's entries are gone, recorded as each context
    /// being current with its mm's `tlb_gen` (see the module doc).
    fn kvm_flush_on_enter<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        // ORDERING: SeqCst, the oracle's: pairs with the store in `kvm_skip_preempted`.
        if !k.cpus[cpu.id]
            .arch
            .kvm_flush_on_enter
            .swap(false, Ordering::SeqCst)
        {
            return;
        }
        for c in cpu.arch.ctxs.iter_mut() {
            if let Some(m) = c.ctx_id.filter(|m| !m.is_init()) {
                // ORDERING: Acquire, the oracle's: page-table changes come before the
                // increment, so an emptied TLB refills with entries at least this new.
                let now = k.arch.ctx(m).tlb_gen.oracle_load(Ordering::Acquire);
                c.tlb_gen = c.tlb_gen.max(now);
            }
        }
    }

    /// `flush_tlb_mm_range(mm, ..., freed_tables)`: bump `tlb_gen`, flush the CPUs that
    /// need it, wait for them. Interrupts are enabled.
    fn flush_tlb_mm_range<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        mm: MmId,
        freed_tables: bool,
    ) {
        let Some(m) = k.mm(cpu, mm, "flush_tlb_mm_range") else {
            return;
        };
        let ctx = k.arch.ctx(mm);
        // inc_mm_tlb_gen(): atomic64_inc_return, fully ordered.
        // ORDERING: AcqRel inside a full barrier on each side: the page-table changes
        // before it are visible to a CPU that reads the new value, and its read of
        // `loaded_mm`/`is_lazy` below cannot pass it (the store-buffering pair of the
        // switching CPU's bit set or smp_mb() and `tlb_gen` read).
        let new_tlb_gen = crate::sync::fully_ordered(&mut cpu.acct, |a| {
            ctx.tlb_gen.fetch_add(a, 1, Ordering::AcqRel)
        }) + 1;
        k.preempt_point();
        if k.arch.has_global_asid(mm) {
            // broadcast_tlb_flush(): INVLPGB of the mm's global ASID on every CPU, then
            // TLBSYNC. No IPI: no CPU runs flush_tlb_func, a lazy one stays on the mm,
            // and nothing trims mm_cpumask. The broadcast empties every CPU's
            // paging-structure caches of the mm.
            k.broadcast_flush(mm);
            ctx.flushed_gen.fetch_max(new_tlb_gen, Ordering::Relaxed);
            return;
        }
        // ORDERING: Relaxed, as the kernel's read of mm_cpumask: the fully ordered
        // increment above orders it after every bit a switching CPU set before its own
        // barrier and `tlb_gen` read.
        let mut mask = m.cpumask.read(&mut cpu.acct, Ordering::Relaxed);
        if k.arch.kvm_pv {
            Self::kvm_skip_preempted(k, cpu, &mut mask, mm);
        }
        let targets = if freed_tables {
            if k.arch.no_freed_tables_flush {
                // MUTANT x86-no-freed-tables-flush: the flush is not marked as freeing
                // page tables, so it skips lazy CPUs (should_flush_tlb); at exit_mmap
                // every other CPU that has the mm loaded is lazy, so only this one is
                // flushed.
                CpuMask::of(k.nr_cpus(), cpu.id)
            } else {
                // Freed tables: every CPU in mm_cpumask, lazy ones too.
                mask
            }
        } else {
            // on_each_cpu_cond_mask(should_flush_tlb, ...), this CPU included.
            let trim = new_tlb_gen % TRIM_PERIOD == 0;
            let mut t = CpuMask::new(k.nr_cpus());
            for i in mask.iter() {
                if Self::should_flush_tlb(k, cpu, i, mm, trim) {
                    t.set(i);
                }
            }
            t
        };
        let op = if freed_tables {
            IPI_FLUSH_FREED_TABLES
        } else {
            IPI_FLUSH_TLB_FUNC
        };
        k.on_each_cpu_mask(cpu, &targets, Ipi::Arch(op), mm);
        // The flush is done: what it unmapped may be freed now (the oracle's record).
        ctx.flushed_gen.fetch_max(new_tlb_gen, Ordering::Relaxed);
    }
}

impl Arch for X86 {
    const NAME: &'static str = "x86";
    // raw_spin_lock is a LOCK-prefixed cmpxchg: smp_mb__after_spinlock() is empty.
    const SPIN_LOCK_IS_FULL_BARRIER: bool = true;
    const MUTANTS: &'static [Mutant] = &[
        NO_SWITCHING_SENTINEL,
        NO_FREED_TABLES_FLUSH,
        CPUMASK_BEFORE_SENTINEL,
    ];
    const FINDINGS: &'static [Mutant] = &[
        SHOOTDOWN_LAZY_TRIM,
        LAZY_PERCPU_INVLPGB,
        LAZY_PERCPU_INVLPGB_FIXED,
        LAZY_PERCPU_KVM_PV,
        LAZY_PERCPU_KVM_PV_FIXED,
    ];
    const CONFIGS: &'static [Mutant] = &[
        REFCOUNT_INVLPGB,
        SHOOTDOWN_INVLPGB,
        REFCOUNT_KVM_PV,
        SHOOTDOWN_KVM_PV,
    ];
    // arch/x86/Kconfig: select ARCH_WANT_IRQS_OFF_ACTIVATE_MM.
    const IRQS_OFF_ACTIVATE_MM: bool = true;
    // The freed-tables flush below IPIs every CPU of mm_cpumask and un-lazies them (in
    // the default configuration: with INVLPGB or a KVM guest's paravirt flush some lazy
    // CPUs get no IPI; see the module doc and the findings above).
    const FREEING_FLUSH_UNLAZIES: bool = true;
    type CpuLocal = TlbState;

    fn freeing_flush_unlazies(&self) -> bool {
        // INVLPGB: a global-ASID mm's flush is a broadcast with no IPI. KVM's PV flush:
        // a preempted vCPU gets none.
        !self.invlpgb && !self.kvm_pv
    }
    type CpuShared = CachePadded<TlbShared>;

    fn new(cfg: &Config) -> Self {
        let slots = cfg.arena_capacity.min(u32::MAX as usize - 2) + 1;
        X86 {
            no_sentinel: cfg.is(NO_SWITCHING_SENTINEL),
            no_freed_tables_flush: cfg.is(NO_FREED_TABLES_FLUSH),
            cpumask_before_sentinel: cfg.is(CPUMASK_BEFORE_SENTINEL),
            no_mb_cpumask_set: cfg.is(NO_MB_CPUMASK_SET),
            invlpgb: cfg.x86_invlpgb,
            kvm_pv: cfg.kvm_pv_tlb_flush,
            ctx: (0..slots)
                .map(|slot| {
                    CachePadded(MmContext {
                        tlb_gen: SharedU64::new(0, Tag::new(Field::TlbGen, slot as u32)),
                        flushed_gen: raw::AtomicU64::new(0),
                    })
                })
                .collect(),
        }
    }

    fn new_cpu_shared(cpu: usize) -> CachePadded<TlbShared> {
        let obj = cpu as u32;
        CachePadded(TlbShared {
            loaded_mm: SharedU64::new(MmId::INIT.encode(), Tag::new(Field::LoadedMm, obj)),
            is_lazy: SharedU64::new(0, Tag::new(Field::IsLazy, obj)),
            kvm_flush_on_enter: raw::AtomicBool::new(false),
        })
    }

    #[inline]
    fn enter_lazy_tlb<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, _mm: &LazyMm<'_>) {
        if cpu.arch.loaded_mm == LoadedMm::Mm(MmId::INIT) {
            return;
        }
        Self::set_is_lazy(k, cpu, true);
    }

    #[inline]
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        _prev: LazyMm<'_>,
        next: MmId,
        _irq: &IrqGuard,
    ) {
        // The argument prev is ignored: what is loaded is what cpu_tlbstate says.
        let LoadedMm::Mm(real_prev) = cpu.arch.loaded_mm else {
            unreachable!("cpu {}: switch_mm inside switch_mm", cpu.id);
        };
        let prev_asid = cpu.arch.loaded_mm_asid;
        let was_lazy = cpu.arch.is_lazy;
        if was_lazy {
            Self::set_is_lazy(k, cpu, false);
        }
        let ns = if real_prev == next {
            // Not actually switching. Even in lazy mode the CPU stayed in mm_cpumask (a
            // flush trims only CPUs that left the mm), so this finds the bit set and
            // writes nothing; Linux's check sets it if not. Since 7e33001b8b (v6.14)
            // the check runs only under CONFIG_DEBUG_VM (the profile's item).
            if k.cfg.debug_vm || k.cfg.profile.has(crate::profile::Item::SwitchMmCpumaskTest) {
                cpumask_set_cpu(k, cpu, next);
            }
            // Broadcast TLB invalidation keeps this ASID up to date all the time (v6.15
            // order: before the lazy test).
            if is_global_asid(prev_asid) {
                return;
            }
            if !was_lazy {
                // Another thread of the same process: no TLB flush required.
                return;
            }
            k.preempt_point();
            // Read tlb_gen: did a flush skip this CPU while it was lazy?
            // ORDERING: pairs with the full barrier of the flusher's tlb_gen increment,
            // which comes before its read of is_lazy: either it saw is_lazy clear and
            // flushes this CPU, or this read sees its tlb_gen.
            cpu.smp_mb();
            // ORDERING: Relaxed, as atomic64_read(): ordered by the smp_mb() above.
            let next_tlb_gen = k
                .arch
                .ctx(next)
                .tlb_gen
                .load(&mut cpu.acct, Ordering::Relaxed);
            if cpu.arch.ctxs[prev_asid].tlb_gen == next_tlb_gen {
                return;
            }
            // TLB contents went out of date while this CPU was lazy: flush and reload.
            cpu.arch.ctxs[prev_asid].tlb_gen = next_tlb_gen;
            NewAsid {
                asid: prev_asid,
                need_flush: true,
            }
        } else {
            if k.arch.no_sentinel || k.arch.cpumask_before_sentinel {
                // MUTANT x86-no-switching-sentinel: loaded_mm keeps naming prev during
                // the CR3 write. MUTANT x86-cpumask-before-sentinel: not yet; below.
            } else {
                // Indicate that CR3 is about to change: nmi_uaccess_okay() and
                // should_flush_tlb() watch this window.
                // INVARIANT: loaded_mm is the sentinel for the whole CR3 write.
                Self::set_loaded_mm(k, cpu, LoadedMm::Switching);
            }
            k.preempt_point();
            // Start receiving IPIs, then read tlb_gen: a locked bit set is a full
            // barrier; when the bit is already set, an explicit one (83b0177a6c48).
            let me = cpu.id;
            let m = if next.is_init() {
                None
            } else {
                k.mm(cpu, next, "mm_cpumask")
            };
            if let Some(m) = m {
                if m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed) {
                    if !k.arch.no_mb_cpumask_set {
                        // ORDERING: between the sentinel store and the tlb_gen read, as
                        // the flusher's fully ordered increment is between its tlb_gen
                        // write and its loaded_mm read: one of the two sees the other.
                        cpu.smp_mb();
                    }
                    // MUTANT x86-no-mb-cpumask-set: no barrier (before 83b0177a6c48).
                } else {
                    // ORDERING: AcqRel inside a full barrier on each side, as the locked
                    // `bts` of cpumask_set_cpu(): see the smp_mb() above.
                    crate::sync::fully_ordered(&mut cpu.acct, |a| {
                        m.cpumask.set(a, me, Ordering::AcqRel)
                    });
                }
            } else {
                cpu.smp_mb();
            }
            // ORDERING: Relaxed, as atomic64_read(): ordered by the barrier above.
            let next_tlb_gen = k
                .arch
                .ctx(next)
                .tlb_gen
                .load(&mut cpu.acct, Ordering::Relaxed);
            k.preempt_point();
            let ns = Self::choose_new_asid(k, cpu, next, next_tlb_gen);
            if ns.need_flush {
                cpu.arch.ctxs[ns.asid] = TlbContext {
                    ctx_id: Some(next),
                    tlb_gen: next_tlb_gen,
                };
            }
            k.preempt_point();
            if k.arch.cpumask_before_sentinel {
                // MUTANT x86-cpumask-before-sentinel: the sentinel only now, after the
                // bit and the tlb_gen read (the stable trees' order until October 2025).
                Self::set_loaded_mm(k, cpu, LoadedMm::Switching);
            }
            ns
        };
        k.nmi_point(cpu);
        // load_new_mm_cr3(): a PCID flushed or reused as it is (the model's CR3 write
        // empties the paging-structure caches either way).
        debug_assert!(
            ns.need_flush || is_global_asid(ns.asid) || cpu.arch.ctxs[ns.asid].ctx_id == Some(next)
        );
        k.load_cr3(cpu, next);
        k.nmi_point(cpu);
        // Make sure CR3 is written before loaded_mm.
        // INVARIANT: loaded_mm names the mm whose CR3 is now loaded.
        Self::set_loaded_mm(k, cpu, LoadedMm::Mm(next));
        cpu.arch.loaded_mm_asid = ns.asid;
        cpu.set_loaded_mm(next);
    }

    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        // flush_tlb_mm_range() with freed_tables: every CPU in mm_cpumask, lazy ones too.
        Self::flush_tlb_mm_range(k, cpu, mm, true);
    }

    fn flush_tlb_mm<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        Self::flush_tlb_mm_range(k, cpu, mm, false);
    }

    fn ipi_name(op: u8) -> &'static str {
        match op {
            IPI_FLUSH_FREED_TABLES => "flush_tlb_func (freed tables)",
            _ => "flush_tlb_func",
        }
    }

    fn handle_ipi<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, op: u8, mm: MmId) {
        match op {
            IPI_FLUSH_FREED_TABLES => Self::flush_tlb_func(k, cpu, mm, true),
            IPI_FLUSH_TLB_FUNC => Self::flush_tlb_func(k, cpu, mm, false),
            _ => {}
        }
    }

    fn user_access<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        if k.arch.kvm_pv {
            Self::kvm_flush_on_enter(k, cpu);
        }
        // Property h: the translations this CPU uses are as new as every flush of the
        // mm that has returned (its caller may have freed what it unmapped).
        if cpu.arch.loaded_mm != LoadedMm::Mm(mm) {
            return;
        }
        if is_global_asid(cpu.arch.loaded_mm_asid) {
            // Kept current by every flush's INVLPGB broadcast.
            return;
        }
        let have = cpu.arch.ctxs[cpu.arch.loaded_mm_asid].tlb_gen;
        let flushed = k.arch.ctx(mm).flushed_gen.load(Ordering::Relaxed);
        if have < flushed {
            k.report(
                cpu,
                mm,
                ViolationKind::StaleTlb {
                    tlb_gen: have,
                    flushed,
                },
            );
        }
    }

    fn nmi<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        // perf's user stack walk: copy_from_user_nmi().
        if !nmi_uaccess_okay(cpu) {
            return;
        }
        let cr3 = cpu.cr3();
        match cpu.current_mm() {
            Some(mm) if mm == cr3 => {
                let _ = k.mm(cpu, mm, "NMI user access");
            }
            Some(mm) => k.report(cpu, mm, ViolationKind::NmiWrongMm { loaded: cr3 }),
            None => {}
        }
    }
}
