//! Teardown cost against the number of CPUs a scheme must look at, without the noise of
//! a shared host: one host thread drives CPU 0 of an N-CPU machine through
//! fork → run → `exit_mm` → switch away, while the other CPUs idle on `init_mm`. Every
//! exit is a last `mmput`, so every one pays the scheme's teardown (a scan of N hazard
//! pointers, a shootdown of `mm_cpumask`, or nothing); no other CPU ever holds the mm,
//! so no IPI has to wait for another CPU to be lazy (one helper thread answers the IPIs
//! of schemes that ask every CPU anyway).
//!
//! Each configuration runs five times and the fastest run is kept, so that a host
//! thread preempted by another process does not pass its wait off as teardown.
//!
//! `cargo run --release -p lazymm-engine --example teardown_scan [exits per run]`

use lazymm::arch::Generic;
use lazymm::{Arch, Config, Kernel, Scheme, Task};
use lazymm_engine::host::now_ns;
use lazymm_engine::registry::{dispatch, WithKernel, SCHEMES};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

struct Measure {
    cpus: usize,
    exits: u64,
}

/// What one configuration measured.
struct Row {
    teardown_ns_per_exit: f64,
    cycle_ns_per_exit: f64,
    ipis: u64,
    violations: usize,
    leaked: bool,
}

impl WithKernel for Measure {
    type Out = Row;
    fn with<S: Scheme, A: Arch>(self) -> Row {
        let mut cfg = Config::new(self.cpus);
        cfg.clock = now_ns;
        let (k, mut cpus) = Kernel::<S, A>::boot(cfg);
        let mut idle: Vec<Task<S>> = cpus
            .iter_mut()
            .enumerate()
            .map(|(i, c)| k.idle_task(c, i as u32))
            .collect();
        let stop = AtomicBool::new(false);
        let (first, others) = cpus.split_at_mut(1);
        let cpu = &mut first[0];
        let cycle = std::thread::scope(|s| {
            // The other CPUs idle and answer IPIs (a shootdown that asks every online
            // CPU must not wait forever), all from one helper thread.
            let (k, stop) = (&k, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    for c in others.iter_mut() {
                        k.irq_point(c);
                    }
                    // Sleep rather than spin, so the measured thread keeps its core: an
                    // IPI to an idle CPU waits up to this long (only shootdown-debug
                    // sends those here).
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            });
            let t0 = Instant::now();
            for pid in 0..self.exits {
                let mut t = k
                    .fork(cpu, 1000 + pid as u32)
                    .expect("one live mm at a time");
                k.context_switch(cpu, &mut idle[0], &mut t);
                k.exit_mm(cpu, &mut t);
                k.context_switch(cpu, &mut t, &mut idle[0]);
            }
            let cycle = t0.elapsed().as_nanos() as f64 / self.exits as f64;
            stop.store(true, Ordering::Release);
            cycle
        });
        for (c, i) in cpus.iter_mut().zip(idle.iter_mut()) {
            k.quiesce_cpu(c, i);
        }
        k.check_quiescent(&mut cpus[0]);
        let teardown = cpus[0].stats().teardown_ns as f64 / cpus[0].stats().exits.max(1) as f64;
        Row {
            teardown_ns_per_exit: teardown,
            cycle_ns_per_exit: cycle,
            ipis: cpus.iter().map(|c| c.stats().ipis_sent).sum(),
            violations: k.violations(),
            leaked: S::FREES_MMS && !k.arena.live_ids().is_empty(),
        }
    }
}

fn main() {
    let exits: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    println!(
        "{:<22} {:>5} {:>16} {:>14} {:>6} {:>10}",
        "scheme", "cpus", "teardown ns/exit", "cycle ns/exit", "IPIs", "violations"
    );
    for (scheme, _) in SCHEMES {
        for cpus in [1, 2, 4, 8, 16, 64] {
            let r = (0..5)
                .map(|_| {
                    dispatch(scheme, Generic::NAME, Measure { cpus, exits })
                        .expect("registered scheme")
                })
                .reduce(|a, b| Row {
                    teardown_ns_per_exit: a.teardown_ns_per_exit.min(b.teardown_ns_per_exit),
                    cycle_ns_per_exit: a.cycle_ns_per_exit.min(b.cycle_ns_per_exit),
                    ipis: a.ipis.max(b.ipis),
                    violations: a.violations.max(b.violations),
                    leaked: a.leaked || b.leaked,
                })
                .expect("five runs");
            println!(
                "{:<22} {:>5} {:>16.1} {:>14.1} {:>6} {:>10}{}",
                scheme,
                cpus,
                r.teardown_ns_per_exit,
                r.cycle_ns_per_exit,
                r.ipis,
                r.violations,
                if r.leaked { "  LEAK" } else { "" }
            );
        }
    }
}
