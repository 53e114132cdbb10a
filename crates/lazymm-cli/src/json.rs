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

/// A row of `predict --json`: one prediction (the keys of `results.csv`).
///
/// `lazymm_sim::report::row` builds it; the row is read back into this type (with
/// unknown keys refused) before it is printed, so the output and its schema cannot drift.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRow {
    /// The scheme.
    pub scheme: String,
    /// The arch.
    pub arch: String,
    /// The workload.
    pub workload: String,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Pairs of tasks (threads and processes), if the workload has pairs.
    pub pairs: Option<usize>,
    /// The machine (preset or file name).
    pub machine: String,
    /// Always true: a prediction, not a measurement.
    pub predicted: bool,
    /// The mode (`realistic`).
    pub mode: String,
    /// Work per switch, in ns (the machine's context switch cost).
    pub switch_work_ns: f64,
    /// The machine's full fence cost, in ns.
    pub host_fence_ns: f64,
    /// Predicted context switches per second.
    pub switches_per_sec: f64,
    /// The same (one sample).
    pub min: f64,
    /// The same (one sample).
    pub max: f64,
    /// Samples (1).
    pub samples: u64,
    /// `none`'s switches per second over this scheme's, if `none` was predicted too.
    pub slowdown_vs_none: Option<f64>,
    /// Nanoseconds per switch over `none`'s, if `none` was predicted too.
    pub extra_ns_per_switch: Option<f64>,
    /// Shared RMWs per lazy switch (none without lazy switches).
    pub shared_rmw_per_lazy_switch: Option<f64>,
    /// Full fences per lazy switch.
    pub full_fences_per_lazy_switch: Option<f64>,
    /// IPIs per exit (none without exits).
    pub ipis_per_exit: Option<f64>,
    /// Teardown microseconds per exit.
    pub teardown_us_per_exit: Option<f64>,
    /// Cache-line transfers per switch.
    pub transfers_per_switch: Option<f64>,
    /// Last mmputs.
    pub exits: u64,
    /// Lazy switches.
    pub lazy_switches: u64,
    /// Bytes per task.
    pub task_bytes: usize,
    /// Violations of the safety properties.
    pub violations: usize,
}

/// A row of `replay --json`: one scheme on one trace (the bench's field names, plus the
/// replay's own). Read back from `lazymm_replay::Row::to_json` like [`PredictRow`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRow {
    /// The trace file.
    pub trace: String,
    /// Its format.
    pub format: Option<String>,
    /// The scheme (a mutant's own scheme).
    pub scheme: String,
    /// The mutant, if any.
    pub mutant: Option<String>,
    /// The arch.
    pub arch: String,
    /// Always `replay`.
    pub workload: String,
    /// CPUs in the trace.
    pub cpus: usize,
    /// The trace's length in seconds (as `seconds` in the bench's rows).
    pub seconds: f64,
    /// The trace's length in seconds.
    pub trace_seconds: f64,
    /// Context switches replayed.
    pub context_switches: u64,
    /// `sched_switch` events in the trace.
    pub sched_switch_events: u64,
    /// Switches that put each CPU's first task in place.
    pub initial_switches: u64,
    /// Switches added where the trace lost events.
    pub resync_switches: u64,
    /// Switches into lazy mode.
    pub lazy_switches: u64,
    /// Context switches per second of trace.
    pub switches_per_sec: f64,
    /// User → kernel thread → the same user mm.
    pub lazy_round_trips: u64,
    /// Per second of trace.
    pub lazy_round_trips_per_sec: f64,
    /// Kernel thread → kernel thread hand-overs of a lazy mm.
    pub kernel_handovers: u64,
    /// Per second of trace.
    pub kernel_handovers_per_sec: f64,
    /// Shared RMWs.
    pub shared_rmw: u64,
    /// Per second of trace.
    pub shared_rmw_per_sec: f64,
    /// The mm whose line took the most RMWs.
    pub hottest_line_mm: Option<String>,
    /// Its process.
    pub hottest_line_process: Option<String>,
    /// CPUs that wrote it.
    pub hottest_line_cpus: Option<usize>,
    /// RMWs on it.
    pub hottest_line_rmw: u64,
    /// Per second of trace.
    pub hottest_line_rmw_per_sec: f64,
    /// Hazard-pointer scans.
    pub hazptr_scans: u64,
    /// CPUs those scans read.
    pub hazptr_cpus_scanned: u64,
    /// Full fences.
    pub full_fences: u64,
    /// IPIs sent.
    pub ipis: u64,
    /// Per second of trace.
    pub ipis_per_sec: f64,
    /// Last mmputs.
    pub exits: u64,
    /// IPIs per exit (none without exits).
    pub ipis_per_exit: Option<f64>,
    /// Address spaces created.
    pub mm_created: u64,
    /// Address spaces freed.
    pub mm_freed: u64,
    /// Speculative page-table walks.
    pub speculative_walks: u64,
    /// NMIs.
    pub nmis: u64,
    /// Violations of the safety properties.
    pub violations: u64,
    /// Bytes per task.
    pub task_bytes: usize,
    /// Tasks whose kind (user or kernel thread) was guessed.
    pub guessed_tasks: usize,
    /// User tasks.
    pub user_tasks: usize,
    /// Processes.
    pub processes: usize,
    /// Kernel threads.
    pub kthreads: usize,
    /// Events the tracer reported lost.
    pub lost_events: u64,
    /// Timestamps that went backwards.
    pub backwards_timestamps: u64,
    /// The machine the bookkeeping was priced on (`--machine`), if any.
    pub machine: Option<String>,
    /// Predicted bookkeeping microseconds per second on that machine.
    pub predicted_bookkeeping_us_per_sec: Option<f64>,
}

/// Reads a row (the report's own serde row) back into its `--json` type `T`, refusing a key `T` does not
/// have: a row and its schema that drift apart are an error, not a silent mismatch.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    row: impl Serialize,
) -> Result<T, crate::Failure> {
    let v = serde_json::to_value(row)
        .map_err(|e| crate::Failure::Io(format!("cannot serialise a JSON row: {e}")))?;
    serde_json::from_value(v)
        .map_err(|e| crate::Failure::Io(format!("a JSON row does not match its schema: {e}")))
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
        ("predict", pretty(schemars::schema_for!(PredictRow))),
        ("replay", pretty(schemars::schema_for!(ReplayRow))),
    ]
}
