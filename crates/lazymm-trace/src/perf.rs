//! `perf script` text of scheduler tracepoints (`perf record -e sched:sched_switch,...` or
//! `perf sched record`), as in:
//!
//! ```text
//!             perf  1234 [001] 12345.678901: sched:sched_switch: prev_comm=perf prev_pid=1234 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
//!  Web Content 30/31 [000] 12345.678950: sched:sched_wakeup: comm=a pid=5 prio=120 target_cpu=000
//! ```
//!
//! The task is `COMM TID` or, with `-F pid,tid,...`, `COMM PID/TID`; the comm may hold
//! spaces. Event names carry their subsystem (`sched:`); the body is the kernel's format
//! or trace-cmd's compact one (perf prints through the same libtraceevent plugins).

use crate::event::TaskRef;
use crate::fields::{parse_u32, Expected};
use crate::text::{cpu_bracket, event_line, headerless, names_needed, ts_event_body, Line};
use crate::{Sniff, TraceFormat};

/// `perf script` text.
pub(crate) struct Perf;

impl TraceFormat for Perf {
    const NAME: &'static str = "perf";
    type State = ();

    /// An event name with perf's subsystem prefix.
    fn sniff(line: &str) -> Sniff {
        Sniff::only_if(looks_like(line))
    }

    fn line(_: &mut (), l: &str) -> Result<Line, Expected> {
        line(l)
    }
}

/// Parses one line.
fn line(line: &str) -> Result<Line, Expected> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Line::Meta);
    }
    let mut from = 0;
    loop {
        let Some((open, cpu, after)) = cpu_bracket(line, from) else {
            // A call-chain line of `perf record -g` (`\tffffffff813b4dc5 func+0x175
            // ([kernel.kallsyms])`), or another line replay does not need.
            return match names_needed(line) {
                Some(ev) => Err(format!(
                    "{ev}: a perf script line 'COMM [PID/]TID [CPU] TIME: sched:{ev}: FIELDS'"
                )),
                None => headerless(line),
            };
        };
        if let Some(current) = task(&line[..open]) {
            let (ts, ev, body) = ts_event_body(&line[after..], true)?;
            let ev = ev.rsplit_once(':').map_or(ev, |(_, e)| e);
            return event_line(ts, cpu, current, ev, body);
        }
        from = open + 1;
    }
}

/// `COMM TID` or `COMM PID/TID`; perf prints `-1` for an id it no longer knows (a
/// thread that has exited), which names no task.
fn task(prefix: &str) -> Option<Option<TaskRef>> {
    let p = prefix.trim();
    let (comm, ids) = p.rsplit_once(|c: char| c.is_ascii_whitespace())?;
    let id = |s: &str| -> Option<Option<u32>> {
        if s == "-1" {
            Some(None)
        } else {
            parse_u32(s).map(Some)
        }
    };
    let (tgid, pid) = match ids.split_once('/') {
        Some((pid, tid)) => (id(pid)?, id(tid)?),
        None => (None, id(ids)?),
    };
    Some(pid.map(|pid| TaskRef {
        pid,
        tgid,
        comm: comm.trim().to_string(),
    }))
}

/// Whether a line looks like perf script's (an event name with a subsystem prefix).
fn looks_like(line: &str) -> bool {
    line.contains(" sched:sched_") || line.contains(" sched:sched_switch:")
}
