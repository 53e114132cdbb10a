//! Hosts that run the lazymm model: the native engine (one OS thread per simulated CPU),
//! the workloads, and the registry of schemes, archs, workloads and mutants.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod check;
pub mod hostcost;
pub mod native;
pub mod registry;
pub mod report;
pub mod serial;
pub mod workload;

pub use native::{run, RunReport, RunSpec, SpecError};
pub use workload::Workload;
