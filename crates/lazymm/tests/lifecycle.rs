//! An mm's life under `refcount` on `generic`: fork, clone, exit, exec,
//! `kthread_use_mm`, CPU hotplug and quiescence, checked counter by counter.

mod common;

use common::*;
use lazymm::scheme::refcount::ActiveMm;
use lazymm::scheme::{NoRefs, Refcount};
use lazymm::{MmId, MmUsers, Task, TaskMm};

/// Takes one more real user of `t`'s mm (`mmget`), as a caller of `kthread_use_mm` must.
fn mmget_of(k: &RcKernel, cpu: &mut RcCpu, t: &RcTask) -> MmUsers {
    match &t.mm {
        Some(TaskMm::User(u)) => k.mmget(cpu, u),
        other => panic!("not a user task: {other:?}"),
    }
}

fn is_lazy_on(t: &RcTask, mm: MmId) -> bool {
    matches!(&t.scheme.active_mm, ActiveMm::Lazy(r) if r.id() == mm)
}

#[test]
fn fork_makes_an_mm_with_one_user_and_one_count() {
    let (k, mut cpus, _idle) = boot::<Refcount>(1, None);
    let t = k.fork(&mut cpus[0], 7).unwrap();
    let m = t.mm_id().unwrap();
    assert!(!m.is_init());
    assert!(k.arena.is_live(m));
    assert_eq!((users(&k, m), count(&k, m)), (1, 1));
    assert_eq!(cpumask(&k, m), 0, "never loaded yet");
    assert!(t.is_user() && !t.is_kthread());
    assert_eq!(t.pid, 7);
    assert!(matches!(t.scheme.active_mm, ActiveMm::Own(id) if id == m));
    assert_eq!(cpus[0].stats().mm_created, 1);
    assert_eq!(live(&k), 1);

    let u = k.fork(&mut cpus[0], 8).unwrap();
    assert_ne!(u.mm_id().unwrap(), m, "each process has its own mm");
    assert_eq!(cpus[0].stats().mm_created, 2);
    assert_clean(&k, &cpus);
}

#[test]
fn clone_thread_shares_the_mm() {
    let (k, mut cpus, idle) = boot::<Refcount>(1, None);
    let t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    let t2 = k.clone_thread(&mut cpus[0], &t, 2).unwrap();
    let t3 = k.clone_thread(&mut cpus[0], &t2, 3).unwrap();
    assert_eq!(t2.mm_id(), Some(m));
    assert_eq!(t3.mm_id(), Some(m));
    assert_eq!(users(&k, m), 3);
    assert_eq!(count(&k, m), 1, "mm_users holds one mm_count as a whole");
    assert_eq!(cpus[0].stats().mm_created, 1, "no new mm");
    assert!(
        k.clone_thread(&mut cpus[0], &idle[0], 4).is_none(),
        "a kernel thread has no mm to share"
    );
    assert_clean(&k, &cpus);
}

#[test]
fn exit_mm_of_a_thread_keeps_the_mm_for_the_others() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let t2 = k.clone_thread(&mut cpus[0], &t, 2).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);

    k.exit_mm(&mut cpus[0], &mut t);
    assert!(t.mm.is_none() && !t.is_user());
    assert!(
        is_lazy_on(&t, m),
        "the exiting task runs on on its mm lazily"
    );
    assert_eq!(users(&k, m), 1);
    assert_eq!(count(&k, m), 2, "mm_users' count plus the exit's lazy one");
    assert_eq!(cpus[0].stats().exits, 0, "no teardown yet");
    assert_eq!(t2.mm_id(), Some(m));
    assert_clean(&k, &cpus);
}

#[test]
fn exit_mm_of_last_user_defers_the_free_to_the_next_kernel_to_user_switch() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut u = k.fork(&mut cpus[0], 2).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);

    k.exit_mm(&mut cpus[0], &mut t);
    // __mmput ran (exit_mmap freed the tables) but this CPU's lazy reference keeps the
    // struct and the root alive while CR3 still points at it.
    assert_eq!(cpus[0].stats().exits, 1);
    assert_eq!(cpus[0].stats().mm_freed, 0);
    assert!(k.arena.is_live(m));
    assert_eq!((users(&k, m), count(&k, m)), (0, 1));
    assert_eq!(k.oracle_cr3(0), m);
    assert!(is_lazy_on(&t, m));
    k.speculative_walk(&mut cpus[0]);
    assert_clean(&k, &cpus);

    // The exited task switches to another process: finish_task_switch frees m.
    k.context_switch(&mut cpus[0], &mut t, &mut u);
    assert_eq!(cpus[0].stats().mm_freed, 1);
    assert!(
        !k.arena.is_live(m),
        "the handle must be stale after the free"
    );
    assert!(k.arena.get(m).is_err());
    assert!(matches!(t.scheme.active_mm, ActiveMm::None));
    assert_eq!(k.oracle_cr3(0), u.mm_id().unwrap());
    assert_eq!(live(&k), 1);
    assert_clean(&k, &cpus);
}

#[test]
fn exit_mm_then_idle_then_user_frees_on_the_idle_tasks_switch() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut u = k.fork(&mut cpus[0], 2).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    // The exited task is a kernel task now: kernel->kernel hands the reference over.
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert!(is_lazy_on(&idle[0], m));
    assert_eq!(
        cpus[0].stats().lazy_switches,
        0,
        "not a user->kernel switch"
    );
    assert_eq!(count(&k, m), 1);
    assert_eq!(cpus[0].stats().mm_freed, 0);

    k.context_switch(&mut cpus[0], &mut idle[0], &mut u);
    assert_eq!(cpus[0].stats().mm_freed, 1);
    assert!(!k.arena.is_live(m));
    assert_clean(&k, &cpus);
}

#[test]
fn exec_mmap_from_a_user_task_frees_the_old_mm_of_its_last_user() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let old = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);

    let new = k.mm_alloc(&mut cpus[0]).unwrap();
    let n = new.id();
    k.exec_mmap(&mut cpus[0], &mut t, new);
    assert!(!k.arena.is_live(old), "the last user's old mm is freed");
    assert_eq!(cpus[0].stats().mm_freed, 1);
    assert_eq!(cpus[0].stats().exits, 1);
    assert_eq!(t.mm_id(), Some(n));
    assert!(t.is_user() && !t.is_kthread());
    assert!(matches!(t.scheme.active_mm, ActiveMm::Own(id) if id == n));
    assert_eq!((users(&k, n), count(&k, n)), (1, 1));
    assert_eq!(k.oracle_cr3(0), n);
    assert_eq!(cpumask(&k, n), 1);
    assert_clean(&k, &cpus);
}

#[test]
fn exec_mmap_from_a_user_task_keeps_an_old_mm_other_threads_use() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let _t2 = k.clone_thread(&mut cpus[0], &t, 2).unwrap();
    let old = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    let new = k.mm_alloc(&mut cpus[0]).unwrap();
    k.exec_mmap(&mut cpus[0], &mut t, new);
    assert!(k.arena.is_live(old));
    assert_eq!((users(&k, old), count(&k, old)), (1, 1));
    assert_eq!(cpus[0].stats().mm_freed, 0);
    assert_clean(&k, &cpus);
}

#[test]
fn exec_mmap_from_a_kernel_thread_drops_its_lazy_mm() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut kworker: RcTask = Task::kthread(50);
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut kworker);
    assert_eq!(count(&k, m), 2);

    let new = k.mm_alloc(&mut cpus[0]).unwrap();
    let n = new.id();
    k.exec_mmap(&mut cpus[0], &mut kworker, new);
    assert_eq!(count(&k, m), 1, "the lazy reference is dropped");
    assert_eq!(users(&k, m), 1);
    assert!(kworker.is_user() && !kworker.is_kthread());
    assert_eq!(kworker.mm_id(), Some(n));
    assert!(matches!(kworker.scheme.active_mm, ActiveMm::Own(id) if id == n));
    assert_eq!(k.oracle_cr3(0), n);
    assert_clean(&k, &cpus);
}

#[test]
fn exec_mmap_from_a_kernel_thread_frees_a_lazy_mm_whose_users_are_gone() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!((users(&k, m), count(&k, m)), (0, 1));

    let new = k.mm_alloc(&mut cpus[0]).unwrap();
    k.exec_mmap(&mut cpus[0], &mut idle[0], new);
    assert!(!k.arena.is_live(m));
    assert_eq!(cpus[0].stats().mm_freed, 1);
    assert_clean(&k, &cpus);
}

#[test]
fn kthread_use_mm_of_its_own_lazy_mm_holds_both_references() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let mut kworker: RcTask = Task::kthread(50);
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    let u = mmget_of(&k, &mut cpus[0], &t);
    k.context_switch(&mut cpus[0], &mut t, &mut kworker);
    assert!(is_lazy_on(&kworker, m));
    assert_eq!((users(&k, m), count(&k, m)), (2, 2));

    // mm == active_mm: it still grabs its own reference and drops the lazy one.
    let before = cpus[0].stats();
    k.kthread_use_mm(&mut cpus[0], &mut kworker, &u);
    assert_eq!(
        cpus[0].stats().shared_rmw - before.shared_rmw,
        2,
        "one mmgrab and one mmdrop_lazy_tlb, though the mm is the same"
    );
    assert!(cpus[0].stats().full_fences > before.full_fences);
    assert_eq!((users(&k, m), count(&k, m)), (2, 2));
    assert!(matches!(&kworker.mm, Some(TaskMm::Kthread(r)) if r.id() == m));
    assert!(matches!(kworker.scheme.active_mm, ActiveMm::Own(id) if id == m));
    assert!(kworker.is_kthread() && kworker.is_user());
    assert_eq!(
        k.cpus[0].oracle_rq_curr_mm(),
        Some(m),
        "membarrier now sees the mm"
    );
    assert_eq!(k.oracle_cr3(0), m);

    k.kthread_unuse_mm(&mut cpus[0], &mut kworker);
    assert!(kworker.mm.is_none());
    assert!(is_lazy_on(&kworker, m), "it keeps running on the mm lazily");
    assert_eq!((users(&k, m), count(&k, m)), (2, 2));
    assert_eq!(k.cpus[0].oracle_rq_curr_mm(), None);
    assert_eq!(k.oracle_cr3(0), m);

    k.mmput(&mut cpus[0], u);
    assert_eq!((users(&k, m), count(&k, m)), (1, 2));
    // Back to the user task: the lazy reference goes, the original state returns.
    k.context_switch(&mut cpus[0], &mut kworker, &mut t);
    assert_eq!((users(&k, m), count(&k, m)), (1, 1));
    assert_clean(&k, &cpus);
}

#[test]
fn kthread_use_mm_of_another_mm_switches_and_drops_the_lazy_one() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut a = k.fork(&mut cpus[0], 1).unwrap();
    let b = k.fork(&mut cpus[0], 2).unwrap();
    let (ma, mb) = (a.mm_id().unwrap(), b.mm_id().unwrap());
    let mut kworker: RcTask = Task::kthread(50);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut a);
    k.context_switch(&mut cpus[0], &mut a, &mut kworker);
    assert_eq!(count(&k, ma), 2);

    let u = mmget_of(&k, &mut cpus[0], &b);
    k.kthread_use_mm(&mut cpus[0], &mut kworker, &u);
    assert_eq!(count(&k, ma), 1, "the lazy reference to a is dropped");
    assert_eq!((users(&k, mb), count(&k, mb)), (2, 2));
    assert_eq!(k.oracle_cr3(0), mb);
    assert_eq!(cpumask(&k, mb), 1);

    k.kthread_unuse_mm(&mut cpus[0], &mut kworker);
    assert!(is_lazy_on(&kworker, mb));
    assert_eq!((users(&k, mb), count(&k, mb)), (2, 2));
    k.mmput(&mut cpus[0], u);
    assert_eq!((users(&k, mb), count(&k, mb)), (1, 2));
    assert_clean(&k, &cpus);
}

#[test]
fn kthread_use_mm_keeps_an_mm_alive_after_its_last_task_exits() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(2, None);
    let mut t = k.fork(&mut cpus[1], 1).unwrap();
    let m = t.mm_id().unwrap();
    let mut kworker: RcTask = Task::kthread(50);
    // An io_uring-style worker on CPU 0 adopts t's mm.
    let u = mmget_of(&k, &mut cpus[1], &t);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut kworker);
    k.kthread_use_mm(&mut cpus[0], &mut kworker, &u);
    // Meanwhile t runs and exits on CPU 1.
    k.context_switch(&mut cpus[1], &mut idle[1], &mut t);
    k.exit_mm(&mut cpus[1], &mut t);
    k.context_switch(&mut cpus[1], &mut t, &mut idle[1]);
    assert!(k.arena.is_live(m));
    assert_eq!(users(&k, m), 1, "the worker's caller is the last real user");

    k.kthread_unuse_mm(&mut cpus[0], &mut kworker);
    k.mmput(&mut cpus[0], u);
    assert_eq!(users(&k, m), 0);
    assert!(k.arena.is_live(m), "two CPUs still hold it lazily");
    k.quiesce_cpu(&mut cpus[1], &mut idle[1]);
    assert!(k.arena.is_live(m));
    k.context_switch(&mut cpus[0], &mut kworker, &mut idle[0]);
    k.quiesce_cpu(&mut cpus[0], &mut idle[0]);
    assert!(!k.arena.is_live(m));
    assert_eq!(total_stats(&cpus).mm_freed, 1);
    assert_clean(&k, &cpus);
}

#[test]
fn sched_force_init_mm_moves_to_init_mm_and_drops_the_lazy_reference() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    assert_eq!(count(&k, m), 2);

    k.sched_force_init_mm(&mut cpus[0], &mut idle[0]);
    assert_eq!(k.oracle_cr3(0), MmId::INIT);
    assert_eq!(k.oracle_cr3(0), MmId::INIT);
    assert!(loaded_is(&mut cpus[0], MmId::INIT));
    assert_eq!(count(&k, m), 1);
    assert!(is_lazy_on(&idle[0], MmId::INIT));

    // Idempotent: already on init_mm, nothing changes.
    let before = cpus[0].stats();
    k.sched_force_init_mm(&mut cpus[0], &mut idle[0]);
    assert_eq!(cpus[0].stats().shared_rmw, before.shared_rmw);
    assert!(is_lazy_on(&idle[0], MmId::INIT));

    // And the CPU can go back to user space cleanly.
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    assert_eq!(k.oracle_cr3(0), m);
    assert_eq!(count(&k, m), 1);
    assert_clean(&k, &cpus);
}

#[test]
fn cpu_offline_frees_an_exited_mm_it_held_lazily() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(2, None);
    let mut t = k.fork(&mut cpus[1], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[1], &mut idle[1], &mut t);
    k.exit_mm(&mut cpus[1], &mut t);
    k.context_switch(&mut cpus[1], &mut t, &mut idle[1]);
    assert!(k.arena.is_live(m));
    assert_eq!(k.oracle_online_mask().words()[0], 0b11);

    k.cpu_offline(&mut cpus[1], &mut idle[1], |_, _| {});
    assert_eq!(k.oracle_cr3(1), MmId::INIT);
    assert_eq!(k.oracle_cr3(1), MmId::INIT);
    assert!(
        !k.arena.is_live(m),
        "the last (lazy) reference went with it"
    );
    assert_eq!(cpus[1].stats().mm_freed, 1);
    assert!(!cpus[1].is_online() && !k.oracle_cpu_online(1));
    assert_eq!(k.oracle_online_mask().words()[0], 0b01);

    k.cpu_online(&mut cpus[1]);
    assert!(cpus[1].is_online() && k.oracle_cpu_online(1));
    assert_eq!(k.oracle_online_mask().words()[0], 0b11);
    let mut u = k.fork(&mut cpus[1], 2).unwrap();
    k.context_switch(&mut cpus[1], &mut idle[1], &mut u);
    assert_eq!(k.oracle_cr3(1), u.mm_id().unwrap());
    assert_clean(&k, &cpus);
}

#[test]
fn full_quiesce_frees_every_mm_and_leaks_nothing() {
    let (k, mut cpus, mut idle) = boot::<Refcount>(3, None);
    let init_count = count(&k, MmId::INIT);
    // Process A: two threads on CPUs 0 and 1; process B on CPU 2, then it execs.
    let mut a0 = k.fork(&mut cpus[0], 1).unwrap();
    let mut a1 = k.clone_thread(&mut cpus[0], &a0, 2).unwrap();
    let mut b = k.fork(&mut cpus[2], 3).unwrap();
    let mut kworker: RcTask = Task::kthread(50);
    k.context_switch(&mut cpus[0], &mut idle[0], &mut a0);
    k.context_switch(&mut cpus[1], &mut idle[1], &mut a1);
    k.context_switch(&mut cpus[2], &mut idle[2], &mut b);
    // Lazy round trips on every CPU.
    for _ in 0..3 {
        k.context_switch(&mut cpus[0], &mut a0, &mut idle[0]);
        k.context_switch(&mut cpus[1], &mut a1, &mut idle[1]);
        k.context_switch(&mut cpus[0], &mut idle[0], &mut a0);
        k.context_switch(&mut cpus[1], &mut idle[1], &mut a1);
    }
    let new = k.mm_alloc(&mut cpus[2]).unwrap();
    k.exec_mmap(&mut cpus[2], &mut b, new);
    // A kernel worker on CPU 2 borrows A's mm.
    let u = mmget_of(&k, &mut cpus[2], &a0);
    k.context_switch(&mut cpus[2], &mut b, &mut kworker);
    k.kthread_use_mm(&mut cpus[2], &mut kworker, &u);
    k.kthread_unuse_mm(&mut cpus[2], &mut kworker);
    k.mmput(&mut cpus[2], u);
    // Everyone exits.
    k.context_switch(&mut cpus[2], &mut kworker, &mut b);
    k.exit_mm(&mut cpus[0], &mut a0);
    k.context_switch(&mut cpus[0], &mut a0, &mut idle[0]);
    k.exit_mm(&mut cpus[1], &mut a1);
    k.context_switch(&mut cpus[1], &mut a1, &mut idle[1]);
    k.exit_mm(&mut cpus[2], &mut b);
    k.context_switch(&mut cpus[2], &mut b, &mut idle[2]);
    assert!(live(&k) > 0, "lazy CPUs still hold mms before quiescing");

    for (cpu, idle) in cpus.iter_mut().zip(idle.iter_mut()) {
        k.quiesce_cpu(cpu, idle);
        assert_eq!(k.oracle_cr3(cpu.id), MmId::INIT);
    }
    for cpu in cpus.iter_mut() {
        k.check_quiescent(cpu);
    }
    assert_clean(&k, &cpus);
    let s = total_stats(&cpus);
    assert_eq!(s.mm_created, 3);
    assert_eq!(s.mm_created, s.mm_freed);
    assert_eq!(live(&k), 0);
    assert_eq!(
        count(&k, MmId::INIT),
        init_count,
        "each idle task holds init_mm again, as at boot"
    );
}

#[test]
fn none_never_frees_and_never_reports_leaks() {
    let (k, mut cpus, mut idle) = boot::<NoRefs>(1, None);
    let mut t = k.fork(&mut cpus[0], 1).unwrap();
    let m = t.mm_id().unwrap();
    k.context_switch(&mut cpus[0], &mut idle[0], &mut t);
    k.exit_mm(&mut cpus[0], &mut t);
    k.context_switch(&mut cpus[0], &mut t, &mut idle[0]);
    k.quiesce_cpu(&mut cpus[0], &mut idle[0]);
    assert!(k.arena.is_live(m), "none never frees an mm");
    assert_eq!(cpus[0].stats().mm_freed, 0);
    assert_eq!(k.oracle_cr3(0), MmId::INIT);
    k.check_quiescent(&mut cpus[0]);
    assert_clean(&k, &cpus);
}
