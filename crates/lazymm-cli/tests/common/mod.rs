//! What the example test and the docs test share: the example's binary.

use std::path::PathBuf;
use std::process::Command;

/// The example's binary (`examples/shootdown_all.rs`), built with the profile of this
/// test (the directory the `lazymm` binary was built into), by cargo itself: a test run
/// that names only one test target builds no examples.
pub fn example() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lazymm"));
    let dir = bin.parent().expect("the binary is in a profile directory");
    let profile = dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("a profile name");
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "lazymm-cli",
            "--example",
            "shootdown_all",
        ])
        .args(["--profile", profile])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the example failed");
    dir.join("examples").join("shootdown_all")
}
