//! Android `atrace` text: ftrace text with a TGID column after `TASK-PID`, preceded by
//! atrace's own `capturing trace... done` and `TRACE:` lines:
//!
//! ```text
//! TRACE:
//! #           TASK-PID    TGID   CPU#  ||||    TIMESTAMP  FUNCTION
//!  surfaceflinger-589   (  589) [003] d..2  1234.567890: sched_switch: prev_comm=...
//! ```

use crate::fields::Expected;
use crate::text::{ftrace_line, Line};
use crate::{Sniff, TraceFormat};

/// Android atrace text.
pub(crate) struct Atrace;

impl TraceFormat for Atrace {
    const NAME: &'static str = "atrace";
    type State = ();

    /// atrace's own lines, or the TGID column.
    fn sniff(line: &str) -> Sniff {
        let t = line.trim();
        Sniff::only_if(t == "TRACE:" || t.starts_with("capturing trace") || has_tgid_column(line))
    }

    fn line(_: &mut (), line: &str) -> Result<Line, Expected> {
        let t = line.trim();
        if t == "TRACE:" || t.starts_with("capturing trace") {
            return Ok(Line::Meta);
        }
        ftrace_line(line)
    }
}

/// Whether a line shows the TGID column (`TASK-PID (TGID) [CPU]`).
pub(crate) fn has_tgid_column(line: &str) -> bool {
    if line.trim_start().starts_with('#') {
        return line.contains("TGID");
    }
    let Some((open, _, _)) = crate::text::cpu_bracket(line, 0) else {
        return false;
    };
    line[..open].trim_end().ends_with(')')
}
