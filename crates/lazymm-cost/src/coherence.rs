//! The coherence cost model: a MESI-style directory per cache line, contended lines
//! served one access at a time, and an event-driven engine that advances whichever
//! simulated CPU is earliest.
//!
//! # The model
//! Each line has an owner (it holds the line Modified or Exclusive) or a set of sharers.
//! An access by CPU `r`:
//! - hits when `r` holds the line well enough (a load with any copy, a store or RMW as
//!   the only holder), costing the machine's hit or uncontended RMW cost;
//! - otherwise misses: the line comes from its owner (one transfer at the distance
//!   between the two CPUs), from the nearest sharer for a load, or from memory; a store or
//!   RMW also invalidates every sharer (in parallel: the farthest one's transfer).
//!
//! Misses on one line are served one at a time: while a transfer is in flight the line
//! is busy, and later requesters wait in its queue. How the line passes decides how a
//! contended line scales, so it follows what the published curves show
//! (perfbook's contended-counter data, `CodeSamples/count/data/*count_atomic:u*` of
//! github.com/paulmckrcu/perfbook: an 8-socket Xeon 8176 plateaus at 28-45 M RMW/s, far
//! faster than its 149-337 ns cross-socket transfer; a POWER5+ p595 declines steadily):
//! - **locality-biased arbitration**: the next owner is the oldest waiter in the same
//!   group as the current owner at the machine's `prefer_level` (its last-level cache or
//!   socket), at most `max_local_handoffs` times in a row, then the oldest waiter anywhere;
//! - **tenure**: after its access an owner holds a contended line for `snoop_hold_ns`
//!   before it answers the waiting snoop, and accesses it issues meanwhile hit, up to
//!   `tenure_rmws` per tenure;
//! - **LL/SC retries** (POWER's larx/stcx.): a contended RMW hand-off keeps the line
//!   busy for `llsc_retry_per_waiter` extra transfers per waiter, the failed stcx.
//!   attempts that steal the line and lose it again.
//!
//! A first-come, average-distance model (no locality, no tenure) is the special case
//! `prefer_level = "none"`, `tenure_rmws = 1`: the tests show it is several times too
//! pessimistic against the measured curves.
//!
//! # The engine
//! [`Engine`] runs agents (simulated CPUs), each with a list of [`Op`]s from a
//! [`Driver`]. It always processes the earliest event (ties in the order they were
//! scheduled), so the same driver gives the same times, byte for byte.

use crate::machine::{Machine, Ps};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// A map keyed by line address with [`LineHasher`].
pub type LineMap<V> = HashMap<u64, V, BuildHasherDefault<LineHasher>>;
use std::hash::{BuildHasherDefault, Hasher};

/// What an access does to its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A load: needs a copy.
    Load,
    /// A store: needs the only copy.
    Store,
    /// An atomic read-modify-write: needs the only copy.
    Rmw,
}

/// One thing a simulated CPU does, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A memory access to a cache line.
    Access {
        /// The line, as a dense id (0, 1, 2, ... in the order the host first met them:
        /// the directory is a table indexed by it).
        line: u64,
        /// Load, store or RMW.
        kind: Kind,
    },
    /// A full fence: the drain of the store buffer.
    Fence,
    /// CPU-local work of this many picoseconds.
    Work(Ps),
    /// Tells the driver that the CPU got here (a wakeup, the end of a teardown):
    /// [`Driver::notify`] runs at this point of simulated time.
    Notify(u32),
}

/// What a CPU does when its op list is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It has new ops (the driver pushed them).
    Run,
    /// It has nothing to do until a [`Driver::notify`] wakes it.
    Park,
    /// It is done for good.
    Stop,
}

/// The source of every simulated CPU's ops.
pub trait Driver {
    /// CPU `cpu` has finished its ops at `now`: push its next ones into `ops` (empty on
    /// entry) and say what it does.
    fn next(&mut self, cpu: usize, now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next;
    /// CPU `cpu` reached `Op::Notify(token)` at `now`. Pushes the CPUs to wake into
    /// `wake`, each with its wakeup latency: a parked one becomes ready that long after
    /// `now` (the driver knows how the target idles; a CPU that is not parked runs
    /// again as soon as its current ops are done).
    fn notify(&mut self, cpu: usize, token: u32, now: Ps, wake: &mut Vec<(usize, Ps)>) {
        let _ = (cpu, token, now, wake);
    }
}

const NOBODY: u32 = u32::MAX;

/// One cache line's directory entry and queue.
///
/// # Invariants
/// `owner != NOBODY` implies `sharers` is empty; a CPU is in `waiters` at most once
/// (each agent has at most one access outstanding).
#[derive(Debug, Default)]
struct Line {
    owner: u32,
    sharers: Vec<u32>,
    /// The line is busy (a transfer in flight, or an owner's hold) until then.
    free_at: Ps,
    /// Waiting misses: CPU, arrival time, kind.
    waiters: VecDeque<(u32, Ps, Kind)>,
    /// Whether a `LineFree` event is in the heap.
    free_event: bool,
    /// Consecutive preferred (near) hand-offs.
    local_streak: u32,
    /// Accesses the current owner may still retire in this tenure.
    tenure_left: u32,
    /// Whether the current tenure already includes the owner's snoop hold.
    held: bool,
    /// Misses on this line served by another CPU's cache (its share of
    /// [`Counts::transfers`]).
    transfers: u64,
}

/// What the engine counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accesses of each kind: loads, stores, RMWs.
    pub loads: u64,
    /// Stores.
    pub stores: u64,
    /// RMWs.
    pub rmws: u64,
    /// Full fences.
    pub fences: u64,
    /// Accesses that hit.
    pub hits: u64,
    /// Misses served by another CPU's cache (HITM-equivalent when the owner held it).
    pub transfers: u64,
    /// Misses served from memory.
    pub memory: u64,
    /// Misses that had to wait in a line's queue.
    pub queued: u64,
    /// Picoseconds spent waiting in line queues, summed over CPUs.
    pub wait_ps: u64,
    /// Events processed.
    pub events: u64,
}

impl Counts {
    /// Memory accesses of every kind.
    pub fn accesses(&self) -> u64 {
        self.loads + self.stores + self.rmws
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// An event for it is in the heap.
    Ready,
    /// Waiting in a line's queue.
    Waiting,
    /// Parked until woken.
    Parked,
    /// Done.
    Stopped,
}

struct Agent {
    ops: Vec<Op>,
    pos: usize,
    state: State,
    /// A wakeup arrived while it was not parked.
    woken: bool,
    now: Ps,
    /// Picoseconds of CPU-local work (Work and fences) and of memory accesses.
    busy_ps: Ps,
    /// Interrupt handlers' time, paid before the next op.
    steal: Ps,
}

/// A fast, deterministic hasher for line addresses (Fibonacci hashing), for hosts that
/// turn addresses into dense line ids.
#[derive(Default)]
pub struct LineHasher(u64);

impl Hasher for LineHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ (x >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Marks a line's event (else the code is a CPU). Codes take the low 24 bits of an
/// event key: CPUs and lines stay below 2^23.
const LINE_EVENT: u32 = 1 << 23;

/// An event key: time, then the order it was scheduled in, then what it is for; one
/// integer, so the heap compares once.
#[inline]
fn key(t: Ps, seq: u64, code: u32) -> u128 {
    (u128::from(t) << 64) | (u128::from(seq & ((1 << 40) - 1)) << 24) | u128::from(code & 0xFF_FFFF)
}

/// Every line's directory entry, and what the model counted: the part of the engine a
/// driver may use directly ([`Directory::access_direct`]).
pub struct Directory<'m> {
    m: &'m Machine,
    lines: Vec<Line>,
    counts: Counts,
    tenure: u32,
    retry: f64,
    steals: Vec<(usize, Ps)>,
}

/// The event engine over one machine.
pub struct Engine<'m> {
    m: &'m Machine,
    dir: Directory<'m>,
    agents: Vec<Agent>,
    heap: BinaryHeap<Reverse<u128>>,
    seq: u64,
    max_local: u32,
    wake_buf: Vec<(usize, Ps)>,
}

impl<'m> Engine<'m> {
    /// An engine for `cpus` simulated CPUs of machine `m` (CPU `i` is the machine's CPU
    /// `i`), all ready at time 0.
    pub fn new(m: &'m Machine, cpus: usize) -> Engine<'m> {
        assert!(
            cpus <= m.nr_cpus,
            "{cpus} CPUs on a {}-CPU machine",
            m.nr_cpus
        );
        let mut e = Engine {
            m,
            dir: Directory::new(m),
            agents: (0..cpus)
                .map(|_| Agent {
                    ops: Vec::new(),
                    pos: 0,
                    state: State::Ready,
                    woken: false,
                    now: 0,
                    busy_ps: 0,
                    steal: 0,
                })
                .collect(),
            heap: BinaryHeap::new(),
            seq: 0,
            max_local: m.file.handoff.max_local_handoffs,
            wake_buf: Vec::new(),
        };
        for c in 0..cpus {
            e.push(0, c as u32);
        }
        e
    }

    /// The machine.
    pub fn machine(&self) -> &'m Machine {
        self.m
    }

    /// CPU `cpu`'s clock: the time its last op finished.
    pub fn now(&self, cpu: usize) -> Ps {
        self.agents[cpu].now
    }

    /// Picoseconds CPU `cpu` spent busy (work, fences, accesses) rather than parked.
    pub fn busy(&self, cpu: usize) -> Ps {
        self.agents[cpu].busy_ps
    }

    /// The latest clock of any CPU.
    pub fn horizon(&self) -> Ps {
        self.agents.iter().map(|a| a.now).max().unwrap_or(0)
    }

    fn push(&mut self, t: Ps, code: u32) {
        self.seq += 1;
        debug_assert!(code & 0xFF_FFFF == code, "event code {code} out of range");
        self.heap.push(Reverse(key(t, self.seq, code)));
    }

    /// What the model counted so far.
    pub fn counts(&self) -> Counts {
        self.dir.counts
    }

    /// The transfers of each line so far, by dense line id.
    pub fn line_transfers(&self) -> impl Iterator<Item = u64> + '_ {
        self.dir.line_transfers()
    }

    /// Runs until every CPU has stopped, or until simulated time `until`; returns the
    /// time reached.
    pub fn run(&mut self, d: &mut impl Driver, until: Ps) -> Ps {
        while let Some(&Reverse(k)) = self.heap.peek() {
            let (t, code) = ((k >> 64) as Ps, (k & 0xFF_FFFF) as u32);
            if t > until {
                return until;
            }
            self.heap.pop();
            self.dir.counts.events += 1;
            if code & LINE_EVENT != 0 {
                self.line_free((code & !LINE_EVENT) as usize, t);
            } else {
                self.cpu_ready(code as usize, t, d, until);
            }
        }
        self.horizon()
    }

    /// Whether the CPU may go on at `t` without an event: nothing else is due before
    /// `t` (events due at `t` itself may come after it: ties go to whoever runs).
    #[inline]
    fn may_continue(&self, t: Ps) -> bool {
        self.heap
            .peek()
            .is_none_or(|Reverse(k)| t <= (k >> 64) as Ps)
    }

    fn cpu_ready(&mut self, c: usize, mut t: Ps, d: &mut impl Driver, until: Ps) {
        // Interrupt handlers that ran on this CPU since it last ran delay it.
        t += std::mem::take(&mut self.agents[c].steal);
        let mut start = t;
        loop {
            let (pos, len) = (self.agents[c].pos, self.agents[c].ops.len());
            if pos >= len {
                if t > until || !self.may_continue(t) {
                    let a = &mut self.agents[c];
                    // The next step runs model code that other CPUs see: in time order.
                    a.busy_ps += t - start;
                    a.now = t;
                    a.state = State::Ready;
                    self.push(t, c as u32);
                    return;
                }
                let a = &mut self.agents[c];
                a.now = t;
                a.busy_ps += t - start;
                start = t;
                let mut ops = std::mem::take(&mut a.ops);
                ops.clear();
                let next = d.next(c, t, &mut ops, &mut self.dir);
                for (s, ps) in std::mem::take(&mut self.dir.steals) {
                    self.agents[s].steal += ps;
                }
                let a = &mut self.agents[c];
                a.ops = ops;
                a.pos = 0;
                match next {
                    // The list is fresh and no time has passed: go on with it.
                    Next::Run if !a.ops.is_empty() => continue,
                    Next::Run | Next::Park if a.woken => {
                        a.woken = false;
                        // A wakeup came while it was running: run again at once.
                        a.state = State::Ready;
                        self.push(t, c as u32);
                        return;
                    }
                    // A driver with nothing to run is parked, or it would spin forever.
                    Next::Run | Next::Park => {
                        a.state = State::Parked;
                        return;
                    }
                    Next::Stop => {
                        a.state = State::Stopped;
                        return;
                    }
                }
            }
            let op = self.agents[c].ops[pos];
            if matches!(op, Op::Access { .. } | Op::Notify(_))
                && (t > until || !self.may_continue(t))
            {
                // Only accesses and notifications meet other CPUs: they wait for their
                // turn in time; CPU-local work before them needs no event of its own.
                let a = &mut self.agents[c];
                a.busy_ps += t - start;
                a.now = t;
                a.state = State::Ready;
                self.push(t, c as u32);
                return;
            }
            self.agents[c].pos += 1;
            match op {
                Op::Work(w) => t += w,
                Op::Fence => {
                    self.dir.counts.fences += 1;
                    t += self.m.fence;
                }
                Op::Notify(tok) => {
                    let mut wake = std::mem::take(&mut self.wake_buf);
                    d.notify(c, tok, t, &mut wake);
                    for &(w, latency) in &wake {
                        self.wake(w, t + latency);
                    }
                    wake.clear();
                    self.wake_buf = wake;
                }
                Op::Access { line, kind } => {
                    let li = self.dir.line(line);
                    match self.access(c, li, kind, t) {
                        Some(done) => t = done,
                        None => {
                            let a = &mut self.agents[c];
                            a.busy_ps += t - start;
                            a.now = t;
                            a.state = State::Waiting;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Wakes CPU `w`: a parked CPU becomes ready at `at`.
    fn wake(&mut self, w: usize, at: Ps) {
        let a = &mut self.agents[w];
        match a.state {
            State::Parked => {
                a.state = State::Ready;
                self.push(at, w as u32);
            }
            State::Stopped => {}
            _ => a.woken = true,
        }
    }

    /// CPU `c` accesses line `li` at `t`: the completion time, or `None` if it must wait.
    fn access(&mut self, c: usize, li: usize, kind: Kind, t: Ps) -> Option<Ps> {
        match kind {
            Kind::Load => self.dir.counts.loads += 1,
            Kind::Store => self.dir.counts.stores += 1,
            Kind::Rmw => self.dir.counts.rmws += 1,
        }
        let m = self.m;
        let l = &mut self.dir.lines[li];
        let me = c as u32;
        let hit = match kind {
            Kind::Load => l.owner == me || l.sharers.contains(&me),
            Kind::Store | Kind::Rmw => l.owner == me,
        };
        if hit {
            let cost = match kind {
                Kind::Load => m.load_hit,
                Kind::Store => m.store_hit,
                Kind::Rmw => m.rmw,
            };
            if l.waiters.is_empty() || t > l.free_at {
                // Uncontended, or the owner's hold has passed and nobody took it yet.
                self.dir.counts.hits += 1;
                if l.owner == me {
                    l.free_at = l.free_at.max(t + cost);
                }
                return Some(t + cost);
            }
            if l.tenure_left > 0 && l.owner == me {
                // Within the hold: the owner retires one more access of its tenure.
                l.tenure_left -= 1;
                self.dir.counts.hits += 1;
                l.free_at = t + cost + m.snoop_hold;
                return Some(t + cost);
            }
            if kind == Kind::Load && l.owner != me {
                // A shared copy stays valid while a writer waits.
                self.dir.counts.hits += 1;
                return Some(t + cost);
            }
        }
        if l.free_at <= t && l.waiters.is_empty() {
            return Some(self.grant(li, c, kind, t));
        }
        l.waiters.push_back((me, t, kind));
        self.dir.counts.queued += 1;
        if !l.held {
            // The first snoop of this tenure: the owner answers after its hold.
            l.held = true;
            if l.free_at >= t {
                l.free_at += m.snoop_hold;
            }
        }
        if !l.free_event {
            l.free_event = true;
            let at = l.free_at.max(t);
            self.push(at, LINE_EVENT | li as u32);
        }
        None
    }

    /// Gives line `li` to CPU `c` for an access of `kind` starting at `t`; returns when
    /// the access completes.
    fn grant(&mut self, li: usize, c: usize, kind: Kind, t: Ps) -> Ps {
        let done = t + self.dir.take(li, c, kind);
        let l = &mut self.dir.lines[li];
        l.tenure_left = self.dir.tenure - 1;
        l.held = !l.waiters.is_empty();
        l.free_at = done + if l.held { self.m.snoop_hold } else { 0 };
        done
    }

    /// Wakes CPU `c` at `t` from outside an op (the host ending a phase).
    pub fn wake_cpu(&mut self, c: usize, t: Ps) {
        self.wake(c, t);
    }

    /// The line's busy period ended: hand it to the next waiter.
    fn line_free(&mut self, li: usize, t: Ps) {
        let m = self.m;
        let max_local = self.max_local;
        let l = &mut self.dir.lines[li];
        if t < l.free_at {
            // The owner extended its tenure meanwhile.
            let at = l.free_at;
            self.push(at, LINE_EVENT | li as u32);
            return;
        }
        l.free_event = false;
        if l.waiters.is_empty() {
            return;
        }
        let holder = if l.owner != NOBODY {
            Some(l.owner as usize)
        } else {
            l.sharers.first().map(|&s| s as usize)
        };
        let mut pick = 0;
        if let Some(h) = holder {
            if l.local_streak < max_local {
                if let Some(i) = l
                    .waiters
                    .iter()
                    .position(|&(w, _, _)| m.near(w as usize, h))
                {
                    pick = i;
                }
            }
            if m.near(l.waiters[pick].0 as usize, h) {
                l.local_streak += 1;
            } else {
                l.local_streak = 0;
            }
            if l.local_streak > max_local {
                l.local_streak = 0;
            }
        }
        let Some((w, arrived, kind)) = l.waiters.remove(pick) else {
            return;
        };
        self.dir.counts.wait_ps += t - arrived;
        let done = self.grant(li, w as usize, kind, t);
        let l = &mut self.dir.lines[li];
        if !l.waiters.is_empty() {
            l.free_event = true;
            let at = l.free_at;
            self.push(at, LINE_EVENT | li as u32);
        }
        let a = &mut self.agents[w as usize];
        a.busy_ps += done - arrived;
        a.state = State::Ready;
        self.push(done, w);
    }
}

impl<'m> Directory<'m> {
    /// An empty directory of machine `m`: every line uncached.
    pub fn new(m: &'m Machine) -> Directory<'m> {
        Directory {
            m,
            lines: Vec::new(),
            counts: Counts::default(),
            tenure: m.file.handoff.tenure_rmws,
            retry: m.file.handoff.llsc_retry_per_waiter,
            steals: Vec::new(),
        }
    }

    /// What it counted so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The transfers of each line so far, by dense line id (lines never met: absent).
    pub fn line_transfers(&self) -> impl Iterator<Item = u64> + '_ {
        self.lines.iter().map(|l| l.transfers)
    }

    /// The entry of line `id` (ids are dense: the table grows to the largest one seen).
    #[inline]
    fn line(&mut self, id: u64) -> usize {
        let i = id as usize;
        if i >= self.lines.len() {
            assert!(i < LINE_EVENT as usize, "line id {id}: at most 2^23 lines");
            self.lines.resize_with(i + 1, || Line {
                owner: NOBODY,
                ..Line::default()
            });
        }
        i
    }

    /// Moves line `li` to CPU `c` in the directory for an access of `kind` and returns
    /// what the access costs: the fetch (from the owner, the nearest sharer, or memory),
    /// the invalidations, the operation itself and any LL/SC retries.
    fn take(&mut self, li: usize, c: usize, kind: Kind) -> Ps {
        let m = self.m;
        let l = &mut self.lines[li];
        let me = c as u32;
        let waiters = l.waiters.len() as f64;
        let (fetch, from_memory) = if l.owner != NOBODY && l.owner != me {
            (m.transfer(l.owner as usize, c), false)
        } else if !l.sharers.is_empty() {
            let others = l.sharers.iter().filter(|&&s| s != me);
            match kind {
                Kind::Load => (
                    others
                        .map(|&s| m.transfer(s as usize, c))
                        .min()
                        .unwrap_or(0),
                    false,
                ),
                // Invalidate every other copy, in parallel.
                Kind::Store | Kind::Rmw => (
                    others
                        .map(|&s| m.transfer(s as usize, c))
                        .max()
                        .unwrap_or(0),
                    false,
                ),
            }
        } else if l.owner == me {
            (0, false)
        } else {
            (m.memory, true)
        };
        if from_memory {
            self.counts.memory += 1;
        } else if fetch > 0 {
            self.counts.transfers += 1;
            l.transfers += 1;
        } else {
            self.counts.hits += 1;
        }
        let op = match kind {
            Kind::Load => m.load_hit,
            Kind::Store => m.store_hit,
            Kind::Rmw => m.rmw,
        };
        // LL/SC: the waiters' failed stcx. attempts move the line back and forth.
        let retries = if kind == Kind::Rmw && !from_memory {
            (fetch as f64 * waiters * self.retry).round() as Ps
        } else {
            0
        };
        match kind {
            Kind::Load => {
                if l.owner != NOBODY && l.owner != me {
                    let o = l.owner;
                    l.sharers.push(o);
                    l.owner = NOBODY;
                }
                if l.owner != me && !l.sharers.contains(&me) {
                    l.sharers.push(me);
                }
            }
            Kind::Store | Kind::Rmw => {
                l.sharers.clear();
                l.owner = me;
            }
        }
        fetch + op + retries
    }

    /// An access by CPU `c` to `line` that does not queue: an IPI handler's, which runs
    /// while its sender waits for it. Moves the line in the directory and returns the
    /// cost (a hit's, or a transfer's).
    pub fn access_direct(&mut self, c: usize, line: u64, kind: Kind) -> Ps {
        match kind {
            Kind::Load => self.counts.loads += 1,
            Kind::Store => self.counts.stores += 1,
            Kind::Rmw => self.counts.rmws += 1,
        }
        let li = self.line(line);
        self.take(li, c, kind)
    }

    /// Delays CPU `c` by `ps` (an interrupt handler ran on it): the engine adds it
    /// before the CPU's next op.
    pub fn steal(&mut self, c: usize, ps: Ps) {
        self.steals.push((c, ps));
    }
}
