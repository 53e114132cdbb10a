//! The opt-out of lazy refcounting, driven by hand on a few CPUs: what a lazy round trip
//! costs, who shoots a lazy CPU down at exit on each arch, the CPU-hotplug race, and
//! the x86 switch window under NMIs.

use lazymm::arch::{Generic, Powerpc, X86};
use lazymm::mm::MmId;
use lazymm::scheme::{Refcount, Shootdown};
use lazymm::{Arch, Config, Cpu, Kernel, Mutant, Scheme, Task, ViolationKind};
use std::sync::atomic::{AtomicBool, Ordering};

fn quiet(n: usize) -> Config {
    let mut cfg = Config::new(n);
    cfg.speculative_walk_period = 0;
    cfg
}

fn kinds<S: Scheme, A: Arch>(cpus: &[&Cpu<S, A>]) -> Vec<ViolationKind> {
    cpus.iter()
        .flat_map(|c| c.violations.iter().map(|v| v.kind.clone()))
        .collect()
}

#[test]
fn refcount_and_shootdown_tasks_carry_active_mm_lazy_percpu_tasks_do_not() {
    let (k, mut cpus) = Kernel::<Refcount, Generic>::boot(quiet(1));
    let t = k.fork(&mut cpus[0], 1).expect("room");
    // The field exists under refcount (counted) and shootdown (uncounted, as merged);
    // under lazy-percpu tests/ui proves it does not.
    assert_eq!(t.scheme.active_mm.id(), t.mm_id());
    let (ks, mut cs) = Kernel::<Shootdown, Generic>::boot(quiet(1));
    let mut u = ks.fork(&mut cs[0], 1).expect("room");
    assert_eq!(u.scheme.active_mm, u.mm_id());
    assert!(
        size_of::<Task<lazymm::scheme::LazyPercpu>>() < size_of::<Task<Shootdown>>(),
        "lazy-percpu {} bytes, shootdown {} bytes",
        size_of::<Task<lazymm::scheme::LazyPercpu>>(),
        size_of::<Task<Shootdown>>()
    );
    let mut t = t;
    k.exit_mm(&mut cpus[0], &mut t);
    ks.exit_mm(&mut cs[0], &mut u);
}

/// One user→idle→user round trip on one CPU: (shared RMWs, full fences) it cost.
fn round_trip<S: Scheme>() -> (u64, u64) {
    let (k, mut cpus) = Kernel::<S, Generic>::boot(quiet(1));
    let c = &mut cpus[0];
    let mut idle = k.idle_task(c, 100);
    let mut t = k.fork(c, 1).expect("room");
    k.context_switch(c, &mut idle, &mut t);
    let before = c.stats();
    k.context_switch(c, &mut t, &mut idle);
    k.context_switch(c, &mut idle, &mut t);
    let after = c.stats();
    assert_eq!(after.lazy_switches - before.lazy_switches, 1);
    k.exit_mm(c, &mut t);
    k.context_switch(c, &mut t, &mut idle);
    k.quiesce_cpu(c, &mut idle);
    k.check_quiescent(c);
    assert_eq!(kinds(&[c]), vec![]);
    assert_eq!(c.stats().mm_created, c.stats().mm_freed);
    (
        after.shared_rmw - before.shared_rmw,
        after.full_fences - before.full_fences,
    )
}

#[test]
fn a_lazy_round_trip_costs_two_shared_rmws_or_one_fence() {
    // The scheduler's own cost, paid under every scheme: __schedule's
    // smp_mb__after_spinlock() on each of the two switches (generic: an smp_mb each).
    let sched = (0, 2);
    let beyond = |(rmw, mb): (u64, u64)| (rmw - sched.0, mb - sched.1);
    // refcount: mmgrab_lazy_tlb and a fully ordered mmdrop_lazy_tlb (two fences).
    assert_eq!(beyond(round_trip::<Refcount>()), (2, 2));
    // shootdown: no shared write, the one smp_mb() membarrier needs.
    assert_eq!(beyond(round_trip::<Shootdown>()), (0, 1));
}

/// What CPU 0 saw when the last thread of a process exited on it while CPU 1 was idle,
/// lazily on that process's mm, answering IPIs on its own thread.
struct Exit {
    ipis_sent: u64,
    cpu1_cr3: MmId,
    freed: bool,
    violations: Vec<ViolationKind>,
}

fn exit_beside_a_lazy_cpu<S: Scheme, A: Arch>() -> Exit {
    let (k, mut cpus) = Kernel::<S, A>::boot(quiet(2));
    let (c0, c1) = cpus.split_at_mut(1);
    let (c0, c1) = (&mut c0[0], &mut c1[0]);
    let mut idle0 = k.idle_task(c0, 100);
    let mut idle1 = k.idle_task(c1, 200);
    let mut t0 = k.fork(c0, 1).expect("room");
    let mut t1 = k.clone_thread(c1, &t0, 2).expect("t0 has an mm");
    let mm = t0.mm_id().expect("user task");
    k.context_switch(c0, &mut idle0, &mut t0);
    k.context_switch(c1, &mut idle1, &mut t1);
    // t1 exits on CPU 1, which goes idle lazily on the mm.
    k.exit_mm(c1, &mut t1);
    k.context_switch(c1, &mut t1, &mut idle1);
    assert_eq!(k.oracle_cr3(1), mm);
    let done = AtomicBool::new(false);
    let before = c0.stats().ipis_sent;
    std::thread::scope(|s| {
        let k = &k;
        let done = &done;
        let c1 = &mut *c1;
        s.spawn(move || {
            while !done.load(Ordering::Acquire) {
                k.irq_point(c1);
                std::thread::yield_now();
            }
        });
        k.exit_mm(c0, &mut t0);
        done.store(true, Ordering::Release);
    });
    let ipis_sent = c0.stats().ipis_sent - before;
    let freed = !k.arena.is_live(mm);
    let cpu1_cr3 = k.oracle_cr3(1);
    k.context_switch(c0, &mut t0, &mut idle0);
    k.quiesce_cpu(c0, &mut idle0);
    k.quiesce_cpu(c1, &mut idle1);
    k.check_quiescent(c0);
    Exit {
        ipis_sent,
        cpu1_cr3,
        freed,
        violations: kinds(&[c0, c1]),
    }
}

#[test]
fn shootdown_on_generic_ipis_the_lazy_cpu_at_mmdrop() {
    let e = exit_beside_a_lazy_cpu::<Shootdown, Generic>();
    assert_eq!(e.violations, vec![]);
    assert!(e.freed, "the last exit frees the mm");
    assert_eq!(e.cpu1_cr3, MmId::INIT, "CPU 1 was shot down to init_mm");
    assert_eq!(e.ipis_sent, 1, "cleanup_lazy_tlbs IPIs CPU 1");
}

#[test]
fn refcount_on_generic_sends_nothing_and_the_lazy_cpu_keeps_the_mm() {
    let e = exit_beside_a_lazy_cpu::<Refcount, Generic>();
    assert_eq!(e.violations, vec![]);
    assert!(!e.freed, "CPU 1's lazy reference keeps the mm");
    assert_ne!(e.cpu1_cr3, MmId::INIT);
    assert_eq!(e.ipis_sent, 0);
}

#[test]
fn x86_exit_mmap_flush_moves_the_lazy_cpu_to_init_mm() {
    // Under refcount the flush is arch-only: CPU 1 leaves the page tables, the core
    // still holds its reference, and the mm is freed when CPU 1 next switches.
    let e = exit_beside_a_lazy_cpu::<Refcount, X86>();
    assert_eq!(e.violations, vec![]);
    assert!(!e.freed);
    assert_eq!(e.cpu1_cr3, MmId::INIT);
    assert_eq!(e.ipis_sent, 1, "the freeing flush IPIs CPU 1");
    // Under shootdown, the flush already did the shootdown's work; cleanup_lazy_tlbs
    // IPIs CPU 1 again (its bit is still set) and finds nothing.
    let e = exit_beside_a_lazy_cpu::<Shootdown, X86>();
    assert_eq!(e.violations, vec![]);
    assert!(e.freed);
    assert_eq!(e.cpu1_cr3, MmId::INIT);
    assert_eq!(e.ipis_sent, 2);
}

#[test]
fn powerpc_piggy_backs_the_shootdown_on_the_final_flush() {
    let e = exit_beside_a_lazy_cpu::<Shootdown, Powerpc>();
    assert_eq!(e.violations, vec![]);
    assert!(e.freed);
    assert_eq!(e.cpu1_cr3, MmId::INIT);
    // One IPI, from exit_mmap; it cleared CPU 1's bit, so cleanup_lazy_tlbs only
    // makes the direct call for CPU 0 itself.
    assert_eq!(e.ipis_sent, 1);
    // Without shootdown the final flush is a broadcast tlbie.
    let e = exit_beside_a_lazy_cpu::<Refcount, Powerpc>();
    assert_eq!(e.violations, vec![]);
    assert_eq!(e.ipis_sent, 0);
    assert!(!e.freed);
}

/// CPU 1 goes offline while lazily on a process's mm; while it dies, the process's
/// last thread exits on CPU 0. Returns what the oracle found.
fn offline_during_exit(mutant: Option<Mutant>) -> (Vec<ViolationKind>, bool) {
    let mut cfg = quiet(2);
    cfg.mutant = mutant;
    let (k, mut cpus) = Kernel::<Shootdown, Powerpc>::boot(cfg);
    let (c0, c1) = cpus.split_at_mut(1);
    let (c0, c1) = (&mut c0[0], &mut c1[0]);
    let mut idle0 = k.idle_task(c0, 100);
    let mut idle1 = k.idle_task(c1, 200);
    let mut t0 = k.fork(c0, 1).expect("room");
    let mut t1 = k.clone_thread(c1, &t0, 2).expect("t0 has an mm");
    let mm = t0.mm_id().expect("user task");
    k.context_switch(c0, &mut idle0, &mut t0);
    k.context_switch(c1, &mut idle1, &mut t1);
    k.exit_mm(c1, &mut t1);
    k.context_switch(c1, &mut t1, &mut idle1);
    // No IPI needs an answer below: CPU 1 is offline (or out of the mask) by the time
    // CPU 0 tears the mm down, so one thread can play both CPUs.
    k.cpu_offline(c1, &mut idle1, |_, _| {
        k.exit_mm(c0, &mut t0);
        k.context_switch(c0, &mut t0, &mut idle0);
    });
    k.cpu_online(c1);
    let freed = !k.arena.is_live(mm);
    k.quiesce_cpu(c0, &mut idle0);
    k.quiesce_cpu(c1, &mut idle1);
    (kinds(&[c0, c1]), freed)
}

#[test]
fn hotplug_fixed_order_is_clean() {
    let (v, freed) = offline_during_exit(None);
    assert_eq!(v, vec![]);
    assert!(freed);
}

#[test]
fn hotplug_pre_fix_order_frees_the_mm_under_the_outgoing_cpu() {
    let (v, _) = offline_during_exit(Some(lazymm::scheme::shootdown::HOTPLUG_RACE));
    assert!(
        v.contains(&ViolationKind::LazyCpuNotInCpumask { lazy: 1 }),
        "{v:?}"
    );
    assert!(
        v.contains(&ViolationKind::FreedWhileLoaded { holder: 1 }),
        "{v:?}"
    );
}

/// Switches one x86 CPU back and forth between two processes with an NMI at nearly
/// every NMI point; returns (NMIs taken, property g violations).
fn nmis_in_the_switch_window(mutant: Option<Mutant>) -> (u64, usize) {
    let mut cfg = quiet(1);
    cfg.mutant = mutant;
    cfg.nmi_period = 1;
    let (k, mut cpus) = Kernel::<Refcount, X86>::boot(cfg);
    let c = &mut cpus[0];
    let mut idle = k.idle_task(c, 100);
    let mut a = k.fork(c, 1).expect("room");
    let mut b = k.fork(c, 2).expect("room");
    k.context_switch(c, &mut idle, &mut a);
    for _ in 0..100 {
        k.context_switch(c, &mut a, &mut b);
        k.context_switch(c, &mut b, &mut a);
    }
    k.exit_mm(c, &mut a);
    k.context_switch(c, &mut a, &mut b);
    k.exit_mm(c, &mut b);
    k.context_switch(c, &mut b, &mut idle);
    // Only property g can break here (the first 64 violations are kept).
    assert!(
        c.violations
            .iter()
            .all(|v| matches!(v.kind, ViolationKind::NmiWrongMm { .. })),
        "{:?}",
        c.violations
    );
    (c.stats().nmis, c.stats().violations as usize)
}

#[test]
fn x86_sentinel_keeps_nmis_out_of_the_switch_window() {
    let (nmis, g) = nmis_in_the_switch_window(None);
    assert!(nmis > 100, "only {nmis} NMIs");
    assert_eq!(g, 0);
    let (_, g) = nmis_in_the_switch_window(Some(lazymm::arch::x86::NO_SWITCHING_SENTINEL));
    assert!(g > 0, "the mutant went unseen");
}

/// Runs `f` while `responder` answers IPIs on its own thread; the thread stops when `f`
/// returns or panics.
fn with_responder<S: Scheme, A: Arch, R>(
    k: &Kernel<S, A>,
    responder: &mut Cpu<S, A>,
    f: impl FnOnce() -> R,
) -> R {
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let done = &done;
        s.spawn(move || {
            while !done.load(Ordering::Acquire) {
                k.irq_point(responder);
                std::thread::yield_now();
            }
        });
        let _stop = Stop(done);
        f()
    })
}

/// CPU 1 idles lazily on a process's mm while CPU 0 runs the process and unmaps a page
/// of it `flushes` times (powerpc, shootdown). With `t1_exits`, the process's other
/// thread exits before (the process is single-threaded); otherwise it only sleeps.
/// Returns the IPIs the flushes sent, CPU 1's CR3 and the mask after them, then the
/// IPIs CPU 0's exit sent.
fn unmap_beside_a_lazy_cpu(t1_exits: bool, flushes: u32) -> (u64, MmId, Vec<usize>, u64) {
    let (k, mut cpus) = Kernel::<Shootdown, Powerpc>::boot(quiet(2));
    let (c0, c1) = cpus.split_at_mut(1);
    let (c0, c1) = (&mut c0[0], &mut c1[0]);
    let mut idle0 = k.idle_task(c0, 100);
    let mut idle1 = k.idle_task(c1, 200);
    let mut t0 = k.fork(c0, 1).expect("room");
    let mut t1 = k.clone_thread(c1, &t0, 2).expect("t0 has an mm");
    let mm = t0.mm_id().expect("user task");
    k.context_switch(c0, &mut idle0, &mut t0);
    k.context_switch(c1, &mut idle1, &mut t1);
    if t1_exits {
        k.exit_mm(c1, &mut t1);
    }
    k.context_switch(c1, &mut t1, &mut idle1);
    assert_eq!(k.oracle_cr3(1), mm);
    let out = with_responder(&k, c1, || {
        let before = c0.stats().ipis_sent;
        for _ in 0..flushes {
            k.zap_page_range(c0, mm);
        }
        let flush_ipis = c0.stats().ipis_sent - before;
        let cr3 = k.oracle_cr3(1);
        let mask: Vec<usize> = k.arena.get(mm).expect("live").cpumask().iter().collect();
        let before = c0.stats().ipis_sent;
        k.exit_mm(c0, &mut t0);
        let exit_ipis = c0.stats().ipis_sent - before;
        k.context_switch(c0, &mut t0, &mut idle0);
        (flush_ipis, cr3, mask, exit_ipis)
    });
    if !t1_exits {
        with_responder(&k, c0, || {
            k.context_switch(c1, &mut idle1, &mut t1);
            k.exit_mm(c1, &mut t1);
            k.context_switch(c1, &mut t1, &mut idle1);
        });
    }
    k.quiesce_cpu(c0, &mut idle0);
    k.quiesce_cpu(c1, &mut idle1);
    k.check_quiescent(c0);
    assert_eq!(kinds(&[c0, c1]), vec![]);
    out
}
#[test]
fn powerpc_single_threaded_unmap_trims_the_lazy_cpu_from_mm_cpumask() {
    // review 3, V1: flush_type_needed → exit_flush_lazy_tlbs for the only thread of a
    // process. The trim IPI moves CPU 1 to init_mm and clears its bit, so the exit
    // flush later has nobody to IPI: the lab's "less the trimmed ones" rule.
    let (flush_ipis, cr3, mask, exit_ipis) = unmap_beside_a_lazy_cpu(true, 1);
    assert_eq!(flush_ipis, 1, "one trim IPI to CPU 1");
    assert_eq!(cr3, MmId::INIT, "CPU 1 left the mm for init_mm");
    assert_eq!(mask, vec![0], "only the flusher is left in mm_cpumask");
    assert_eq!(exit_ipis, 0, "the exit flush finds nobody else");
}

#[test]
fn powerpc_multi_threaded_unmap_trims_once_per_trim_timer() {
    // Two threads: no single-threaded trim; CPU 0's tick_and_test_trim_clock fires on
    // its tlb_mm_cpumask_trim_timer'th flush, and only then.
    use lazymm::arch::powerpc::TLB_MM_CPUMASK_TRIM_TIMER;
    let (ipis, cr3, mask, _) = unmap_beside_a_lazy_cpu(false, TLB_MM_CPUMASK_TRIM_TIMER - 1);
    assert_eq!((ipis, mask), (0, vec![0, 1]));
    assert_ne!(cr3, MmId::INIT);
    let (ipis, cr3, mask, _) = unmap_beside_a_lazy_cpu(false, TLB_MM_CPUMASK_TRIM_TIMER);
    assert_eq!((ipis, cr3, mask), (1, MmId::INIT, vec![0]));
}

/// Full fences of a user→user switch back to a process CPU 0 already ran (powerpc,
/// refcount), with every mm registered for expedited membarrier or none.
fn powerpc_return_switch_fences(registered: bool) -> u64 {
    let mut cfg = quiet(1);
    cfg.membarrier_registered = registered;
    let (k, mut cpus) = Kernel::<Refcount, Powerpc>::boot(cfg);
    let c0 = &mut cpus[0];
    let mut idle = k.idle_task(c0, 100);
    let mut a = k.fork(c0, 1).expect("room");
    let mut b = k.fork(c0, 2).expect("room");
    k.context_switch(c0, &mut idle, &mut a);
    k.context_switch(c0, &mut a, &mut b);
    let before = c0.stats().full_fences;
    // CPU 0 is in a's mm_cpumask already: no new_on_cpu barrier.
    k.context_switch(c0, &mut b, &mut a);
    let fences = c0.stats().full_fences - before;
    k.exit_mm(c0, &mut a);
    k.context_switch(c0, &mut a, &mut idle);
    k.context_switch(c0, &mut idle, &mut b);
    k.exit_mm(c0, &mut b);
    k.context_switch(c0, &mut b, &mut idle);
    k.quiesce_cpu(c0, &mut idle);
    assert_eq!(kinds(&[&*c0]), vec![]);
    fences
}

#[test]
fn powerpc_switch_to_a_registered_mm_pays_membarrier_arch_switch_mm() {
    // review 3, B4: powerpc's switch_mm_irqs_off calls membarrier_arch_switch_mm when
    // the CPU was already in next's mask, which issues smp_mb() for a registered next.
    assert_eq!(
        powerpc_return_switch_fences(true),
        powerpc_return_switch_fences(false) + 1
    );
}
