//! Micro-benchmarks of each registered scheme's transitions, on each registered arch:
//! user→kernel, kernel→user, a full lazy round trip, and the teardown an exit runs with
//! 1 to 63 other CPUs using the mm lazily. First, the unit the opt-out schemes pay in:
//! one full barrier between a store and a load, as the model issues it (`smp_mb`, a
//! `fence(SeqCst)`) and as Linux's x86 `smp_mb` does (`lock addl $0` on a stack word).
//!
//! One [`Kernel`] is driven single-threaded, so a number here is the scheme's own cost
//! with no contention: `lazymm bench` measures the contended side. A change to a scheme
//! shows up here as a number.
//!
//! Teardown is measured for every scheme and arch: the driver plays every CPU on one
//! thread ([`Serial`]), so the exiting CPU's IPIs (`shootdown`'s `cleanup_lazy_tlbs`,
//! `hazptr-mathieu`'s scan, x86's freeing flush) are answered by the lazy CPUs' handlers,
//! run in CPU order while it waits; the time includes running them, as a real teardown
//! waits for them.
//!
//! Run with `cargo bench -p lazymm-engine --bench transitions`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lazymm::{Arch, Config, Kernel, Scheme};
use lazymm_engine::registry::{self, WithKernel, ARCHS, SCHEMES};
use lazymm_engine::serial::Serial;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Lazy CPUs for the teardown benchmarks (plus the exiting CPU: at most 64 in all).
const LAZY_CPUS: &[usize] = &[1, 4, 16, 63];

/// What one `Instant::now()` and `elapsed()` pair costs, subtracted from per-operation
/// timings (the median of many pairs).
fn clock_overhead() -> Duration {
    let mut v: Vec<Duration> = (0..1001)
        .map(|_| {
            let t0 = Instant::now();
            black_box(t0.elapsed())
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

/// Runs `timed` `iters` times with `untimed` after each, timing only `timed`.
fn time_half<T>(
    iters: u64,
    overhead: Duration,
    st: &mut T,
    timed: impl Fn(&mut T),
    untimed: impl Fn(&mut T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t0 = Instant::now();
        timed(st);
        total += t0.elapsed().saturating_sub(overhead);
        untimed(st);
    }
    total
}

/// One full barrier between a store and a load, three ways: none and the model's
/// `smp_mb` are the turns `lazymm bench` times for its "host full barrier" figure.
fn barriers(c: &mut Criterion) {
    use lazymm_engine::hostcost::{store_fence_load, store_load};
    use std::sync::atomic::{compiler_fence, AtomicU32, AtomicU64};
    let mut g = c.benchmark_group("barrier");
    let (x, y) = (AtomicU64::new(0), AtomicU64::new(0));
    g.bench_function("store; load (no barrier)", |b| {
        b.iter(|| store_load(&x, &y, 1))
    });
    g.bench_function("store; fence(SeqCst); load (the model's smp_mb)", |b| {
        b.iter(|| store_fence_load(&x, &y, 1))
    });
    g.bench_function(
        "store; locked add on the stack; load (Linux's x86 smp_mb)",
        |b| {
            b.iter(|| {
                // ORDERING: Relaxed store and load around the barrier being measured;
                // nothing on another thread pairs with them.
                x.store(1, Ordering::Relaxed);
                let word = AtomicU32::new(0);
                // ORDERING: the barrier measured: the compiler fences stand for the asm's
                // "memory" clobber, the locked add for the hardware barrier.
                compiler_fence(Ordering::SeqCst);
                black_box(&word).fetch_add(1, Ordering::SeqCst);
                compiler_fence(Ordering::SeqCst);
                black_box(y.load(Ordering::Relaxed))
            })
        },
    );
    g.finish();
}

fn switches<S: Scheme, A: Arch>(c: &mut Criterion, overhead: Duration) {
    let mut g = c.benchmark_group(format!("{}/{}", S::NAME, A::NAME));
    let (k, mut cpus) = Kernel::<S, A>::boot(Config::new(1));
    let mut cpu = cpus.pop().expect("one cpu");
    let mut idle = k.idle_task(&mut cpu, 1);
    let mut user = k.fork(&mut cpu, 2).expect("the arena has room");
    k.context_switch(&mut cpu, &mut idle, &mut user);

    let to_kernel = |(cpu, user, idle): &mut (_, _, _)| k.context_switch(cpu, user, idle);
    let to_user = |(cpu, user, idle): &mut (_, _, _)| k.context_switch(cpu, idle, user);
    let mut st = (cpu, user, idle);

    g.bench_function("lazy round trip", |b| {
        b.iter(|| {
            to_kernel(&mut st);
            to_user(&mut st);
        })
    });
    g.bench_function("user->kernel", |b| {
        b.iter_custom(|iters| time_half(iters, overhead, &mut st, to_kernel, to_user))
    });
    // Start each kernel→user from the kernel side.
    to_kernel(&mut st);
    g.bench_function("kernel->user", |b| {
        b.iter_custom(|iters| time_half(iters, overhead, &mut st, to_user, to_kernel))
    });
    g.finish();
    assert_eq!(k.violations(), 0, "{}/{}: violations", S::NAME, A::NAME);
}

fn teardown<S: Scheme, A: Arch>(c: &mut Criterion, overhead: Duration) {
    let mut g = c.benchmark_group(format!("{}/{}", S::NAME, A::NAME));
    for &lazy in LAZY_CPUS {
        // One host thread plays every CPU; the IPIs of a shootdown or of hazptr-mathieu's
        // scan are answered through the Serial IPI host while the exiting CPU waits.
        let (k, serial) = Serial::<S, A>::boot(Config::new(lazy + 1));
        let mut idles: Vec<_> = (0..=lazy)
            .map(|i| k.idle_task(&mut serial.cpu(i), i as u32 + 1))
            .collect();
        let mut pid = 1000;
        g.bench_with_input(
            BenchmarkId::new("teardown, lazy cpus", lazy),
            &lazy,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // Untimed: a process with a thread on every other CPU; each thread
                        // exits, leaving its CPU lazy on the mm.
                        pid += 1;
                        let mut leader = k.fork(&mut serial.cpu(0), pid).expect("room");
                        let (idle0, idle_rest) = idles.split_at_mut(1);
                        for (i, idle) in idle_rest.iter_mut().enumerate() {
                            pid += 1;
                            let mut t = k
                                .clone_thread(&mut serial.cpu(0), &leader, pid)
                                .expect("mm");
                            let mut cpu = serial.cpu(i + 1);
                            k.context_switch(&mut cpu, idle, &mut t);
                            k.exit_mm(&mut cpu, &mut t);
                            k.context_switch(&mut cpu, &mut t, idle);
                        }
                        let mut cpu0 = serial.cpu(0);
                        k.context_switch(&mut cpu0, &mut idle0[0], &mut leader);
                        // Timed: the last user exits and the mm is torn down.
                        let t0 = Instant::now();
                        k.exit_mm(&mut cpu0, &mut leader);
                        total += t0.elapsed().saturating_sub(overhead);
                        k.context_switch(&mut cpu0, &mut leader, &mut idle0[0]);
                    }
                    total
                })
            },
        );
        assert_eq!(k.violations(), 0, "{}/{}: violations", S::NAME, A::NAME);
    }
    g.finish();
}

struct Transitions<'c> {
    c: &'c mut Criterion,
    overhead: Duration,
}

impl WithKernel for Transitions<'_> {
    type Out = ();
    fn with<S: Scheme, A: Arch>(self) {
        switches::<S, A>(self.c, self.overhead);
        teardown::<S, A>(self.c, self.overhead);
    }
}

fn every_scheme(c: &mut Criterion) {
    barriers(c);
    let overhead = clock_overhead();
    for (arch, _) in ARCHS {
        for (scheme, _) in SCHEMES {
            registry::dispatch(scheme, arch, Transitions { c, overhead })
                .expect("registered names dispatch");
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = every_scheme
}
criterion_main!(benches);
