//! `trace-cmd report` text: trace-cmd's header (`version = 6`, `cpus=6`), then ftrace-style
//! lines, with `sched_switch` either in raw fields with a numeric `prev_state`
//! (`trace-cmd report -R`, or events without a print plugin) or in the compact form of
//! trace-cmd's sched plugin (`sh:1642 [120] R ==> kworker/u12:1:46 [120]`); lost events
//! appear as `CPU 2: 120 events lost` or `CPU:2 [LOST 120 EVENTS]`.

use crate::fields::Expected;
use crate::text::{ftrace_line, Line};
use crate::{Sniff, TraceFormat};

/// `trace-cmd report` text.
pub(crate) struct TraceCmd;

impl TraceFormat for TraceCmd {
    const NAME: &'static str = "trace-cmd";
    type State = ();

    /// trace-cmd's header (`version = 6`, `cpus=6`).
    fn sniff(line: &str) -> Sniff {
        let t = line.trim();
        Sniff::only_if(t.starts_with("version = ") || t.starts_with("cpus="))
    }

    fn line(_: &mut (), line: &str) -> Result<Line, Expected> {
        ftrace_line(line)
    }
}
