//! The timeline's data, typed: the Chrome Trace Event records lazymm writes (the subset
//! of the format its timelines use), shared by the writer ([`super::TimelineSink`], the
//! JSON document) and the readers (the SVG drawing, tests that parse a written file).
//!
//! The format is Google's "Trace Event Format" document: an object with `traceEvents`,
//! `displayTimeUnit` and optional `otherData`; each event has a phase (`ph`), a process
//! and thread id, a timestamp in microseconds, and per phase a duration, a flow id or a
//! scope. lazymm uses one process and [`TRACKS`] threads (tracks) per CPU.

use serde::{Deserialize, Serialize};

/// Tracks per CPU: a CPU `c`'s tracks are `tid = TRACKS * c + row`, with rows
/// [`Track::Task`], [`Track::Second`], [`Track::Events`], [`Track::Kernel`].
pub const TRACKS: usize = 4;

/// One of a CPU's tracks (the row of its lane in the drawing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The task (or checker operation) slices.
    Task = 0,
    /// The second track: the lazily used mm, or the mm the page tables hold.
    Second = 1,
    /// Teardown marks and IPI arrivals.
    Events = 2,
    /// The model's tracepoint spans, nested as the calls nest.
    Kernel = 3,
}

impl Track {
    /// The thread id of this track of CPU `cpu`.
    pub fn tid(self, cpu: usize) -> usize {
        TRACKS * cpu + self as usize
    }
}

/// The event's phase (`ph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// `M`: metadata (a process or track name, a track's sort index).
    #[serde(rename = "M")]
    Metadata,
    /// `X`: a complete slice, `ts` to `ts + dur`.
    #[serde(rename = "X")]
    Complete,
    /// `s`: the tail of a flow arrow.
    #[serde(rename = "s")]
    FlowStart,
    /// `f`: the head of a flow arrow.
    #[serde(rename = "f")]
    FlowEnd,
    /// `i`: an instant.
    #[serde(rename = "i")]
    Instant,
}

/// What an event is about (`cat`): the drawing colours by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A task or checker-operation slice.
    Task,
    /// A slice of the second track (lazy use, or the page tables' mm).
    Lazy,
    /// A teardown or lifecycle mark.
    Teardown,
    /// An IPI (or a free under a CPU that still uses the mm): a mark or a flow.
    Ipi,
    /// A model tracepoint span.
    Kernel,
    /// A violation of a property.
    Violation,
    /// A note for the reader (a cut event log).
    Note,
}

/// The scope of an instant (`s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// `g`: the whole timeline.
    #[serde(rename = "g")]
    Global,
    /// `t`: its track.
    #[serde(rename = "t")]
    Thread,
}

/// How a flow's head binds to a slice (`bp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Binding {
    /// `e`: to the slice that encloses the head's timestamp.
    #[serde(rename = "e")]
    Enclosing,
}

/// An event's `args`: each field is set by the events that carry it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Args {
    /// A `process_name` or `thread_name` record: the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A `thread_sort_index` record: the track's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_index: Option<usize>,
    /// A violation: the property it breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// A violation: the CPU it was found on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<usize>,
    /// A teardown mark, kernel span or violation: the mm it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mm: Option<String>,
}

/// One trace event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// What it is (a slice's label, or the metadata record's kind).
    pub name: String,
    /// What it is about (none on metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat: Option<Category>,
    /// Its phase.
    pub ph: Phase,
    /// A flow head's binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bp: Option<Binding>,
    /// An instant's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<Scope>,
    /// A flow's id (its tail and head share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The process (lazymm writes one).
    pub pid: u32,
    /// The track ([`Track::tid`]; 0 for the process name).
    pub tid: usize,
    /// When, in microseconds (none on metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// A complete slice's length, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dur: Option<f64>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Args>,
}

impl TraceEvent {
    /// An event of phase `ph` named `name` on track `tid`, with nothing else set.
    pub fn new(ph: Phase, name: impl Into<String>, tid: usize) -> TraceEvent {
        TraceEvent {
            name: name.into(),
            cat: None,
            ph,
            bp: None,
            s: None,
            id: None,
            pid: PID,
            tid,
            ts: None,
            dur: None,
            args: None,
        }
    }

    /// The CPU whose lane holds this event.
    pub fn cpu(&self) -> usize {
        self.tid / TRACKS
    }

    /// The row of its CPU's lane (`0..TRACKS`, as [`Track`] numbers them).
    pub fn row(&self) -> usize {
        self.tid % TRACKS
    }
}

/// The one process lazymm's timelines have.
pub const PID: u32 = 1;

/// A CPU whose event log filled up (`otherData.cut`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutLog {
    /// The CPU.
    pub cpu: usize,
    /// Events recorded.
    pub recorded: usize,
    /// Events not recorded once the log was full.
    pub not_recorded: u64,
}

/// The document's `otherData`: what the run was, whether a log was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherData {
    /// The per-CPU event log's capacity (a native run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_cpu_cap: Option<usize>,
    /// The CPUs whose logs filled up (a native run; empty when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<Vec<CutLog>>,
}

impl OtherData {
    /// Whether nothing is set (the document then has no `otherData`).
    pub fn is_empty(&self) -> bool {
        self.events_per_cpu_cap.is_none() && self.cut.is_none()
    }
}

/// The whole JSON document, as written and as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The events, in the order they were recorded.
    #[serde(rename = "traceEvents")]
    pub trace_events: Vec<TraceEvent>,
    /// The unit Perfetto shows (`ns`: the model's clocks count nanoseconds).
    #[serde(rename = "displayTimeUnit")]
    pub display_time_unit: String,
    /// Metadata about the whole timeline.
    #[serde(
        rename = "otherData",
        default,
        skip_serializing_if = "OtherData::is_empty"
    )]
    pub other_data: OtherData,
}
