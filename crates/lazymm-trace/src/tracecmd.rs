//! `trace-cmd report` text: trace-cmd's header (`version = 6`, `cpus=6`), then ftrace-style
//! lines, with `sched_switch` either in raw fields with a numeric `prev_state`
//! (`trace-cmd report -R`, or events without a print plugin) or in the compact form of
//! trace-cmd's sched plugin (`sh:1642 [120] R ==> kworker/u12:1:46 [120]`); lost events
//! appear as `CPU 2: 120 events lost` or `CPU:2 [LOST 120 EVENTS]`.

use crate::fields::Expected;
use crate::text::{ftrace_line, Line};

/// Parses one line.
pub(crate) fn line(line: &str) -> Result<Line, Expected> {
    ftrace_line(line)
}
