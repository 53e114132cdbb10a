#![no_main]
//! Fuzzes the trace_cmd parser (and census and schedule on its output).
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::run(lazymm_trace::Format::TraceCmd, data));
