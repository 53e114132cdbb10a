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

fn finding(name: &str) -> Mutant {
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
    assert_eq!(r.case.mutant, Some(finding(name)));
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
        let m = finding(name);
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
