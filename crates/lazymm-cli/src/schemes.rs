//! `lazymm schemes`: everything the registry knows.

use crate::Failure;
use lazymm_engine::registry::{schemes, ARCHS};
use lazymm_engine::Workload;

pub fn main() -> Result<u8, Failure> {
    outln!("schemes:");
    for (name, desc) in schemes() {
        outln!("  {name:<28} {desc}");
    }
    outln!("archs:");
    for (name, desc) in ARCHS {
        outln!("  {name:<28} {desc}");
    }
    outln!("workloads:");
    for w in Workload::ALL {
        outln!("  {:<28} {}", w.name(), w.description());
    }
    outln!("mutants:");
    for m in lazymm_engine::registry::mutants() {
        outln!("  {:<28} [{}] {}", m.name(), m.scheme(), m.description());
    }
    // Correct schemes under configurations that are off by default: they stay clean.
    outln!("configurations:");
    for m in lazymm_engine::registry::configs() {
        let on = format!("{}@{}", m.scheme(), m.arch().unwrap_or("generic"));
        outln!("  {:<34} [{on}] {}", m.name(), m.description());
    }
    // Races the checker found in the kernel as written (or in a scheme under one of
    // those configurations), each followed by its fix where there is one.
    outln!("findings:");
    for m in lazymm_engine::registry::findings() {
        let on = format!("{}@{}", m.scheme(), m.arch().unwrap_or("generic"));
        outln!("  {:<34} [{on}] {}", m.name(), m.description());
    }
    Ok(0)
}
