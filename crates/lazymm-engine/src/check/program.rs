//! The random programs the checker's CPUs run: what each simulated CPU does, one
//! operation at a time, and how a program is written in a replay file.

use super::pct::Rng;
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
    /// The running user task unmaps a page (`munmap`): a TLB flush of its mm that frees
    /// no page tables.
    Munmap,
    /// The running user task moves to CPU `n` (modulo the CPUs): this CPU switches away
    /// from it, and the target adopts it at its next step.
    Migrate(u8),
}

/// Each kind of operation and its weight in a random program.
const KINDS: [(Kind, u64); 13] = [
    (Kind::Run, 22),
    (Kind::Idle, 10),
    (Kind::Fork, 7),
    (Kind::Clone, 8),
    (Kind::Exit, 11),
    (Kind::Exec, 5),
    (Kind::Submit, 6),
    (Kind::Work, 7),
    (Kind::Hotplug, 4),
    (Kind::Walk, 10),
    (Kind::Touch, 10),
    (Kind::Munmap, 8),
    (Kind::Migrate, 6),
];

/// The same kinds weighted for a race between TLB flushes and switches
/// ([`Exercise::TlbFlush`](lazymm::Exercise::TlbFlush)): threads spread over the CPUs
/// (clone, migrate), switches into them, and unmaps.
const FLUSH_KINDS: [(Kind, u64); 13] = [
    (Kind::Run, 26),
    (Kind::Idle, 8),
    (Kind::Fork, 4),
    (Kind::Clone, 16),
    (Kind::Exit, 3),
    (Kind::Exec, 2),
    (Kind::Submit, 2),
    (Kind::Work, 2),
    (Kind::Hotplug, 1),
    (Kind::Walk, 2),
    (Kind::Touch, 6),
    (Kind::Munmap, 20),
    (Kind::Migrate, 10),
];

/// The operation mix a case is generated from: the usual weights, or one shaped for a
/// kind of race ([`lazymm::Exercise`]).
///
/// A mutant hunt uses the mix its declaration asks for ([`Mix::for_exercise`]); a
/// correct-scheme check rotates through [`Mix::ALL`], iteration `i` using
/// `Mix::ALL[i % Mix::ALL.len()]`, so a mix added for a new mutant's race guards every
/// correct scheme against the same kind of regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mix {
    /// Every kind at its usual weight (with the swarm's random subsets).
    Usual,
    /// Weighted for races between TLB flushes and switches: threads spread over the
    /// CPUs, switches into them, and unmaps; in half its cases, a fixed program in which
    /// a single-threaded process's unmaps race a kernel worker's `kthread_use_mm` of its
    /// mm (three CPUs; the scheduler searches).
    TlbFlush,
    /// A kernel thread execs from the mm it runs on lazily while that mm's last user
    /// exits on another CPU (two CPUs, a fixed program; the scheduler searches).
    LazyExec,
}

impl Mix {
    /// Every mix, in the order a correct-scheme check rotates through them.
    pub const ALL: [Mix; 3] = [Mix::Usual, Mix::TlbFlush, Mix::LazyExec];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Usual => "usual",
            Mix::TlbFlush => "tlb-flush",
            Mix::LazyExec => "lazy-exec",
        }
    }

    /// The mix that opens the race of a mutant declared with `e`.
    pub fn for_exercise(e: lazymm::Exercise) -> Mix {
        match e {
            lazymm::Exercise::Teardown
            | lazymm::Exercise::Hotplug
            | lazymm::Exercise::KthreadWork => Mix::Usual,
            lazymm::Exercise::TlbFlush => Mix::TlbFlush,
            lazymm::Exercise::LazyExec => Mix::LazyExec,
        }
    }

    /// The mix of iteration `i` of a correct-scheme check.
    pub fn rotation(i: u64) -> Mix {
        Mix::ALL[(i % Mix::ALL.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    Idle,
    Fork,
    Clone,
    Exit,
    Exec,
    Submit,
    Work,
    Hotplug,
    Walk,
    Touch,
    Munmap,
    Migrate,
}

/// Which kinds of operation one case's programs use (swarm testing, Groce et al.,
/// ISSTA 2012): leaving some kinds out of a run makes the others denser, which reaches
/// rare combinations (say, exits and hotplug with no forks to refill) far more often
/// than one fixed mix. Switching (`run`, `idle`) is always in.
#[derive(Debug, Clone, Copy)]
pub struct Swarm(u32);

impl Swarm {
    /// A random subset: each kind but the switches is in with probability one half.
    pub fn random(rng: &mut Rng) -> Swarm {
        Swarm(rng.next_u64() as u32 | 0b11)
    }

    /// Every kind.
    pub fn all() -> Swarm {
        Swarm(u32::MAX)
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

impl Op {
    /// A random operation of the kinds in `swarm`, weighted by `mix`, for CPU `cpu` of
    /// `nr_cpus`.
    pub fn random(rng: &mut Rng, swarm: Swarm, mix: Mix, cpu: usize, nr_cpus: usize) -> Op {
        let allowed = |i: usize, k: Kind| swarm.has(i) && !(k == Kind::Hotplug && cpu == 0);
        let kinds = match mix {
            // The lazy-exec mix's programs are fixed; its random ops (none today) would
            // follow the usual weights.
            Mix::Usual | Mix::LazyExec => &KINDS,
            Mix::TlbFlush => &FLUSH_KINDS,
        };
        let total: u64 = kinds
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| allowed(*i, *k))
            .map(|(_, (_, w))| w)
            .sum();
        let mut pick = rng.below(total);
        let kind = kinds
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| allowed(*i, *k))
            .find(|(_, (_, w))| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Kind::Run, |(_, (k, _))| *k);
        match kind {
            Kind::Run => Op::Run(rng.below(4) as u8),
            Kind::Idle => Op::Idle,
            Kind::Fork => Op::Fork,
            Kind::Clone => Op::Clone(rng.below(nr_cpus as u64) as u8),
            Kind::Exit => Op::Exit,
            Kind::Exec => Op::Exec,
            Kind::Submit => Op::Submit,
            Kind::Work => Op::Work,
            Kind::Hotplug => Op::Hotplug,
            Kind::Walk => Op::Walk,
            Kind::Touch => Op::Touch,
            Kind::Munmap => Op::Munmap,
            Kind::Migrate => Op::Migrate(rng.below(nr_cpus as u64) as u8),
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
            ("munmap", None) => Op::Munmap,
            ("migrate", Some(n)) => Op::Migrate(n),
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
            Op::Munmap => write!(f, "munmap"),
            Op::Migrate(n) => write!(f, "migrate:{n}"),
        }
    }
}
