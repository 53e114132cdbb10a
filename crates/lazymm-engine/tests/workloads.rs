//! Every scheme on every arch and workload on the native engine: no violation, and every
//! mm created is freed (except under `none`); the costs that tell the schemes apart;
//! and the mutants are caught.

use lazymm_engine::registry::{ARCHS, SCHEMES};
use lazymm_engine::{run, RunReport, RunSpec, Workload};

fn spec(scheme: &str, arch: &str, w: Workload, cpus: usize) -> RunSpec {
    RunSpec {
        arch: arch.to_string(),
        seconds: Some(0.15),
        seed: 7,
        ..RunSpec::new(scheme, w, cpus)
    }
}

fn assert_clean(r: &RunReport, what: &str) {
    assert_eq!(r.total.violations, 0, "{what}: {:?}", r.violations);
    assert!(r.measured.context_switches > 0, "{what}: no switches");
    if !["none", "none-mb"].contains(&r.scheme) {
        assert_eq!(r.total.mm_created, r.total.mm_freed, "{what}: leak");
    }
}

#[test]
fn every_scheme_arch_and_workload_runs_clean() {
    for (scheme, _) in SCHEMES {
        for (arch, _) in ARCHS {
            for &w in Workload::ALL {
                for cpus in [1, 3] {
                    let mut s = spec(scheme, arch, w, cpus);
                    // Short runs: the matrix is large; the longer runs are below.
                    s.seconds = Some(0.04);
                    let r = run(&s).expect("valid spec");
                    assert_clean(&r, &format!("{scheme}/{arch}/{}/{cpus}", w.name()));
                }
            }
        }
    }
}

fn rmw_per_lazy_switch(scheme: &str) -> f64 {
    let r = run(&spec(scheme, "generic", Workload::IdleStorm, 2)).unwrap();
    assert_clean(&r, scheme);
    assert!(r.measured.lazy_switches > 1000);
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
    let r = run(&spec("refcount", "generic", Workload::ExitStorm, 2)).unwrap();
    assert!(r.total.mm_created > 100, "only {} mms", r.total.mm_created);
    assert_eq!(r.total.mm_created, r.total.mm_freed);
    assert!(r.total.exits > 100);
}

#[test]
fn exit_storm_on_every_arch_under_refcount_and_shootdown() {
    for scheme in ["refcount", "shootdown"] {
        for arch in ["generic", "x86", "powerpc"] {
            let r = run(&spec(scheme, arch, Workload::ExitStorm, 2)).unwrap();
            let what = format!("{scheme}/{arch}");
            assert_clean(&r, &what);
            assert!(r.total.exits > 100, "{what}: {} exits", r.total.exits);
            if (scheme, arch) == ("shootdown", "generic") {
                // cleanup_lazy_tlbs reaches the other CPUs of mm_cpumask.
                assert!(
                    r.total.ipis_sent > 100,
                    "{what}: {} IPIs",
                    r.total.ipis_sent
                );
            }
            if (scheme, arch) == ("refcount", "generic") {
                assert_eq!(r.total.ipis_sent, 0, "{what}");
            }
        }
    }
}

#[test]
fn hotplug_under_shootdown_runs_clean_on_three_cpus() {
    for arch in ["generic", "x86", "powerpc"] {
        let mut s = spec("shootdown", arch, Workload::Hotplug, 3);
        s.seconds = Some(0.3);
        let r = run(&s).unwrap();
        assert_clean(&r, &format!("shootdown/{arch}/hotplug"));
        assert!(
            r.total.offlines > 10,
            "{arch}: {} offlines",
            r.total.offlines
        );
        assert!(r.total.exits > 100, "{arch}: {} exits", r.total.exits);
    }
}

#[test]
fn every_mutant_is_caught_on_its_workload() {
    for m in lazymm_engine::registry::mutants() {
        let w = lazymm_engine::registry::mutant_workload(m);
        let mut caught = false;
        for seed in 1..=5 {
            let mut s = spec(m.scheme(), m.arch().unwrap_or("generic"), w, 3);
            s.mutant = Some(m);
            s.seconds = Some(1.0);
            s.seed = seed;
            if run(&s).unwrap().total.violations > 0 {
                caught = true;
                break;
            }
        }
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
    assert!(run(&s).is_err(), "a mutant of another scheme");
}

#[test]
fn more_cpus_than_host_cores_still_correct() {
    let mut s = spec("refcount", "generic", Workload::Threads, 5);
    s.switches = Some(20_000);
    s.seconds = Some(20.0);
    let r = run(&s).unwrap();
    assert_eq!(r.total.violations, 0);
    assert_eq!(r.total.mm_created, r.total.mm_freed);
}
