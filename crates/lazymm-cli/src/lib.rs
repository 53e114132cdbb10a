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

mod args;
mod bench;
mod check;
mod lab;
mod predict;
mod progress;
mod record;
mod replay;
mod run;
mod schemes;

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
}

const USAGE: &str = "\
usage: lazymm <command> [options]

commands:
  schemes                        list schemes, archs, workloads and mutants
  run (--scheme S | --mutant M) [--arch A] --workload W [--cpus N] [--pairs N]
      [--seconds T | --switches K] [--seed X] [--switch-work NS]
      [--membarrier registered|unregistered] [--json] [--timeline FILE]
                                 one run: a table, or one JSON object with --json
                                 (--timeline: each CPU's switches as Chrome trace
                                 JSON for Perfetto, or drawn as SVG for FILE.svg)
  bench [--quick] [--out DIR] [--schemes S,..] [--workloads W,..] [--cpus N,..]
        [--pairs N,..] [--archs A,..] [--switch-work NS] [--seed X]
                                 every scheme side by side: a table, and a report
                                 (JSON, CSV, SVG charts, index.html) in DIR
                                 (default lazymm-report/)
  check [--scheme S | --all] [--mutant M | --mutants] [--arch A] [--iterations K]
        [--budget N] [--seed X] [--json] [--replay-dir DIR]
                                 try to break schemes (K seeded runs each) and catch
                                 mutants (at most N runs each); failures are shrunk
                                 and written as replay files (default lazymm-replays/)
  check --replay FILE [--timeline T]
                                 rerun a replay file exactly and print its timeline
                                 (--timeline: also as Chrome trace JSON for Perfetto,
                                 or drawn as SVG for T.svg)
  replay TRACE... [--format F] [--schemes S,..] [--archs A,..] [--json] [--out DIR]
         [--lenient] [--kthreads FILE] [--timeline FILE]
                                 every scheme on a real machine's schedule (ftrace,
                                 atrace, systrace, trace-cmd, perf script, LTTng text)
  record [--out FILE] [--seconds N] [--tool perf|trace-cmd] -- CMD ARGS
                                 record the scheduler events replay needs while CMD
                                 runs (perf, or trace-cmd), as text (default
                                 lazymm-trace.txt)
  predict [--machine NAME|FILE] [--schemes S,..] [--archs A,..] [--workloads W,..]
          [--cpus N,..] [--pairs N,..] [--seed X] [--out DIR] [--json] [--quick]
          [--vary KEY=V1,V2,..] [--validate] [--calibrate]
                                 predictions of a coherence cost model for machines this
                                 host is not (presets: host, power8-192, epyc-zen4-2s,
                                 spr-2s, big-1024; default big-1024); report in DIR
                                 (default lazymm-predict/)
  lab [--arch x86|powerpc] [--cpus N] [--topology SxCxT] [--workload W] [--seconds T]
      [--pairs N,..] [--pin | --pin-both] [--kernel IMAGE [--config FILE]]
      [--accel auto|kvm|tcg] [--timeout S] [--out DIR] [--json]
                                 boot the real kernel under QEMU (Debian 13's 6.12 by
                                 default, fetched with apt and cached), run W in the
                                 guest, replay its trace through the model and put the
                                 kernel's counts beside the model's; report in DIR
                                 (default lazymm-lab/)

exit status: 0 success, 2 bad usage or input, 3 a safety property was violated
(check: 3 also when a mutant escaped)";

fn run_command() -> ExitCode {
    let mut argv = std::env::args_os().skip(1);
    let Some(cmd) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<_> = argv.collect();
    let result = match cmd.to_str() {
        Some("schemes") => schemes::main(rest),
        Some("run") => run::main(rest),
        Some("bench") => bench::main(rest),
        Some("check") => check::main(rest),
        Some("replay") => replay::main(rest),
        Some("record") => record::main(rest),
        Some("predict") => predict::main(rest),
        Some("lab") => lab::main(rest),
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            Ok(0)
        }
        Some(other) => Err(Failure::Usage(format!(
            "unknown command '{other}' (valid: schemes, run, bench, check, predict, replay, record, lab)"
        ))),
        None => Err(Failure::Usage("the command is not valid UTF-8".into())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
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
