//! The checker finds what nobody declared: every declared mutant is caught by the
//! *correct-scheme* configuration (every operation mix in turn, [`Mixes::Rotate`]), not
//! only by the hunt that uses its own declared mix. A mutant caught only under its own
//! hint would mean a regression of the same shape, undeclared, passes `check --all`:
//! that is a fault of the checker, and this test fails.
//!
//! The bound: at most [`BOUND`] iterations from seed 7, a mutant without an arch
//! rotating over every arch as `check --mutants` does (so each arch gets a quarter).
//! Each mutant's count is printed (`--nocapture`) and recorded in docs/design.md.

use lazymm_engine::check::{self, Mixes, Shard};
use std::time::Instant;

/// Iterations a mutant may take under the rotation before the test fails.
const BOUND: u64 = 3000;

#[test]
fn every_mutant_is_caught_by_the_correct_scheme_rotation() {
    let t0 = Instant::now();
    let mut missed = Vec::new();
    for m in lazymm_engine::registry::mutants() {
        let t = Instant::now();
        let r = check::hunt_with(
            m,
            lazymm::Profile::BARE,
            7,
            BOUND,
            Mixes::Rotate,
            Shard::WHOLE,
            &mut || {},
        )
        .unwrap();
        match &r.first {
            Some(f) => eprintln!(
                "{:<32} caught at iteration {:>5} on {} under mix {:?} in {:?}: {}",
                m.name(),
                f.iteration + 1,
                r.target.arch,
                check::program::Mix::rotation(f.iteration),
                t.elapsed(),
                f.outcome.first().unwrap()
            ),
            None => {
                eprintln!("{:<32} NOT caught in {BOUND}", m.name());
                missed.push(m.name());
            }
        }
    }
    eprintln!("all mutants in {:?}", t0.elapsed());
    assert!(
        missed.is_empty(),
        "caught only under their own hint, not by check --all's rotation: {missed:?}"
    );
}
