//! The report layer: every page, table, chart and timeline the tool writes.
//!
//! - [`mod@format`]: numbers and dates as the reports print them;
//! - [`mod@write`]: the one atomic writer (a whole file or a whole directory, or nothing);
//! - [`page`]: the one base template every HTML page extends;
//! - [`row`]: the bench's row, the fields of its `results.json` and `results.csv`;
//! - [`columns`]: the one column-list mechanism of every table;
//! - [`svg`]: the charts;
//! - [`mod@bench`]: the report of `lazymm bench`;
//! - [`timeline`]: timelines of a run, a checker replay or a recorded trace.

pub mod bench;
pub mod columns;
pub mod format;
pub mod page;
pub mod row;
pub mod svg;
pub mod timeline;
pub mod write;

pub use bench::*;
pub use format::{si, utc};
pub use write::{check_out, write_dir, write_file, ReportError};
