//! One CPU's runqueue: the task table, the scheduler's turn, exit and quiescing.

use super::events::{EventKind, EventLog, Who};
use super::{Host, HostTask, RqView, SchedCounts, Step, WakeKind};
use crate::hostcost::SwitchWork;
use crate::workload::{pair_mut, Behavior};
use lazymm::tracepoint::Tracepoint;
use lazymm::{Arch, Cpu, Kernel, Scheme, Task};
use std::time::Duration;

/// The most tasks one runqueue holds (one bit each in a 64-bit word; the top bit of a
/// [`Mailboxes`](super::Mailboxes) doorbell says "tasks were placed here").
pub const MAX_TASKS: usize = 63;

/// What one [`Runqueue::turn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// A task ran one step.
    Ran,
    /// Nothing was runnable; the CPU idled, its timer woke the sleepers, and one of them
    /// ran one step.
    Tick,
    /// Nothing was runnable and nothing sleeps on the timer: the CPU waits for a wakeup.
    Idle,
}

/// One CPU's runqueue: its [`Cpu`], its idle task and a table of up to [`MAX_TASKS`]
/// tasks, each with the workload's program state `P`.
///
/// A wakeup from another CPU arrives as a bit (see [`Host::wake`]), so switching never
/// allocates or locks. Tasks move between CPUs in two ways, both outside
/// `context_switch`: a task's step may ask to move ([`Step::Migrate`]; the `migrate-storm`
/// workload walks its processes across the CPUs that way), and the timer wakeup
/// balances load (see [`Runqueue::set_balance`]): when it leaves more than one task
/// runnable here, each woken task that its workload lets move
/// ([`Behavior::may_migrate`]) goes, with odds of one in `odds` drawn from this
/// runqueue's own seeded generator, to another CPU picked by the same generator. That
/// is `select_task_rq`'s search for a less loaded CPU reduced to a seeded coin and a
/// random target; a moved task is placed there through the host ([`Host::place`]) and
/// runs once that CPU adopts it. A woken task may also move where its waker placed it
/// ([`Host::wake_to`]; the `threads` and `processes` pairs, see
/// [`crate::host::placement`]): the CPU it blocked on hands it over
/// ([`Runqueue::take_moving`]). Other tasks that others wake by their slot never move.
///
/// The runqueue publishes how many tasks are runnable on it ([`RqView::publish`], when
/// the number changed) and counts switches into user tasks, those from idle, and the
/// wakeups its tasks made, by where they went ([`SchedCounts`]).
///
/// # Invariants
/// - `cur` is `None` (the idle task runs) or the index of an occupied slot, and the
///   model's view of this CPU's current task is that task.
/// - `runnable` and `timers` have bits only for occupied slots, never the same bit in
///   both.
/// - A task leaves this table only when it is not current (it exits, or moves after
///   this CPU switched away from it), so a task runs on one CPU at a time.
pub struct Runqueue<S: Scheme, A: Arch, P> {
    /// The CPU's own state, passed to every model call.
    pub cpu: Cpu<S, A>,
    /// The idle task (current when `cur` is `None`).
    pub idle: Task<S>,
    tasks: Vec<Option<HostTask<S, P>>>,
    runnable: u64,
    timers: u64,
    cur: Option<usize>,
    next_pid: u32,
    work: SwitchWork,
    /// The opt-in event log (`None`: off, one branch per switch and exit).
    log: Option<Box<EventLog>>,
    /// Odds (one in this many) that a woken task moves away from an overloaded CPU;
    /// 0: never.
    balance_odds: u32,
    /// The balancing rule's generator (xorshift64).
    balance_rng: u64,
    /// Tasks that left this CPU for another (all kinds of move).
    migrations: u64,
    /// Placement counters.
    sched: SchedCounts,
    /// The runnable count last published.
    published: u32,
}

/// The default odds of the balancing rule: one woken task in this many moves when its
/// CPU has more than one runnable.
pub const BALANCE_ODDS: u32 = 8;

impl<S: Scheme, A: Arch, P> Runqueue<S, A, P> {
    /// A runqueue for `cpu` holding at most `capacity` tasks (clamped to
    /// [`MAX_TASKS`]), whose idle task has pid `idle_pid` and whose new tasks get pids
    /// counting up from `pid_base + 1`.
    pub fn new(
        k: &Kernel<S, A>,
        mut cpu: Cpu<S, A>,
        capacity: usize,
        idle_pid: u32,
        pid_base: u32,
    ) -> Self {
        let idle = k.idle_task(&mut cpu, idle_pid);
        Runqueue {
            cpu,
            idle,
            tasks: (0..capacity.clamp(1, MAX_TASKS)).map(|_| None).collect(),
            runnable: 0,
            timers: 0,
            cur: None,
            next_pid: pid_base,
            work: SwitchWork::default(),
            log: None,
            balance_odds: BALANCE_ODDS,
            balance_rng: Self::balance_seed(0, idle_pid),
            migrations: 0,
            sched: SchedCounts::default(),
            published: 0,
        }
    }

    /// The placement counters so far.
    pub fn sched_counts(&self) -> SchedCounts {
        self.sched
    }

    /// Counts a wakeup one of this CPU's tasks made.
    pub fn count_wakeup(&mut self, kind: WakeKind) {
        self.sched.wakeup(kind);
    }

    /// Publishes the runnable count in `view` when it changed (`rq->nr_running`: the
    /// running task is runnable until it blocks).
    #[inline]
    pub fn publish(&mut self, view: &RqView) {
        let n = self.runnable.count_ones();
        if n != self.published {
            self.published = n;
            view.publish(self.cpu.id, n);
        }
    }

    fn balance_seed(seed: u64, salt: u32) -> u64 {
        (seed ^ (u64::from(salt) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1
    }

    /// Sets the balancing rule of timer wakeups: one woken task in `odds` moves away
    /// when more than one is runnable here (0: tasks never move on their own; a host
    /// that follows a recorded placement, such as the trace replayer, turns it off), its
    /// choices drawn from a generator seeded with `seed` and this CPU's number.
    pub fn set_balance(&mut self, odds: u32, seed: u64) {
        self.balance_odds = odds;
        self.balance_rng = Self::balance_seed(seed, self.cpu.id as u32);
    }

    /// Tasks that left this CPU for another so far.
    pub fn migrations(&self) -> u64 {
        self.migrations
    }

    /// Sets the CPU-local work done after every context switch (realistic mode).
    pub fn set_switch_work(&mut self, work: SwitchWork) {
        self.work = work;
    }

    /// Starts recording this CPU's switches and exits in an [`EventLog`] that keeps the
    /// first `cap` events (for a timeline).
    /// The model's tracepoints (IPIs, teardown spans) go into the log too.
    pub fn set_event_log(&mut self, cap: usize) {
        self.log = Some(Box::new(EventLog::new(self.cpu.id, cap)));
        self.cpu.set_tracing(Some(super::now_ns));
    }

    /// Stops recording and returns the log, if one was set.
    pub fn take_event_log(&mut self) -> Option<EventLog> {
        self.drain_trace();
        self.cpu.set_tracing(None);
        self.log.take().map(|b| *b)
    }

    /// Moves the model's tracepoints recorded since the last call into the log (they
    /// happened before whatever the host logs next).
    fn drain_trace(&mut self) {
        let trace = self.cpu.take_trace();
        if let Some(log) = self.log.as_deref_mut() {
            log.record_trace(trace, trace_name::<S, A>);
        }
    }

    /// Who slot `slot` is (`None`: the idle task).
    fn who(&self, slot: Option<usize>) -> Who {
        match slot.and_then(|i| self.task(i)) {
            None => Who::Idle,
            Some(t) => match t.mm_id() {
                Some(mm) => Who::User(t.pid, mm),
                None => Who::Kernel(t.pid),
            },
        }
    }

    /// Logs the switch from the current slot to `next`, which has just happened.
    #[cold]
    #[inline(never)]
    fn log_switch(&mut self, k: &Kernel<S, A>, next: Option<usize>) {
        let kind = EventKind::Switch {
            prev: self.who(self.cur),
            next: self.who(next),
            cr3: k.oracle_cr3(self.cpu.id),
        };
        self.drain_trace();
        let step = self.cpu.step;
        if let Some(log) = self.log.as_deref_mut() {
            log.record(step, kind);
        }
    }

    /// Logs `exit_mm` of slot `i`, about to happen.
    #[cold]
    #[inline(never)]
    fn log_exit(&mut self, i: usize) {
        self.drain_trace();
        if let Who::User(pid, mm) = self.who(Some(i)) {
            let step = self.cpu.step;
            if let Some(log) = self.log.as_deref_mut() {
                log.record(step, EventKind::Exit { pid, mm });
            }
        }
    }

    /// A new pid.
    pub fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    /// The running task's slot (`None`: the idle task).
    #[inline]
    pub fn cur(&self) -> Option<usize> {
        self.cur
    }

    /// The running task (`None`: the idle task).
    pub fn current(&self) -> Option<&Task<S>> {
        self.cur.and_then(|i| self.task(i))
    }

    /// The task in slot `i`, if any.
    pub fn task(&self, i: usize) -> Option<&Task<S>> {
        self.tasks.get(i)?.as_ref().map(|t| &t.task)
    }

    /// The task in slot `i` and its program, if any.
    pub fn slot_mut(&mut self, i: usize) -> Option<&mut HostTask<S, P>> {
        self.tasks.get_mut(i)?.as_mut()
    }

    /// The CPU and the task in slot `i` (with its program), both mutable.
    pub fn parts(&mut self, i: usize) -> (&mut Cpu<S, A>, &mut HostTask<S, P>) {
        let t = self.tasks[i].as_mut().expect("the slot holds a task");
        (&mut self.cpu, t)
    }

    /// Occupied slots, in order.
    pub fn slots(&self) -> impl DoubleEndedIterator<Item = usize> + '_ {
        (0..self.tasks.len()).filter(|&i| self.tasks[i].is_some())
    }

    /// How many tasks the runqueue holds.
    pub fn len(&self) -> usize {
        self.tasks.iter().filter(|t| t.is_some()).count()
    }

    /// Whether the runqueue holds no task (the idle task aside).
    pub fn is_empty(&self) -> bool {
        self.tasks.iter().all(Option::is_none)
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.tasks.iter().all(Option::is_some)
    }

    /// Puts `t` in the first free slot, runnable or blocked; gives it back when every
    /// slot is taken.
    pub fn place(&mut self, t: HostTask<S, P>, runnable: bool) -> Result<usize, HostTask<S, P>> {
        let Some(i) = self.tasks.iter().position(Option::is_none) else {
            return Err(t);
        };
        self.tasks[i] = Some(t);
        if runnable {
            self.runnable |= 1 << i;
        }
        Ok(i)
    }

    /// Adopts a task another CPU placed here (or one this CPU made): it takes a free
    /// slot, or, when there is none, exits at once in this CPU's context.
    pub fn adopt(&mut self, k: &Kernel<S, A>, t: HostTask<S, P>, runnable: bool) -> Option<usize> {
        match self.place(t, runnable) {
            Ok(i) => Some(i),
            Err(mut t) => {
                self.kill_unplaced(k, &mut t.task);
                None
            }
        }
    }

    /// A task that was never placed (no room, or a parent that only forked the others)
    /// exits on this CPU: it runs once, `do_exit` (`exit_mm` and the profile's exit
    /// accesses), and the last switch away.
    pub fn kill_unplaced(&mut self, k: &Kernel<S, A>, t: &mut Task<S>) {
        self.switch_to(k, None);
        k.context_switch(&mut self.cpu, &mut self.idle, t);
        k.do_exit(&mut self.cpu, t);
        k.context_switch(&mut self.cpu, t, &mut self.idle);
    }

    /// Makes the tasks of slot mask `bits` runnable (wakeups delivered to this CPU).
    #[inline]
    pub fn wake_bits(&mut self, bits: u64) {
        self.timers &= !bits;
        self.runnable |= bits;
    }

    /// Wakes task `task` of CPU `cpu`, another CPU (a remote `try_to_wake_up`): the
    /// kernel profile's shared accesses of the wakeup ([`Kernel::ttwu_accesses`]), then
    /// the host's delivery.
    ///
    /// # Simplification
    /// The host layer does not know the target's state here: every target counts as
    /// busy and sharing the waker's cache, so a profile's wakeups take the target's
    /// `rq->lock` and never the wake list.
    #[inline]
    pub fn wake_remote<H: Host<S, P>>(
        &mut self,
        k: &Kernel<S, A>,
        host: &H,
        cpu: usize,
        task: usize,
    ) {
        k.ttwu_accesses(&mut self.cpu, cpu, false, true);
        host.wake(cpu, task);
    }

    /// Makes task `i` runnable (a local wakeup).
    #[inline]
    pub fn wake(&mut self, i: usize) {
        self.timers &= !(1 << i);
        self.runnable |= 1 << i;
    }

    /// The next task to run: the first runnable slot after the current one, round
    /// robin; `None` when nothing is runnable (the idle task runs).
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        let m = self.runnable;
        if m == 0 {
            return None;
        }
        let n = self.tasks.len() as u32;
        let start = self.cur.map_or(0, |c| (c as u32 + 1) % n);
        // Bits at or above `start` first, then the rest.
        let high = m & (!0u64 << start);
        Some(if high != 0 {
            high.trailing_zeros()
        } else {
            m.trailing_zeros()
        } as usize)
    }

    /// Switches this CPU to `next` (`None`: the idle task); nothing when it already runs.
    #[inline(always)]
    pub fn switch_to(&mut self, k: &Kernel<S, A>, next: Option<usize>) {
        if next == self.cur {
            return;
        }
        if let Some(j) = next {
            if self.tasks[j]
                .as_ref()
                .is_some_and(|t| t.task.mm_id().is_some())
            {
                self.sched.user_switch_ins += 1;
                self.sched.user_from_idle += u64::from(self.cur.is_none());
            }
        }
        match (self.cur, next) {
            (None, Some(j)) => {
                let n = &mut self.tasks[j]
                    .as_mut()
                    .expect("switched-to task exists")
                    .task;
                k.context_switch(&mut self.cpu, &mut self.idle, n);
            }
            (Some(i), None) => {
                let p = &mut self.tasks[i].as_mut().expect("current task exists").task;
                k.context_switch(&mut self.cpu, p, &mut self.idle);
            }
            (Some(i), Some(j)) => {
                let (p, n) = pair_mut(&mut self.tasks, i, j);
                let (p, n) = (
                    p.as_mut().expect("switched-from task exists"),
                    n.as_mut().expect("switched-to task exists"),
                );
                k.context_switch(&mut self.cpu, &mut p.task, &mut n.task);
            }
            (None, None) => {}
        }
        if self.log.is_some() {
            self.log_switch(k, next);
        }
        // What a real kernel's switch costs beyond the bookkeeping: CPU-local only.
        self.work.run();
        self.cur = next;
    }

    /// One scheduler turn: switch to the next runnable task and run one step of its
    /// program. When nothing is runnable but tasks sleep on the timer, the CPU switches
    /// to idle, takes the timer interrupt (an interrupt point: IPIs run, the hardware may
    /// walk the lazily loaded page tables), which wakes the sleepers, and switches to one
    /// of them: a whole lazy round trip in one turn.
    #[inline]
    pub fn turn<W, H>(&mut self, k: &Kernel<S, A>, w: &W, host: &H) -> Turn
    where
        W: Behavior<S, Prog = P>,
        H: Host<S, P>,
    {
        let mut next = self.pick();
        let mut ticked = false;
        if next.is_none() && self.timers != 0 {
            self.switch_to(k, None);
            // The local timer fires while the CPU idles.
            k.irq_point(&mut self.cpu);
            let woken = self.timers;
            self.runnable |= woken;
            self.timers = 0;
            if self.balance_odds != 0 {
                self.balance(k, w, host, woken);
            }
            next = self.pick();
            ticked = true;
        }
        self.switch_to(k, next);
        let Some(i) = next else {
            self.publish(host.view());
            return Turn::Idle;
        };
        // A user task touches its own memory while it runs (property a on task->mm).
        // (properties a and h on the mm it runs).
        if let Some(mm) = self.tasks[i].as_ref().and_then(|t| t.task.mm_id()) {
            k.user_access(&mut self.cpu, mm, "user access");
        }
        let step = w.step(k, self, host, i);
        self.finish_step(k, w, host, i, step);
        self.publish(host.view());
        if ticked {
            Turn::Tick
        } else {
            Turn::Ran
        }
    }

    /// Applies the outcome of task `i`'s step.
    #[inline]
    fn finish_step<W, H>(&mut self, k: &Kernel<S, A>, w: &W, host: &H, i: usize, step: Step)
    where
        W: Behavior<S, Prog = P>,
        H: Host<S, P>,
    {
        let bit = 1u64 << i;
        match step {
            Step::Block => self.runnable &= !bit,
            Step::Sleep => {
                self.runnable &= !bit;
                self.timers |= bit;
            }
            Step::Exit => {
                let t = self.exit(k, i);
                w.exited(k, self, host, t);
            }
            Step::Migrate(cpu) => self.migrate(k, i, host, cpu),
        }
    }

    /// The balancing rule of a timer wakeup (see the type's doc): of the tasks in
    /// `woken`, each one the workload lets move goes elsewhere with odds of one in
    /// `balance_odds`, while more than one task is runnable here.
    #[cold]
    fn balance<W, H>(&mut self, k: &Kernel<S, A>, w: &W, host: &H, woken: u64)
    where
        W: Behavior<S, Prog = P>,
        H: Host<S, P>,
    {
        let n = k.nr_cpus();
        let mut bits = woken;
        while bits != 0 && n > 1 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if self.runnable.count_ones() < 2 {
                return;
            }
            if !self.tasks[i]
                .as_ref()
                .is_some_and(|t| w.may_migrate(&t.prog))
            {
                continue;
            }
            let mut x = self.balance_rng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.balance_rng = x;
            if x % u64::from(self.balance_odds) != 0 {
                continue;
            }
            let target = (self.cpu.id + 1 + ((x >> 32) as usize % (n - 1))) % n;
            // A wakeup never picks an offline CPU (the host's view of the online mask,
            // not kernel traffic).
            if k.oracle_online_mask().test(target) {
                self.migrate(k, i, host, target);
            }
        }
    }

    /// Task `i` moves to CPU `cpu`, runnable there once that CPU adopts it
    /// (`set_task_cpu`, then the enqueue on the target runqueue). If it is current,
    /// this CPU first switches away from it (to the next runnable task, or idle, which
    /// keeps its mm loaded lazily), so it never runs on two CPUs at once; its mm's
    /// `mm_cpumask` bit for this CPU stays as the arch leaves it. A move to this CPU
    /// itself only leaves it runnable.
    pub fn migrate<H: Host<S, P>>(&mut self, k: &Kernel<S, A>, i: usize, host: &H, cpu: usize) {
        if cpu == self.cpu.id {
            self.wake(i);
            return;
        }
        let t = self.take_moving(k, i);
        host.place(cpu, t);
    }

    /// Task `i` leaves this CPU for another: it stops being runnable here, this CPU
    /// switches away from it if it is current (to the next runnable task, or idle), and
    /// its slot is emptied. The caller places it on its new CPU.
    pub fn take_moving(&mut self, k: &Kernel<S, A>, i: usize) -> HostTask<S, P> {
        let bit = 1u64 << i;
        self.runnable &= !bit;
        self.timers &= !bit;
        if self.cur == Some(i) {
            let next = self.pick();
            self.switch_to(k, next);
        }
        // INVARIANT: the task is not current here, so it leaves this CPU for good.
        let t = self.tasks[i].take().expect("a migrating task exists");
        self.migrations += 1;
        t
    }

    /// The current task `i` exits: `do_exit` (`exit_mm` and the profile's exit
    /// accesses), then the last switch away (to the next runnable task, or idle).
    /// Returns what was in its slot.
    pub fn exit(&mut self, k: &Kernel<S, A>, i: usize) -> HostTask<S, P> {
        debug_assert_eq!(self.cur, Some(i), "only the running task exits");
        if self.log.is_some() {
            self.log_exit(i);
        }
        {
            let t = &mut self.tasks[i].as_mut().expect("exiting task exists").task;
            k.do_exit(&mut self.cpu, t);
        }
        self.runnable &= !(1 << i);
        self.timers &= !(1 << i);
        // do_task_dead(): the last switch away from the dead task.
        let next = self.pick();
        self.switch_to(k, next);
        self.tasks[i].take().expect("exiting task exists")
    }

    /// This CPU goes offline for about `offline` and comes back, with its idle task
    /// current. Its tasks stay frozen meanwhile (Linux would migrate them; here tasks do
    /// not move). From `__cpu_disable` to its death (`die_wait`) and while offline it
    /// keeps answering the IPIs sent to it, because a sender may have seen it online
    /// just before it left.
    pub fn offline_cycle<H: Host<S, P>>(
        &mut self,
        k: &Kernel<S, A>,
        host: &H,
        die_wait: Duration,
        offline: Duration,
    ) {
        self.switch_to(k, None);
        k.cpu_offline(&mut self.cpu, &mut self.idle, |k, cpu| {
            host.pass_time(k, cpu, die_wait)
        });
        host.pass_time(k, &mut self.cpu, offline);
        k.cpu_online(&mut self.cpu);
    }

    /// Quiescing, phase one: every task exits, last slot first. A task with an mm is
    /// switched to, runs `do_exit` and is switched away from; a kernel thread is simply
    /// dropped (not running, it holds no lazy reference). `before_exit` is called with
    /// each slot about to exit (a checker logs it). Ends on the idle task.
    pub fn quiesce_tasks(
        &mut self,
        k: &Kernel<S, A>,
        mut before_exit: impl FnMut(&mut Self, usize),
    ) {
        let slots: Vec<usize> = self.slots().rev().collect();
        for i in slots {
            if self.task(i).is_some_and(|t| t.mm.is_some()) {
                before_exit(self, i);
                self.switch_to(k, Some(i));
                if self.log.is_some() {
                    self.log_exit(i);
                }
                let t = &mut self.tasks[i].as_mut().expect("quiescing task exists").task;
                k.do_exit(&mut self.cpu, t);
            }
            if self.cur == Some(i) {
                self.switch_to(k, None);
            }
            self.tasks[i] = None;
        }
        self.switch_to(k, None);
        self.runnable = 0;
        self.timers = 0;
    }

    /// Quiescing, phase two (after every CPU finished phase one): the idle task moves to
    /// `init_mm` and the scheme's deferred drops parked on this CPU run.
    pub fn quiesce_idle(&mut self, k: &Kernel<S, A>) {
        k.quiesce_cpu(&mut self.cpu, &mut self.idle);
    }
}

/// The kernel's name for a tracepoint: its IPI handler's, or its span's.
pub fn trace_name<S: Scheme, A: Arch>(tp: Tracepoint) -> &'static str {
    match tp {
        Tracepoint::IpiSend { ipi, .. } | Tracepoint::IpiHandler { ipi, .. } => {
            Kernel::<S, A>::ipi_name(ipi)
        }
        Tracepoint::Begin(span, _) | Tracepoint::End(span, _) => span.name(),
    }
}
