//! Standard output, written only through here: a reader that goes away (`lazymm schemes |
//! head -1`) ends the command quietly with status 0, as SIGPIPE ends a C tool, instead of
//! the panic of `println!` ("failed printing to stdout").
//!
//! `main.rs` forbids unsafe code, so SIGPIPE cannot be reset to its default; every write
//! instead maps [`std::io::ErrorKind::BrokenPipe`] to [`Failure::Closed`], which each
//! command returns with `?` and [`crate::main_with`] turns into status 0.

use crate::Failure;
use std::io::Write;

/// Writes `args` to stdout; a closed pipe becomes [`Failure::Closed`], any other error a
/// one-line [`Failure::Io`].
pub(crate) fn write(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).map_err(failure)
}

/// Writes `bytes` to stdout (completions, man pages), and flushes them.
pub(crate) fn bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(failure)
}

fn failure(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::Closed
    } else {
        Failure::Io(format!("cannot write to standard output: {e}"))
    }
}

/// `println!` through [`write`], returning from the enclosing function (whose error type
/// is [`Failure`]) when stdout is closed or fails.
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n"))? };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))? };
}

/// `print!` through [`write`], like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*))? };
}
