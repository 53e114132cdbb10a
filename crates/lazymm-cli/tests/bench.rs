//! `lazymm bench`: a quick run writes the whole report, every file valid, a row for every
//! scheme of the registry; bad input is refused before anything runs.

use lazymm_engine::bench::stats::NOISE_THRESHOLD;
use lazymm_engine::registry::SCHEMES;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lazymm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("the binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-cli-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn quick_bench_writes_a_whole_valid_report() {
    let d = tmpdir("quick");
    let out = d.join("report");
    let o = lazymm(&[
        "bench",
        "--quick",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--workloads",
        "idle-storm,exit-storm",
        "--cpus",
        "1,2",
        "--switch-work",
        "300",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("vs none") && stdout.contains("host context switch"));
    // Quiet in CI: no progress bar on stderr.
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // results.json: a row per scheme × workload × cpus × mode, each with the contract keys.
    let j: serde_json::Value =
        serde_json::from_str(&read(&out.join("results.json"))).expect("json");
    let rows = j["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), SCHEMES.len() * 2 * 2 * 2);
    for (scheme, _) in SCHEMES {
        for w in ["idle-storm", "exit-storm"] {
            for mode in ["bookkeeping", "realistic"] {
                for cpus in [1, 2] {
                    let found = rows.iter().any(|r| {
                        r["scheme"] == *scheme
                            && r["workload"] == w
                            && r["mode"] == mode
                            && r["cpus"] == cpus
                    });
                    assert!(found, "no row for {scheme} {w} {mode} {cpus}");
                }
            }
        }
    }
    for r in rows {
        for key in [
            "scheme",
            "arch",
            "workload",
            "cpus",
            "mode",
            "switches_per_sec",
            "min",
            "max",
            "shared_rmw_per_lazy_switch",
            "ipis_per_exit",
            "teardown_us_per_exit",
            "task_bytes",
            "task_state_bytes",
            "host_switch_ns",
            "host_fence_ns",
            "extra_ns_per_switch",
            "full_fences_per_lazy_switch",
            "vs_none",
            "vs_none_lo",
            "vs_none_hi",
            "verdict",
            "pairs",
            "teardown_us_p50",
            "teardown_us_p99",
            "teardown_us_max",
            "vs_none_mb",
            "extra_ns_vs_none_mb",
        ] {
            assert!(r.get(key).is_some(), "row lacks {key}: {r}");
        }
        // Every cell has its interval and a verdict read from it.
        let (lo, mid, hi) = (
            r["vs_none_lo"].as_f64().expect("lo"),
            r["vs_none"].as_f64().expect("vs_none"),
            r["vs_none_hi"].as_f64().expect("hi"),
        );
        assert!(0.0 < lo && lo <= mid && mid <= hi, "{r}");
        let verdict = r["verdict"].as_str().expect("verdict");
        let want = if lo > 1.0 + NOISE_THRESHOLD {
            "slower"
        } else if hi < 1.0 - NOISE_THRESHOLD {
            "faster"
        } else {
            "within noise"
        };
        assert_eq!(verdict, want, "{r}");
        // idle-storm and exit-storm have no pairs.
        assert!(r["pairs"].is_null(), "{r}");
        if r["workload"] == "exit-storm" {
            let (p50, p99, max) = (
                r["teardown_us_p50"].as_f64().expect("p50"),
                r["teardown_us_p99"].as_f64().expect("p99"),
                r["teardown_us_max"].as_f64().expect("max"),
            );
            assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
        }
        assert_eq!(r["violations"], 0, "{r}");
        assert!(r["host_switch_ns"].as_f64().expect("measured") > 0.0);
        assert!(r["host_fence_ns"].as_f64().expect("measured") > 0.0);
        if r["scheme"] == "none" {
            assert_eq!(r["extra_ns_per_switch"], 0.0, "{r}");
        }
        let expected_work = if r["mode"] == "realistic" { 300 } else { 0 };
        assert_eq!(r["switch_work_ns"], expected_work);
        let (lo, mid, hi) = (
            r["min"].as_f64().expect("min"),
            r["switches_per_sec"].as_f64().expect("median"),
            r["max"].as_f64().expect("max"),
        );
        assert!(0.0 < lo && lo <= mid && mid <= hi, "{r}");
    }
    // refcount's extra cost is visible: two shared RMWs per lazy round trip, none's zero.
    // A per-lazy-switch figure of a scheme's idle-storm row at 2 CPUs.
    let idle2 = |scheme: &str, key: &str| {
        rows.iter()
            .find(|r| r["scheme"] == scheme && r["workload"] == "idle-storm" && r["cpus"] == 2)
            .and_then(|r| r[key].as_f64())
            .expect("idle-storm row")
    };
    let rmw = |scheme: &str| idle2(scheme, "shared_rmw_per_lazy_switch");
    assert!((rmw("refcount") - 2.0).abs() < 0.05, "{}", rmw("refcount"));
    // none: only the arch's first load of each mm (its mm_cpumask bit), never per switch.
    assert!(rmw("none") < 0.01, "{}", rmw("none"));
    // The full barriers the report tells its readers to weigh against the host's barrier
    // cost: refcount's fully ordered drop (a barrier each side), shootdown's one smp_mb,
    // hazptr-mathieu's two, none's none.
    let mb = |scheme: &str| idle2(scheme, "full_fences_per_lazy_switch");
    // Each on top of the scheduler's smp_mb__after_spinlock(), one per switch, two per
    // lazy round trip on generic.
    for (scheme, want) in [
        ("refcount", 2.0),
        ("shootdown", 1.0),
        ("hazptr-mathieu", 2.0),
        ("none-mb", 1.0),
        ("none", 0.0),
    ] {
        let got = mb(scheme) - 2.0;
        assert!((got - want).abs() < 0.01, "{scheme}: {}", mb(scheme));
    }

    // The host's load at start and end, top level.
    for end in ["start", "end"] {
        let l = &j["host_load"][end];
        assert!(l["loadavg_1"].as_f64().expect("load average") >= 0.0, "{l}");
        assert!(l["total_ticks"].as_u64().expect("ticks") > 0, "{l}");
    }
    assert!(j["host_load"]["busy"].is_array());
    assert!(stdout.contains("host load average"));

    // results.csv: the same rows and a header with the same columns.
    let csv = read(&out.join("results.csv"));
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    assert_eq!(csv.lines().count(), 1 + rows.len());
    for key in rows[0].as_object().expect("object").keys() {
        assert!(header.contains(&key.as_str()), "csv lacks {key}");
    }

    // SVG charts: valid XML, one series per scheme and mode, axes with units.
    let mut svgs = 0;
    for f in [
        "throughput-idle-storm.svg",
        "throughput-exit-storm.svg",
        "teardown.svg",
    ] {
        let text = read(&out.join(f));
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let series: Vec<(String, String)> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("series"))
            .map(|n| {
                (
                    n.attribute("data-scheme").unwrap_or("").to_string(),
                    n.attribute("data-mode").unwrap_or("").to_string(),
                )
            })
            .collect();
        for (scheme, _) in SCHEMES {
            for mode in ["bookkeeping", "realistic"] {
                assert!(
                    series.contains(&(scheme.to_string(), mode.to_string())),
                    "{f} lacks {scheme} {mode}"
                );
            }
        }
        // Every point carries its interval.
        let count = |class: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(class))
                .count()
        };
        assert!(count("pt") >= SCHEMES.len() * 2 * 2, "{f}");
        assert_eq!(count("pt"), count("err"), "{f}: a point without its bar");
        let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains("simulated CPUs"), "{f}: no x label");
        assert!(
            texts.contains("per second") || texts.contains("microseconds"),
            "{f}: no unit"
        );
        svgs += 1;
    }
    assert!(svgs >= 2);
    // The slowdown chart: a within-noise point is hollow, the others are filled.
    let text = read(&out.join("slowdown-idle-storm.svg"));
    let doc = roxmltree::Document::parse(&text).expect("slowdown svg");
    let points: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("pt"))
        .collect();
    // Every scheme but none (the reference line at 1), both modes, both CPU counts.
    assert_eq!(points.len(), (SCHEMES.len() - 1) * 2 * 2);
    for p in points {
        let hollow = p.attribute("fill") == Some("#ffffff");
        let noise = p.attribute("data-verdict") == Some("within noise");
        assert_eq!(hollow, noise, "{:?}", p.attributes().collect::<Vec<_>>());
    }

    // index.html: the charts inline, the table, the machine and the command; no network.
    let html = read(&out.join("index.html"));
    // Five measured charts, and two predicted ones for each of the two machines.
    assert_eq!(html.matches("<svg").count(), 5 + 4);
    assert!(html.contains("--switch-work 300"));
    assert!(html.contains("Machine:"));
    assert!(html.contains("none-mb is none plus"));
    assert!(html.contains("within noise"));
    // The only URL is the SVG namespace, which is a name, not a fetch.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!html.contains("<script") && !html.contains("<link"));

    // Nothing but the report is left beside it.
    let left: Vec<_> = std::fs::read_dir(&d).expect("dir").collect();
    assert_eq!(left.len(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_bench_input_is_one_line_naming_the_value_and_choices() {
    let d = tmpdir("bad");
    std::fs::write(d.join("notes.txt"), "not a report").expect("write");
    let not_report = d.to_str().expect("utf-8 path");
    for (args, needle, choice) in [
        (vec!["--schemes", "refcount,bogus"], "bogus", "refcount"),
        (vec!["--workloads", "idle-storm,nope"], "nope", "exit-storm"),
        (vec!["--archs", "vax"], "vax", "generic"),
        (vec!["--cpus", "1,0"], "'0'", "4096"),
        (vec!["--cpus", "1,,2"], "''", "whole numbers"),
        (vec!["--switch-work", "-5"], "-5", "0 to 1000000"),
        (vec!["--pairs", "1,0"], "'0'", "whole numbers"),
        (vec!["--pairs", "two"], "'two'", "whole numbers"),
        (vec!["--seed", "x"], "'x'", "whole number"),
        (vec!["--frobnicate"], "frobnicate", "--quick"),
        (vec!["--out", not_report], "not a lazymm report", "--out"),
    ] {
        let mut all = vec!["bench"];
        all.extend(&args);
        let o = lazymm(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains(choice),
            "{args:?}: {err}"
        );
        assert!(o.stdout.is_empty(), "{args:?} ran something");
    }
    assert_eq!(read(&d.join("notes.txt")), "not a report");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn pairs_are_independent_of_cpus_and_oversubscribing_stops_lazy_switches() {
    let d = tmpdir("pairs");
    let out = d.join("report");
    let o = lazymm(&[
        "bench",
        "--quick",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--workloads",
        "threads,idle-storm",
        "--schemes",
        "refcount,none",
        "--cpus",
        "2",
        "--pairs",
        "1,2,4",
        "--switch-work",
        "0",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_str(&read(&out.join("results.json"))).expect("json");
    let rows = j["rows"].as_array().expect("rows");
    // threads: 3 pair counts x 2 schemes; idle-storm, which has no pairs: 2 schemes.
    assert_eq!(rows.len(), 3 * 2 + 2);
    // A threads row's lazy switches per second, and their share of all switches.
    let lazy = |scheme: &str, pairs: u64| {
        let r = rows
            .iter()
            .find(|r| r["scheme"] == scheme && r["workload"] == "threads" && r["pairs"] == pairs)
            .unwrap_or_else(|| panic!("no threads row for {scheme} with {pairs} pairs"));
        assert_eq!(r["cpus"], 2);
        let per_sec = r["lazy_switches_per_sec"].as_f64().expect("lazy/s");
        (
            per_sec,
            per_sec / r["switches_per_sec"].as_f64().expect("switch/s"),
        )
    };
    for scheme in ["refcount", "none"] {
        // 1 pair on 2 CPUs: each CPU idles between its task's wakeups, every switch
        // away from the task is lazy. 4 pairs on 2 CPUs (2N > P): every CPU always has
        // a runnable thread, and switches stop going through idle.
        let ((one, one_share), (four, four_share)) = (lazy(scheme, 1), lazy(scheme, 4));
        assert!(one > 0.0, "{scheme}: no lazy switches with 1 pair");
        assert!(
            four_share < 0.5 * one_share,
            "{scheme}: {four_share} of switches lazy with 4 pairs, {one_share} with 1"
        );
        // (Per second, lazy switches need not drop on a small host: one pair's rate is
        // bounded by how fast the host wakes the partner's thread, four pairs' is not;
        // the share above is the machine-independent test.)
        let _ = (one, four);
    }
    assert!(rows
        .iter()
        .filter(|r| r["workload"] == "idle-storm")
        .all(|r| r["pairs"].is_null()));
    // The pair workload's charts have pairs on the x axis.
    let svg = read(&out.join("throughput-threads-2cpus.svg"));
    assert!(svg.contains("pairs of tasks on 2 simulated CPUs"));
    let _ = std::fs::remove_dir_all(&d);
}

/// The quick report has the section predicted by the simulator: for the default large
/// machine and for the preset nearest this host, each chart titled as a prediction of its
/// machine, naming the kernel profile, written beside the report and shown under the
/// Prediction marking.
#[test]
fn quick_report_has_the_predicted_section_with_every_chart_marked() {
    let d = tmpdir("predicted");
    let out = d.join("report");
    let o = lazymm(&[
        "bench",
        "--quick",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--workloads",
        "idle-storm",
        "--schemes",
        "refcount,none",
        "--cpus",
        "1",
        "--kernel",
        "6.12",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = read(&out.join("index.html"));
    let at = page
        .find("<h2 id=\"predicted\">")
        .expect("the page has the predicted section");
    let section = &page[at..page.find("<h2 id=\"table\">").expect("the table follows")];
    assert!(
        section.contains("class=\"kind kind-prediction\""),
        "{section}"
    );
    assert!(section.contains("Prediction, not a measurement."));
    assert!(
        section.contains("big-1024, kernel profile 6.12"),
        "{section}"
    );
    let files: Vec<String> = std::fs::read_dir(&out)
        .expect("report dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("predicted-"))
        .collect();
    // Two machines (big-1024 and the one nearest this host), two charts each.
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files
        .iter()
        .any(|f| f == "predicted-big-1024-threads-generic-vs-refcount.svg"));
    for f in &files {
        let svg = read(&out.join(f));
        let machine = f
            .strip_prefix("predicted-")
            .and_then(|r| r.split("-threads-").next())
            .expect("predicted-MACHINE-threads-...");
        let title = format!("(predicted, {machine})");
        assert!(svg.contains(&title), "{f} lacks {title}");
        assert!(svg.contains("kernel 6.12"), "{f} does not name the profile");
        // Every opt-out scheme has its line; on the speed chart refcount is the reference.
        for s in ["shootdown", "lazy-percpu", "hazptr-luto", "hazptr-mathieu"] {
            assert!(svg.contains(s), "{f} lacks {s}");
        }
        // The page shows it inline, in the predicted section.
        assert!(
            section.contains(&format!("href=\"{f}\"")),
            "{f} not on the page"
        );
    }
}
