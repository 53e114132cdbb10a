//! The example scheme (`examples/shootdown_all.rs`), registered by the example alone and
//! run through the ordinary command line: the checker finds it clean on every arch, and
//! catches its broken twin with a replay that fails with property b (exit status 3).

mod common;

use common::example;
use std::path::PathBuf;
use std::process::{Command, Output};

fn run(exe: &PathBuf, args: &[&str]) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(exe)
        .args(args)
        .output()
        .expect("the example runs");
    let text = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    (status.code().expect("an exit status"), text)
}

#[test]
fn the_example_scheme_is_checked_clean_and_its_twin_is_caught() {
    let exe = example();

    // Registered: listed beside the built-in schemes, with its mutant.
    let (code, text) = run(&exe, &["schemes"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\n  shootdown-all "), "{text}");
    assert!(
        text.contains("shootdown-all-self-only      [shootdown-all]"),
        "{text}"
    );

    // Its help lists it among the valid values, with its mutant, and the completions too.
    let (code, text) = run(&exe, &["run", "--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("shootdown-all:"), "{text}");
    assert!(text.contains("shootdown-all-self-only:"), "{text}");
    let (code, text) = run(&exe, &["completions", "bash"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("shootdown-all"), "{text}");

    // Clean on every arch.
    let (code, text) = run(
        &exe,
        &[
            "check",
            "--scheme",
            "shootdown-all",
            "--iterations",
            "100",
            "--seed",
            "7",
        ],
    );
    assert_eq!(code, 0, "{text}");
    for arch in ["generic", "x86", "powerpc", "arm64"] {
        let row = text
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("shootdown-all@{arch} "))
            })
            .unwrap_or_else(|| panic!("no row for {arch}: {text}"));
        assert!(row.contains(" 0 violating"), "{row}");
    }

    // The twin is caught, and its replay reproduces the violation: exit 3, property b.
    let dir = std::env::temp_dir().join(format!("lazymm-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().expect("a UTF-8 temp dir");
    let (code, text) = run(
        &exe,
        &[
            "check",
            "--mutant",
            "shootdown-all-self-only",
            "--seed",
            "7",
            "--replay-dir",
            dir_s,
        ],
    );
    assert_eq!(code, 0, "a caught mutant is a passing check: {text}");
    assert!(text.contains("caught after"), "{text}");
    assert!(text.contains("property b"), "{text}");
    let replay = std::fs::read_dir(&dir)
        .expect("the check wrote its replay")
        .map(|e| e.expect("a directory entry").path())
        .find(|p| p.to_string_lossy().ends_with(".replay.json"))
        .expect("a replay file");
    let (code, text) = run(
        &exe,
        &["check", "--replay", replay.to_str().expect("UTF-8")],
    );
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("reproduced exactly: property b"), "{text}");

    // And the native engine sees the twin break property b too (exit 3).
    let (code, text) = run(
        &exe,
        &[
            "run",
            "--mutant",
            "shootdown-all-self-only",
            "--workload",
            "exit-storm",
            "--cpus",
            "2",
            "--switches",
            "20000",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("property b"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_scheme_is_benched_and_predicted() {
    let exe = example();
    let out = std::env::temp_dir().join(format!("lazymm-example-bench-{}", std::process::id()));
    let out_s = out.to_str().expect("UTF-8");
    let (code, text) = run(
        &exe,
        &[
            "bench",
            "--quick",
            "--schemes",
            "shootdown-all,none",
            "--workloads",
            "exit-storm",
            "--cpus",
            "2",
            "--out",
            out_s,
        ],
    );
    assert_eq!(code, 0, "{text}");
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    assert!(json.contains("\"shootdown-all\""), "{json}");

    let (code, text) = run(
        &exe,
        &[
            "predict",
            "--quick",
            "--schemes",
            "shootdown-all",
            "--workloads",
            "idle-storm",
            "--cpus",
            "4",
            "--out",
            out_s,
        ],
    );
    assert_eq!(code, 0, "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("shootdown-all "))
        .unwrap_or_else(|| panic!("no prediction row: {text}"));
    // Every exit IPIs the other online CPUs (3 of 4): the `ipi/ex` column.
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.get(10), Some(&"3"), "{row}");
    let _ = std::fs::remove_dir_all(&out);
}
