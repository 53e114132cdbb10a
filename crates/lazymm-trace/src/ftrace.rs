//! ftrace's `trace` text (`/sys/kernel/tracing/trace`), with or without the irq-flags
//! column (`d..2`), as in:
//!
//! ```text
//! # tracer: nop
//!           <idle>-0     [002] d..2    76.211523: sched_switch: prev_comm=swapper/2 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=sh next_pid=1642 next_prio=120
//! ```

use crate::fields::Expected;
use crate::text::{ftrace_header, ftrace_line, headerless, Line};
use crate::{Sniff, TraceFormat};

/// ftrace's `trace` text.
pub(crate) struct Ftrace;

impl TraceFormat for Ftrace {
    const NAME: &'static str = "ftrace";
    type State = ();

    /// ftrace's first line (`# tracer: nop`) or an event line in any of its output
    /// options could be ftrace (atrace, systrace and trace-cmd have them too); so could a
    /// raw or hex line, which the parser then rejects by name.
    fn sniff(line: &str) -> Sniff {
        let t = line.trim_start();
        if t.starts_with("# tracer: ") {
            return Sniff::Maybe;
        }
        if t.starts_with('#') {
            return Sniff::No;
        }
        match ftrace_header(line) {
            Some(Ok(_)) => Sniff::Maybe,
            _ => match headerless(line) {
                Err(_) | Ok(Line::Event { .. }) => Sniff::Maybe,
                Ok(_) => Sniff::No,
            },
        }
    }

    fn line(_: &mut (), line: &str) -> Result<Line, Expected> {
        ftrace_line(line)
    }
}
