//! The schedule a trace shows, as operations a host can run on a model machine: per CPU
//! in timestamp order, re-synchronised where events were lost.
//!
//! A CPU is assumed to run its idle task until its first `sched_switch` says what it
//! ran; that first `prev` is switched in first ([`Cause::Initial`]). After that, a
//! switch whose `prev` is not what the CPU was running, or whose `next` is still running
//! on another CPU, means events were lost: the task is first switched in (or the other
//! CPU first switches it out for its idle task) and the switch is counted as a resync
//! ([`Cause::Resync`]). So every trace `sched_switch` becomes exactly one
//! [`Op::Switch`] with [`Cause::Trace`], except a switch from a task to itself, which no
//! machine can run and is counted apart.

use crate::event::{PrevState, TraceEvent};
use crate::Trace;
use std::collections::BTreeMap;

/// Why a switch is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A `sched_switch` of the trace.
    Trace,
    /// The task a CPU ran before its first traced switch is put there.
    Initial,
    /// Events were lost: the machine is brought back to what the trace shows.
    Resync,
    /// After the trace: a host switches every CPU to its idle task and lets every
    /// remaining task exit (never in a [`Schedule`]).
    Quiesce,
}

/// One thing a CPU does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `cpu` switches from `prev` to `next` (pid 0: that CPU's idle task). When `dead`,
    /// `prev` dies: it leaves its mm (`exit_mm`, if it has not yet) before the switch,
    /// and is gone after it.
    Switch {
        /// The CPU.
        cpu: u32,
        /// The task switched out.
        prev: u32,
        /// The task switched in.
        next: u32,
        /// `prev` is dead.
        dead: bool,
        /// Why.
        cause: Cause,
        /// When (ns).
        ts_ns: u64,
        /// The trace line that caused it.
        line: u64,
    },
    /// `sched_process_exit` of the task running on `cpu`: it leaves its mm (`exit_mm`).
    Exit {
        /// The CPU.
        cpu: u32,
        /// The task.
        pid: u32,
        /// When (ns).
        ts_ns: u64,
        /// The trace line that caused it.
        line: u64,
    },
    /// `sched_process_exec` of the task running on `cpu`: a new mm (`exec_mmap`); a
    /// thread that execs takes its leader's pid (`old_pid` becomes `pid`).
    Exec {
        /// The CPU.
        cpu: u32,
        /// The pid after exec.
        pid: u32,
        /// The pid before.
        old_pid: u32,
        /// When (ns).
        ts_ns: u64,
        /// The trace line that caused it.
        line: u64,
    },
    /// `sched_process_fork`: `parent` makes `child`.
    Fork {
        /// The CPU.
        cpu: u32,
        /// The parent.
        parent: u32,
        /// The child.
        child: u32,
        /// When (ns).
        ts_ns: u64,
        /// The trace line that caused it.
        line: u64,
    },
}

impl Op {
    /// The op's CPU.
    pub fn cpu(&self) -> u32 {
        match *self {
            Op::Switch { cpu, .. }
            | Op::Exit { cpu, .. }
            | Op::Exec { cpu, .. }
            | Op::Fork { cpu, .. } => cpu,
        }
    }

    /// The trace line that caused the op.
    pub fn line(&self) -> u64 {
        match *self {
            Op::Switch { line, .. }
            | Op::Exit { line, .. }
            | Op::Exec { line, .. }
            | Op::Fork { line, .. } => line,
        }
    }

    /// The op's timestamp.
    pub fn ts_ns(&self) -> u64 {
        match *self {
            Op::Switch { ts_ns, .. }
            | Op::Exit { ts_ns, .. }
            | Op::Exec { ts_ns, .. }
            | Op::Fork { ts_ns, .. } => ts_ns,
        }
    }
}

/// The operations of a trace, and what re-synchronising them cost.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// The operations, in order.
    pub ops: Vec<Op>,
    /// CPUs (highest CPU number + 1).
    pub nr_cpus: usize,
    /// Switches from the trace (equal to its `sched_switch` count less `self_switches`).
    pub trace_switches: u64,
    /// Switches added to put each CPU's first `prev` in place.
    pub initial_switches: u64,
    /// Switches added to re-synchronise after lost events.
    pub resync_switches: u64,
    /// Trace switches whose `prev` was not what the CPU ran (events lost there).
    pub lost_prev: u64,
    /// Trace switches whose `next` still ran on another CPU (events lost there).
    pub lost_next: u64,
    /// `sched_switch` events from a task to itself (not run).
    pub self_switches: u64,
    /// `exec` / `exit` events of a task the CPU was not running (resynchronised).
    pub lost_other: u64,
}

struct Builder {
    s: Schedule,
    running: Vec<u32>,
    known: Vec<bool>,
    on_cpu: BTreeMap<u32, u32>,
}

impl Builder {
    fn push_switch(
        &mut self,
        cpu: u32,
        next: u32,
        dead: bool,
        cause: Cause,
        ts_ns: u64,
        line: u64,
    ) {
        let c = cpu as usize;
        let prev = self.running[c];
        self.s.ops.push(Op::Switch {
            cpu,
            prev,
            next,
            dead,
            cause,
            ts_ns,
            line,
        });
        match cause {
            Cause::Trace => self.s.trace_switches += 1,
            Cause::Initial => self.s.initial_switches += 1,
            Cause::Resync | Cause::Quiesce => self.s.resync_switches += 1,
        }
        if prev != 0 {
            self.on_cpu.remove(&prev);
        }
        if next != 0 {
            self.on_cpu.insert(next, cpu);
        }
        self.running[c] = next;
    }

    /// Makes `pid` run on `cpu`, taking it off another CPU first if it runs there.
    fn ensure_running(&mut self, cpu: u32, pid: u32, cause: Cause, ts_ns: u64, line: u64) {
        if self.running[cpu as usize] == pid {
            return;
        }
        self.take_off_other(cpu, pid, ts_ns, line);
        self.push_switch(cpu, pid, false, cause, ts_ns, line);
    }

    /// If `pid` runs on a CPU other than `cpu`, that CPU switches to its idle task.
    fn take_off_other(&mut self, cpu: u32, pid: u32, ts_ns: u64, line: u64) -> bool {
        if pid == 0 {
            return false;
        }
        match self.on_cpu.get(&pid) {
            Some(&d) if d != cpu => {
                self.push_switch(d, 0, false, Cause::Resync, ts_ns, line);
                true
            }
            _ => false,
        }
    }
}

/// The schedule of `trace`.
pub fn schedule(trace: &Trace) -> Schedule {
    let n = trace.nr_cpus();
    let mut b = Builder {
        s: Schedule {
            nr_cpus: n,
            ..Schedule::default()
        },
        running: vec![0; n],
        known: vec![false; n],
        on_cpu: BTreeMap::new(),
    };
    for r in &trace.records {
        let cpu = r.cpu;
        let c = cpu as usize;
        let ts = r.ts_ns;
        let line = r.line;
        match &r.event {
            TraceEvent::Switch {
                prev,
                prev_state,
                next,
            } => {
                if prev.pid == next.pid {
                    b.s.self_switches += 1;
                    b.known[c] = true;
                    continue;
                }
                let cause = if b.known[c] {
                    if b.running[c] != prev.pid {
                        b.s.lost_prev += 1;
                    }
                    Cause::Resync
                } else {
                    Cause::Initial
                };
                b.known[c] = true;
                b.ensure_running(cpu, prev.pid, cause, ts, line);
                if b.take_off_other(cpu, next.pid, ts, line) {
                    b.s.lost_next += 1;
                }
                let dead = *prev_state == PrevState::Dead && prev.pid != 0;
                b.push_switch(cpu, next.pid, dead, Cause::Trace, ts, line);
            }
            TraceEvent::Exit { task } => {
                if task.pid != 0 && b.running[c] == task.pid {
                    b.s.ops.push(Op::Exit {
                        cpu,
                        pid: task.pid,
                        ts_ns: ts,
                        line,
                    });
                }
                // Otherwise its dead switch (or the end of the trace) ends it.
            }
            TraceEvent::Exec { task, old_pid, .. } => {
                let old = old_pid.unwrap_or(task.pid);
                if old == 0 || task.pid == 0 {
                    continue;
                }
                let cause = if b.known[c] {
                    Cause::Resync
                } else {
                    Cause::Initial
                };
                if b.running[c] != old {
                    if b.known[c] {
                        b.s.lost_other += 1;
                    }
                    b.ensure_running(cpu, old, cause, ts, line);
                }
                b.known[c] = true;
                if old != task.pid {
                    // The old leader is gone (de_thread); take it off any CPU it still runs on.
                    b.take_off_other(cpu, task.pid, ts, line);
                    b.on_cpu.remove(&old);
                    b.on_cpu.insert(task.pid, cpu);
                    b.running[c] = task.pid;
                }
                b.s.ops.push(Op::Exec {
                    cpu,
                    pid: task.pid,
                    old_pid: old,
                    ts_ns: ts,
                    line,
                });
            }
            TraceEvent::Fork { parent, child } => {
                if child.pid != 0 && child.pid != parent.pid {
                    b.s.ops.push(Op::Fork {
                        cpu,
                        parent: parent.pid,
                        child: child.pid,
                        ts_ns: ts,
                        line,
                    });
                }
            }
            TraceEvent::Wakeup { .. } | TraceEvent::Free { .. } | TraceEvent::Statedump { .. } => {}
        }
    }
    b.s
}
