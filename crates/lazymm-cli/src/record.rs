//! `lazymm record [--out FILE] [--seconds N] [--tool perf|trace-cmd] -- CMD ARGS`: records
//! the scheduler events `replay` needs, machine-wide, while CMD runs (or for N seconds),
//! with `perf` or, when perf is missing (or `--tool` says so), `trace-cmd`, and writes
//! them as text `replay` reads.

use crate::cli::{RecordArgs, TOOLS};
use crate::Failure;
use lazymm_engine::report::write_file;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

/// The events replay uses.
const EVENTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_process_fork",
    "sched:sched_process_exit",
    "sched:sched_process_exec",
    "sched:sched_process_free",
    "sched:sched_wakeup",
];

pub fn main(a: RecordArgs) -> Result<u8, Failure> {
    let RecordArgs {
        out,
        seconds,
        tool,
        mut cmd,
    } = a;
    // `--` before CMD is optional; clap keeps it when it comes first.
    if cmd.first().is_some_and(|c| c == "--") {
        cmd.remove(0);
    }
    // With CMD and --seconds, the recorder itself is stopped after N seconds (SIGINT,
    // as a user would), so it writes what it has; without CMD it records N seconds.
    let stop_after = match (cmd.is_empty(), seconds) {
        (true, n) => {
            cmd = vec!["sleep".into(), format!("{}", n.unwrap_or(5.0)).into()];
            None
        }
        (false, n) => n,
    };
    let tmp = std::env::temp_dir().join(format!("lazymm-record-{}", std::process::id()));
    let chosen = match tool {
        Some(t) if has(t) => Ok(t),
        Some(t) => Err(Failure::Usage(format!(
            "record --tool {t}: {t} is not installed (install it: apt-get install {})",
            if t == "perf" { "linux-perf" } else { t }
        ))),
        None => TOOLS.iter().copied().find(|t| has(t)).ok_or_else(|| {
            Failure::Usage(
                "record needs perf or trace-cmd, and neither is installed (install one: apt-get install linux-perf, or apt-get install trace-cmd)".into(),
            )
        }),
    };
    let result = match chosen {
        Ok("perf") => record_perf(&cmd, &tmp, stop_after),
        Ok(_) => record_trace_cmd(&cmd, &tmp, stop_after),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tmp);
    let (text, tool) = result?;
    write_file(&out, &text)
        .map_err(|e| Failure::Io(format!("cannot write {}: {e}", out.display())))?;
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    outln!(
        "lazymm record: {} lines of {tool} text in {} (replay it: lazymm replay {})",
        lines,
        out.display(),
        out.display()
    );
    Ok(0)
}

/// Whether `tool` runs here.
fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `timeout`'s status when it stopped the command as asked.
const TIMED_OUT: i32 = 124;

/// Runs a recorder (stopped with SIGINT after `stop_after` seconds, if given); a
/// failure becomes one line naming the tool, why, and what to do.
fn run(tool: &str, args: &[OsString], stop_after: Option<f64>) -> Result<Vec<u8>, Failure> {
    let mut c = match stop_after {
        Some(n) => {
            let mut c = Command::new("timeout");
            c.args(["-s", "INT", &format!("{n}"), tool]);
            c
        }
        None => Command::new(tool),
    };
    let o = c
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::Usage(format!("cannot run {tool}: {e}")))?;
    if o.status.success() || (stop_after.is_some() && o.status.code() == Some(TIMED_OUT)) {
        return Ok(o.stdout);
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let why = err
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('['))
        .unwrap_or("no message");
    Err(Failure::Usage(format!(
        "{tool} cannot trace here ({}): {why} (as root: mount -t tracefs nodev /sys/kernel/tracing, and sysctl kernel.perf_event_paranoid=-1)",
        o.status
    )))
}

fn record_perf(
    cmd: &[OsString],
    data: &Path,
    stop_after: Option<f64>,
) -> Result<(Vec<u8>, &'static str), Failure> {
    let mut args: Vec<OsString> = vec![
        "record".into(),
        "-q".into(),
        "-a".into(),
        "-o".into(),
        data.into(),
    ];
    for e in EVENTS {
        args.push("-e".into());
        args.push((*e).into());
    }
    args.push("--".into());
    args.extend(cmd.iter().cloned());
    run("perf", &args, stop_after)?;
    let script: Vec<OsString> = vec![
        "script".into(),
        "-i".into(),
        data.into(),
        "-F".into(),
        "comm,pid,tid,cpu,time,event,trace".into(),
    ];
    Ok((run("perf", &script, None)?, "perf script"))
}

fn record_trace_cmd(
    cmd: &[OsString],
    data: &Path,
    stop_after: Option<f64>,
) -> Result<(Vec<u8>, &'static str), Failure> {
    let mut args: Vec<OsString> = vec!["record".into(), "-q".into(), "-o".into(), data.into()];
    for e in EVENTS {
        args.push("-e".into());
        args.push((*e).into());
    }
    args.extend(cmd.iter().cloned());
    run("trace-cmd", &args, stop_after)?;
    let report: Vec<OsString> = vec!["report".into(), "-i".into(), data.into()];
    Ok((run("trace-cmd", &report, None)?, "trace-cmd report"))
}
