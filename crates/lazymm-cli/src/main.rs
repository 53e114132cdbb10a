//! `lazymm`: run, compare and try to break the schemes that keep lazily used address
//! spaces alive.
//!
//! Exit status: 0 success; 2 bad usage or input (one line naming the bad value and the
//! valid choices); 3 a run, bench or check found a violation of a safety property, or a
//! check left a mutant uncaught.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    lazymm_cli::main_with(lazymm_cli::Registry::builtin())
}
