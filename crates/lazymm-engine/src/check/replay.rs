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
use serde_json::{json, Value};
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

fn rle(s: &[u8]) -> Vec<Value> {
    let mut out: Vec<(u8, u64)> = Vec::new();
    for &c in s {
        match out.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out.into_iter().map(|(c, n)| json!([c, n])).collect()
}

/// The JSON of a finding.
pub fn to_json(f: &Finding) -> Value {
    let c = &f.case;
    json!({
        "lazymm_replay": VERSION,
        "scheme": c.scheme,
        "arch": c.arch,
        "mutant": c.mutant.map(|m| m.name()),
        "seed": c.seed,
        "cpus": c.cpus,
        "arena": c.arena,
        "walk_period": c.walk_period,
        "programs": c.programs.iter()
            .map(|p| p.iter().map(|op| op.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        "schedule": rle(&f.schedule),
        "violation": f.outcome.first().map(|v| v.to_string()),
    })
}

/// Writes a finding into `dir` (created if needed) as `<name>-seed<seed>.replay.json`,
/// whole: a temporary file, then a rename. Returns the path.
pub fn write(dir: &Path, name: &str, f: &Finding) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}-seed{}.replay.json", f.case.seed));
    let text = serde_json::to_string_pretty(&to_json(f)).map_err(std::io::Error::other)? + "\n";
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

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field '{name}'"))
}

fn uint(v: &Value, name: &str, max: u64) -> Result<u64, String> {
    match field(v, name)?.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(format!("field '{name}' is not a whole number up to {max}")),
    }
}

fn string<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| format!("field '{name}' is not a string"))
}

/// Parses the text of a replay file.
pub fn parse(text: &str) -> Result<Replay, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = uint(&v, "lazymm_replay", u64::MAX)?;
    if version != VERSION {
        return Err(format!(
            "format version {version} (this lazymm reads version {VERSION})"
        ));
    }
    let scheme = registry::scheme(string(&v, "scheme")?).map_err(|e| e.to_string())?;
    let arch = registry::arch(string(&v, "arch")?).map_err(|e| e.to_string())?;
    let mutant = match field(&v, "mutant")? {
        Value::Null => None,
        Value::String(s) => Some(registry::mutant(s).map_err(|e| e.to_string())?),
        _ => return Err("field 'mutant' is neither a string nor null".into()),
    };
    if let Some(m) = mutant {
        crate::native::check_mutant_scheme(m, scheme).map_err(|e| e.to_string())?;
    }
    let cpus = uint(&v, "cpus", lazymm::MAX_CPUS as u64)? as usize;
    if cpus == 0 {
        return Err("field 'cpus' is 0".into());
    }
    let arena = uint(&v, "arena", 1 << 20)? as usize;
    let walk_period = uint(&v, "walk_period", u32::MAX as u64)? as u32;
    let seed = uint(&v, "seed", u64::MAX)?;
    let programs = field(&v, "programs")?
        .as_array()
        .ok_or("field 'programs' is not a list")?;
    if programs.len() != cpus {
        return Err(format!("{} programs for {cpus} cpus", programs.len()));
    }
    let programs = programs
        .iter()
        .map(|p| {
            p.as_array()
                .ok_or_else(|| "a program is not a list".to_string())?
                .iter()
                .map(|op| {
                    let s = op.as_str().unwrap_or("");
                    Op::parse(s).ok_or_else(|| format!("unknown operation {op}"))
                })
                .collect::<Result<Vec<Op>, String>>()
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut schedule = Vec::new();
    for run in field(&v, "schedule")?
        .as_array()
        .ok_or("field 'schedule' is not a list")?
    {
        let pair = run.as_array().filter(|p| p.len() == 2);
        let (c, n) = match pair.map(|p| (p[0].as_u64(), p[1].as_u64())) {
            Some((Some(c), Some(n))) if (c as usize) < cpus && n <= 1 << 24 => (c as u8, n),
            _ => return Err(format!("bad schedule entry {run} (want [cpu, count])")),
        };
        schedule.extend(std::iter::repeat_n(c, n as usize));
        if schedule.len() > 1 << 24 {
            return Err("schedule too long".into());
        }
    }
    let violation = match field(&v, "violation")? {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        _ => return Err("field 'violation' is not a string".into()),
    };
    Ok(Replay {
        case: Case {
            scheme,
            arch,
            mutant,
            seed,
            cpus,
            arena,
            walk_period,
            programs,
        },
        schedule,
        violation,
    })
}
