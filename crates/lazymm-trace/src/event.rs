//! The events every parser produces, whatever the trace format.

/// A task as a trace line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The thread id (the kernel's `pid`, LTTng's `tid`, perf's `tid`).
    pub pid: u32,
    /// The thread-group id (the process), when the line says it: a TGID column, perf's
    /// `pid/tid`, LTTng's `pid`.
    pub tgid: Option<u32>,
    /// The command name, as the line gives it (may be empty).
    pub comm: String,
}

impl TaskRef {
    /// A task with a pid and comm and no known thread group.
    pub fn new(pid: u32, comm: &str) -> TaskRef {
        TaskRef {
            pid,
            tgid: None,
            comm: comm.to_string(),
        }
    }
}

/// What a switched-out task was doing (`prev_state`), reduced to what replay needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrevState {
    /// Still runnable: preempted or yielding (`R`, `R+`, 0, a preempt bit).
    Runnable,
    /// Blocked (`S`, `D`, `T`, `t`, `I`, `P`, ... or a number with such bits).
    Blocked,
    /// Dead: this is the task's last switch (`X`, `Z`, `x`, the numeric dead bits).
    Dead,
}

impl PrevState {
    /// Decodes the letter form (`S`, `R+`, `D|K`, `x`, `X`, `Z`).
    pub fn from_letters(s: &str) -> Option<PrevState> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let mut dead = false;
        let mut blocked = false;
        for part in s.split('|') {
            let part = part.trim_end_matches('+');
            if part.is_empty() {
                continue;
            }
            for c in part.chars() {
                match c {
                    'R' => {}
                    'X' | 'Z' | 'x' => dead = true,
                    'S' | 'D' | 'T' | 't' | 'K' | 'W' | 'P' | 'N' | 'I' | 'n' | 'F' => {
                        blocked = true
                    }
                    _ => return None,
                }
            }
        }
        Some(if dead {
            PrevState::Dead
        } else if blocked {
            PrevState::Blocked
        } else {
            PrevState::Runnable
        })
    }

    /// Decodes the raw number (`trace-cmd report -R`, LTTng): bits 16 (`EXIT_DEAD`),
    /// 32 (`EXIT_ZOMBIE`) and 64 (`TASK_DEAD` of kernels before 4.14) mean dead; 0 and
    /// a value with only the preempt bit (4096 before 4.14, 256 after) mean runnable.
    pub fn from_number(v: u64) -> PrevState {
        const DEAD: u64 = 16 | 32 | 64;
        const PREEMPT: u64 = 4096 | 256;
        if v & DEAD != 0 {
            PrevState::Dead
        } else if v & !PREEMPT == 0 {
            PrevState::Runnable
        } else {
            PrevState::Blocked
        }
    }

    /// Decodes either form.
    pub fn parse(s: &str) -> Option<PrevState> {
        let t = s.trim();
        if let Some(hex) = t.strip_prefix("0x") {
            return u64::from_str_radix(hex, 16)
                .ok()
                .map(PrevState::from_number);
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse::<u64>().ok().map(PrevState::from_number);
        }
        PrevState::from_letters(t)
    }
}

/// One scheduler event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// `sched_switch`: the CPU stops running `prev` and runs `next`.
    Switch {
        /// The task switched out.
        prev: TaskRef,
        /// What it was doing.
        prev_state: PrevState,
        /// The task switched in.
        next: TaskRef,
    },
    /// `sched_wakeup` / `sched_wakeup_new`.
    Wakeup {
        /// The woken task.
        task: TaskRef,
        /// The CPU it will run on, when the line says.
        target_cpu: Option<u32>,
        /// `sched_wakeup_new`: the first wakeup of a new task.
        new: bool,
    },
    /// `sched_process_fork`.
    Fork {
        /// The forking task.
        parent: TaskRef,
        /// The new task.
        child: TaskRef,
    },
    /// `sched_process_exit`: the task is exiting (it has left or is leaving its mm).
    Exit {
        /// The exiting task.
        task: TaskRef,
    },
    /// `sched_process_exec`: the task replaced its address space.
    Exec {
        /// The task (its pid after exec).
        task: TaskRef,
        /// Its pid before exec (a non-leader thread takes the leader's pid).
        old_pid: Option<u32>,
        /// The file executed.
        filename: String,
    },
    /// `sched_process_free`: the task struct is freed (it was reaped).
    Free {
        /// The freed task.
        task: TaskRef,
    },
    /// LTTng's `lttng_statedump_process_state`: a task that existed when tracing began.
    Statedump {
        /// The task, with its thread group.
        task: TaskRef,
        /// Its parent process, when given.
        ppid: Option<u32>,
        /// Whether LTTng says it is a kernel thread.
        kthread: bool,
    },
}

impl TraceEvent {
    /// The event's kind, as counted in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            TraceEvent::Switch { .. } => "sched_switch",
            TraceEvent::Wakeup { new: false, .. } => "sched_wakeup",
            TraceEvent::Wakeup { new: true, .. } => "sched_wakeup_new",
            TraceEvent::Fork { .. } => "sched_process_fork",
            TraceEvent::Exit { .. } => "sched_process_exit",
            TraceEvent::Exec { .. } => "sched_process_exec",
            TraceEvent::Free { .. } => "sched_process_free",
            TraceEvent::Statedump { .. } => "lttng_statedump_process_state",
        }
    }
}

/// One event with where and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp in nanoseconds (the trace's clock).
    pub ts_ns: u64,
    /// The CPU that logged it.
    pub cpu: u32,
    /// Line number in the file (1-based).
    pub line: u64,
    /// The event.
    pub event: TraceEvent,
}

#[cfg(test)]
mod tests {
    use super::PrevState;

    #[test]
    fn prev_state_letters_and_numbers() {
        assert_eq!(PrevState::parse("R"), Some(PrevState::Runnable));
        assert_eq!(PrevState::parse("R+"), Some(PrevState::Runnable));
        assert_eq!(PrevState::parse("S"), Some(PrevState::Blocked));
        assert_eq!(PrevState::parse("D|K"), Some(PrevState::Blocked));
        assert_eq!(PrevState::parse("x"), Some(PrevState::Dead));
        assert_eq!(PrevState::parse("X"), Some(PrevState::Dead));
        assert_eq!(PrevState::parse("Z"), Some(PrevState::Dead));
        assert_eq!(PrevState::parse("0"), Some(PrevState::Runnable));
        assert_eq!(PrevState::parse("4096"), Some(PrevState::Runnable));
        assert_eq!(PrevState::parse("1"), Some(PrevState::Blocked));
        assert_eq!(PrevState::parse("130"), Some(PrevState::Blocked));
        assert_eq!(PrevState::parse("64"), Some(PrevState::Dead));
        assert_eq!(PrevState::parse("0x10"), Some(PrevState::Dead));
        assert_eq!(PrevState::parse("?"), None);
        assert_eq!(PrevState::parse(""), None);
    }
}
