//! The four cases of `context_switch`, under `refcount` and `none`, on `generic`.
//!
//! Each test drives one or two simulated CPUs from this thread and checks what the
//! switch did to the mm's counters, to the tasks' `active_mm`, to CR3 and
//! `mm_cpumask`, and to the per-CPU counters the benchmarks report.

mod common;

use common::*;
use lazymm::scheme::refcount::ActiveMm;
use lazymm::scheme::{NoRefs, Refcount};
use lazymm::{MmId, Property, Task};

/// Whether a `refcount` task's `active_mm` is a lazy reference to `mm`.
fn is_lazy_on(t: &RcTask, mm: MmId) -> bool {
    matches!(&t.scheme.active_mm, ActiveMm::Lazy(r) if r.id() == mm)
}

#[test]
fn refcount_user_to_kernel_grabs_a_lazy_reference() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    assert_eq!((users(&k, m), count(&k, m)), (1, 1));

    let before = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);

    assert_eq!(
        cpus[0].stats().context_switches,
        before.context_switches + 1
    );
    assert_eq!(cpus[0].stats().lazy_switches, before.lazy_switches + 1);
    assert_eq!(count(&k, m), 2, "the lazy CPU holds one mm_count");
    assert_eq!(users(&k, m), 1, "a lazy use is not a real user");
    assert!(
        is_lazy_on(&idle[0], m),
        "idle's active_mm should be Lazy({m}), is {:?}",
        idle[0].scheme.active_mm
    );
    // The user task still names its own mm.
    assert!(matches!(t.scheme.active_mm, ActiveMm::Own(id) if id == m));
    // Lazy TLB mode: no CR3 write, and membarrier sees a kernel thread.
    assert_eq!(k.oracle_cr3(0), m);
    assert_eq!(k.oracle_cr3(0), m);
    assert_eq!(k.cpus[0].oracle_rq_curr_mm(), None);
    assert!(!cpus[0].has_prev_lazy_mm());
    // The grab is one shared RMW on mm_count (the cpumask bit is already set).
    assert_eq!(cpus[0].stats().shared_rmw, before.shared_rmw + 1);
    assert_clean(&k, &cpus);
}

#[test]
fn refcount_kernel_to_kernel_hands_the_reference_over() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    let mut kworker: RcTask = Task::kthread(50);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!(count(&k, m), 2);

    let before = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut kworker);

    assert_eq!(count(&k, m), 2, "a hand-over takes no reference");
    assert!(is_lazy_on(&kworker, m), "{:?}", kworker.scheme.active_mm);
    assert!(
        matches!(idle[0].scheme.active_mm, ActiveMm::None),
        "prev must give its active_mm away, has {:?}",
        idle[0].scheme.active_mm
    );
    assert_eq!(cpus[0].stats().lazy_switches, before.lazy_switches);
    assert_eq!(cpus[0].stats().shared_rmw, before.shared_rmw);
    // Only __schedule's smp_mb__after_spinlock(), no reference work.
    assert_eq!(cpus[0].stats().full_fences, before.full_fences + 1);
    assert_eq!(k.oracle_cr3(0), m, "still lazily on the user mm");

    // And back: the reference returns to idle, still no reference work.
    k.context_switch(&mut cpus[0], &mut kworker, &mut idle[0]);
    assert!(is_lazy_on(&idle[0], m));
    assert_eq!(count(&k, m), 2);
    assert_eq!(cpus[0].stats().shared_rmw, before.shared_rmw);
    assert_clean(&k, &cpus);
}

#[test]
fn refcount_kernel_to_user_drops_the_lazy_reference_in_finish_task_switch() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut u = k.fork(&mut cpus[0], 2).unwrap();
    let (m, mu) = (t.mm_id().unwrap(), u.mm_id().unwrap());
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!(count(&k, m), 2);

    // Back to the same mm: no CR3 write, the lazy reference is dropped.
    let before = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    assert_eq!(count(&k, m), 1, "the lazy reference is dropped");
    assert!(
        matches!(idle[0].scheme.active_mm, ActiveMm::None),
        "prev's active_mm must be empty, is {:?}",
        idle[0].scheme.active_mm
    );
    assert!(!cpus[0].has_prev_lazy_mm(), "rq->prev_lazy_mm is consumed");
    assert_eq!(cpus[0].stats().lazy_switches, before.lazy_switches);
    assert_eq!(k.oracle_cr3(0), m);
    assert_eq!(k.cpus[0].oracle_rq_curr_mm(), Some(m));
    assert!(
        cpus[0].stats().full_fences > before.full_fences,
        "kernel->user must pass a full barrier (property f)"
    );

    // To a different mm: CR3 changes, the old lazy mm's count goes back down.
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!(count(&k, m), 2);
    let before = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut u);
    assert_eq!(count(&k, m), 1);
    assert_eq!(count(&k, mu), 1, "next's own mm takes no reference");
    assert_eq!(k.oracle_cr3(0), mu);
    assert_eq!(k.oracle_cr3(0), mu);
    assert_eq!(cpumask(&k, mu) & 1, 1);
    assert!(cpus[0].stats().full_fences > before.full_fences);
    assert_clean(&k, &cpus);
}

#[test]
fn refcount_user_to_user_loads_next_and_takes_no_reference() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(2, None);
    let mut a = k.fork(&mut cpus[0], 1).unwrap();
    let mut b = k.fork(&mut cpus[0], 2).unwrap();
    let mut a2 = k.clone_thread(&mut cpus[0], &a, 3).unwrap();
    let (ma, mb) = (a.mm_id().unwrap(), b.mm_id().unwrap());
    k.context_switch(&mut cpus[0], &mut idle[0], &mut a);
    assert_eq!(cpumask(&k, mb), 0, "b has never been loaded");

    let before = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut a, &mut b);
    assert_eq!((users(&k, ma), count(&k, ma)), (2, 1));
    assert_eq!((users(&k, mb), count(&k, mb)), (1, 1));
    assert_eq!(k.oracle_cr3(0), mb);
    assert_eq!(k.oracle_cr3(0), mb);
    assert!(loaded_is(&mut cpus[0], mb));
    assert_eq!(k.cpus[0].oracle_rq_curr_mm(), Some(mb));
    assert_eq!(cpumask(&k, mb), 0b01, "cpu 0's bit is set when it loads b");
    assert_eq!(cpus[0].stats().lazy_switches, before.lazy_switches);
    assert_eq!(
        cpus[0].stats().shared_rmw,
        before.shared_rmw + 1,
        "only the cpumask bit: no reference work"
    );

    // Once the bits are set, a user->user switch touches no shared line at all.
    k.context_switch(&mut cpus[0], &mut b, &mut a);
    let warm = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut a, &mut b);
    assert_eq!(cpus[0].stats().shared_rmw, warm.shared_rmw);
    assert_eq!(k.oracle_cr3(0), mb);

    // Between threads of one process nothing changes but the task.
    k.context_switch(&mut cpus[0], &mut b, &mut a);
    let warm = cpus[0].stats();
    k.context_switch(&mut cpus[0], &mut a, &mut a2);
    assert_eq!(k.oracle_cr3(0), ma);
    assert_eq!(cpus[0].stats().shared_rmw, warm.shared_rmw);
    assert_eq!((users(&k, ma), count(&k, ma)), (2, 1));

    // Another CPU loading b sets its own bit; mm_cpumask bits are never cleared here.
    k.context_switch(&mut cpus[1], &mut idle[1], &mut b);
    assert_eq!(cpumask(&k, mb), 0b11);
    assert_eq!(cpumask(&k, ma), 0b01);
    assert_clean(&k, &cpus);
}

/// Runs `trips` user→idle→user round trips on one CPU after a warm-up, and returns the
/// growth of (shared_rmw, full_fences, lazy_switches).
fn round_trips<S: lazymm::Scheme>(trips: u64) -> (u64, u64, u64) {
    let (k, mut cpus, mut idle) = boot::<S>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    // Warm up: the first load sets the cpumask bit and drops the boot reference.
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    let before = cpus[0].stats();
    for _ in 0..trips {
        k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
        k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    }
    let after = cpus[0].stats();
    assert_clean(&k, &cpus);
    (
        after.shared_rmw - before.shared_rmw,
        after.full_fences - before.full_fences,
        after.lazy_switches - before.lazy_switches,
    )
}

#[test]
fn refcount_lazy_round_trip_costs_two_shared_rmws() {
    let trips = 10;
    let (rmw, fences, lazy) = round_trips::<Refcount>(trips);
    assert_eq!(lazy, trips);
    assert_eq!(rmw, 2 * trips, "one atomic_inc and one atomic_dec_and_test");
    assert!(
        fences >= trips,
        "each kernel->user switch passes a full barrier ({fences} for {trips} trips)"
    );
}

#[test]
fn none_lazy_round_trip_costs_nothing() {
    let trips = 10;
    let (rmw, fences, lazy) = round_trips::<NoRefs>(trips);
    assert_eq!(lazy, trips, "none still counts entries into lazy mode");
    assert_eq!(rmw, 0);
    // Only the scheduler's barrier (smp_mb__after_spinlock), once per switch.
    assert_eq!(fences, 2 * trips);
}

#[test]
fn none_switches_take_no_references() {
    let (k, mut cpus, mut idle) = boot::<NoRefs>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!(count(&k, m), 1, "none takes no lazy reference");
    assert_eq!(k.oracle_cr3(0), m, "but the CPU still keeps the mm loaded");
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    assert_eq!(count(&k, m), 1);
    assert_clean(&k, &cpus);
}

#[test]
fn refcount_boot_idle_first_switch_to_user_passes_a_full_barrier() {
    // `Kernel::idle_task` makes the idle task a CPU boots with: it runs lazily on
    // init_mm and holds a reference to it, as sched_init() takes. Its first
    // kernel->user switch drops that reference, and the fully ordered drop is the
    // barrier membarrier needs (a bare `Task::kthread` as idle has none: see the
    // oracle tests).
    let (k, mut cpus, mut idle) = boot::<Refcount>(2, None);
    assert!(is_lazy_on(&idle[0], MmId::INIT) && is_lazy_on(&idle[1], MmId::INIT));
    let init_before = count(&k, MmId::INIT);
    assert_eq!(
        init_before,
        1 + 2,
        "init_mm's own count plus one per idle task"
    );
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    assert!(cpus[0].stats().full_fences > 0);
    assert!(
        !properties(&cpus).contains(&Property::F),
        "{:?}",
        violations(&cpus)
    );
    assert_eq!(
        count(&k, MmId::INIT),
        init_before - 1,
        "the boot reference is dropped"
    );
    assert!(matches!(idle[0].scheme.active_mm, ActiveMm::None));
    assert_clean(&k, &cpus);
}
