//! What a real context switch costs on this host, and CPU-local work of a chosen length;
//! the host a bench ran on ([`HostInfo`]) and how busy it was ([`LoadReport`]).
//!
//! The model's own context switch costs nanoseconds; a real kernel's costs about a
//! microsecond (saving registers, the scheduler's pick, the CR3 write and the TLB misses
//! after it). Counted in bookkeeping alone, one shared atomic looks far more expensive
//! than it is to a real kernel. The bench therefore measures the host's real switch cost
//! once ([`host_switch_ns`]: two threads on one core ping-ponging a byte, as
//! will-it-scale's `context_switch1` does) and reruns every row with that much CPU-local
//! work ([`SwitchWork`]) after each simulated switch.
//!
//! It also records how busy the host was ([`HostLoad`]: the load average and the CPU
//! time the hypervisor stole), so a report taken on a loaded machine says so.
//!
//! It also measures what one full barrier costs here ([`host_fence_ns`]): the opt-out
//! schemes pay their protocol in full barriers rather than in shared writes, so their
//! gap to `none` in bookkeeping mode is read against this number.

use lazymm::sync::raw::{fence, AtomicU64};
use lazymm::sync::Ordering;
use serde::Serialize;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Instant;

/// One turn of the work loop: a multiply-add on a register, kept from being optimised
/// away or vectorised by `black_box`. It touches no memory but its own stack.
#[inline(always)]
fn turn(x: u64, i: u64) -> u64 {
    black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i))
}

/// Spins for `iters` turns and returns the value (so the work cannot be elided).
#[inline(never)]
pub fn spin(iters: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..iters {
        x = turn(x, i);
    }
    x
}

/// Turns of [`spin`] per nanosecond on this host, measured once per process.
///
/// The best of a few timed runs of about a millisecond each: the fastest run is the one
/// least disturbed by preemption, and so the truest rate.
pub fn spin_turns_per_ns() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        const ITERS: u64 = 1 << 20;
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t0 = Instant::now();
            black_box(spin(black_box(ITERS)));
            let ns = t0.elapsed().as_nanos() as f64;
            best = best.min(ns.max(1.0));
        }
        ITERS as f64 / best
    })
}

/// CPU-local work done after each simulated context switch (realistic mode).
///
/// # Invariants
/// `iters` is fixed when the value is made, so the switch path reads no clock: it only
/// spins, on registers, for about the nanoseconds asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchWork {
    iters: u64,
}

impl SwitchWork {
    /// About `ns` nanoseconds of work per switch (0: none).
    pub fn from_ns(ns: u64) -> SwitchWork {
        if ns == 0 {
            return SwitchWork { iters: 0 };
        }
        // INVARIANT: the calibration happens here, once, never on the switch path.
        SwitchWork {
            iters: ((ns as f64) * spin_turns_per_ns()).round().max(1.0) as u64,
        }
    }

    /// Does the work (nothing when none was asked for).
    #[inline]
    pub fn run(self) {
        if self.iters != 0 {
            black_box(spin(self.iters));
        }
    }
}

/// The host's real context-switch cost, as measured by [`host_switch_ns`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostSwitch {
    /// Nanoseconds per context switch (one round trip is two switches): the fastest of
    /// the trials, the one least disturbed by other work on the core.
    pub ns_per_switch: f64,
    /// Whether both threads were pinned to one core (when not, the number includes
    /// cross-core wakeups and is an upper bound).
    pub pinned: bool,
    /// Round trips per trial.
    pub round_trips: u32,
}

/// Measures the host's context-switch cost: two threads pinned to the same core pass one
/// byte back and forth through a Unix socket pair, so every hand-off blocks one thread
/// and wakes the other (will-it-scale's `context_switch1`, with a socket for the pipe).
///
/// Runs `trials` trials of `round_trips` round trips each and reports the fastest: other
/// work on the host only ever adds to a trial's time, so the fastest is the truest. Both
/// threads are new ones, so the caller's own CPU affinity is left as it was. Fails only
/// if the host cannot make a socket pair or a thread.
pub fn host_switch_ns(round_trips: u32, trials: u32) -> std::io::Result<HostSwitch> {
    let core = core_affinity::get_core_ids().and_then(|c| c.into_iter().next());
    let round_trips = round_trips.max(2);
    let mut results = Vec::new();
    let mut pinned = core.is_some();
    for _ in 0..trials.max(1) {
        let (mut a, mut b) = UnixStream::pair()?;
        let pin = move || core.is_some_and(core_affinity::set_for_current);
        let partner = std::thread::Builder::new()
            .name("lazymm-pong".into())
            .spawn(move || -> std::io::Result<bool> {
                let ok = pin();
                let mut byte = [0u8; 1];
                for _ in 0..round_trips {
                    b.read_exact(&mut byte)?;
                    b.write_all(&byte)?;
                }
                Ok(ok)
            })?;
        let ping = std::thread::Builder::new()
            .name("lazymm-ping".into())
            .spawn(move || -> std::io::Result<(bool, f64)> {
                let ok = pin();
                let mut byte = [7u8; 1];
                // One round trip first, so both threads are up and on their core.
                a.write_all(&byte)?;
                a.read_exact(&mut byte)?;
                let t0 = Instant::now();
                for _ in 1..round_trips {
                    a.write_all(&byte)?;
                    a.read_exact(&mut byte)?;
                }
                Ok((ok, t0.elapsed().as_nanos() as f64))
            })?;
        let panicked = |_| std::io::Error::other("a ping-pong thread panicked");
        let (ok, ns) = ping.join().map_err(panicked)??;
        let partner_ok = partner.join().map_err(panicked)??;
        pinned &= ok && partner_ok;
        results.push(ns / (2.0 * f64::from(round_trips - 1)));
    }
    results.sort_by(f64::total_cmp);
    Ok(HostSwitch {
        ns_per_switch: results[0],
        pinned,
        round_trips,
    })
}

/// One turn without a barrier: a store, then a load of another location.
///
/// With [`store_fence_load`], the unit [`host_fence_ns`] and the `barrier` micro-benchmark
/// both time, so the report's figure and the benchmark's are the same code.
#[inline(always)]
pub fn store_load(x: &AtomicU64, y: &AtomicU64, v: u64) -> u64 {
    // ORDERING: Relaxed: these locations exist only to give the fence a store before it
    // and a load after it; nothing pairs with them.
    x.store(v, Ordering::Relaxed);
    y.load(Ordering::Relaxed)
}

/// One turn with the model's `smp_mb` between the store and the load: the
/// store-buffering shape property f's barrier is there for, so the fence has a store to
/// drain.
#[inline(always)]
pub fn store_fence_load(x: &AtomicU64, y: &AtomicU64, v: u64) -> u64 {
    // ORDERING: Relaxed, as in `store_load`.
    x.store(v, Ordering::Relaxed);
    // ORDERING: the barrier being measured; it pairs with nothing.
    fence(Ordering::SeqCst);
    y.load(Ordering::Relaxed)
}

/// Nanoseconds one full barrier costs on this host, where the model issues it: between
/// a store and a load (`smp_mb()` in the model is the facade's `fence(SeqCst)`).
///
/// Each trial times `iters` turns of [`store_fence_load`] and of [`store_load`]. The
/// result is the difference of the fastest trial of each, per turn: other work on the
/// host only ever adds time, so the fastest trials are the truest.
pub fn host_fence_ns(iters: u32, trials: u32) -> f64 {
    let (x, y) = (AtomicU64::new(0), AtomicU64::new(0));
    let (x, y) = (black_box(&x), black_box(&y));
    let timed = |turn: fn(&AtomicU64, &AtomicU64, u64) -> u64| {
        let t0 = Instant::now();
        for i in 0..u64::from(iters) {
            black_box(turn(x, y, i));
        }
        t0.elapsed().as_nanos() as f64
    };
    let (mut without, mut with) = (f64::MAX, f64::MAX);
    for _ in 0..trials.max(1) {
        without = without.min(timed(store_load));
        with = with.min(timed(store_fence_load));
    }
    (with - without).max(0.0) / f64::from(iters.max(1))
}

/// How busy the host is, from `/proc/loadavg` and the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostLoad {
    /// Runnable and uninterruptible tasks, averaged over 1 minute.
    pub loadavg_1: f64,
    /// The same over 5 minutes.
    pub loadavg_5: f64,
    /// The same over 15 minutes.
    pub loadavg_15: f64,
    /// CPU time the hypervisor gave to other guests while this one wanted to run
    /// (`steal`, in clock ticks, summed over CPUs, since boot).
    pub steal_ticks: u64,
    /// All CPU time (every field of the `cpu` line, in clock ticks, since boot).
    pub total_ticks: u64,
}

impl HostLoad {
    /// The host's load now; `None` where `/proc` does not say (not Linux).
    pub fn now() -> Option<HostLoad> {
        let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        HostLoad::parse(&loadavg, &stat)
    }

    /// Reads the figures from the text of `/proc/loadavg` and `/proc/stat`.
    pub fn parse(loadavg: &str, stat: &str) -> Option<HostLoad> {
        let mut avg = loadavg.split_whitespace().map(str::parse::<f64>);
        let (loadavg_1, loadavg_5, loadavg_15) =
            (avg.next()?.ok()?, avg.next()?.ok()?, avg.next()?.ok()?);
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        let cpu = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some("cpu"))?;
        let ticks: Vec<u64> = cpu
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // guest and guest_nice are already counted in user and nice.
        let total_ticks = ticks.iter().take(8).sum();
        Some(HostLoad {
            loadavg_1,
            loadavg_5,
            loadavg_15,
            steal_ticks: ticks.get(7).copied().unwrap_or(0),
            total_ticks,
        })
    }

    /// The share of CPU time stolen between `self` (earlier) and `later`, in percent.
    pub fn steal_percent_until(&self, later: &HostLoad) -> Option<f64> {
        let total = later.total_ticks.checked_sub(self.total_ticks)?;
        let steal = later.steal_ticks.checked_sub(self.steal_ticks)?;
        (total > 0).then(|| 100.0 * steal as f64 / total as f64)
    }
}

/// The machine that produced a report.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// The host name.
    pub hostname: String,
    /// `available_parallelism`.
    pub cpus: usize,
    /// Operating system and architecture (`linux x86_64`).
    pub os: String,
    /// The CPU model from `/proc/cpuinfo`, if there is one.
    pub cpu_model: Option<String>,
}

impl HostInfo {
    /// Describes this host.
    pub fn this() -> HostInfo {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("cpu\t"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        HostInfo {
            hostname,
            cpus: crate::bench::plan::host_cpus(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu_model,
        }
    }
}

/// How busy the host was while the bench ran, and whether that makes the numbers
/// suspect.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Before the first run.
    pub start: Option<HostLoad>,
    /// After the last run.
    pub end: Option<HostLoad>,
    /// CPU time stolen by the hypervisor during the bench, in percent of all CPU time.
    pub steal_percent: Option<f64>,
    /// Why the host counts as busy (empty: it was not).
    pub busy: Vec<String>,
}

/// Above this 1-minute load average per host CPU at the start, other work was running.
pub const BUSY_LOAD_PER_CPU: f64 = 0.5;
/// Above this share of stolen CPU time, in percent, the hypervisor was busy elsewhere.
pub const BUSY_STEAL_PERCENT: f64 = 2.0;

impl LoadReport {
    /// Judges the figures: `own_threads` is how many threads the bench kept busy at
    /// most (its largest CPU count), which the end's load average includes.
    pub fn judge(
        start: Option<HostLoad>,
        end: Option<HostLoad>,
        host_cpus: usize,
        own_threads: usize,
    ) -> LoadReport {
        let steal_percent = match (&start, &end) {
            (Some(a), Some(b)) => a.steal_percent_until(b),
            _ => None,
        };
        let mut busy = Vec::new();
        let cpus = host_cpus.max(1) as f64;
        if let Some(s) = &start {
            if s.loadavg_1 > BUSY_LOAD_PER_CPU * cpus {
                busy.push(format!(
                    "load average {:.2} on {host_cpus} CPUs before the bench started",
                    s.loadavg_1
                ));
            }
        }
        if let Some(e) = &end {
            let others = e.loadavg_1 - own_threads.min(host_cpus) as f64;
            if others > BUSY_LOAD_PER_CPU * cpus {
                busy.push(format!(
                    "load average {:.2} at the end, {others:.2} more than the bench's own {} thread(s)",
                    e.loadavg_1,
                    own_threads.min(host_cpus)
                ));
            }
        }
        if let Some(p) = steal_percent {
            if p > BUSY_STEAL_PERCENT {
                busy.push(format!("{p:.1} % of CPU time stolen by the hypervisor"));
            }
        }
        LoadReport {
            start,
            end,
            steal_percent,
            busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_load_is_read_from_proc() {
        let l = HostLoad::parse(
            "0.52 1.10 2.00 3/456 7890\n",
            "cpu  100 5 50 800 10 1 2 30 7 0\ncpu0 50 2 25 400 5 0 1 15 3 0\n",
        )
        .expect("parses");
        assert_eq!((l.loadavg_1, l.loadavg_5, l.loadavg_15), (0.52, 1.10, 2.00));
        assert_eq!((l.steal_ticks, l.total_ticks), (30, 998));
        let later = HostLoad {
            steal_ticks: 40,
            total_ticks: 1098,
            ..l
        };
        assert_eq!(l.steal_percent_until(&later), Some(10.0));
        assert_eq!(later.steal_percent_until(&l), None);
        assert!(HostLoad::parse("x", "cpu 1 2").is_none());
        if cfg!(target_os = "linux") {
            let now = HostLoad::now().expect("/proc is there");
            assert!(now.total_ticks > 0 && now.loadavg_1 >= 0.0);
        }
    }

    #[test]
    fn switch_work_takes_about_the_time_asked() {
        assert_eq!(SwitchWork::from_ns(0), SwitchWork::default());
        let w = SwitchWork::from_ns(20_000);
        let t0 = Instant::now();
        for _ in 0..50 {
            w.run();
        }
        let ns = t0.elapsed().as_nanos() as f64;
        // 50 × 20 µs = 1 ms; preemption only makes it longer, and a calibration made
        // while the core was slower than now can make it at most a few times shorter.
        assert!(ns > 0.25e6, "50 x 20 us of work took {ns} ns");
    }

    #[test]
    fn the_host_fence_cost_is_measured() {
        let ns = host_fence_ns(50_000, 21);
        // A full barrier drains the store buffer: never free, never a microsecond.
        assert!(
            ns.is_finite() && ns > 0.0 && ns < 1000.0,
            "{ns} ns per fence"
        );
    }

    #[test]
    fn the_host_switch_cost_is_measured() {
        let h = host_switch_ns(500, 1).expect("socket pair and threads");
        assert!(h.ns_per_switch.is_finite() && h.ns_per_switch > 0.0);
        assert_eq!(h.round_trips, 500);
    }
}
