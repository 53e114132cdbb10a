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
    /// A line replay does not need that is not an event line of its own: a stack-trace
    /// entry, a function_graph line, the rest of a printk that spans lines, a tool's
    /// summary. Skipped and counted under `kind`.
    Other {
        /// What kind of line it is, in parentheses (`(stack trace)`, ...).
        kind: &'static str,
    },
}

/// The events whose bodies replay reads ([`parse_body`]): a line that names one of them
/// must parse, every other line may be skipped.
pub(crate) const NEEDED: &[&str] = &[
    "sched_switch",
    "sched_wakeup",
    "sched_wakeup_new",
    "sched_process_fork",
    "sched_process_exec",
    "sched_process_exit",
    "sched_process_free",
];

/// The kind under which stack-trace lines (`<stack trace>`, ` => func+0x1/0x2`) and
/// perf's call-chain lines are skipped.
pub const STACK: &str = "(stack trace)";
/// The kind under which function_graph tracer lines are skipped.
pub const FUNCTION_GRAPH: &str = "(function_graph tracer)";
/// The kind under which other lines with no event header are skipped (the rest of a
/// printk or trace_marker payload that spans lines, a tool's closing summary).
pub const UNSTRUCTURED: &str = "(line with no event header)";

/// The needed event a line names as `EVENT:` (after whitespace, `sched:` or `/* `), if
/// any: such a line is an event replay needs, so it must parse.
pub(crate) fn names_needed(line: &str) -> Option<&'static str> {
    NEEDED.iter().copied().find(|ev| {
        line.match_indices(ev).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + ev.len()..].chars().next();
            after == Some(':') && before.is_none_or(|c| c.is_whitespace() || c == ':')
        })
    })
}

/// A line that is no event line and names no needed event: what kind of line it is.
fn other_line(line: &str) -> Line {
    let t = line.trim_start();
    let kind = if t.starts_with("=> ")
        || line.starts_with('\t') && t.split_whitespace().next().is_some_and(is_hex)
    {
        STACK
    } else if graph_prefix(line).is_some() {
        FUNCTION_GRAPH
    } else {
        UNSTRUCTURED
    };
    Line::Other { kind }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A function_graph line's columns before its `|`: `[TIMESTAMP |] CPU) [TASK-PID |]`
/// (funcgraph-abstime, funcgraph-cpu, funcgraph-proc). Returns (timestamp, cpu, task,
/// the text after the columns) where the line has the CPU column.
fn graph_prefix(line: &str) -> Option<(Option<u64>, u32, Option<TaskRef>, &str)> {
    let mut rest = line.trim_start();
    let mut ts = None;
    if let Some((a, b)) = rest.split_once('|') {
        if let Some(t) = parse_ts(a.trim()) {
            ts = Some(t);
            rest = b.trim_start();
        }
    }
    let close = rest.find(')')?;
    let cpu = parse_u32(&rest[..close])?;
    let mut rest = rest[close + 1..].trim_start();
    let mut task = None;
    if let Some((a, b)) = rest.split_once('|') {
        if let Some((pid, tgid, comm)) = task_pid_tgid(a) {
            task = Some(TaskRef {
                pid,
                tgid,
                comm: comm.to_string(),
            });
            rest = b;
        }
    }
    Some((ts, cpu, task, rest))
}

/// An event in function_graph output, printed as a comment (`/* sched_switch: ... */`):
/// replayable where the line has its timestamp (funcgraph-abstime) and CPU.
fn graph_event(line: &str) -> Option<Result<Line, Expected>> {
    let (ts, cpu, task, rest) = graph_prefix(line)?;
    let open = rest.find("/* ")?;
    let comment = rest[open + 3..].trim_end().strip_suffix("*/")?.trim();
    let (event, body) = comment.split_once(':')?;
    if !NEEDED.contains(&event.trim()) {
        return Some(Ok(Line::Other {
            kind: FUNCTION_GRAPH,
        }));
    }
    let Some(ts) = ts else {
        return Some(Err(format!(
            "{}: a timestamp: function_graph output prints one only with options/funcgraph-abstime set",
            event.trim()
        )));
    };
    Some(event_line(ts, cpu, task, event.trim(), body.trim()))
}

/// ftrace's `raw` and `hex` output (`options/raw`, `options/hex`): `PID CPU TS type: ID`
/// with the event's id and none of its fields.
fn raw_or_hex(line: &str) -> bool {
    let mut tok = line.split_whitespace();
    let nums: Vec<&str> = tok.by_ref().take(3).collect();
    nums.len() == 3
        && nums.iter().all(|n| is_hex(n))
        && tok.next() == Some("type:")
        && tok.next().is_some_and(|t| parse_u32(t).is_some())
        && tok.next().is_none()
}

/// What a line holding binary data should have been.
pub(crate) const BINARY: &str = "text: this line holds binary data (ftrace's options/bin output, or a trace.dat or perf.data file: convert those with 'trace-cmd report' or 'perf script')";

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
    let (ev, body) = event_body(after, extra_token)?;
    Ok((ts, ev, body))
}

/// Splits `EVENT: BODY` (what follows a line's timestamp) into the event name and body.
/// Besides `EVENT:` it takes trace-cmd's `--ts-diff` column (`(+30)`) before the event,
/// ftrace's `<stack trace>` / `<user stack trace>` entries, and the function tracer's
/// `FUNCTION <-CALLER` with or without `sym-offset` (`f+0x4/0x80`) and `sym-addr`
/// (`f <ffffffff81234567>`), which come back as [`STACK`] and [`FUNCTION`].
fn event_body(after: &str, extra_token: bool) -> Result<(&str, &str), Expected> {
    let (mut ev, mut after) = split_token(after.trim_start());
    if ev.starts_with("(+") && ev.ends_with(')') {
        (ev, after) = split_token(after.trim_start());
    }
    if extra_token && !ev.ends_with(':') && ev.bytes().all(|b| b.is_ascii_digit()) {
        (ev, after) = split_token(after.trim_start());
    }
    if let Some(ev) = ev.strip_suffix(':').filter(|e| !e.is_empty()) {
        return Ok((ev, after.trim()));
    }
    let rest = after.trim();
    if (ev == "<stack" && rest == "trace>") || (ev == "<user" && rest == "stack trace>") {
        return Ok((STACK, ""));
    }
    // The function tracer's `FUNCTION <-CALLER` (or `FUNCTION() {` of function_graph).
    let ident = |t: &str| {
        !t.is_empty()
            && t.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'_' | b'.' | b'$' | b'(' | b')' | b'+' | b'/')
            })
    };
    let addr = |t: &str| {
        t.strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .is_some_and(is_hex)
    };
    // `FUNCTION [<ADDR>] [<-CALLER [<ADDR>]]`.
    let mut toks = rest.split_whitespace().peekable();
    let mut ok = ident(ev);
    if toks.peek().is_some_and(|t| addr(t)) {
        toks.next();
    }
    match toks.next() {
        None => {}
        Some("{") => ok &= toks.next().is_none(),
        Some(caller) => {
            ok &= caller.strip_prefix("<-").is_some_and(ident);
            if toks.peek().is_some_and(|t| addr(t)) {
                toks.next();
            }
            ok &= toks.next().is_none();
        }
    }
    if ok {
        return Ok((FUNCTION, rest));
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
        let Some((open, cpu, after)) = cpu_bracket(line, from) else {
            return latency_header(line);
        };
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

/// The header of the latency format (`options/latency-format`, `trace-cmd report -l`):
/// `COMM-PID CPU+FLAGS TIME: EVENT: BODY`, with the CPU number run into the flags
/// (`0d..2.`) and the time either `SECONDS.FRACTION` (trace-cmd) or microseconds since
/// the trace began with a delay mark (ftrace: `16436us!:`, `16364us :`).
fn latency_header(line: &str) -> Option<Result<Header<'_>, Expected>> {
    let mut at = 0;
    let mut tokens = Vec::new();
    for tok in line.split_whitespace() {
        let start = at + line[at..].find(tok)?;
        at = start + tok.len();
        tokens.push((start, tok));
    }
    for (i, &(start, tok)) in tokens.iter().enumerate().skip(1) {
        let digits = tok.bytes().take_while(u8::is_ascii_digit).count();
        let flags = &tok[digits..];
        if digits == 0
            || flags.len() > 7
            || !flags
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            continue;
        }
        let Some((pid, tgid, comm)) = task_pid_tgid(&line[..start]) else {
            continue;
        };
        let cpu = parse_u32(&tok[..digits])?;
        let &(ts_start, ts_tok) = tokens.get(i + 1)?;
        let (ts_ns, after) = if let Some(us) = ts_tok.find("us") {
            let mark = &ts_tok[us + 2..];
            let mut after = ts_start + ts_tok.len();
            if mark.is_empty() || mark.len() == 1 && !mark.ends_with(':') {
                // `16364us : ` or `16368us+ : `: the colon is a token of its own.
                let &(c, colon) = tokens.get(i + 2)?;
                if colon != ":" {
                    return None;
                }
                after = c + 1;
            } else if !mark.ends_with(':') || mark.len() > 2 {
                return None;
            }
            // `parse_ts` reads the number as seconds: microseconds are a millionth of that.
            let us_ns = parse_ts(&ts_tok[..us])? / 1_000_000;
            (us_ns, after)
        } else {
            let ts = parse_ts(ts_tok.strip_suffix(':')?)?;
            (ts, ts_start + ts_tok.len())
        };
        return Some(
            event_body(&line[after..], false).map(|(event, body)| Header {
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
    None
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
        Some(Ok(h)) => event_line(h.ts_ns, h.cpu, Some(h.current), h.event, h.body),
        Some(Err(e)) => match names_needed(line) {
            Some(_) => Err(e),
            None => Ok(other_line(line)),
        },
        None => headerless(line),
    }
}

/// A line with no ftrace event header: a function_graph line (with or without an event
/// in it), ftrace's raw or hex output (an error: it has no fields), or a line replay does
/// not need, unless it names a needed event.
pub(crate) fn headerless(line: &str) -> Result<Line, Expected> {
    if let Some(l) = graph_event(line) {
        return l;
    }
    if raw_or_hex(line) {
        return Err("an event with its fields: this is ftrace's raw or hex output (options/raw, options/hex), which prints each event's id and none of its fields; record with those options off".into());
    }
    match names_needed(line) {
        Some(ev) => Err(format!(
            "{ev}: an event line 'TASK-PID [CPU] TIMESTAMP: {ev}: FIELDS'"
        )),
        None => Ok(other_line(line)),
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
