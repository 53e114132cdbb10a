//! The rows `--json` prints, and their JSON Schemas.
//!
//! One convention for every command: `--json` prints JSON Lines, one row (one JSON
//! object) per line, on stdout, and nothing else there. `run` prints one row, `check` a
//! row per scheme checked and per mutant hunted, `predict`, `replay` and `lab` a row per row
//! of their tables. The schema of each command's rows is generated from the row type
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
    /// Whether both threads of each pair were bound to one CPU (`--pin`).
    pub pinned: bool,
    /// The topology wakeups were placed on.
    pub topology: String,
    /// Fraction of the measured switches into a user task that came from idle.
    pub through_idle: Option<f64>,
    /// Fraction of the pair wakeups placed on the waker's CPU.
    pub wake_on_waker: Option<f64>,
    /// ... on the woken task's previous CPU.
    pub wake_on_prev: Option<f64>,
    /// ... on another idle CPU sharing the LLC with the waker or the previous CPU.
    pub wake_idle_same_llc: Option<f64>,
    /// ... anywhere else.
    pub wake_elsewhere: Option<f64>,
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
            pinned: r.pinned,
            topology: r.topology.clone(),
            through_idle: r.sched.through_idle(),
            wake_on_waker: r.sched.wake_frac(r.sched.wake_on_waker),
            wake_on_prev: r.sched.wake_frac(r.sched.wake_on_prev),
            wake_idle_same_llc: r.sched.wake_frac(r.sched.wake_idle_same_llc),
            wake_elsewhere: r.sched.wake_frac(r.sched.wake_elsewhere),
        }
    }
}

/// What a `check --json` row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A scheme (or a finding's fix) checked on one arch: it must stay clean.
    Scheme,
    /// A mutant hunted until caught, or until the budget ran out.
    Mutant,
}

/// A row of `check --json` (and of `check --merge --json`): one scheme on one arch, or
/// one mutant, with the part of the check it covers, so that `check --merge` can tell
/// the shards of one check from anything else.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckRow {
    /// A scheme checked, or a mutant hunted.
    pub kind: CheckKind,
    /// The shard, `K/N` (`1/1` for a whole run).
    pub shard: String,
    /// The base seed.
    pub seed: u64,
    /// The iterations asked for: `--iterations` for a scheme, `--budget` for a mutant.
    pub planned: u64,
    /// What the iterations found and reached.
    #[serde(flatten)]
    pub summary: lazymm_engine::check::Summary,
    /// A mutant's: whether a run violated a safety property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught: Option<bool>,
    /// A mutant's: runs until the first violation, if caught.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations_to_catch: Option<u64>,
}

/// A row of `predict --json`: the report's own row (the keys of `results.csv`).
pub use lazymm_sim::report::PredictRow;

/// A row of `replay --json`: the report's own row (the keys of `results.csv`).
pub use lazymm_replay::row::Record as ReplayRow;

/// A row of `lab --json`: the report's own row (the keys of `results.csv`).
pub use lazymm_lab::report::LabRow;

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
        (
            "predict",
            pretty(schemars::schema_for!(PredictRow<'static>)),
        ),
        ("replay", pretty(schemars::schema_for!(ReplayRow))),
        ("lab", pretty(schemars::schema_for!(LabRow))),
    ]
}
