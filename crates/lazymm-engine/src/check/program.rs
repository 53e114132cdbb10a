//! The random programs the checker's CPUs run: what each simulated CPU does, one
//! operation at a time, and how a program is written in a replay file.

use super::sched::Rng;
use std::fmt;

/// One operation of a CPU's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Switch to this CPU's task number `n` (modulo the tasks it has).
    Run(u8),
    /// Switch to the idle task.
    Idle,
    /// Fork a new process (a new mm) onto this CPU.
    Fork,
    /// The running user task starts a thread (`CLONE_VM`) on CPU `n` (modulo the CPUs).
    Clone(u8),
    /// The running user task exits (`exit_mm`, then the last switch away).
    Exit,
    /// The running task execs into a new mm (a kernel thread becomes a process).
    Exec,
    /// The running user task hands its mm to the kernel workers (io_uring-style).
    Submit,
    /// This CPU's kernel worker adopts a submitted mm (`kthread_use_mm`), touches it,
    /// and gives it back (`kthread_unuse_mm`).
    Work,
    /// This CPU goes offline and comes back (never CPU 0).
    Hotplug,
    /// A speculative page walk through whatever CR3 holds.
    Walk,
    /// The running user task touches its memory.
    Touch,
}

impl Op {
    /// A random operation for CPU `cpu` of `nr_cpus`.
    pub fn random(rng: &mut Rng, cpu: usize, nr_cpus: usize) -> Op {
        loop {
            let op = match rng.below(100) {
                0..=21 => Op::Run(rng.below(4) as u8),
                22..=31 => Op::Idle,
                32..=38 => Op::Fork,
                39..=46 => Op::Clone(rng.below(nr_cpus as u64) as u8),
                47..=57 => Op::Exit,
                58..=62 => Op::Exec,
                63..=68 => Op::Submit,
                69..=75 => Op::Work,
                76..=79 => Op::Hotplug,
                80..=89 => Op::Walk,
                _ => Op::Touch,
            };
            if op == Op::Hotplug && cpu == 0 {
                continue;
            }
            return op;
        }
    }

    /// Parses the replay-file form written by `Display`.
    pub fn parse(s: &str) -> Option<Op> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a.parse::<u8>().ok()?)),
            None => (s, None),
        };
        Some(match (name, arg) {
            ("run", Some(n)) => Op::Run(n),
            ("idle", None) => Op::Idle,
            ("fork", None) => Op::Fork,
            ("clone", Some(n)) => Op::Clone(n),
            ("exit", None) => Op::Exit,
            ("exec", None) => Op::Exec,
            ("submit", None) => Op::Submit,
            ("work", None) => Op::Work,
            ("hotplug", None) => Op::Hotplug,
            ("walk", None) => Op::Walk,
            ("touch", None) => Op::Touch,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Run(n) => write!(f, "run:{n}"),
            Op::Idle => write!(f, "idle"),
            Op::Fork => write!(f, "fork"),
            Op::Clone(n) => write!(f, "clone:{n}"),
            Op::Exit => write!(f, "exit"),
            Op::Exec => write!(f, "exec"),
            Op::Submit => write!(f, "submit"),
            Op::Work => write!(f, "work"),
            Op::Hotplug => write!(f, "hotplug"),
            Op::Walk => write!(f, "walk"),
            Op::Touch => write!(f, "touch"),
        }
    }
}
