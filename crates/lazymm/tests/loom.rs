//! Loom models of each scheme's critical races, on the real model code (the `sync`
//! facade switches to loom's atomics under `--cfg loom`): one loom thread per simulated
//! CPU, a tiny machine (two CPUs, one or two mms, two mm slots).
//!
//! Run with `bash .ci/loom.sh` (it sets `--cfg loom` and `LOOM_MAX_PREEMPTIONS=2`).
//!
//! Each model is generic over the scheme and the arch, so a scheme added later is
//! modelled by adding it to the lists at the bottom. Each model passes for the correct
//! scheme and fails (loom finds the violation) for the mutants that break it; the tests
//! assert both outcomes.
//!
//! What loom sees of memory ordering: loom treats `SeqCst` loads and stores as
//! acquire/release, but models `fence(SeqCst)` as a total order that synchronises
//! (each SeqCst fence joins one global clock). The model orders every store→load with
//! `fence(SeqCst)` (`Cpu::smp_mb`, and the two fences around a fully ordered RMW), so
//! the store-buffering litmus of property f is exactly what loom explores: with the
//! fence on both sides the stale outcome is impossible, without it loom lets each
//! Relaxed load read the older store.
//!
//! Loom schedules only at atomic operations, and its partial-order reduction reorders
//! two threads only where they touch the same object; a fence touches none. So every
//! full barrier of the model first RMWs one word shared by all of them
//! (`sync::fence_point`), and loom explores both orders of any two CPUs' fences, with
//! steps of the other CPU between a store and the fence after it. Without that, arm64's
//! `__switch_to` `dsb` right after the `rq->curr` store hid the missing
//! `smp_mb__after_spinlock()` (`arm64_no_mb_after_spinlock_fails_only_the_reverse_litmus`
//! passed the mutant in 13 executions; now loom explores 31 and finds it).
#![cfg(loom)]

use lazymm::arch::{Arm64, Generic, Powerpc, X86};
use lazymm::scheme::{
    HazptrLuto, HazptrLutoCpumask, HazptrMathieu, NoRefs, NoRefsMb, Refcount, Shootdown,
    ShootdownDebug,
};
use lazymm::sync::raw::AtomicUsize;
use lazymm::sync::Ordering;
use lazymm::{Arch, Config, Cpu, Kernel, Mutant, Property, Scheme, Task, Violation};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

fn config(mutant: Option<Mutant>) -> Config {
    config_with(mutant, true)
}

/// `registered`: whether each new mm registers for expedited membarrier
/// (`Config::membarrier_registered`).
fn config_with(mutant: Option<Mutant>, registered: bool) -> Config {
    let mut cfg = Config::new(2);
    cfg.arena_capacity = 2;
    cfg.speculative_walk_period = 0;
    cfg.mutant = mutant;
    cfg.membarrier_registered = registered;
    cfg
}

/// Runs a loom model with at most two preemptions unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise; `Err` carries the panic message of the first failing execution.
fn model(f: impl Fn() + Sync + Send + 'static) -> Result<(), String> {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    catch_unwind(AssertUnwindSafe(|| b.check(f))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a loom execution panicked".into())
    })
}

/// Panics with the lifetime violations (every property but f), if the oracle found any
/// (loom then reports the execution that led there). Property f is the membarrier
/// litmus's business: there loom, not the oracle's fence count, is the judge.
fn assert_clean<S: Scheme, A: Arch>(cpus: &[&Cpu<S, A>]) {
    let vs: Vec<&Violation> = cpus
        .iter()
        .flat_map(|c| c.violations.iter())
        .filter(|v| v.kind.property() != Property::F)
        .collect();
    assert!(
        vs.is_empty(),
        "oracle: {}",
        vs.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// The end of one CPU's part: it keeps answering IPIs (a teardown on the other CPU may
/// still send it one) until both CPUs have arrived; then it leaves its lazy mm and runs
/// the deferred drops a teardown handed it, and waits once more, so that nothing is
/// handed to it after it quiesced.
fn done<S: Scheme, A: Arch>(
    k: &Kernel<S, A>,
    cpu: &mut Cpu<S, A>,
    current: &mut Task<S>,
    arrived: &AtomicUsize,
) {
    rendezvous(k, cpu, arrived, 1);
    k.quiesce_cpu(cpu, current);
    rendezvous(k, cpu, arrived, 2);
}

/// Arrives at the `phase`-th meeting of the two CPUs and answers IPIs until the other
/// one has arrived too.
fn rendezvous<S: Scheme, A: Arch>(
    k: &Kernel<S, A>,
    cpu: &mut Cpu<S, A>,
    arrived: &AtomicUsize,
    phase: usize,
) {
    // ORDERING: AcqRel and the Acquire below pair with the other CPU's arrival: what it
    // did before arriving is visible after the wait.
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < 2 * phase {
        k.irq_point(cpu);
        loom::thread::yield_now();
    }
}

/// A booted two-CPU machine on which one process runs a thread on each CPU, each CPU
/// switched from its idle task to its thread.
struct TwoThreads<S: Scheme, A: Arch> {
    k: Kernel<S, A>,
    c0: Cpu<S, A>,
    c1: Cpu<S, A>,
    idle0: Task<S>,
    idle1: Task<S>,
    t0: Task<S>,
    t1: Task<S>,
}

fn two_threads<S: Scheme, A: Arch>(cfg: Config) -> TwoThreads<S, A> {
    let (k, mut cpus) = Kernel::<S, A>::boot(cfg);
    let mut c1 = cpus.pop().expect("two cpus");
    let mut c0 = cpus.pop().expect("two cpus");
    let mut idle0 = k.idle_task(&mut c0, 0);
    let mut idle1 = k.idle_task(&mut c1, 0);
    let mut t0 = k.fork(&mut c0, 1).expect("a free mm slot");
    let mut t1 = k.clone_thread(&mut c1, &t0, 2).expect("t0 has an mm");
    k.context_switch(&mut c0, &mut idle0, &mut t0);
    k.context_switch(&mut c1, &mut idle1, &mut t1);
    TwoThreads {
        k,
        c0,
        c1,
        idle0,
        idle1,
        t0,
        t1,
    }
}

/// Both CPUs run threads of one process; both exit at once. Each exiting task becomes a
/// lazy user of the mm (`exit_mm`), its last switch hands the lazy mm to the idle task,
/// and the hardware may walk the page tables; then the CPU leaves the lazy mm. The last
/// `mmput` (`exit_mmap`, teardown) and the final `mmdrop` (`__mmdrop`: the scheme's
/// cleanup, then the free) race with the other CPU's lazy switch and walk.
fn exit_race<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Result<(), String> {
    exit_race_with::<S, A>(mutant, true)
}

fn exit_race_with<S: Scheme, A: Arch>(
    mutant: Option<Mutant>,
    registered: bool,
) -> Result<(), String> {
    model(move || {
        let TwoThreads {
            k,
            mut c0,
            mut c1,
            mut idle0,
            mut idle1,
            mut t0,
            mut t1,
        } = two_threads::<S, A>(config_with(mutant, registered));
        let k = Arc::new(k);
        let arrived = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, arrived) = (k.clone(), arrived.clone());
            loom::thread::spawn(move || {
                k.exit_mm(&mut c0, &mut t0);
                k.context_switch(&mut c0, &mut t0, &mut idle0);
                k.speculative_walk(&mut c0);
                k.irq_point(&mut c0);
                done(&k, &mut c0, &mut idle0, &arrived);
                c0
            })
        };
        k.exit_mm(&mut c1, &mut t1);
        k.context_switch(&mut c1, &mut t1, &mut idle1);
        k.speculative_walk(&mut c1);
        k.irq_point(&mut c1);
        done(&k, &mut c1, &mut idle1, &arrived);
        let c0 = th.join().expect("cpu 0 finished");
        k.check_quiescent(&mut c1);
        assert_clean(&[&c0, &c1]);
    })
}

/// A kernel worker adopts a process's mm (`kthread_use_mm`, io_uring-style, holding an
/// `mm_count` reference the process gave it) while the process exits on the other CPU.
fn kthread_race<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Result<(), String> {
    kthread_race_with::<S, A>(mutant, true)
}

fn kthread_race_with<S: Scheme, A: Arch>(
    mutant: Option<Mutant>,
    registered: bool,
) -> Result<(), String> {
    model(move || {
        let (k, mut cpus) = Kernel::<S, A>::boot(config_with(mutant, registered));
        let mut c1 = cpus.pop().expect("two cpus");
        let mut c0 = cpus.pop().expect("two cpus");
        let mut idle0 = k.idle_task(&mut c0, 0);
        let mut idle1 = k.idle_task(&mut c1, 0);
        let mut worker = Task::<S>::kthread(1);
        let mut t1 = k.fork(&mut c1, 2).expect("a free mm slot");
        let mm = t1.mm_id().expect("a process has an mm");
        k.context_switch(&mut c1, &mut idle1, &mut t1);
        let work = k.mmgrab(&mut c1, mm);
        k.context_switch(&mut c0, &mut idle0, &mut worker);
        let k = Arc::new(k);
        let arrived = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, arrived) = (k.clone(), arrived.clone());
            loom::thread::spawn(move || {
                if let Some(users) = k.mmget_not_zero(&mut c0, &work) {
                    k.kthread_use_mm(&mut c0, &mut worker, &users);
                    let _ = k.mm(&mut c0, mm, "kthread user access");
                    k.kthread_unuse_mm(&mut c0, &mut worker);
                    k.mmput(&mut c0, users);
                }
                k.mmdrop(&mut c0, work);
                k.speculative_walk(&mut c0);
                done(&k, &mut c0, &mut worker, &arrived);
                c0
            })
        };
        k.exit_mm(&mut c1, &mut t1);
        k.context_switch(&mut c1, &mut t1, &mut idle1);
        k.irq_point(&mut c1);
        done(&k, &mut c1, &mut idle1, &arrived);
        let c0 = th.join().expect("cpu 0 finished");
        k.check_quiescent(&mut c1);
        assert_clean(&[&c0, &c1]);
    })
}

/// A thread of the process exits on CPU 0, which is then lazily on the mm, and CPU 0
/// goes offline; the other thread exits on CPU 1 at the same time, so the last `mmput`
/// and the final `mmdrop` (with whatever the scheme's teardown does: IPIs to
/// `mm_cpumask`, a hazard scan) race with CPU 0 leaving its lazy mm and the online mask.
fn hotplug_race<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Result<(), String> {
    hotplug_race_with::<S, A>(mutant, true)
}

fn hotplug_race_with<S: Scheme, A: Arch>(
    mutant: Option<Mutant>,
    registered: bool,
) -> Result<(), String> {
    model(move || {
        let TwoThreads {
            k,
            mut c0,
            mut c1,
            mut idle0,
            mut idle1,
            mut t0,
            mut t1,
        } = two_threads::<S, A>(config_with(mutant, registered));
        let k = Arc::new(k);
        let arrived = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, arrived) = (k.clone(), arrived.clone());
            loom::thread::spawn(move || {
                k.exit_mm(&mut c0, &mut t0);
                k.context_switch(&mut c0, &mut t0, &mut idle0);
                // Dying, it still runs the calls posted before it left the mask.
                k.cpu_offline(&mut c0, &mut idle0, |k, c| k.irq_point(c));
                k.irq_point(&mut c0);
                k.speculative_walk(&mut c0);
                k.cpu_online(&mut c0);
                done(&k, &mut c0, &mut idle0, &arrived);
                c0
            })
        };
        k.exit_mm(&mut c1, &mut t1);
        k.context_switch(&mut c1, &mut t1, &mut idle1);
        k.irq_point(&mut c1);
        done(&k, &mut c1, &mut idle1, &arrived);
        let c0 = th.join().expect("cpu 0 finished");
        k.check_quiescent(&mut c1);
        assert_clean(&[&c0, &c1]);
    })
}

/// The membarrier litmus of DESIGN.md §3 f, kernel→user half (membarrier.c's scenario
/// A through a switch, the (a)/(e) pair of scenario C). CPU 0 switches from its idle
/// task to a thread of the process (kernel→user: the `rq->curr` store, the scheme's
/// path), which then reads user memory. CPU 1, another thread of the process, writes
/// user memory and calls `membarrier()`: a full fence, then a read of every
/// `rq->curr`. Forbidden: CPU 0 is not IPI'd (membarrier saw its old `rq->curr`) and
/// read the stale value.
fn membarrier_litmus<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Result<(), String> {
    model(move || {
        let (k, mut cpus) = Kernel::<S, A>::boot(config(mutant));
        let mut c1 = cpus.pop().expect("two cpus");
        let mut c0 = cpus.pop().expect("two cpus");
        let mut idle0 = k.idle_task(&mut c0, 0);
        let mut t0 = k.fork(&mut c0, 1).expect("a free mm slot");
        let mm = t0.mm_id().expect("a process has an mm");
        let k = Arc::new(k);
        // One word of the process's memory.
        let data = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, data) = (k.clone(), data.clone());
            loom::thread::spawn(move || {
                k.context_switch(&mut c0, &mut idle0, &mut t0);
                // The first user-space access after the switch.
                data.load(Ordering::Relaxed)
            })
        };
        data.store(1, Ordering::Relaxed);
        let ipi = k
            .membarrier_targets(&mut c1, mm)
            .expect("the process registered for membarrier");
        let seen = th.join().expect("cpu 0 finished");
        assert!(
            ipi.test(0) || seen == 1,
            "property f: membarrier() did not IPI cpu 0, and cpu 0 read user memory older than membarrier's store"
        );
    })
}

/// The reverse membarrier litmus, user→kernel half (membarrier.c's scenario B through a
/// switch: the (c)/(d) pair of scenario C). CPU 0 runs a thread of the process, which
/// writes user memory and then switches to its idle task (user→kernel: `__schedule`'s
/// rq lock and `smp_mb__after_spinlock()`, then the `rq->curr` store). CPU 1, another
/// thread of the process, calls `membarrier()` (a full fence, a read of every
/// `rq->curr`, a full fence) and then reads user memory. Forbidden: CPU 0 is not IPI'd
/// (membarrier saw its new `rq->curr`, a kernel thread) and CPU 1 read the value from
/// before CPU 0's store. The barrier is the scheduler's, so every scheme must pass,
/// `none` included.
fn reverse_membarrier_litmus<S: Scheme, A: Arch>(mutant: Option<Mutant>) -> Result<(), String> {
    model(move || {
        let (k, mut cpus) = Kernel::<S, A>::boot(config(mutant));
        let mut c1 = cpus.pop().expect("two cpus");
        let mut c0 = cpus.pop().expect("two cpus");
        let mut idle0 = k.idle_task(&mut c0, 0);
        let mut t0 = k.fork(&mut c0, 1).expect("a free mm slot");
        let mm = t0.mm_id().expect("a process has an mm");
        k.context_switch(&mut c0, &mut idle0, &mut t0);
        let k = Arc::new(k);
        // One word of the process's memory.
        let data = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, data) = (k.clone(), data.clone());
            loom::thread::spawn(move || {
                // The last user-space access before the switch.
                data.store(1, Ordering::Relaxed);
                k.context_switch(&mut c0, &mut t0, &mut idle0);
            })
        };
        let ipi = k
            .membarrier_targets(&mut c1, mm)
            .expect("the process registered for membarrier");
        let seen = data.load(Ordering::Relaxed);
        th.join().expect("cpu 0 finished");
        assert!(
            ipi.test(0) || seen == 1,
            "property f (user->kernel): membarrier() did not IPI cpu 0, and missed the user store cpu 0 made before switching away"
        );
    })
}

/// x86's TLB-flush litmus (83b0177a6c48): CPU 0 ran the process, moved on to another
/// process and keeps its bit in the first one's `mm_cpumask` (x86 clears it only by a
/// trim); it now switches back (`switch_mm_irqs_off`: `LOADED_MM_SWITCHING`, the bit
/// already set, a barrier, the `tlb_gen` read) and touches user memory. CPU 1, a thread
/// of the process, unmaps a page at the same time (`flush_tlb_mm_range`: the fully
/// ordered `tlb_gen` increment, then `should_flush_tlb` reads CPU 0's `loaded_mm`).
/// Forbidden (property h): the flush returned without CPU 0 (it saw the other mm
/// loaded), and CPU 0 read the old `tlb_gen` and kept its PCID. Store buffering on
/// both sides: only a weak-memory run can show it.
fn tlb_flush_litmus<S: Scheme>(mutant: Option<Mutant>) -> Result<(), String> {
    model(move || {
        let TwoThreads {
            k,
            mut c0,
            mut c1,
            mut t0,
            ..
        } = two_threads::<S, X86>(config(mutant));
        let mut other = k.fork(&mut c0, 3).expect("a second mm slot");
        let mm = t0.mm_id().expect("a process has an mm");
        k.context_switch(&mut c0, &mut t0, &mut other);
        let k = Arc::new(k);
        let arrived = Arc::new(AtomicUsize::new(0));
        let th = {
            let (k, arrived) = (k.clone(), arrived.clone());
            loom::thread::spawn(move || {
                k.context_switch(&mut c0, &mut other, &mut t0);
                k.user_access(&mut c0, mm, "user access after the switch");
                rendezvous(&k, &mut c0, &arrived, 1);
                c0
            })
        };
        k.zap_page_range(&mut c1, mm);
        rendezvous(&k, &mut c1, &arrived, 1);
        let c0 = th.join().expect("cpu 0 finished");
        assert_clean(&[&c0, &c1]);
    })
}

/// Every model for one correct scheme on one arch: each must pass.
fn clean<S: Scheme, A: Arch>() {
    let name = format!("{}@{}", S::NAME, A::NAME);
    if let Err(e) = exit_race::<S, A>(None) {
        panic!("{name}: exit race: {e}");
    }
    if let Err(e) = kthread_race::<S, A>(None) {
        panic!("{name}: kthread_use_mm race: {e}");
    }
    if let Err(e) = hotplug_race::<S, A>(None) {
        panic!("{name}: hotplug race: {e}");
    }
    if S::MEMBARRIER_SAFE {
        if let Err(e) = membarrier_litmus::<S, A>(None) {
            panic!("{name}: membarrier litmus: {e}");
        }
    }
    // The scheduler's barrier: every scheme, whatever it promises.
    if let Err(e) = reverse_membarrier_litmus::<S, A>(None) {
        panic!("{name}: reverse membarrier litmus: {e}");
    }
}

#[test]
fn refcount_generic_survives_every_model() {
    clean::<Refcount, Generic>();
}

#[test]
fn refcount_no_grab_fails_the_exit_and_kthread_races() {
    let m = Some(lazymm::scheme::refcount::NO_GRAB);
    let e = exit_race::<Refcount, Generic>(m).expect_err("loom must catch refcount-no-grab");
    assert!(e.contains("oracle: property"), "{e}");
    let e = kthread_race::<Refcount, Generic>(m).expect_err("loom must catch refcount-no-grab");
    assert!(e.contains("oracle: property"), "{e}");
    // Its barrier is intact: the membarrier litmus passes.
    membarrier_litmus::<Refcount, Generic>(m).expect("refcount-no-grab keeps its barrier");
}

#[test]
fn refcount_relaxed_drop_fails_only_the_membarrier_litmus() {
    let m = Some(lazymm::scheme::refcount::RELAXED_DROP);
    let e = membarrier_litmus::<Refcount, Generic>(m)
        .expect_err("loom must find the store-buffering outcome");
    assert!(e.contains("property f: membarrier() did not IPI"), "{e}");
    // Lifetimes stay safe: the other models pass.
    exit_race::<Refcount, Generic>(m).expect("refcount-relaxed-drop keeps lifetimes safe");
    kthread_race::<Refcount, Generic>(m).expect("refcount-relaxed-drop keeps lifetimes safe");
}

#[test]
fn refcount_x86_powerpc_and_arm64_survive_every_model() {
    clean::<Refcount, X86>();
    clean::<Refcount, Powerpc>();
    clean::<Refcount, Arm64>();
}

#[test]
fn shootdown_survives_every_model() {
    clean::<Shootdown, Generic>();
    clean::<Shootdown, X86>();
    clean::<Shootdown, Powerpc>();
    clean::<Shootdown, Arm64>();
}

#[test]
fn hazptr_survive_every_model() {
    clean::<HazptrLuto, Generic>();
    clean::<HazptrLutoCpumask, Generic>();
    clean::<HazptrMathieu, Generic>();
    clean::<HazptrLutoCpumask, Arm64>();
    clean::<HazptrMathieu, Arm64>();
}

#[test]
fn shootdown_hotplug_race_fails_the_hotplug_race() {
    let e = hotplug_race::<Shootdown, Powerpc>(Some(lazymm::scheme::shootdown::HOTPLUG_RACE))
        .expect_err("caught");
    assert!(e.contains("oracle: property"), "{e}");
}

#[test]
fn hazptr_luto_early_scan_fails_the_exit_race() {
    let e = exit_race::<HazptrLuto, Generic>(Some(lazymm::scheme::hazptr_luto::EARLY_SCAN))
        .expect_err("caught");
    assert!(e.contains("oracle: property"), "{e}");
}

#[test]
fn hazptr_mathieu_no_fence_fails_only_the_membarrier_litmus() {
    let m = Some(lazymm::scheme::hazptr_mathieu::NO_FENCE);
    let e = membarrier_litmus::<HazptrMathieu, Generic>(m).expect_err("caught");
    assert!(e.contains("property f: membarrier() did not IPI"), "{e}");
    exit_race::<HazptrMathieu, Generic>(m).expect("lifetimes safe");
}

#[test]
fn none_and_none_mb_pass_the_reverse_litmus_and_none_mb_the_forward_one() {
    // none promises no property f, but the scheduler's barrier is there all the same.
    for r in [
        reverse_membarrier_litmus::<NoRefs, Generic>(None),
        reverse_membarrier_litmus::<NoRefs, X86>(None),
        reverse_membarrier_litmus::<NoRefsMb, Generic>(None),
        membarrier_litmus::<NoRefsMb, Generic>(None),
    ] {
        r.expect("the scheduler's (and none-mb's) barriers");
    }
}

#[test]
fn every_scheme_passes_the_reverse_litmus_on_x86_and_powerpc() {
    // The other archs' runs are in the survive-every-model tests above; x86's barrier
    // is the rq lock's LOCK-prefixed RMW, powerpc's an smp_mb().
    reverse_membarrier_litmus::<HazptrLuto, X86>(None).expect("hazptr-luto@x86");
    reverse_membarrier_litmus::<HazptrMathieu, X86>(None).expect("hazptr-mathieu@x86");
    reverse_membarrier_litmus::<HazptrLuto, Powerpc>(None).expect("hazptr-luto@powerpc");
    reverse_membarrier_litmus::<HazptrMathieu, Powerpc>(None).expect("hazptr-mathieu@powerpc");
    reverse_membarrier_litmus::<ShootdownDebug, Generic>(None).expect("shootdown-debug");
    membarrier_litmus::<ShootdownDebug, Generic>(None).expect("shootdown-debug");
}

#[test]
fn arm64_no_mb_after_spinlock_fails_only_the_reverse_litmus() {
    let m = Some(lazymm::arch::arm64::NO_MB_AFTER_SPINLOCK);
    let e = reverse_membarrier_litmus::<Refcount, Arm64>(m)
        .expect_err("loom must find the user store missed");
    assert!(e.contains("property f (user->kernel)"), "{e}");
    // The other half and the lifetimes do not depend on it.
    membarrier_litmus::<Refcount, Arm64>(m).expect("refcount's fully ordered drop");
    exit_race::<Refcount, Arm64>(m).expect("lifetimes safe");
}

#[test]
fn x86_switch_mm_passes_the_tlb_flush_litmus() {
    tlb_flush_litmus::<Refcount>(None).expect("the barrier of 83b0177a6c48");
    tlb_flush_litmus::<Shootdown>(None).expect("the barrier of 83b0177a6c48");
}

#[test]
fn x86_no_mb_cpumask_set_fails_the_tlb_flush_litmus() {
    let m = Some(lazymm::arch::x86::NO_MB_CPUMASK_SET);
    let e = tlb_flush_litmus::<Refcount>(m).expect_err("loom must find the stale PCID");
    assert!(e.contains("oracle: property h"), "{e}");
    // The lifetimes do not depend on it.
    exit_race::<Refcount, X86>(m).expect("lifetimes safe");
}

#[test]
fn hazptr_mathieu_no_publish_fence_is_equivalent_without_mm_cid() {
    // The fence before the slot store orders nothing this model has: both litmus
    // tests and every lifetime race pass without it, on a weak arch and on x86.
    let m = Some(lazymm::scheme::hazptr_mathieu::NO_PUBLISH_FENCE);
    for (what, r) in [
        (
            "reverse litmus",
            reverse_membarrier_litmus::<HazptrMathieu, Generic>(m),
        ),
        (
            "forward litmus",
            membarrier_litmus::<HazptrMathieu, Generic>(m),
        ),
        ("exit race", exit_race::<HazptrMathieu, Generic>(m)),
        ("kthread race", kthread_race::<HazptrMathieu, Generic>(m)),
        ("hotplug race", hotplug_race::<HazptrMathieu, Generic>(m)),
        (
            "reverse litmus, arm64",
            reverse_membarrier_litmus::<HazptrMathieu, Arm64>(m),
        ),
        ("exit race, x86", exit_race::<HazptrMathieu, X86>(m)),
    ] {
        r.unwrap_or_else(|e| panic!("no-publish-fence {what}: {e}"));
    }
}

#[test]
fn hazptr_luto_without_membarrier_registration_keeps_lifetimes_safe() {
    // No mm registered: membarrier_finish_switch_mm() skips its barrier (and membarrier
    // itself would return -EPERM, so there is no litmus to pass); the races that
    // decide lifetimes must still come out clean.
    exit_race_with::<HazptrLuto, Generic>(None, false).expect("exit race");
    kthread_race_with::<HazptrLuto, Generic>(None, false).expect("kthread race");
    hotplug_race_with::<HazptrLuto, Generic>(None, false).expect("hotplug race");
    exit_race_with::<HazptrLutoCpumask, Arm64>(None, false).expect("exit race, arm64");
}
