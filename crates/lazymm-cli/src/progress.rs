//! The one progress bar of every long command (`bench`, `predict`, `check`): indicatif
//! on stderr, and nothing at all when stderr is not a terminal or `CI` is set, so logs
//! and pipes get no control characters.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar over `total` steps, or a silent stand-in.
pub(crate) struct Progress(Option<ProgressBar>);

/// Whether a bar may be drawn: stderr is a terminal and `CI` is not set.
fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

impl Progress {
    /// A bar of `total` steps counted in `unit` (`runs`, `rows`, `iterations`).
    pub(crate) fn new(total: u64, unit: &str) -> Progress {
        if !wanted() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr());
        let template = format!("{{elapsed_precise}} [{{bar:32}}] {{pos}}/{{len}} {unit}  {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress(Some(bar))
    }

    /// `done` steps are finished.
    pub(crate) fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    /// The total is `total` steps (when it is known only once the work has started).
    pub(crate) fn total(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }

    /// `n` more steps are finished.
    pub(crate) fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// What is running now, shown after the counts.
    pub(crate) fn label(&self, what: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.set_message(what.into());
        }
    }

    /// Runs `f` with the bar hidden (for a line printed meanwhile).
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar.
    pub(crate) fn clear(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
