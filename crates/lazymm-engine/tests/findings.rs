//! What the checker found in the kernel as written, and the fix that closes it.
//!
//! `finding-force-init-mm-debug-vm`: mainline `sched_force_init_mm` reads
//! `current->active_mm` with interrupts on and never again. Under
//! `CONFIG_MMU_LAZY_TLB_SHOOTDOWN` on powerpc, the exit flush of the mm's last user
//! (`exit_flush_lazy_tlbs`) can reach the outgoing CPU in that window: the handler moves
//! it to `init_mm` and clears its `mm_cpumask` bit, the exiting CPU's `__mmdrop` then
//! frees the mm with no one left to shoot down, and `switch_mm_irqs_off(mm, &init_mm)`
//! follows the stale `prev` in `CONFIG_DEBUG_VM`'s `mm_cpumask(prev)` check.
//!
//! The random checker reaches it only rarely (it needs a thread that exited on the CPU
//! going offline while its process's last thread exits elsewhere, with two preemptions
//! in a window of a few instructions), so the case below sets those programs up and the
//! scheduler searches the interleavings. The replay it found is committed
//! (`findings/force-init-mm-debug-vm-seed1.replay.json`; regenerate with
//! `cargo test -p lazymm-engine --test findings -- --ignored`), and CI reruns it with
//! `lazymm check --replay`, which must exit 3.

use lazymm::{Mutant, Property};
use lazymm_engine::check::program::Op;
use lazymm_engine::check::run::{directed_search, Outcome};
use lazymm_engine::check::{replay, rerun, shrink, Case, Finding};
use lazymm_engine::registry;
use std::path::PathBuf;

/// Interleavings the directed search tries (the finding needs about 16,000).
const SEARCH: u64 = 20_000;

fn finding() -> Mutant {
    registry::mutant("finding-force-init-mm-debug-vm").expect("declared by powerpc")
}

fn fixed() -> Mutant {
    registry::mutant("fixed-force-init-mm-reread").expect("declared by powerpc")
}

/// CPU 0's process clones a thread onto CPU 1 and exits; CPU 1 runs the thread, which
/// exits (leaving CPU 1 lazy on the mm), then goes offline.
fn case(m: Mutant) -> Case {
    Case::by_hand(
        "shootdown",
        "powerpc",
        Some(m),
        vec![
            vec![Op::Run(1), Op::Clone(1), Op::Touch, Op::Exit],
            vec![Op::Touch, Op::Touch, Op::Run(2), Op::Exit, Op::Hotplug],
        ],
    )
}

/// The first interleaving of the search that breaks a property, if any.
fn search(m: Mutant) -> Option<(u64, Outcome)> {
    search_for(m, |_| true)
}

/// The first interleaving of the search whose first violation breaks a property `want`
/// accepts.
fn search_for(m: Mutant, want: impl Fn(Property) -> bool) -> Option<(u64, Outcome)> {
    directed_search(&case(m), SEARCH, 6, 80)
        .find(|(_, out)| out.first().is_some_and(|v| want(v.kind.property())))
}

fn replay_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../findings")
}

fn assert_is_the_finding(out: &Outcome) {
    let v = out.first().expect("a violation");
    assert_eq!(v.kind.property(), Property::A, "{v}");
    assert!(
        v.to_string().contains("switch_mm prev (CONFIG_DEBUG_VM)"),
        "{v}"
    );
}

#[test]
fn the_committed_replay_reproduces_the_finding_and_the_fix_closes_it() {
    let path = replay_path().join("force-init-mm-debug-vm-seed1.replay.json");
    let r = replay::read(&path).expect("the committed replay parses");
    assert_eq!(r.case.mutant, Some(finding()));
    let out = rerun(&r.case, &r.schedule).expect("registered");
    assert_is_the_finding(&out);
    // The same machine, programs and interleaving with the re-read under interrupts off.
    let mut fixed_case = r.case.clone();
    fixed_case.mutant = Some(fixed());
    let out = rerun(&fixed_case, &r.schedule).expect("registered");
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}

/// The spurious-warning form: the IPI clears the outgoing CPU's bit of a live mm in the
/// window, and `switch_mm_irqs_off` warns (`VM_WARN_ON_ONCE`, property w).
fn assert_is_the_warning(out: &Outcome) {
    let v = out.first().expect("a violation");
    assert_eq!(v.kind.property(), Property::W, "{v}");
    assert!(v.to_string().contains("mm_cpumask(prev)"), "{v}");
}

#[test]
fn the_committed_warning_replay_reproduces_and_the_fix_closes_it() {
    let path = replay_path().join(WARN_REPLAY);
    let r = replay::read(&path).expect("the committed replay parses");
    assert_eq!(r.case.mutant, Some(finding()));
    let out = rerun(&r.case, &r.schedule).expect("registered");
    assert_is_the_warning(&out);
    let mut fixed_case = r.case.clone();
    fixed_case.mutant = Some(fixed());
    let out = rerun(&fixed_case, &r.schedule).expect("registered");
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}

#[test]
fn the_directed_search_finds_it_as_written_and_nothing_with_the_fix() {
    let (seed, out) =
        search_for(finding(), |p| p == Property::A).expect("the search reaches the window");
    assert_is_the_finding(&out);
    let (wseed, wout) =
        search_for(finding(), |p| p == Property::W).expect("the search reaches the warning");
    assert_is_the_warning(&wout);
    eprintln!("the warning at seed {wseed} of {SEARCH}");
    assert!(
        search(fixed()).is_none(),
        "the fix leaves no violating interleaving"
    );
    eprintln!("found at seed {seed} of {SEARCH}");
}

/// The committed replay of the spurious-warning form.
const WARN_REPLAY: &str = "force-init-mm-debug-vm-warn-seed1.replay.json";

/// Searches for the first iteration that violates `property`, shrinks it, and writes it
/// into `findings/` as `name`: the one body of both regenerators below.
fn regenerate(property: Property, name: &str) {
    let (seed, out) =
        search_for(finding(), |p| p == property).expect("the search reaches the window");
    let f = Finding {
        case: case(finding()),
        schedule: out.schedule.clone(),
        outcome: out,
        iteration: seed,
    };
    let small = shrink(&f, 2000).expect("registered");
    let written = replay::write(&replay_path(), name, &small).expect("written");
    eprintln!("wrote {}", written.display());
}

/// Writes the shrunk replay of the warning form into `findings/` (run by hand).
#[test]
#[ignore]
fn regenerate_warning_replay() {
    regenerate(Property::W, "force-init-mm-debug-vm-warn");
}

/// Writes the shrunk replay of the finding into `findings/` (run by hand).
#[test]
#[ignore]
fn regenerate_finding_replay() {
    regenerate(Property::A, "force-init-mm-debug-vm");
}

/// `check --all`'s slice that meets the x86 what-if finding
/// (`findings/x86-shootdown-lazy-trim.md`): the target is listed as that finding, and
/// its violations are only the property the finding declares, so the run stays clean.
#[test]
fn shootdown_debug_on_x86_is_listed_as_its_finding() {
    use lazymm_engine::check::{check, Summary, Target};
    let t = Target {
        scheme: "shootdown-debug",
        arch: "x86",
        mutant: None,
        profile: lazymm::Profile::BARE,
    };
    let r = check(t, 7, 300, false, &mut || {}).expect("registered");
    let s = Summary::of("shootdown-debug", &r, None);
    assert_eq!(s.listed.as_deref(), Some("finding-x86-shootdown-lazy-trim"));
    assert!(
        s.violations > 0,
        "seed 7 meets the finding within 300 iterations"
    );
    assert!(s.clean(), "{:?}", s.by_property);
    // The same scheme on powerpc, where the kernel selects it, is no finding.
    assert_eq!(registry::listed_finding("shootdown-debug", "powerpc"), None);
}
