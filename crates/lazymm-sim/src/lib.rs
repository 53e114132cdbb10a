//! `lazymm predict`: what each scheme costs on machines this host is not.
//!
//! A discrete-event simulator runs N simulated CPUs (up to the model's `MAX_CPUS`) on one
//! host thread through the real model code, and charges each step the memory accesses it
//! made, priced by a coherence cost model of a machine described in TOML:
//! - [`sim`]: the simulator host (the engine's runqueues and workloads on one thread);
//! - [`predict`] and [`report`]: the sweep, `--validate`, and the report;
//! - [`calibrate`]: this host's machine file, measured;
//! - [`whatif`]: one simulation under two kernel profiles, with an interval over the
//!   machine's assumed values, for one simulation or the whole sweep (its results as
//!   data in [`change`]).
//!
//! The machine files, the coherence model and the pricer are the cost crate's
//! (`lazymm_cost`); the replayer (`lazymm_replay`) uses them too.
//!
//! Every number it prints is a prediction of that cost model, never a measurement.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod calibrate;
pub mod change;
pub mod predict;
pub mod report;
pub mod sim;
pub mod whatif;
