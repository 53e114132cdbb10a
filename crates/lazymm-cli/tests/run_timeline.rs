//! `lazymm run --timeline FILE`: the Chrome trace JSON of a native run.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh path in a directory of this test's own.
fn out_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lazymm-run-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn load(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).expect("the timeline was written");
    serde_json::from_str(&text).expect("the timeline is valid JSON")
}

fn events(doc: &Value) -> &[Value] {
    doc["traceEvents"].as_array().expect("traceEvents")
}

/// The name of each track (`tid`) from the `thread_name` metadata.
fn track_name(doc: &Value, tid: u64) -> Option<String> {
    events(doc)
        .iter()
        .find(|e| e["name"] == "thread_name" && e["tid"] == tid)
        .and_then(|e| e["args"]["name"].as_str().map(str::to_string))
}

/// Slices of category `cat` on track `tid`, as (start, end) in order; asserts they do
/// not overlap (one task at a time on a CPU, one lazy mm at a time).
fn slices(doc: &Value, cat: &str, tid: u64) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = events(doc)
        .iter()
        .filter(|e| e["cat"] == cat && e["ph"] == "X" && e["tid"] == tid)
        .map(|e| {
            let ts = e["ts"].as_f64().expect("ts");
            (ts, ts + e["dur"].as_f64().expect("dur"))
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in v.windows(2) {
        assert!(
            w[0].1 <= w[1].0 + 1e-9,
            "{cat} slices overlap on track {tid}: {w:?}"
        );
    }
    v
}

#[test]
fn a_run_timeline_has_a_track_per_cpu_with_switch_and_lazy_slices() {
    let p = out_path("idle.json");
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "idle-storm",
        "--cpus",
        "2",
        "--switches",
        "20000",
        "--json",
        "--timeline",
        p.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // stdout stays the one JSON object.
    let report: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let switches = report["context_switches"].as_u64().unwrap();
    let doc = load(&p);
    let mut task_slices = 0;
    for cpu in 0..2u64 {
        assert_eq!(
            track_name(&doc, 3 * cpu).as_deref(),
            Some(format!("cpu {cpu}").as_str())
        );
        assert_eq!(
            track_name(&doc, 3 * cpu + 1).as_deref(),
            Some(format!("cpu {cpu} lazy mm").as_str())
        );
        let tasks = slices(&doc, "task", 3 * cpu);
        assert!(
            tasks.len() > 100,
            "cpu {cpu} has {} task slices",
            tasks.len()
        );
        task_slices += tasks.len();
        assert!(
            !slices(&doc, "lazy", 3 * cpu + 1).is_empty(),
            "cpu {cpu} has no lazy slice"
        );
    }
    // Every measured switch is a slice (quiescing adds a few more), unless a CPU's log
    // filled up (a CPU may run on past its share until the other one has run its own):
    // then the cut says how many events were not recorded.
    let not_recorded: u64 = doc["otherData"]["cut"]
        .as_array()
        .expect("otherData.cut")
        .iter()
        .map(|c| c["not_recorded"].as_u64().unwrap())
        .sum();
    assert!(
        task_slices as u64 + not_recorded >= switches,
        "{task_slices} slices and {not_recorded} events not recorded for {switches} switches"
    );
    let ev = events(&doc);
    assert!(ev
        .iter()
        .any(|e| e["cat"] == "task" && e["name"].as_str().unwrap().starts_with("idle-storm ")));
    assert!(ev.iter().any(|e| e["cat"] == "task" && e["name"] == "idle"));
    // idle-storm's CPUs go idle on the user mm: the lazy slices name it.
    assert!(ev
        .iter()
        .filter(|e| e["cat"] == "lazy")
        .all(|e| e["name"].as_str().unwrap().starts_with("lazy on mm#")));
    assert!(!ev.iter().any(|e| e["cat"] == "violation"));
    assert_eq!(doc["otherData"]["events_per_cpu_cap"], 100_000);
}

#[test]
fn a_mutant_run_timeline_shows_its_violations_and_exits_3() {
    let p = out_path("mutant.json");
    let o = lazymm(&[
        "run",
        "--mutant",
        "refcount-no-grab",
        "--workload",
        "exit-storm",
        "--cpus",
        "2",
        "--switches",
        "20000",
        "--timeline",
        p.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = load(&p);
    let v: Vec<&Value> = events(&doc)
        .iter()
        .filter(|e| e["cat"] == "violation")
        .collect();
    assert!(!v.is_empty(), "no violation instant event");
    for e in v {
        assert_eq!(e["ph"], "i");
        let prop = e["args"]["property"].as_str().unwrap();
        assert!(e["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("violation ({prop})")));
    }
    // exit-storm's exits are spans.
    assert!(
        events(&doc)
            .iter()
            .any(|e| e["cat"] == "teardown"
                && e["name"].as_str().unwrap().starts_with("exit_mm pid "))
    );
}

#[test]
fn a_timeline_path_that_cannot_be_written_is_one_line_and_no_file() {
    let p = out_path("missing-dir").join("t.json");
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "idle-storm",
        "--switches",
        "100",
        "--timeline",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing-dir"), "{err}");
    assert!(!p.exists());
    let o = lazymm(&[
        "run",
        "--scheme",
        "refcount",
        "--workload",
        "idle-storm",
        "--timeline",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

#[test]
fn a_full_event_log_is_cut_and_the_timeline_says_so() {
    let mut spec = lazymm_engine::RunSpec::new("refcount", lazymm_engine::Workload::IdleStorm, 2);
    spec.seconds = None;
    spec.switches = Some(4000);
    spec.pin = false;
    let (r, logs) = lazymm_engine::run_logged(&spec, 50).expect("runs");
    assert_eq!(logs.len(), 2);
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(l.cpu, i);
        assert_eq!(l.events().len(), 50);
        assert!(l.dropped() > 0);
        assert!(l
            .events()
            .windows(2)
            .all(|w| w[0].ts <= w[1].ts && w[0].step <= w[1].step));
    }
    let tl = lazymm_trace::timeline::from_run(&logs, &r.violations, 2, "idle-storm", "t");
    let doc: Value = serde_json::from_str(&tl.to_json()).unwrap();
    let cut = doc["otherData"]["cut"].as_array().unwrap();
    assert_eq!(cut.len(), 2);
    for (i, c) in cut.iter().enumerate() {
        assert_eq!(c["cpu"], i);
        assert_eq!(c["recorded"], 50);
        assert_eq!(c["not_recorded"], logs[i].dropped());
    }
    assert_eq!(
        events(&doc).iter().filter(|e| e["cat"] == "note").count(),
        2,
        "one note per cut log"
    );
}
