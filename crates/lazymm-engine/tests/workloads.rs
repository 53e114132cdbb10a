//! Every scheme on every workload on the native engine: no violation, and every mm
//! created is freed (except under `none`); and the mutants are caught.

use lazymm::Mutant;
use lazymm_engine::registry::{ARCHS, SCHEMES};
use lazymm_engine::{run, RunSpec, Workload};

fn spec(scheme: &str, arch: &str, w: Workload, cpus: usize) -> RunSpec {
    RunSpec {
        arch: arch.to_string(),
        seconds: Some(0.15),
        seed: 7,
        ..RunSpec::new(scheme, w, cpus)
    }
}

#[test]
fn every_scheme_arch_and_workload_runs_clean() {
    for (scheme, _) in SCHEMES {
        for (arch, _) in ARCHS {
            for &w in Workload::ALL {
                for cpus in [1, 3] {
                    let r = run(&spec(scheme, arch, w, cpus)).expect("valid spec");
                    let what = format!("{scheme}/{arch}/{}/{cpus}", w.name());
                    assert_eq!(r.total.violations, 0, "{what}: {:?}", r.violations);
                    assert!(r.measured.context_switches > 0, "{what}: no switches");
                    if *scheme != "none" {
                        assert_eq!(r.total.mm_created, r.total.mm_freed, "{what}: leak");
                    }
                }
            }
        }
    }
}

#[test]
fn lazy_round_trips_cost_shared_rmws_only_under_refcount() {
    let r = run(&spec("refcount", "generic", Workload::IdleStorm, 2)).unwrap();
    assert!(r.measured.lazy_switches > 1000);
    let per = r.measured.shared_rmw as f64 / r.measured.lazy_switches as f64;
    assert!(per >= 1.5, "refcount: {per} shared RMWs per lazy switch");
    let r = run(&spec("none", "generic", Workload::IdleStorm, 2)).unwrap();
    let per = r.measured.shared_rmw as f64 / r.measured.lazy_switches as f64;
    assert!(per < 0.01, "none: {per} shared RMWs per lazy switch");
}

#[test]
fn exit_storm_creates_and_frees_many_mms() {
    let r = run(&spec("refcount", "generic", Workload::ExitStorm, 2)).unwrap();
    assert!(r.total.mm_created > 100, "only {} mms", r.total.mm_created);
    assert_eq!(r.total.mm_created, r.total.mm_freed);
    assert!(r.total.exits > 100);
}

#[test]
fn every_mutant_is_caught_on_exit_storm() {
    for &m in Mutant::ALL {
        let mut caught = false;
        for seed in 1..=5 {
            let mut s = spec(
                m.scheme(),
                m.arch().unwrap_or("generic"),
                Workload::ExitStorm,
                2,
            );
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
    assert!(run(&RunSpec::new("refcount", Workload::Threads, 65)).is_err());
    let mut s = RunSpec::new("none", Workload::Threads, 2);
    s.mutant = Some(Mutant::RefcountNoGrab);
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
