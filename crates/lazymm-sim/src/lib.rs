//! `lazymm predict`: what each scheme costs on machines this host is not.
//!
//! A discrete-event simulator runs N simulated CPUs (up to the model's `MAX_CPUS`) on one
//! host thread through the real model code, and charges each step the memory accesses it
//! made, priced by a coherence cost model of a machine described in TOML:
//! - [`machine`]: machine files and the presets compiled into the binary;
//! - [`coherence`]: the directory, the contended-line arbitration and the event engine;
//! - [`sim`]: the simulator host (the engine's runqueues and workloads on one thread);
//! - [`predict`] and [`report`]: the sweep, `--validate`, and the report;
//! - [`price`]: recorded accesses priced without the event engine (`replay --machine`).
//!
//! Every number it prints is a prediction of that cost model, never a measurement.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod calibrate;
pub mod coherence;
#[cfg(test)]
mod curves;
pub mod machine;
pub mod predict;
pub mod price;
pub mod report;
pub mod sim;
