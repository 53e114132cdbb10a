//! The model's side: the guest's trace replayed through the lazymm model on the guest's
//! arch, with every scheme (as `lazymm replay` does). The one place this crate calls
//! the replay host (`lazymm_replay`, `tasks`, `schedule`).

use crate::LabError;
use lazymm_replay::{replay_all, Input, Variant};
use lazymm_trace::schedule::schedule;
use lazymm_trace::tasks::{census, Kind, KthreadRules};
use lazymm_trace::{parse_str, Format, Options};
use std::collections::BTreeSet;

/// The most CPUs the model replays.
pub const MAX_CPUS: usize = lazymm::MAX_CPUS;

/// One scheme's replay of the guest's schedule: counts of the model's recorded
/// operations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelRow {
    /// Scheme.
    pub scheme: &'static str,
    /// Arch.
    pub arch: &'static str,
    /// IPIs the model sent over the trace's schedule (initial and resync switches
    /// included, the final quiescing not).
    pub ipis_sent: u64,
    /// IPIs handled.
    pub ipis_received: u64,
    /// `__mmput` teardowns (the exits of a last user, and the old mm of an exec).
    pub teardowns: u64,
    /// mms created.
    pub mm_created: u64,
    /// mms freed.
    pub mm_freed: u64,
    /// `context_switch` calls for the trace's own switches.
    pub context_switches: u64,
    /// user → kernel switches (lazy TLB entries).
    pub lazy_switches: u64,
    /// Lazy round trips (a property of the schedule).
    pub lazy_round_trips: u64,
    /// kernel → kernel hand-overs of the lazy mm.
    pub kernel_handovers: u64,
    /// Full fences.
    pub full_fences: u64,
    /// Shared-line RMWs.
    pub shared_rmw: u64,
    /// Safety violations the oracle found (must be 0).
    pub violations: u64,
    /// Switches added to re-synchronise after lost events.
    pub resync_switches: u64,
}

/// The replay of one phase.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Every scheme's row on the guest's arch.
    pub rows: Vec<ModelRow>,
    /// The pids the census calls user tasks.
    pub user_pids: BTreeSet<u32>,
    /// Lines the parser skipped, by event name (events replay does not use).
    pub skipped: Vec<(String, u64)>,
    /// Malformed lines skipped (lenient parsing), with the first one.
    pub malformed: (u64, Option<String>),
    /// Trace seconds.
    pub seconds: f64,
    /// Tasks whose process the census guessed.
    pub guessed_tasks: usize,
}

/// Parses the trace text as ftrace and replays it on `arch` with every scheme, the
/// model running kernel profile `profile` (the booted kernel's).
pub fn replay(
    name: &str,
    text: &str,
    arch: &str,
    profile: lazymm::Profile,
) -> Result<Replayed, LabError> {
    let opts = Options {
        format: Some(Format::Ftrace),
        lenient: true,
    };
    let trace = parse_str(name, text, &opts)
        .map_err(|e| LabError::Guest(format!("the guest's trace cannot be parsed: {e}")))?;
    let c = census(&trace, &KthreadRules::builtin());
    let s = schedule(&trace);
    if s.trace_switches == 0 {
        return Err(LabError::Guest(format!(
            "{name}: the guest's trace has no sched_switch event (was sched:sched_switch enabled? see the console log)"
        )));
    }
    let input = Input {
        trace: &trace,
        census: &c,
        schedule: &s,
        timeline: false,
        machine: None,
        profile,
    };
    let rows = replay_all(&Variant::every_scheme(), &[arch], &input)
        .map_err(|e| LabError::Usage(e.to_string()))?;
    let rows = rows
        .iter()
        .filter(|r| r.mutant.is_none())
        .map(|r| ModelRow {
            scheme: r.scheme,
            arch: r.arch,
            ipis_sent: r.measured.ipis_sent,
            ipis_received: r.measured.ipis_received,
            teardowns: r.measured.exits,
            mm_created: r.measured.mm_created,
            mm_freed: r.measured.mm_freed,
            context_switches: r.context_switches,
            lazy_switches: r.measured.lazy_switches,
            lazy_round_trips: r.lazy_round_trips,
            kernel_handovers: r.kernel_handovers,
            full_fences: r.measured.full_fences,
            shared_rmw: r.measured.shared_rmw,
            violations: r.total.violations,
            resync_switches: r.resync_switches,
        })
        .collect();
    let user_pids = c
        .tasks
        .iter()
        .filter(|(_, id)| id.kind == Kind::User)
        .map(|(p, _)| *p)
        .collect();
    Ok(Replayed {
        rows,
        user_pids,
        skipped: trace
            .stats
            .skipped
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        malformed: (
            trace.stats.malformed,
            trace.stats.first_malformed.as_ref().map(|e| e.to_string()),
        ),
        seconds: trace.seconds(),
        guessed_tasks: c.guessed(),
    })
}
