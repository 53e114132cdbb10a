//! The command-line contract of DESIGN.md §6: output shapes and exit statuses.

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

#[test]
fn schemes_lists_every_axis() {
    let o = lazymm(&["schemes"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for word in [
        "refcount",
        "none",
        "generic",
        "threads",
        "idle-storm",
        "exit-storm",
        "kthread",
        "refcount-no-grab",
        "shootdown",
        "shootdown-debug",
        "x86",
        "powerpc",
        "hotplug",
        "shootdown-hotplug-race",
        "x86-no-switching-sentinel",
        "hazptr-luto",
        "hazptr-luto-cpumask",
        "hazptr-mathieu",
        "hazptr-luto-early-scan",
        "hazptr-mathieu-no-fence",
    ] {
        assert!(out.contains(word), "schemes does not list {word}:\n{out}");
    }
}

#[test]
fn run_json_has_exactly_the_contract_fields() {
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "threads",
        "--cpus",
        "2",
        "--seconds",
        "0.2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let obj = v.as_object().expect("an object");
    let want = [
        "scheme",
        "mutant",
        "arch",
        "workload",
        "cpus",
        "seconds",
        "context_switches",
        "lazy_switches",
        "switches_per_sec",
        "shared_rmw",
        "full_fences",
        "ipis",
        "mm_created",
        "mm_freed",
        "violations",
        "task_bytes",
    ];
    let got: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(got, want);
    assert!(v["switches_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["lazy_switches"].as_u64().unwrap() > 0);
    assert!(v["shared_rmw"].as_u64().unwrap() > 0);
    assert_eq!(v["violations"].as_u64(), Some(0));
    assert!(v["mutant"].is_null());
}

#[test]
fn a_caught_mutant_exits_3() {
    for m in lazymm::Mutant::ALL {
        let o = lazymm(&[
            "run",
            "--mutant",
            m.name(),
            "--workload",
            m.workload(),
            "--cpus",
            "3",
            "--seconds",
            "3",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(3), "{}: {}", m.name(), stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["violations"].as_u64().unwrap() > 0);
        assert_eq!(v["mutant"], m.name());
        assert_eq!(v["arch"], m.arch().unwrap_or("generic"));
        assert!(stderr(&o).contains("property"), "no counterexample printed");
    }
}

#[test]
fn bad_input_is_one_line_naming_the_value_and_choices() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["run", "--scheme", "nosuch", "--workload", "threads"],
            "nosuch",
            "refcount",
        ),
        (
            &["run", "--scheme", "refcount", "--workload", "nosuch"],
            "nosuch",
            "idle-storm",
        ),
        (
            &[
                "run",
                "--scheme",
                "refcount",
                "--workload",
                "threads",
                "--arch",
                "vax",
            ],
            "vax",
            "generic",
        ),
        (
            &["run", "--mutant", "nosuch", "--workload", "threads"],
            "nosuch",
            "refcount-no-grab",
        ),
        (
            &[
                "run",
                "--scheme",
                "refcount",
                "--workload",
                "threads",
                "--cpus",
                "0",
            ],
            "'0'",
            "1 to 64",
        ),
        (
            &[
                "run",
                "--scheme",
                "refcount",
                "--workload",
                "threads",
                "--cpus",
                "two",
            ],
            "two",
            "1 to 64",
        ),
        (
            &[
                "run",
                "--scheme",
                "refcount",
                "--workload",
                "threads",
                "--seconds",
                "-1",
            ],
            "-1",
            "seconds",
        ),
        (&["run", "--workload", "threads"], "--scheme", "refcount"),
        (&["frobnicate"], "frobnicate", "run"),
        (
            &[
                "run",
                "--scheme",
                "refcount",
                "--workload",
                "threads",
                "--bogus",
            ],
            "--bogus",
            "--cpus",
        ),
    ];
    for (args, bad, valid) in cases {
        let o = lazymm(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert_eq!(
            e.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {e}"
        );
        assert!(e.contains(bad) && e.contains(valid), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
}
