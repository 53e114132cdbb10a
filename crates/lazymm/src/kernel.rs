//! The machine-wide state: the mm arena, every CPU's shared per-CPU state, the chosen
//! scheme and arch, and the configuration (including which mutant, if any, is active).
//!
//! Reading order for the model: [`crate::mm`] (the arena and the reference kinds), then
//! [`crate::cpu`] and this file (the machine), then the two traits
//! ([`crate::scheme::Scheme`], [`crate::arch::Arch`]), then [`crate::sched`] and
//! [`crate::lifecycle`] (the kernel paths, in the kernel's order), then the schemes and
//! archs themselves, each telling its protocol in its module doc.

use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, CpuShared};
use crate::cpumask::SharedCpuMask;
use crate::mm::{Arena, MmId};
use crate::mutant::FaultPoint;
use crate::oracle::{Violation, ViolationKind};
use crate::scheme::Scheme;
use crate::smp::IpiHost;
use crate::sync::{raw::AtomicUsize, CachePadded, Field, Ordering, SharedU64, Tag};
use std::sync::Arc;

/// The most simulated CPUs a machine may have (`CONFIG_NR_CPUS` of the largest
/// distribution kernels). Masks and mailboxes are sized at boot for the CPUs a machine
/// really has.
pub const MAX_CPUS: usize = 4096;

/// `static struct nohz` of `kernel/sched/fair.c`, as far as idle entry and exit touch it.
pub(crate) struct Nohz {
    /// `nohz.idle_cpus_mask`.
    pub(crate) idle_cpus_mask: SharedCpuMask,
    /// `nohz.nr_cpus`.
    pub(crate) nr_cpus: CachePadded<SharedU64>,
}

/// One simulated machine running scheme `S` on arch `A`.
pub struct Kernel<S: Scheme, A: Arch> {
    /// Every mm, behind generation-checked handles.
    pub arena: Arena,
    /// Each CPU's state that other CPUs may touch.
    pub cpus: Box<[CpuShared<S, A>]>,
    /// `cpu_online_mask`.
    pub(crate) online: SharedCpuMask,
    /// The nohz idle balancer's machine-wide state (touched only under a profile with
    /// [`crate::profile::Item::NohzIdle`]).
    pub(crate) nohz: Nohz,
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
    pub fn boot(mut cfg: Config) -> (Kernel<S, A>, Vec<Cpu<S, A>>) {
        if let Some(m) = cfg.mutant {
            // MUTANT: the fixes the active mutant turns off (or a finding's configuration).
            for &setting in m.info().configure {
                cfg.apply(setting);
            }
        }
        let n = cfg.nr_cpus.clamp(1, MAX_CPUS);
        let k = Kernel {
            arena: Arena::new(cfg.arena_capacity, n),
            cpus: (0..n).map(|i| CpuShared::new(i, n)).collect(),
            online: crate::smp::boot_online_mask(n),
            nohz: Nohz {
                idle_cpus_mask: SharedCpuMask::new(n, Field::NohzIdleCpusMask, 0),
                nr_cpus: CachePadded(SharedU64::new(0, Tag::new(Field::NohzNrCpus, 0))),
            },
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

    /// A point where an active mutant may act (see [`crate::mutant`]); nothing happens
    /// unless one is on.
    #[inline]
    pub(crate) fn fault_point(&self, cpu: &mut Cpu<S, A>, at: FaultPoint) {
        if self.cfg.mutant.is_some() {
            S::fault_point(self, cpu, at);
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
