//! `lazymm schemes`: everything the registry knows.

use crate::args::{unexpected, Args};
use crate::Failure;
use lazymm_engine::registry::{schemes, ARCHS};
use lazymm_engine::Workload;
use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let mut a = Args::new(args);
    if let Some(arg) = a.next()? {
        return Err(unexpected(arg, "no options"));
    }
    println!("schemes:");
    for (name, desc) in schemes() {
        println!("  {name:<28} {desc}");
    }
    println!("archs:");
    for (name, desc) in ARCHS {
        println!("  {name:<28} {desc}");
    }
    println!("workloads:");
    for w in Workload::ALL {
        println!("  {:<28} {}", w.name(), w.description());
    }
    println!("mutants:");
    for m in lazymm_engine::registry::mutants() {
        println!("  {:<28} [{}] {}", m.name(), m.scheme(), m.description());
    }
    // Races the checker found in the kernel as written, each followed by its fix.
    println!("findings:");
    for m in lazymm_engine::registry::findings() {
        let on = format!("{}@{}", m.scheme(), m.arch().unwrap_or("generic"));
        println!("  {:<34} [{on}] {}", m.name(), m.description());
    }
    Ok(0)
}
