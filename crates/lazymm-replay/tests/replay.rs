//! The replay host on every fixture and the two real traces of `tests/real/`: one row per scheme, each
//! with exactly the trace's switches, no violation, and every mm freed.

use lazymm_engine::registry::SCHEMES;
use lazymm_replay::{replay_all, Input, Row, Variant};
use lazymm_trace::schedule::{schedule, Op};
use lazymm_trace::tasks::{census, KthreadRules};
use lazymm_trace::{read_file, Options, Trace};
use std::path::{Path, PathBuf};

fn all_schemes() -> Vec<Variant> {
    Variant::every_scheme()
}

fn run(path: &Path, archs: &[&str], timeline: bool) -> (Trace, Vec<Row>) {
    let t = read_file(path, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let c = census(&t, &KthreadRules::builtin());
    let s = schedule(&t);
    let input = Input {
        trace: &t,
        census: &c,
        schedule: &s,
        timeline,
        machine: None,
        profile: lazymm::Profile::BARE,
    };
    let rows = replay_all(&all_schemes(), archs, &input).unwrap();
    for r in &rows {
        assert_eq!(
            r.context_switches + s.self_switches,
            t.stats.count("sched_switch"),
            "{}: {} on {}",
            path.display(),
            r.scheme,
            r.arch
        );
        assert_eq!(
            r.total.violations,
            0,
            "{}: {} on {}: {:?}",
            path.display(),
            r.scheme,
            r.arch,
            r.violations
        );
        let switches = r.context_switches + r.initial_switches + r.resync_switches;
        assert_eq!(
            r.measured.context_switches, switches,
            "every model switch is accounted for"
        );
        assert_eq!(r.total.context_switches, switches + r.quiesce_switches);
        if r.frees_mms {
            assert_eq!(
                r.total.mm_created,
                r.total.mm_freed,
                "{}: {}",
                path.display(),
                r.scheme
            );
        }
    }
    (t, rows)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-trace/tests/fixtures")
        .join(name)
}

#[test]
fn every_fixture_replays_on_every_scheme_and_arch() {
    for f in [
        "ftrace_flags.txt",
        "ftrace_noflags.txt",
        "atrace_tgid.txt",
        "systrace_old.html",
        "systrace_new.html",
        "tracecmd_raw.txt",
        "tracecmd_compact.txt",
        "perf_script.txt",
        "lttng.txt",
        "lost_events.txt",
    ] {
        let archs: Vec<&str> = lazymm_engine::registry::ARCHS
            .iter()
            .map(|(a, _)| *a)
            .collect();
        run(&fixture(f), &archs, true);
    }
}

#[test]
fn hazard_pointer_scans_are_counted_from_the_recorded_reads() {
    // ftrace_flags: pid 2001 execs (its forked mm's last user goes: __mmput) and later
    // dies (its exec'd mm's last user goes): two teardowns while the trace runs, each
    // scanning the one other CPU.
    let (_, rows) = run(&fixture("ftrace_flags.txt"), &["generic"], false);
    let scans = |s: &str| {
        let r = rows.iter().find(|r| r.scheme == s).unwrap();
        (r.hazptr_scans, r.hazptr_cpus_scanned)
    };
    assert_eq!(scans("hazptr-luto"), (2, 2));
    assert_eq!(scans("hazptr-mathieu"), (2, 2));
    assert_eq!(scans("refcount"), (0, 0));
    assert_eq!(
        scans("shootdown"),
        (0, 0),
        "shootdown keeps no per-CPU state to scan"
    );
}

#[test]
fn lost_events_are_resynchronised_and_counted() {
    let t = read_file(&fixture("lost_events.txt"), &Options::default()).unwrap();
    let s = schedule(&t);
    assert_eq!(s.trace_switches, 5);
    assert_eq!(s.initial_switches, 1, "cpu 0 starts on 10");
    assert_eq!(
        s.lost_next, 1,
        "11 still ran on cpu 0 when cpu 1 switched it in"
    );
    assert_eq!(s.lost_prev, 1, "cpu 0 then ran its idle task, not 12");
    assert_eq!(s.resync_switches, 2, "cpu 0: 11 -> idle, then idle -> 12");
    assert_eq!(
        (t.stats.lost_markers, t.stats.lost_events, t.stats.backwards),
        (1, 2, 1)
    );
    let resync: Vec<(u32, u32, u32)> = s
        .ops
        .iter()
        .filter_map(|o| match *o {
            Op::Switch {
                cpu,
                prev,
                next,
                cause: lazymm_trace::schedule::Cause::Resync,
                ..
            } => Some((cpu, prev, next)),
            _ => None,
        })
        .collect();
    assert_eq!(resync, [(0, 11, 0), (0, 0, 12)]);
    let (_, rows) = run(&fixture("lost_events.txt"), &["generic"], false);
    assert!(rows.iter().all(|r| r.resync_switches == s.resync_switches));
}

#[test]
fn threads_share_one_mm_and_its_line() {
    // atrace: RenderThread (1200) is a thread of systemui (1100) and runs on both CPUs.
    let (_, rows) = run(&fixture("atrace_tgid.txt"), &["generic"], false);
    let refcount = rows.iter().find(|r| r.scheme == "refcount").unwrap();
    let none = rows.iter().find(|r| r.scheme == "none").unwrap();
    assert!(refcount.measured.shared_rmw > none.measured.shared_rmw);
    assert_eq!(
        refcount.total.mm_created, 2,
        "surfaceflinger and systemui: two processes, two mms"
    );
    assert_eq!(
        refcount.lazy_round_trips, none.lazy_round_trips,
        "round trips are the schedule's"
    );
}

#[test]
fn timeline_has_a_track_per_cpu_and_task_slices() {
    let (_, rows) = run(&fixture("ftrace_flags.txt"), &["generic"], true);
    let tl = rows[0].timeline.as_ref().expect("asked for a timeline");
    // Read as written: the JSON document's events.
    let tl = written_events(tl);
    let names: Vec<String> = tl
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "cpu 0",
            "cpu 0 lazy mm",
            "cpu 0 teardown and IPIs",
            "cpu 0 kernel",
            "cpu 1",
            "cpu 1 lazy mm",
            "cpu 1 teardown and IPIs",
            "cpu 1 kernel"
        ]
    );
    assert!(tl.iter().any(|e| e["cat"] == "task" && e["ph"] == "X"));
    assert!(tl.iter().any(|e| e["cat"] == "lazy"));
    let shoot = rows.iter().find(|r| r.scheme == "shootdown").unwrap();
    assert!(written_events(shoot.timeline.as_ref().unwrap()).len() > 10);
}

/// The `traceEvents` of `tl`'s JSON document, as a reader of the file sees them.
fn written_events(tl: &lazymm_engine::report::timeline::Timeline) -> Vec<serde_json::Value> {
    let doc: serde_json::Value =
        serde_json::from_str(&tl.to_json().expect("serialises")).expect("valid JSON");
    doc["traceEvents"].as_array().expect("traceEvents").clone()
}

/// One of the two real traces kept gzipped in `crates/lazymm-trace/tests/real/` (see its README).
fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-trace/tests/real")
        .join(format!("{name}.gz"))
}

#[test]
fn real_traces_replay_with_every_switch_and_no_violation() {
    for (name, switches) in [
        ("trace_cmd_report_6cpu.txt", 1856),
        ("android_systrace_2cpu.txt", 11074),
    ] {
        let p = real(name);
        let (_, rows) = run(&p, &["generic"], false);
        assert_eq!(rows.len(), SCHEMES.len());
        for r in &rows {
            assert_eq!(r.context_switches, switches);
        }
        let refcount = rows.iter().find(|r| r.scheme == "refcount").unwrap();
        let shootdown = rows.iter().find(|r| r.scheme == "shootdown").unwrap();
        // refcount pays a shared RMW pair per lazy round trip; shootdown does not.
        assert!(refcount.shared_rmw_per_sec() > 5.0 * shootdown.shared_rmw_per_sec());
        assert!(refcount.hottest_line_rmw_per_sec() > 0.0);
    }
}

#[test]
fn checker_timeline_shows_the_lazy_cpu_and_the_free_under_it() {
    use lazymm::{Violation, ViolationKind};
    use lazymm_engine::check::run::Event;
    // The shape of shootdown-hotplug-race: cpu 1 is lazy on an mm while it goes offline;
    // cpu 2 drops the last reference and frees it under cpu 1.
    let mm = {
        let (k, mut cpus) = lazymm::Kernel::<lazymm::scheme::Refcount, lazymm::arch::Generic>::boot(
            lazymm::Config::new(1),
        );
        let u = k.mm_alloc(&mut cpus[0]).unwrap();
        let id = u.id();
        k.mmput(&mut cpus[0], u);
        id
    };
    let op = |cpu: usize, text: String| Event::Op {
        cpu,
        text,
        mms: vec![mm],
    };
    let v = |cpu, kind| Violation {
        cpu,
        step: 6,
        mm,
        kind,
    };
    let events = vec![
        op(
            1,
            format!("[cr3 {mm}] pid 202 (user of {mm}) exits (exit_mm, then the last switch)"),
        ),
        op(
            1,
            format!("[cr3 {mm}] goes offline (cpu_offline) and comes back online"),
        ),
        op(
            2,
            "[cr3 init_mm] kworker: kthread_use_mm / kthread_unuse_mm".to_string(),
        ),
        Event::Violation(v(2, ViolationKind::LazyCpuNotInCpumask { lazy: 1 })),
        Event::Freed { cpu: 2, mm },
        Event::OpEnd {
            cpu: 1,
            text: "goes offline".into(),
            mms: vec![],
        },
    ];
    let tl = lazymm_engine::report::timeline::from_check(&events, 3, "t");
    let ev = written_events(&tl);
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| ev.iter().find(|e| pred(e)).cloned();
    // Tracks: cpu N is 4N, its page tables 4N+1, its teardown and IPIs 4N+2, its
    // kernel spans 4N+3.
    let lazy = find(&|e| e["tid"] == 5 && e["name"] == format!("{mm} (lazy)"))
        .expect("cpu 1 lazy on the mm");
    let free = find(&|e| e["name"] == format!("__mmdrop frees {mm}")).expect("the free");
    assert_eq!(free["tid"], 10, "on cpu 2's teardown track");
    let (ls, ld, fs) = (
        lazy["ts"].as_f64().unwrap(),
        lazy["dur"].as_f64().unwrap(),
        free["ts"].as_f64().unwrap(),
    );
    assert!(
        ls <= fs && fs <= ls + ld,
        "the free happens while cpu 1 is lazy on the mm"
    );
    let viol = find(&|e| e["ph"] == "i").expect("the violation");
    assert_eq!(viol["args"]["property"], "c");
    assert!(viol["name"].as_str().unwrap().starts_with("violation (c)"));
    let s = find(&|e| e["ph"] == "s").expect("an arrow");
    let f = find(&|e| e["ph"] == "f").expect("its head");
    assert_eq!(
        (s["tid"].clone(), f["tid"].clone(), s["id"].clone()),
        (8.into(), 6.into(), f["id"].clone())
    );
    let offline =
        find(&|e| e["tid"] == 4 && e["name"] == "goes offline (cpu_offline) and comes back online")
            .unwrap();
    assert!(
        offline["ts"].as_f64().unwrap() + offline["dur"].as_f64().unwrap() >= fs,
        "the offline op spans the free"
    );
}

/// A seeded generator of messy ftrace text: switches with lost events (a `prev` the
/// CPU is not running, a `next` still running elsewhere), deaths, forks of new and
/// reused pids, threads, execs of threads, exits of tasks not running.
fn messy_trace(seed: u64, lines: usize, cpus: u32) -> String {
    let mut x = seed | 1;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut running = vec![0u32; cpus as usize];
    let mut out = String::from("# tracer: nop\n");
    let mut ts = 1_000_000u64;
    let comm = |p: u32| {
        if p == 0 {
            "swapper".to_string()
        } else if p % 7 == 0 {
            format!("kworker/{p}")
        } else {
            format!("t{p}")
        }
    };
    for _ in 0..lines {
        ts += 1 + rnd(50);
        let c = rnd(cpus as u64) as u32;
        let cur = if rnd(10) == 0 {
            rnd(12) as u32
        } else {
            running[c as usize]
        };
        let tgid = if cur % 3 == 0 { cur } else { cur - cur % 3 };
        let head = format!(
            "{:>16}-{:<5} ({:>5}) [{c:03}] d..2 {}.{:06}:",
            comm(cur),
            cur,
            tgid,
            ts / 1_000_000,
            ts % 1_000_000
        );
        match rnd(10) {
            0 => {
                let child = 1 + rnd(14) as u32;
                out.push_str(&format!("{head} sched_process_fork: comm={} pid={cur} child_comm={} child_pid={child}\n", comm(cur), comm(child)));
            }
            1 => out.push_str(&format!(
                "{head} sched_process_exec: filename=/bin/x pid={} old_pid={cur}\n",
                if rnd(3) == 0 { tgid } else { cur }
            )),
            2 => out.push_str(&format!(
                "{head} sched_process_exit: comm={} pid={cur} prio=120\n",
                comm(cur)
            )),
            _ => {
                let next = if rnd(4) == 0 { 0 } else { rnd(14) as u32 };
                let state = ["S", "R", "D", "X", "Z", "R+"][rnd(6) as usize];
                out.push_str(&format!(
                    "{head} sched_switch: prev_comm={} prev_pid={cur} prev_prio=120 prev_state={state} ==> next_comm={} next_pid={next} next_prio=120\n",
                    comm(cur),
                    comm(next)
                ));
                running[c as usize] = next;
            }
        }
    }
    out
}

#[test]
fn messy_schedules_replay_without_panic_or_violation() {
    let seeds: u64 = std::env::var("MESSY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 1..=seeds {
        let text = messy_trace(seed, 300, 1 + (seed % 4) as u32);
        let t = lazymm_trace::parse_str("messy", &text, &Options::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let c = census(&t, &KthreadRules::builtin());
        let s = schedule(&t);
        let input = Input {
            trace: &t,
            census: &c,
            schedule: &s,
            timeline: seed % 8 == 0,
            machine: None,
            profile: lazymm::Profile::BARE,
        };
        for r in replay_all(&all_schemes(), &["generic", "x86"], &input).unwrap() {
            assert_eq!(
                r.context_switches + s.self_switches,
                t.stats.count("sched_switch"),
                "seed {seed}: {}",
                r.scheme
            );
            assert_eq!(
                r.total.violations, 0,
                "seed {seed}: {} on {}: {:?}",
                r.scheme, r.arch, r.violations
            );
        }
    }
}

/// `--machine`: every row prices its bookkeeping on the machine. The schedule is the same
/// under every scheme, so the prices differ only by what each scheme does per switch:
/// `none` does nothing shared, `refcount` an RMW pair on `mm_count` per lazy round trip.
#[test]
fn a_machine_prices_each_schemes_bookkeeping() {
    let path = fixture("tracecmd_raw.txt");
    let t = read_file(&path, &Options::default()).unwrap();
    let c = census(&t, &KthreadRules::builtin());
    let s = schedule(&t);
    let m = lazymm_cost::machine::Machine::load("epyc-zen4-2s").unwrap();
    let input = Input {
        trace: &t,
        census: &c,
        schedule: &s,
        timeline: false,
        machine: Some(&m),
        profile: lazymm::Profile::BARE,
    };
    let rows = replay_all(&all_schemes(), &["generic"], &input).unwrap();
    let us = |name: &str| {
        let r = rows.iter().find(|r| r.scheme == name).unwrap();
        let p = r.predicted.as_ref().unwrap();
        assert_eq!(p.machine, "epyc-zen4-2s");
        let v = serde_json::to_value(r.record(&t)).unwrap();
        assert_eq!(v["machine"], "epyc-zen4-2s");
        assert_eq!(
            v["predicted_bookkeeping_us_per_sec"].as_f64(),
            r.predicted_bookkeeping_us_per_sec()
        );
        r.predicted_bookkeeping_us_per_sec().unwrap()
    };
    let (none, refcount) = (us("none"), us("refcount"));
    assert!(
        refcount > none,
        "refcount {refcount} us/s, none {none} us/s"
    );
    // The same replay twice: the same price.
    let again = replay_all(&all_schemes(), &["generic"], &input).unwrap();
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(a.predicted, b.predicted, "{}", a.scheme);
    }
    // Without a machine, nothing is priced.
    let plain = Input {
        machine: None,
        ..input
    };
    let r = replay_all(&all_schemes(), &["generic"], &plain).unwrap();
    assert!(r.iter().all(|r| r.predicted.is_none()));
    assert!(r[0].record(&t).predicted_bookkeeping_us_per_sec.is_none());
}
