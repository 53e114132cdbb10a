//! Every kernel profile preset runs on the hosts: the checker finds every safe scheme
//! clean and still catches the mutants under it, and the native engine runs a workload
//! with remote wakeups and idle round trips under it without a violation.

use lazymm::Profile;
use lazymm_engine::check::{self, Mixes, Shard, Target};
use lazymm_engine::registry::{self, ARCHS, SCHEMES};
use lazymm_engine::{run, RunSpec, Workload};

#[test]
fn every_preset_checks_clean_on_every_safe_scheme_and_arch() {
    for (profile, _) in Profile::PRESETS {
        for (scheme, _) in SCHEMES {
            if !check::promises_safety(scheme).unwrap() {
                continue;
            }
            for (arch, _) in ARCHS {
                let t = Target {
                    scheme,
                    arch,
                    mutant: None,
                    profile,
                };
                let r = check::check(t, 11, 12, false, &mut || {}).unwrap();
                assert_eq!(r.stalled, 0, "{} under {profile}: stalled", t.name());
                if let Some(f) = &r.first {
                    panic!(
                        "{} under {profile}: violation {}",
                        t.name(),
                        f.outcome.first().unwrap()
                    );
                }
            }
        }
    }
}

#[test]
fn mutants_are_still_caught_under_the_first_and_the_last_kernel() {
    for name in ["6.1", "mainline-2026"] {
        let profile = Profile::by_name(name).unwrap();
        for m in registry::mutants() {
            let r = check::hunt_with(m, profile, 7, 2000, Mixes::Hint, Shard::WHOLE, &mut || {})
                .unwrap();
            assert!(
                r.first.is_some(),
                "mutant {} escaped under {name} in {} iterations",
                m.name(),
                r.iterations
            );
        }
    }
}

#[test]
fn every_preset_runs_natively_without_violations() {
    for (profile, _) in Profile::PRESETS {
        for arch in ["generic", "x86"] {
            let spec = RunSpec {
                arch: arch.into(),
                seconds: None,
                switches: Some(4_000),
                pin: false,
                profile,
                ..RunSpec::new("refcount", Workload::Threads, 2)
            };
            let r = run(&spec).unwrap();
            assert!(
                r.violations.is_empty(),
                "{profile} on {arch}: {:?}",
                r.violations
            );
            assert!(r.total.context_switches >= 4_000, "{profile} on {arch}");
        }
    }
}
