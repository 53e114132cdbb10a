//! Timelines Perfetto (and `chrome://tracing`) opens: Chrome Trace Event JSON.
//!
//! Each CPU gets four tracks: `cpu N` with one slice per task it runs (or, for a checker
//! replay, per operation); `cpu N lazy mm` with a slice while the CPU runs a kernel
//! thread lazily on a user mm (for a checker replay, `cpu N page tables`: the mm its CR3
//! holds, marked lazy); `cpu N teardown and IPIs`, with short marks for teardown
//! (`exit_mm`, `exec_mmap`, `__mmdrop` freeing an mm, allocations) and for each IPI that
//! arrives, at the head of a flow arrow from the sender's slice; and `cpu N kernel`, the
//! model's own tracepoints ([`lazymm::tracepoint`]) as nested spans of the time they
//! took: `__mmput`, `__mmdrop`, `cleanup_lazy_tlbs` (a shootdown or a scan), the wait
//! for IPI targets, and each IPI handler, with a flow arrow from the sender's IPI to the
//! handler. Violations are instant events named by the property they break.

pub mod event;
pub mod svg;

use event::{
    Args, Binding, Category, CutLog, Document, OtherData, Phase, Scope, TraceEvent, Track,
};
use lazymm::tracepoint::{Span, Tracepoint};
use lazymm::{MmId, Violation};
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// A finished timeline.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    events: Vec<TraceEvent>,
    /// The document's `otherData` (what the run was, whether a log was cut); left out
    /// of the document when empty.
    other: OtherData,
}

impl Timeline {
    /// The events, in the order they were recorded.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The document's `otherData`.
    pub fn other_data(&self) -> &OtherData {
        &self.other
    }

    /// The JSON document.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&Document {
            trace_events: self.events.clone(),
            display_time_unit: "ns".to_string(),
            other_data: self.other.clone(),
        })
    }

    /// Writes the JSON document to `path`, whole or not at all (temp file + rename); a
    /// name ending in `.svg` gets the drawing of [`svg`] instead.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
        {
            svg::render(&self.events)
        } else {
            self.to_json().map_err(std::io::Error::other)?
        };
        crate::report::write::write_file(path, text.as_bytes())
    }
}

/// How long a teardown span or IPI arrival is drawn (the model's work has no duration of
/// its own on the trace's clock).
const MARK_US: f64 = 0.1;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A complete slice (`X`) of category `cat` on track `tid` from `start` for `dur` us.
fn complete(name: String, cat: Category, tid: usize, start: f64, dur: f64) -> TraceEvent {
    TraceEvent {
        cat: Some(cat),
        ts: Some(start),
        dur: Some(dur),
        ..TraceEvent::new(Phase::Complete, name, tid)
    }
}

/// The tail (`s`) or head (`f`, bound to the enclosing slice) of IPI flow `id`.
fn flow(ph: Phase, id: u64, what: &str, tid: usize, ts: f64) -> TraceEvent {
    TraceEvent {
        cat: Some(Category::Ipi),
        bp: (ph == Phase::FlowEnd).then_some(Binding::Enclosing),
        id: Some(id),
        ts: Some(ts),
        ..TraceEvent::new(ph, what, tid)
    }
}

/// Builds a timeline as a host runs.
#[derive(Debug)]
pub struct TimelineSink {
    events: Vec<TraceEvent>,
    /// Per CPU: the open task slice (name, start ns).
    task: Vec<Option<(String, u64)>>,
    /// Per CPU: the open slice of the second track (name, start ns).
    lazy: Vec<Option<(String, u64)>>,
    flow: u64,
    last_ns: u64,
    other: OtherData,
}

impl TimelineSink {
    /// A timeline of `n` CPUs named `title`, each CPU's second track named
    /// `cpu N {second}`.
    pub fn with_title(n: usize, title: &str, second: &str) -> TimelineSink {
        let meta = |what: &str, tid: usize, args: Args| TraceEvent {
            args: Some(args),
            ..TraceEvent::new(Phase::Metadata, what, tid)
        };
        let mut events = vec![meta(
            "process_name",
            0,
            Args {
                name: Some(title.to_string()),
                ..Args::default()
            },
        )];
        for c in 0..n {
            for (track, name) in [
                (Track::Task, format!("cpu {c}")),
                (Track::Second, format!("cpu {c} {second}")),
                (Track::Events, format!("cpu {c} teardown and IPIs")),
                (Track::Kernel, format!("cpu {c} kernel")),
            ] {
                let tid = track.tid(c);
                events.push(meta(
                    "thread_name",
                    tid,
                    Args {
                        name: Some(name),
                        ..Args::default()
                    },
                ));
                events.push(meta(
                    "thread_sort_index",
                    tid,
                    Args {
                        sort_index: Some(tid),
                        ..Args::default()
                    },
                ));
            }
        }
        TimelineSink {
            events,
            task: vec![None; n],
            lazy: vec![None; n],
            flow: 0,
            last_ns: 0,
            other: OtherData::default(),
        }
    }

    /// A replay timeline of `n` CPUs.
    pub fn new(n: usize) -> TimelineSink {
        TimelineSink::with_title(n, "lazymm replay", "lazy mm")
    }

    fn close_task(&mut self, cpu: usize, ts: u64) {
        if let Some((name, start)) = self.task[cpu].take() {
            self.events.push(complete(
                name,
                Category::Task,
                Track::Task.tid(cpu),
                us(start),
                us(ts.saturating_sub(start)),
            ));
        }
    }

    fn close_lazy(&mut self, cpu: usize, ts: u64) {
        if let Some((name, start)) = self.lazy[cpu].take() {
            self.events.push(complete(
                name,
                Category::Lazy,
                Track::Second.tid(cpu),
                us(start),
                us(ts.saturating_sub(start)),
            ));
        }
    }

    /// Ends CPU `cpu`'s open task slice at `ts`.
    pub fn end_slice(&mut self, cpu: usize, ts: u64) {
        self.last_ns = self.last_ns.max(ts);
        self.close_task(cpu, ts);
    }

    /// The second track of `cpu` shows `name` from `ts` on (nothing for `None`).
    pub fn state(&mut self, cpu: usize, ts: u64, name: Option<String>) {
        if self.lazy[cpu].as_ref().map(|(n, _)| n) != name.as_ref() {
            self.close_lazy(cpu, ts);
            if let Some(n) = name {
                self.lazy[cpu] = Some((n, ts));
            }
        }
    }

    /// Opens a slice named `name` on CPU `cpu`'s task track (closing the one before).
    pub fn slice(&mut self, cpu: usize, ts: u64, name: String) {
        self.last_ns = self.last_ns.max(ts);
        self.close_task(cpu, ts);
        self.task[cpu] = Some((name, ts));
    }

    /// The CPU's loaded mm is `mm` and it runs it lazily (`lazy`) or not.
    pub fn loaded(&mut self, cpu: usize, ts: u64, mm: MmId, lazy: bool) {
        self.state(
            cpu,
            ts,
            (lazy && !mm.is_init()).then(|| format!("lazy on {mm}")),
        );
    }

    /// A context switch on `cpu` to `next` (pid 0: idle) named `comm`, which owns
    /// `next_mm`, leaving `cr3` loaded: the task slice changes; the lazy slice follows CR3.
    pub fn switch(
        &mut self,
        cpu: usize,
        ts: u64,
        (next, comm): (u32, &str),
        next_mm: Option<MmId>,
        cr3: MmId,
    ) {
        let name = match (next, next_mm) {
            (0, _) => "idle".to_string(),
            (p, Some(mm)) => format!("{comm} {p} ({mm})"),
            (p, None) => format!("{comm} {p} (kthread)"),
        };
        self.slice(cpu, ts, name);
        self.loaded(cpu, ts, cr3, next_mm.is_none());
    }

    /// A short span of teardown or lifecycle work on `cpu`.
    pub fn span(&mut self, cpu: usize, ts: u64, name: String, mm: Option<MmId>) {
        self.last_ns = self.last_ns.max(ts + 1000);
        self.events.push(TraceEvent {
            args: Some(Args {
                mm: mm.map(|m| m.to_string()),
                ..Args::default()
            }),
            ..complete(
                name,
                Category::Teardown,
                Track::Events.tid(cpu),
                us(ts),
                MARK_US,
            )
        });
    }

    /// `exit_mm` of `pid` on `cpu`.
    pub fn exit(&mut self, cpu: usize, ts: u64, pid: u32, mm: MmId) {
        self.span(cpu, ts, format!("exit_mm pid {pid} ({mm})"), Some(mm));
    }

    /// `exec_mmap` of `pid` on `cpu`.
    pub fn exec(&mut self, cpu: usize, ts: u64, pid: u32, mm: MmId) {
        self.span(cpu, ts, format!("exec_mmap pid {pid} -> {mm}"), Some(mm));
    }

    /// An arrow from CPU `from`'s track to CPU `to`'s at `ts` (an IPI, a free under a
    /// CPU that still uses the mm).
    pub fn ipi(&mut self, from: usize, to: usize, ts: u64, what: &str) {
        self.flow += 1;
        let id = self.flow;
        let (tail, head) = (Track::Task.tid(from), Track::Events.tid(to));
        self.events
            .push(flow(Phase::FlowStart, id, what, tail, us(ts)));
        self.events.push(complete(
            what.to_string(),
            Category::Ipi,
            head,
            us(ts),
            MARK_US,
        ));
        self.events
            .push(flow(Phase::FlowEnd, id, what, head, us(ts)));
    }

    /// A span of model work on `cpu`'s kernel track from `start` to `end`.
    pub fn kernel_span(&mut self, cpu: usize, start: u64, end: u64, name: String, mm: MmId) {
        self.last_ns = self.last_ns.max(end);
        self.events.push(TraceEvent {
            args: Some(Args {
                mm: Some(mm.to_string()),
                ..Args::default()
            }),
            ..complete(
                name,
                Category::Kernel,
                Track::Kernel.tid(cpu),
                us(start),
                us(end.saturating_sub(start)),
            )
        });
    }

    /// An arrow from CPU `from`'s kernel track at `sent` to CPU `to`'s at `ran`: an IPI
    /// and the handler that ran it.
    pub fn ipi_flow(&mut self, from: usize, sent: u64, to: usize, ran: u64, what: &str) {
        self.flow += 1;
        let id = self.flow;
        self.last_ns = self.last_ns.max(ran);
        let (tail, head) = (Track::Kernel.tid(from), Track::Kernel.tid(to));
        self.events
            .push(flow(Phase::FlowStart, id, what, tail, us(sent)));
        self.events
            .push(flow(Phase::FlowEnd, id, what, head, us(ran.max(sent))));
    }

    /// A violation found on its CPU: an instant event named by the property.
    pub fn violation(&mut self, ts: u64, v: &Violation) {
        let property = v.kind.property();
        self.events.push(TraceEvent {
            cat: Some(Category::Violation),
            s: Some(Scope::Global),
            ts: Some(us(ts)),
            args: Some(Args {
                property: Some(property.to_string()),
                cpu: Some(v.cpu),
                mm: Some(v.mm.to_string()),
                ..Args::default()
            }),
            ..TraceEvent::new(
                Phase::Instant,
                format!("violation ({property}): {v}"),
                Track::Task.tid(v.cpu),
            )
        });
    }

    /// An instant event on `cpu`'s task track named `name` (a note for the reader).
    pub fn mark(&mut self, cpu: usize, ts: u64, name: String) {
        self.last_ns = self.last_ns.max(ts);
        self.events.push(TraceEvent {
            cat: Some(Category::Note),
            s: Some(Scope::Thread),
            ts: Some(us(ts)),
            ..TraceEvent::new(Phase::Instant, name, Track::Task.tid(cpu))
        });
    }

    /// Closes every open slice and returns the timeline.
    pub fn finish(mut self) -> Timeline {
        let end = self.last_ns + 1000;
        for c in 0..self.task.len() {
            self.close_task(c, end);
            self.close_lazy(c, end);
        }
        Timeline {
            events: self.events,
            other: self.other,
        }
    }
}

/// Turns each CPU's model tracepoints into nested spans on its kernel track and IPI
/// arrows from the sending `on_each_cpu_mask` to the handler that ran the call.
///
/// # Invariants
/// `open[c]` is CPU `c`'s stack of spans begun and not yet ended, innermost last;
/// `sent[(s, t)]` holds, oldest first, when CPU `s` posted each call CPU `t` has not run.
#[derive(Debug, Default)]
struct KernelSpans {
    open: HashMap<usize, Vec<(Span, u64, String, MmId)>>,
    sent: HashMap<(usize, usize), VecDeque<u64>>,
}

impl KernelSpans {
    fn add(&mut self, sink: &mut TimelineSink, cpu: usize, ts: u64, tp: Tracepoint, name: &str) {
        match tp {
            Tracepoint::IpiSend { to, .. } => {
                self.sent.entry((cpu, to)).or_default().push_back(ts);
            }
            Tracepoint::IpiHandler { from, mm, .. } => {
                let label = format!("{name}({mm})");
                // No arrow for a call whose sending was not recorded (a full log).
                let sent = self
                    .sent
                    .get_mut(&(from, cpu))
                    .and_then(VecDeque::pop_front);
                if let Some(sent) = sent.filter(|_| from != cpu) {
                    sink.ipi_flow(from, sent, cpu, ts, &format!("IPI {label}"));
                }
                let label = format!("{label} from cpu {from}");
                self.open
                    .entry(cpu)
                    .or_default()
                    .push((Span::IpiHandler, ts, label, mm));
            }
            Tracepoint::Begin(span, mm) => {
                self.open
                    .entry(cpu)
                    .or_default()
                    .push((span, ts, format!("{name}({mm})"), mm));
            }
            Tracepoint::End(span, _) => {
                let stack = self.open.entry(cpu).or_default();
                if let Some(i) = stack.iter().rposition(|(s, ..)| *s == span) {
                    // Anything opened inside it and not ended ends with it.
                    for (_, start, label, mm) in stack.drain(i..).rev() {
                        sink.kernel_span(cpu, start, ts, label, mm);
                    }
                }
            }
        }
    }

    /// Ends every span still open at `end` (a run cut short by a violation).
    fn finish(self, sink: &mut TimelineSink, end: u64) {
        for (cpu, stack) in self.open {
            for (_, start, label, mm) in stack.into_iter().rev() {
                sink.kernel_span(cpu, start, end, label, mm);
            }
        }
    }
}

/// A checker run as a timeline, for `lazymm check --replay FILE --timeline T`: the
/// checker's events in their order, one microsecond apart (the checker has no clock).
///
/// Each operation is a slice on its CPU's track (ending where it ended, when other CPUs'
/// events interrupted it); the second track shows which mm the CPU's page tables hold
/// (from the `[cr3 ...]` the checker logs at each operation), marked lazy while the CPU
/// runs its idle task or a kernel thread; allocations and frees are spans; a violation
/// is an instant event named by its property, with an arrow from the CPU that freed the
/// mm to the CPU that still used it.
pub fn from_check(events: &[crate::check::run::Event], nr_cpus: usize, title: &str) -> Timeline {
    use crate::check::run::Event;
    use lazymm::ViolationKind;
    let n = nr_cpus.max(events.iter().map(|e| e.cpu() + 1).max().unwrap_or(1));
    let mut sink = TimelineSink::with_title(n, title, "page tables");
    // The checker logs an operation's end only when other CPUs' events came in between;
    // an operation with no such end finished before the next event of another CPU.
    let mut ends_later = vec![false; events.len()];
    let mut open_op: Vec<Option<usize>> = vec![None; n];
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Op { cpu, .. } => open_op[*cpu] = Some(i),
            Event::OpEnd { cpu, .. } => {
                if let Some(j) = open_op[*cpu].take() {
                    ends_later[j] = true;
                }
            }
            _ => {}
        }
    }
    // Per CPU: its open operation slice will be ended by an `OpEnd`.
    let mut waits_for_end = vec![false; n];
    let mut open = vec![false; n];
    // Whether each CPU runs a kernel task (its idle task at boot).
    let mut kernel = vec![true; n];
    let mut spans = KernelSpans::default();
    for (i, e) in events.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        let me = e.cpu();
        if let Event::Trace { cpu, tp, name } = e {
            // Work inside an operation: it ends no operation's slice.
            spans.add(&mut sink, *cpu, ts, *tp, name);
            continue;
        }
        for c in 0..n {
            if c != me && open[c] && !waits_for_end[c] {
                sink.end_slice(c, ts);
                open[c] = false;
            }
        }
        match e {
            Event::Op { cpu, text, .. } => {
                let (cr3, what) = split_cr3(text);
                sink.slice(*cpu, ts, what.to_string());
                open[*cpu] = true;
                waits_for_end[*cpu] = ends_later[i];
                if let Some(cr3) = cr3 {
                    let lazy = if kernel[*cpu] { " (lazy)" } else { "" };
                    sink.state(*cpu, ts, (cr3 != "init_mm").then(|| format!("{cr3}{lazy}")));
                }
                if let Some(k) = runs_kernel_after(what) {
                    kernel[*cpu] = k;
                }
            }
            Event::OpEnd { cpu, .. } => {
                sink.end_slice(*cpu, ts);
                open[*cpu] = false;
                waits_for_end[*cpu] = false;
            }
            Event::Alloc { cpu, mm } => sink.span(*cpu, ts, format!("allocates {mm}"), Some(*mm)),
            Event::Freed { cpu, mm } => {
                sink.span(*cpu, ts, format!("__mmdrop frees {mm}"), Some(*mm))
            }
            Event::Trace { .. } => {}
            Event::Violation(v) => {
                sink.violation(ts, v);
                let victim = match v.kind {
                    ViolationKind::FreedWhileLoaded { holder } => Some(holder),
                    ViolationKind::LazyCpuNotInCpumask { lazy } => Some(lazy),
                    _ => None,
                };
                if let Some(to) = victim.filter(|&t| t < n) {
                    sink.ipi(v.cpu, to, ts, &format!("{} still in use on cpu {to}", v.mm));
                }
            }
        }
    }
    spans.finish(&mut sink, (events.len() as u64 + 1) * 1000);
    sink.finish()
}

/// A native run as a timeline, for `lazymm run --timeline T`: each CPU's event log
/// ([`crate::host::EventLog`], CPU order) on its own clock (nanoseconds since
/// the earliest event of any CPU).
///
/// A switch opens a task slice (`{comm} {pid} ({mm})`, `... (kthread)` or `idle`) and
/// the lazy track shows `lazy on mm#N.G` while a kernel thread or idle runs on a user
/// mm; `exit_mm` is a span; each violation is an instant event named by its property,
/// at the time of its CPU's last event at or before the violation's step. A log that
/// filled up ends with a note on its track, and `otherData.cut` lists each such CPU with
/// the number of events not recorded.
pub fn from_run(
    logs: &[crate::host::EventLog],
    violations: &[Violation],
    nr_cpus: usize,
    comm: &str,
    title: &str,
) -> Timeline {
    use crate::host::events::{EventKind, Who};
    let n = nr_cpus.max(logs.iter().map(|l| l.cpu + 1).max().unwrap_or(0));
    let t0 = logs
        .iter()
        .filter_map(|l| l.events().first().map(|e| e.ts))
        .min()
        .unwrap_or(0);
    let mut sink = TimelineSink::with_title(n, title, "lazy mm");
    let mut cut = Vec::new();
    let mut spans = KernelSpans::default();
    // The kernel spans pair events across CPUs (an IPI and its handler): in time order.
    let mut trace: Vec<(u64, usize, Tracepoint, &str)> = Vec::new();
    let mut end = 0;
    for log in logs {
        for e in log.events() {
            let ts = e.ts - t0;
            end = end.max(ts);
            match e.kind {
                EventKind::Trace(tp, name) => trace.push((ts, log.cpu, tp, name)),
                EventKind::Switch { next, cr3, .. } => {
                    let (pid, mm) = match next {
                        Who::Idle => (0, None),
                        Who::Kernel(p) => (p, None),
                        Who::User(p, mm) => (p, Some(mm)),
                    };
                    sink.switch(log.cpu, ts, (pid, comm), mm, cr3);
                }
                EventKind::Exit { pid, mm } => sink.exit(log.cpu, ts, pid, mm),
            }
        }
        if log.dropped() > 0 {
            let last = log.events().last().map_or(0, |e| e.ts - t0);
            sink.mark(
                log.cpu,
                last,
                format!(
                    "event log full ({} events): {} later events not recorded",
                    log.cap(),
                    log.dropped()
                ),
            );
            cut.push(CutLog {
                cpu: log.cpu,
                recorded: log.events().len(),
                not_recorded: log.dropped(),
            });
        }
    }
    trace.sort_by_key(|&(ts, ..)| ts);
    for (ts, cpu, tp, name) in trace {
        spans.add(&mut sink, cpu, ts, tp, name);
    }
    spans.finish(&mut sink, end);
    for v in violations {
        let ts = logs
            .iter()
            .find(|l| l.cpu == v.cpu)
            .and_then(|l| l.ts_at_step(v.step))
            .map_or(0, |t| t - t0);
        sink.violation(ts, v);
    }
    let cap = logs.first().map_or(0, |l| l.cap());
    sink.other = OtherData {
        events_per_cpu_cap: Some(cap),
        cut: Some(cut),
    };
    sink.finish()
}

/// `[cr3 mm#4.1] rest` into (`mm#4.1`, `rest`).
fn split_cr3(text: &str) -> (Option<&str>, &str) {
    match text.strip_prefix("[cr3 ").and_then(|t| t.split_once("] ")) {
        Some((cr3, rest)) => (Some(cr3), rest),
        None => (None, text),
    }
}

/// Whether the CPU runs a kernel task after an operation the checker describes as
/// `what` (`None`: the operation does not change it).
fn runs_kernel_after(what: &str) -> Option<bool> {
    if let Some((_, next)) = what.split_once(" -> ") {
        let next = next.trim_end_matches(", which exits");
        if what.contains("which exits") {
            return Some(true);
        }
        return Some(next == "idle" || next.ends_with("(kthread)"));
    }
    if what.contains(" exits") || what.starts_with("kworker:") || what.starts_with("goes offline") {
        return Some(true);
    }
    if what.contains(" execs") {
        return Some(false);
    }
    None
}
