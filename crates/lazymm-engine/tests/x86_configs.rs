//! What x86's INVLPGB and KVM paravirt-flush configurations do to `lazy-percpu`: the
//! findings `finding-lazy-percpu-x86-invlpgb` and `finding-lazy-percpu-x86-kvm-pv-flush`
//! (reports in `findings/`).
//!
//! `lazy-percpu` skips its own shootdown on x86 because, on bare metal without INVLPGB,
//! the freeing flush of `exit_mmap` IPIs every lazy CPU and `flush_tlb_func` moves it to
//! `init_mm`. Under either configuration some lazy CPU gets no such IPI and keeps CR3 on
//! the root `__mmdrop` frees (property b). The random checker finds both within a few
//! schedules; the shrunk replays are committed and CI reruns them with
//! `lazymm check --replay`, which must exit 3.

use lazymm::{Mutant, Property};
use lazymm_engine::check::{self, replay, rerun, Target};
use lazymm_engine::registry;
use std::path::PathBuf;

fn declared(name: &str) -> Mutant {
    registry::mutant(name).expect("declared by x86")
}

fn replay_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../findings")
        .join(file)
}

/// The committed replay breaks property b under its configuration, and the same
/// machine, programs and interleaving on bare metal (no configuration) are clean.
fn reproduces_and_bare_metal_is_clean(name: &str, file: &str) {
    let r = replay::read(&replay_path(file)).expect("the committed replay parses");
    assert_eq!(r.case.mutant, Some(declared(name)));
    assert_eq!((r.case.scheme, r.case.arch), ("lazy-percpu", "x86"));
    let out = rerun(&r.case, &r.schedule).expect("registered");
    let v = out.first().expect("a violation");
    assert_eq!(v.kind.property(), Property::B, "{v}");
    assert!(v.to_string().contains("still had it loaded"), "{v}");
    let mut bare = r.case.clone();
    bare.mutant = None;
    let out = rerun(&bare, &r.schedule).expect("registered");
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}

#[test]
fn invlpgb_replay_reproduces_and_bare_metal_is_clean() {
    reproduces_and_bare_metal_is_clean(
        "finding-lazy-percpu-x86-invlpgb",
        "lazy-percpu-x86-invlpgb.replay.json",
    );
}

#[test]
fn kvm_pv_flush_replay_reproduces_and_bare_metal_is_clean() {
    reproduces_and_bare_metal_is_clean(
        "finding-lazy-percpu-x86-kvm-pv-flush",
        "lazy-percpu-x86-kvm-pv-flush.replay.json",
    );
}

/// The checker's own hunt (as `lazymm check --mutant NAME --seed 7`) finds each, and
/// only through property b.
#[test]
fn the_checker_finds_both() {
    for name in [
        "finding-lazy-percpu-x86-invlpgb",
        "finding-lazy-percpu-x86-kvm-pv-flush",
    ] {
        let m = declared(name);
        let r = check::hunt(m, 7, 200, &mut || {}).expect("registered");
        let f = r
            .first
            .unwrap_or_else(|| panic!("{name}: not found in 200 schedules"));
        let v = f.outcome.first().expect("a violation");
        assert_eq!(v.kind.property(), Property::B, "{name}: {v}");
    }
}

/// `lazy-percpu` on bare-metal x86 (the default configuration) stays clean where the
/// findings' configurations break it: the premise holds there.
#[test]
fn lazy_percpu_on_bare_metal_x86_is_clean() {
    let t = Target {
        scheme: "lazy-percpu",
        arch: "x86",
        mutant: None,
        profile: lazymm::Profile::BARE,
    };
    let r = check::check(t, 7, 150, false, &mut || {}).unwrap();
    assert!(
        r.first.is_none(),
        "{:?}",
        r.first.map(|f| f.outcome.violations)
    );
}

/// Interleavings each directed search below tries.
const SEARCH: u64 = 1_000;

/// CPU 1 runs a thread of CPU 0's process, goes idle (lazy on the mm) and comes back,
/// while CPU 0's thread unmaps pages and, last, exits: the unmap flushes skip (or, in a
/// KVM guest, may skip as preempted) CPU 1, which must still return to user space on
/// current translations (h), and the exit's freeing flush must leave no CPU walking
/// freed tables (b).
fn lazy_return_case(config: Mutant) -> lazymm_engine::check::Case {
    use lazymm_engine::check::program::Op;
    let programs = vec![
        vec![
            Op::Run(1),
            Op::Clone(1),
            Op::Touch,
            Op::Munmap,
            Op::Munmap,
            Op::Touch,
            Op::Munmap,
            Op::Exit,
        ],
        vec![
            Op::Touch,
            Op::Run(2),
            Op::Idle,
            Op::Run(2),
            Op::Touch,
            Op::Idle,
            Op::Run(2),
            Op::Touch,
        ],
    ];
    lazymm_engine::check::Case {
        walk_period: 2,
        ..lazymm_engine::check::Case::by_hand(config.scheme(), "x86", Some(config), programs)
    }
}

/// The clean configurations stay clean on every interleaving of the lazy-return case
/// tried: INVLPGB's broadcast keeps the global ASID current, and a vCPU skipped as
/// preempted is flushed by the host before it runs.
#[test]
fn the_configurations_keep_lazy_returns_current() {
    for name in [
        "refcount-x86-invlpgb",
        "shootdown-x86-invlpgb",
        "refcount-x86-kvm-pv-flush",
        "shootdown-x86-kvm-pv-flush",
    ] {
        let case = lazy_return_case(declared(name));
        let mut search = lazymm_engine::check::run::directed_search(&case, SEARCH, 5, 60);
        if let Some((seed, out)) = search.next() {
            panic!("{name}, seed {seed}: {:?}", out.violations);
        }
    }
}

/// The proposed fix (`fixed-lazy-percpu-x86-*`: `lazy-percpu` asks this boot's x86
/// whether the freeing flush reached every lazy CPU, and shoots them down itself when
/// not): each finding's replay, rerun with the fix on, is clean, and so is the
/// checker's own run of the fixed configuration.
#[test]
fn the_fix_keeps_lazy_percpu_clean_under_both() {
    for (finding, fixed, file) in [
        (
            "finding-lazy-percpu-x86-invlpgb",
            "fixed-lazy-percpu-x86-invlpgb",
            "lazy-percpu-x86-invlpgb.replay.json",
        ),
        (
            "finding-lazy-percpu-x86-kvm-pv-flush",
            "fixed-lazy-percpu-x86-kvm-pv-flush",
            "lazy-percpu-x86-kvm-pv-flush.replay.json",
        ),
    ] {
        let fix = declared(fixed);
        assert_eq!(fix.kind(), lazymm::Kind::Fixed);
        let r = replay::read(&replay_path(file)).expect("the committed replay parses");
        assert_eq!(r.case.mutant, Some(declared(finding)));
        let mut case = r.case.clone();
        case.mutant = Some(fix);
        let out = rerun(&case, &r.schedule).expect("registered");
        assert!(out.violations.is_empty(), "{fixed}: {:?}", out.violations);
        let t = Target {
            scheme: "lazy-percpu",
            arch: "x86",
            mutant: Some(fix),
            profile: lazymm::Profile::BARE,
        };
        let r = check::check(t, 7, 300, false, &mut || {}).unwrap();
        assert!(
            r.first.is_none(),
            "{fixed}: {:?}",
            r.first.map(|f| f.outcome.violations)
        );
    }
}
