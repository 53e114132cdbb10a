//! Each CPU's doorbell and inbox: how threaded hosts wake tasks on other CPUs and place
//! new tasks there.

use super::{HostTask, Runqueue, MAX_TASKS};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Kernel, Scheme};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The doorbell bit that says tasks wait in the inbox (above every task bit).
const PLACED: u64 = 1 << MAX_TASKS;

/// One CPU's mailbox.
///
/// # Invariants
/// The doorbell is written only by CPUs that ring it (and swapped to zero by its owner);
/// the owner reads it once per turn, so that line is the only one its switch path reads
/// that other CPUs write, and it is written only when there is news. A task in the inbox
/// is pushed before `PLACED` is set, so an owner that sees the bit finds the task.
struct Mailbox<S: Scheme, P> {
    /// Bit `i`: task `i` was woken; `PLACED`: the inbox has tasks.
    doorbell: CachePadded<AtomicU64>,
    /// Tasks placed on this CPU by other CPUs, waiting to be adopted.
    inbox: CachePadded<Mutex<Vec<HostTask<S, P>>>>,
}

/// The mailboxes of every CPU of a threaded host: cross-CPU wakeups and placement.
pub struct Mailboxes<S: Scheme, P> {
    cpus: Box<[Mailbox<S, P>]>,
}

impl<S: Scheme, P> Mailboxes<S, P> {
    /// Empty mailboxes for `n` CPUs.
    pub fn new(n: usize) -> Self {
        Mailboxes {
            cpus: (0..n)
                .map(|_| Mailbox {
                    doorbell: CachePadded(AtomicU64::new(0)),
                    inbox: CachePadded(Mutex::new(Vec::new())),
                })
                .collect(),
        }
    }

    /// Wakes task `task` of CPU `cpu`: one bit in its doorbell.
    #[inline]
    pub fn wake(&self, cpu: usize, task: usize) {
        debug_assert!(task < MAX_TASKS);
        // ORDERING: Release pairs with the Acquire swap in `deliver`: what the waker did
        // before the wakeup is visible to the woken task.
        self.cpus[cpu]
            .doorbell
            .fetch_or(1 << task, Ordering::Release);
    }

    /// Puts `t` in CPU `cpu`'s inbox and rings its doorbell.
    pub fn place(&self, cpu: usize, t: HostTask<S, P>) {
        let m = &self.cpus[cpu];
        m.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(t);
        // ORDERING: Release pairs with the Acquire swap in `deliver` (the mutex itself
        // orders the task for the owner that takes it).
        m.doorbell.fetch_or(PLACED, Ordering::Release);
    }

    /// Delivers what other CPUs sent to `rq`'s CPU: wakeups become runnable bits, placed
    /// tasks are adopted (runnable when `runnable`). One load of the doorbell when there
    /// is nothing.
    #[inline]
    pub fn deliver<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>, runnable: bool) {
        let bell = &self.cpus[rq.cpu.id].doorbell;
        if bell.load(Ordering::Relaxed) == 0 {
            return;
        }
        // ORDERING: Acquire pairs with the Release fetch_or in `wake` and `place`.
        let bits = bell.swap(0, Ordering::Acquire);
        rq.wake_bits(bits & !PLACED);
        if bits & PLACED != 0 {
            self.adopt(k, rq, runnable);
        }
    }

    #[cold]
    fn adopt<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>, runnable: bool) {
        let new = std::mem::take(
            &mut *self.cpus[rq.cpu.id]
                .inbox
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in new {
            rq.adopt(k, t, runnable);
        }
    }
}
