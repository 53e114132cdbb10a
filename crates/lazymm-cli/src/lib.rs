//! The `lazymm` command as a library: [`main_with`] runs it with the built-in schemes
//! and any a program adds ([`Registry::with_scheme`]), so that a scheme written outside
//! this workspace is listed, run, benched, checked, predicted and replayed by the
//! ordinary command line (`crates/lazymm-cli/examples/shootdown_all.rs`,
//! `docs/new-scheme.md`). The `lazymm` binary is `main_with(Registry::builtin())`.
//!
//! Exit status: 0 success; 2 bad usage or input (one line naming the bad value and the
//! valid choices); 3 a run, bench or check found a violation of a safety property, or a
//! check left a mutant uncaught.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod out;
mod bench;
mod check;
pub mod cli;
mod json;
mod lab;
mod predict;
mod progress;
mod record;
mod replay;
mod run;
mod schemes;

pub use json::schemas;

use std::process::ExitCode;

/// The schemes the command line knows: the built-in ones (the registry's `schemes!`),
/// plus those a program adds.
pub struct Registry {
    added: Vec<lazymm_engine::registry::Registered>,
}

impl Registry {
    /// The built-in schemes only.
    pub fn builtin() -> Registry {
        Registry { added: Vec::new() }
    }

    /// Adds scheme `S` (with the mutants it declares, `Scheme::MUTANTS`), described by
    /// `description` in `lazymm schemes`: every host is instantiated for it here, where
    /// its type is known (native runs and benches, the checker, the simulator, the trace
    /// replayer).
    pub fn with_scheme<S: lazymm::Scheme>(mut self, description: &'static str) -> Registry {
        let mut r = lazymm_engine::registry::Registered::new::<S>(description);
        lazymm_engine::native::register::<S>(&mut r);
        lazymm_engine::check::register::<S>(&mut r);
        lazymm_sim::sim::register::<S>(&mut r);
        lazymm_replay::register::<S>(&mut r);
        self.added.push(r);
        self
    }
}

/// Runs the `lazymm` command line (the process's arguments) with the schemes of
/// `registry`; returns the exit status.
pub fn main_with(registry: Registry) -> ExitCode {
    for r in registry.added {
        if let Err(e) = lazymm_engine::registry::register(r) {
            eprintln!("lazymm: {e}");
            return ExitCode::from(2);
        }
    }
    run_command()
}

/// A failure to report as one line, with its exit status.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage or input (status 2).
    Usage(String),
    /// The command could not do its work (status 1).
    Io(String),
    /// Standard output was closed by its reader: stop quietly (status 0).
    Closed,
}

/// The command line as clap sees it: parsing, help, completions and the man page. Build
/// it after the program's schemes are registered ([`main_with`] does), so that their
/// names are among the valid values.
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}

fn run_command() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = match command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => return clap_exit(&e, &argv),
    };
    let result = match <cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(parsed) => dispatch(parsed),
        Err(e) => return clap_exit(&e, &argv),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("lazymm: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Io(msg)) => {
            eprintln!("lazymm: {msg}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(parsed: cli::Cli) -> Result<u8, Failure> {
    use cli::Command as C;
    match parsed.command {
        None => Err(Failure::Usage(format!(
            "no command given (valid: {}; see lazymm --help)",
            subcommands(&command())
        ))),
        Some(C::Schemes) => schemes::main(),
        Some(C::Run(a)) => run::main(a),
        Some(C::Bench(a)) => bench::main(a),
        Some(C::Check(a)) => check::main(a),
        Some(C::Predict(a)) => predict::main(a),
        Some(C::Replay(a)) => replay::main(a),
        Some(C::Record(a)) => record::main(a),
        Some(C::Lab(a)) => lab::main(a),
        Some(C::Completions { shell }) => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut command(), "lazymm", &mut buf);
            out::bytes(&buf)?;
            Ok(0)
        }
        Some(C::Man { out: None }) => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(command())
                .render(&mut buf)
                .map_err(|e| Failure::Io(format!("cannot render the man page: {e}")))?;
            out::bytes(&buf)?;
            Ok(0)
        }
        Some(C::Man { out: Some(dir) }) => {
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(command(), &dir))
                .map_err(|e| {
                    Failure::Io(format!(
                        "cannot write man pages into {}: {e}",
                        dir.display()
                    ))
                })?;
            outln!("man pages: {}", dir.display());
            Ok(0)
        }
    }
}

/// The visible subcommands of `cmd`, comma-separated.
fn subcommands(cmd: &clap::Command) -> String {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .chain(std::iter::once("help"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ends the process for a clap outcome: help and version on stdout (status 0), an error
/// as one line naming the bad value and the valid choices (status 2).
fn clap_exit(e: &clap::Error, argv: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match out::write(format_args!("{}", e.render())) {
                Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
                Err(Failure::Io(msg) | Failure::Usage(msg)) => {
                    eprintln!("lazymm: {msg}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            eprintln!("lazymm: {}", one_line(e, argv));
            ExitCode::from(2)
        }
    }
}

/// A clap error as one line: what is wrong, naming the value, and the valid choices.
fn one_line(e: &clap::Error, argv: &[std::ffi::OsString]) -> String {
    use clap::error::{ContextKind as K, ContextValue as V, ErrorKind};
    let text = |k| match e.get(k) {
        Some(V::String(s)) => Some(s.clone()),
        Some(V::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let root = command();
    // The subcommand the user typed, if any: its options are the valid choices.
    let sub = argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .and_then(|name| root.find_subcommand(name));
    let rendered = e.render().to_string();
    let mut lines = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l));
    let mut msg = lines.next().unwrap_or("bad usage").to_string();
    match e.kind() {
        ErrorKind::ValueValidation => {
            if let (Some(value), Some(arg)) = (text(K::InvalidValue), text(K::InvalidArg)) {
                let why = std::error::Error::source(e).map_or_else(String::new, |s| s.to_string());
                msg = format!("invalid value '{value}' for '{arg}' ({why})");
            }
        }
        ErrorKind::InvalidValue => {
            if let Some(valid) = text(K::ValidValue).filter(|v| !v.is_empty()) {
                msg = format!("{msg} (valid: {valid})");
            }
        }
        ErrorKind::InvalidSubcommand => {
            msg = format!("{msg} (valid: {})", subcommands(&root));
        }
        ErrorKind::UnknownArgument => {
            let options: Vec<String> = sub
                .map(|c| {
                    c.get_arguments()
                        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                        .collect()
                })
                .unwrap_or_else(|| vec!["--help".into(), "--version".into()]);
            msg = format!("{msg} (valid: {})", options.join(", "));
        }
        // "the following required arguments were not provided:" and the list below it.
        _ => {
            for l in lines.filter(|l| !l.starts_with("Usage:") && !l.starts_with("tip:")) {
                msg = format!("{msg} {l}");
            }
        }
    }
    msg
}
