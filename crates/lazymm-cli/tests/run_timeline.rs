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
            track_name(&doc, 4 * cpu).as_deref(),
            Some(format!("cpu {cpu}").as_str())
        );
        assert_eq!(
            track_name(&doc, 4 * cpu + 1).as_deref(),
            Some(format!("cpu {cpu} lazy mm").as_str())
        );
        let tasks = slices(&doc, "task", 4 * cpu);
        assert!(
            tasks.len() > 100,
            "cpu {cpu} has {} task slices",
            tasks.len()
        );
        task_slices += tasks.len();
        assert!(
            !slices(&doc, "lazy", 4 * cpu + 1).is_empty(),
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
    let tl = lazymm_engine::report::timeline::from_run(&logs, &r.violations, 2, "idle-storm", "t");
    let doc: Value = serde_json::from_str(&tl.to_json().unwrap()).unwrap();
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

/// The kernel-track slices of `doc` as (track, start, end, name).
fn kernel_spans(doc: &Value) -> Vec<(u64, f64, f64, String)> {
    events(doc)
        .iter()
        .filter(|e| e["cat"] == "kernel" && e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().expect("ts");
            let end = ts + e["dur"].as_f64().expect("dur");
            let name = e["name"].as_str().expect("name").to_string();
            (e["tid"].as_u64().expect("tid"), ts, end, name)
        })
        .collect()
}

/// Asserts that on each track the spans nest (Perfetto draws them as a call stack):
/// two spans are disjoint or one contains the other.
fn assert_nested(spans: &[(u64, f64, f64, String)]) {
    for a in spans {
        for b in spans.iter().filter(|b| b.0 == a.0) {
            let disjoint = a.2 <= b.1 + 1e-9 || b.2 <= a.1 + 1e-9;
            let a_in_b = b.1 <= a.1 + 1e-9 && a.2 <= b.2 + 1e-9;
            let b_in_a = a.1 <= b.1 + 1e-9 && b.2 <= a.2 + 1e-9;
            assert!(disjoint || a_in_b || b_in_a, "spans overlap: {a:?} {b:?}");
        }
    }
}

#[test]
fn a_shootdown_run_timeline_has_teardown_spans_and_ipi_arrows_to_their_handlers() {
    let p = out_path("shootdown.json");
    let out = lazymm(&[
        "run",
        "--scheme",
        "shootdown",
        "--arch",
        "x86",
        "--workload",
        "exit-storm",
        "--cpus",
        "2",
        "--switches",
        "2000",
        "--seed",
        "3",
        "--timeline",
        p.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = load(&p);
    assert_eq!(track_name(&doc, 3).as_deref(), Some("cpu 0 kernel"));
    let spans = kernel_spans(&doc);
    assert_nested(&spans);
    let count = |prefix: &str| spans.iter().filter(|s| s.3.starts_with(prefix)).count();
    // Every exit of a process's last thread: __mmput, and __mmdrop with its
    // cleanup_lazy_tlbs (the shootdown) inside it.
    assert!(count("__mmput(") > 0);
    assert_eq!(count("__mmdrop("), count("cleanup_lazy_tlbs("));
    for d in spans
        .iter()
        .filter(|s| s.3.starts_with("cleanup_lazy_tlbs("))
    {
        assert!(
            spans.iter().any(|m| m.0 == d.0
                && m.3.starts_with("__mmdrop(")
                && m.1 <= d.1 + 1e-9
                && d.2 <= m.2 + 1e-9),
            "cleanup_lazy_tlbs inside __mmdrop: {d:?}"
        );
    }
    // Each IPI drawn is an arrow from the sender's on_each_cpu_mask to a handler on the
    // other CPU's kernel track that starts where the arrow ends.
    let ev = events(&doc);
    let starts: Vec<&Value> = ev
        .iter()
        .filter(|e| e["cat"] == "ipi" && e["ph"] == "s")
        .collect();
    // (How many there are depends on how the two CPU threads met, and a CPU whose event
    // log filled up records no more: the checker's diagram test shows one for certain.)
    for s in starts {
        let f = ev
            .iter()
            .find(|e| e["ph"] == "f" && e["id"] == s["id"])
            .expect("each arrow has a head");
        let (from, to) = (s["tid"].as_u64().unwrap(), f["tid"].as_u64().unwrap());
        assert_ne!(from, to);
        let (sent, ran) = (s["ts"].as_f64().unwrap(), f["ts"].as_f64().unwrap());
        assert!(sent <= ran, "an IPI runs after it is sent");
        assert!(
            spans.iter().any(|m| m.0 == from
                && m.3.starts_with("on_each_cpu_mask(")
                && m.1 <= sent + 1e-9
                && sent <= m.2 + 1e-9),
            "the IPI sent at {sent} on track {from} is inside an on_each_cpu_mask: {:?}",
            spans
                .iter()
                .filter(|m| m.0 == from && (m.1 - sent).abs() < 50.0)
                .collect::<Vec<_>>()
        );
        assert!(spans
            .iter()
            .any(|h| h.0 == to && (h.1 - ran).abs() < 1e-9 && h.3.contains(" from cpu ")));
    }
}

#[test]
fn a_checker_counterexample_timeline_shows_the_teardown_that_frees_under_a_lazy_cpu() {
    let dir = out_path("replays");
    std::fs::create_dir_all(&dir).unwrap();
    let out = lazymm(&[
        "check",
        "--mutant",
        "shootdown-hotplug-race",
        "--seed",
        "7",
        "--replay-dir",
        dir.to_str().unwrap(),
    ]);
    // A mutant caught is a success.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".replay.json"))
        .expect("a replay file");
    let p = out_path("check.json");
    let out = lazymm(&[
        "check",
        "--replay",
        replay.to_str().unwrap(),
        "--timeline",
        p.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let doc = load(&p);
    let spans = kernel_spans(&doc);
    assert_nested(&spans);
    let viol = events(&doc)
        .iter()
        .find(|e| e["cat"] == "violation")
        .expect("the violation");
    assert_eq!(viol["args"]["property"], "c");
    let cpu = viol["args"]["cpu"].as_u64().unwrap();
    // The CPU that found it was in the teardown that freed the mm: its kernel track has
    // __mmdrop with the shootdown (cleanup_lazy_tlbs) inside, about the violated mm.
    let mm = viol["args"]["mm"].as_str().unwrap();
    let on_cpu = |name: &str| {
        spans
            .iter()
            .any(|s| s.0 == 4 * cpu + 3 && s.3 == format!("{name}({mm})"))
    };
    assert!(
        on_cpu("__mmdrop") && on_cpu("cleanup_lazy_tlbs"),
        "{spans:?}"
    );
}
