//! Each CPU's doorbell and inbox: how threaded hosts wake tasks on other CPUs and place
//! new tasks there.

use super::{HostTask, RqView, Runqueue, Topology, MAX_TASKS};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Kernel, Scheme};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// The doorbell bit that says tasks wait in the inbox or moves were asked for (above
/// every task bit).
const PLACED: u64 = 1 << MAX_TASKS;

/// One CPU's mailbox.
///
/// # Invariants
/// The doorbell is written only by CPUs that ring it (and swapped to zero by its owner);
/// the owner reads it once per turn, so that line is the only one its switch path reads
/// that other CPUs write, and it is written only when there is news. A task in the inbox
/// is pushed, and a move's bit and destination are set, before `PLACED` is set, so an
/// owner that sees the bit finds them.
struct Mailbox<S: Scheme, P> {
    /// Bit `i`: task `i` was woken; `PLACED`: the inbox has tasks or `moves` has bits.
    doorbell: CachePadded<AtomicU64>,
    /// Tasks placed on this CPU by other CPUs, waiting to be adopted.
    inbox: CachePadded<Mutex<Vec<HostTask<S, P>>>>,
    /// Bit `i`: task `i` was woken to run on CPU `dest[i]`; it is to be handed over.
    moves: CachePadded<AtomicU64>,
    /// Where each woken-away task goes.
    dest: Box<[AtomicU32]>,
}

/// The mailboxes of every CPU of a threaded host: cross-CPU wakeups, moves and
/// placement, and the [`RqView`] wakeups are placed by.
pub struct Mailboxes<S: Scheme, P> {
    cpus: Box<[Mailbox<S, P>]>,
    view: RqView,
}

impl<S: Scheme, P> Mailboxes<S, P> {
    /// Empty mailboxes for the CPUs of `topo`.
    pub fn new(topo: Topology) -> Self {
        Mailboxes {
            cpus: (0..topo.nr_cpus())
                .map(|_| Mailbox {
                    doorbell: CachePadded(AtomicU64::new(0)),
                    inbox: CachePadded(Mutex::new(Vec::new())),
                    moves: CachePadded(AtomicU64::new(0)),
                    dest: (0..MAX_TASKS).map(|_| AtomicU32::new(0)).collect(),
                })
                .collect(),
            view: RqView::new(topo),
        }
    }

    /// The CPUs' load as wakeups see it.
    pub fn view(&self) -> &RqView {
        &self.view
    }

    /// Wakes task `task` of CPU `cpu`: one bit in its doorbell.
    #[inline]
    pub fn wake(&self, cpu: usize, task: usize) {
        debug_assert!(task < MAX_TASKS);
        self.view.ring(cpu);
        // ORDERING: Release pairs with the Acquire swap in `deliver`: what the waker did
        // before the wakeup is visible to the woken task.
        self.cpus[cpu]
            .doorbell
            .fetch_or(1 << task, Ordering::Release);
    }

    /// Wakes task `task` of CPU `cpu` to run on CPU `to`: CPU `cpu` hands it over at its
    /// next delivery ([`Mailboxes::deliver`]).
    pub fn wake_to(&self, cpu: usize, task: usize, to: usize) {
        debug_assert!(task < MAX_TASKS);
        let m = &self.cpus[cpu];
        self.view.ring(to);
        // Relaxed: published by the Release fetch_or of `moves` below.
        m.dest[task].store(to as u32, Ordering::Relaxed);
        // ORDERING: Release pairs with the Acquire swap of `moves` in `hand_over`: the
        // destination (and what the waker did) is visible to the owner.
        m.moves.fetch_or(1 << task, Ordering::Release);
        // ORDERING: Release pairs with the Acquire swap in `deliver`.
        m.doorbell.fetch_or(PLACED, Ordering::Release);
    }

    /// Puts `t` in CPU `cpu`'s inbox and rings its doorbell.
    pub fn place(&self, cpu: usize, t: HostTask<S, P>) {
        let m = &self.cpus[cpu];
        self.view.ring(cpu);
        m.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(t);
        // ORDERING: Release pairs with the Acquire swap in `deliver` (the mutex itself
        // orders the task for the owner that takes it).
        m.doorbell.fetch_or(PLACED, Ordering::Release);
    }

    /// Delivers what other CPUs sent to `rq`'s CPU: wakeups become runnable bits, tasks
    /// woken to run elsewhere are handed over there, placed tasks are adopted (runnable
    /// when `runnable`). One load of the doorbell when there is nothing.
    ///
    /// With `runnable` false (quiescing: the other CPUs may have taken their last
    /// delivery already), a task woken to run elsewhere stays here, to exit here.
    #[inline]
    pub fn deliver<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>, runnable: bool) {
        let bell = &self.cpus[rq.cpu.id].doorbell;
        if bell.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.view.delivered(rq.cpu.id);
        // ORDERING: Acquire pairs with the Release fetch_or in `wake`, `wake_to` and
        // `place`.
        let bits = bell.swap(0, Ordering::Acquire);
        rq.wake_bits(bits & !PLACED);
        if bits & PLACED != 0 {
            if runnable {
                self.hand_over(k, rq);
            } else {
                // ORDERING: Acquire pairs with the Release fetch_or in `wake_to`.
                self.cpus[rq.cpu.id].moves.swap(0, Ordering::Acquire);
            }
            self.adopt(k, rq, runnable);
        }
        rq.publish(&self.view);
    }

    /// Hands the tasks woken to run elsewhere over to their new CPUs.
    #[cold]
    fn hand_over<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>) {
        let m = &self.cpus[rq.cpu.id];
        // ORDERING: Acquire pairs with the Release fetch_or in `wake_to`.
        let mut bits = m.moves.swap(0, Ordering::Acquire);
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let to = m.dest[i].load(Ordering::Relaxed) as usize;
            let t = rq.take_moving(k, i);
            self.place(to, t);
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
