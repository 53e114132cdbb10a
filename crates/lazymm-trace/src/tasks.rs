//! Who is who: the idle tasks, the kernel threads (which run on a borrowed mm, lazily),
//! and which user tasks are threads of one process (and so share one mm).
//!
//! What the trace says wins; where it is silent, each user pid is its own process and is
//! counted as guessed:
//! - pid 0 (`swapper`, `<idle>`) is each CPU's idle task;
//! - a kernel thread is one that LTTng's statedump calls one, a child of `kthreadd`
//!   (pid 2, itself one) in a fork event or statedump, a pid listed in `--kthreads`, or a
//!   task whose comm (before any exec) matches a kernel-thread pattern: the built-in list
//!   ([`KthreadRules::builtin`]) or, when given, the `--kthreads` file's;
//! - a user task's process is its TGID where any line says it (an atrace TGID column,
//!   perf's `pid/tid`, LTTng's `pid` fields and statedump); otherwise its own pid.

use crate::event::TraceEvent;
use crate::Trace;
use std::collections::{BTreeMap, BTreeSet};

/// What a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A CPU's idle task (pid 0).
    Idle,
    /// A kernel thread: no mm of its own.
    Kthread,
    /// A user task: a thread of a process with an mm.
    User,
}

/// How a task's kind or process was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// pid 0.
    Idle,
    /// LTTng's statedump says so.
    Statedump,
    /// A child of `kthreadd`, or `kthreadd` itself.
    Kthreadd,
    /// Listed by pid in the kernel-thread rules.
    Pid,
    /// Its comm matches a kernel-thread pattern.
    Comm,
    /// A user task whose thread group the trace names.
    Tgid,
    /// A user task the trace says nothing more about: its own process (guessed).
    Guess,
}

/// One task's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What it is.
    pub kind: Kind,
    /// Its process (its own pid for idle, kernel threads and guessed user tasks).
    pub tgid: u32,
    /// How that was decided.
    pub why: Why,
    /// A comm it had (the first one seen, `<...>` ignored).
    pub comm: String,
}

impl Identity {
    /// Whether its process was guessed.
    pub fn guessed(&self) -> bool {
        self.why == Why::Guess
    }
}

/// Which tasks are kernel threads, by comm pattern or pid.
///
/// A pattern ending in `*` matches every comm that starts with the rest; any other
/// pattern matches one comm exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KthreadRules {
    patterns: Vec<String>,
    pids: BTreeSet<u32>,
}

/// The built-in kernel-thread comm patterns.
pub const BUILTIN_PATTERNS: &[&str] = &[
    "kthreadd",
    "kworker/*",
    "ksoftirqd/*",
    "migration/*",
    "rcu_*",
    "rcub/*",
    "rcuc/*",
    "rcuo*",
    "irq/*",
    "cpuhp/*",
    "idle_inject/*",
    "watchdog/*",
    "watchdogd",
    "kswapd*",
    "kcompactd*",
    "khugepaged",
    "ksmd",
    "kauditd",
    "khungtaskd",
    "kdevtmpfs",
    "oom_reaper",
    "kblockd",
    "kintegrityd",
    "writeback",
    "jbd2/*",
    "mmcqd/*",
    "scsi_eh_*",
    "scsi_tmf_*",
    "kthrotld",
    "ksgxd",
    "kstrp",
    "netns",
    "mm_percpu_wq",
    "pool_workqueue_*",
    "card*-crtc*",
    "napi/*",
    "kipmi*",
    "xfsaild/*",
    "xfs-*",
    "ext4-rsv-conver",
    "btrfs-*",
    "nvme-*",
    "ttm*",
];

impl KthreadRules {
    /// The built-in patterns ([`BUILTIN_PATTERNS`]), no pids.
    pub fn builtin() -> KthreadRules {
        KthreadRules {
            patterns: BUILTIN_PATTERNS.iter().map(|s| s.to_string()).collect(),
            pids: BTreeSet::new(),
        }
    }

    /// Rules from a `--kthreads` file: one comm pattern or pid per line; blank lines and
    /// `#` comments ignored. They replace the built-in patterns.
    pub fn parse(text: &str) -> KthreadRules {
        let mut r = KthreadRules {
            patterns: Vec::new(),
            pids: BTreeSet::new(),
        };
        for line in text.lines() {
            let l = line.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            match l.parse::<u32>() {
                Ok(pid) => {
                    r.pids.insert(pid);
                }
                Err(_) => r.patterns.push(l.to_string()),
            }
        }
        r
    }

    /// Whether `pid` is listed.
    pub fn has_pid(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    /// Whether `comm` matches a pattern.
    pub fn matches(&self, comm: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => comm.starts_with(prefix),
            _ => glob(p, comm),
        })
    }
}

/// `*` matches any run of characters.
fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((head, rest)) => {
            let Some(s) = s.strip_prefix(head) else {
                return false;
            };
            (0..=s.len())
                .filter(|&i| s.is_char_boundary(i))
                .any(|i| glob(rest, &s[i..]))
        }
    }
}

/// Every task of a trace, with its identity.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// By pid.
    pub tasks: BTreeMap<u32, Identity>,
}

impl Census {
    /// A task's identity (`None` for a pid the trace never names).
    pub fn get(&self, pid: u32) -> Option<&Identity> {
        self.tasks.get(&pid)
    }

    /// User tasks whose process was guessed.
    pub fn guessed(&self) -> usize {
        self.tasks.values().filter(|i| i.guessed()).count()
    }

    /// How many tasks are of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.tasks.values().filter(|i| i.kind == kind).count()
    }

    /// How many processes the user tasks make.
    pub fn processes(&self) -> usize {
        self.tasks
            .values()
            .filter(|i| i.kind == Kind::User)
            .map(|i| i.tgid)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Decides who is who in `trace`.
pub fn census(trace: &Trace, rules: &KthreadRules) -> Census {
    let mut comms: BTreeMap<u32, String> = BTreeMap::new();
    let mut execed: BTreeSet<u32> = BTreeSet::new();
    let mut kthread: BTreeMap<u32, Why> = BTreeMap::new();
    let mut user_by_statedump: BTreeSet<u32> = BTreeSet::new();
    let mut tgid: BTreeMap<u32, u32> = trace.tgid_of.clone();
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    let mut seen =
        |pid: u32, comm: &str, execed: &BTreeSet<u32>, comms: &mut BTreeMap<u32, String>| {
            pids.insert(pid);
            // A kernel thread's kind shows in the comms it had before it exec'd (if ever).
            if !comm.is_empty() && comm != "<...>" && !execed.contains(&pid) {
                comms.entry(pid).or_insert_with(|| comm.to_string());
            }
        };
    for r in &trace.records {
        match &r.event {
            TraceEvent::Exec { task, .. } => {
                seen(task.pid, "", &execed, &mut comms);
                execed.insert(task.pid);
            }
            TraceEvent::Fork { parent, child } => {
                seen(parent.pid, &parent.comm, &execed, &mut comms);
                seen(child.pid, &child.comm, &execed, &mut comms);
                if parent.pid == 2 {
                    kthread.insert(child.pid, Why::Kthreadd);
                }
                if let Some(g) = child.tgid {
                    tgid.insert(child.pid, g);
                }
            }
            TraceEvent::Statedump {
                task,
                ppid,
                kthread: k,
            } => {
                seen(task.pid, &task.comm, &execed, &mut comms);
                if *k {
                    kthread.insert(task.pid, Why::Statedump);
                } else if *ppid == Some(2) {
                    kthread.insert(task.pid, Why::Kthreadd);
                } else {
                    user_by_statedump.insert(task.pid);
                }
                if let Some(g) = task.tgid {
                    tgid.insert(task.pid, g);
                }
            }
            e => {
                for t in crate::tasks_of(e) {
                    seen(t.pid, &t.comm, &execed, &mut comms);
                }
            }
        }
    }
    let mut c = Census::default();
    for pid in pids {
        let comm = comms.get(&pid).cloned().unwrap_or_default();
        let (kind, why) = if pid == 0 {
            (Kind::Idle, Why::Idle)
        } else if let Some(w) = kthread.get(&pid) {
            (Kind::Kthread, *w)
        } else if pid == 2 {
            (Kind::Kthread, Why::Kthreadd)
        } else if rules.has_pid(pid) {
            (Kind::Kthread, Why::Pid)
        } else if !user_by_statedump.contains(&pid) && rules.matches(&comm) {
            (Kind::Kthread, Why::Comm)
        } else {
            match tgid.get(&pid) {
                Some(_) => (Kind::User, Why::Tgid),
                None => (Kind::User, Why::Guess),
            }
        };
        let g = match kind {
            Kind::User => tgid.get(&pid).copied().unwrap_or(pid),
            _ => pid,
        };
        c.tasks.insert(
            pid,
            Identity {
                kind,
                tgid: g,
                why,
                comm,
            },
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_file_rules() {
        let b = KthreadRules::builtin();
        assert!(b.matches("kworker/u12:1"));
        assert!(b.matches("rcu_preempt"));
        assert!(b.matches("kthreadd"));
        assert!(!b.matches("kthreadd2"));
        assert!(!b.matches("sh"));
        let f = KthreadRules::parse("# mine\nmydaemon*\n1234\n\nexact # trailing comment\na*b\n");
        assert!(f.matches("mydaemon-7"));
        assert!(f.matches("exact"));
        assert!(f.matches("axxb"));
        assert!(!f.matches("axxc"));
        assert!(
            !f.matches("kworker/0:1"),
            "a file replaces the built-in patterns"
        );
        assert!(f.has_pid(1234));
    }
}
