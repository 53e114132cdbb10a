//! `lazymm lab`: the real Linux kernel beside the model.
//!
//! A run boots a kernel under QEMU ([`qemu`]) with the requested shape, runs one
//! workload in the guest ([`guest`], a static C program as `/init` in an initramfs
//! written by [`initramfs`]), records the kernel's scheduler, IPI, CSD, TLB and hotplug
//! events, replays the recorded schedule through the model on the guest's arch and every
//! scheme ([`model`]), and puts the kernel's own counts ([`evidence`]) beside the
//! model's for the scheme the kernel's config implies ([`kernel::implied`],
//! [`compare`]). [`report`] writes the table, JSON, CSV and HTML page, with the console
//! log and the raw traces beside them.
//!
//! Under TCG the guest's clock is not the host's: counts and decisions are valid, rates
//! per guest second are not a measurement of any machine. Every output says so.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod compare;
pub mod evidence;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod model;
pub mod qemu;
pub mod report;
pub mod spec;

use compare::CompareRow;
use evidence::{Evidence, GuestTopology};
use model::Replayed;
use spec::{Phase, Spec};
use std::time::Instant;

/// Why a lab run failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Bad usage or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A tool or package the run needs is not installed (exit 2).
    #[error("{0}")]
    Missing(String),
    /// The kernel package could not be fetched (exit 2).
    #[error("{0}")]
    Fetch(String),
    /// The guest failed: it hung, crashed or its trace is unusable (exit 1).
    #[error("{0}")]
    Guest(String),
    /// A file could not be written (exit 1).
    #[error("{0}")]
    Io(String),
}

impl LabError {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            LabError::Usage(_) | LabError::Missing(_) | LabError::Fetch(_) => 2,
            LabError::Guest(_) | LabError::Io(_) => 1,
        }
    }
}

/// The tolerance of the headline check, percent.
pub const TOLERANCE_PCT: f64 = 10.0;

/// The kernel as the report records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRecord {
    /// Release from the package or file name.
    pub release: String,
    /// The guest's `uname -r -v -m`.
    pub uname: Option<String>,
    /// Where it came from.
    pub origin: String,
    /// The config file read.
    pub config_file: String,
    /// What the config and release say the model must mirror.
    pub implied: kernel::Implied,
}

/// One phase's results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseResult {
    /// The phase.
    pub phase: Phase,
    /// The file of its trace in the report.
    pub trace_file: String,
    /// The kernel's evidence.
    pub kernel: Evidence,
    /// Every scheme's replay.
    pub model: Vec<model::ModelRow>,
    /// The kernel beside the implied scheme's row.
    pub comparison: Vec<CompareRow>,
    /// The pairs' tids (threads, processes).
    pub pairs: Vec<(u32, u32)>,
    /// Event kinds the replay's parser skipped (not needed for replay), with counts.
    pub skipped_by_parser: Vec<(String, u64)>,
    /// Malformed lines the parser skipped, and the first.
    pub malformed: (u64, Option<String>),
    /// Tasks whose process was guessed.
    pub guessed_tasks: usize,
    /// The raw trace text (written beside the report, not into results.json).
    #[serde(skip)]
    pub trace_text: String,
}

/// A whole lab run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LabRun {
    /// The command line, as given.
    pub command: String,
    /// `x86` or `powerpc`.
    pub arch: &'static str,
    /// vCPUs.
    pub cpus: usize,
    /// `SxCxT`.
    pub topology: String,
    /// Workload.
    pub workload: String,
    /// Guest seconds per phase.
    pub seconds: u32,
    /// The kernel.
    pub kernel: KernelRecord,
    /// The accelerator and why.
    pub accel: qemu::AccelUsed,
    /// The QEMU command.
    pub qemu_command: String,
    /// Host seconds QEMU ran.
    pub qemu_wall_seconds: f64,
    /// Host seconds until the guest's init ran.
    pub boot_seconds: Option<f64>,
    /// Host seconds for the whole run (fetch, build, boot, replay).
    pub wall_seconds: f64,
    /// The kill limit in force, host seconds.
    pub timeout_seconds: u64,
    /// Events enabled in the guest.
    pub events_enabled: Vec<String>,
    /// Events the kernel does not have.
    pub events_missing: Vec<String>,
    /// The phases.
    pub phases: Vec<PhaseResult>,
    /// What is valid and what is not, in one sentence.
    pub time_note: String,
    /// The console log (written beside the report).
    #[serde(skip)]
    pub console: String,
    /// The kernel config text (written beside the report).
    #[serde(skip)]
    pub config_text: String,
}

/// The note every output carries.
pub fn time_note(accel: &str) -> String {
    if accel == "tcg" {
        "TCG (software emulation): counts and scheduling decisions are the kernel's own and valid; rates per guest second are not a measurement of any machine".into()
    } else {
        "KVM: counts and decisions are valid; rates are those of vCPUs sharing this host's cores with other work, not of a dedicated machine".into()
    }
}

/// Splits the trace port's bytes into the phases' trace texts, checking that each
/// phase's trace is whole (its end marker and byte count).
pub fn split_phases(raw: &[u8], phases: usize) -> Result<Vec<String>, LabError> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    for n in 0..phases {
        let head = format!("# lazymm-lab: phase {n} ");
        let start = rest.find(&head).ok_or_else(|| {
            LabError::Guest(format!(
                "the trace port has no trace for phase {n} (see the console log)"
            ))
        })?;
        let body_start = start
            + rest[start..]
                .find('\n')
                .map_or(rest.len() - start, |i| i + 1);
        let end_mark = format!("# lazymm-lab: end of phase {n}, ");
        let end = rest[body_start..]
            .find(&end_mark)
            .map(|i| body_start + i)
            .ok_or_else(|| {
                LabError::Guest(format!(
                    "the trace of phase {n} is cut short (no end marker)"
                ))
            })?;
        let body = &rest[body_start..end];
        let line_end = rest[end..].find('\n').map_or(rest.len(), |i| end + i);
        let declared: Option<usize> = rest[end + end_mark.len()..line_end]
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok());
        if declared != Some(body.len()) {
            return Err(LabError::Guest(format!(
                "the trace of phase {n} has {} bytes, the guest wrote {}",
                body.len(),
                declared.map_or("?".into(), |d| d.to_string())
            )));
        }
        out.push(body.to_string());
        rest = &rest[line_end.min(rest.len())..];
    }
    Ok(out)
}

/// The ping-pong pairs of each phase, from the console's `lab: pair I end E tid T`.
pub fn pairs_by_phase(console: &str, phases: usize) -> Vec<Vec<(u32, u32)>> {
    let mut out = vec![Vec::new(); phases];
    let mut phase: Option<usize> = None;
    let mut ends: std::collections::BTreeMap<u32, [Option<u32>; 2]> = Default::default();
    let flush = |phase: Option<usize>,
                 ends: &mut std::collections::BTreeMap<u32, [Option<u32>; 2]>,
                 out: &mut Vec<Vec<(u32, u32)>>| {
        if let Some(p) = phase.filter(|p| *p < phases) {
            out[p] = ends.values().filter_map(|e| Some((e[0]?, e[1]?))).collect();
        }
        ends.clear();
    };
    for l in console.lines() {
        let Some(rest) = l.strip_prefix("lab: ") else {
            continue;
        };
        if let Some(p) = rest
            .strip_prefix("phase ")
            .and_then(|r| r.strip_suffix(':').or(Some(r)))
        {
            if p.contains("start") {
                flush(phase, &mut ends, &mut out);
                phase = p.split_whitespace().next().and_then(|n| n.parse().ok());
            }
        } else if let Some(r) = rest.strip_prefix("pair ") {
            let w: Vec<&str> = r.split_whitespace().collect();
            if let [i, "end", e, "tid", t] = w[..] {
                if let (Ok(i), Ok(e), Ok(t)) =
                    (i.parse::<u32>(), e.parse::<usize>(), t.parse::<u32>())
                {
                    if e < 2 {
                        ends.entry(i).or_default()[e] = Some(t);
                    }
                }
            }
        }
    }
    flush(phase, &mut ends, &mut out);
    out
}

/// Runs the lab: fetch, build, boot, replay, compare. `progress` gets one-line status
/// updates; `command` is recorded in the report.
pub fn run(spec: &Spec, command: &str, progress: &mut dyn FnMut(&str)) -> Result<LabRun, LabError> {
    let start = Instant::now();
    spec.validate()?;
    qemu::check_installed(spec.arch)?;
    let cache = match &spec.cache {
        Some(c) => c.clone(),
        None => kernel::default_cache()?,
    };
    let k = kernel::get(&spec.kernel, spec.arch, &cache, progress)?;
    let work = tempfile::Builder::new()
        .prefix("lazymm-lab-")
        .tempdir()
        .map_err(|e| LabError::Io(format!("cannot create a work directory: {e}")))?;
    progress("building the guest program");
    let init = guest::build(spec.arch, work.path())?;
    let initrd = work.path().join("initramfs.cpio");
    std::fs::write(&initrd, initramfs::guest_initramfs(&init))
        .map_err(|e| LabError::Io(format!("cannot write {}: {e}", initrd.display())))?;
    let boot = qemu::boot(spec, &k.image, &initrd, work.path(), progress)?;
    let console = boot.console.clone();
    let events_enabled: Vec<String> = console
        .lines()
        .filter_map(|l| l.strip_prefix("lab: event enabled: "))
        .map(|s| s.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let events_missing: Vec<String> = console
        .lines()
        .filter_map(|l| l.strip_prefix("lab: event missing: "))
        .map(|s| s.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if events_missing.iter().any(|e| e == "sched:sched_switch") {
        return Err(LabError::Missing(
            "the guest kernel has no sched:sched_switch event (tracefs without the sched events): nothing to replay".into(),
        ));
    }
    let uname = console
        .lines()
        .find_map(|l| l.strip_prefix("lab: kernel "))
        .map(|s| s.to_string());
    let release = uname
        .as_deref()
        .and_then(|u| u.split_whitespace().next())
        .unwrap_or(&k.release)
        .to_string();
    let implied = kernel::implied(&k.config, spec.arch, &release);
    let texts = split_phases(&boot.trace, spec.phases.len())?;
    let phases = analyse(spec.arch, &spec.phases, &console, texts, &implied, progress)?;
    let config_text = std::fs::read_to_string(&k.config_path).unwrap_or_default();
    Ok(LabRun {
        command: command.to_string(),
        arch: spec.arch.name(),
        cpus: spec.cpus(),
        topology: spec.topology.label(),
        workload: spec.workload.clone(),
        seconds: spec.seconds,
        kernel: KernelRecord {
            release: k.release.clone(),
            uname,
            origin: k.origin.clone(),
            config_file: k.config_path.display().to_string(),
            implied,
        },
        time_note: time_note(boot.accel.name),
        accel: boot.accel,
        qemu_command: boot.command,
        qemu_wall_seconds: boot.wall_seconds,
        boot_seconds: boot.boot_seconds,
        wall_seconds: start.elapsed().as_secs_f64(),
        timeout_seconds: spec.timeout(),
        events_enabled,
        events_missing,
        phases,
        console,
        config_text,
    })
}

/// Replays each phase's trace through the model and reads the kernel's evidence from
/// it: the part of a run after the guest has powered off.
pub fn analyse(
    arch: spec::GuestArch,
    phases: &[Phase],
    console: &str,
    texts: Vec<String>,
    implied: &kernel::Implied,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PhaseResult>, LabError> {
    let scheme = implied.scheme;
    let pairs = pairs_by_phase(console, phases.len());
    let topo = GuestTopology::from_console(console);
    let mut out = Vec::new();
    for (i, (text, phase)) in texts.into_iter().zip(phases).enumerate() {
        progress(&format!(
            "replaying phase {} of {} through the model",
            i + 1,
            phases.len()
        ));
        let name = format!("trace-phase{i}.txt");
        let replayed: Replayed = model::replay(&name, &text, arch.name(), implied.model_profile)?;
        let users = replayed.user_pids.clone();
        let is_user = |p: u32| users.contains(&p);
        let ev = evidence::read(&text, &is_user, &topo, &pairs[i]);
        let row = replayed
            .rows
            .iter()
            .find(|r| r.scheme == scheme)
            .ok_or_else(|| LabError::Usage(format!("the model has no scheme '{scheme}'")))?;
        let comparison = compare::compare(arch, &ev, row, TOLERANCE_PCT);
        out.push(PhaseResult {
            phase: *phase,
            trace_file: name,
            kernel: ev,
            model: replayed.rows.clone(),
            comparison,
            pairs: pairs[i].clone(),
            skipped_by_parser: replayed.skipped.clone(),
            malformed: replayed.malformed.clone(),
            guessed_tasks: replayed.guessed_tasks,
            trace_text: text,
        });
    }
    Ok(out)
}

/// Reads a lab report written before (`results.json`, `console.log`, `kernel.config`,
/// the phases' traces) and analyses its traces again with this build's model and
/// evidence readers: no guest is booted. The kernel, QEMU and timing records are kept
/// as they were.
pub fn reanalyse(
    dir: &std::path::Path,
    command: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<LabRun, LabError> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).map_err(|e| {
            LabError::Usage(format!(
                "--from {}: cannot read {f} ({e}); give a directory `lazymm lab` wrote",
                dir.display()
            ))
        })
    };
    let json: serde_json::Value = serde_json::from_str(&read("results.json")?)
        .map_err(|e| LabError::Usage(format!("--from {}: results.json: {e}", dir.display())))?;
    let bad = |what: &str| {
        LabError::Usage(format!(
            "--from {}: results.json has no {what}",
            dir.display()
        ))
    };
    let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(|v| v.to_string());
    let arch = spec::GuestArch::from_name(&s("arch").ok_or_else(|| bad("arch"))?)?;
    let mut phases = Vec::new();
    let mut texts = Vec::new();
    for (i, p) in json
        .get("phases")
        .and_then(|p| p.as_array())
        .ok_or_else(|| bad("phases"))?
        .iter()
        .enumerate()
    {
        let ph = p.get("phase").ok_or_else(|| bad("phase"))?;
        phases.push(Phase {
            pairs: ph
                .get("pairs")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| bad("pairs"))? as usize,
            pin: ph
                .get("pin")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| bad("pin"))?,
        });
        texts.push(read(&format!("trace-phase{i}.txt"))?);
    }
    let console = read("console.log")?;
    let config_text = read("kernel.config")?;
    let config = kernel::KernelConfig::parse(&config_text)
        .map_err(|e| LabError::Usage(format!("--from {}: kernel.config: {e}", dir.display())))?;
    let k = json.get("kernel").ok_or_else(|| bad("kernel"))?;
    let ks = |key: &str| k.get(key).and_then(|v| v.as_str()).map(|v| v.to_string());
    let uname = ks("uname");
    let release = ks("release").unwrap_or_default();
    let implied = kernel::implied(
        &config,
        arch,
        uname
            .as_deref()
            .and_then(|u| u.split_whitespace().next())
            .unwrap_or(&release),
    );
    let results = analyse(arch, &phases, &console, texts, &implied, progress)?;
    let accel = json.get("accel");
    let accel_name = match accel.and_then(|a| a.get("name")).and_then(|v| v.as_str()) {
        Some("kvm") => "kvm",
        _ => "tcg",
    };
    let strs = |k: &str| -> Vec<String> {
        json.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(|x| x.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let f = |k: &str| json.get(k).and_then(|v| v.as_f64());
    Ok(LabRun {
        command: command.to_string(),
        arch: arch.name(),
        cpus: json
            .get("cpus")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("cpus"))? as usize,
        topology: s("topology").ok_or_else(|| bad("topology"))?,
        workload: s("workload").ok_or_else(|| bad("workload"))?,
        seconds: json.get("seconds").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
        kernel: KernelRecord {
            release,
            uname,
            origin: ks("origin").unwrap_or_default(),
            config_file: ks("config_file").unwrap_or_default(),
            implied,
        },
        accel: qemu::AccelUsed {
            name: accel_name,
            why: accel
                .and_then(|a| a.get("why"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        },
        qemu_command: s("qemu_command").unwrap_or_default(),
        qemu_wall_seconds: f("qemu_wall_seconds").unwrap_or(0.0),
        boot_seconds: f("boot_seconds"),
        wall_seconds: f("wall_seconds").unwrap_or(0.0),
        timeout_seconds: json
            .get("timeout_seconds")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        events_enabled: strs("events_enabled"),
        events_missing: strs("events_missing"),
        phases: results,
        time_note: time_note(accel_name),
        console,
        config_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_split_whole_or_not_at_all() {
        let raw = b"# lazymm-lab: phase 0 pairs=0 pin=0\nabc\n# lazymm-lab: end of phase 0, 4 bytes\n# lazymm-lab: phase 1 pairs=2 pin=1\nxy\n# lazymm-lab: end of phase 1, 3 bytes\n";
        assert_eq!(split_phases(raw, 2).unwrap(), vec!["abc\n", "xy\n"]);
        let cut = &raw[..raw.len() - 20];
        assert!(split_phases(cut, 2)
            .unwrap_err()
            .to_string()
            .contains("phase 1"));
        let wrong =
            b"# lazymm-lab: phase 0 pairs=0 pin=0\nabc\n# lazymm-lab: end of phase 0, 9 bytes\n";
        assert!(split_phases(wrong, 1)
            .unwrap_err()
            .to_string()
            .contains("the guest wrote 9"));
        assert!(split_phases(b"", 1).is_err());
    }

    #[test]
    fn pairs_per_phase() {
        let c = "lab: phase 0 start: pairs 2 pin 0\nlab: pair 0 end 1 tid 10\nlab: pair 0 end 0 tid 11\nlab: pair 1 end 0 tid 13\nlab: pair 1 end 1 tid 12\nlab: phase 1 start: pairs 1 pin 1\nlab: pair 0 end 0 tid 21\nlab: pair 0 end 1 tid 20\n";
        let p = pairs_by_phase(c, 2);
        assert_eq!(p[0], vec![(11, 10), (13, 12)]);
        assert_eq!(p[1], vec![(21, 20)]);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(LabError::Usage("x".into()).exit_code(), 2);
        assert_eq!(LabError::Missing("x".into()).exit_code(), 2);
        assert_eq!(LabError::Guest("x".into()).exit_code(), 1);
    }
}
