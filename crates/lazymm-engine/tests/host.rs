//! The host layer on its own: a single-threaded host (every CPU stepped from one thread,
//! as a trace replayer or a discrete-event simulator will) runs every workload unchanged,
//! and the runqueue's scheduling rules.

use lazymm::arch::Generic;
use lazymm::scheme::Refcount;
use lazymm::{Arch, Config, Cpu, Kernel, Scheme, Stats, Task};
use lazymm_engine::host::{Host, HostTask, Mailboxes, RqView, Runqueue, Topology, Turn};
use lazymm_engine::workload::{Behavior, Prog};
use lazymm_engine::Workload;
use std::cell::Cell;
use std::time::Duration;

/// A host that plays every CPU from one thread, one turn each in CPU order: wakeups and
/// placements go through the same mailboxes a threaded host uses, time passes as one
/// interrupt point.
struct OneThread<S: Scheme> {
    mail: Mailboxes<S, Prog>,
    stopping: Cell<bool>,
}

impl<S: Scheme> Host<S, Prog> for OneThread<S> {
    fn wake(&self, cpu: usize, task: usize) {
        self.mail.wake(cpu, task);
    }
    fn wake_to(&self, cpu: usize, task: usize, to: usize) {
        self.mail.wake_to(cpu, task, to);
    }
    fn view(&self) -> &RqView {
        self.mail.view()
    }
    fn place(&self, cpu: usize, task: HostTask<S, Prog>) {
        self.mail.place(cpu, task);
    }
    fn stopping(&self) -> bool {
        self.stopping.get()
    }
    fn pass_time<A: Arch>(&self, k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, _: Duration) {
        k.irq_point(cpu);
    }
}

/// Runs `w` on `cpus` CPUs for `rounds` rounds (one turn of each CPU per round), then
/// quiesces phase by phase; returns the summed counters and the violations found.
fn run_one_thread(w: Workload, cpus: usize, rounds: usize) -> (Stats, usize) {
    let mut cfg = Config::new(cpus);
    cfg.nmi_period = 8;
    let (k, boot) = Kernel::<Refcount, Generic>::boot(cfg);
    let host = OneThread {
        mail: Mailboxes::new(Topology::smt2_one_llc(cpus)),
        stopping: Cell::new(false),
    };
    let w = w.build(cpus, None);
    let mut rqs: Vec<Runqueue<Refcount, Generic, Prog>> = boot
        .into_iter()
        .map(|c| {
            let id = c.id as u32;
            Runqueue::new(&k, c, 63, id << 20, id << 20)
        })
        .collect();
    w.setup(&k, &mut rqs);
    for _ in 0..rounds {
        for rq in rqs.iter_mut() {
            k.irq_point(&mut rq.cpu);
            k.nmi_point(&mut rq.cpu);
            let _ = rq.turn(&k, &w, &host);
            // What other CPUs sent arrives after this CPU's turn: a wakeup from another
            // CPU is seen a turn later, as it arrives after a delay on a real machine.
            host.mail.deliver(&k, rq, true);
        }
    }
    host.stopping.set(true);
    for rq in rqs.iter_mut() {
        host.mail.deliver(&k, rq, false);
        rq.quiesce_tasks(&k, |_, _| {});
        Behavior::<Refcount>::quiesce(&w, &k, rq);
    }
    for rq in rqs.iter_mut() {
        rq.quiesce_idle(&k);
    }
    k.check_quiescent(&mut rqs[0].cpu);
    let mut total = Stats::default();
    for rq in &rqs {
        total.add(&rq.cpu.stats());
    }
    (total, k.violations())
}

#[test]
fn a_single_threaded_host_runs_every_workload() {
    for &w in Workload::ALL {
        let (s, violations) = run_one_thread(w, 4, 3000);
        let what = w.name();
        assert_eq!(violations, 0, "{what}");
        assert_eq!(s.mm_created, s.mm_freed, "{what}: leak");
        assert!(s.context_switches >= 3000, "{what}: {s:?}");
        match w {
            Workload::ExitStorm | Workload::Kthread | Workload::Hotplug => {
                assert!(s.exits > 0, "{what}: no exits")
            }
            _ => assert!(s.lazy_switches > 0, "{what}: no lazy switches"),
        }
        if w == Workload::Hotplug {
            assert!(s.offlines > 0, "no CPU went offline");
        }
    }
}

#[test]
fn the_runqueue_picks_round_robin_and_exits_to_the_next() {
    let (k, mut boot) = Kernel::<Refcount, Generic>::boot(Config::new(1));
    let cpu = boot.pop().unwrap();
    let mut rq: Runqueue<Refcount, Generic, ()> = Runqueue::new(&k, cpu, 4, 0, 10);
    assert_eq!(rq.pick(), None, "nothing runnable: idle");
    let mut slots = Vec::new();
    for _ in 0..3 {
        let pid = rq.pid();
        let t = k.fork(&mut rq.cpu, pid).unwrap();
        slots.push(rq.place(HostTask { task: t, prog: () }, true).ok().unwrap());
    }
    assert_eq!(slots, [0, 1, 2]);
    let mut order = Vec::new();
    for _ in 0..4 {
        let next = rq.pick();
        rq.switch_to(&k, next);
        order.push(rq.cur().unwrap());
    }
    assert_eq!(order, [0, 1, 2, 0], "round robin after the current task");
    // Task 0 exits: the last switch goes to the next runnable task, 1.
    let _ = rq.exit(&k, 0);
    assert_eq!(rq.cur(), Some(1));
    assert_eq!(rq.len(), 2);
    // Full: a fourth and fifth task; the fifth does not fit and exits unplaced.
    let pid = rq.pid();
    let t = k.fork(&mut rq.cpu, pid).unwrap();
    assert_eq!(rq.adopt(&k, HostTask { task: t, prog: () }, false), Some(0));
    let pid = rq.pid();
    let t = k.fork(&mut rq.cpu, pid).unwrap();
    assert_eq!(rq.adopt(&k, HostTask { task: t, prog: () }, false), Some(3));
    assert!(rq.is_full());
    let pid = rq.pid();
    let t = k.fork(&mut rq.cpu, pid).unwrap();
    assert_eq!(rq.adopt(&k, HostTask { task: t, prog: () }, true), None);
    assert_eq!(rq.cur(), None, "killing the unplaced task ends on idle");
    rq.quiesce_tasks(&k, |_, _| {});
    assert!(rq.is_empty());
    rq.quiesce_idle(&k);
    k.check_quiescent(&mut rq.cpu);
    assert_eq!(k.violations(), 0, "{:?}", rq.cpu.violations);
    assert_eq!(rq.cpu.stats().mm_created, rq.cpu.stats().mm_freed);
    let _: Task<Refcount> = Task::kthread(0);
}

#[test]
fn a_turn_with_nothing_runnable_fires_the_timer() {
    let (k, mut boot) = Kernel::<Refcount, Generic>::boot(Config::new(1));
    let mut rqs = vec![Runqueue::new(&k, boot.pop().unwrap(), 4, 0, 10)];
    let w = Workload::IdleStorm.build(1, None);
    w.setup(&k, &mut rqs);
    let host = OneThread {
        mail: Mailboxes::new(Topology::smt2_one_llc(1)),
        stopping: Cell::new(false),
    };
    let rq = &mut rqs[0];
    let before = rq.cpu.stats();
    let turns: Vec<Turn> = (0..4).map(|_| rq.turn(&k, &w, &host)).collect();
    // The thread runs and sleeps; then each turn is a whole round trip: to idle, the
    // timer, back to the thread, which sleeps again.
    assert_eq!(turns, [Turn::Ran, Turn::Tick, Turn::Tick, Turn::Tick]);
    assert_eq!(rq.cpu.stats().context_switches - before.context_switches, 7);
    assert_eq!(rq.cpu.stats().lazy_switches - before.lazy_switches, 3);
}

/// Runs `w` on `cpus` CPUs of arch `A` from one thread, checking after every turn that
/// no task is in two runqueues and that every CPU with an mm loaded has its bit in that
/// mm's `mm_cpumask`; returns (migrations, context switches, violations).
fn migrations_on<A: Arch>(w: Workload, cpus: usize, rounds: usize, seed: u64) -> (u64, u64, usize) {
    let mut cfg = Config::new(cpus);
    cfg.speculative_walk_period = 0;
    let (k, boot) = Kernel::<Refcount, A>::boot(cfg);
    let host = OneThread {
        mail: Mailboxes::new(Topology::smt2_one_llc(cpus)),
        stopping: Cell::new(false),
    };
    let w = w.build(cpus, None);
    let mut rqs: Vec<Runqueue<Refcount, A, Prog>> = boot
        .into_iter()
        .map(|c| {
            let id = c.id as u32;
            let mut rq = Runqueue::new(&k, c, 63, id << 20, id << 20);
            rq.set_balance(lazymm_engine::host::BALANCE_ODDS, seed);
            rq
        })
        .collect();
    w.setup(&k, &mut rqs);
    for _ in 0..rounds {
        for i in 0..rqs.len() {
            let rq = &mut rqs[i];
            k.irq_point(&mut rq.cpu);
            let _ = rq.turn(&k, &w, &host);
            host.mail.deliver(&k, rq, true);
            let mut pids: Vec<u32> = rqs
                .iter()
                .flat_map(|rq| {
                    rq.slots()
                        .filter_map(|s| rq.task(s).map(|t| t.pid))
                        .collect::<Vec<_>>()
                })
                .collect();
            let n = pids.len();
            pids.sort_unstable();
            pids.dedup();
            assert_eq!(pids.len(), n, "a task is on two CPUs");
            for c in 0..cpus {
                let mm = k.oracle_cr3(c);
                if !mm.is_init() {
                    let m = k.arena.get(mm).expect("a loaded mm is live");
                    assert!(
                        m.cpumask().test(c),
                        "cpu {c} runs {mm} outside its mm_cpumask"
                    );
                }
            }
        }
    }
    host.stopping.set(true);
    for rq in rqs.iter_mut() {
        host.mail.deliver(&k, rq, false);
        rq.quiesce_tasks(&k, |_, _| {});
        Behavior::<Refcount>::quiesce(&w, &k, rq);
    }
    for rq in rqs.iter_mut() {
        rq.quiesce_idle(&k);
    }
    k.check_quiescent(&mut rqs[0].cpu);
    let moved = rqs.iter().map(|rq| rq.migrations()).sum();
    let switches = rqs.iter().map(|rq| rq.cpu.stats().context_switches).sum();
    (moved, switches, k.violations())
}

#[test]
fn tasks_migrate_keeping_every_invariant_and_deterministically() {
    for w in [Workload::MigrateStorm, Workload::ExitStorm] {
        let a = migrations_on::<Generic>(w, 4, 600, 7);
        assert!(a.0 > 0, "{}: no task moved", w.name());
        assert_eq!(a.2, 0, "{}: violations", w.name());
        assert_eq!(
            a,
            migrations_on::<Generic>(w, 4, 600, 7),
            "{}: same seed, same run",
            w.name()
        );
    }
    // Off, only the workload's own moves remain: exit-storm's members stay put.
    let mut cfg_off = migrations_on::<Generic>(Workload::IdleStorm, 4, 500, 7);
    cfg_off.1 = 0;
    assert_eq!(
        cfg_off,
        (0, 0, 0),
        "idle-storm never overloads a CPU, so nothing moves"
    );
}
