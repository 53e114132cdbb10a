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
use lazymm_engine::check::pct::Policy;
use lazymm_engine::check::program::Op;
use lazymm_engine::check::run::execute;
use lazymm_engine::check::Case;
use lazymm_engine::registry;

/// Interleavings the directed search tries.
const SEARCH: u64 = 4_000;

fn case(scheme: &'static str, m: Option<Mutant>) -> Case {
    Case {
        scheme,
        arch: "powerpc",
        mutant: m,
        seed: 1,
        cpus: 2,
        arena: 8,
        walk_period: 0,
        profile: lazymm::Profile::BARE,
        programs: vec![
            vec![Op::Run(1), Op::Clone(1), Op::Touch, Op::Exit, Op::Exec],
            vec![Op::Touch, Op::Touch, Op::Run(2), Op::Touch, Op::Exit],
        ],
    }
}

fn policy(seed: u64) -> Policy {
    Policy::directed(seed, 6, 80)
}

#[test]
fn irqs_on_before_activate_mm_frees_the_old_mm_under_the_exec_cpu() {
    let m = registry::mutant("exec-mmap-irqs-on-activate").expect("declared by powerpc");
    let found = (0..SEARCH).find_map(|seed| {
        let out = execute(&case("shootdown", Some(m)), policy(seed)).expect("registered");
        out.violations.first().cloned().map(|v| (seed, v))
    });
    let (seed, v) = found.expect("the directed search opens the window");
    let p = v.kind.property();
    assert!(
        p == Property::B || p == Property::C,
        "seed {seed}: expected b or c, got {v}"
    );
}

#[test]
fn with_irqs_off_across_activate_mm_the_same_programs_stay_clean() {
    for scheme in ["shootdown", "lazy-percpu"] {
        for seed in 0..SEARCH / 4 {
            let out = execute(&case(scheme, None), policy(seed)).expect("registered");
            assert!(
                out.violations.is_empty(),
                "{scheme} seed {seed}: {:?}",
                out.violations
            );
        }
    }
}
