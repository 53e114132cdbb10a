//! `shootdown-all`: a scheme written outside lazymm, registered by this file alone, and run by
//! the ordinary `lazymm` command line (the walk-through is `docs/new-scheme.md`):
//!
//! ```text
//! cargo run -p lazymm-cli --example shootdown_all -- check --scheme shootdown-all
//! cargo run -p lazymm-cli --example shootdown_all -- check --mutant shootdown-all-self-only
//! cargo run -p lazymm-cli --example shootdown_all -- bench --quick --schemes shootdown-all,none
//! cargo run -p lazymm-cli --example shootdown_all -- predict --quick --schemes shootdown-all
//! ```
//!
//! # The protocol
//! A simplified `CONFIG_MMU_LAZY_TLB_SHOOTDOWN`: lazy users are not counted at all (a lazy
//! round trip costs one full barrier, for membarrier), and `__mmdrop` keeps the mm alive
//! until no CPU uses it lazily by interrupting *every online CPU*, not just those in
//! `mm_cpumask(mm)`. A CPU that still has the mm loaded leaves it for `init_mm` in the
//! handler (as `do_shoot_lazy_tlb` does). Trusting no cpumask makes it correct on an arch
//! that trims the mask or keeps none, at the price of an IPI to every CPU per freed mm.
//! It leaves `LAZY_TLB_SHOOTDOWN` false, so that no arch carries the shootdown on a flush
//! of its own (powerpc's final `exit_mmap` flush stays a broadcast).
//!
//! Why it is enough: `cleanup_lazy_tlbs` runs from `__mmdrop`, once `mm_count` is zero,
//! so no task has the mm as its `mm` any more and no CPU can start using it lazily (a CPU
//! becomes a lazy user only by switching away from a user task of the mm). Every CPU that
//! still has it loaded is therefore a lazy user that this broadcast reaches, and
//! `on_each_cpu_mask` waits for each handler before the mm is freed. A CPU going offline
//! left its lazy mm in `sched_force_init_mm` before it left `cpu_online_mask`.
//!
//! # Its broken twin
//! `shootdown-all-self-only` interrupts only the CPU that frees the mm, as if the last
//! `mmdrop` always came from the last CPU to use it: another lazy CPU keeps the freed
//! page tables loaded (property b), which `lazymm check --mutant shootdown-all-self-only`
//! must catch.

use lazymm::cpu::{Cpu, IrqGuard, LazyMm};
use lazymm::{Arch, Config, CpuMask, Exercise, Ipi, Kernel, Kind, MmId, Mutant, MutantInfo};
use lazymm::{Property, Scheme};
use std::process::ExitCode;

/// `shootdown-all-self-only`: the shootdown interrupts only the CPU that frees the mm.
const SELF_ONLY: Mutant = Mutant::declare(&MutantInfo {
    name: "shootdown-all-self-only",
    kind: Kind::Broken,
    scheme: "shootdown-all",
    arch: None,
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description:
        "the shootdown interrupts only the freeing CPU: others keep the freed tables loaded (b)",
    configure: &[],
});

/// The `shootdown-all` scheme: whether its mutant is on (read once, at boot).
struct ShootdownAll {
    self_only: bool,
}

/// A task's state: nothing (there is no `active_mm`; a CPU's loaded mm is the truth).
#[derive(Debug, Default)]
struct NoActiveMm;

/// A lazy use: a token that costs nothing; the shootdown at teardown protects it.
#[derive(Debug)]
struct Uncounted;

/// The one IPI this scheme sends: `do_shoot_lazy_tlb`.
const IPI_SHOOT: u8 = 0;

impl Scheme for ShootdownAll {
    const NAME: &'static str = "shootdown-all";
    const MUTANTS: &'static [Mutant] = &[SELF_ONLY];
    type TaskState = NoActiveMm;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = Uncounted;

    fn new(cfg: &Config) -> Self {
        ShootdownAll {
            self_only: cfg.is(SELF_ONLY),
        }
    }

    fn new_cpu_shared(_cpu: usize) {}

    fn set_user_active_mm(_: &mut NoActiveMm, _: MmId) {}

    fn active_mm<'g, A: Arch>(cpu: &Cpu<Self, A>, _: &NoActiveMm, irq: &'g IrqGuard) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    fn mmgrab_lazy_tlb<A: Arch>(
        _: &Kernel<Self, A>,
        _: &mut Cpu<Self, A>,
        _: &LazyMm<'_>,
    ) -> Uncounted {
        Uncounted
    }

    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: Uncounted) {
        // ORDERING: the full barrier membarrier relies on after the rq->curr store
        // (finish_task_switch); pairs with membarrier()'s fence before it reads rq->curr.
        cpu.smp_mb();
    }

    fn lazy_install(_: &mut (), _: &mut NoActiveMm, _: Uncounted) {}

    fn lazy_take(_: &mut (), _: &mut NoActiveMm) -> Option<Uncounted> {
        Some(Uncounted)
    }

    fn lazy_hand_over(_: &mut (), _: &mut NoActiveMm, _: &mut NoActiveMm) {}

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        if k.mm(cpu, mm, "cleanup_lazy_tlbs").is_none() {
            return;
        }
        let targets = if k.scheme.self_only {
            // MUTANT shootdown-all-self-only: only this CPU is interrupted.
            let mut me = CpuMask::new(k.cpus.len());
            me.set(cpu.id);
            me
        } else {
            k.cpu_online_mask(cpu)
        };
        k.on_each_cpu_mask(cpu, &targets, Ipi::Scheme(IPI_SHOOT), mm);
    }

    fn ipi_name(_: u8) -> &'static str {
        "do_shoot_lazy_tlb"
    }

    fn handle_ipi<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, op: u8, mm: MmId) {
        // do_shoot_lazy_tlb(): a CPU still on the dying mm leaves it for init_mm.
        if op == IPI_SHOOT && cpu.loaded_mm() == mm {
            k.switch_to_init_mm_in_irq(cpu, mm);
        }
    }
}

fn main() -> ExitCode {
    let registry = lazymm_cli::Registry::builtin().with_scheme::<ShootdownAll>(
        "example (crates/lazymm-cli/examples/shootdown_all.rs): shootdown that IPIs every online CPU",
    );
    lazymm_cli::main_with(registry)
}
