//! Helpers shared by the model's integration tests.
//!
//! Every test drives all of its simulated CPUs from the one test thread, interleaving
//! their calls in a fixed order, so each run is the same run. Random speculative walks
//! are off (`speculative_walk_period: 0`); a test that wants one calls
//! `Kernel::speculative_walk` itself. Nothing here sends an IPI to another CPU
//! (`refcount` and `none` on `generic` never do), so no call waits for a CPU that this
//! thread is not playing at that moment.
#![allow(dead_code)]

use lazymm::arch::Generic;
use lazymm::scheme::{NoRefs, Refcount};
use lazymm::{Config, Cpu, Kernel, MmId, Mutant, Property, Scheme, Stats, Task, Violation};

/// A `refcount` machine on `generic`.
pub type RcKernel = Kernel<Refcount, Generic>;
/// One CPU of a `refcount` machine.
pub type RcCpu = Cpu<Refcount, Generic>;
/// A task under `refcount`.
pub type RcTask = Task<Refcount>;
/// A `none` machine on `generic`.
pub type NoneKernel = Kernel<NoRefs, Generic>;
/// A booted machine: the kernel, its CPUs and each CPU's idle task.
pub type Machine<S> = (Kernel<S, Generic>, Vec<Cpu<S, Generic>>, Vec<Task<S>>);

/// A deterministic configuration: no random speculative walks.
pub fn config(nr_cpus: usize, mutant: Option<Mutant>) -> Config {
    Config {
        mutant,
        speculative_walk_period: 0,
        ..Config::new(nr_cpus)
    }
}

/// Boots a deterministic machine and makes each CPU's idle task (pid 1000 + cpu) with
/// `Kernel::idle_task`, so it runs lazily on init_mm holding the boot reference.
pub fn boot<S: Scheme>(nr_cpus: usize, mutant: Option<Mutant>) -> Machine<S> {
    let (k, mut cpus) = Kernel::<S, Generic>::boot(config(nr_cpus, mutant));
    let idle = cpus
        .iter_mut()
        .map(|c| {
            let pid = 1000 + c.id as u32;
            k.idle_task(c, pid)
        })
        .collect();
    (k, cpus, idle)
}

/// How many mms other than init_mm are live.
pub fn live<S: Scheme>(k: &Kernel<S, Generic>) -> usize {
    k.arena.live_ids().len()
}

/// `mm_count` of a live mm (panics if it was freed: the caller expects it alive).
pub fn count<S: Scheme>(k: &Kernel<S, Generic>, id: MmId) -> usize {
    k.arena.get(id).expect("mm should be live").count()
}

/// `mm_users` of a live mm (panics if it was freed).
pub fn users<S: Scheme>(k: &Kernel<S, Generic>, id: MmId) -> usize {
    k.arena.get(id).expect("mm should be live").users()
}

/// `mm_cpumask` of a live mm (panics if it was freed).
pub fn cpumask<S: Scheme>(k: &Kernel<S, Generic>, id: MmId) -> u64 {
    k.arena
        .get(id)
        .expect("mm should be live")
        .cpumask()
        .words()[0]
}

/// Every violation every CPU recorded.
pub fn violations<S: Scheme>(cpus: &[Cpu<S, Generic>]) -> Vec<Violation> {
    cpus.iter()
        .flat_map(|c| c.violations.iter().cloned())
        .collect()
}

/// The properties broken, in the order found, CPU by CPU.
pub fn properties<S: Scheme>(cpus: &[Cpu<S, Generic>]) -> Vec<Property> {
    violations(cpus).iter().map(|v| v.kind.property()).collect()
}

/// Fails with every violation listed if any CPU recorded one.
pub fn assert_clean<S: Scheme>(k: &Kernel<S, Generic>, cpus: &[Cpu<S, Generic>]) {
    let v = violations(cpus);
    assert!(
        v.is_empty() && k.violations() == 0,
        "expected no violations, got {} (kernel count {}):\n{}",
        v.len(),
        k.violations(),
        v.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The sum of every CPU's counters.
pub fn total_stats<S: Scheme>(cpus: &[Cpu<S, Generic>]) -> Stats {
    let mut t = Stats::default();
    for c in cpus {
        t.add(&c.stats());
    }
    t
}

/// What [`exit_race`] saw along the way.
pub struct ExitRace {
    /// The machine after the scenario (every task exited, every CPU quiesced).
    pub k: RcKernel,
    /// Its CPUs.
    pub cpus: Vec<RcCpu>,
    /// The mm of the process whose last user exits on CPU 1 while CPU 0 is lazy on it.
    pub m: MmId,
    /// Whether `m` was still live right after its last user exited.
    pub m_live_after_exit: bool,
    /// The mm forked on CPU 1 after that exit (it reuses `m`'s slot if `m` was freed).
    pub q: MmId,
    /// `mm_count` of `q` right after CPU 1 switched into it, dropping its own lazy
    /// reference to `m` (a stale drop must not touch `q`).
    pub q_count: usize,
    /// Whether `m` was still live after CPU 1's switch (CPU 0 still lazy on it).
    pub m_live_before_cpu0_switch: bool,
    /// Whether `m` was still live after CPU 0 switched to `r`.
    pub m_live_after_cpu0_switch: bool,
    /// CPU 0's `mm_freed` right after that switch.
    pub cpu0_freed_at_switch: u64,
}

/// The race `refcount-no-grab` loses, on two CPUs, in one fixed interleaving:
///
/// 1. CPU 0 runs user task `t` (mm `m`, one thread) and switches to idle: lazy on `m`.
/// 2. `t` migrates to CPU 1, runs there and exits: the last real user of `m` is gone.
/// 3. CPU 0, still lazy on `m`, makes a speculative page walk.
/// 4. CPU 1 forks `q` and switches to it (dropping its own lazy reference to `m`).
/// 5. CPU 0 forks `r` and switches to it (dropping its lazy reference to `m`).
/// 6. `q` and `r` exit, both CPUs quiesce, and both check for leaks.
///
/// Under `refcount`, `m` lives until step 5 and is freed there. Without the lazy grab,
/// step 2 frees `m` while both CPUs still have it loaded.
pub fn exit_race(mutant: Option<Mutant>) -> ExitRace {
    let (k, mut cpus, mut idle) = boot::<Refcount>(2, mutant);
    let (c0, c1) = cpus.split_at_mut(1);
    let (c0, c1) = (&mut c0[0], &mut c1[0]);
    let (i0, i1) = idle.split_at_mut(1);
    let (i0, i1) = (&mut i0[0], &mut i1[0]);

    let mut t = k.fork(c0, 1).unwrap();
    let m = t.mm_id().unwrap();
    // 1.
    k.context_switch(c0, i0, &mut t);
    k.context_switch(c0, &mut t, i0);
    // 2.
    k.context_switch(c1, i1, &mut t);
    k.exit_mm(c1, &mut t);
    let m_live_after_exit = k.arena.is_live(m);
    k.context_switch(c1, &mut t, i1);
    // 3.
    k.speculative_walk(c0);
    // 4.
    let mut q = k.fork(c1, 2).unwrap();
    let qid = q.mm_id().unwrap();
    k.context_switch(c1, i1, &mut q);
    let q_count = k.arena.get(qid).map_or(usize::MAX, |mm| mm.count());
    let m_live_before_cpu0_switch = k.arena.is_live(m);
    // 5.
    let mut r = k.fork(c0, 3).unwrap();
    k.context_switch(c0, i0, &mut r);
    let m_live_after_cpu0_switch = k.arena.is_live(m);
    let cpu0_freed_at_switch = c0.stats().mm_freed;
    // 6.
    k.exit_mm(c1, &mut q);
    k.context_switch(c1, &mut q, i1);
    k.exit_mm(c0, &mut r);
    k.context_switch(c0, &mut r, i0);
    k.quiesce_cpu(c0, i0);
    k.quiesce_cpu(c1, i1);
    k.check_quiescent(c0);
    k.check_quiescent(c1);

    ExitRace {
        k,
        cpus,
        m,
        m_live_after_exit,
        q: qid,
        q_count,
        m_live_before_cpu0_switch,
        m_live_after_cpu0_switch,
        cpu0_freed_at_switch,
    }
}

/// Whether `cpu` has `mm` loaded as generic code sees it, read under a guard as the
/// model requires (the borrow cannot outlive it).
pub fn loaded_is<S: Scheme>(cpu: &mut Cpu<S, Generic>, mm: MmId) -> bool {
    let irq = cpu.local_irq_disable();
    let is = cpu.lazy_mm(&irq).is(mm);
    cpu.local_irq_enable(irq);
    is
}
