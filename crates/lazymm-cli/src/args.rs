//! Option parsing shared by the commands: every bad value becomes one line naming it and
//! the valid choices.

use crate::Failure;
use lexopt::{Arg, Parser, ValueExt};
use std::ffi::OsString;
use std::str::FromStr;

/// A parser over one command's arguments.
pub struct Args {
    parser: Parser,
}

impl Args {
    /// Parses `args` (the command's arguments, without the command).
    pub fn new(args: Vec<OsString>) -> Args {
        Args {
            parser: Parser::from_args(args),
        }
    }

    /// The next option or value, with lexopt's errors turned into one line.
    pub fn next(&mut self) -> Result<Option<Arg<'_>>, Failure> {
        self.parser.next().map_err(usage)
    }

    /// The value of the current option as a string.
    pub fn string(&mut self, opt: &str) -> Result<String, Failure> {
        let v = self
            .parser
            .value()
            .map_err(|_| Failure::Usage(format!("option {opt} needs a value")))?;
        v.string()
            .map_err(|_| Failure::Usage(format!("the value of {opt} is not valid UTF-8")))
    }

    /// The value of the current option as a number in `lo..=hi`.
    pub fn number<T>(&mut self, opt: &str, lo: T, hi: T, what: &str) -> Result<T, Failure>
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let s = self.string(opt)?;
        match s.trim().parse::<T>() {
            Ok(v) if v >= lo && v <= hi => Ok(v),
            _ => Err(Failure::Usage(format!(
                "bad value '{s}' for {opt} (valid: {what} from {lo} to {hi})"
            ))),
        }
    }
}

/// Turns a lexopt error into one line.
pub fn usage(e: lexopt::Error) -> Failure {
    Failure::Usage(e.to_string())
}

/// The error for an option the command does not take.
pub fn unexpected(arg: Arg<'_>, valid: &str) -> Failure {
    let what = match arg {
        Arg::Short(c) => format!("unknown option '-{c}'"),
        Arg::Long(l) => format!("unknown option '--{l}'"),
        Arg::Value(v) => format!("unexpected argument '{}'", v.to_string_lossy()),
    };
    Failure::Usage(format!("{what} (valid: {valid})"))
}
