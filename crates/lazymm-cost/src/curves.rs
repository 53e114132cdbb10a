//! The cost model against the published contended-counter curves and the Boyd-Wickizer
//! queueing model, before it is trusted on the schemes. The curves are perfbook's
//! (github.com/paulmckrcu/perfbook, `CodeSamples/count/data/*count_atomic:u*`: column 2 is
//! ns per update per thread, so the aggregate rate is threads over it); the model is
//! Boyd-Wickizer, Kaashoek, Morris and Zeldovich, "Non-scalable locks are dangerous"
//! (Linux Symposium 2012).
//!
//! The machines here are test machines built from the published latencies of the
//! machines that produced the curves; the curves' contended points are predictions, never
//! inputs. Where a machine's latencies were not found (POWER5+), the test says what it
//! assumed and asserts the curve's shape only.

use crate::coherence::{Directory, Driver, Engine, Kind, Next, Op};
use crate::machine::{Machine, Ps};

/// A machine file with the given levels (name, size, ns) and costs.
fn machine(levels: &[(&str, usize, f64)], order: &str, rmw: f64, handoff: &str) -> Machine {
    let mut t = format!("name = \"test\"\ndescription = \"test\"\ncpu_order = \"{order}\"\n");
    for (n, s, ns) in levels {
        t += &format!("[[level]]\nname = \"{n}\"\nsize = {s}\ntransfer_ns = {ns}\n");
    }
    t += &format!(
        "[cost]\nload_hit_ns = 1.0\nstore_hit_ns = 1.0\nrmw_ns = {rmw}\nmemory_ns = 100.0\nfence_ns = 7.0\ncr3_write_ns = 90.0\ncontext_switch_ns = 1000.0\n\
         [ipi]\nsend_ns = 100.0\nper_target_ns = 100.0\ndelivery_ns = 1000.0\nhandler_ns = 500.0\n{handoff}{IDLE}"
    );
    Machine::from_toml(&t, "test", &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// An idle path that costs nothing: the curves here never idle a CPU.
const IDLE: &str = "[idle]\ngovernor = \"menu\"\nentry_ns = 0.0\nexit_ns = 0.0\npoll_limit_ns = 0.0\ntick_ns = 1e6\ntick_stop_ns = 0.0\ntick_restart_ns = 0.0\n\
                    [[idle.state]]\nname = \"POLL\"\nexit_latency_ns = 0.0\ntarget_residency_ns = 0.0\npolling = true\n";

fn handoff(prefer: &str, tenure: u32, hold: f64, retry: f64) -> String {
    format!(
        "[handoff]\nprefer_level = \"{prefer}\"\nmax_local_handoffs = 8\ntenure_rmws = {tenure}\nsnoop_hold_ns = {hold}\nllsc_retry_per_waiter = {retry}\n"
    )
}

/// perfbook's `count_atomic`: every thread increments one counter in a loop, with a few
/// ns of loop overhead that varies (so the order in which threads reach the line is not
/// fixed by their numbers).
struct Counter {
    done: u64,
    rng: u64,
}

impl Driver for Counter {
    fn next(&mut self, _cpu: usize, _now: Ps, ops: &mut Vec<Op>, _: &mut Directory<'_>) -> Next {
        self.done += 1;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ops.push(Op::Work(self.rng % 1000));
        ops.push(Op::Access {
            line: 0,
            kind: Kind::Rmw,
        });
        Next::Run
    }
}

/// Millions of increments per second with `threads` threads (CPUs 0..threads).
fn counter_mops(m: &Machine, threads: usize) -> f64 {
    const T: Ps = 200_000_000; // 200 us of simulated time
    let mut e = Engine::new(m, threads);
    let mut d = Counter {
        done: 0,
        rng: 0x9E37_79B9_7F4A_7C15,
    };
    e.run(&mut d, T);
    // Each CPU's first call precedes any access.
    let rmws = d.done.saturating_sub(threads as u64) as f64;
    rmws / (T as f64 / 1e12) / 1e6
}

/// The 8-socket Xeon Platinum 8176 of perfbook (`hps.2019.10.23a`): 2 halves x 4
/// sockets x 28 cores x SMT2. Latencies: perfbook's blind-CAS table (`cpu/overheads.tex`): SMT
/// 7.2, other core 47.5, other socket 148.8, across the interconnect 336.6 ns. The
/// uncontended RMW is the curve's own 1-thread point (207 M/s, 4.8 ns): an uncontended
/// measurement, as `--calibrate` takes on a host.
fn xeon_8176(h: &str) -> Machine {
    machine(
        &[
            ("core", 2, 7.2),
            ("socket", 28, 47.5),
            ("half", 4, 148.8),
            ("machine", 2, 336.6),
        ],
        "cores-first",
        4.8,
        h,
    )
}

/// The 8176 curve (perfbook `count_atomic:u`, `hps.2019.10.23a`): M/s at 1, 2, 8, 32, 64 and 420 threads.
const XEON_8176: &[(usize, f64)] = &[
    (1, 207.0),
    (2, 31.0),
    (8, 39.0),
    (32, 45.0),
    (64, 40.0),
    (420, 28.0),
];

/// Tolerance for the x86 curve: each contended point within 45 % of the published one.
/// The model has no mechanism for the rise from 2 to 32 threads (45 M/s measured at 32,
/// where more waiters pipeline their requests), so that point is the worst (about -40 %).
#[test]
fn x86_counter_curve_cliff_then_plateau() {
    let m = xeon_8176(&handoff("socket", 2, 4.8, 0.0));
    let mut got = Vec::new();
    for &(n, published) in XEON_8176 {
        let mops = counter_mops(&m, n);
        got.push(mops);
        let err = (mops - published) / published;
        assert!(
            err.abs() < 0.45,
            "{n} threads: model {mops:.1} M/s, published {published} M/s ({:+.0} %)",
            err * 100.0
        );
    }
    // The shape: a cliff from 1 to 2 threads (6.7x published), then a plateau.
    let cliff = got[0] / got[1];
    assert!(
        (4.0..10.0).contains(&cliff),
        "1->2 thread cliff {cliff:.1}x"
    );
    let plateau = &got[1..];
    let (lo, hi) = plateau
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    assert!(
        hi / lo < 2.0,
        "plateau from 2 to 420 threads varies {:.1}x",
        hi / lo
    );
}

/// The warning the 8176's plateau gives, reproduced: first come, first served at the average distance,
/// with no tenure, predicts 3-7 M/s at 420 threads on the 8176, 5-10x below the 28 M/s
/// measured. The locality-biased model is what closes the gap.
#[test]
fn first_come_average_distance_is_several_times_too_pessimistic() {
    let naive = xeon_8176(&handoff("none", 1, 0.0, 0.0));
    let biased = xeon_8176(&handoff("socket", 2, 4.8, 0.0));
    let n = counter_mops(&naive, 420);
    let b = counter_mops(&biased, 420);
    assert!(
        (3.0..7.5).contains(&n),
        "naive model {n:.1} M/s at 420 threads"
    );
    assert!(b / n > 3.5, "biased {b:.1} vs naive {n:.1} M/s");
}

/// IBM POWER5+ p595 (`perfsqh.2010.02.11a`): 64 cores, SMT2, threads numbered
/// core-first as Linux on POWER does. No POWER5+ latencies were found; assumed
/// from the nearest measured POWER (POWER7, nviennot/core-to-core-latency README and CSV): SMT 70, chip 173, other chip of
/// the module and beyond 443 ns; 2 cores per chip, 4 chips per module, 8 modules. The
/// uncontended RMW is the curve's 1-thread point (24 M/s, 41 ns).
fn power5(retry: f64) -> Machine {
    machine(
        &[
            ("core", 2, 70.0),
            ("chip", 2, 173.0),
            ("module", 4, 443.0),
            ("machine", 8, 443.0),
        ],
        "threads-first",
        41.0,
        &handoff("chip", 2, 41.0, retry),
    )
}

/// The POWER5+ curve (perfbook `count_atomic:u`, `perfsqh.2010.02.11a`): M/s at 2, 8, 32 and 64 threads.
const POWER5: &[(usize, f64)] = &[(2, 16.0), (8, 12.0), (32, 4.3), (64, 2.9)];

/// LL/SC loses throughput steadily: with `llsc_retry_per_waiter` the model declines
/// monotonically from 2 to 64 threads by 3-12x (published 16 -> 2.9 M/s, 5.5x) and ends
/// within a factor 2 of 2.9 M/s; without retries the decline from 8 to 64 threads is
/// much flatter, so the retries are what produce the curve. Latencies are assumed, so
/// only the shape is asserted.
#[test]
fn llsc_counter_curve_declines_steadily() {
    let with = power5(0.05);
    let got: Vec<f64> = POWER5
        .iter()
        .map(|&(n, _)| counter_mops(&with, n))
        .collect();
    for w in got.windows(2) {
        assert!(w[1] < w[0], "not declining: {got:?}");
    }
    let drop = got[0] / got[3];
    assert!(
        (3.0..12.0).contains(&drop),
        "2->64 threads drop {drop:.1}x ({got:?})"
    );
    assert!(
        (1.45..5.8).contains(&got[3]),
        "64 threads: {:.2} M/s",
        got[3]
    );
    let without = power5(0.0);
    let flat = counter_mops(&without, 8) / counter_mops(&without, 64);
    let steep = got[1] / got[3];
    assert!(
        steep > 1.5 * flat,
        "retries add little: {steep:.1}x vs {flat:.1}x"
    );
}

// ---- Boyd-Wickizer et al., "Non-scalable locks are dangerous" -------------------------

/// The Markov model (Boyd-Wickizer et al. 2012): acquisitions per second of a ticket lock with `n`
/// cores, mean non-critical time `a`, critical section `s`, directory response `c`.
fn bw_model(n: usize, a: f64, s: f64, c: f64) -> f64 {
    // P_k proportional to prod_{i<k} a_i / s_{i+1}, a_i = (n-i)/a, s_k = 1/(s + c k / 2).
    let mut p = vec![1.0f64; n + 1];
    for k in 1..=n {
        let arrive = (n - k + 1) as f64 / a;
        let serve = 1.0 / (s + c * k as f64 / 2.0);
        p[k] = p[k - 1] * arrive / serve;
    }
    let total: f64 = p.iter().sum();
    (1..=n)
        .map(|k| p[k] / total / (s + c * k as f64 / 2.0))
        .sum()
}

/// A ticket lock in the simulator: take a ticket (RMW), spin on `now_serving` (loads,
/// refetched after every release), hold for `s`, release (a store).
struct Ticket {
    rng: u64,
    a: f64,
    s: Ps,
    next_ticket: u64,
    serving: u64,
    mine: Vec<Option<u64>>,
    reload: Vec<bool>,
    parked: Vec<usize>,
    acquired: u64,
}

const TICKET: u64 = 1;
const SERVING: u64 = 2;
const TAKE: u32 = 0;
const RELEASE: u32 = 1;

impl Ticket {
    fn exp(&mut self, mean: f64) -> Ps {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let u = ((self.rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (-u.ln() * mean) as Ps
    }
}

impl Driver for Ticket {
    fn next(&mut self, cpu: usize, _now: Ps, ops: &mut Vec<Op>, _: &mut Directory<'_>) -> Next {
        if self.reload[cpu] {
            // Woken by a release: refetch now_serving before looking at it.
            self.reload[cpu] = false;
            ops.push(Op::Access {
                line: SERVING,
                kind: Kind::Load,
            });
            return Next::Run;
        }
        match self.mine[cpu] {
            None => {
                let w = self.exp(self.a);
                ops.push(Op::Work(w));
                ops.push(Op::Access {
                    line: TICKET,
                    kind: Kind::Rmw,
                });
                ops.push(Op::Notify(TAKE));
                ops.push(Op::Access {
                    line: SERVING,
                    kind: Kind::Load,
                });
                Next::Run
            }
            Some(t) if t == self.serving => {
                self.acquired += 1;
                self.mine[cpu] = None;
                ops.push(Op::Work(self.s));
                ops.push(Op::Access {
                    line: SERVING,
                    kind: Kind::Store,
                });
                ops.push(Op::Notify(RELEASE));
                Next::Run
            }
            Some(_) => {
                self.parked.push(cpu);
                Next::Park
            }
        }
    }

    fn notify(&mut self, cpu: usize, token: u32, _now: Ps, wake: &mut Vec<(usize, Ps)>) {
        match token {
            TAKE => {
                self.mine[cpu] = Some(self.next_ticket);
                self.next_ticket += 1;
            }
            _ => {
                self.serving += 1;
                // Every spinner refetches now_serving, in an order the hardware picks.
                let mut p = std::mem::take(&mut self.parked);
                for i in (1..p.len()).rev() {
                    let j = (self.exp(1e6) as usize) % (i + 1);
                    p.swap(i, j);
                }
                for &c in &p {
                    self.reload[c] = true;
                }
                wake.extend(p.into_iter().map(|c| (c, 0)));
            }
        }
    }
}

fn bw_sim(n: usize, a_ns: f64, s_ns: f64, c_ns: f64) -> f64 {
    let m = machine(
        &[("core", 1, 0.0), ("machine", n.max(2), c_ns)],
        "threads-first",
        0.0,
        &handoff("none", 1, 0.0, 0.0),
    );
    // Spinning re-loads are the only loads: a hit costs nothing, so only c and s count.
    const T: Ps = 4_000_000_000; // 4 ms
    let mut d = Ticket {
        rng: 0x2545_F491_4F6C_DD1D,
        a: a_ns * 1000.0,
        s: (s_ns * 1000.0) as Ps,
        next_ticket: 0,
        serving: 0,
        mine: vec![None; n],
        reload: vec![false; n],
        parked: Vec::new(),
        acquired: 0,
    };
    let mut e = Engine::new(&m, n);
    e.run(&mut d, T);
    d.acquired as f64 / (T as f64 / 1e12)
}

/// The simulator's ticket lock follows the Boyd-Wickizer model (a = 4 us, s = 200 ns,
/// c = 100 ns): within 15 % below the knee (1 to 8 cores), the same knee (both peak at 8
/// or 16 cores), then a collapse that is more abrupt than the model's, between 0.4x and
/// 1.1x of it from 16 to 48 cores, falling below 60 % of the peak by 48 cores.
///
/// The collapse is deeper because in the simulator the holder's releasing store queues
/// behind the spinners' refetches still in flight (about `c k`, where the model charges
/// `c k / 2`); Boyd-Wickizer et al. report the same of real hardware: "the real collapse
/// was more abrupt than predicted" (their validation).
#[test]
fn ticket_lock_follows_the_boyd_wickizer_model_and_collapses() {
    let (a, s, c) = (4000.0, 200.0, 100.0);
    let ns = [1usize, 2, 4, 8, 16, 24, 32, 48];
    let (mut sims, mut models) = (Vec::new(), Vec::new());
    for &n in &ns {
        let model = bw_model(n, a * 1e-9, s * 1e-9, c * 1e-9);
        let sim = bw_sim(n, a, s, c);
        let r = sim / model;
        if n <= 8 {
            assert!(
                (r - 1.0).abs() < 0.15,
                "{n} cores: sim {sim:.3e}/s, model {model:.3e}/s"
            );
        } else {
            assert!(
                (0.4..1.1).contains(&r),
                "{n} cores: sim {sim:.3e}/s, model {model:.3e}/s"
            );
        }
        sims.push(sim);
        models.push(model);
    }
    let argmax = |v: &[f64]| {
        ns[v.iter()
            .enumerate()
            .fold(0, |b, (i, &x)| if x > v[b] { i } else { b })]
    };
    assert!(
        [8, 16].contains(&argmax(&sims)),
        "sim peaks at {}",
        argmax(&sims)
    );
    assert!(
        [8, 16].contains(&argmax(&models)),
        "model peaks at {}",
        argmax(&models)
    );
    let peak = sims.iter().cloned().fold(0.0, f64::max);
    assert!(sims[sims.len() - 1] < 0.6 * peak, "no collapse: {sims:?}");
}
