//! Andy's demand, in types: under `lazy-percpu` (and the hazard-pointer models, which
//! drop it though both patches keep it; see `docs/active_mm.md`) there is no
//! `active_mm` to misuse,
//! and the borrow of the lazily loaded mm cannot outlive its interrupts-disabled guard,
//! be stored past it, or cross to another CPU. Each case in `tests/ui` must fail to
//! compile with exactly the error pinned in its `.stderr` file, so a typo cannot pass
//! for a proof. (The `.stderr` files depend on the compiler version; regenerate them
//! with `TRYBUILD=overwrite` after a toolchain upgrade and review the diff.)

#[test]
fn misuse_of_the_lazy_mm_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// The other half: `shootdown` as merged keeps `task->active_mm`, uncounted, so code
/// can name it (and `shootdown-active-mm-reader` shows what following a copy costs).
#[test]
fn shootdown_tasks_keep_an_uncounted_active_mm() {
    use lazymm::scheme::{Shootdown, ShootdownDebug};
    use lazymm::Task;
    let k: Task<Shootdown> = Task::kthread(1);
    assert_eq!(
        k.scheme.active_mm, None,
        "a kernel thread that never ran has NULL"
    );
    let d: Task<ShootdownDebug> = Task::kthread(2);
    assert_eq!(d.scheme.active_mm, None);
    let ptr = core::mem::size_of::<Option<lazymm::MmId>>();
    assert_eq!(
        Task::<Shootdown>::SCHEME_BYTES,
        ptr,
        "one active_mm pointer"
    );
    assert_eq!(Task::<lazymm::scheme::LazyPercpu>::SCHEME_BYTES, 0);
}
