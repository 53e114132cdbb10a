//! Every command the documents show, run as they show it (`trycmd`): each ```` ```console ````
//! block of `README.md` and `docs/*.md` is a sequence of `$ lazymm ...` commands, each
//! followed by its output (`...` stands for any lines, `[..]` for any text within a line)
//! and, when it is not 0, its exit status (`? 3`). A command that stops doing what its
//! text says fails this test. Blocks of other languages (`sh`, `rust`, `c`, `text`) are
//! not run.
//!
//! The commands run in a scratch directory that sees the repository's `findings/`,
//! `docs/` and `crates/` (so that they name committed files as a reader in the
//! repository's root would) and keeps whatever they write. `docs/active_mm.md` draws its
//! diagrams there; this test then compares them with the committed `docs/img/*.svg`
//! (`LAZYMM_BLESS=1` writes them instead).
//!
//! `$ lazymm` is the binary of this build; `$ target/debug/examples/shootdown_all` is the
//! example scheme's binary (`docs/new-scheme.md`), built with this test's profile.

mod common;

use std::path::{Path, PathBuf};

/// The documents whose ```` ```console ```` blocks are run.
const DOCS: &[&str] = &[
    "README.md",
    "docs/design.md",
    "docs/active_mm.md",
    "docs/new-scheme.md",
    "docs/profiles.md",
];

/// What the scratch directory sees of the repository.
const SEEN: &[&str] = &["findings", "docs", "crates"];

/// The diagrams `docs/active_mm.md` draws, as it names them in its commands.
const DIAGRAMS: &[&str] = &["lazy-round-trip.svg", "shootdown.svg"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_command_in_the_docs_does_what_its_text_says() {
    let root = root().canonicalize().expect("the repository");
    let scratch = std::env::temp_dir().join(format!("lazymm-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let mut cases = Vec::new();
    for doc in DOCS {
        let name = Path::new(doc).file_name().expect("a file name");
        // trycmd runs the commands of `X.md` in `X.in/` when it exists.
        let copy = scratch.join(name);
        std::fs::copy(root.join(doc), &copy).unwrap_or_else(|e| panic!("{doc}: {e}"));
        let cwd = copy.with_extension("in");
        std::fs::create_dir_all(&cwd).expect("a working directory");
        for dir in SEEN {
            std::os::unix::fs::symlink(root.join(dir), cwd.join(dir)).expect("a symlink");
        }
        cases.push(copy);
    }
    let t = trycmd::TestCases::new();
    t.register_bin("lazymm", PathBuf::from(env!("CARGO_BIN_EXE_lazymm")))
        .register_bin("target/debug/examples/shootdown_all", common::example())
        .timeout(std::time::Duration::from_secs(60));
    for c in &cases {
        t.case(c);
    }
    t.run();

    // The diagrams: drawn by the commands above, equal to the committed ones.
    let drawn = scratch.join("active_mm.in");
    let bless = std::env::var_os("LAZYMM_BLESS").is_some();
    for d in DIAGRAMS {
        let new = std::fs::read_to_string(drawn.join(d))
            .unwrap_or_else(|e| panic!("docs/active_mm.md drew no {d}: {e}"));
        let committed = root.join("docs/img").join(d);
        if bless {
            std::fs::write(&committed, &new).expect("write the diagram");
            continue;
        }
        let old = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            old == new,
            "docs/img/{d} differs from what docs/active_mm.md's command draws; \
             if the change is meant, regenerate it with \
             LAZYMM_BLESS=1 cargo test -p lazymm-cli --test docs"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
