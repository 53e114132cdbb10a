//! ftrace's `trace` text (`/sys/kernel/tracing/trace`), with or without the irq-flags
//! column (`d..2`), as in:
//!
//! ```text
//! # tracer: nop
//!           <idle>-0     [002] d..2    76.211523: sched_switch: prev_comm=swapper/2 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=sh next_pid=1642 next_prio=120
//! ```

use crate::fields::Expected;
use crate::text::{ftrace_line, Line};

/// Parses one line.
pub(crate) fn line(line: &str) -> Result<Line, Expected> {
    ftrace_line(line)
}
