//! Every scheme on every arch and workload on the native engine: no violation, and every
//! mm created is freed (except under `none`); the costs that tell the schemes apart;
//! will-it-scale's pair count; and the mutants are caught.
//!
//! Every run is bounded by a switch budget, not a wall-clock window, and the assertions
//! are invariants or ratios of what the run did, so a slow or busy host changes how long
//! a test takes, not whether it passes.

use lazymm_engine::registry::{self, ARCHS, SCHEMES};
use lazymm_engine::{run, RunReport, RunSpec, Workload};

/// A run of `switches` context switches (the seconds are only a backstop against a hang).
fn spec(scheme: &str, arch: &str, w: Workload, cpus: usize, switches: u64) -> RunSpec {
    RunSpec {
        arch: arch.to_string(),
        seconds: Some(120.0),
        switches: Some(switches),
        seed: 7,
        ..RunSpec::new(scheme, w, cpus)
    }
}

fn assert_clean(r: &RunReport, what: &str) {
    assert_eq!(r.total.violations, 0, "{what}: {:?}", r.violations);
    if !["none", "none-mb"].contains(&r.scheme) {
        assert_eq!(r.total.mm_created, r.total.mm_freed, "{what}: leak");
    }
}

/// The run stopped because it used up its budget (not the backstop).
fn assert_budget(r: &RunReport, switches: u64, what: &str) {
    assert!(
        r.measured.context_switches >= switches,
        "{what}: {} of {switches} switches",
        r.measured.context_switches
    );
}

#[test]
fn every_scheme_arch_and_workload_runs_clean() {
    for (scheme, _) in SCHEMES {
        for (arch, _) in ARCHS {
            for &w in Workload::ALL {
                for cpus in [1, 3] {
                    // Short runs: the matrix is large; the longer runs are below.
                    let r = run(&spec(scheme, arch, w, cpus, 3000)).expect("valid spec");
                    let what = format!("{scheme}/{arch}/{}/{cpus}", w.name());
                    assert_clean(&r, &what);
                    assert_budget(&r, 3000, &what);
                }
            }
        }
    }
}

fn rmw_per_lazy_switch(scheme: &str) -> f64 {
    let r = run(&spec(scheme, "generic", Workload::IdleStorm, 2, 20_000)).unwrap();
    assert_clean(&r, scheme);
    // idle-storm: every other switch is user -> idle, a lazy switch.
    let lazy = r.measured.lazy_switches as f64 / r.measured.context_switches as f64;
    assert!(
        (0.45..=0.55).contains(&lazy),
        "{scheme}: {lazy} lazy per switch"
    );
    r.measured.shared_rmw as f64 / r.measured.lazy_switches as f64
}

#[test]
fn lazy_round_trips_cost_shared_rmws_only_under_refcount() {
    let per = rmw_per_lazy_switch("refcount");
    assert!(per >= 1.5, "refcount: {per} shared RMWs per lazy switch");
    for scheme in ["shootdown", "none"] {
        let per = rmw_per_lazy_switch(scheme);
        assert!(per < 0.01, "{scheme}: {per} shared RMWs per lazy switch");
    }
}

#[test]
fn exit_storm_creates_and_frees_many_mms() {
    // On one CPU nothing waits for another CPU's thread, so the pace is the workload's
    // own: a process lives about ten switches (its birth, two threads of four quanta).
    let r = run(&spec("refcount", "generic", Workload::ExitStorm, 1, 20_000)).unwrap();
    assert_clean(&r, "refcount/1");
    let switches_per_exit = r.measured.context_switches as f64 / r.total.exits.max(1) as f64;
    assert!(
        switches_per_exit < 15.0,
        "{switches_per_exit} switches per exit"
    );
    // On two, a process waits for its thread on the other CPU (which the host may not be
    // running): the pace depends on the host, the bookkeeping does not.
    let r = run(&spec("refcount", "generic", Workload::ExitStorm, 2, 20_000)).unwrap();
    assert_clean(&r, "refcount/2");
    assert!(r.total.exits > 0);
}

#[test]
fn exit_storm_on_every_arch_under_refcount_and_shootdown() {
    for scheme in ["refcount", "shootdown"] {
        for arch in ["generic", "x86", "powerpc"] {
            let r = run(&spec(scheme, arch, Workload::ExitStorm, 2, 20_000)).unwrap();
            let what = format!("{scheme}/{arch}");
            assert_clean(&r, &what);
            assert!(r.total.exits > 0, "{what}: no exits");
            let ipis_per_exit = r.total.ipis_sent as f64 / r.total.exits as f64;
            if (scheme, arch) == ("shootdown", "generic") {
                // Each process ran on both CPUs and generic never trims mm_cpumask, so
                // cleanup_lazy_tlbs reaches the other CPU at almost every teardown.
                assert!(ipis_per_exit > 0.5, "{what}: {ipis_per_exit} IPIs per exit");
            }
            if (scheme, arch) == ("refcount", "generic") {
                assert_eq!(r.total.ipis_sent, 0, "{what}");
            }
            // At most one IPI to each other CPU per teardown stage.
            assert!(
                ipis_per_exit <= 3.0,
                "{what}: {ipis_per_exit} IPIs per exit"
            );
        }
    }
}

#[test]
fn hotplug_under_shootdown_runs_clean_on_three_cpus() {
    for arch in ["generic", "x86", "powerpc"] {
        let r = run(&spec("shootdown", arch, Workload::Hotplug, 3, 60_000)).unwrap();
        let what = format!("shootdown/{arch}/hotplug");
        assert_clean(&r, &what);
        assert!(r.total.offlines > 0, "{what}: no CPU went offline");
        assert!(r.total.exits > 0, "{what}: no exits");
    }
}

#[test]
fn oversubscribed_pairs_switch_user_to_user() {
    // One pair per two CPUs: every hand-off goes through idle, half the switches lazy.
    let one = run(&spec("refcount", "generic", Workload::Threads, 2, 20_000)).unwrap();
    assert_clean(&one, "1 pair");
    let lazy_one = one.measured.lazy_switches as f64 / one.measured.context_switches as f64;
    assert!(lazy_one > 0.4, "1 pair: {lazy_one} lazy per switch");
    // Eight pairs on two CPUs: a CPU often has another thread to run.
    let mut s = spec("refcount", "generic", Workload::Threads, 2, 20_000);
    s.pairs = Some(8);
    let many = run(&s).unwrap();
    assert_clean(&many, "8 pairs");
    let lazy_many = many.measured.lazy_switches as f64 / many.measured.context_switches as f64;
    // How much below depends on how the host schedules the two CPU threads (a CPU whose
    // partner thread is not running runs out of threads and idles).
    assert!(
        lazy_many < lazy_one * 0.8,
        "8 pairs: {lazy_many} lazy per switch against {lazy_one} with 1"
    );
    // Processes: one mm per pair, each created and freed.
    let mut s = spec("refcount", "generic", Workload::Processes, 3, 20_000);
    s.pairs = Some(5);
    let p = run(&s).unwrap();
    assert_clean(&p, "5 process pairs");
    assert_eq!(p.total.mm_created, 5);
}

#[test]
fn every_mutant_is_caught_on_its_workload() {
    // Mutants whose window a native run reaches only by chance are caught by the
    // checker (tests/check.rs, `check --mutants`) and their directed tests.
    let native = registry::mutants()
        .into_iter()
        .filter(|m| m.exercise().caught_natively());
    for m in native {
        let w = registry::mutant_workload(m);
        // Seeds until one catches it (`Exercise::native_seeds`: a run is a chance, not
        // a certainty, and hotplug's window is the rarest).
        let caught = (1..=m.exercise().native_seeds()).any(|seed| {
            let mut s = spec(m.scheme(), m.arch().unwrap_or("generic"), w, 3, 3_000_000);
            s.mutant = Some(m);
            s.seed = seed;
            run(&s).unwrap().total.violations > 0
        });
        assert!(caught, "mutant {} was not caught", m.name());
    }
}

#[test]
fn bad_specs_are_refused() {
    assert!(run(&RunSpec::new("nosuch", Workload::Threads, 2)).is_err());
    assert!(run(&RunSpec::new("refcount", Workload::Threads, 0)).is_err());
    assert!(run(&RunSpec::new(
        "refcount",
        Workload::Threads,
        lazymm::MAX_CPUS + 1
    ))
    .is_err());
    let mut s = RunSpec::new("none", Workload::Threads, 2);
    s.mutant = Some(lazymm::scheme::refcount::NO_GRAB);
    let e = run(&s).unwrap_err().to_string();
    assert!(e.contains("refcount-no-grab") && e.contains("none"), "{e}");
    let mut s = RunSpec::new("refcount", Workload::IdleStorm, 2);
    s.pairs = Some(2);
    assert!(run(&s).is_err(), "pairs for a workload without pairs");
    let mut s = RunSpec::new("refcount", Workload::Threads, 2);
    s.pairs = Some(0);
    assert!(run(&s).is_err(), "no pairs");
    // 64 pairs on 2 CPUs is 64 threads per CPU: one more than a runqueue holds.
    s.pairs = Some(64);
    let e = run(&s).unwrap_err().to_string();
    assert!(e.contains("1 to 63"), "{e}");
}

#[test]
fn more_cpus_than_host_cores_still_correct() {
    let r = run(&spec("refcount", "generic", Workload::Threads, 5, 20_000)).unwrap();
    assert_clean(&r, "5 cpus");
    assert_budget(&r, 20_000, "5 cpus");
}
