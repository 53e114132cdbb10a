//! The oracle catches what it claims to: each test breaks one property of DESIGN.md §3
//! on purpose (through a stale handle, a leaked reference, a mis-booted idle task or
//! the `refcount-no-grab` mutant) and checks that exactly that is reported, with the
//! right CPU and mm.

mod common;

use common::*;
use lazymm::scheme::refcount::ActiveMm;
use lazymm::scheme::{NoRefs, Refcount};
use lazymm::{Kernel, MmId, Property, Scheme, Task, Violation, ViolationKind};

/// The violations of `kind`'s shape on mm `mm`.
/// Each violation's mm and kind, in the order they were reported.
fn mm_and_kind(v: &[Violation]) -> Vec<(MmId, ViolationKind)> {
    v.iter().map(|v| (v.mm, v.kind.clone())).collect()
}

fn find(v: &[Violation], mm: MmId, pred: impl Fn(&ViolationKind) -> bool) -> Vec<&Violation> {
    v.iter().filter(|v| v.mm == mm && pred(&v.kind)).collect()
}

#[test]
fn use_after_free_through_a_stale_handle_is_reported_even_after_slot_reuse() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.quiesce_cpu(&mut cpus[0], &mut idle[0]);
    assert!(!k.arena.is_live(m));
    assert_clean(&k, &cpus);

    // A new mm takes the freed slot, with a new generation.
    let u = k.fork(&mut cpus[0], 2).unwrap();
    let n = u.mm_id().unwrap();
    assert_eq!(n.slot(), m.slot(), "the freed slot is reused");
    assert_ne!(n.gen(), m.gen());
    assert!(k.arena.is_live(n) && !k.arena.is_live(m));

    // Following the stale handle is a use after free, not an access to the new mm.
    assert!(k.mm(&mut cpus[0], m, "test handle").is_none());
    let v = violations(&cpus);
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].kind,
        ViolationKind::UseAfterFree { via: "test handle" }
    );
    assert_eq!(v[0].kind.property(), Property::A);
    assert_eq!((v[0].cpu, v[0].mm), (0, m));
    assert_eq!(k.violations(), 1);
    assert_eq!(cpus[0].stats().violations, 1);

    // Reference work through it is refused and leaves the new mm's counters alone.
    let stale = k.mmgrab(&mut cpus[0], m);
    assert_eq!((users(&k, n), count(&k, n)), (1, 1));
    k.mmdrop(&mut cpus[0], stale);
    assert_eq!((users(&k, n), count(&k, n)), (1, 1));
    assert!(k.arena.is_live(n));
    let v = violations(&cpus);
    assert_eq!(v.len(), 3);
    assert_eq!(v[1].kind, ViolationKind::UseAfterFree { via: "mmgrab" });
    assert_eq!(v[2].kind, ViolationKind::UseAfterFree { via: "mmdrop" });
    assert!(v
        .iter()
        .all(|v| v.mm == m && v.kind.property() == Property::A));
    // The report names the property, the CPU, the step and the mm.
    let text = v[2].to_string();
    assert!(text.starts_with("property a: cpu 0 step "), "{text}");
    assert!(text.contains(&m.to_string()), "{text}");
}

#[test]
fn freeing_an_mm_another_cpu_has_loaded_is_reported() {
    let r = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    assert!(!r.m_live_after_exit, "without the grab, the exit frees m");
    let v = violations(&r.cpus);
    // CPU 1 frees m in the exit's __mmdrop while CPU 0 is lazily on it (and CPU 1
    // itself still runs on it inside exit_mm).
    let b0 = find(&v, r.m, |k| {
        *k == ViolationKind::FreedWhileLoaded { holder: 0 }
    });
    assert_eq!(b0.len(), 1, "{v:#?}");
    assert_eq!(b0[0].cpu, 1, "reported by the CPU that frees");
    assert_eq!(b0[0].kind.property(), Property::B);
    let b1 = find(&v, r.m, |k| {
        *k == ViolationKind::FreedWhileLoaded { holder: 1 }
    });
    assert_eq!(b1.len(), 1, "{v:#?}");
}

#[test]
fn speculative_walk_of_freed_page_tables_is_reported() {
    let r = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    let v = violations(&r.cpus);
    let walks = find(&v, r.m, |k| *k == ViolationKind::SpeculativeWalkOfFreed);
    assert_eq!(walks.len(), 1, "{v:#?}");
    assert_eq!(walks[0].cpu, 0);
    assert_eq!(walks[0].kind.property(), Property::B);
    assert_eq!(r.cpus[0].stats().speculative_walks, 1);
}

#[test]
fn speculative_walk_of_a_lazily_held_mm_is_fine_under_refcount() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    // The mm's last user is gone; this CPU's lazy reference keeps the root alive.
    k.speculative_walk(&mut cpus[0]);
    k.speculative_walk(&mut cpus[0]);
    assert_eq!(cpus[0].stats().speculative_walks, 2);
    assert_clean(&k, &cpus);
}

#[test]
fn late_drop_of_a_reference_never_taken_is_a_use_after_free() {
    let r = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    let v = violations(&r.cpus);
    // Both CPUs drop a lazy "reference" to m that the mutant never took, after m was
    // freed and its slot given to q.
    assert_eq!(r.q.slot(), r.m.slot(), "q reuses m's slot");
    assert_ne!(r.q, r.m);
    for cpu in [0, 1] {
        let uaf: Vec<_> = find(&v, r.m, |k| {
            *k == ViolationKind::UseAfterFree { via: "mmdrop" }
        })
        .into_iter()
        .filter(|v| v.cpu == cpu)
        .collect();
        assert_eq!(uaf.len(), 1, "cpu {cpu}: {v:#?}");
        assert_eq!(uaf[0].kind.property(), Property::A);
    }
    assert_eq!(
        r.q_count, 1,
        "the stale drop must not decrement the mm now in the slot"
    );
}

#[test]
fn a_reference_kept_past_quiescence_is_reported_as_a_leak() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    let kept = k.mmgrab(&mut cpus[0], m);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.quiesce_cpu(&mut cpus[0], &mut idle[0]);
    assert_clean(&k, &cpus);

    k.check_quiescent(&mut cpus[0]);
    let v = violations(&cpus);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::Leak { users: 0, count: 1 });
    assert_eq!(v[0].kind.property(), Property::E);
    assert_eq!(v[0].mm, m);

    // Dropping it frees the mm, and the next check finds nothing new.
    k.mmdrop(&mut cpus[0], kept);
    assert!(!k.arena.is_live(m));
    k.check_quiescent(&mut cpus[0]);
    assert_eq!(violations(&cpus).len(), 1);
    assert_eq!(cpus[0].stats().mm_created, cpus[0].stats().mm_freed);
}

#[test]
fn a_task_that_never_exits_is_reported_as_a_leak() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.quiesce_cpu(&mut cpus[0], &mut idle[0]);
    k.check_quiescent(&mut cpus[0]);
    let v = violations(&cpus);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        (v[0].mm, &v[0].kind),
        (m, &ViolationKind::Leak { users: 1, count: 1 })
    );
}

#[test]
fn refcount_passes_property_f_on_every_kernel_to_user_path() {
    const { assert!(Refcount::MEMBARRIER_SAFE) };
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut u = k.fork(&mut cpus[0], 2).unwrap();
    let mut kworker: Task<Refcount> = Task::kthread(50);
    // Boot idle -> user, user -> idle -> user, user -> idle -> kworker -> user, and an
    // exited task -> user (whose drop frees the mm).
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut kworker);
    k.context_switch(&mut cpus[0], &mut kworker, &mut u);
    k.exit_mm(&mut cpus[0], &mut u);
    k.context_switch(&mut cpus[0], &mut u, &mut t);
    assert_eq!(cpus[0].stats().mm_freed, 1);
    assert!(cpus[0].stats().full_fences >= 4);
    assert!(!properties(&cpus).contains(&Property::F));
    assert_clean(&k, &cpus);
}

#[test]
fn property_f_is_reported_when_a_kernel_to_user_switch_passes_no_barrier() {
    // A bare `Task::kthread` as the boot idle task holds no lazy reference, so its first
    // switch to user space drops nothing under refcount and passes no full barrier
    // after the rq->curr store: exactly what property f forbids. (`idle_task` exists
    // so that hosts do not do this.)
    let (k, mut cpus) = RcKernel::boot(config(1, None));
    let mut idle: RcTask = Task::kthread(0);
    assert!(matches!(idle.scheme.active_mm, ActiveMm::None));
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    let before = cpus[0].stats().full_fences;
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    // Only __schedule's barrier, before the rq->curr store.
    assert_eq!(cpus[0].stats().full_fences - before, 1);
    let v = violations(&cpus);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::NoMembarrierBarrier);
    assert_eq!(v[0].kind.property(), Property::F);
    assert_eq!((v[0].cpu, v[0].mm), (0, m));
}

#[test]
fn none_never_reports_property_f() {
    const { assert!(!NoRefs::MEMBARRIER_SAFE) };
    const { assert!(!NoRefs::FREES_MMS) };
    let (k, mut cpus, mut idle) = boot::<NoRefs>(1, None);
    let mut bare: Task<NoRefs> = Task::kthread(50);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let before = cpus[0].stats().full_fences;
    for _ in 0..3 {
        k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
        k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    }
    k.context_switch(&mut cpus[0], &mut idle[0], &mut bare);
    k.context_switch(&mut cpus[0], &mut bare, &mut t);
    assert_eq!(
        cpus[0].stats().full_fences - before,
        8,
        "none passes no barrier on kernel->user: only __schedule's, one per switch"
    );
    assert_clean(&k, &cpus);
}

/// Property f's user→kernel half: on arm64 with `smp_mb__after_spinlock()` emptied
/// (`arm64-no-mb-after-spinlock`), a switch away from a registered user task stores
/// `rq->curr` with no full barrier after its user accesses; the oracle says so, once
/// per such switch, naming the user task's mm. A switch away from a kernel thread owes
/// nothing.
#[test]
fn property_f_is_reported_when_a_switch_from_user_passes_no_barrier_before_rq_curr() {
    use lazymm::arch::Arm64;
    let m = Some(lazymm::arch::arm64::NO_MB_AFTER_SPINLOCK);
    let (k, mut cpus) = Kernel::<Refcount, Arm64>::boot(config(1, m));
    let mut idle = k.idle_task(&mut cpus[0], 1000);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mm = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
    k.context_switch(&mut cpus[0], &mut t, &mut idle);
    let v = mm_and_kind(&cpus[0].violations);
    assert_eq!(v, vec![(mm, ViolationKind::NoMembarrierBarrierBeforeCurr)]);
    assert_eq!(cpus[0].violations[0].kind.property(), Property::F);
    // The correct arm64 pays smp_mb__after_spinlock() and stays clean.
    let (k, mut cpus) = Kernel::<Refcount, Arm64>::boot(config(1, None));
    let mut idle = k.idle_task(&mut cpus[0], 1000);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
}

/// membarrier() fails with -EPERM for an mm that never registered, so property f is owed
/// only to registered mms: with registration off, neither half is demanded, even of a
/// switch that passes no barrier at all.
#[test]
fn property_f_is_owed_only_to_membarrier_registered_mms() {
    let mut cfg = config(2, None);
    cfg.membarrier_registered = false;
    let (k, mut cpus) = RcKernel::boot(cfg);
    // The bare idle task of the test above: no barrier after the rq->curr store.
    let mut idle: RcTask = Task::kthread(0);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mm = t.mm_id().unwrap();
    assert!(!k.oracle_membarrier_registered(mm));
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
    assert!(k.membarrier_targets(&mut cpus[0], mm).is_none(), "-EPERM");
    // Registering makes the same switch a violation: t leaves CPU 0 (its idle task
    // takes the lazy reference), and CPU 1's bare idle task switches to it.
    k.membarrier_register_private_expedited(&mut cpus[0], mm);
    assert!(k.oracle_membarrier_registered(mm));
    let mut lazy: RcTask = Task::kthread(1);
    k.context_switch(&mut cpus[0], &mut t, &mut lazy);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
    let mut bare1: RcTask = Task::kthread(2);
    k.context_switch(&mut cpus[1], &mut bare1, &mut t);
    let v = mm_and_kind(&cpus[1].violations);
    assert_eq!(v, vec![(mm, ViolationKind::NoMembarrierBarrier)]);
}

/// Review 3's V5: `exit_mm` arms property f's user→kernel half. On arm64 with the
/// barrier `exit_mm` has had since 5bc78502322a removed (`exit-mm-no-membarrier-mb`),
/// the exiting task's `rq->curr` store follows its user accesses with no full barrier,
/// and the oracle names the exiting task's mm; the correct arm64 stays clean, and so
/// does x86 with the same setting, whose `task_lock` is a full barrier.
#[test]
fn exit_mm_without_its_barrier_breaks_property_f_on_arm64_only() {
    use lazymm::arch::{Arm64, X86};
    let m = Some(lazymm::arch::arm64::EXIT_MM_NO_MB);
    let (k, mut cpus) = Kernel::<Refcount, Arm64>::boot(config(1, m));
    let mut idle = k.idle_task(&mut cpus[0], 1000);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mm = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
    k.exit_mm(&mut cpus[0], &mut t);
    let v = mm_and_kind(&cpus[0].violations);
    assert_eq!(v, vec![(mm, ViolationKind::NoMembarrierBarrierBeforeCurr)]);

    let (k, mut cpus) = Kernel::<Refcount, Arm64>::boot(config(1, None));
    let mut idle = k.idle_task(&mut cpus[0], 1000);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);

    let mut cfg = config(1, None);
    cfg.exit_mm_no_mb = true;
    let (k, mut cpus) = Kernel::<Refcount, X86>::boot(cfg);
    let mut idle = k.idle_task(&mut cpus[0], 1000);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    k.context_switch(&mut cpus[0], &mut idle, &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    assert!(cpus[0].violations.is_empty(), "{:?}", cpus[0].violations);
}
