//! Sizes a flag can ask for that once panicked: every one now runs, or ends with exit 2
//! and one line naming the value and what is valid (issue 19, item 4).

use std::process::{Command, Output};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, one line on stderr holding every one of `words`, and no panic.
fn one_line_error(o: &Output, words: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "'{w}' missing from: {err}");
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `processes` holds one mm per pair: 200 pairs on 8 CPUs passed the pair check but
/// overflowed the arena's default 64 + 16·8 mms. The workload's check now sizes the arena.
#[test]
fn processes_with_more_pairs_than_the_default_arena_runs() {
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "processes",
        "--cpus",
        "8",
        "--pairs",
        "200",
        "--switches",
        "20000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn predict_processes_with_more_pairs_than_the_default_arena_runs() {
    let out = scratch("predict");
    let o = lazymm(&[
        "predict",
        "--quick",
        "--schemes",
        "refcount",
        "--archs",
        "x86",
        "--workloads",
        "processes",
        "--cpus",
        "8",
        "--pairs",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

/// 253 pairs on 8 CPUs put 64 threads on a runqueue of 63: one line from the same check
/// on both hosts.
#[test]
fn pairs_past_the_runqueues_are_one_line_on_every_host() {
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "processes",
        "--cpus",
        "8",
        "--pairs",
        "253",
    ]);
    one_line_error(&o, &["253", "1 to 252"]);
    let out = scratch("predict-bad");
    let o = lazymm(&[
        "predict",
        "--quick",
        "--schemes",
        "refcount",
        "--archs",
        "x86",
        "--workloads",
        "processes",
        "--cpus",
        "8",
        "--pairs",
        "253",
        "--out",
        out.to_str().unwrap(),
    ]);
    one_line_error(&o, &["253", "1 to 252"]);
    assert!(!out.exists(), "no report for a spec that cannot run");
}

/// A host that cannot start a thread per CPU (here: too little address space for 4096
/// CPU stacks) is one line naming the CPUs and how many fit, not a panic. The stacks are
/// checked before any thread starts: running into the limit thread by thread ended, on
/// CI, with a heap allocation failing first and the process aborting.
#[test]
fn a_thread_the_host_cannot_start_is_one_line() {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 400000 && exec '{}' run --scheme refcount --workload idle-storm --cpus 4096 --switches 100000",
            env!("CARGO_BIN_EXE_lazymm")
        ))
        .output()
        .expect("sh runs");
    one_line_error(&o, &["4096 cpus", "ulimit -v", "valid: --cpus 1 to"]);
}
