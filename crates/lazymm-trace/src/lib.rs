//! Scheduler traces for lazymm: parsers for the text formats kernel developers record
//! (ftrace, Android atrace and systrace, `trace-cmd report`, `perf script`, babeltrace2
//! of LTTng), who-is-who (idle, kernel threads, processes) and the schedule each CPU ran.
//! It depends on no other lazymm crate: the replay host that drives the model with a
//! schedule is `lazymm-replay`.
//!
//! The parsers need nothing from the model: [`parse_str`] / [`read_file`] turn a trace
//! into [`Record`]s (timestamp in ns, CPU, line, [`TraceEvent`]), every other line
//! skipped and counted by kind in [`ParseStats`]: events replay does not read, function
//! and function_graph tracer lines, stack traces, payloads that span lines, whatever
//! output option the tracer had set. Only a line that names an event replay reads and
//! does not parse is an [`Error`] naming the file, line and what was expected (unless
//! [`Options::lenient`] is set, when it too is skipped and counted); so is a file that
//! is not text, or ftrace's raw and hex output, which carries no event fields. Timestamps that go backwards on one CPU are counted and
//! clamped (the CPU's order in the file is kept); lost-event markers are counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod event;
mod fields;
pub mod schedule;
pub mod tasks;
pub mod text;

mod atrace;
mod ftrace;
mod lttng;
mod perf;
mod systrace;
mod tracecmd;

pub use event::{PrevState, Record, TaskRef, TraceEvent};
pub use text::Line;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// One trace format: its name, how to tell it from a line, and its line parser. Each
/// format's file implements it once, and one line of `formats!` below lists it; from that
/// table come [`Format`], [`Format::ALL`], the names, [`detect`] and the parser dispatch,
/// so a format cannot be left out of any of them.
pub(crate) trait TraceFormat {
    /// The name on the command line (`--format`).
    const NAME: &'static str;
    /// What the line parser remembers from line to line.
    type State: Default;
    /// What one line says about whether a file is in this format.
    fn sniff(line: &str) -> Sniff;
    /// Parses one line.
    fn line(state: &mut Self::State, line: &str) -> Result<Line, fields::Expected>;
}

/// What a line says about a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// Nothing.
    No,
    /// It could be this format, if no format claims the line outright (ftrace's event
    /// line, which atrace, systrace and trace-cmd lines also are).
    Maybe,
    /// Only this format has such a line.
    Yes,
}

impl Sniff {
    /// [`Sniff::Yes`] when the line is one only this format has, else [`Sniff::No`].
    fn only_if(claims: bool) -> Sniff {
        if claims {
            Sniff::Yes
        } else {
            Sniff::No
        }
    }
}

macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// A trace format.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        impl Format {
            /// Every format, in the order `--format` lists them.
            pub const ALL: &'static [Format] = &[$(Format::$variant,)*];

            /// The name on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(Format::$variant => <$ty as TraceFormat>::NAME,)*
                }
            }

            fn sniff(self, line: &str) -> Sniff {
                match self {
                    $(Format::$variant => <$ty as TraceFormat>::sniff(line),)*
                }
            }
        }

        /// One format's line parser, with whatever state it keeps.
        enum LineParser {
            $($variant(<$ty as TraceFormat>::State),)*
        }

        impl LineParser {
            fn new(f: Format) -> LineParser {
                match f {
                    $(Format::$variant => LineParser::$variant(Default::default()),)*
                }
            }

            fn line(&mut self, l: &str) -> Result<Line, fields::Expected> {
                match self {
                    $(LineParser::$variant(s) => <$ty as TraceFormat>::line(s, l),)*
                }
            }
        }
    };
}

formats! {
    /// ftrace `trace` text, with or without the irq-flags column.
    Ftrace(ftrace::Ftrace),
    /// Android atrace text (ftrace text with a TGID column).
    Atrace(atrace::Atrace),
    /// Systrace HTML with the ftrace text embedded.
    Systrace(systrace::Systrace),
    /// `trace-cmd report` text.
    TraceCmd(tracecmd::TraceCmd),
    /// `perf script` text of scheduler tracepoints.
    Perf(perf::Perf),
    /// babeltrace2 text of an LTTng kernel trace.
    Lttng(lttng::Lttng),
}

impl Format {
    /// Looks a format up by name.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The valid names, comma-separated.
    pub fn names() -> String {
        Format::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The format, or `None` to detect it from the content.
    pub format: Option<Format>,
    /// Skip and count malformed lines instead of failing.
    pub lenient: bool,
}

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file could not be read (or decompressed).
    Io {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A line is not what its format allows.
    Malformed {
        /// The file.
        file: String,
        /// The line number (1-based).
        line: u64,
        /// What the line should have had.
        expected: String,
        /// The line (shortened).
        found: String,
    },
    /// The format could not be told from the content.
    UnknownFormat {
        /// The file.
        file: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { file, message } => write!(f, "{file}: {message}"),
            Error::Malformed {
                file,
                line,
                expected,
                found,
            } => write!(
                f,
                "{file}:{line}: expected {expected}; found '{found}' (--lenient skips such lines)"
            ),
            Error::UnknownFormat { file } => write!(
                f,
                "{file}: cannot tell the trace format from its content (give --format: {})",
                Format::names()
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A timestamp that went backwards on one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backwards {
    /// The CPU.
    pub cpu: u32,
    /// The line.
    pub line: u64,
    /// Its timestamp, ns.
    pub ts_ns: u64,
    /// The latest timestamp seen on that CPU before it, ns.
    pub before_ns: u64,
}

/// What the parser counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines read.
    pub lines: u64,
    /// Events used, by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Lines replay does not need, skipped: well-formed event lines by event name, and
    /// lines of other kinds under a name in parentheses (`(function tracer)`,
    /// `(stack trace)`, `(function_graph tracer)`, `(line with no event header)`); at most
    /// [`MAX_KINDS`] names, the rest under `(other)`.
    pub skipped: BTreeMap<String, u64>,
    /// Malformed lines skipped (with [`Options::lenient`]).
    pub malformed: u64,
    /// The first malformed line skipped, as the error it would have been.
    pub first_malformed: Option<Error>,
    /// Lost-event markers.
    pub lost_markers: u64,
    /// Events the markers say were lost (where they say how many).
    pub lost_events: u64,
    /// Timestamps that went backwards on their CPU (clamped to the CPU's latest).
    pub backwards: u64,
    /// The first few of them.
    pub first_backwards: Vec<Backwards>,
}

/// The most distinct skipped-event names counted one by one.
pub const MAX_KINDS: usize = 256;

impl ParseStats {
    /// How many events of `kind` (`sched_switch`, ...) were parsed.
    pub fn count(&self, kind: &str) -> u64 {
        self.events.get(kind).copied().unwrap_or(0)
    }

    fn skip(&mut self, kind: &str) {
        if let Some(n) = self.skipped.get_mut(kind) {
            *n += 1;
        } else if self.skipped.len() < MAX_KINDS {
            self.skipped.insert(kind.to_string(), 1);
        } else {
            *self.skipped.entry("(other)".into()).or_default() += 1;
        }
    }
}

/// A parsed trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The file name, for messages.
    pub file: String,
    /// The format (detected or forced).
    pub format: Option<Format>,
    /// The events, in timestamp order (stable: ties keep the file's order).
    pub records: Vec<Record>,
    /// The thread group of each pid, where any line said it.
    pub tgid_of: BTreeMap<u32, u32>,
    /// What was counted.
    pub stats: ParseStats,
}

impl Trace {
    /// The number of CPUs the trace shows (highest CPU number + 1).
    pub fn nr_cpus(&self) -> usize {
        self.records
            .iter()
            .map(|r| r.cpu as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Seconds from the first event to the last.
    pub fn seconds(&self) -> f64 {
        match (self.records.first(), self.records.last()) {
            (Some(a), Some(b)) => (b.ts_ns - a.ts_ns) as f64 / 1e9,
            _ => 0.0,
        }
    }
}

/// Reads a trace file (gzipped or not) and parses it.
pub fn read_file(path: &Path, opts: &Options) -> Result<Trace, Error> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        file: name.clone(),
        message: e.to_string(),
    })?;
    parse_bytes(&name, &bytes, opts)
}

/// Parses a trace from bytes, gunzipping them first if they are gzipped.
pub fn parse_bytes(name: &str, bytes: &[u8], opts: &Options) -> Result<Trace, Error> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::Io {
                file: name.to_string(),
                message: format!("cannot gunzip: {e}"),
            })?;
        return parse_str(name, &String::from_utf8_lossy(&out), opts);
    }
    parse_str(name, &String::from_utf8_lossy(bytes), opts)
}

/// Tells the format from the first lines of a trace: the first line that some format
/// claims outright decides (a systrace page line, trace-cmd's header, an atrace or perf
/// or babeltrace2 line), or else the first line that could be an ftrace-family event line.
pub fn detect(text: &str) -> Option<Format> {
    for line in text.lines().take(4000) {
        let mut maybe = None;
        for &f in Format::ALL {
            match f.sniff(line) {
                Sniff::Yes => return Some(f),
                Sniff::Maybe => maybe = maybe.or(Some(f)),
                Sniff::No => {}
            }
        }
        if maybe.is_some() {
            return maybe;
        }
    }
    None
}

fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push_str("...");
        t
    }
}

/// Parses trace text.
pub fn parse_str(name: &str, text: &str, opts: &Options) -> Result<Trace, Error> {
    if let Some(at) = text.find('\0') {
        // Not a trace at all, so not a line --lenient could skip.
        let line = text[..at].matches('\n').count() + 1;
        return Err(Error::Io {
            file: name.to_string(),
            message: format!("line {line}: expected {}", text::BINARY),
        });
    }
    let format = match opts.format.or_else(|| detect(text)) {
        Some(f) => f,
        None => {
            return Err(Error::UnknownFormat {
                file: name.to_string(),
            })
        }
    };
    let mut p = LineParser::new(format);
    let mut t = Trace {
        file: name.to_string(),
        format: Some(format),
        ..Trace::default()
    };
    let mut last_ts: BTreeMap<u32, u64> = BTreeMap::new();
    let mut clamp = |st: &mut ParseStats, cpu: u32, ts: u64, line: u64| -> u64 {
        let last = last_ts.entry(cpu).or_insert(0);
        if ts < *last {
            st.backwards += 1;
            if st.first_backwards.len() < 8 {
                st.first_backwards.push(Backwards {
                    cpu,
                    line,
                    ts_ns: ts,
                    before_ns: *last,
                });
            }
            *last
        } else {
            *last = ts;
            ts
        }
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    for (i, raw) in body.split('\n').enumerate() {
        let lineno = i as u64 + 1;
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        t.stats.lines += 1;
        match p.line(l).and_then(cpu_in_range) {
            Ok(Line::Meta) => {}
            Ok(Line::Other { kind }) => t.stats.skip(kind),
            Ok(Line::Lost { events, .. }) => {
                t.stats.lost_markers += 1;
                t.stats.lost_events = t.stats.lost_events.saturating_add(events.unwrap_or(0));
            }
            Ok(Line::Skip {
                kind,
                ts_ns,
                cpu,
                current,
            }) => {
                clamp(&mut t.stats, cpu, ts_ns, lineno);
                t.stats.skip(&kind);
                note_tgid(&mut t.tgid_of, current.as_ref());
            }
            Ok(Line::Event {
                ts_ns,
                cpu,
                current,
                mut event,
            }) => {
                let ts_ns = clamp(&mut t.stats, cpu, ts_ns, lineno);
                note_tgid(&mut t.tgid_of, current.as_ref());
                // The header's task is the one switched out: it carries the TGID column.
                if let (TraceEvent::Switch { prev, .. }, Some(c)) = (&mut event, &current) {
                    if prev.pid == c.pid && prev.tgid.is_none() {
                        prev.tgid = c.tgid;
                    }
                }
                for task in tasks_of(&event) {
                    note_tgid(&mut t.tgid_of, Some(task));
                }
                *t.stats.events.entry(event.kind()).or_default() += 1;
                t.records.push(Record {
                    ts_ns,
                    cpu,
                    line: lineno,
                    event,
                });
            }
            Err(expected) => {
                let err = Error::Malformed {
                    file: name.to_string(),
                    line: lineno,
                    expected,
                    found: shorten(l),
                };
                if !opts.lenient {
                    return Err(err);
                }
                t.stats.malformed += 1;
                if t.stats.first_malformed.is_none() {
                    t.stats.first_malformed = Some(err);
                }
            }
        }
    }
    // Merge the CPUs by time; ties (and each CPU's clamped run) keep the file's order.
    t.records.sort_by_key(|r| r.ts_ns);
    Ok(t)
}

/// One more than the highest CPU number a trace may name: `NR_CPUS` under x86-64's
/// `MAXSMP`, the largest any architecture's Kconfig allows as of 6.12 (powerpc's range
/// also ends at 8192). Whoever reads a trace may size per-CPU tables from the CPUs it
/// names, so a mangled number (a `cpu_id` of 4026531836) is a malformed line, not a
/// request for billions of CPUs.
pub const NR_CPUS_MAX: u32 = 8192;

/// The line, or what it should have had when a CPU it names is not below
/// [`NR_CPUS_MAX`].
fn cpu_in_range(line: Line) -> Result<Line, fields::Expected> {
    let cpus = match &line {
        Line::Event {
            cpu,
            event: TraceEvent::Wakeup { target_cpu, .. },
            ..
        } => [Some(*cpu), *target_cpu],
        Line::Event { cpu, .. } | Line::Skip { cpu, .. } => [Some(*cpu), None],
        Line::Lost { cpu, .. } => [*cpu, None],
        Line::Meta | Line::Other { .. } => [None, None],
    };
    match cpus.into_iter().flatten().find(|&c| c >= NR_CPUS_MAX) {
        Some(c) => Err(format!(
            "a CPU number below {NR_CPUS_MAX} (NR_CPUS at its largest), not {c}"
        )),
        None => Ok(line),
    }
}

fn note_tgid(map: &mut BTreeMap<u32, u32>, t: Option<&TaskRef>) {
    if let Some(TaskRef {
        pid, tgid: Some(g), ..
    }) = t
    {
        if *pid != 0 {
            map.insert(*pid, *g);
        }
    }
}

/// Every task an event names.
pub fn tasks_of(e: &TraceEvent) -> Vec<&TaskRef> {
    match e {
        TraceEvent::Switch { prev, next, .. } => vec![prev, next],
        TraceEvent::Fork { parent, child } => vec![parent, child],
        TraceEvent::Wakeup { task, .. }
        | TraceEvent::Exit { task }
        | TraceEvent::Exec { task, .. }
        | TraceEvent::Free { task }
        | TraceEvent::Statedump { task, .. } => vec![task],
    }
}
