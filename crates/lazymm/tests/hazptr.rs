//! The two hazard-pointer schemes, step by step: the teardown stories of their module
//! docs played out on two simulated CPUs, and the oracle catching a broken slot
//! discipline.

use lazymm::arch::Generic;
use lazymm::scheme::{HazptrLuto, HazptrMathieu};
use lazymm::sync::Ordering;
use lazymm::{Config, Cpu, Kernel, LazyMm, MmId, Scheme, Task, TaskMm, ViolationKind};
use std::sync::atomic::AtomicBool;

/// Two CPUs, each running its idle task, and one process with a thread on each CPU.
struct Machine<S: Scheme> {
    k: Kernel<S, Generic>,
    cpus: Vec<Cpu<S, Generic>>,
    idle: Vec<Task<S>>,
    threads: Vec<Task<S>>,
    mm: MmId,
}

fn machine<S: Scheme>() -> Machine<S> {
    let (k, mut cpus) = Kernel::<S, Generic>::boot(Config::new(2));
    let idle: Vec<Task<S>> = cpus
        .iter_mut()
        .enumerate()
        .map(|(i, c)| k.idle_task(c, 100 + i as u32))
        .collect();
    let t0 = k.fork(&mut cpus[0], 1).expect("room");
    let t1 = k.clone_thread(&mut cpus[1], &t0, 2).expect("t0 has an mm");
    let mm = t0.mm_id().expect("user task");
    Machine {
        k,
        cpus,
        idle,
        threads: vec![t0, t1],
        mm,
    }
}

impl<S: Scheme> Machine<S> {
    /// CPU `c`: idle → its thread (kernel→user).
    fn run_thread(&mut self, c: usize) {
        self.k
            .context_switch(&mut self.cpus[c], &mut self.idle[c], &mut self.threads[c]);
    }

    /// CPU `c`: its thread → idle (user→kernel when it is alive, kernel→kernel once it
    /// has exited).
    fn go_idle(&mut self, c: usize) {
        self.k
            .context_switch(&mut self.cpus[c], &mut self.threads[c], &mut self.idle[c]);
    }

    /// CPU `c`: its thread exits (`exit_mm`) and switches away for the last time.
    fn exit_thread(&mut self, c: usize) {
        self.k.exit_mm(&mut self.cpus[c], &mut self.threads[c]);
        self.go_idle(c);
    }

    fn violations(&self) -> Vec<String> {
        self.cpus
            .iter()
            .flat_map(|c| c.violations.iter().map(|v| v.to_string()))
            .collect()
    }
}

#[test]
fn luto_hands_references_over_and_the_last_lazy_cpu_frees() {
    let mut m = machine::<HazptrLuto>();
    // Both threads run, then CPU 0's thread exits: CPU 0 stays lazy on the mm.
    m.run_thread(0);
    m.run_thread(1);
    m.exit_thread(0);
    assert!(m.k.arena.is_live(m.mm));
    // CPU 1's thread exits: mm_users reaches zero on CPU 1, whose scan finds both CPUs
    // lazy on the mm and hands each a reference. No IPI, and nothing is freed yet.
    m.exit_thread(1);
    let count = m.k.arena.get(m.mm).expect("still live").count();
    assert_eq!(count, 2, "one handed-over reference per lazy CPU");
    assert_eq!(m.cpus[1].stats().exits, 1);
    assert_eq!(m.cpus[0].stats().ipis_sent + m.cpus[1].stats().ipis_sent, 0);
    // A kernel→kernel switch keeps the reference: CPU 1 still runs on the mm.
    let mut kworker = Task::kthread(50);
    m.k.context_switch(&mut m.cpus[1], &mut m.idle[1], &mut kworker);
    m.k.context_switch(&mut m.cpus[1], &mut kworker, &mut m.idle[1]);
    assert_eq!(m.k.arena.get(m.mm).expect("still live").count(), 2);
    // Each CPU drops its reference when it leaves the mm; the last one frees it.
    let mut other = m.k.fork(&mut m.cpus[0], 3).expect("room");
    m.k.context_switch(&mut m.cpus[0], &mut m.idle[0], &mut other);
    assert!(m.k.arena.is_live(m.mm), "CPU 1 is still lazy on the mm");
    m.k.quiesce_cpu(&mut m.cpus[1], &mut m.idle[1]);
    assert!(!m.k.arena.is_live(m.mm), "the last lazy CPU freed it");
    assert_eq!(m.cpus[1].stats().mm_freed, 1);
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

#[test]
fn mathieu_shoots_down_only_the_cpus_whose_slot_holds_the_mm() {
    let mut m = machine::<HazptrMathieu>();
    m.run_thread(0);
    m.run_thread(1);
    m.exit_thread(0);
    // CPU 0 idles lazily on the mm, answering IPIs, while CPU 1's thread exits.
    let stop = AtomicBool::new(false);
    let Machine {
        k,
        cpus,
        idle,
        threads,
        ..
    } = &mut m;
    let (c0, c1) = cpus.split_at_mut(1);
    let (cpu0, cpu1) = (&mut c0[0], &mut c1[0]);
    std::thread::scope(|s| {
        let k = &*k;
        let stop = &stop;
        s.spawn(move || {
            while !stop.load(Ordering::Acquire) {
                k.irq_point(cpu0);
                std::thread::yield_now();
            }
        });
        k.exit_mm(cpu1, &mut threads[1]);
        k.context_switch(cpu1, &mut threads[1], &mut idle[1]);
        stop.store(true, Ordering::Release);
    });
    // The last mmdrop ran cleanup_lazy_tlbs on CPU 1: retire_lazy_mm_hp's two serial
    // IPIs (do_shoot_lazy_tlb, then do_check_lazy_tlb), to CPU 0 only (CPU 1's own
    // slot was handled by direct calls), and the mm is gone.
    assert!(!m.k.arena.is_live(m.mm));
    assert_eq!(m.cpus[1].stats().ipis_sent, 2);
    assert_eq!(m.cpus[0].stats().ipis_received, 2);
    assert!(m.k.oracle_cr3(0).is_init(), "CPU 0 was moved to init_mm");
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

#[test]
fn mathieu_reports_a_second_lazy_mm_on_one_cpu() {
    let mut m = machine::<HazptrMathieu>();
    let other = m.k.fork(&mut m.cpus[0], 9).expect("room");
    let (Some(TaskMm::User(ua)), Some(TaskMm::User(ub))) = (&m.threads[0].mm, &other.mm) else {
        panic!("two user tasks")
    };
    let a = ua.id();
    // Publishing while the slot is held breaks property d, and the oracle says so.
    let _first = HazptrMathieu::mmgrab_lazy_tlb(&m.k, &mut m.cpus[0], &LazyMm::of_user(ua));
    assert!(m.cpus[0].violations.is_empty());
    let _second = HazptrMathieu::mmgrab_lazy_tlb(&m.k, &mut m.cpus[0], &LazyMm::of_user(ub));
    let kinds: Vec<_> = m.cpus[0]
        .violations
        .iter()
        .map(|v| v.kind.clone())
        .collect();
    assert_eq!(kinds, vec![ViolationKind::HazardSlotOccupied { held: a }]);
}

/// The case the patch leaves to `sched_force_init_mm`: on x86 the freed-tables flush of
/// `exit_mmap` moves a lazy CPU to `init_mm` behind the core's back, so its slot (and
/// `current->active_mm`) still name the mm; then that CPU goes offline before the last
/// `mmdrop`. Nobody clears an offline CPU's slot on its behalf and an IPI to it is not
/// delivered, so the teardown would wait for ever if the slot outlived the CPU; it does
/// not, because `sched_force_init_mm` reads `active_mm`, not what is loaded, and its
/// `mmdrop_lazy_tlb` clears the slot before the CPU leaves `cpu_online_mask`.
#[test]
fn mathieu_an_offline_cpu_leaves_no_slot_behind_even_after_x86_unlazied_it() {
    use lazymm::arch::X86;
    let mut cfg = Config::new(2);
    cfg.speculative_walk_period = 0;
    let (k, mut cpus) = Kernel::<HazptrMathieu, X86>::boot(cfg);
    let mut idle0 = k.idle_task(&mut cpus[0], 100);
    let mut idle1 = k.idle_task(&mut cpus[1], 101);
    let mut t0 = k.fork(&mut cpus[0], 1).expect("room");
    let mut t1 = k.clone_thread(&mut cpus[1], &t0, 2).expect("t0 has an mm");
    let mm = t0.mm_id().expect("user task");
    let (c0, c1) = cpus.split_at_mut(1);
    let (cpu0, cpu1) = (&mut c0[0], &mut c1[0]);
    k.context_switch(cpu0, &mut idle0, &mut t0);
    k.context_switch(cpu1, &mut idle1, &mut t1);
    // CPU 0's thread exits: CPU 0 idles lazily on mm, its slot holds it.
    k.exit_mm(cpu0, &mut t0);
    k.context_switch(cpu0, &mut t0, &mut idle0);
    let slot0 = |k: &Kernel<HazptrMathieu, X86>| k.cpus[0].scheme.oracle_load(Ordering::Relaxed);
    assert_eq!(slot0(&k), mm.encode());
    // A reference that keeps mm_count above zero past the last mmput.
    let held = k.mmgrab(cpu1, mm);
    // CPU 1's thread exits: exit_mmap's freed-tables flush IPIs CPU 0, which answers on
    // its own thread and leaves mm for init_mm; the slot still names mm.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (k, stop) = (&k, &stop);
        let cpu0 = &mut *cpu0;
        s.spawn(move || {
            while !stop.load(Ordering::Acquire) {
                k.irq_point(cpu0);
                std::thread::yield_now();
            }
        });
        k.exit_mm(cpu1, &mut t1);
        k.context_switch(cpu1, &mut t1, &mut idle1);
        stop.store(true, Ordering::Release);
    });
    assert!(
        k.oracle_cr3(0).is_init(),
        "x86's flush moved CPU 0 to init_mm"
    );
    assert_eq!(slot0(&k), mm.encode(), "the slot still names the mm");
    assert!(k.arena.is_live(mm));
    // CPU 0 goes offline: sched_force_init_mm retires the slot on the way.
    k.cpu_offline(cpu0, &mut idle0, |_, _| {});
    assert_eq!(slot0(&k), 0, "sched_force_init_mm cleared the slot");
    // The last mmdrop: the scan finds no holder, sends nothing, and frees.
    let sent = cpu1.stats().ipis_sent;
    k.mmdrop(cpu1, held);
    assert!(!k.arena.is_live(mm));
    assert_eq!(cpu1.stats().ipis_sent, sent, "no IPI to the offline CPU");
    let v: Vec<String> = [&*cpu0, &*cpu1]
        .iter()
        .flat_map(|c| c.violations.iter().map(|v| v.to_string()))
        .collect();
    assert!(v.is_empty(), "{v:?}");
}
