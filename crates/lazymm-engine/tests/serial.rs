//! IPI waiting as a host capability: one host thread plays all 64 CPUs of a machine and
//! drives a full teardown whose IPIs must be answered by CPUs it is not running at that
//! moment. Without the [`Serial`] IPI host the waiting CPU would spin for ever.

use lazymm::arch::{Arm64, Generic, Powerpc, X86};
use lazymm::scheme::Refcount;
use lazymm::scheme::{HazptrMathieu, Shootdown, ShootdownDebug};
use lazymm::{Arch, Config, MmId, Mutant, Property, Scheme, Stats, Task, Violation, ViolationKind};
use lazymm_engine::serial::Serial;

const CPUS: usize = 64;

/// What one teardown did.
struct Outcome {
    mm: MmId,
    freed: bool,
    stats: Vec<Stats>,
    violations: Vec<Violation>,
    all_on_init_mm: bool,
}

/// A process with a thread on every CPU; every thread but CPU 0's exits, leaving its CPU
/// lazy on the mm; then CPU 0's thread exits last and tears the mm down while 63 CPUs
/// still have it loaded.
fn teardown_with_every_other_cpu_lazy<S: Scheme, A: Arch>() -> Outcome {
    teardown_on::<S, A>(None)
}

fn teardown_on<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Outcome {
    let mut cfg = Config::new(CPUS);
    cfg.speculative_walk_period = 7;
    cfg.mutant = mutant;
    let (k, serial) = Serial::<S, A>::boot(cfg);
    let mut idle: Vec<Task<S>> = (0..CPUS)
        .map(|i| k.idle_task(&mut serial.cpu(i), i as u32))
        .collect();
    let mut leader = k.fork(&mut serial.cpu(0), 100).expect("room");
    let mm = leader.mm_id().expect("a user task");
    for (i, idle) in idle.iter_mut().enumerate().skip(1) {
        let mut t = k
            .clone_thread(&mut serial.cpu(0), &leader, 100 + i as u32)
            .expect("the leader has an mm");
        let mut cpu = serial.cpu(i);
        k.context_switch(&mut cpu, idle, &mut t);
        k.exit_mm(&mut cpu, &mut t);
        k.context_switch(&mut cpu, &mut t, idle);
    }
    assert!(
        (1..CPUS).all(|i| k.oracle_cr3(i) == mm),
        "63 CPUs lazy on the mm"
    );
    {
        let mut cpu0 = serial.cpu(0);
        k.context_switch(&mut cpu0, &mut idle[0], &mut leader);
        // The last user exits: __mmput, then __mmdrop, with 63 CPUs still lazy.
        k.exit_mm(&mut cpu0, &mut leader);
        k.context_switch(&mut cpu0, &mut leader, &mut idle[0]);
    }
    let freed = !k.arena.is_live(mm);
    let all_on_init_mm = (0..CPUS).all(|i| i == 0 || k.oracle_cr3(i).is_init());
    for (i, idle) in idle.iter_mut().enumerate() {
        k.quiesce_cpu(&mut serial.cpu(i), idle);
    }
    k.check_quiescent(&mut serial.cpu(0));
    let stats = (0..CPUS).map(|i| serial.cpu(i).stats()).collect();
    let violations = (0..CPUS)
        .flat_map(|i| serial.cpu(i).violations.clone())
        .collect();
    Outcome {
        mm,
        freed,
        stats,
        violations,
        all_on_init_mm,
    }
}

fn assert_shot_down(o: &Outcome, ipis_from_cpu0: u64) {
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    assert!(o.freed, "{} was not freed", o.mm);
    assert!(o.all_on_init_mm, "every lazy CPU left the mm for init_mm");
    assert_eq!(o.stats[0].ipis_sent, ipis_from_cpu0);
    for (i, s) in o.stats.iter().enumerate().skip(1) {
        assert!(s.ipis_received >= 1, "cpu {i} ran the shootdown");
    }
}

#[test]
fn one_thread_drives_a_shootdown_of_63_lazy_cpus() {
    let o = teardown_with_every_other_cpu_lazy::<Shootdown, Generic>();
    // cleanup_lazy_tlbs: one IPI to each other CPU of mm_cpumask.
    assert_shot_down(&o, 63);
}

#[test]
fn one_thread_drives_the_debug_shootdown_and_its_check() {
    let o = teardown_with_every_other_cpu_lazy::<ShootdownDebug, Generic>();
    // The shootdown, then DEBUG_VM_SHOOT_LAZIES's check of every online CPU.
    assert_shot_down(&o, 2 * 63);
}

#[test]
fn one_thread_drives_a_hazptr_mathieu_teardown_of_63_slot_holders() {
    let o = teardown_with_every_other_cpu_lazy::<HazptrMathieu, Generic>();
    // cleanup_lazy_tlbs (hp_scan): two serial IPIs to each CPU whose hazard slot holds
    // the mm (do_shoot_lazy_tlb, then do_check_lazy_tlb), driven through IpiHost.
    assert_shot_down(&o, 2 * 63);
}

#[test]
fn one_thread_drives_the_arch_flushes_that_move_lazy_cpus() {
    // x86: the freeing flush at exit_mmap IPIs every CPU of mm_cpumask; powerpc with
    // shootdown: the final flush carries the shootdown. Either way no CPU is left lazy.
    let x86 = teardown_with_every_other_cpu_lazy::<Shootdown, X86>();
    assert!(x86.violations.is_empty() && x86.freed && x86.all_on_init_mm);
    assert!(x86.stats[0].ipis_sent >= 63);
    let ppc = teardown_with_every_other_cpu_lazy::<Shootdown, Powerpc>();
    assert!(ppc.violations.is_empty() && ppc.freed && ppc.all_on_init_mm);
    assert!(ppc.stats[0].ipis_sent >= 63);
}

#[test]
fn lower_page_tables_are_freed_only_after_every_cached_walk_is_flushed() {
    // refcount keeps the root alive for the lazy CPUs; the tables below it go at exit_mmap.
    // The broadcast flushes of generic and powerpc, and x86's freeing flush IPI, empty
    // every lazy CPU's paging-structure caches first.
    for o in [
        teardown_on::<Refcount, Generic>(None),
        teardown_on::<Refcount, Powerpc>(None),
        teardown_on::<Refcount, X86>(None),
    ] {
        // Clean, and (check_quiescent ran) the mm was freed once its lazy CPUs left.
        assert!(o.violations.is_empty(), "{:?}", o.violations);
    }
    // Rik van Riel's 2018 bug: the flush skips the lazy CPUs, whose caches still point
    // into the lower tables exit_mmap frees.
    let o = teardown_on::<Refcount, X86>(Some(lazymm::arch::x86::NO_FREED_TABLES_FLUSH));
    assert!(!o.violations.is_empty(), "the mutant was not caught");
    assert!(o
        .violations
        .iter()
        .all(|v| v.kind.property() == Property::B));
    assert!(o.violations.iter().any(|v| matches!(
        v.kind,
        ViolationKind::TablesFreedWhileCached { holder } if holder != 0
    )));
}

#[test]
fn on_arm64_the_shootdown_reaches_lazy_cpus_without_mm_cpumask() {
    // arm64 sets no mm_cpumask bits (its flushes are broadcast): cleanup_lazy_tlbs and
    // the candidate scan of hazptr-luto-cpumask must look at every online CPU instead.
    let o = teardown_with_every_other_cpu_lazy::<Shootdown, Arm64>();
    assert_shot_down(&o, 63);
    let o = teardown_with_every_other_cpu_lazy::<lazymm::scheme::HazptrLutoCpumask, Arm64>();
    assert!(o.violations.is_empty(), "{:?}", o.violations);
}
