//! The command line as a user meets it: `--help`, `-h` and `help` on every command, with
//! the valid values of each option listed from the tables the code uses; `--version`;
//! completions and a man page; a closed stdout ending every command quietly with status 0.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every subcommand (not `help`, which clap adds).
fn subcommands() -> Vec<String> {
    lazymm_cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn the_definition_is_consistent() {
    // clap's own checks of the definition: names, groups, conflicts, defaults.
    lazymm_cli::command().debug_assert();
}

#[test]
fn every_command_has_help_and_the_binary_a_version() {
    let names = subcommands();
    for want in [
        "schemes",
        "run",
        "bench",
        "check",
        "predict",
        "replay",
        "record",
        "completions",
        "man",
    ] {
        assert!(names.iter().any(|n| n == want), "no subcommand {want}");
    }
    let top = lazymm(&["--help"]);
    assert_eq!(top.status.code(), Some(0), "{}", stderr(&top));
    let help = lazymm(&["help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    for n in &names {
        assert!(stdout(&top).contains(n.as_str()), "--help omits {n}");
        assert!(stdout(&help).contains(n.as_str()), "help omits {n}");
        for args in [
            vec![n.as_str(), "--help"],
            vec![n.as_str(), "-h"],
            vec!["help", n],
        ] {
            let o = lazymm(&args);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).is_empty(), "{args:?}: {}", stderr(&o));
            let out = stdout(&o);
            assert!(
                out.contains(&format!("Usage: lazymm {n}")),
                "{args:?}: {out}"
            );
        }
    }
    let v = lazymm(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert_eq!(
        stdout(&v).trim(),
        format!("lazymm {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The possible values clap has for `--long` of `sub`.
fn possible(sub: &str, long: &str) -> Vec<String> {
    let cmd = lazymm_cli::command();
    let sub = cmd.find_subcommand(sub).expect("the subcommand");
    let arg = sub
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .unwrap_or_else(|| panic!("no --{long}"));
    arg.get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect()
}

#[test]
fn the_help_lists_exactly_the_tables() {
    use lazymm_engine::registry;
    let schemes: Vec<String> = registry::schemes()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let archs: Vec<String> = registry::ARCHS.iter().map(|(n, _)| n.to_string()).collect();
    let workloads: Vec<String> = lazymm_engine::Workload::ALL
        .iter()
        .map(|w| w.name().to_string())
        .collect();
    let mutants: Vec<String> = registry::mutants()
        .into_iter()
        .chain(registry::findings())
        .chain(registry::configs())
        .map(|m| m.name().to_string())
        .collect();
    let formats: Vec<String> = lazymm_trace::Format::ALL
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let presets: Vec<&str> = lazymm_cost::machine::PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let cases: &[(&str, &str, &Vec<String>)] = &[
        ("run", "scheme", &schemes),
        ("run", "mutant", &mutants),
        ("run", "arch", &archs),
        ("run", "workload", &workloads),
        ("bench", "schemes", &schemes),
        ("bench", "archs", &archs),
        ("bench", "workloads", &workloads),
        ("check", "scheme", &schemes),
        ("check", "mutant", &mutants),
        ("check", "arch", &archs),
        ("predict", "schemes", &schemes),
        ("predict", "archs", &archs),
        ("predict", "workloads", &workloads),
        ("replay", "schemes", &schemes),
        ("replay", "archs", &archs),
        ("replay", "format", &formats),
    ];
    for (sub, long, want) in cases {
        assert_eq!(&possible(sub, long), *want, "{sub} --{long}");
        // What the binary prints: each value, in the long help.
        let help = stdout(&lazymm(&[sub, "--help"]));
        for v in want.iter() {
            assert!(help.contains(v.as_str()), "{sub} --help omits {v}:\n{help}");
        }
    }
    for sub in ["predict", "replay"] {
        let help = stdout(&lazymm(&[sub, "--help"]));
        let listed = help
            .split("[presets: ")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .unwrap_or_else(|| panic!("{sub} --help lists no presets:\n{help}"));
        let listed: Vec<&str> = listed.split(',').map(str::trim).collect();
        assert_eq!(listed, presets, "{sub} --help");
    }
    let record = stdout(&lazymm(&["record", "--help"]));
    for t in lazymm_cli::cli::TOOLS {
        assert!(record.contains(t), "record --help omits {t}");
    }
}

#[test]
fn completions_and_man_page_come_from_the_same_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = lazymm(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let out = stdout(&o);
        // elvish's and powershell's generators complete options, not their values.
        let values = ["bash", "zsh", "fish"].contains(&shell);
        let words: &[&str] = if values {
            &["predict", "workload", "idle-storm", "hazptr-luto"]
        } else {
            &["predict", "workload"]
        };
        for word in words {
            assert!(out.contains(word), "{shell} completions omit {word}");
        }
    }
    let bad = lazymm(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad).trim_end().lines().count(),
        1,
        "{}",
        stderr(&bad)
    );
    assert!(stderr(&bad).contains("tcsh") && stderr(&bad).contains("bash"));

    let man = lazymm(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH lazymm 1"),
        "{page}"
    );
    assert!(page.contains("predict"), "{page}");

    let dir = std::env::temp_dir().join(format!("lazymm-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = lazymm(&["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for n in [
        "lazymm.1",
        "lazymm-run.1",
        "lazymm-predict.1",
        "lazymm-replay.1",
    ] {
        let text = std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(text.contains(".TH"), "{n}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs lazymm with its stdout a pipe whose reader is already gone: the first write
/// fails with EPIPE. The command must end with status 0 and print nothing on stderr.
fn closed_stdout(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("CI", "1")
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut err)
        .expect("stderr reads");
    let status = child.wait().expect("the binary ends");
    assert_eq!(status.code(), Some(0), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("failed printing"),
        "{args:?}: {err}"
    );
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-usage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-trace/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_closed_stdout_ends_schemes_quietly() {
    closed_stdout(&["schemes"]);
    closed_stdout(&["--help"]);
    closed_stdout(&["run", "--help"]);
    closed_stdout(&["completions", "bash"]);
    closed_stdout(&["man"]);
}

#[test]
fn a_closed_stdout_ends_run_quietly() {
    for json in [false, true] {
        let mut args = vec![
            "run",
            "--scheme",
            "refcount",
            "--workload",
            "threads",
            "--cpus",
            "1",
            "--switches",
            "2000",
        ];
        if json {
            args.push("--json");
        }
        closed_stdout(&args);
    }
}

#[test]
fn a_closed_stdout_ends_bench_quietly() {
    let d = scratch("bench");
    let out = d.join("report");
    closed_stdout(&[
        "bench",
        "--quick",
        "--schemes",
        "none",
        "--workloads",
        "threads",
        "--cpus",
        "1",
        "--switch-work",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_closed_stdout_ends_replay_quietly() {
    let trace = fixture("tracecmd_raw.txt");
    closed_stdout(&["replay", &trace, "--json"]);
    closed_stdout(&["replay", &trace]);
}

#[test]
fn a_closed_stdout_ends_predict_quietly() {
    let d = scratch("predict");
    let out = d.join("p");
    for json in [true, false] {
        let mut args = vec![
            "predict",
            "--quick",
            "--machine",
            "epyc-zen4-2s",
            "--schemes",
            "refcount",
            "--workloads",
            "threads",
            "--cpus",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        closed_stdout(&args);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_closed_stdout_ends_check_quietly() {
    let d = scratch("check");
    for json in [true, false] {
        let mut args = vec![
            "check",
            "--scheme",
            "refcount",
            "--arch",
            "generic",
            "--iterations",
            "5",
            "--replay-dir",
            d.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        closed_stdout(&args);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_usage_is_one_line_with_status_2() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["no command", "run"]),
        (&["bench", "--cpus", "1,,2"], &["''", "1 to"]),
        (
            &["bench", "--schemes", "refcount,nosuch"],
            &["nosuch", "refcount"],
        ),
        (&["bench", "--out", ""], &["--out"]),
        (
            &["predict", "--vary", "cost.fence_ns"],
            &["cost.fence_ns", "KEY=V1"],
        ),
        (
            &["predict", "--vary", "cost.fence_ns=1,x"],
            &["'x'", "KEY=V1"],
        ),
        (
            &["replay", "--format", "nosuch", "t"],
            &["nosuch", "ftrace"],
        ),
        (
            &["record", "--tool", "strace"],
            &["strace", "perf, trace-cmd"],
        ),
        (
            &["check", "--mutant", "refcount-no-grab", "--mutants"],
            &["--mutant", "--mutants"],
        ),
        (&["run", "--membarrier", "maybe"], &["maybe", "registered"]),
        (&["man", "--frob"], &["--frob", "--out"]),
        (&["--frob"], &["--frob", "--version"]),
    ];
    for (args, words) in cases {
        let o = lazymm(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert_eq!(
            e.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {e}"
        );
        assert!(e.starts_with("lazymm: "), "{args:?}: {e}");
        for w in *words {
            assert!(e.contains(w), "{args:?}: no {w} in {e}");
        }
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}
