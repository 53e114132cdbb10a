//! `lazymm record`: bad tools and a tracer that cannot trace are one line and exit 2.

use std::process::Command;

fn lazymm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("lazymm runs")
}

#[test]
fn an_unknown_tool_names_the_valid_ones() {
    let o = lazymm(&["record", "--tool", "ftrace", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("valid: perf, trace-cmd"), "{err}");
}

#[test]
fn a_tracer_that_is_missing_or_forbidden_is_one_line_saying_which() {
    // trace-cmd is missing on most machines and forbidden in most containers; where it
    // can trace, recording `true` succeeds and writes text replay reads.
    let out = std::env::temp_dir().join(format!("lazymm-record-test-{}.txt", std::process::id()));
    let o = lazymm(&[
        "record",
        "--tool",
        "trace-cmd",
        "--out",
        out.to_str().unwrap(),
        "--",
        "true",
    ]);
    match o.status.code() {
        Some(2) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("trace-cmd"), "{err}");
            assert!(!out.exists(), "nothing is written when recording fails");
        }
        Some(0) => {
            assert!(out.exists());
            let _ = std::fs::remove_file(&out);
        }
        other => panic!("exit {other:?}: {}", String::from_utf8_lossy(&o.stderr)),
    }
}
