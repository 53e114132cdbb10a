//! `lazymm predict`: a quick sweep on a preset writes the whole report with a row for
//! every scheme of the registry, says it is a prediction, repeats byte for byte with the
//! same seed; bad input is refused with one line and status 2.

use lazymm_engine::registry::SCHEMES;
use std::path::PathBuf;
use std::process::{Command, Output};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-cli-predict-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn a_quick_prediction_writes_a_report_that_repeats() {
    let d = tmpdir("quick");
    let out = d.join("report");
    let args = [
        "predict",
        "--machine",
        "epyc-zen4-2s",
        "--quick",
        "--cpus",
        "2,8",
        "--pairs",
        "1,4",
        "--seed",
        "3",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let o = lazymm(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.starts_with("PREDICTIONS of a coherence cost model"),
        "{stdout}"
    );
    let first = std::fs::read(out.join("results.json")).expect("results.json");
    let v: serde_json::Value = serde_json::from_slice(&first).expect("valid JSON");
    let rows = v["rows"].as_array().expect("rows");
    // threads at 2 pair counts and idle-storm, at 2 CPU counts, every scheme.
    assert_eq!(rows.len(), 3 * 2 * SCHEMES.len());
    for (s, _) in SCHEMES {
        assert!(rows.iter().any(|r| r["scheme"] == *s), "no row for {s}");
    }
    assert!(rows
        .iter()
        .all(|r| r["predicted"] == true && r["machine"] == "epyc-zen4-2s"));
    for f in ["index.html", "results.csv", "table.txt", "simulator.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The values the prediction rests on that the machine file marks assumed are named,
    // on the terminal and on the page, each with its value.
    let m = lazymm_cost::machine::Machine::load("epyc-zen4-2s").expect("a preset");
    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(!m.assumed.is_empty());
    for (k, v) in &m.assumed {
        let named = format!("{k} = {v}");
        assert!(
            stdout.contains(&named),
            "{named} not on the terminal: {stdout}"
        );
        assert!(page.contains(&named), "{named} not on the page");
    }
    let o = lazymm(&args);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        first,
        std::fs::read(out.join("results.json")).expect("results.json"),
        "same seed, other bytes"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    for (args, needle) in [
        (
            vec!["predict", "--machine", "no-such"],
            "unknown machine 'no-such'",
        ),
        (
            vec!["predict", "--machine", "spr-2s", "--cpus", "300"],
            "bad cpu count '300'",
        ),
        (
            vec!["predict", "--workloads", "nope"],
            "invalid value 'nope' for '--workloads",
        ),
        (
            vec!["predict", "--schemes", "nope"],
            "invalid value 'nope' for '--schemes",
        ),
        (
            vec!["predict", "--vary", "cost.nope=1,2"],
            "bad --vary key 'cost.nope'",
        ),
        (
            vec!["predict", "--pairs", "0"],
            "invalid value '0' for '--pairs",
        ),
        (
            vec!["predict", "--what-if", "nope=on"],
            "unknown profile item 'nope' (valid: mm-count-own-line,",
        ),
        (
            vec!["predict", "--what-if", "nohz-idle"],
            "'nohz-idle' is not ITEM=on|off (valid items:",
        ),
        (
            vec!["predict", "--vs", "7.0"],
            "invalid value '7.0' for '--vs <NAME>' (valid: bare, 6.1,",
        ),
        (
            vec!["predict", "--vs"],
            "a value is required for '--vs <NAME>' but none was supplied (valid: bare,",
        ),
        (
            vec!["predict", "--kernel", "6.6", "--vs", "6.12", "--quick"],
            "kernel profile '6.12' switches the same items as '6.6'",
        ),
        (
            vec!["predict", "--vs", "6.1", "--vary", "cost.fence_ns=1,2"],
            "'--vs <NAME>' cannot be used with '--vary",
        ),
    ] {
        let o = lazymm(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// Every workload of the registry runs under predict through the same host: clean rows,
/// the same bytes from the same seed.
#[test]
fn every_registered_workload_is_predicted() {
    let d = tmpdir("workloads");
    let out = d.join("report");
    let names: Vec<&str> = lazymm_engine::Workload::ALL
        .iter()
        .map(|w| w.name())
        .collect();
    let list = names.join(",");
    let args = [
        "predict",
        "--machine",
        "spr-2s",
        "--quick",
        "--schemes",
        "refcount,shootdown,none",
        "--workloads",
        &list,
        "--cpus",
        "1,6",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let o = lazymm(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first = std::fs::read(out.join("results.json")).expect("results.json");
    let v: serde_json::Value = serde_json::from_slice(&first).expect("valid JSON");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), names.len() * 2 * 3);
    for w in &names {
        let of: Vec<_> = rows.iter().filter(|r| r["workload"] == *w).collect();
        assert_eq!(of.len(), 6, "{w}");
        for r in of {
            assert_eq!(r["violations"], 0, "{w}: {r}");
            assert!(r["switches_per_sec"].as_f64().unwrap() > 0.0, "{w}: {r}");
        }
    }
    let o = lazymm(&args);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        first,
        std::fs::read(out.join("results.json")).unwrap(),
        "same seed, other bytes"
    );
    let _ = std::fs::remove_dir_all(&d);
}
