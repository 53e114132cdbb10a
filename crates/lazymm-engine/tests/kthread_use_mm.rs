//! `kthread_use_mm` with interrupts on between `tsk->active_mm = mm` and `switch_mm`
//! (mutant `kthread-use-mm-irqs-on`, the order before 38cf307c1f20): a directed search.
//!
//! CPU 0's process clones a thread onto CPU 1 and exits, leaving CPU 0 lazy on its mm;
//! CPU 2's process hands its mm to the kernel workers, and CPU 0's worker adopts it
//! with `kthread_use_mm` while CPU 1's thread, the lazy mm's last user, exits. With
//! interrupts on in the window, powerpc's exit flush IPI finds `current->active_mm`
//! already the adopted mm, clears CPU 0's bit and leaves the old mm loaded:
//! `cleanup_lazy_tlbs` misses CPU 0. The same programs with interrupts kept off (the
//! kernel since v5.9) stay clean.

use lazymm::{Mutant, Property};
use lazymm_engine::check::program::Op;
use lazymm_engine::check::run::directed_search;
use lazymm_engine::check::Case;

/// Interleavings the directed search tries.
const SEARCH: u64 = 4_000;

fn case(scheme: &'static str, m: Option<Mutant>) -> Case {
    Case::by_hand(
        scheme,
        "powerpc",
        m,
        vec![
            vec![
                Op::Run(1),
                Op::Clone(1),
                Op::Touch,
                Op::Exit,
                Op::Work,
                Op::Work,
            ],
            vec![Op::Touch, Op::Touch, Op::Run(2), Op::Touch, Op::Exit],
            vec![Op::Run(1), Op::Submit],
        ],
    )
}

#[test]
fn irqs_on_in_kthread_use_mm_frees_the_old_mm_under_the_worker() {
    // The directed search of the window (check --mutants finds it too, through the
    // lazy-exec mix; see its doc).
    let m = lazymm::arch::powerpc::KTHREAD_USE_MM_IRQS_ON;
    let (seed, out) = directed_search(&case("shootdown", Some(m)), SEARCH, 6, 80)
        .next()
        .expect("the directed search opens the window");
    let v = out.first().expect("a violation");
    let p = v.kind.property();
    assert!(
        p == Property::B || p == Property::C,
        "seed {seed}: expected b or c, got {v}"
    );
}

#[test]
fn with_irqs_off_in_kthread_use_mm_the_same_programs_stay_clean() {
    for scheme in ["shootdown", "lazy-percpu", "refcount"] {
        if let Some((seed, out)) = directed_search(&case(scheme, None), SEARCH / 4, 6, 80).next() {
            panic!("{scheme} seed {seed}: {:?}", out.violations);
        }
    }
}
