//! The checker: correct schemes stay clean, every mutant is caught, and a shrunk
//! counterexample replays exactly.

use lazymm_engine::check::{self, replay, Target};
use lazymm_engine::registry::{ARCHS, SCHEMES};

#[test]
fn correct_schemes_are_clean() {
    for (scheme, _) in SCHEMES {
        if !check::promises_safety(scheme).unwrap() {
            continue;
        }
        for (arch, _) in ARCHS {
            let t = Target {
                scheme,
                arch,
                mutant: None,
                profile: lazymm::Profile::BARE,
            };
            let t0 = std::time::Instant::now();
            let r = check::check(t, 7, 60, false, &mut || {}).unwrap();
            eprintln!(
                "{}: {} iterations, {} decisions in {:?}",
                t.name(),
                r.iterations,
                r.decisions,
                t0.elapsed()
            );
            assert_eq!(r.stalled, 0, "{}: stalled", t.name());
            if let Some(f) = &r.first {
                panic!(
                    "{}: violation {}\n{}",
                    t.name(),
                    f.outcome.first().unwrap(),
                    check::timeline(&f.outcome).join("\n")
                );
            }
        }
    }
}

/// Every correct scheme under a configuration an arch declares off by default (x86
/// INVLPGB, a KVM guest's paravirt flush) stays clean, as `check --all` checks it.
#[test]
fn configurations_are_clean() {
    let configs = lazymm_engine::registry::configs();
    assert!(!configs.is_empty());
    for c in configs {
        assert_eq!(c.kind(), lazymm::Kind::Config, "{}", c.name());
        let t = Target {
            scheme: c.scheme(),
            arch: c.arch().unwrap_or("generic"),
            mutant: Some(c),
            profile: lazymm::Profile::BARE,
        };
        let r = check::check(t, 7, 150, false, &mut || {}).unwrap();
        assert_eq!(r.stalled, 0, "{}: stalled", t.name());
        if let Some(f) = &r.first {
            panic!(
                "{}: violation {}\n{}",
                t.name(),
                f.outcome.first().unwrap(),
                check::timeline(&f.outcome).join("\n")
            );
        }
    }
}

#[test]
fn every_mutant_is_caught_and_replays() {
    for m in lazymm_engine::registry::mutants() {
        // As `lazymm check --mutants --seed 7` hunts: at most 2000 iterations, on the
        // mutant's arch or on every arch in turn.
        let r = check::hunt(m, 7, 2000, &mut || {}).unwrap();
        let f = r.first.unwrap_or_else(|| panic!("{} not caught", m.name()));
        eprintln!(
            "{}: caught at iteration {}: {}",
            m.name(),
            f.iteration,
            f.outcome.first().unwrap()
        );
        let small = check::shrink(&f, 500).unwrap();
        eprintln!(
            "  shrunk from {} ops / {} decisions to {} ops / {} decisions",
            f.case.ops(),
            f.schedule.len(),
            small.case.ops(),
            small.schedule.len()
        );
        for line in check::timeline(&small.outcome) {
            eprintln!("    {line}");
        }
        let text = serde_json::to_string(&replay::to_file(&small)).unwrap();
        let back = replay::parse(&text).unwrap();
        assert_eq!(back.case, small.case);
        assert_eq!(back.schedule, small.schedule);
        let again = check::rerun(&back.case, &back.schedule).unwrap();
        assert_eq!(
            again.first(),
            small.outcome.first(),
            "{}: replay differs",
            m.name()
        );
        assert_eq!(again.schedule, small.outcome.schedule);
    }
}
