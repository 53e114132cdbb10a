//! `exec_mmap` with interrupts on before `activate_mm` (mutant
//! `exec-mmap-irqs-on-activate`, the order before d53c3dfb23c4): a directed search.
//!
//! CPU 0's process clones a thread onto CPU 1 and exits, leaving CPU 0 lazy on the mm;
//! CPU 0's kernel worker then starts a user helper, which execs from that lazy mm,
//! while CPU 1's thread, the mm's last user, exits. With interrupts on in the window,
//! powerpc's exit flush IPI finds `current->active_mm` already the new mm, clears CPU
//! 0's bit and leaves the old mm loaded: `cleanup_lazy_tlbs` misses CPU 0 and the mm is
//! freed under it. The same programs with interrupts kept off (the kernel as it is)
//! stay clean.

use lazymm::{Mutant, Property};
use lazymm_engine::check::program::Op;
use lazymm_engine::check::run::directed_search;
use lazymm_engine::check::Case;
use lazymm_engine::registry;

/// Interleavings the directed search tries.
const SEARCH: u64 = 4_000;

fn case(scheme: &'static str, m: Option<Mutant>) -> Case {
    Case::by_hand(
        scheme,
        "powerpc",
        m,
        vec![
            vec![Op::Run(1), Op::Clone(1), Op::Touch, Op::Exit, Op::Exec],
            vec![Op::Touch, Op::Touch, Op::Run(2), Op::Touch, Op::Exit],
        ],
    )
}

#[test]
fn irqs_on_before_activate_mm_frees_the_old_mm_under_the_exec_cpu() {
    let m = registry::mutant("exec-mmap-irqs-on-activate").expect("declared by powerpc");
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
fn with_irqs_off_across_activate_mm_the_same_programs_stay_clean() {
    for scheme in ["shootdown", "lazy-percpu"] {
        if let Some((seed, out)) = directed_search(&case(scheme, None), SEARCH / 4, 6, 80).next() {
            panic!("{scheme} seed {seed}: {:?}", out.violations);
        }
    }
}
