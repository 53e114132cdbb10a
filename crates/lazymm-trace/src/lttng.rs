//! babeltrace2 text of LTTng kernel traces (`babeltrace2 TRACE_DIR`), as in:
//!
//! ```text
//! [10:01:02.123456789] (+0.000001234) host sched_switch: { cpu_id = 1 }, { prev_comm = "bash", prev_tid = 1234, prev_prio = 20, prev_state = 1, next_comm = "swapper/1", next_tid = 0, next_prio = 20 }
//! ```
//!
//! The timestamp is wall-clock time of day (the default), seconds (`--clock-seconds`) or
//! a date and time (`--clock-date`). The first field group is the packet context
//! (`cpu_id`); an optional event context (`procname`, `pid`, `tid`, added with
//! `lttng add-context`) names the current task; the last group is the payload. Enums
//! print as `( "TASK_INTERRUPTIBLE" : container = 1 )`.

use crate::event::{PrevState, TaskRef, TraceEvent};
use crate::fields::{parse_u32, Expected};
use crate::text::{parse_ts, Line};
use crate::{Sniff, TraceFormat};

/// A field value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// A quoted string, unescaped.
    Str(String),
    /// An enum: its label (if any) and its number.
    Enum(Option<String>, String),
    /// A bare token (a number).
    Raw(String),
    /// An array or a structure (not used).
    Nested,
}

impl Value {
    fn number(&self) -> Option<&str> {
        match self {
            Value::Raw(s) | Value::Enum(_, s) => Some(s),
            _ => None,
        }
    }
}

type Group = Vec<(String, Value)>;

/// babeltrace2 text of an LTTng kernel trace.
pub(crate) struct Lttng;

impl TraceFormat for Lttng {
    const NAME: &'static str = "lttng";
    type State = ();

    /// babeltrace2's `[TIME] ... { cpu_id = N }`.
    fn sniff(line: &str) -> Sniff {
        Sniff::only_if(looks_like(line))
    }

    fn line(_: &mut (), l: &str) -> Result<Line, Expected> {
        line(l)
    }
}

/// Parses one line.
pub(crate) fn line(line: &str) -> Result<Line, Expected> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Line::Meta);
    }
    let rest = t
        .strip_prefix('[')
        .ok_or("a babeltrace2 line '[TIME] (+DELTA) HOST EVENT: { cpu_id = N }, { FIELDS }'")?;
    let (ts, rest) = rest.split_once(']').ok_or("']' after the timestamp")?;
    let ts_ns = timestamp(ts.trim()).ok_or_else(|| {
        format!(
            "a timestamp 'HH:MM:SS.NS', 'SECONDS.NS' or 'YYYY-MM-DD HH:MM:SS.NS' (found '{ts}')"
        )
    })?;
    let mut rest = rest.trim_start();
    if rest.starts_with("(+") {
        let close = rest.find(')').ok_or("')' after the delta")?;
        rest = rest[close + 1..].trim_start();
    }
    let brace = rest
        .find('{')
        .ok_or("'{ cpu_id = N }' after the event name")?;
    let head = rest[..brace].trim_end();
    let name = head
        .rsplit(|c: char| c.is_ascii_whitespace())
        .next()
        .and_then(|n| n.strip_suffix(':'))
        .filter(|n| !n.is_empty())
        .ok_or("an event name 'EVENT:' before the fields")?;
    let groups = groups(&rest[brace..])?;
    let cpu = groups
        .iter()
        .find_map(|g| find(g, "cpu_id"))
        .and_then(Value::number)
        .and_then(parse_u32)
        .ok_or("'cpu_id = N' in the packet context")?;
    let payload: &Group = groups.last().ok_or("a payload '{ ... }'")?;
    // An event context naming the current task, if the session added one.
    let current = groups
        .iter()
        .find(|g| {
            find(g, "tid").is_some() && find(g, "cpu_id").is_none() && !std::ptr::eq(*g, payload)
        })
        .and_then(|g| {
            let pid = find(g, "tid").and_then(Value::number).and_then(parse_u32)?;
            Some(TaskRef {
                pid,
                tgid: find(g, "pid").and_then(Value::number).and_then(parse_u32),
                comm: string(g, "procname").unwrap_or_default(),
            })
        });
    let event = match name {
        "sched_switch" => {
            let state = find(payload, "prev_state").ok_or("prev_state = N")?;
            let prev_state = match state {
                Value::Enum(Some(label), n) => PrevState::parse(n).or_else(|| state_label(label)),
                v => v.number().and_then(PrevState::parse),
            }
            .ok_or("prev_state = <number or task-state enum>")?;
            let mut prev = task(payload, "prev_comm", "prev_tid")?;
            if let Some(c) = &current {
                if c.pid == prev.pid {
                    prev.tgid = c.tgid;
                }
            }
            TraceEvent::Switch {
                prev,
                prev_state,
                next: task(payload, "next_comm", "next_tid")?,
            }
        }
        "sched_wakeup" | "sched_wakeup_new" => TraceEvent::Wakeup {
            task: task(payload, "comm", "tid")?,
            target_cpu: find(payload, "target_cpu")
                .and_then(Value::number)
                .and_then(parse_u32),
            new: name == "sched_wakeup_new",
        },
        "sched_process_fork" => {
            let mut parent = task(payload, "parent_comm", "parent_tid")?;
            parent.tgid = opt_num(payload, "parent_pid");
            let mut child = task(payload, "child_comm", "child_tid")?;
            child.tgid = opt_num(payload, "child_pid");
            TraceEvent::Fork { parent, child }
        }
        "sched_process_exit" => TraceEvent::Exit {
            task: task(payload, "comm", "tid")?,
        },
        "sched_process_free" => TraceEvent::Free {
            task: task(payload, "comm", "tid")?,
        },
        "sched_process_exec" => {
            let filename = string(payload, "filename").ok_or("filename = \"...\"")?;
            let tid = num(payload, "tid")?;
            let comm = filename.rsplit('/').next().unwrap_or("").to_string();
            TraceEvent::Exec {
                task: TaskRef::new(tid, &comm),
                old_pid: opt_num(payload, "old_tid"),
                filename,
            }
        }
        "lttng_statedump_process_state" => {
            let mut t = task(payload, "name", "tid")?;
            t.tgid = opt_num(payload, "pid");
            let kthread = match find(payload, "type") {
                Some(Value::Enum(Some(label), n)) => label.contains("KERNEL") || n == "1",
                Some(v) => v.number() == Some("1"),
                None => false,
            };
            TraceEvent::Statedump {
                task: t,
                ppid: opt_num(payload, "ppid"),
                kthread,
            }
        }
        other => {
            return Ok(Line::Skip {
                kind: other.to_string(),
                ts_ns,
                cpu,
                current,
            })
        }
    };
    Ok(Line::Event {
        ts_ns,
        cpu,
        current,
        event,
    })
}

fn state_label(label: &str) -> Option<PrevState> {
    Some(if label.contains("DEAD") || label.contains("ZOMBIE") {
        PrevState::Dead
    } else if label == "TASK_RUNNING" || label.contains("PREEMPT") {
        PrevState::Runnable
    } else {
        PrevState::Blocked
    })
}

fn find<'g>(g: &'g Group, key: &str) -> Option<&'g Value> {
    g.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn string(g: &Group, key: &str) -> Option<String> {
    match find(g, key)? {
        Value::Str(s) => Some(s.clone()),
        Value::Raw(s) => Some(s.clone()),
        _ => None,
    }
}

fn opt_num(g: &Group, key: &str) -> Option<u32> {
    find(g, key).and_then(Value::number).and_then(parse_u32)
}

fn num(g: &Group, key: &str) -> Result<u32, Expected> {
    opt_num(g, key).ok_or_else(|| format!("{key} = <number>"))
}

fn task(g: &Group, comm: &str, tid: &str) -> Result<TaskRef, Expected> {
    Ok(TaskRef::new(
        num(g, tid)?,
        &string(g, comm).unwrap_or_default(),
    ))
}

/// `[HH:MM:SS.NS]`, `[SECONDS.NS]` or `[YYYY-MM-DD HH:MM:SS.NS]` in ns.
fn timestamp(s: &str) -> Option<u64> {
    if let Some((date, time)) = s.split_once(' ') {
        let mut it = date.split('-');
        let y: i64 = it.next()?.parse().ok()?;
        let m: u32 = it.next()?.parse().ok()?;
        let d: u32 = it.next()?.parse().ok()?;
        if it.next().is_some()
            || !(1..=12).contains(&m)
            || !(1..=31).contains(&d)
            || !(1970..=9999).contains(&y)
        {
            return None;
        }
        let days = days_from_civil(y, m, d);
        return u64::try_from(days)
            .ok()?
            .checked_mul(86_400_000_000_000)?
            .checked_add(time_of_day(time)?);
    }
    if s.contains(':') {
        return time_of_day(s);
    }
    parse_ts(s)
}

fn time_of_day(s: &str) -> Option<u64> {
    let mut it = s.splitn(3, ':');
    let h: u64 = crate::fields::parse_u32(it.next()?)?.into();
    let m: u64 = crate::fields::parse_u32(it.next()?)?.into();
    let secs = parse_ts(it.next()?)?;
    if h > 23 || m > 59 || secs >= 61_000_000_000 {
        return None;
    }
    Some((h * 60 + m) * 60_000_000_000 + secs)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `{ a = 1, b = "x" }, { ... }` into groups.
fn groups(s: &str) -> Result<Vec<Group>, Expected> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        skip_ws(b, &mut i);
        if i >= b.len() {
            break;
        }
        if b[i] != b'{' {
            return Err(format!(
                "'{{' to open a field group (found '{}')",
                preview(s, i)
            ));
        }
        i += 1;
        let mut g = Group::new();
        loop {
            skip_ws(b, &mut i);
            match b.get(i) {
                None => return Err("'}' to close a field group".into()),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                Some(b',') => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let start = i;
            while i < b.len() && b[i] != b'=' && b[i] != b'}' && b[i] != b',' {
                i += 1;
            }
            if b.get(i) != Some(&b'=') {
                return Err(format!("'name = value' (found '{}')", preview(s, start)));
            }
            let key = s[start..i].trim().to_string();
            i += 1;
            skip_ws(b, &mut i);
            let v = value(s, &mut i)?;
            g.push((key, v));
        }
        out.push(g);
        skip_ws(b, &mut i);
        if b.get(i) == Some(&b',') {
            i += 1;
        }
    }
    Ok(out)
}

fn preview(s: &str, i: usize) -> String {
    s.get(i..).unwrap_or("").chars().take(20).collect()
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn value(s: &str, i: &mut usize) -> Result<Value, Expected> {
    let b = s.as_bytes();
    match b.get(*i) {
        Some(b'"') => Ok(Value::Str(quoted(s, i)?)),
        Some(b'(') => {
            // `( "LABEL" : container = N )` or `( <unknown> : container = N )`.
            let start = *i;
            skip_balanced(s, i, b'(', b')')?;
            let inner = &s[start + 1..*i - 1];
            let label = inner.split_once(':').and_then(|(l, _)| {
                let l = l.trim();
                l.strip_prefix('"')
                    .and_then(|l| l.strip_suffix('"'))
                    .map(str::to_string)
            });
            let n = inner
                .rsplit_once('=')
                .map(|(_, n)| n.trim().to_string())
                .ok_or("an enum '( \"LABEL\" : container = N )'")?;
            Ok(Value::Enum(label, n))
        }
        Some(b'[') => {
            skip_balanced(s, i, b'[', b']')?;
            Ok(Value::Nested)
        }
        Some(b'{') => {
            skip_balanced(s, i, b'{', b'}')?;
            Ok(Value::Nested)
        }
        _ => {
            let start = *i;
            while *i < b.len() && b[*i] != b',' && b[*i] != b'}' {
                *i += 1;
            }
            Ok(Value::Raw(s[start..*i].trim().to_string()))
        }
    }
}

fn quoted(s: &str, i: &mut usize) -> Result<String, Expected> {
    let b = s.as_bytes();
    *i += 1;
    let mut out = String::new();
    let mut seg = *i;
    while *i < b.len() {
        match b[*i] {
            b'\\' => {
                out.push_str(&s[seg..*i]);
                *i += 1;
                if let Some(c) = s[(*i).min(s.len())..].chars().next() {
                    out.push(c);
                    *i += c.len_utf8();
                }
                seg = *i;
            }
            b'"' => {
                out.push_str(&s[seg..*i]);
                *i += 1;
                return Ok(out);
            }
            _ => *i += 1,
        }
    }
    Err("a closing '\"'".into())
}

/// Skips a balanced `open ... close` (quotes respected); `*i` ends after `close`.
fn skip_balanced(s: &str, i: &mut usize, open: u8, close: u8) -> Result<(), Expected> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    while *i < b.len() {
        match b[*i] {
            b'"' => {
                quoted(s, i)?;
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    *i += 1;
                    return Ok(());
                }
            }
            _ => {}
        }
        *i += 1;
    }
    Err(format!("a closing '{}'", close as char))
}

/// Whether a line looks like babeltrace2's.
fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('[') && t.contains("{ cpu_id = ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_three_clocks() {
        assert_eq!(timestamp("00:00:01.000000002"), Some(1_000_000_002));
        assert_eq!(timestamp("1.5"), Some(1_500_000_000));
        assert_eq!(
            timestamp("1970-01-02 00:00:00.000000001"),
            Some(86_400_000_000_001)
        );
        assert_eq!(timestamp("25:00:00.0"), None);
    }

    #[test]
    fn enum_state_and_context() {
        let l = line(r#"[1.0] (+?.?????????) h sched_switch: { cpu_id = 3 }, { procname = "a b", pid = 10, tid = 11 }, { prev_comm = "a b", prev_tid = 11, prev_prio = 20, prev_state = ( "EXIT_DEAD" : container = 16 ), next_comm = "swapper/3", next_tid = 0, next_prio = 20 }"#).unwrap();
        let Line::Event {
            cpu,
            event:
                TraceEvent::Switch {
                    prev,
                    prev_state,
                    next,
                },
            ..
        } = l
        else {
            panic!("{l:?}")
        };
        assert_eq!(cpu, 3);
        assert_eq!(
            (prev.pid, prev.tgid, prev.comm.as_str()),
            (11, Some(10), "a b")
        );
        assert_eq!(prev_state, PrevState::Dead);
        assert_eq!(next.pid, 0);
    }
}
