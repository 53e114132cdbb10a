//! `lazymm replay`: a schedule recorded by a real kernel (parsed by `lazymm-trace`)
//! played on the model, once per scheme × arch, and the report of what each scheme's
//! bookkeeping did on it.
//!
//! - [`host`]: the replay host, a single-threaded host over the engine's `Serial` IPI
//!   host, like the simulator's; with a machine file it prices the recorded accesses on
//!   the cost model (`lazymm_cost::price`);
//!   (`accounting.rs` charges its recorded accesses);
//! - [`row`]: a replay's result and its serialization;
//! - [`report`]: the table, JSON, CSV, charts and page.
//!
//! Dependencies point one way: this crate uses the model, the engine, the cost model and
//! the trace parsers; nothing but the command line uses it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounting;
pub mod host;
pub mod report;
pub mod row;

pub use host::{counterexample, register, replay, replay_all, Input, Variant};
pub use row::{Record, Row};
