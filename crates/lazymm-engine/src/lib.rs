//! Hosts that run the lazymm model, and what they run: the host layer every host is built
//! on ([`host`]), the workloads ([`workload`]), the native engine (one OS thread per
//! simulated CPU, [`native`]), the checker (a deterministic scheduler, [`check`]), the IPI
//! host of single-threaded hosts ([`serial`]), the
//! benchmark and its report ([`bench`](mod@bench), [`report`], [`hostcost`]), and the registry of
//! schemes, archs, workloads and mutants ([`registry`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod check;
pub mod host;
pub mod hostcost;
pub mod native;
pub mod registry;
pub mod report;
pub mod serial;
pub mod workload;

pub use native::{run, run_logged, RunReport, RunSpec, SpecError};
pub use workload::Workload;
