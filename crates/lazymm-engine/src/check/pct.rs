//! The checker's deterministic scheduler: one OS thread per simulated CPU, but only the
//! thread holding the turn runs; the turn moves only at the model's preemption points.
//!
//! At every point the scheduler makes one decision (which CPU runs next) and records it.
//! A fresh run decides by PCT (probabilistic concurrency testing, Burckhardt et al.,
//! ASPLOS 2010): each CPU gets a random priority, the highest-priority CPU runs, and at
//! `depth - 1` random decision indices the running CPU drops to the lowest priority. A
//! CPU that spins (waits for another CPU: an IPI acknowledgement, a barrier) yields:
//! it drops below every other CPU, so the one it waits for gets to run. Some runs add
//! random switches on top (a small probability at each point), for bugs that need many
//! switches rather than a few well-placed ones.
//!
//! Half the runs also hold windows open: at the preemption points of an interrupts-on
//! window the model marks as one a race needs (`Config::window_preempt`:
//! `sched_force_init_mm`'s, and the windows the `exec_mmap` and `kthread_use_mm` mutants
//! reopen), the CPU drops below every other one, as a spinning CPU does. The others then
//! run until they finish or wait for it (an IPI it must answer inside the window), so an
//! exit, its flush and its teardown can all land inside a window that PCT's few change
//! points would rarely keep open that long.
//!
//! A replay decides from a script (the recorded decisions of an earlier run). When the
//! script runs out or names a CPU that has finished, the fallback is fixed: keep running
//! the current CPU unless it spins or has finished, else the next CPU in order. So a
//! truncated script (shrinking) still defines one exact run.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A small, fast, seedable generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How a run chooses at each preemption point.
#[derive(Debug, Clone)]
pub enum Policy {
    /// PCT with random priorities and change points, from a seed.
    Pct {
        /// Seed of the priorities, change points and random switches.
        seed: u64,
        /// PCT depth `d`: `d - 1` priority change points.
        depth: u32,
        /// About how many decisions the run makes (change points fall below this).
        horizon: u64,
        /// One in this many decisions switches to a random CPU (0: never).
        random_switch: u32,
        /// At an interrupts-on window's points the CPU yields to every other CPU.
        hold_windows: bool,
    },
    /// Exactly these decisions, then the fixed fallback.
    Script(Vec<u8>),
}

impl Policy {
    /// The policy of interleaving `seed` of a directed search (the tests that set a
    /// race's programs up by hand and let the scheduler look for the window): PCT of
    /// depth 1 to `max_depth` by seed, over about `horizon` decisions, and on every
    /// even seed a random switch in every 2 to `max_depth` decisions as well; windows
    /// held open on seeds 2 and 3 of every 4.
    pub fn directed(seed: u64, max_depth: u32, horizon: u64) -> Policy {
        Policy::Pct {
            seed,
            depth: 1 + (seed % u64::from(max_depth)) as u32,
            horizon,
            random_switch: if seed % 2 == 0 {
                2 + (seed % u64::from(max_depth - 1)) as u32
            } else {
                0
            },
            hold_windows: seed % 4 >= 2,
        }
    }
}

/// What a host thread calls at each preemption point (installed per thread).
pub trait Observer: Send + Sync {
    /// Called at every point, by the CPU that has been running since the last one.
    fn observe(&self, cpu: usize);
}

struct State {
    current: usize,
    done: Vec<bool>,
    prio: Vec<i64>,
    low: i64,
    rng: Rng,
    change_points: Vec<u64>,
    random_switch: u32,
    hold_windows: bool,
    script: Option<Vec<u8>>,
    decisions: u64,
    trace: Vec<u8>,
    limit: u64,
    /// The decision limit was reached: every CPU now runs freely, as natively.
    free: bool,
}

/// The scheduler shared by the CPU threads of one run.
pub struct Sched {
    state: Mutex<State>,
    turn: Condvar,
    observer: Box<dyn Observer>,
}

impl Sched {
    /// A scheduler for `n` CPUs. `limit` bounds the decisions of one run: past it, the
    /// run is declared stalled and its CPUs run freely so that it still ends.
    pub fn new(n: usize, policy: Policy, limit: u64, observer: Box<dyn Observer>) -> Arc<Sched> {
        let (rng, change_points, random_switch, hold_windows, script, prio) = match policy {
            Policy::Pct {
                seed,
                depth,
                horizon,
                random_switch,
                hold_windows,
            } => {
                let mut rng = Rng::new(seed);
                // Random distinct priorities above every change-point priority.
                let mut prio: Vec<i64> = (0..n as i64).map(|i| i + depth as i64 + 1).collect();
                for i in (1..n).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    prio.swap(i, j);
                }
                let mut cps: Vec<u64> = (1..depth).map(|_| rng.below(horizon.max(1))).collect();
                cps.sort_unstable();
                (rng, cps, random_switch, hold_windows, None, prio)
            }
            Policy::Script(s) => (Rng::new(0), Vec::new(), 0, false, Some(s), vec![0; n]),
        };
        let mut st = State {
            current: 0,
            done: vec![false; n],
            prio,
            low: 0,
            rng,
            change_points,
            random_switch,
            hold_windows,
            script,
            decisions: 0,
            trace: Vec::new(),
            limit,
            free: false,
        };
        st.current = st.choose(0, false);
        Arc::new(Sched {
            state: Mutex::new(st),
            turn: Condvar::new(),
            observer,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks the calling CPU thread until it holds the turn.
    pub fn start(&self, me: usize) {
        let mut st = self.lock();
        while st.current != me && !st.free {
            st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A preemption point of CPU `me`; `spin`: it is waiting for another CPU.
    pub fn point(&self, me: usize, spin: bool) {
        self.observer.observe(me);
        let mut st = self.lock();
        if st.free {
            drop(st);
            if spin {
                std::thread::yield_now();
            }
            return;
        }
        let next = st.choose(me, spin);
        if st.free {
            self.turn.notify_all();
            return;
        }
        if next != me {
            st.current = next;
            self.turn.notify_all();
            while st.current != me && !st.free {
                st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// A preemption point of CPU `me` inside an interrupts-on window a race needs held
    /// open: under a policy that holds windows, `me` first drops below every other CPU.
    pub fn window_point(&self, me: usize) {
        {
            let mut st = self.lock();
            if st.hold_windows && !st.free {
                st.low -= 1;
                st.prio[me] = st.low;
            }
        }
        self.point(me, false);
    }

    /// CPU `me` has finished: hands the turn on for good.
    pub fn finish(&self, me: usize) {
        self.observer.observe(me);
        let mut st = self.lock();
        st.done[me] = true;
        if st.done.iter().all(|d| *d) || st.free {
            return;
        }
        let next = st.choose(me, true);
        st.current = next;
        self.turn.notify_all();
    }

    /// The decisions made so far, and whether the run stalled.
    pub fn trace(&self) -> (Vec<u8>, bool) {
        let st = self.lock();
        (st.trace.clone(), st.free)
    }
}

impl State {
    fn fallback(&self, me: usize, spin: bool) -> usize {
        let n = self.done.len();
        if !spin && !self.done[me] {
            return me;
        }
        (1..=n)
            .map(|d| (me + d) % n)
            .find(|&c| !self.done[c])
            .unwrap_or(me)
    }

    fn choose(&mut self, me: usize, spin: bool) -> usize {
        self.decisions += 1;
        if self.decisions > self.limit {
            self.free = true;
            return me;
        }
        let pos = self.trace.len();
        let next = if let Some(script) = &self.script {
            match script.get(pos) {
                Some(&c) if (c as usize) < self.done.len() && !self.done[c as usize] => c as usize,
                _ => self.fallback(me, spin),
            }
        } else {
            if spin {
                // A waiting CPU yields to every other one.
                self.low -= 1;
                self.prio[me] = self.low;
            }
            while self.change_points.first() == Some(&(pos as u64)) {
                self.change_points.remove(0);
                self.low -= 1;
                self.prio[me] = self.low;
            }
            let live: Vec<usize> = (0..self.done.len()).filter(|&c| !self.done[c]).collect();
            if self.random_switch > 0
                && !live.is_empty()
                && self.rng.below(self.random_switch as u64) == 0
            {
                live[self.rng.below(live.len() as u64) as usize]
            } else {
                live.iter()
                    .copied()
                    .max_by_key(|&c| self.prio[c])
                    .unwrap_or(me)
            }
        };
        self.trace.push(next as u8);
        next
    }
}

std::thread_local! {
    static CTX: std::cell::RefCell<Option<(Arc<Sched>, usize)>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes this host thread CPU `me` of `sched`, and installs the model's hooks.
pub fn enter(sched: Arc<Sched>, me: usize) {
    CTX.with(|c| *c.borrow_mut() = Some((sched, me)));
    lazymm::sync::set_spin_hook(Some(spin_hook));
}

/// Undoes [`enter`].
pub fn leave() {
    lazymm::sync::set_spin_hook(None);
    CTX.with(|c| *c.borrow_mut() = None);
}

fn current() -> Option<(Arc<Sched>, usize)> {
    CTX.with(|c| c.borrow().clone())
}

/// The model's `Config::preempt`: a preemption point between protocol steps.
pub fn preempt_hook() {
    if let Some((s, me)) = current() {
        s.point(me, false);
    }
}

/// The model's `Config::window_preempt`: a preemption point inside an interrupts-on
/// window ([`Sched::window_point`]).
pub fn window_hook() {
    if let Some((s, me)) = current() {
        s.window_point(me);
    }
}

/// The model's spin hook: a CPU waiting for another yields the turn.
pub fn spin_hook() {
    if let Some((s, me)) = current() {
        s.point(me, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Quiet;
    impl Observer for Quiet {
        fn observe(&self, _: usize) {}
    }

    /// Two CPUs each add one to a counter with a read, a preemption point and a write:
    /// a lost update needs a switch exactly between one CPU's read and its write.
    fn lost_update(policy: Policy) -> (u64, Vec<u8>) {
        let counter = AtomicU64::new(0);
        let sched = Sched::new(2, policy, 10_000, Box::new(Quiet));
        std::thread::scope(|s| {
            for me in 0..2 {
                let sched = sched.clone();
                let counter = &counter;
                s.spawn(move || {
                    enter(sched.clone(), me);
                    sched.start(me);
                    for _ in 0..3 {
                        preempt_hook();
                        let v = counter.load(Ordering::Relaxed);
                        preempt_hook();
                        counter.store(v + 1, Ordering::Relaxed);
                    }
                    sched.finish(me);
                    leave();
                });
            }
        });
        (counter.load(Ordering::Relaxed), sched.trace().0)
    }

    #[test]
    fn pct_finds_a_lost_update_and_its_script_replays_it() {
        let found = (0..200u64).find_map(|seed| {
            let (n, trace) = lost_update(Policy::Pct {
                seed,
                depth: 3,
                horizon: 12,
                random_switch: 0,
                hold_windows: false,
            });
            (n < 6).then_some((n, trace))
        });
        let (n, trace) = found.expect("PCT finds the lost update within 200 seeds");
        for _ in 0..3 {
            assert_eq!(
                lost_update(Policy::Script(trace.clone())),
                (n, trace.clone())
            );
        }
    }

    #[test]
    fn without_switches_nothing_is_lost() {
        // Depth 1: no change points, so each CPU runs to the end before the other.
        for seed in 0..20 {
            let (n, _) = lost_update(Policy::Pct {
                seed,
                depth: 1,
                horizon: 12,
                random_switch: 0,
                hold_windows: false,
            });
            assert_eq!(n, 6);
        }
    }
}
