//! Replay files: a failing run as JSON (the case, the decision script, the violation it
//! found), written whole (a temporary file, then a rename) so a reader never sees half
//! of one.
//!
//! ```json
//! {"lazymm_replay": 2, "scheme": "refcount", "arch": "generic",
//!  "mutant": "refcount-no-grab", "seed": 123, "cpus": 4, "arena": 9, "walk_period": 3,
//!  "programs": [["run:1", "exit"], ["idle"], [], []],
//!  "schedule": [[0, 12], [1, 3]],
//!  "violation": "property b: cpu 0 step 7: mm#2.1: freed while cpu 0 still had it loaded"}
//! ```
//!
//! `schedule` is the decision script, run-length encoded: `[cpu, count]` pairs.

use super::program::Op;
use super::{Case, Finding};
use crate::registry;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format version this code writes and reads. Version 2: `run:n` switches to the
/// `n`-th occupied slot of the CPU's runqueue (tasks keep their slot when others exit),
/// where version 1 indexed a list that closed up.
pub const VERSION: u64 = 2;

/// A replay file, parsed.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The case.
    pub case: Case,
    /// The decision script.
    pub schedule: Vec<u8>,
    /// The first violation the run found, as printed.
    pub violation: String,
}

/// Why a replay file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read replay file {path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        err: std::io::Error,
    },
    /// The file is not a replay file this version understands.
    #[error("bad replay file {path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
}

/// A replay file as it is stored: the serde form of [`Replay`], in the order of the
/// fields in the file. Names are checked against the registry by [`parse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayFile {
    /// The format version ([`VERSION`]).
    pub lazymm_replay: u64,
    /// The scheme.
    pub scheme: String,
    /// The arch.
    pub arch: String,
    /// The mutant, if any (`null` in the file).
    pub mutant: Option<String>,
    /// The seed of the run.
    pub seed: u64,
    /// CPUs.
    pub cpus: u64,
    /// The arena's size.
    pub arena: u64,
    /// The walk period.
    pub walk_period: u64,
    /// Each CPU's program, an operation per string (`run:1`, `exit`, ...).
    pub programs: Vec<Vec<String>>,
    /// The decision script, run-length encoded: `[cpu, count]` pairs.
    pub schedule: Vec<(u64, u64)>,
    /// The first violation the run found, as printed (`null`: none).
    pub violation: Option<String>,
    /// The kernel profile's preset (absent in files written before profiles: `bare`).
    #[serde(default = "bare")]
    pub profile: String,
    /// The `ITEM=on|off` switches applied to it.
    #[serde(default)]
    pub profile_items: Vec<String>,
}

fn bare() -> String {
    lazymm::Profile::BARE.preset_name().to_string()
}

/// Only the version, read first, so that a file of another version says so rather than
/// naming a field this version lacks.
#[derive(Deserialize)]
struct Version {
    lazymm_replay: u64,
}

fn rle(s: &[u8]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &c in s {
        match out.last_mut() {
            Some((last, n)) if *last == u64::from(c) => *n += 1,
            _ => out.push((u64::from(c), 1)),
        }
    }
    out
}

/// The stored form of a finding.
pub fn to_file(f: &Finding) -> ReplayFile {
    let c = &f.case;
    ReplayFile {
        lazymm_replay: VERSION,
        scheme: c.scheme.to_string(),
        arch: c.arch.to_string(),
        mutant: c.mutant.map(|m| m.name().to_string()),
        seed: c.seed,
        cpus: c.cpus as u64,
        arena: c.arena as u64,
        walk_period: u64::from(c.walk_period),
        programs: c
            .programs
            .iter()
            .map(|p| p.iter().map(|op| op.to_string()).collect())
            .collect(),
        schedule: rle(&f.schedule),
        violation: f.outcome.first().map(|v| v.to_string()),
        profile: c.profile.preset_name().to_string(),
        profile_items: c.profile.switches(),
    }
}

/// Writes a finding into `dir` (created if needed) as `<name>-seed<seed>.replay.json`,
/// whole: a temporary file, then a rename. Returns the path.
pub fn write(dir: &Path, name: &str, f: &Finding) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}-seed{}.replay.json", f.case.seed));
    let text = serde_json::to_string_pretty(&to_file(f)).map_err(std::io::Error::other)? + "\n";
    crate::report::write_file(&path, text.as_bytes())?;
    Ok(path)
}

/// Reads a replay file.
pub fn read(path: &Path) -> Result<Replay, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|err| ReplayError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    parse(&text).map_err(|what| ReplayError::Format {
        path: path.to_path_buf(),
        what,
    })
}

fn at_most(name: &str, n: u64, max: u64) -> Result<u64, String> {
    if n <= max {
        Ok(n)
    } else {
        Err(format!("field '{name}' is not a whole number up to {max}"))
    }
}

/// Parses the text of a replay file.
pub fn parse(text: &str) -> Result<Replay, String> {
    let Version {
        lazymm_replay: version,
    } = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if version != VERSION {
        return Err(format!(
            "format version {version} (this lazymm reads version {VERSION})"
        ));
    }
    let f: ReplayFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let scheme = registry::scheme(&f.scheme).map_err(|e| e.to_string())?;
    let arch = registry::arch(&f.arch).map_err(|e| e.to_string())?;
    let mutant = match &f.mutant {
        None => None,
        Some(s) => Some(registry::mutant(s).map_err(|e| e.to_string())?),
    };
    if let Some(m) = mutant {
        crate::native::check_mutant_scheme(m, scheme).map_err(|e| e.to_string())?;
    }
    let profile =
        lazymm::Profile::build(&f.profile, &f.profile_items).map_err(|e| e.to_string())?;
    let cpus = at_most("cpus", f.cpus, lazymm::MAX_CPUS as u64)? as usize;
    if cpus == 0 {
        return Err("field 'cpus' is 0".into());
    }
    let arena = at_most("arena", f.arena, 1 << 20)? as usize;
    let walk_period = at_most("walk_period", f.walk_period, u32::MAX as u64)? as u32;
    if f.programs.len() != cpus {
        return Err(format!("{} programs for {cpus} cpus", f.programs.len()));
    }
    let programs = f
        .programs
        .iter()
        .map(|p| {
            p.iter()
                .map(|op| Op::parse(op).ok_or_else(|| format!("unknown operation {op:?}")))
                .collect::<Result<Vec<Op>, String>>()
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut schedule = Vec::new();
    for &(c, n) in &f.schedule {
        if c as usize >= cpus || n > 1 << 24 {
            return Err(format!("bad schedule entry [{c}, {n}] (want [cpu, count])"));
        }
        schedule.extend(std::iter::repeat_n(c as u8, n as usize));
        if schedule.len() > 1 << 24 {
            return Err("schedule too long".into());
        }
    }
    Ok(Replay {
        case: Case {
            scheme,
            arch,
            mutant,
            seed: f.seed,
            cpus,
            arena,
            walk_period,
            programs,
            profile,
        },
        schedule,
        violation: f.violation.unwrap_or_default(),
    })
}
