//! The bodies of the scheduler events in the text formats that print them with the
//! kernel's own format strings (ftrace, atrace, systrace, trace-cmd, perf): `key=value`
//! fields, and trace-cmd's compact `comm:pid [prio] S ==> comm:pid [prio]` form.

use crate::event::{PrevState, TaskRef, TraceEvent};

/// What a malformed line should have had.
pub type Expected = String;

/// The `key=value` fields of a body, for the keys in `allowed`. A key starts a field only
/// at the start of the body or after whitespace, so a comm with spaces stays whole: each
/// value runs to the next field.
pub(crate) fn fields<'a>(body: &'a str, allowed: &[&str]) -> Vec<(&'a str, &'a str)> {
    let bytes = body.as_bytes();
    let mut starts: Vec<(usize, usize, &'a str)> = Vec::new(); // (key start, value start, key)
    let mut i = 0;
    while i < bytes.len() {
        if i == 0 || bytes[i - 1].is_ascii_whitespace() {
            if let Some(k) = allowed
                .iter()
                .find(|k| body[i..].starts_with(**k) && bytes.get(i + k.len()) == Some(&b'='))
            {
                starts.push((i, i + k.len() + 1, &body[i..i + k.len()]));
                i += k.len() + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &(_, vstart, key)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(body.len(), |s| s.0);
        out.push((key, body[vstart..end].trim()));
    }
    out
}

fn get<'a>(f: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn num(f: &[(&str, &str)], key: &str) -> Result<u32, Expected> {
    let v = get(f, key).ok_or_else(|| format!("{key}=<number>"))?;
    parse_u32(v).ok_or_else(|| format!("{key}=<number> (found '{v}')"))
}

fn text(f: &[(&str, &str)], key: &str) -> Result<String, Expected> {
    get(f, key)
        .map(str::to_string)
        .ok_or_else(|| format!("{key}=<text>"))
}

/// A decimal number (leading zeros allowed, as in `target_cpu=002`).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// The body of one of the events replay uses, by event name; `Ok(None)` for any other
/// event (the caller skips and counts it).
pub(crate) fn parse_body(event: &str, body: &str) -> Result<Option<TraceEvent>, Expected> {
    let ev = match event {
        "sched_switch" => switch(body)?,
        "sched_wakeup" | "sched_wakeup_new" => wakeup(body, event == "sched_wakeup_new")?,
        "sched_process_fork" => {
            let f = fields(body, &["comm", "pid", "child_comm", "child_pid"]);
            TraceEvent::Fork {
                parent: TaskRef::new(num(&f, "pid")?, &text(&f, "comm")?),
                child: TaskRef::new(num(&f, "child_pid")?, &text(&f, "child_comm")?),
            }
        }
        "sched_process_exit" | "sched_process_free" => {
            let f = fields(body, &["comm", "pid", "prio", "group_dead"]);
            let task = TaskRef::new(num(&f, "pid")?, &text(&f, "comm")?);
            if event == "sched_process_exit" {
                TraceEvent::Exit { task }
            } else {
                TraceEvent::Free { task }
            }
        }
        "sched_process_exec" => {
            let f = fields(body, &["filename", "pid", "old_pid"]);
            let filename = text(&f, "filename")?;
            let comm = filename.rsplit('/').next().unwrap_or("").to_string();
            TraceEvent::Exec {
                task: TaskRef::new(num(&f, "pid")?, &comm),
                old_pid: get(&f, "old_pid").and_then(parse_u32),
                filename,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(ev))
}

fn switch(body: &str) -> Result<TraceEvent, Expected> {
    if body.contains("prev_pid=") {
        let f = fields(
            body,
            &[
                "prev_comm",
                "prev_pid",
                "prev_prio",
                "prev_state",
                "next_comm",
                "next_pid",
                "next_prio",
            ],
        );
        let state = get(&f, "prev_state").ok_or("prev_state=<state>")?;
        // The `==>` of the kernel's format string ends the prev_state value.
        let state = state.trim_end_matches("==>").trim();
        let prev_state = PrevState::parse(state)
            .ok_or_else(|| format!("prev_state=<R, S, D, X, ... or a number> (found '{state}')"))?;
        return Ok(TraceEvent::Switch {
            prev: TaskRef::new(num(&f, "prev_pid")?, &text(&f, "prev_comm")?),
            prev_state,
            next: TaskRef::new(num(&f, "next_pid")?, &text(&f, "next_comm")?),
        });
    }
    // trace-cmd's compact form: `comm:pid [prio] S ==> comm:pid [prio]`.
    let (prev, next) = body
        .split_once("==>")
        .ok_or("'prev_comm=.. prev_pid=..' or 'comm:pid [prio] S ==> comm:pid [prio]'")?;
    let (prev, rest) = compact_task(prev)?;
    let state = rest.trim();
    let prev_state = PrevState::parse(state)
        .ok_or_else(|| format!("a task state before '==>' (found '{state}')"))?;
    let (next, _) = compact_task(next)?;
    Ok(TraceEvent::Switch {
        prev,
        prev_state,
        next,
    })
}

/// `comm:pid [prio]` and what follows it.
fn compact_task(s: &str) -> Result<(TaskRef, &str), Expected> {
    let s = s.trim_start();
    let open = s.rfind(" [").ok_or("'comm:pid [prio]'")?;
    let (head, tail) = s.split_at(open);
    let close = tail.find(']').ok_or("'comm:pid [prio]'")?;
    let (comm, pid) = head.rsplit_once(':').ok_or("'comm:pid [prio]'")?;
    let pid =
        parse_u32(pid).ok_or_else(|| format!("'comm:pid' with a numeric pid (found '{head}')"))?;
    Ok((TaskRef::new(pid, comm.trim()), &tail[close + 1..]))
}

fn wakeup(body: &str, new: bool) -> Result<TraceEvent, Expected> {
    if body.contains("pid=") {
        let f = fields(body, &["comm", "pid", "prio", "success", "target_cpu"]);
        return Ok(TraceEvent::Wakeup {
            task: TaskRef::new(num(&f, "pid")?, &text(&f, "comm")?),
            target_cpu: get(&f, "target_cpu").and_then(parse_u32),
            new,
        });
    }
    // Compact: `comm:pid [prio] success=1 CPU:002`.
    let (task, rest) = compact_task(body)?;
    let target_cpu = rest
        .split_whitespace()
        .find_map(|t| t.strip_prefix("CPU:"))
        .and_then(parse_u32);
    Ok(TraceEvent::Wakeup {
        task,
        target_cpu,
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_equals_stays_whole() {
        let f = fields(
            "prev_comm=Web Content prev_pid=7 prev_prio=120 prev_state=S ==> next_comm=a=b next_pid=0 next_prio=120",
            &["prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid", "next_prio"],
        );
        assert_eq!(get(&f, "prev_comm"), Some("Web Content"));
        assert_eq!(get(&f, "next_comm"), Some("a=b"));
        assert_eq!(get(&f, "prev_state"), Some("S ==>"));
    }

    #[test]
    fn compact_switch_with_colon_in_comm() {
        let e = switch("kworker/u12:1:46 [120] R+ ==> sh:1642 [120]").unwrap();
        let TraceEvent::Switch {
            prev,
            prev_state,
            next,
        } = e
        else {
            panic!()
        };
        assert_eq!((prev.comm.as_str(), prev.pid), ("kworker/u12:1", 46));
        assert_eq!(prev_state, PrevState::Runnable);
        assert_eq!((next.comm.as_str(), next.pid), ("sh", 1642));
    }

    #[test]
    fn bad_pid_names_the_field() {
        let e = switch("prev_comm=a prev_pid=x prev_prio=1 prev_state=S ==> next_comm=b next_pid=1 next_prio=1");
        assert!(e.unwrap_err().contains("prev_pid"));
    }
}
