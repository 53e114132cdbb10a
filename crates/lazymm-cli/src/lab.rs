//! `lazymm lab`: the real Linux kernel under QEMU beside the model (crate lazymm-lab).

use crate::args::{unexpected, Args};
use crate::bench::report_failure;
use crate::Failure;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lazymm_engine::report::check_out;
use lazymm_lab::spec::{self, Accel, GuestArch, KernelChoice, Phase, Spec, Topology};
use lazymm_lab::LabError;
use lexopt::Arg;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

const OPTIONS: &str = "--from, --arch, --cpus, --topology, --workload, --seconds, --pairs, --pin, --pin-both, --kernel, --config, --accel, --timeout, --buffer-kb, --cache, --out, --json";

fn lab_failure(e: LabError) -> Failure {
    match e.exit_code() {
        2 => Failure::Usage(e.to_string()),
        _ => Failure::Io(e.to_string()),
    }
}

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let command = std::iter::once("lazymm lab".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut a = Args::new(args);
    let mut arch = GuestArch::X86;
    let mut cpus: Option<usize> = None;
    let mut topology: Option<Topology> = None;
    let mut workload = "exit-storm".to_string();
    let mut seconds: u32 = 5;
    let mut pairs: Vec<usize> = vec![0];
    let mut pins: Vec<bool> = vec![false];
    let mut image: Option<PathBuf> = None;
    let mut config: Option<PathBuf> = None;
    let mut accel = Accel::Auto;
    let mut timeout: Option<u64> = None;
    let mut buffer_kb: Option<usize> = None;
    let mut cache: Option<PathBuf> = None;
    let mut out = PathBuf::from("lazymm-lab");
    let mut as_json = false;
    let mut from: Option<PathBuf> = None;
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("arch") => {
                arch = GuestArch::from_name(&a.string("--arch")?).map_err(lab_failure)?
            }
            Arg::Long("cpus") => {
                cpus = Some(a.number("--cpus", 1, lazymm_lab::model::MAX_CPUS, "a CPU count")?)
            }
            Arg::Long("topology") => {
                topology = Some(Topology::parse(&a.string("--topology")?).map_err(lab_failure)?)
            }
            Arg::Long("workload") => workload = a.string("--workload")?,
            Arg::Long("seconds") => seconds = a.number("--seconds", 1, 600, "guest seconds")?,
            Arg::Long("pairs") => {
                pairs = spec::parse_pairs(&a.string("--pairs")?).map_err(lab_failure)?
            }
            Arg::Long("pin") => pins = vec![true],
            Arg::Long("pin-both") => pins = vec![false, true],
            Arg::Long("kernel") => image = Some(PathBuf::from(a.string("--kernel")?)),
            Arg::Long("config") => config = Some(PathBuf::from(a.string("--config")?)),
            Arg::Long("accel") => {
                accel = Accel::from_name(&a.string("--accel")?).map_err(lab_failure)?
            }
            Arg::Long("timeout") => {
                timeout = Some(a.number("--timeout", 10, 86_400, "host seconds")?)
            }
            Arg::Long("buffer-kb") => {
                buffer_kb = Some(a.number("--buffer-kb", 64, 1 << 20, "KiB per CPU")?)
            }
            Arg::Long("cache") => cache = Some(PathBuf::from(a.string("--cache")?)),
            Arg::Long("out") => out = PathBuf::from(a.string("--out")?),
            Arg::Long("json") => as_json = true,
            Arg::Long("from") => from = Some(PathBuf::from(a.string("--from")?)),
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    let topology = match (cpus, topology) {
        (None, None) => Topology::flat(4),
        (Some(n), None) => Topology::flat(n),
        (None, Some(t)) => t,
        (Some(n), Some(t)) if t.cpus() == n => t,
        (Some(n), Some(t)) => {
            return Err(Failure::Usage(format!(
                "--topology {} has {} CPUs, --cpus says {n} (valid: a topology whose sockets x cores x threads is --cpus)",
                t.label(),
                t.cpus()
            )))
        }
    };
    if config.is_some() && image.is_none() {
        return Err(Failure::Usage(
            "--config goes with --kernel IMAGE (the Debian kernel brings its own)".into(),
        ));
    }
    let kernel = match image {
        Some(image) => KernelChoice::Image { image, config },
        None => KernelChoice::Debian,
    };
    let phases: Vec<Phase> = pins
        .iter()
        .flat_map(|&pin| pairs.iter().map(move |&p| Phase { pairs: p, pin }))
        .collect();
    let spec = Spec {
        arch,
        topology,
        workload,
        seconds,
        phases,
        kernel,
        accel,
        timeout,
        buffer_kb,
        cache,
    };
    spec.validate().map_err(lab_failure)?;
    check_out(&out).map_err(report_failure)?;
    let bar = progress_bar();
    let mut progress = |msg: &str| {
        if let Some(b) = &bar {
            b.set_message(msg.to_string());
            b.tick();
        }
    };
    let result = match &from {
        Some(dir) => lazymm_lab::reanalyse(dir, &command, &mut progress),
        None => lazymm_lab::run(&spec, &command, &mut progress),
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let run = result.map_err(lab_failure)?;
    let files = lazymm_lab::report::write(&run, &out).map_err(report_failure)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&run).map_err(|e| Failure::Io(e.to_string()))?
        );
    } else {
        print!("{}", lazymm_lab::report::table(&run));
        println!(
            "\nreport: {} ({})",
            out.join("index.html").display(),
            files.join(", ")
        );
    }
    let violated = run
        .phases
        .iter()
        .any(|p| p.model.iter().any(|m| m.violations > 0));
    Ok(if violated { 3 } else { 0 })
}

/// A spinner on stderr when it is a terminal and `CI` is not set; none otherwise.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    b.set_style(ProgressStyle::with_template("{spinner} lab: {msg}").ok()?);
    Some(b)
}
