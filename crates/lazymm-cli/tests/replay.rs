//! `lazymm replay` end to end: rows per scheme, bad input (exit 2 with the line number),
//! --lenient, --kthreads, --out and --timeline files, and `check --timeline` misuse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("lazymm runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-trace/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-cli-replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rows(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

#[test]
fn json_has_a_row_per_scheme_with_every_switch() {
    let o = lazymm(&["replay", &fixture("tracecmd_raw.txt"), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = rows(&o);
    assert_eq!(r.len(), lazymm_engine::registry::SCHEMES.len());
    for row in &r {
        assert_eq!(row["context_switches"], 5);
        assert_eq!(row["sched_switch_events"], 5);
        assert_eq!(row["violations"], 0);
        for k in [
            "trace_seconds",
            "lazy_round_trips_per_sec",
            "hottest_line_rmw_per_sec",
            "guessed_tasks",
        ] {
            assert!(row.get(k).is_some(), "{k}");
        }
    }
}

#[test]
fn a_bad_line_exits_2_naming_file_and_line_and_lenient_skips_it() {
    let f = fixture("bad_line.txt");
    let o = lazymm(&["replay", &f, "--schemes", "refcount"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad_line.txt:3:") && err.contains("prev_pid"),
        "{err}"
    );
    let o = lazymm(&["replay", &f, "--schemes", "refcount", "--lenient", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(rows(&o)[0]["context_switches"], 2);
}

#[test]
fn bad_options_exit_2_with_the_valid_choices() {
    let o = lazymm(&["replay", &fixture("lttng.txt"), "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("valid: ftrace, atrace"));
    let o = lazymm(&["replay", &fixture("lttng.txt"), "--schemes", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let o = lazymm(&["replay"]);
    assert_eq!(o.status.code(), Some(2));
    let o = lazymm(&["check", "--timeline", "t.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--replay"));
}

#[test]
fn kthreads_file_overrides_the_patterns() {
    let d = tmp("kthreads");
    let k = d.join("k.txt");
    // sshd and sh by comm, trace-cmd by pid; kworker/u12:1 no longer matches (a file
    // replaces the built-in patterns).
    std::fs::write(&k, "# mine\nsshd\nsh\n1701\n").unwrap();
    let f = fixture("tracecmd_raw.txt");
    let base = rows(&lazymm(&["replay", &f, "--json", "--schemes", "refcount"]));
    let o = lazymm(&[
        "replay",
        &f,
        "--json",
        "--schemes",
        "refcount",
        "--kthreads",
        k.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let over = rows(&o);
    assert_eq!(
        (base[0]["user_tasks"].clone(), base[0]["kthreads"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(
        (over[0]["user_tasks"].clone(), over[0]["kthreads"].clone()),
        (1.into(), 3.into())
    );
    assert_eq!(
        over[0]["guessed_tasks"], 1,
        "kworker/u12:1, now a user task"
    );
    let o = lazymm(&[
        "replay",
        &f,
        "--kthreads",
        d.join("missing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn out_and_timeline_files_are_written() {
    let d = tmp("out");
    let t = d.join("t.json");
    let o = lazymm(&[
        "replay",
        &fixture("ftrace_flags.txt"),
        "--schemes",
        "refcount,shootdown",
        "--out",
        d.join("r").to_str().unwrap(),
        "--timeline",
        t.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r/results.json")).unwrap()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    let csv = std::fs::read_to_string(d.join("r/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("trace,format,scheme"));
    for s in ["refcount", "shootdown"] {
        let p = d.join(format!("t.{s}-generic.json"));
        let tl: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert!(tl["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cat"] == "task"));
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_mutant_on_a_real_schedule_exits_3_with_a_counterexample() {
    // refcount-no-grab: the dying task's CPU keeps the mm loaded with no reference.
    let o = lazymm(&[
        "replay",
        &fixture("tracecmd_raw.txt"),
        "--schemes",
        "refcount,refcount-no-grab",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let r = rows(&o);
    assert_eq!(r[0]["violations"], 0);
    assert_eq!(r[1]["mutant"], "refcount-no-grab");
    assert!(r[1]["violations"].as_u64().unwrap() > 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("from trace line 4") && err.contains("VIOLATION property b"),
        "{err}"
    );
}

#[test]
fn out_holds_a_whole_report_with_a_bar_per_row_and_an_escaped_page() {
    let d = tmp("report");
    // A trace whose name the page must escape.
    let trace = d.join("a<b&c.txt");
    std::fs::copy(fixture("ftrace_flags.txt"), &trace).unwrap();
    let out = d.join("r");
    let o = lazymm(&[
        "replay",
        trace.to_str().unwrap(),
        "--schemes",
        "refcount,shootdown,hazptr-mathieu",
        "--archs",
        "generic,x86",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = 6;
    // table.txt is what the terminal showed.
    let table = std::fs::read_to_string(out.join("table.txt")).unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&table));
    assert_eq!(table.lines().filter(|l| l.contains("generic ")).count(), 3);
    let svgs = [
        "shared-rmw-per-sec.svg",
        "hottest-line-rmw-per-sec.svg",
        "ipis-per-exit.svg",
        "lazy-round-trips-per-sec.svg",
    ];
    for f in ["index.html", "results.json", "results.csv"]
        .iter()
        .chain(&svgs)
    {
        assert!(out.join(f).is_file(), "{f}");
    }
    for f in svgs {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        let bars: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .collect();
        assert_eq!(bars.len(), rows, "{f}");
        assert!(bars
            .iter()
            .any(|b| b.attribute("data-row") == Some("hazptr-mathieu/x86")));
    }
    // Every row's lazy round trips per second is one bar of the same value.
    let lazy = std::fs::read_to_string(out.join("lazy-round-trips-per-sec.svg")).unwrap();
    let doc = roxmltree::Document::parse(&lazy).unwrap();
    let values: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("data-value"))
        .collect();
    assert_eq!(values.len(), rows);
    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        page.contains("a&lt;b&amp;c.txt"),
        "the trace name is escaped"
    );
    assert!(!page.contains("a<b"), "no raw trace name on the page");
    assert!(page.contains("replays of a recorded schedule"));
    assert_eq!(page.matches("<svg ").count(), svgs.len());
    assert_eq!(page.matches("<tr class=").count(), rows);
    // A second report replaces the first; something that is not a report is left alone.
    let o = lazymm(&[
        "replay",
        trace.to_str().unwrap(),
        "--schemes",
        "refcount",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 1);
    let o = lazymm(&[
        "replay",
        trace.to_str().unwrap(),
        "--schemes",
        "refcount",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(trace.is_file());
    let _ = std::fs::remove_dir_all(&d);
}

/// `--machine` adds each scheme's predicted bookkeeping per second of trace: a row field,
/// a table section and a report column; a machine too small for the trace, or unknown,
/// is one line and status 2.
#[test]
fn machine_prices_the_bookkeeping_of_each_scheme() {
    let trace = fixture("tracecmd_raw.txt");
    let o = lazymm(&["replay", &trace, "--json", "--machine", "epyc-zen4-2s"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = rows(&o);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["machine"], "epyc-zen4-2s", "{r}");
        assert!(
            r["predicted_bookkeeping_us_per_sec"].as_f64().unwrap() >= 0.0,
            "{r}"
        );
    }
    let us = |s: &str| {
        rows.iter().find(|r| r["scheme"] == s).unwrap()["predicted_bookkeeping_us_per_sec"]
            .as_f64()
            .unwrap()
    };
    assert!(us("refcount") > us("none"));
    let d = tmp("machine");
    let out = d.join("r");
    let o = lazymm(&[
        "replay",
        &trace,
        "--machine",
        "spr-2s",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("PREDICTED bookkeeping on machine 'spr-2s'"),
        "{text}"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains("pred. us&#x2f;s"),
        "the column is in the page"
    );
    for (args, needle) in [
        (vec!["--machine", "no-such"], "unknown machine 'no-such'"),
        (vec!["--machine", "host"], "do not fit machine 'host'"),
    ] {
        let mut a = vec!["replay", trace.as_str()];
        a.extend(args);
        let o = lazymm(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{a:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
