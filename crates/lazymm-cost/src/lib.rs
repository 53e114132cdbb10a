//! The cost model: what a memory access costs on a machine that is not this host.
//!
//! - [`machine`]: machine files (TOML, every value citing its source or marked assumed)
//!   and the presets compiled into the binary;
//! - [`coherence`]: the directory (one owner or many sharers per cache line), the
//!   contended-line arbitration and the event engine the simulator drives;
//! - [`price`]: accesses the model recorded, priced without the event engine
//!   (`lazymm replay --machine`).
//!
//! It knows the model only through its access log (`lazymm::sync::Access`): the hosts
//! that drive the model (the simulator, the replayer) depend on this crate, never the
//! other way round. Every number it gives is a prediction of this cost model, never a
//! measurement.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod coherence;
#[cfg(test)]
mod curves;
pub mod machine;
pub mod price;
