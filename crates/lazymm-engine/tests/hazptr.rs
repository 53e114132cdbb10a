//! The hazard-pointer schemes on the native engine: what a lazy round trip costs, what
//! teardown sends, and what exactly each of their mutants breaks. Every run is bounded by
//! a switch budget; the assertions are ratios and invariants.

use lazymm::{Mutant, Property};
use lazymm_engine::{run, RunReport, RunSpec, Workload};

const HAZPTR: [&str; 3] = ["hazptr-luto", "hazptr-luto-cpumask", "hazptr-mathieu"];

fn spec(scheme: &str, w: Workload, cpus: usize, switches: u64) -> RunSpec {
    RunSpec {
        seconds: Some(120.0),
        switches: Some(switches),
        seed: 11,
        ..RunSpec::new(scheme, w, cpus)
    }
}

fn clean(r: &RunReport, what: &str) {
    assert_eq!(r.total.violations, 0, "{what}: {:?}", r.violations);
    assert_eq!(r.total.mm_created, r.total.mm_freed, "{what}: leak");
}

#[test]
fn a_lazy_round_trip_makes_no_shared_rmw() {
    for scheme in HAZPTR {
        let r = run(&spec(scheme, Workload::IdleStorm, 2, 20_000)).expect("valid spec");
        clean(&r, scheme);
        // idle-storm: every other switch is a lazy one.
        assert!(
            r.measured.lazy_switches * 5 >= r.measured.context_switches * 2,
            "{scheme}: {} lazy of {} switches",
            r.measured.lazy_switches,
            r.measured.context_switches
        );
        let per = r.measured.shared_rmw as f64 / r.measured.lazy_switches as f64;
        assert!(per < 0.01, "{scheme}: {per} shared RMWs per lazy switch");
    }
}

#[test]
fn luto_tears_down_without_ipis_and_mathieu_only_ipis_holders() {
    let cpus = 2;
    for scheme in HAZPTR {
        let r = run(&spec(scheme, Workload::ExitStorm, cpus, 20_000)).expect("valid spec");
        clean(&r, scheme);
        assert!(r.total.exits > 0, "{scheme}: no exits");
        if scheme == "hazptr-mathieu" {
            // At most two serial IPIs (shoot, then check) per other CPU per teardown:
            // only CPUs whose hazard slot holds the mm are asked.
            assert!(
                r.total.ipis_sent <= 2 * r.total.exits * (cpus as u64 - 1),
                "{scheme}: {:?}",
                r.total
            );
        } else {
            assert_eq!(r.total.ipis_sent, 0, "{scheme}");
        }
    }
}

/// The first of seeds 1 to 5 whose run catches `m` (`None`: none did).
fn mutant_run(m: Mutant) -> Option<RunReport> {
    (1..=5).find_map(|seed| {
        let mut s = spec(m.scheme(), Workload::ExitStorm, 2, 1_000_000);
        s.mutant = Some(m);
        s.seed = seed;
        let r = run(&s).expect("valid spec");
        (r.total.violations > 0).then_some(r)
    })
}

#[test]
fn luto_early_scan_frees_an_mm_a_cpu_still_has_loaded() {
    let r = mutant_run(lazymm::scheme::hazptr_luto::EARLY_SCAN)
        .expect("hazptr-luto-early-scan was not caught");
    // What breaks is the lifetime: a lazily loaded mm is freed (b), or followed after
    // its free (a).
    assert!(
        r.violations
            .iter()
            .all(|v| matches!(v.kind.property(), Property::A | Property::B)),
        "{:?}",
        r.violations
    );
}

#[test]
fn mathieu_no_fence_breaks_only_membarrier() {
    let r = mutant_run(lazymm::scheme::hazptr_mathieu::NO_FENCE)
        .expect("hazptr-mathieu-no-fence was not caught");
    // The lifetime is still safe by causality: every violation is the missing full
    // barrier of property f, and every mm was freed exactly once.
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind.property() == Property::F),
        "{:?}",
        r.violations
    );
    assert_eq!(r.total.mm_created, r.total.mm_freed);
}
