//! Systrace HTML (Android's `systrace.py`): ftrace text embedded in the page, either in
//! old systrace's JavaScript string (`var linuxPerfData = "\` with each line ending in
//! `\n\`) or in newer systrace's `<script class="trace-data" type="application/text">`
//! blocks. Lines outside the trace text (HTML, JavaScript, JSON blocks) carry no events.

use crate::fields::Expected;
use crate::text::{ftrace_line, Line};
use crate::{Sniff, TraceFormat};

/// Where the parser is in the page.
#[derive(Debug, Default)]
pub(crate) struct State {
    in_data: bool,
    /// Inside a `trace-data` block that is JSON, not ftrace text.
    in_json: bool,
}

impl State {
    /// Parses one line of the page.
    pub(crate) fn line(&mut self, line: &str) -> Result<Line, Expected> {
        let t = line.trim();
        if !self.in_data {
            if let Some(i) = t.find("linuxPerfData = \"") {
                self.in_data = true;
                self.in_json = false;
                let rest = &t[i + "linuxPerfData = \"".len()..];
                return self.data(rest);
            }
            if t.contains("class=\"trace-data\"") && !t.contains("</script>") {
                self.in_data = true;
                self.in_json = false;
            }
            return Ok(Line::Meta);
        }
        if t.starts_with("</script>") {
            self.in_data = false;
            return Ok(Line::Meta);
        }
        if let Some(last) = line.trim_end().strip_suffix("\";") {
            // The end of old systrace's JavaScript string.
            self.in_data = false;
            return self.data(last);
        }
        self.data(line)
    }

    fn data(&mut self, line: &str) -> Result<Line, Expected> {
        let mut l = line.trim_end();
        // Old systrace: each line of the JavaScript string ends in `\n\`.
        l = l
            .strip_suffix("\\n\\")
            .or_else(|| l.strip_suffix('\\'))
            .unwrap_or(l);
        l = l.strip_suffix("\\n").unwrap_or(l);
        if self.in_json || l.trim_start().starts_with('{') {
            self.in_json = true;
            return Ok(Line::Meta);
        }
        ftrace_line(l)
    }
}

/// Systrace HTML.
pub(crate) struct Systrace;

impl TraceFormat for Systrace {
    const NAME: &'static str = "systrace";
    type State = State;

    /// A line of the page around the trace.
    fn sniff(line: &str) -> Sniff {
        Sniff::only_if(is_page_line(line))
    }

    fn line(state: &mut State, line: &str) -> Result<Line, Expected> {
        state.line(line)
    }
}

/// Whether a line belongs to a systrace page.
fn is_page_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("<!DOCTYPE html")
        || t.starts_with("<html")
        || t.contains("linuxPerfData")
        || t.contains("class=\"trace-data\"")
}
