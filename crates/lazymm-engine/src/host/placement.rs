//! Where a wakeup runs: the machine's topology (SMT cores and last-level caches), each
//! CPU's load as the other CPUs see it, and the kernel's choice of a CPU for a woken
//! task (`select_task_rq_fair` of Linux 6.12, `kernel/sched/fair.c`), written once for
//! every host.
//!
//! # What is mirrored
//! For the wakeups the pair workloads make (a pipe write wakes the reader with
//! `WF_SYNC`: `pipe_write` calls `wake_up_interruptible_sync_poll`, fs/pipe.c), in the
//! kernel's order:
//! - `wake_wide` is false: each task of a pair wakes only its partner, so
//!   `record_wakee` never counts a flip and both `wakee_flips` stay 0; `want_affine`
//!   holds, and the first domain of the waker's CPU that spans `prev` is the SMT core,
//!   the LLC or the machine (every level keeps `SD_WAKE_AFFINE` on two sockets).
//! - `wake_affine` (when the waker's CPU is not `prev`): `wake_affine_idle` (the waker's
//!   CPU when it is idle and shares the LLC with `prev`, unless `prev` is idle too; the
//!   waker's CPU on a sync wakeup with one task running there; `prev` when idle), then
//!   `wake_affine_weight`; the result is the waker's CPU or `prev`.
//! - `select_idle_sibling(p, prev, target)`: `target` if idle; `prev` if idle and in
//!   `target`'s LLC; `p->recent_used_cpu` if idle and in `target`'s LLC (and it becomes
//!   `prev`); with SMT, `select_idle_smt` on `prev`'s core when no core is idle;
//!   `select_idle_cpu` over `target`'s LLC from `target + 1`, whole idle cores first when
//!   one exists, else at most `nr_idle_scan` CPUs (SIS_UTIL); else `target`.
//! - `available_idle_cpu(c)`: nothing runs or is runnable on `c` and no wakeup or task
//!   is on its way there (`rq->ttwu_pending`).
//!
//! # State the model does not keep, and what stands for it
//! - `wake_affine_weight` compares PELT load averages (`cpu_load`, `task_h_load`): the
//!   number of runnable tasks on each CPU stands for `cpu_load`, and one task's load is
//!   one unit (every pair task is the same always-ready task). The wakee is blocked, so
//!   it adds nothing to `prev`'s count and is not subtracted from it.
//! - SIS_UTIL's `nr_idle_scan` comes from the LLC's summed `util_avg`
//!   (`update_idle_cpu_scan`): the fraction of the LLC's CPUs with a runnable task
//!   stands for the utilisation, in the kernel's formula
//!   `nr = llc_weight * (1 - min(1, (u * 117 / 100)^2))`.
//! - `has_idle_cores` (set when a CPU going idle finds its whole core idle, cleared by a
//!   scan that finds none) is read as the truth: whether a whole core of the LLC is idle
//!   now.
//!
//! These substitutes are deterministic: no coin is drawn, so a placement depends only on
//! the CPUs' published state at the wakeup. A host's view of that state may be a moment
//! old (the native engine's CPUs publish it as they change it; the simulator reads it
//! when the waker's step starts), as the kernel's remote reads are.
//!
//! # Not mirrored
//! Energy-aware placement (`find_energy_efficient_cpu`: no x86 server registers an
//! energy model), asymmetric capacities, clusters (`sched_cluster_active`), the per-CPU
//! kthread rule (no pair task is a kthread), core scheduling cookies, and
//! `sched_idle_cpu` (no task here is `SCHED_IDLE`).

use lazymm::sync::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The machine's shape as the scheduler sees it: which CPUs are SMT siblings of one
/// core, and which share a last-level cache (`sd_llc`).
///
/// # Invariants
/// `core_of` and `llc_of` have one entry per CPU; `cores[core_of[c]]` and
/// `llcs[llc_of[c]]` list `c`, in increasing CPU order; every core lies within one LLC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    name: String,
    core_of: Vec<u32>,
    llc_of: Vec<u32>,
    cores: Vec<Vec<u32>>,
    llcs: Vec<Vec<u32>>,
}

impl Topology {
    /// A topology from each CPU's core and LLC number, named `name` in reports.
    ///
    /// # Panics
    /// If the two lists differ in length, or a core spans two LLCs.
    pub fn from_groups(name: impl Into<String>, core_of: Vec<u32>, llc_of: Vec<u32>) -> Self {
        assert_eq!(core_of.len(), llc_of.len(), "one core and one LLC per CPU");
        let group = |of: &[u32]| {
            let n = of.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
            let mut v: Vec<Vec<u32>> = vec![Vec::new(); n];
            for (c, &g) in of.iter().enumerate() {
                v[g as usize].push(c as u32);
            }
            v
        };
        let cores = group(&core_of);
        for core in &cores {
            assert!(
                core.iter()
                    .all(|&c| llc_of[c as usize] == llc_of[core[0] as usize]),
                "a core lies within one LLC"
            );
        }
        Topology {
            name: name.into(),
            llcs: group(&llc_of),
            cores,
            core_of,
            llc_of,
        }
    }

    /// The default of hosts that have no machine file (the native engine, the checker):
    /// `cpus` CPUs numbered threads first, two SMT threads per core (one when `cpus` is
    /// 1), all in one LLC. Named `1xCxT (default)`.
    pub fn smt2_one_llc(cpus: usize) -> Self {
        let smt = if cpus > 1 { 2 } else { 1 };
        let core_of = (0..cpus).map(|c| (c / smt) as u32).collect();
        Topology::from_groups(
            format!("1x{}x{smt} (default)", cpus.div_ceil(smt)),
            core_of,
            vec![0; cpus],
        )
    }

    /// The name reports give it (a machine's name, or the default's shape).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.core_of.len()
    }

    /// Whether `a` and `b` share the last-level cache (`cpus_share_cache`).
    #[inline]
    pub fn share_cache(&self, a: usize, b: usize) -> bool {
        self.llc_of[a] == self.llc_of[b]
    }

    /// The SMT siblings of `c`'s core, `c` included (`cpu_smt_mask`).
    pub fn smt_mask(&self, c: usize) -> &[u32] {
        &self.cores[self.core_of[c] as usize]
    }

    /// The CPUs of `c`'s LLC (`sched_domain_span(sd_llc)`).
    pub fn llc_span(&self, c: usize) -> &[u32] {
        &self.llcs[self.llc_of[c] as usize]
    }

    /// Whether any core has more than one thread (`sched_smt_active`).
    pub fn smt_active(&self) -> bool {
        self.cores.iter().any(|c| c.len() > 1)
    }

    /// The CPUs pair threads start on, in order (thread `k` of pair `k / 2`): within an
    /// LLC, one thread of every core before any second thread; the LLCs take two CPUs
    /// each in turn, so both threads of a pair share an LLC and the pairs spread over
    /// the LLCs. It stands for fork balancing (`sched_balance_find_dst_cpu` from
    /// `wake_up_new_task`) with load counted in tasks: the pair's first thread goes to
    /// the idlest group, and its partner, forked by it, stays in its LLC while that has
    /// an idle core (the NUMA imbalance allowance of `find_idlest_group`).
    pub fn fork_order(&self) -> Vec<usize> {
        let depth = self.cores.iter().map(Vec::len).max().unwrap_or(1);
        let per_llc: Vec<Vec<usize>> = self
            .llcs
            .iter()
            .map(|llc| {
                let mut cores: Vec<u32> = llc.iter().map(|&c| self.core_of[c as usize]).collect();
                cores.dedup();
                (0..depth)
                    .flat_map(|t| {
                        let cores = &cores;
                        cores.iter().filter_map(move |&k| {
                            self.cores[k as usize].get(t).map(|&c| c as usize)
                        })
                    })
                    .collect()
            })
            .collect();
        let mut next = vec![0usize; per_llc.len()];
        let mut order = Vec::with_capacity(self.nr_cpus());
        while order.len() < self.nr_cpus() {
            for (l, cpus) in per_llc.iter().enumerate() {
                for _ in 0..2 {
                    if let Some(&c) = cpus.get(next[l]) {
                        order.push(c);
                        next[l] += 1;
                    }
                }
            }
        }
        order
    }
}

/// Each CPU's scheduler state as other CPUs read it at a wakeup: how many tasks are
/// runnable there (`rq->nr_running`, the running one included) and whether a wakeup or
/// a task is on its way there (`rq->ttwu_pending`); plus the [`Topology`].
///
/// Each CPU's runqueue publishes its own count ([`RqView::publish`], only when it
/// changed); the host marks a CPU pending when it rings it and clears the mark when the
/// CPU takes what was sent.
pub struct RqView {
    topo: Topology,
    nr_running: Box<[CachePadded<AtomicU32>]>,
    pending: Box<[CachePadded<AtomicBool>]>,
}

impl RqView {
    /// A view of an idle machine of `topo`'s shape.
    pub fn new(topo: Topology) -> Self {
        let n = topo.nr_cpus();
        RqView {
            topo,
            nr_running: (0..n).map(|_| CachePadded(AtomicU32::new(0))).collect(),
            pending: (0..n)
                .map(|_| CachePadded(AtomicBool::new(false)))
                .collect(),
        }
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// CPU `cpu` now has `n` runnable tasks.
    #[inline]
    pub fn publish(&self, cpu: usize, n: u32) {
        // Relaxed: a placement hint, as the kernel's lockless remote `nr_running` reads.
        self.nr_running[cpu].store(n, Ordering::Relaxed);
    }

    /// A wakeup or a task is on its way to `cpu` (`ttwu_pending`).
    #[inline]
    pub fn ring(&self, cpu: usize) {
        // Relaxed: a placement hint only; delivery is ordered by the host's own mailbox.
        self.pending[cpu].store(true, Ordering::Relaxed);
    }

    /// `cpu` took what was sent to it.
    #[inline]
    pub fn delivered(&self, cpu: usize) {
        if self.pending[cpu].load(Ordering::Relaxed) {
            self.pending[cpu].store(false, Ordering::Relaxed);
        }
    }

    /// `rq->nr_running` of `cpu` as last published.
    #[inline]
    pub fn nr_running(&self, cpu: usize) -> u32 {
        self.nr_running[cpu].load(Ordering::Relaxed)
    }

    /// `available_idle_cpu(cpu)`: nothing runnable and nothing on its way.
    #[inline]
    pub fn idle(&self, cpu: usize) -> bool {
        self.nr_running(cpu) == 0 && !self.pending[cpu].load(Ordering::Relaxed)
    }

    /// Whether a whole core of `cpu`'s LLC is idle (`test_idle_cores`, read as the
    /// truth; see the module doc).
    fn has_idle_core(&self, cpu: usize) -> bool {
        let t = &self.topo;
        t.llc_span(cpu).iter().any(|&c| {
            t.smt_mask(c as usize)
                .iter()
                .all(|&s| self.idle(s as usize))
        })
    }

    /// SIS_UTIL's scan depth for `cpu`'s LLC (`sd_share->nr_idle_scan`), from the
    /// fraction of its CPUs with a runnable task (see the module doc).
    fn nr_idle_scan(&self, cpu: usize) -> usize {
        let span = self.topo.llc_span(cpu);
        let w = span.len() as u64;
        let busy = span
            .iter()
            .filter(|&&c| self.nr_running(c as usize) > 0)
            .count() as u64;
        // update_idle_cpu_scan(), with util in units of SCHED_CAPACITY_SCALE (1024):
        // x = sum_util / llc_weight; tmp = x^2 * pct^2 / (10000 * 1024), pct = 117.
        let x = busy * 1024 / w.max(1);
        let tmp = (x * x * 117 * 117 / (10_000 * 1024)).min(1024);
        ((1024 - tmp) * w / 1024) as usize
    }

    /// `select_task_rq_fair` for a `WF_TTWU` wakeup made on CPU `waker` of a task that
    /// last ran on `prev` and may run anywhere; `recent` is the task's
    /// `recent_used_cpu`, updated as the kernel updates it. `sync` is `WF_SYNC`.
    pub fn select_task_rq_fair(
        &self,
        waker: usize,
        prev: usize,
        recent: &mut usize,
        sync: bool,
    ) -> usize {
        // want_affine (wake_wide is false, see the module doc); the first domain of the
        // waker's CPU that spans prev always exists (the machine's).
        let target = if waker != prev {
            self.wake_affine(waker, prev, sync)
        } else {
            prev
        };
        self.select_idle_sibling(prev, target, recent)
    }

    /// `wake_affine`: the waker's CPU or `prev`.
    fn wake_affine(&self, this: usize, prev: usize, sync: bool) -> usize {
        let t = match self.wake_affine_idle(this, prev, sync) {
            Some(t) => Some(t),
            None => self.wake_affine_weight(this, prev, sync),
        };
        if t == Some(this) {
            this
        } else {
            prev
        }
    }

    fn wake_affine_idle(&self, this: usize, prev: usize, sync: bool) -> Option<usize> {
        if self.idle(this) && self.topo.share_cache(this, prev) {
            return Some(if self.idle(prev) { prev } else { this });
        }
        if sync && self.nr_running(this) == 1 {
            return Some(this);
        }
        if self.idle(prev) {
            return Some(prev);
        }
        None
    }

    /// `wake_affine_weight` with task counts for loads (see the module doc).
    fn wake_affine_weight(&self, this: usize, prev: usize, sync: bool) -> Option<usize> {
        let mut this_eff = i64::from(self.nr_running(this));
        if sync {
            // current_load: the waker itself, one unit.
            if 1 > this_eff {
                return Some(this);
            }
            this_eff -= 1;
        }
        // task_load; WA_BIAS: * 100 here, * (100 + (imbalance_pct - 100) / 2) at prev.
        // imbalance_pct is 117 at the LLC and NUMA levels, 110 at the SMT level.
        let pct = if self.topo.smt_mask(this).contains(&(prev as u32)) {
            110
        } else {
            117
        };
        this_eff = (this_eff + 1) * 100;
        let mut prev_eff = i64::from(self.nr_running(prev)) * (100 + (pct - 100) / 2);
        if sync {
            prev_eff += 1;
        }
        (this_eff < prev_eff).then_some(this)
    }

    fn select_idle_sibling(&self, prev: usize, target: usize, recent: &mut usize) -> usize {
        let t = &self.topo;
        if self.idle(target) {
            return target;
        }
        if prev != target && t.share_cache(prev, target) && self.idle(prev) {
            return prev;
        }
        let r = std::mem::replace(recent, prev);
        if r != prev && r != target && r < t.nr_cpus() && t.share_cache(r, target) && self.idle(r) {
            return r;
        }
        let mut has_idle_core = false;
        if t.smt_active() {
            has_idle_core = self.has_idle_core(target);
            if !has_idle_core && t.share_cache(prev, target) {
                // select_idle_smt(p, sd, prev)
                for &c in t.smt_mask(prev) {
                    let c = c as usize;
                    if c != prev && t.share_cache(c, target) && self.idle(c) {
                        return c;
                    }
                }
            }
        }
        if let Some(i) = self.select_idle_cpu(target, has_idle_core) {
            return i;
        }
        target
    }

    /// `select_idle_cpu` over `target`'s LLC, from `target + 1`, wrapping.
    fn select_idle_cpu(&self, target: usize, has_idle_core: bool) -> Option<usize> {
        let t = &self.topo;
        let span = t.llc_span(target);
        let mut nr = self.nr_idle_scan(target) + 1;
        if nr == 1 {
            return None;
        }
        let start = span.partition_point(|&c| c as usize <= target);
        let mut idle_cpu = None;
        let mut seen_cores: Vec<u32> = Vec::new();
        for k in 0..span.len() {
            let cpu = span[(start + k) % span.len()] as usize;
            if has_idle_core {
                // select_idle_core: each core once (its siblings leave the mask).
                let core = t.smt_mask(cpu);
                if seen_cores.contains(&core[0]) {
                    continue;
                }
                seen_cores.push(core[0]);
                let mut all = true;
                for &s in core {
                    if !self.idle(s as usize) {
                        all = false;
                        if idle_cpu.is_none() {
                            continue;
                        }
                        break;
                    }
                    if idle_cpu.is_none() {
                        idle_cpu = Some(s as usize);
                    }
                }
                if all {
                    return Some(cpu);
                }
            } else {
                nr -= 1;
                if nr == 0 {
                    return None;
                }
                if self.idle(cpu) {
                    return Some(cpu);
                }
            }
        }
        idle_cpu
    }
}

/// Where a wakeup went, in the lab's classes (`lazymm lab`'s placement table), tested
/// in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeKind {
    /// On the waker's CPU.
    OnWaker,
    /// On the CPU the task last ran on.
    OnPrev,
    /// On another CPU that was idle and shares the LLC with the waker or `prev`.
    IdleSameLlc,
    /// Anywhere else (a busy CPU, another LLC).
    Elsewhere,
}

impl WakeKind {
    /// Classifies a wakeup made on `waker` of a task that last ran on `prev`, placed on
    /// `target`, which was idle (`target_idle`) when it was chosen.
    pub fn of(
        topo: &Topology,
        waker: usize,
        prev: usize,
        target: usize,
        target_idle: bool,
    ) -> Self {
        if target == waker {
            WakeKind::OnWaker
        } else if target == prev {
            WakeKind::OnPrev
        } else if target_idle && (topo.share_cache(target, waker) || topo.share_cache(target, prev))
        {
            WakeKind::IdleSameLlc
        } else {
            WakeKind::Elsewhere
        }
    }
}

/// A runqueue's placement counters: switches into user tasks (and how many came from
/// idle) and the wakeups it made, by where they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchedCounts {
    /// Context switches into a user task.
    pub user_switch_ins: u64,
    /// Of those, the ones whose previous task was the idle task.
    pub user_from_idle: u64,
    /// Wakeups of pair tasks placed on the waker's CPU.
    pub wake_on_waker: u64,
    /// ... on the woken task's previous CPU.
    pub wake_on_prev: u64,
    /// ... on another idle CPU sharing the LLC with the waker or the previous CPU.
    pub wake_idle_same_llc: u64,
    /// ... anywhere else.
    pub wake_elsewhere: u64,
}

impl SchedCounts {
    /// Counts one wakeup.
    pub fn wakeup(&mut self, k: WakeKind) {
        match k {
            WakeKind::OnWaker => self.wake_on_waker += 1,
            WakeKind::OnPrev => self.wake_on_prev += 1,
            WakeKind::IdleSameLlc => self.wake_idle_same_llc += 1,
            WakeKind::Elsewhere => self.wake_elsewhere += 1,
        }
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &SchedCounts) {
        self.user_switch_ins += o.user_switch_ins;
        self.user_from_idle += o.user_from_idle;
        self.wake_on_waker += o.wake_on_waker;
        self.wake_on_prev += o.wake_on_prev;
        self.wake_idle_same_llc += o.wake_idle_same_llc;
        self.wake_elsewhere += o.wake_elsewhere;
    }

    /// The counts since `before` (a snapshot of the same counters).
    pub fn since(&self, before: &SchedCounts) -> SchedCounts {
        SchedCounts {
            user_switch_ins: self.user_switch_ins - before.user_switch_ins,
            user_from_idle: self.user_from_idle - before.user_from_idle,
            wake_on_waker: self.wake_on_waker - before.wake_on_waker,
            wake_on_prev: self.wake_on_prev - before.wake_on_prev,
            wake_idle_same_llc: self.wake_idle_same_llc - before.wake_idle_same_llc,
            wake_elsewhere: self.wake_elsewhere - before.wake_elsewhere,
        }
    }

    /// Wakeups counted.
    pub fn wakeups(&self) -> u64 {
        self.wake_on_waker + self.wake_on_prev + self.wake_idle_same_llc + self.wake_elsewhere
    }

    /// Fraction of switches into a user task that came from idle (`None`: no such
    /// switch).
    pub fn through_idle(&self) -> Option<f64> {
        (self.user_switch_ins > 0).then(|| self.user_from_idle as f64 / self.user_switch_ins as f64)
    }

    /// Fraction of wakeups of kind `x` (a field of these counts).
    pub fn wake_frac(&self, x: u64) -> Option<f64> {
        let n = self.wakeups();
        (n > 0).then(|| x as f64 / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 LLCs x 4 cores x SMT2, threads first: CPUs 0-7 and 8-15.
    fn topo() -> Topology {
        let core_of = (0..16).map(|c| c / 2).collect();
        let llc_of = (0..16).map(|c| c / 8).collect();
        Topology::from_groups("2x4x2", core_of, llc_of)
    }

    fn view(busy: &[(usize, u32)]) -> RqView {
        let v = RqView::new(topo());
        for &(c, n) in busy {
            v.publish(c, n);
        }
        v
    }

    #[test]
    fn a_sync_wakeup_goes_back_to_an_idle_prev_in_the_llc() {
        // The waker runs alone on CPU 0; the wakee last ran on CPU 2, idle.
        let v = view(&[(0, 1)]);
        let mut recent = 2;
        assert_eq!(v.select_task_rq_fair(0, 2, &mut recent, true), 2);
    }

    #[test]
    fn a_sync_wakeup_from_another_llc_comes_to_the_wakers_llc() {
        // prev (CPU 9) is idle but in the other LLC: wake_affine picks the waker's CPU
        // (sync, one task running), select_idle_sibling an idle CPU of its LLC: the
        // waker's core is half busy, so a whole idle core (CPU 2's) is chosen.
        let v = view(&[(0, 1)]);
        let mut recent = 9;
        let t = v.select_task_rq_fair(0, 9, &mut recent, true);
        assert_eq!(t, 2);
        assert_eq!(
            WakeKind::of(v.topology(), 0, 9, t, true),
            WakeKind::IdleSameLlc
        );
    }

    #[test]
    fn with_every_cpu_busy_the_wakee_stacks_on_the_waker() {
        let busy: Vec<(usize, u32)> = (0..16).map(|c| (c, 1)).collect();
        let v = view(&busy);
        let mut recent = 3;
        // sync with one task on the waker's CPU: target = waker; nothing idle.
        assert_eq!(v.select_task_rq_fair(0, 3, &mut recent, true), 0);
        assert_eq!(recent, 3);
    }

    #[test]
    fn a_loaded_waker_leaves_the_wakee_on_prev() {
        // Three tasks on the waker's CPU, one on prev's: wake_affine_weight keeps prev.
        let busy: Vec<(usize, u32)> = (0..16).map(|c| (c, if c == 0 { 3 } else { 1 })).collect();
        let v = view(&busy);
        let mut recent = 5;
        assert_eq!(v.select_task_rq_fair(0, 5, &mut recent, true), 5);
    }

    #[test]
    fn an_idle_smt_sibling_of_prev_is_taken_when_no_core_is_idle() {
        // Every CPU busy but CPU 5 (prev 4's sibling).
        let busy: Vec<(usize, u32)> = (0..16).filter(|&c| c != 5).map(|c| (c, 1)).collect();
        let v = view(&busy);
        let mut recent = 4;
        v.publish(0, 2);
        assert_eq!(v.select_task_rq_fair(0, 4, &mut recent, true), 5);
    }

    #[test]
    fn a_pending_wakeup_makes_a_cpu_busy() {
        let v = view(&[(0, 1)]);
        v.ring(2);
        assert!(!v.idle(2));
        v.delivered(2);
        assert!(v.idle(2));
    }

    #[test]
    fn sis_util_stops_scanning_a_busy_llc() {
        let v = view(&[]);
        assert_eq!(v.nr_idle_scan(0), 8);
        for c in 0..7 {
            v.publish(c, 1);
        }
        // 7 of 8 busy: u = 0.875, (0.875 * 1.17)^2 > 1: no scan.
        assert_eq!(v.nr_idle_scan(0), 0);
    }

    #[test]
    fn pairs_start_in_one_llc_on_idle_cores_first_and_spread_over_llcs() {
        assert_eq!(&topo().fork_order()[..8], &[0, 2, 8, 10, 4, 6, 12, 14]);
        let all = topo().fork_order();
        assert_eq!(all.len(), 16);
        assert_eq!(&all[8..12], &[1, 3, 9, 11]);
        let d = Topology::smt2_one_llc(4);
        assert_eq!(d.fork_order(), vec![0, 2, 1, 3]);
        assert_eq!(d.name(), "1x2x2 (default)");
    }
}
