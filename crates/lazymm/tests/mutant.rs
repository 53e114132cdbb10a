//! `refcount-no-grab` is caught, every time, in the race it loses; the correct
//! `refcount` runs the same interleaving cleanly.

mod common;

use common::*;
use lazymm::{Property, ViolationKind};

#[test]
fn refcount_survives_the_exit_race() {
    let r = exit_race(None);
    assert!(r.m_live_after_exit, "CPU 0's lazy reference keeps m alive");
    assert!(
        r.m_live_before_cpu0_switch,
        "CPU 1 leaving m lazily does not free it while CPU 0 still uses it"
    );
    assert_ne!(
        r.q.slot(),
        r.m.slot(),
        "m's slot is still taken when q is forked"
    );
    assert_eq!(r.q_count, 1);
    assert!(
        !r.m_live_after_cpu0_switch,
        "CPU 0, the last lazy user, frees m when it leaves it"
    );
    assert_eq!(r.cpu0_freed_at_switch, 1);
    assert_clean(&r.k, &r.cpus);
    let s = total_stats(&r.cpus);
    assert_eq!(s.mm_created, 3);
    assert_eq!(s.mm_created, s.mm_freed);
    assert_eq!(live(&r.k), 0);
}

#[test]
fn refcount_no_grab_is_caught_in_the_exit_race() {
    let r = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    let v = violations(&r.cpus);
    assert!(!v.is_empty());
    assert_eq!(r.k.violations(), v.len(), "every violation is counted");
    // The race itself, on m (not just the mutant's side effects on init_mm): m is
    // freed while CPU 0 has it loaded (b), walked after the free (b), and dropped again
    // by CPU 0's later switch (a).
    let on_m: Vec<_> = v.iter().filter(|v| v.mm == r.m).collect();
    assert!(on_m
        .iter()
        .any(|v| v.kind == ViolationKind::FreedWhileLoaded { holder: 0 }));
    assert!(on_m
        .iter()
        .any(|v| v.cpu == 0 && v.kind == ViolationKind::SpeculativeWalkOfFreed));
    assert!(on_m
        .iter()
        .any(|v| v.cpu == 0 && v.kind.property() == Property::A));
}

#[test]
fn refcount_no_grab_is_caught_deterministically() {
    let a = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    let b = exit_race(Some(lazymm::scheme::refcount::NO_GRAB));
    let (va, vb) = (violations(&a.cpus), violations(&b.cpus));
    assert!(!va.is_empty());
    assert_eq!(
        va, vb,
        "same interleaving, same violations at the same steps"
    );
    assert_eq!(a.k.violations(), b.k.violations());
}
