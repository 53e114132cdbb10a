//! The kernel profile's fork and exit items ([`lazymm::Item::TasklistLock`],
//! [`lazymm::Item::PidmapLock`], [`lazymm::Item::ExitMmMmapLock`]): with the item on,
//! `fork`, `clone_thread`, `exit_mm` and `do_exit` record its accesses, each tagged
//! with its kernel field; with it off, none. Deterministic: one thread plays one CPU.

mod common;

use common::*;
use lazymm::arch::Generic;
use lazymm::scheme::Refcount;
use lazymm::sync::{Access, AccessKind, Field};
use lazymm::{Item, Kernel, Profile};

/// The accesses one CPU records over a fork, a thread clone, and both tasks' exits
/// (`do_exit`), under `profile`, in order.
fn fork_and_exit(profile: Profile) -> (Vec<Access>, Vec<Access>) {
    let cfg = lazymm::Config {
        profile,
        ..config(1, None)
    };
    let (k, mut cpus) = Kernel::<Refcount, Generic>::boot(cfg);
    let cpu = &mut cpus[0];
    let mut idle = k.idle_task(cpu, 1000);
    cpu.acct.set_recording(true);
    let mut t = k.fork(cpu, 1).unwrap();
    let mut t2 = k.clone_thread(cpu, &t, 2).unwrap();
    let mut forks = Vec::new();
    cpu.acct.drain_into(&mut forks);
    k.context_switch(cpu, &mut idle, &mut t);
    cpu.acct.drain_into(&mut Vec::new());
    let mut exits = Vec::new();
    k.do_exit(cpu, &mut t);
    cpu.acct.drain_into(&mut exits);
    k.context_switch(cpu, &mut t, &mut t2);
    cpu.acct.drain_into(&mut Vec::new());
    k.do_exit(cpu, &mut t2);
    cpu.acct.drain_into(&mut exits);
    k.context_switch(cpu, &mut t2, &mut idle);
    assert_clean(&k, &cpus);
    (forks, exits)
}

/// `(RMWs, stores)` on `field` among `log`.
fn on(log: &[Access], field: Field) -> (usize, usize) {
    let n = |kind| {
        log.iter()
            .filter(|a| a.tag.field == field && a.kind == kind)
            .count()
    };
    (n(AccessKind::Rmw), n(AccessKind::Store))
}

/// `6.12` with `item` switched as asked.
fn with(item: Item, on: bool) -> Profile {
    let mut p = Profile::by_name("6.12").unwrap();
    p.set(item, on).unwrap();
    p
}

#[test]
fn tasklist_lock_is_taken_once_per_fork_and_twice_per_exit() {
    let (forks, exits) = fork_and_exit(with(Item::TasklistLock, true));
    // Two forks (a process, a thread): one write_lock/unlock each.
    assert_eq!(on(&forks, Field::TasklistLock), (2, 2));
    // Two exits: exit_notify and release_task each.
    assert_eq!(on(&exits, Field::TasklistLock), (4, 4));
    let lines: Vec<u64> = forks
        .iter()
        .chain(&exits)
        .filter(|a| a.tag.field == Field::TasklistLock)
        .map(Access::line)
        .collect();
    assert!(
        lines.windows(2).all(|w| w[0] == w[1]),
        "one machine-wide line"
    );
    let (forks, exits) = fork_and_exit(with(Item::TasklistLock, false));
    assert_eq!(on(&forks, Field::TasklistLock), (0, 0));
    assert_eq!(on(&exits, Field::TasklistLock), (0, 0));
}

#[test]
fn pidmap_lock_is_taken_twice_by_alloc_pid_and_once_by_free_pid() {
    let (forks, exits) = fork_and_exit(with(Item::PidmapLock, true));
    assert_eq!(on(&forks, Field::PidmapLock), (4, 4));
    assert_eq!(on(&exits, Field::PidmapLock), (2, 2));
    let (forks, exits) = fork_and_exit(with(Item::PidmapLock, false));
    assert_eq!(on(&forks, Field::PidmapLock), (0, 0));
    assert_eq!(on(&exits, Field::PidmapLock), (0, 0));
}

#[test]
fn exit_mm_takes_the_mms_mmap_lock_for_reading() {
    let (forks, exits) = fork_and_exit(with(Item::ExitMmMmapLock, true));
    assert_eq!(on(&forks, Field::MmapLock), (0, 0), "fork of a fresh mm");
    // down_read and up_read, both RMWs, for each of the two exiting threads, on the
    // one mm they share.
    assert_eq!(on(&exits, Field::MmapLock), (4, 0));
    let objs: Vec<u32> = exits
        .iter()
        .filter(|a| a.tag.field == Field::MmapLock)
        .map(|a| a.tag.obj)
        .collect();
    assert!(objs.windows(2).all(|w| w[0] == w[1]), "{objs:?}");
    // The lock comes before the exit's mm_users decrement (mmput).
    let first_lock = exits
        .iter()
        .position(|a| a.tag.field == Field::MmapLock)
        .unwrap();
    let first_put = exits
        .iter()
        .position(|a| a.tag.field == Field::MmUsers)
        .unwrap();
    assert!(first_lock < first_put);
    let (_, exits) = fork_and_exit(with(Item::ExitMmMmapLock, false));
    assert_eq!(on(&exits, Field::MmapLock), (0, 0));
}

#[test]
fn the_kernels_users_run_have_the_fork_and_exit_items_and_bare_has_none() {
    for name in ["6.1", "6.6", "6.12", "mainline-2026"] {
        let p = Profile::by_name(name).unwrap();
        for i in [Item::TasklistLock, Item::PidmapLock, Item::ExitMmMmapLock] {
            assert!(p.has(i), "{name} lacks {i}");
        }
    }
    let (forks, exits) = fork_and_exit(Profile::BARE);
    for f in [Field::TasklistLock, Field::PidmapLock, Field::MmapLock] {
        assert_eq!(on(&forks, f), (0, 0), "{f:?}");
        assert_eq!(on(&exits, f), (0, 0), "{f:?}");
    }
}
