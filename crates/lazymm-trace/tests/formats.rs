//! One fixture test per format, the odd lines each format has, bad input, gzip, and the
//! two real traces kept gzipped in `tests/real/` (sources and licenses in its README).

use lazymm_trace::tasks::{census, Kind, KthreadRules, Why};
use lazymm_trace::{
    parse_bytes, parse_str, read_file, Error, Format, Options, PrevState, TraceEvent,
};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn parse(name: &str) -> lazymm_trace::Trace {
    read_file(&fixture(name), &Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn switches(t: &lazymm_trace::Trace) -> Vec<(u32, u32, u32, PrevState)> {
    t.records
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Switch {
                prev,
                prev_state,
                next,
            } => Some((r.cpu, prev.pid, next.pid, *prev_state)),
            _ => None,
        })
        .collect()
}

#[test]
fn ftrace_with_flags_column() {
    let t = parse("ftrace_flags.txt");
    assert_eq!(t.format, Some(Format::Ftrace));
    assert_eq!(t.stats.count("sched_switch"), 7);
    assert_eq!(t.stats.count("sched_wakeup"), 1);
    assert_eq!(t.stats.count("sched_process_fork"), 1);
    assert_eq!(t.stats.count("sched_process_exec"), 1);
    assert_eq!(t.stats.count("sched_process_exit"), 1);
    assert_eq!(t.stats.count("sched_process_free"), 1);
    assert_eq!(t.stats.skipped.get("tracing_mark_write"), Some(&1));
    assert_eq!(t.stats.skipped.get("(function tracer)"), Some(&1));
    assert_eq!((t.stats.lost_markers, t.stats.lost_events), (1, 3));
    let s = switches(&t);
    assert_eq!(s[0], (0, 1977, 0, PrevState::Blocked));
    assert!(
        s.contains(&(1, 2001, 3000, PrevState::Dead)),
        "Z is a dead task's last switch"
    );
    assert!(
        s.contains(&(1, 3000, 77, PrevState::Runnable)),
        "R+ is preempted"
    );
    let web = t.records.iter().find_map(|r| match &r.event {
        TraceEvent::Switch { next, .. } if next.pid == 3000 => Some(next.comm.clone()),
        _ => None,
    });
    assert_eq!(
        web.as_deref(),
        Some("Web Content"),
        "a comm with a space stays whole"
    );
    assert_eq!(t.records[0].ts_ns, 100_000_100_000);
    assert_eq!(t.nr_cpus(), 2);
}

#[test]
fn ftrace_without_flags_column_and_backwards_clock() {
    let t = parse("ftrace_noflags.txt");
    assert_eq!(t.format, Some(Format::Ftrace));
    assert_eq!(t.stats.count("sched_switch"), 4);
    assert_eq!(
        t.stats.skipped.get("0"),
        Some(&2),
        "atrace markers print as event '0'"
    );
    assert_eq!(
        t.stats.backwards, 1,
        "the clock-sync line at 0.0 goes backwards on cpu 0"
    );
    assert_eq!(t.stats.first_backwards[0].line, 11);
    assert_eq!(switches(&t)[1], (0, 13696, 0, PrevState::Blocked));
}

#[test]
fn atrace_with_tgid_column() {
    let t = parse("atrace_tgid.txt");
    assert_eq!(t.format, Some(Format::Atrace));
    assert_eq!(t.stats.count("sched_switch"), 5);
    assert_eq!(
        t.tgid_of.get(&1200),
        Some(&1100),
        "RenderThread is a thread of systemui"
    );
    assert_eq!(t.tgid_of.get(&589), Some(&589));
    assert_eq!(t.tgid_of.get(&0), None, "(-----) is no tgid");
    let c = census(&t, &KthreadRules::builtin());
    assert_eq!(c.get(1200).unwrap().tgid, 1100);
    assert_eq!(c.get(1200).unwrap().why, Why::Tgid);
    assert_eq!(c.get(40).unwrap().kind, Kind::Kthread);
    assert_eq!(
        c.guessed(),
        0,
        "the TGID column names every user task's process"
    );
}

#[test]
fn systrace_old_and_new_pages() {
    let t = parse("systrace_old.html");
    assert_eq!(t.format, Some(Format::Systrace));
    assert_eq!(t.stats.count("sched_switch"), 3);
    assert_eq!(t.stats.count("sched_wakeup"), 1);
    assert_eq!(
        switches(&t)[2],
        (0, 14584, 0, PrevState::Blocked),
        "the line that closes the string counts"
    );
    let t = parse("systrace_new.html");
    assert_eq!(t.format, Some(Format::Systrace));
    assert_eq!(
        t.stats.count("sched_switch"),
        2,
        "the JSON block is skipped"
    );
    assert_eq!(t.tgid_of.get(&589), Some(&589));
}

#[test]
fn trace_cmd_raw_fields() {
    let t = parse("tracecmd_raw.txt");
    assert_eq!(t.format, Some(Format::TraceCmd));
    assert_eq!(t.stats.count("sched_switch"), 5);
    assert_eq!((t.stats.lost_markers, t.stats.lost_events), (1, 5));
    assert_eq!(t.stats.skipped.get("print"), Some(&1));
    assert_eq!(t.stats.skipped.get("sched_overutilized"), Some(&1));
    let s = switches(&t);
    assert_eq!(s[0], (1, 1701, 0, PrevState::Dead), "64 is TASK_DEAD");
    assert_eq!(s[2].3, PrevState::Runnable, "4096 is preempted");
    assert_eq!(s[3].3, PrevState::Blocked, "130 is D|K");
    let c = census(&t, &KthreadRules::builtin());
    assert_eq!(c.get(46).unwrap().kind, Kind::Kthread);
    assert_eq!(c.get(0).unwrap().kind, Kind::Idle);
    assert_eq!(c.get(1642).unwrap().why, Why::Guess);
}

#[test]
fn trace_cmd_compact_form() {
    let t = parse("tracecmd_compact.txt");
    assert_eq!(t.format, Some(Format::TraceCmd));
    assert_eq!(t.stats.count("sched_switch"), 5);
    let s = switches(&t);
    assert_eq!(s[0], (1, 1701, 0, PrevState::Dead));
    assert_eq!(s[2], (0, 1642, 46, PrevState::Runnable));
    assert_eq!(s[3], (0, 46, 1642, PrevState::Blocked));
    assert_eq!(s[4].3, PrevState::Dead, "x is TASK_DEAD");
    let w = t.records.iter().find_map(|r| match &r.event {
        TraceEvent::Wakeup {
            task, target_cpu, ..
        } => Some((task.pid, *target_cpu)),
        _ => None,
    });
    assert_eq!(w, Some((1642, Some(0))));
}

#[test]
fn perf_script_sched_events() {
    let t = parse("perf_script.txt");
    assert_eq!(t.format, Some(Format::Perf));
    assert_eq!(
        t.stats.count("sched_switch"),
        6,
        "':-1 PID/-1' (an exited thread) names no task"
    );
    assert_eq!(t.stats.count("sched_process_fork"), 2);
    assert_eq!(t.stats.count("sched_process_exec"), 1);
    assert_eq!(t.stats.count("sched_process_exit"), 1);
    assert_eq!(t.stats.count("sched_process_free"), 1);
    assert_eq!(
        t.tgid_of.get(&21002),
        Some(&21001),
        "perf's pid/tid names the thread group"
    );
    let s = switches(&t);
    assert_eq!(s[1], (0, 21001, 0, PrevState::Runnable), "the compact body");
    assert_eq!(s[3].3, PrevState::Dead);
    let c = census(&t, &KthreadRules::builtin());
    assert_eq!(c.get(21002).unwrap().tgid, 21001);
    assert_eq!(
        c.get(4000).unwrap().why,
        Why::Guess,
        "'Web Content 4000' has no pid/tid"
    );
}

#[test]
fn babeltrace2_lttng_kernel_trace() {
    let t = parse("lttng.txt");
    assert_eq!(t.format, Some(Format::Lttng));
    assert_eq!(t.stats.count("lttng_statedump_process_state"), 3);
    assert_eq!(t.stats.count("sched_switch"), 4);
    assert_eq!(t.stats.skipped.get("syscall_entry_read"), Some(&1));
    assert_eq!(t.stats.count("sched_wakeup_new"), 1);
    let s = switches(&t);
    assert_eq!(s[0], (0, 1, 9, PrevState::Blocked));
    assert_eq!(s[3], (0, 502, 0, PrevState::Dead));
    assert_eq!(t.records[0].ts_ns, 36_000_000_000_100);
    let c = census(&t, &KthreadRules::builtin());
    assert_eq!(c.get(9).unwrap().why, Why::Statedump);
    assert_eq!(c.get(501).unwrap().tgid, 500);
    assert_eq!(
        c.get(502).unwrap().tgid,
        500,
        "the fork's child_pid names the process"
    );
    assert_eq!(c.get(1).unwrap().kind, Kind::User);
}

#[test]
fn bad_line_names_file_line_and_expectation() {
    let e = read_file(&fixture("bad_line.txt"), &Options::default()).unwrap_err();
    let Error::Malformed { line, expected, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*line, 3);
    assert!(expected.contains("prev_pid"), "{expected}");
    let msg = e.to_string();
    assert!(msg.contains("bad_line.txt:3:"), "{msg}");
    let t = read_file(
        &fixture("bad_line.txt"),
        &Options {
            lenient: true,
            ..Options::default()
        },
    )
    .unwrap();
    // The malformed sched_switch is skipped; the line with no header is not an event
    // replay needs, so it is skipped without --lenient too.
    assert_eq!(t.stats.malformed, 1);
    assert_eq!(t.stats.skipped.get("(line with no event header)"), Some(&1));
    assert_eq!(t.stats.count("sched_switch"), 2);
}

/// A CPU number no kernel has is a malformed line: the fuzzer's LTTng input with a
/// `cpu_id` of 4026531836 once made the schedule builder ask for a 16 GB per-CPU table.
#[test]
fn cpu_numbers_past_nr_cpus_are_malformed() {
    let line = |cpu: u32| {
        format!(
            "[10:00:00.000000100] (+0.000000100) h sched_switch: {{ cpu_id = {cpu} }}, \
             {{ prev_comm = \"a\", prev_tid = 5, prev_prio = 20, prev_state = 1, \
             next_comm = \"b\", next_tid = 6, next_prio = 20 }}\n"
        )
    };
    let last = lazymm_trace::NR_CPUS_MAX - 1;
    let t = parse_str("x", &line(last), &Options::default()).unwrap();
    assert_eq!(t.nr_cpus(), lazymm_trace::NR_CPUS_MAX as usize);
    let e = parse_str("x", &line(4_026_531_836), &Options::default()).unwrap_err();
    let Error::Malformed {
        line: 1, expected, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(
        expected.contains("below 8192") && expected.contains("4026531836"),
        "{expected}"
    );
    let lenient = Options {
        lenient: true,
        ..Options::default()
    };
    let text = format!("{}{}", line(1), line(4_026_531_836));
    let t = parse_str("x", &text, &lenient).unwrap();
    assert_eq!((t.stats.malformed, t.nr_cpus()), (1, 2));
    // The fuzzer's input itself: parsed leniently, scheduled, in bounded memory.
    let t = read_file(&fixture("lttng_fuzz_cpu_id.txt"), &lenient).unwrap();
    assert!(t.nr_cpus() <= 2, "{} CPUs", t.nr_cpus());
    let s = lazymm_trace::schedule::schedule(&t);
    assert_eq!(
        s.trace_switches + s.self_switches,
        t.stats.count("sched_switch")
    );
}

#[test]
fn unknown_format_and_forced_format() {
    let e = parse_str("x", "hello\nworld\n", &Options::default()).unwrap_err();
    assert!(matches!(e, Error::UnknownFormat { .. }));
    assert!(e.to_string().contains("--format"));
    let text = std::fs::read_to_string(fixture("ftrace_flags.txt")).unwrap();
    let forced = parse_str(
        "x",
        &text,
        &Options {
            format: Some(Format::TraceCmd),
            lenient: false,
        },
    )
    .unwrap();
    assert_eq!(forced.format, Some(Format::TraceCmd));
    assert_eq!(forced.stats.count("sched_switch"), 7);
}

#[test]
fn gzipped_input_reads_as_is() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let text = std::fs::read(fixture("tracecmd_raw.txt")).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).unwrap();
    let bytes = gz.finish().unwrap();
    let a = parse_bytes("t.gz", &bytes, &Options::default()).unwrap();
    let b = parse_bytes("t", &text, &Options::default()).unwrap();
    assert_eq!(a.records, b.records);
    let e = parse_bytes("bad.gz", &bytes[..bytes.len() / 2], &Options::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

/// One of the two real traces kept gzipped in `tests/real/` (see its README).
fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/real")
        .join(format!("{name}.gz"))
}

#[test]
fn real_trace_cmd_report_6cpu() {
    let p = real("trace_cmd_report_6cpu.txt");
    let t = read_file(&p, &Options::default()).unwrap();
    assert_eq!(t.format, Some(Format::TraceCmd));
    assert_eq!(t.stats.count("sched_switch"), 1856);
    assert_eq!(t.stats.count("sched_wakeup"), 1068);
    assert_eq!(t.nr_cpus(), 6);
}

#[test]
fn real_android_systrace_2cpu() {
    let p = real("android_systrace_2cpu.txt");
    let t = read_file(&p, &Options::default()).unwrap();
    assert_eq!(t.format, Some(Format::Ftrace));
    assert_eq!(t.stats.count("sched_switch"), 11074);
    assert_eq!(t.stats.count("sched_wakeup"), 6827);
    assert_eq!(t.stats.backwards, 1, "the synthetic clock-sync line at 0.0");
    assert_eq!(t.nr_cpus(), 2);
}

/// The events of a fixture, by kind: sched_switch, sched_wakeup, sched_wakeup_new,
/// fork, exec, exit, free.
fn counts(t: &lazymm_trace::Trace) -> [u64; 7] {
    [
        "sched_switch",
        "sched_wakeup",
        "sched_wakeup_new",
        "sched_process_fork",
        "sched_process_exec",
        "sched_process_exit",
        "sched_process_free",
    ]
    .map(|k| t.stats.count(k))
}

/// Every output option of ftrace and trace-cmd that prints text parses without
/// `--lenient`: each fixture (tests/fixtures/README.md says how each was recorded) gives
/// every needed event it holds, as many as the file has lines for them.
#[test]
fn every_text_output_option_parses_by_default() {
    let cases: &[(&str, Format, [u64; 7])] = &[
        (
            "ftrace_irq_info_off.txt",
            Format::Ftrace,
            [8, 10, 1, 1, 0, 0, 0],
        ),
        (
            "ftrace_record_tgid.txt",
            Format::Ftrace,
            [8, 2, 3, 3, 2, 1, 1],
        ),
        (
            "ftrace_stacktrace_sym.txt",
            Format::Ftrace,
            [1, 0, 0, 0, 1, 1, 0],
        ),
        ("ftrace_latency.txt", Format::Ftrace, [8, 3, 3, 3, 2, 1, 0]),
        (
            "ftrace_marker_lines.txt",
            Format::Ftrace,
            [7, 0, 0, 0, 0, 0, 0],
        ),
        (
            "ftrace_function_sym.txt",
            Format::Ftrace,
            [1, 0, 1, 1, 1, 0, 0],
        ),
        (
            "ftrace_function_graph.txt",
            Format::Ftrace,
            [1, 0, 0, 0, 1, 0, 0],
        ),
        (
            "tracecmd_plugin.txt",
            Format::TraceCmd,
            [12, 3, 0, 2, 2, 1, 0],
        ),
        (
            "tracecmd_full_ts.txt",
            Format::TraceCmd,
            [12, 3, 0, 2, 2, 1, 0],
        ),
        (
            "tracecmd_latency.txt",
            Format::TraceCmd,
            [12, 3, 0, 2, 2, 1, 0],
        ),
        (
            "tracecmd_ts_diff.txt",
            Format::TraceCmd,
            [12, 3, 0, 2, 2, 1, 0],
        ),
        (
            "tracecmd_wakeup_latency.txt",
            Format::TraceCmd,
            [12, 4, 0, 2, 2, 1, 0],
        ),
        ("perf_callchain.txt", Format::Perf, [5, 3, 0, 0, 0, 0, 0]),
    ];
    for (name, format, want) in cases {
        let t = parse(name);
        assert_eq!(t.format, Some(*format), "{name}");
        assert_eq!(&counts(&t), want, "{name}: {:?}", t.stats);
        assert_eq!(t.stats.malformed, 0, "{name}");
    }
}

#[test]
fn skipped_lines_are_counted_by_kind() {
    let t = parse("ftrace_stacktrace_sym.txt");
    // Three `<stack trace>` entries and their 27 ` => func+0x../0x.. <addr>` lines.
    assert_eq!(t.stats.skipped.get("(stack trace)"), Some(&30));
    let t = parse("perf_callchain.txt");
    assert_eq!(t.stats.skipped.get("(stack trace)"), Some(&115));
    let t = parse("ftrace_marker_lines.txt");
    assert_eq!(t.stats.skipped.get("tracing_mark_write"), Some(&1));
    assert_eq!(t.stats.skipped.get("(line with no event header)"), Some(&2));
    let t = parse("ftrace_function_sym.txt");
    assert_eq!(t.stats.skipped.get("(function tracer)"), Some(&5));
    let t = parse("ftrace_function_graph.txt");
    assert_eq!(t.stats.skipped.get("(function_graph tracer)"), Some(&4));
    let t = parse("tracecmd_wakeup_latency.txt");
    assert_eq!(
        t.stats.skipped.get("(line with no event header)"),
        Some(&3),
        "the closing summary"
    );
}

#[test]
fn latency_format_times_and_cpus() {
    // ftrace's latency format: CPU in the flags column, microseconds since the start.
    let t = parse("ftrace_latency.txt");
    let first = &t.records[0];
    assert_eq!((first.cpu, first.ts_ns), (0, 16_364_000));
    // trace-cmd -l keeps seconds.
    let t = parse("tracecmd_latency.txt");
    assert!(t.records.iter().any(|r| r.cpu == 1));
    assert!(t.records[0].ts_ns > 1_631_000_000_000);
    // The same events as the plain report, at the same times.
    let plain = parse("tracecmd_plugin.txt");
    let key = |t: &lazymm_trace::Trace| {
        t.records
            .iter()
            .map(|r| (r.ts_ns / 1000, r.cpu, r.event.kind()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&t), key(&plain));
    assert_eq!(key(&parse("tracecmd_ts_diff.txt")), key(&plain));
}

#[test]
fn record_tgid_fills_the_thread_groups() {
    let t = parse("ftrace_record_tgid.txt");
    assert!(!t.tgid_of.is_empty());
    assert_eq!(t.tgid_of.get(&9857), Some(&9857));
}

#[test]
fn function_graph_events_need_their_timestamps() {
    let t = parse("ftrace_function_graph.txt");
    assert_eq!(t.records[0].ts_ns, 1_615_392_023_000);
    assert_eq!(t.records[0].cpu, 0);
    let e = read_file(
        &fixture("ftrace_function_graph_no_abstime.txt"),
        &Options {
            format: Some(Format::Ftrace),
            lenient: false,
        },
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(":10:"), "{msg}");
    assert!(msg.contains("funcgraph-abstime"), "{msg}");
}

/// ftrace's raw and hex options print event ids without fields, and bin prints binary:
/// replay cannot use them, and says so with the file and line.
#[test]
fn raw_hex_and_bin_are_named_errors() {
    for (name, words) in [
        ("ftrace_raw.txt", "options/raw"),
        ("ftrace_hex.txt", "options/hex"),
    ] {
        let e = read_file(&fixture(name), &Options::default()).unwrap_err();
        let Error::Malformed { line, .. } = &e else {
            panic!("{name}: {e:?}")
        };
        assert!(*line > 1, "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains(words), "{msg}");
    }
    // Binary is not a trace: --lenient does not make it one.
    for lenient in [false, true] {
        let opts = Options {
            lenient,
            ..Options::default()
        };
        let e = read_file(&fixture("ftrace_bin.txt"), &opts).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Io { .. }), "{msg}");
        assert!(
            msg.contains("ftrace_bin.txt: line 13: expected text"),
            "{msg}"
        );
        assert!(
            msg.contains("options/bin") && !msg.contains("--lenient"),
            "{msg}"
        );
    }
}

/// No prefix of any fixture line panics any parser (the fuzz targets do more, with
/// cargo-fuzz; this runs everywhere): every line cut at every character, parsed alone
/// in every format, leniently and not.
#[test]
fn every_prefix_of_every_fixture_line_parses_or_errs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines().take(60) {
            for (cut, _) in line.char_indices().chain([(line.len(), ' ')]) {
                let piece = &line[..cut];
                for &format in Format::ALL {
                    for lenient in [false, true] {
                        let opts = Options {
                            format: Some(format),
                            lenient,
                        };
                        let _ = parse_str("x", piece, &opts);
                    }
                }
                let _ = parse_str("x", piece, &Options::default());
            }
        }
    }
}
