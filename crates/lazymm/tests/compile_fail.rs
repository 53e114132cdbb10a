//! Andy's demand, in types: under an opt-out scheme there is no `active_mm` to misuse,
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
