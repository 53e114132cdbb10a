//! A replay's result ([`Row`], what the host counted) and its serialization
//! ([`Record`], the fields every file and `--json` carry).

use lazymm::{Mutant, Stats, Violation};
use lazymm_engine::report::timeline::Timeline;
use lazymm_trace::schedule::Op;
use lazymm_trace::Trace;
use serde::Serialize;

/// A scheme's bookkeeping priced on a machine (`--machine`).
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// The machine's name.
    pub machine: String,
    /// Predicted picoseconds of bookkeeping over the replayed schedule, summed over CPUs.
    pub bookkeeping_ps: u64,
}

/// The hottest `mm_count` line of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct HotLine {
    /// The mm (`mm#slot.gen`).
    pub mm: String,
    /// The process it belongs to (`comm (tgid N)`).
    pub process: String,
    /// RMWs counted on its `mm_count`.
    pub rmw: u64,
    /// How many CPUs made them.
    pub cpus: usize,
}

/// One replay's result.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scheme.
    pub scheme: &'static str,
    /// The mutant, if any.
    pub mutant: Option<Mutant>,
    /// Arch.
    pub arch: &'static str,
    /// CPUs of the traced machine.
    pub cpus: usize,
    /// Seconds from the trace's first event to its last.
    pub trace_seconds: f64,
    /// Counters of the replayed schedule (trace, initial and resync switches; not the
    /// final quiescing), summed over CPUs.
    pub measured: Stats,
    /// Counters of the whole replay, quiescing included.
    pub total: Stats,
    /// `context_switch` calls made for the trace's own `sched_switch` events.
    pub context_switches: u64,
    /// Switches added to put each CPU's first task in place.
    pub initial_switches: u64,
    /// Switches added to re-synchronise after lost events (and to retire stale tasks).
    pub resync_switches: u64,
    /// Switches made while quiescing.
    pub quiesce_switches: u64,
    /// Lazy round trips: kernel→user switches of a CPU that went lazy when it left a
    /// user task (user → kernel … → user, or an exit), from the trace's switches. A
    /// property of the schedule: the same under every scheme.
    pub lazy_round_trips: u64,
    /// kernel→kernel switches (the lazy mm handed over), from the trace's switches.
    pub kernel_handovers: u64,
    /// The hottest `mm_count` line.
    pub hottest: Option<HotLine>,
    /// Hazard-pointer scans: operations in which a CPU read other CPUs' per-CPU scheme
    /// state (`rq.lazy_mm`, a hazard slot), from the recorded accesses.
    pub hazptr_scans: u64,
    /// CPUs those scans read (distinct CPUs per scan, summed).
    pub hazptr_cpus_scanned: u64,
    /// Tasks whose process was guessed.
    pub guessed_tasks: usize,
    /// User tasks, processes and kernel threads the census found.
    pub census: (usize, usize, usize),
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Whether the scheme frees mms at all (`false` for the `none` baselines).
    pub frees_mms: bool,
    /// The violations (the first few per CPU).
    pub violations: Vec<Violation>,
    /// The schedule operation during which the first violation was found, and the
    /// trace time of it.
    pub first_violation_at: Option<(usize, Op)>,
    /// The timeline, when asked for.
    pub timeline: Option<Timeline>,
    /// The bookkeeping priced on [`crate::Input::machine`], when one was given.
    pub predicted: Option<Predicted>,
}

impl Row {
    fn per_sec(&self, x: u64) -> f64 {
        if self.trace_seconds > 0.0 {
            x as f64 / self.trace_seconds
        } else {
            0.0
        }
    }

    /// Lazy round trips per second of trace.
    pub fn lazy_round_trips_per_sec(&self) -> f64 {
        self.per_sec(self.lazy_round_trips)
    }

    /// kernel→kernel hand-overs per second of trace.
    pub fn kernel_handovers_per_sec(&self) -> f64 {
        self.per_sec(self.kernel_handovers)
    }

    /// Shared RMWs per second of trace.
    pub fn shared_rmw_per_sec(&self) -> f64 {
        self.per_sec(self.measured.shared_rmw)
    }

    /// RMWs per second of trace on the hottest `mm_count` line.
    pub fn hottest_line_rmw_per_sec(&self) -> f64 {
        self.per_sec(self.hottest.as_ref().map_or(0, |h| h.rmw))
    }

    /// IPIs sent per second of trace.
    pub fn ipis_per_sec(&self) -> f64 {
        self.per_sec(self.measured.ipis_sent)
    }

    /// IPIs sent per exit (`__mmput`), over the whole replay; `None` with no exit.
    pub fn ipis_per_exit(&self) -> Option<f64> {
        (self.total.exits > 0).then(|| self.total.ipis_sent as f64 / self.total.exits as f64)
    }

    /// Predicted microseconds of bookkeeping (summed over CPUs) per second of trace on
    /// [`crate::Input::machine`]; `None` without one.
    pub fn predicted_bookkeeping_us_per_sec(&self) -> Option<f64> {
        self.predicted
            .as_ref()
            .map(|p| self.per_sec(p.bookkeeping_ps) / 1e6)
    }

    /// Context switches per second of trace.
    pub fn switches_per_sec(&self) -> f64 {
        self.per_sec(self.context_switches)
    }

    /// The row as `results.json` and `results.csv` hold it: the bench's field names,
    /// plus the replay's own, for a replay of `trace`.
    pub fn record(&self, trace: &Trace) -> Record {
        let h = self.hottest.as_ref();
        Record {
            trace: trace.file.clone(),
            format: trace.format.map(|f| f.name()),
            scheme: self.scheme,
            mutant: self.mutant.map(|m| m.name()),
            arch: self.arch,
            workload: "replay",
            cpus: self.cpus,
            seconds: self.trace_seconds,
            trace_seconds: self.trace_seconds,
            context_switches: self.context_switches,
            sched_switch_events: trace.stats.count("sched_switch"),
            initial_switches: self.initial_switches,
            resync_switches: self.resync_switches,
            lazy_switches: self.measured.lazy_switches,
            switches_per_sec: self.switches_per_sec(),
            lazy_round_trips: self.lazy_round_trips,
            lazy_round_trips_per_sec: self.lazy_round_trips_per_sec(),
            kernel_handovers: self.kernel_handovers,
            kernel_handovers_per_sec: self.kernel_handovers_per_sec(),
            shared_rmw: self.measured.shared_rmw,
            shared_rmw_per_sec: self.shared_rmw_per_sec(),
            hottest_line_mm: h.map(|h| h.mm.clone()),
            hottest_line_process: h.map(|h| h.process.clone()),
            hottest_line_cpus: h.map(|h| h.cpus),
            hottest_line_rmw: h.map_or(0, |h| h.rmw),
            hottest_line_rmw_per_sec: self.hottest_line_rmw_per_sec(),
            hazptr_scans: self.hazptr_scans,
            hazptr_cpus_scanned: self.hazptr_cpus_scanned,
            full_fences: self.measured.full_fences,
            ipis: self.total.ipis_sent,
            ipis_per_sec: self.ipis_per_sec(),
            exits: self.total.exits,
            ipis_per_exit: self.ipis_per_exit(),
            mm_created: self.total.mm_created,
            mm_freed: self.total.mm_freed,
            speculative_walks: self.total.speculative_walks,
            nmis: self.total.nmis,
            violations: self.total.violations,
            task_bytes: self.task_bytes,
            guessed_tasks: self.guessed_tasks,
            user_tasks: self.census.0,
            processes: self.census.1,
            kthreads: self.census.2,
            lost_events: trace.stats.lost_events,
            backwards_timestamps: trace.stats.backwards,
            machine: self.predicted.as_ref().map(|p| p.machine.clone()),
            predicted_bookkeeping_us_per_sec: self.predicted_bookkeeping_us_per_sec(),
        }
    }
}

/// One replay as `results.json`, `results.csv` and `replay --json` hold it: the bench's
/// field names, plus the replay's own. Its serde derive is the one definition of those
/// fields.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Record {
    /// The trace file, as given.
    pub trace: String,
    /// Its format's name.
    pub format: Option<&'static str>,
    /// The scheme.
    pub scheme: &'static str,
    /// The mutant, if any.
    pub mutant: Option<&'static str>,
    /// The model's arch.
    pub arch: &'static str,
    /// Always `replay`.
    pub workload: &'static str,
    /// CPUs of the traced machine.
    pub cpus: usize,
    /// Seconds of trace (the bench's name).
    pub seconds: f64,
    /// Seconds from the trace's first event to its last.
    pub trace_seconds: f64,
    /// `context_switch` calls for the trace's own `sched_switch` events.
    pub context_switches: u64,
    /// `sched_switch` events in the trace.
    pub sched_switch_events: u64,
    /// Switches added to put each CPU's first task in place.
    pub initial_switches: u64,
    /// Switches added to re-synchronise after lost events.
    pub resync_switches: u64,
    /// Lazy switches.
    pub lazy_switches: u64,
    /// Context switches per second of trace.
    pub switches_per_sec: f64,
    /// Lazy round trips.
    pub lazy_round_trips: u64,
    /// Lazy round trips per second of trace.
    pub lazy_round_trips_per_sec: f64,
    /// kernel→kernel switches.
    pub kernel_handovers: u64,
    /// kernel→kernel switches per second of trace.
    pub kernel_handovers_per_sec: f64,
    /// RMWs on lines shared between CPUs.
    pub shared_rmw: u64,
    /// The same per second of trace.
    pub shared_rmw_per_sec: f64,
    /// The mm of the hottest `mm_count` line.
    pub hottest_line_mm: Option<String>,
    /// Its process.
    pub hottest_line_process: Option<String>,
    /// CPUs that made RMWs on it.
    pub hottest_line_cpus: Option<usize>,
    /// RMWs on it.
    pub hottest_line_rmw: u64,
    /// The same per second of trace.
    pub hottest_line_rmw_per_sec: f64,
    /// Hazard-pointer scans.
    pub hazptr_scans: u64,
    /// CPUs those scans read.
    pub hazptr_cpus_scanned: u64,
    /// Full barriers.
    pub full_fences: u64,
    /// IPIs sent, quiescing included.
    pub ipis: u64,
    /// IPIs per second of trace.
    pub ipis_per_sec: f64,
    /// Exits (last `mmput`).
    pub exits: u64,
    /// IPIs per exit.
    pub ipis_per_exit: Option<f64>,
    /// mms created.
    pub mm_created: u64,
    /// mms freed.
    pub mm_freed: u64,
    /// Speculative page-table walks.
    pub speculative_walks: u64,
    /// NMIs.
    pub nmis: u64,
    /// Violations of the safety properties.
    pub violations: u64,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Tasks whose process was guessed.
    pub guessed_tasks: usize,
    /// User tasks the census found.
    pub user_tasks: usize,
    /// Processes.
    pub processes: usize,
    /// Kernel threads.
    pub kthreads: usize,
    /// Events the tracer lost.
    pub lost_events: u64,
    /// Timestamps that went backwards.
    pub backwards_timestamps: u64,
    /// The machine the bookkeeping was priced on (`--machine`).
    pub machine: Option<String>,
    /// Predicted microseconds of bookkeeping per second of trace.
    pub predicted_bookkeeping_us_per_sec: Option<f64>,
}
