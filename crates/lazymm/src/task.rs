//! Tasks: `mm` (a real user reference, `None` for kernel threads) and the scheme's own
//! per-task state.
//!
//! There is no generic `active_mm` field. A scheme that keeps one puts it in its
//! [`Scheme::TaskState`]: `refcount` a counted one, `shootdown` (as merged) a plain
//! pointer that nothing keeps alive. A scheme without one (`lazy-percpu`, and the
//! hazard-pointer models) defines a task state without it, so under that scheme
//! `task.scheme.active_mm` does not compile, and the lazily loaded mm is reachable only
//! through [`Cpu::lazy_mm`](crate::cpu::Cpu::lazy_mm), a borrow tied to an
//! interrupts-disabled guard. [`Task::SCHEME_BYTES`] is what that choice costs per task.

use crate::mm::{MmCount, MmId, MmUsers};
use crate::scheme::Scheme;

/// The reference behind `task->mm`.
#[derive(Debug)]
pub enum TaskMm {
    /// A user task's own address space (one `mm_users` reference).
    User(MmUsers),
    /// A kernel thread's address space adopted with `kthread_use_mm` (one `mm_count`
    /// reference; the caller of `kthread_use_mm` holds a real user for it).
    Kthread(MmCount),
}

impl TaskMm {
    /// The mm.
    #[inline]
    pub fn id(&self) -> MmId {
        match self {
            TaskMm::User(u) => u.id(),
            TaskMm::Kthread(c) => c.id(),
        }
    }
}

/// One task (`struct task_struct`), reduced to what lazy TLB handling needs.
pub struct Task<S: Scheme> {
    /// Task id, for reports.
    pub pid: u32,
    /// `task->mm`: the address space this task owns a real reference to; `None` for a
    /// kernel thread (and for a user task after `exit_mm`).
    pub mm: Option<TaskMm>,
    /// `PF_KTHREAD`.
    kthread: bool,
    /// `is_idle_task()`: the CPU's idle task (set by [`crate::Kernel::idle_task`]).
    pub(crate) idle: bool,
    /// The scheme's per-task state (`active_mm` under `refcount` and `shootdown`).
    pub scheme: S::TaskState,
}

impl<S: Scheme> Task<S> {
    /// Bytes of per-task state the scheme adds (`size_of::<S::TaskState>()`): its
    /// `active_mm` where it keeps one. It adds nothing else per task; its per-CPU state
    /// is counted per CPU.
    pub const SCHEME_BYTES: usize = core::mem::size_of::<S::TaskState>();

    /// A kernel thread (or an idle task): no `mm`, running lazily on whatever it inherits.
    pub fn kthread(pid: u32) -> Task<S> {
        Task {
            pid,
            mm: None,
            kthread: true,
            idle: false,
            scheme: S::TaskState::default(),
        }
    }

    /// A user task owning `mm`.
    pub(crate) fn user(pid: u32, mm: MmUsers) -> Task<S> {
        let mut scheme = S::TaskState::default();
        S::set_user_active_mm(&mut scheme, mm.id());
        Task {
            pid,
            mm: Some(TaskMm::User(mm)),
            kthread: false,
            idle: false,
            scheme,
        }
    }

    /// The mm this task owns, if any (`task->mm`).
    #[inline]
    pub fn mm_id(&self) -> Option<MmId> {
        self.mm.as_ref().map(TaskMm::id)
    }

    /// Whether this is a kernel thread (`PF_KTHREAD`).
    pub fn is_kthread(&self) -> bool {
        self.kthread
    }

    /// Whether this task runs in user space (has an mm).
    #[inline]
    pub fn is_user(&self) -> bool {
        self.mm.is_some()
    }

    pub(crate) fn set_kthread(&mut self, k: bool) {
        self.kthread = k;
    }

    /// Takes the real user reference of a user task (`exit_mm`, `exec_mmap`).
    pub(crate) fn take_user_mm(&mut self) -> Option<MmUsers> {
        match self.mm.take() {
            Some(TaskMm::User(u)) => Some(u),
            other => {
                self.mm = other;
                None
            }
        }
    }
}

impl<S: Scheme> core::fmt::Debug for Task<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Task")
            .field("pid", &self.pid)
            .field("mm", &self.mm_id())
            .field("kthread", &self.kthread)
            .field("scheme", &self.scheme)
            .finish()
    }
}
