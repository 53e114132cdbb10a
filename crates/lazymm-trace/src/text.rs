//! What the text formats of the ftrace family share: the line header
//! `TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: BODY`, timestamps, and the lines
//! that carry no event (comments, trace-cmd's header, lost-event markers).

use crate::event::{TaskRef, TraceEvent};
use crate::fields::{parse_body, parse_u32, Expected};

/// What one line of a trace says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An event replay uses.
    Event {
        /// Timestamp, ns.
        ts_ns: u64,
        /// The CPU.
        cpu: u32,
        /// The task the line header names (the one running on `cpu`), if it names one.
        current: Option<TaskRef>,
        /// The event.
        event: TraceEvent,
    },
    /// A well-formed event line of a kind replay does not use.
    Skip {
        /// The event name.
        kind: String,
        /// Timestamp, ns.
        ts_ns: u64,
        /// The CPU.
        cpu: u32,
        /// The task the line header names.
        current: Option<TaskRef>,
    },
    /// The tracer says it lost events here.
    Lost {
        /// On which CPU, if it says.
        cpu: Option<u32>,
        /// How many, if it says.
        events: Option<u64>,
    },
    /// A line with no event: a comment, a header, a blank line.
    Meta,
}

/// A timestamp `SECONDS[.FRACTION]` in nanoseconds (fraction digits beyond 9 dropped).
pub fn parse_ts(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || secs.len() > 11 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 18 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns: u64 = 0;
    for i in 0..9 {
        let d = frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as u64);
        ns = ns * 10 + d;
    }
    secs.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns)
}

/// The header of an ftrace-family event line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub current: TaskRef,
    pub cpu: u32,
    pub ts_ns: u64,
    pub event: &'a str,
    pub body: &'a str,
}

/// Finds the `[CPU]` bracket: `[` digits `]` followed by whitespace, with text before it.
/// Returns (bracket start, cpu, index after `]`).
pub(crate) fn cpu_bracket(line: &str, from: usize) -> Option<(usize, u32, usize)> {
    let b = line.as_bytes();
    let mut i = from;
    while let Some(off) = line.get(i..)?.find('[') {
        let open = i + off;
        let mut j = open + 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > open + 1
            && j < b.len()
            && b[j] == b']'
            && b.get(j + 1).is_none_or(|c| c.is_ascii_whitespace())
        {
            if let Some(cpu) = parse_u32(&line[open + 1..j]) {
                return Some((open, cpu, j + 1));
            }
        }
        i = open + 1;
    }
    None
}

/// Splits `TIMESTAMP: EVENT: BODY` (after an optional flags column) off `rest`.
/// `extra_token` allows one more token between the timestamp and the event (perf's
/// sample period).
pub(crate) fn ts_event_body(rest: &str, extra_token: bool) -> Result<(u64, &str, &str), Expected> {
    const TS: &str = "a timestamp 'SECONDS.FRACTION:' after the CPU";
    let (mut tok, mut after) = split_token(rest.trim_start());
    if !tok.ends_with(':') {
        // The irq-flags column (`d..2`, `dNh1.`): a short token with no colon.
        if tok.is_empty() || tok.len() > 8 || tok.contains(':') {
            return Err(TS.into());
        }
        (tok, after) = split_token(after.trim_start());
    }
    let ts_tok = tok.strip_suffix(':').ok_or(TS)?;
    let ts = parse_ts(ts_tok)
        .ok_or_else(|| format!("a timestamp 'SECONDS.FRACTION' (found '{ts_tok}')"))?;
    let (mut ev, mut after) = split_token(after.trim_start());
    if extra_token && !ev.ends_with(':') && ev.bytes().all(|b| b.is_ascii_digit()) {
        (ev, after) = split_token(after.trim_start());
    }
    if let Some(ev) = ev.strip_suffix(':').filter(|e| !e.is_empty()) {
        return Ok((ts, ev, after.trim()));
    }
    // The function tracer's `FUNCTION <-CALLER` (or `FUNCTION() {` of function_graph).
    let ident = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b'(' | b')'))
    };
    let rest = after.trim();
    if ident(ev) && (rest.is_empty() || rest == "{" || rest.strip_prefix("<-").is_some_and(ident)) {
        return Ok((ts, FUNCTION, rest));
    }
    Err(
        "an event name 'EVENT:' (or a function tracer's 'FUNCTION <-CALLER') after the timestamp"
            .into(),
    )
}

/// The kind under which function-tracer lines are skipped.
pub const FUNCTION: &str = "(function tracer)";

fn split_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Parses the header `TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT:`; `None` when
/// the line has no `[CPU]` after a `TASK-PID`.
pub(crate) fn ftrace_header(line: &str) -> Option<Result<Header<'_>, Expected>> {
    let mut from = 0;
    loop {
        let (open, cpu, after) = cpu_bracket(line, from)?;
        if let Some((pid, tgid, comm)) = task_pid_tgid(&line[..open]) {
            return Some(
                ts_event_body(&line[after..], false).map(|(ts_ns, event, body)| Header {
                    current: TaskRef {
                        pid,
                        tgid,
                        comm: comm.to_string(),
                    },
                    cpu,
                    ts_ns,
                    event,
                    body,
                }),
            );
        }
        from = open + 1;
    }
}

/// `comm-pid`, optionally followed by `(tgid)` / `( tgid)` / `(-----)`.
fn task_pid_tgid(prefix: &str) -> Option<(u32, Option<u32>, &str)> {
    let p = prefix.trim();
    let (p, tgid) = match p.strip_suffix(')') {
        Some(inner) => {
            let open = inner.rfind('(')?;
            let t = inner[open + 1..].trim();
            let tgid = if t.bytes().all(|b| b == b'-') {
                None
            } else {
                Some(parse_u32(t)?)
            };
            (inner[..open].trim_end(), tgid)
        }
        None => (p, None),
    };
    let (comm, pid) = p.rsplit_once('-')?;
    Some((parse_u32(pid)?, tgid, comm.trim_start()))
}

/// The lines of the ftrace family that carry no event, or a lost-event marker.
pub(crate) fn meta_line(line: &str) -> Option<Line> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Some(Line::Meta);
    }
    if t.starts_with("version = ")
        || t.starts_with("cpus=")
        || t.starts_with("CPU ") && t.ends_with(" is empty")
    {
        return Some(Line::Meta);
    }
    // `CPU:3 [LOST 120 EVENTS]`, `CPU 3 [LOST 120 EVENTS]`, `CPU 3: 120 events lost`.
    let rest = t.strip_prefix("CPU:").or_else(|| t.strip_prefix("CPU "))?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let cpu = parse_u32(&rest[..digits]);
    let tail = rest[digits..].trim_start_matches(':').trim();
    let n = |s: &str| s.trim().parse::<u64>().ok();
    if let Some(x) = tail
        .strip_prefix("[LOST ")
        .and_then(|x| x.strip_suffix(" EVENTS]"))
    {
        return Some(Line::Lost { cpu, events: n(x) });
    }
    if let Some(x) = tail.strip_suffix(" events lost") {
        return Some(Line::Lost { cpu, events: n(x) });
    }
    if tail.contains("LOST") || tail.contains("lost") {
        return Some(Line::Lost { cpu, events: None });
    }
    None
}

/// One line of ftrace-family text: a meta line, or an event line, whose body is
/// parsed for the events replay uses.
pub(crate) fn ftrace_line(line: &str) -> Result<Line, Expected> {
    if let Some(m) = meta_line(line) {
        return Ok(m);
    }
    match ftrace_header(line) {
        None => Err("an event line 'TASK-PID [CPU] TIMESTAMP: EVENT: FIELDS', a '#' comment or a blank line".into()),
        Some(Err(e)) => Err(e),
        Some(Ok(h)) => event_line(h.ts_ns, h.cpu, Some(h.current), h.event, h.body),
    }
}

/// Turns a parsed header and body into a [`Line`].
pub(crate) fn event_line(
    ts_ns: u64,
    cpu: u32,
    current: Option<TaskRef>,
    event: &str,
    body: &str,
) -> Result<Line, Expected> {
    match parse_body(event, body) {
        Ok(Some(event)) => Ok(Line::Event {
            ts_ns,
            cpu,
            current,
            event,
        }),
        Ok(None) => Ok(Line::Skip {
            kind: event.to_string(),
            ts_ns,
            cpu,
            current,
        }),
        Err(e) => Err(format!("{event}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_ts("76.211513"), Some(76_211_513_000));
        assert_eq!(parse_ts("0.0"), Some(0));
        assert_eq!(parse_ts("1.123456789123"), Some(1_123_456_789));
        assert_eq!(parse_ts("12"), Some(12_000_000_000));
        assert_eq!(parse_ts("1.2.3"), None);
        assert_eq!(parse_ts(""), None);
        assert_eq!(parse_ts("99999999999999999999.0"), None);
    }

    #[test]
    fn headers_with_and_without_flags_and_tgid() {
        let h = ftrace_header("   <...>-1701  [001]    76.211513: sched_switch: x")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.current.pid, h.current.comm.as_str(), h.cpu),
            (1701, "<...>", 1)
        );
        assert_eq!(
            (h.ts_ns, h.event, h.body),
            (76_211_513_000, "sched_switch", "x")
        );
        let h = ftrace_header("  bash-1977  [000] d..2  4.5: sched_wakeup: y")
            .unwrap()
            .unwrap();
        assert_eq!((h.current.pid, h.event), (1977, "sched_wakeup"));
        let h = ftrace_header(" surface flinger-589   (  580) [003] d..2  1.0: e: z")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.current.pid, h.current.tgid, h.current.comm.as_str()),
            (589, Some(580), "surface flinger")
        );
        let h = ftrace_header("  kworker/0:1-9 (-----) [003] ....  1.0: e: z")
            .unwrap()
            .unwrap();
        assert_eq!(h.current.tgid, None);
        assert!(ftrace_header("no header here").is_none());
    }

    #[test]
    fn lost_markers() {
        assert_eq!(
            meta_line("CPU:3 [LOST 120 EVENTS]"),
            Some(Line::Lost {
                cpu: Some(3),
                events: Some(120)
            })
        );
        assert_eq!(
            meta_line("CPU 2: 7 events lost"),
            Some(Line::Lost {
                cpu: Some(2),
                events: Some(7)
            })
        );
        assert_eq!(meta_line("CPU 0 is empty"), Some(Line::Meta));
    }
}
