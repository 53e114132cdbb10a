//! The rows `--json` prints, and their JSON Schemas.
//!
//! One convention for every command: `--json` prints JSON Lines, one row (one JSON
//! object) per line, on stdout, and nothing else there. `run` prints one row, `check` a
//! row per scheme checked and per mutant hunted, `predict` and `replay` a row per row of
//! their tables. The schema of each command's rows is generated from the row type
//! ([`schemas`]) and checked in as `docs/schema/COMMAND.json`; a test regenerates and
//! compares them, and validates each command's real output against its schema.

use lazymm_engine::RunReport;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// A row of `run --json`: one run on this host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRow {
    /// The scheme (a mutant's own scheme).
    pub scheme: String,
    /// The mutant run instead of the scheme as written, if any.
    pub mutant: Option<String>,
    /// The arch.
    pub arch: String,
    /// The workload.
    pub workload: String,
    /// CPUs (one pinned thread each).
    pub cpus: usize,
    /// Wall-clock seconds measured.
    pub seconds: f64,
    /// Context switches in the measured window.
    pub context_switches: u64,
    /// Switches from a user task to a kernel thread or idle (lazy mode).
    pub lazy_switches: u64,
    /// Context switches per second, all CPUs together.
    pub switches_per_sec: f64,
    /// Atomic read-modify-writes on cache lines other CPUs write.
    pub shared_rmw: u64,
    /// Full memory barriers.
    pub full_fences: u64,
    /// IPIs sent.
    pub ipis: u64,
    /// Last mmputs (address spaces torn down).
    pub exits: u64,
    /// CPUs found still lazy on an mm when it was torn down.
    pub lazy_scan_hits: u64,
    /// Address spaces created.
    pub mm_created: u64,
    /// Address spaces freed.
    pub mm_freed: u64,
    /// Violations of the safety properties.
    pub violations: u64,
    /// Bytes per task.
    pub task_bytes: usize,
    /// Bytes per task the scheme adds.
    pub task_state_bytes: usize,
}

impl From<&RunReport> for RunRow {
    fn from(r: &RunReport) -> RunRow {
        RunRow {
            scheme: r.scheme.to_string(),
            mutant: r.mutant.map(|m| m.name().to_string()),
            arch: r.arch.to_string(),
            workload: r.workload.name().to_string(),
            cpus: r.cpus,
            seconds: r.seconds,
            context_switches: r.measured.context_switches,
            lazy_switches: r.measured.lazy_switches,
            switches_per_sec: r.switches_per_sec(),
            shared_rmw: r.measured.shared_rmw,
            full_fences: r.measured.full_fences,
            ipis: r.total.ipis_sent,
            exits: r.total.exits,
            lazy_scan_hits: r.total.lazy_scan_hits,
            mm_created: r.total.mm_created,
            mm_freed: r.total.mm_freed,
            violations: r.total.violations,
            task_bytes: r.task_bytes,
            task_state_bytes: r.task_state_bytes,
        }
    }
}

/// A row of `check --json`: a scheme checked on one arch, or a mutant hunted.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckRow {
    /// A scheme (or a finding's fix) checked on one arch: it must stay clean.
    Scheme {
        /// The scheme, or the fix's name.
        name: String,
        /// The arch.
        arch: String,
        /// Seeded runs explored.
        iterations: u64,
        /// Runs that violated a safety property.
        violations: u64,
        /// The shrunk counterexample of the first violation, if any.
        replay: Option<String>,
    },
    /// A mutant hunted until caught, or until the budget ran out.
    Mutant {
        /// The mutant.
        name: String,
        /// The arch it was caught on (its own, or the first that caught it).
        arch: String,
        /// Whether a run violated a safety property.
        caught: bool,
        /// Runs until the first violation, if caught.
        iterations_to_catch: Option<u64>,
        /// The shrunk counterexample, if caught.
        replay: Option<String>,
    },
}

/// Prints `row` as one line of JSON on stdout.
pub(crate) fn print_row<T: Serialize>(row: &T) -> Result<(), crate::Failure> {
    let line = serde_json::to_string(row)
        .map_err(|e| crate::Failure::Io(format!("cannot serialise a JSON row: {e}")))?;
    outln!("{line}");
    Ok(())
}

/// The JSON Schema of each command's `--json` rows, by command name, as checked in under
/// `docs/schema/COMMAND.json` (pretty-printed, with a final newline).
pub fn schemas() -> Vec<(&'static str, String)> {
    fn pretty(s: Schema) -> String {
        format!("{:#}\n", s.as_value())
    }
    vec![
        ("run", pretty(schemars::schema_for!(RunRow))),
        ("check", pretty(schemars::schema_for!(CheckRow))),
    ]
}
