//! The machine-wide state: the mm arena, every CPU's shared per-CPU state, the chosen
//! scheme and arch, and the configuration (including which mutant, if any, is active).

use crate::arch::Arch;
use crate::cpu::{Cpu, CpuShared};
use crate::cpumask::SharedCpuMask;
use crate::mm::{Arena, MmId};
use crate::oracle::{Violation, ViolationKind};
use crate::scheme::Scheme;
use crate::smp::IpiHost;
use crate::sync::{raw::AtomicUsize, Ordering};
use std::sync::Arc;

/// The most simulated CPUs a machine may have (`CONFIG_NR_CPUS` of the largest
/// distribution kernels). Masks and mailboxes are sized at boot for the CPUs a machine
/// really has.
pub const MAX_CPUS: usize = 4096;

/// A deliberately broken variant of one scheme or arch, so that a green checker run
/// means something (rcutorture's `lock_busted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// `refcount` without `mmgrab_lazy_tlb`: the lazy CPU holds no reference, so the mm
    /// can be freed while it is still loaded there (breaks a and b).
    RefcountNoGrab,
    /// `refcount` whose lazy drop in `finish_task_switch` is an acquire-release
    /// decrement instead of a fully ordered `atomic_dec_and_test`: lifetimes stay safe,
    /// but nothing orders the `rq->curr` store before the return to user space, so
    /// `membarrier()` can miss this CPU (breaks f only).
    RefcountRelaxedDrop,
    /// `shootdown` with the pre-fix CPU-offline order: the outgoing CPU leaves every
    /// `mm_cpumask` (powerpc's `__cpu_disable`) while still lazily on an mm, and switches
    /// to `init_mm` only as it dies, so an mm torn down in between escapes the
    /// shootdown (breaks b and c).
    ShootdownHotplugRace,
    /// `x86` without `LOADED_MM_SWITCHING`: between the CR3 write and the `loaded_mm`
    /// store, an NMI sees `loaded_mm == current->mm` and touches user memory through the
    /// wrong page tables (breaks g).
    X86NoSwitchingSentinel,
    /// `hazptr-luto` scanning `rq.lazy_mm` at the first `mmput` of an mm instead of at
    /// `mm_users == 0`: a thread still holding the mm that goes lazy after the scan (its
    /// own `exit_mm`) is missed, and the mm is freed under it (breaks a and b).
    HazptrLutoEarlyScan,
    /// `hazptr-mathieu` without the full fences around the slot store and clear (the
    /// clear stays a release): the lifetime stays safe by causality, but a kernel→user
    /// switch passes no full barrier after the `rq->curr` store (breaks f).
    HazptrMathieuNoFence,
    /// `hazptr-mathieu` whose `mmdrop_lazy_tlb` leaves the hazard slot set: the next
    /// publish on that CPU finds it occupied (breaks d).
    HazptrMathieuNoClear,
    /// `hazptr-luto` whose `finish_task_switch` never drops a reference handed over in
    /// `rq.drop_mm`: deferred references linger past the next switch and the mm is never
    /// freed (breaks e).
    HazptrLutoNoDeferredDrop,
}

impl Mutant {
    /// Every mutant, in the order `lazymm schemes` lists them.
    pub const ALL: &'static [Mutant] = &[
        Mutant::RefcountNoGrab,
        Mutant::RefcountRelaxedDrop,
        Mutant::ShootdownHotplugRace,
        Mutant::X86NoSwitchingSentinel,
        Mutant::HazptrLutoEarlyScan,
        Mutant::HazptrMathieuNoFence,
        Mutant::HazptrMathieuNoClear,
        Mutant::HazptrLutoNoDeferredDrop,
    ];

    /// The name accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::RefcountNoGrab => "refcount-no-grab",
            Mutant::RefcountRelaxedDrop => "refcount-relaxed-drop",
            Mutant::ShootdownHotplugRace => "shootdown-hotplug-race",
            Mutant::X86NoSwitchingSentinel => "x86-no-switching-sentinel",
            Mutant::HazptrLutoEarlyScan => "hazptr-luto-early-scan",
            Mutant::HazptrMathieuNoFence => "hazptr-mathieu-no-fence",
            Mutant::HazptrMathieuNoClear => "hazptr-mathieu-no-clear",
            Mutant::HazptrLutoNoDeferredDrop => "hazptr-luto-no-deferred-drop",
        }
    }

    /// The scheme it breaks (implied wherever the mutant is given). An arch mutant
    /// runs on `refcount`, the kernel's default.
    pub fn scheme(self) -> &'static str {
        match self {
            Mutant::RefcountNoGrab
            | Mutant::RefcountRelaxedDrop
            | Mutant::X86NoSwitchingSentinel => "refcount",
            Mutant::ShootdownHotplugRace => "shootdown",
            Mutant::HazptrLutoEarlyScan | Mutant::HazptrLutoNoDeferredDrop => "hazptr-luto",
            Mutant::HazptrMathieuNoFence | Mutant::HazptrMathieuNoClear => "hazptr-mathieu",
        }
    }

    /// The arch it needs, if it breaks an arch layer.
    pub fn arch(self) -> Option<&'static str> {
        match self {
            Mutant::RefcountNoGrab
            | Mutant::RefcountRelaxedDrop
            | Mutant::HazptrLutoEarlyScan
            | Mutant::HazptrLutoNoDeferredDrop
            | Mutant::HazptrMathieuNoFence
            | Mutant::HazptrMathieuNoClear => None,
            // The arch whose __cpu_disable cleared mm_cpumask bits.
            Mutant::ShootdownHotplugRace => Some("powerpc"),
            Mutant::X86NoSwitchingSentinel => Some("x86"),
        }
    }

    /// A workload on which the engine reaches the race this mutant opens.
    pub fn workload(self) -> &'static str {
        match self {
            Mutant::RefcountNoGrab
            | Mutant::RefcountRelaxedDrop
            | Mutant::X86NoSwitchingSentinel
            | Mutant::HazptrLutoEarlyScan
            | Mutant::HazptrLutoNoDeferredDrop
            | Mutant::HazptrMathieuNoFence
            | Mutant::HazptrMathieuNoClear => "exit-storm",
            Mutant::ShootdownHotplugRace => "hotplug",
        }
    }

    /// What it breaks, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::RefcountNoGrab => {
                "skips mmgrab_lazy_tlb: a lazy CPU holds no mm_count, so the mm is freed under it (a, b)"
            }
            Mutant::RefcountRelaxedDrop => {
                "the lazy drop in finish_task_switch is acq_rel, not fully ordered: membarrier can miss the CPU (f)"
            }
            Mutant::ShootdownHotplugRace => {
                "pre-fix offline order: the outgoing CPU leaves every mm_cpumask while still lazy (b, c)"
            }
            Mutant::X86NoSwitchingSentinel => {
                "no LOADED_MM_SWITCHING: an NMI in the CR3 switch window reads user memory of the wrong mm (g)"
            }
            Mutant::HazptrLutoEarlyScan => {
                "scans rq.lazy_mm at the first mmput, not at mm_users == 0: a CPU that goes lazy later is missed (a, b)"
            }
            Mutant::HazptrMathieuNoFence => {
                "no full fences around the hazard-slot store and clear: kernel->user passes no membarrier barrier (f)"
            }
            Mutant::HazptrMathieuNoClear => {
                "mmdrop_lazy_tlb leaves the hazard slot set: the next publish finds it occupied (d)"
            }
            Mutant::HazptrLutoNoDeferredDrop => {
                "finish_task_switch never drops the reference handed over in rq.drop_mm: it lingers and the mm leaks (e)"
            }
        }
    }

    /// Looks a mutant up by name.
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// How a machine is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPUs (1 to [`MAX_CPUS`]).
    pub nr_cpus: usize,
    /// mm slots besides `init_mm`; forks fail (and the host retries) when all are live.
    pub arena_capacity: usize,
    /// The active mutant, if any.
    pub mutant: Option<Mutant>,
    /// A lazy CPU makes a speculative page walk about once every this many interrupt
    /// points (0: never).
    pub speculative_walk_period: u32,
    /// An NMI hits a CPU about once every this many NMI points (0: never). NMI points
    /// are between the engine's steps and inside x86's CR3 switch window.
    pub nmi_period: u32,
    /// A monotonic clock in nanoseconds, for teardown timing (the model reads no clock of
    /// its own).
    pub clock: fn() -> u64,
    /// Called at every [`Kernel::preempt_point`]: a deterministic scheduler (the checker)
    /// switches to another simulated CPU there. `None` (the default) costs one
    /// well-predicted branch per point.
    pub preempt: Option<fn()>,
}

fn no_clock() -> u64 {
    0
}

impl Config {
    /// A machine of `nr_cpus` CPUs with default settings.
    pub fn new(nr_cpus: usize) -> Config {
        Config {
            nr_cpus,
            arena_capacity: 64 + 16 * nr_cpus,
            mutant: None,
            speculative_walk_period: 61,
            nmi_period: 0,
            clock: no_clock,
            preempt: None,
        }
    }

    /// Whether `m` is the active mutant.
    #[inline]
    pub fn is(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }

    /// Whether a CPU going offline leaves its lazy mm only as it dies, after
    /// `__cpu_disable()` (the order before the hotplug fix; mutant
    /// `shootdown-hotplug-race`).
    pub fn offline_pre_fix_order(&self) -> bool {
        self.is(Mutant::ShootdownHotplugRace)
    }
}

/// One simulated machine running scheme `S` on arch `A`.
pub struct Kernel<S: Scheme, A: Arch> {
    /// Every mm, behind generation-checked handles.
    pub arena: Arena,
    /// Each CPU's state that other CPUs may touch.
    pub cpus: Box<[CpuShared<S, A>]>,
    /// `cpu_online_mask`.
    pub(crate) online: SharedCpuMask,
    /// How CPUs wait for the IPIs they sent, when the host plays them all (see
    /// [`crate::smp`]); `None`: they spin.
    pub(crate) ipi_host: Option<Arc<dyn IpiHost<S, A>>>,
    /// The scheme's machine-wide state.
    pub scheme: S,
    /// The arch's machine-wide state.
    pub arch: A,
    /// The configuration.
    pub cfg: Config,
    violations: AtomicUsize,
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// Boots a machine: every CPU starts online, running its idle task on `init_mm`.
    ///
    /// Returns the shared machine and each CPU's local state (hand one to each host
    /// thread).
    pub fn boot(cfg: Config) -> (Kernel<S, A>, Vec<Cpu<S, A>>) {
        let n = cfg.nr_cpus.clamp(1, MAX_CPUS);
        let k = Kernel {
            arena: Arena::new(cfg.arena_capacity, n),
            cpus: (0..n).map(|_| CpuShared::new(n)).collect(),
            online: crate::smp::boot_online_mask(n),
            ipi_host: None,
            scheme: S::new(&cfg),
            arch: A::new(&cfg),
            cfg: Config { nr_cpus: n, ..cfg },
            violations: AtomicUsize::new(0),
        };
        let cpus = (0..n).map(|i| Cpu::new(i, &k.cfg)).collect();
        (k, cpus)
    }

    /// Makes `host` the way CPUs wait for the IPIs they sent (a host that plays every
    /// CPU on one thread needs this; see [`crate::smp`]).
    pub fn set_ipi_host(&mut self, host: Arc<dyn IpiHost<S, A>>) {
        self.ipi_host = Some(host);
    }

    /// Number of simulated CPUs.
    #[inline]
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Violations found so far, on every CPU.
    pub fn violations(&self) -> usize {
        // ORDERING: Relaxed: a poll; the host reads each CPU's list after joining it.
        self.violations.load(Ordering::Relaxed)
    }

    /// A point between two steps of a protocol where another CPU may run: a host that
    /// serialises the CPUs (the checker) switches here; natively it does nothing.
    ///
    /// Model code calls it between the steps of `context_switch`, of every lifecycle
    /// operation and of teardown, so a scheduler can interleave CPUs inside them.
    #[inline]
    pub fn preempt_point(&self) {
        if let Some(preempt) = self.cfg.preempt {
            preempt();
        }
    }

    /// Records a violation found by `cpu`.
    #[cold]
    pub fn report(&self, cpu: &mut Cpu<S, A>, mm: MmId, kind: ViolationKind) {
        // ORDERING: Relaxed: a total for hosts to poll; each CPU keeps its own list.
        self.violations.fetch_add(1, Ordering::Relaxed);
        cpu.stats.violations += 1;
        if cpu.violations.len() < 64 {
            cpu.violations.push(Violation {
                cpu: cpu.id,
                step: cpu.step,
                mm,
                kind,
            });
        }
    }

    /// Follows a handle, reporting a use-after-free (property a) if it is stale.
    #[inline]
    pub fn mm(&self, cpu: &mut Cpu<S, A>, id: MmId, via: &'static str) -> Option<&crate::mm::Mm> {
        match self.arena.get(id) {
            Ok(mm) => Some(mm),
            Err(_) => {
                self.report(cpu, id, ViolationKind::UseAfterFree { via });
                None
            }
        }
    }

    /// Property e at quiescence: every mm but `init_mm` freed (unless the scheme never
    /// frees). Call when every task has exited and every CPU has switched to `init_mm`.
    pub fn check_quiescent(&self, cpu: &mut Cpu<S, A>) {
        if !S::FREES_MMS {
            return;
        }
        for id in self.arena.live_ids() {
            let (users, count) = match self.arena.get(id) {
                Ok(mm) => (mm.users(), mm.count()),
                Err(_) => continue,
            };
            self.report(cpu, id, ViolationKind::Leak { users, count });
        }
    }
}
