//! The lab's report: a terminal table, `results.json`, `results.csv`, `index.html`, and
//! beside them the console log, each phase's raw trace and the kernel's config. Every
//! table is built once as [`Section`]s and drawn for the terminal and the page; the
//! directory is written whole or not at all (`lazymm_engine::report::write_dir`).

use crate::compare::Kind;
use crate::{spec, LabRun};
use lazymm_engine::report::{write_dir, ReportError};
use std::fmt::Write as _;
use std::path::Path;

/// One table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Section {
    /// Title.
    pub title: String,
    /// A sentence under the title.
    pub note: String,
    /// Column heads.
    pub head: Vec<String>,
    /// Rows: cells and a class (`good`, `bad` or empty).
    pub rows: Vec<SectionRow>,
}

/// One row of a [`Section`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectionRow {
    /// The cells.
    pub cells: Vec<String>,
    /// `good`, `bad` or empty.
    pub class: &'static str,
}

fn num(x: Option<f64>, kind: Kind) -> String {
    match x {
        None => "-".into(),
        Some(v) => match kind {
            Kind::Count => format!("{v:.0}"),
            Kind::Ratio => format!("{v:.3}"),
            Kind::Rate => format!("{v:.1}"),
        },
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn row(cells: Vec<String>) -> SectionRow {
    SectionRow { cells, class: "" }
}

fn phase_label(run: &LabRun, p: &spec::Phase) -> String {
    let what = if spec::has_pairs(&run.workload) {
        "pairs"
    } else {
        "workers"
    };
    let n = if p.pairs == 0 {
        format!("{} (one per CPU)", run.cpus)
    } else {
        p.pairs.to_string()
    };
    format!("{what} {n}, {}", if p.pin { "pinned" } else { "unpinned" })
}

/// Every table of the report.
pub fn sections(run: &LabRun) -> Vec<Section> {
    let mut out = Vec::new();
    let scheme = run.kernel.implied.scheme;
    if spec::has_pairs(&run.workload) || run.phases.len() > 1 {
        let mut s = Section {
            title: "Placement (the kernel's scheduler, from its own events)".into(),
            note: "switches through idle: switches into a user task whose previous task was idle, over all switches into user tasks; wakeups (sched_waking matched to sched_wakeup, user tasks) placed on the waker's CPU, else the task's previous CPU, else an idle CPU sharing the LLC with the waker or the previous CPU, else elsewhere; co-location: switch-ins of a pair's end on the CPU where its partner last ran; migrations per guest second are a rate (see Time).".into(),
            head: ["phase", "switches thru idle", "wakeups", "on waker", "on prev", "idle same LLC", "elsewhere", "pair co-located", "migrations", "migrations/s (guest)"].iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        };
        for ph in &run.phases {
            let p = &ph.kernel.placement;
            s.rows.push(row(vec![
                phase_label(run, &ph.phase),
                pct(ph.kernel.through_idle_frac()),
                p.wakeups.to_string(),
                pct(p.on_waker_frac()),
                pct(p.on_prev_frac()),
                pct(p.idle_same_llc_frac()),
                pct(p.elsewhere_frac()),
                pct(p.colocated_frac()),
                p.migrations.to_string(),
                if ph.kernel.seconds > 0.0 {
                    format!("{:.1}", p.migrations as f64 / ph.kernel.seconds)
                } else {
                    "-".into()
                },
            ]));
        }
        out.push(s);
    }
    for (i, ph) in run.phases.iter().enumerate() {
        let label = phase_label(run, &ph.phase);
        let k = &ph.kernel;
        let mut c = Section {
            title: format!("Phase {i} ({label}): kernel beside the model's {scheme}@{}", run.arch),
            note: format!(
                "{:.3} guest seconds of trace ({}); the same schedule replayed through the model. diff = (model - kernel) / kernel. The headline row must agree within {}%.",
                k.seconds,
                ph.trace_file,
                crate::TOLERANCE_PCT
            ),
            head: ["quantity", "kind", "kernel", "model", "diff", "check", "from"].iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        };
        for r in &ph.comparison {
            let (check, class) = match r.agrees() {
                Some(true) => (
                    format!(
                        "agrees (within {:.0}%)",
                        r.headline_tolerance_pct.unwrap_or(0.0)
                    ),
                    "good",
                ),
                Some(false) => (
                    format!(
                        "DIFFERS (> {:.0}%)",
                        r.headline_tolerance_pct.unwrap_or(0.0)
                    ),
                    "bad",
                ),
                None => (String::new(), ""),
            };
            let kind = match r.kind {
                Kind::Count => "count",
                Kind::Ratio => "ratio",
                Kind::Rate => "rate (not a measurement)",
            };
            c.rows.push(SectionRow {
                cells: vec![
                    r.quantity.clone(),
                    kind.into(),
                    num(r.kernel, r.kind),
                    num(r.model, r.kind),
                    r.diff_pct.map_or("-".into(), |d| format!("{d:+.1}%")),
                    check,
                    r.source.clone(),
                ],
                class,
            });
        }
        out.push(c);
        let td = k.teardowns();
        let mut rc = Section {
            title: format!("Phase {i}: the kernel's remote function calls and IPIs"),
            note: format!("csd_queue_cpu (one per remote CPU), csd_function_entry on the target, ipi_send_cpu/ipi_send_cpumask by callback; per teardown over the kernel's {td} mm teardowns; per second of guest time (a rate)."),
            head: ["event", "name", "count", "per teardown", "per guest s"].iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        };
        let mut add = |ev: &str, m: &std::collections::BTreeMap<String, u64>| {
            for (name, n) in m {
                rc.rows.push(row(vec![
                    ev.into(),
                    name.clone(),
                    n.to_string(),
                    if td > 0 {
                        format!("{:.3}", *n as f64 / td as f64)
                    } else {
                        "-".into()
                    },
                    if k.seconds > 0.0 {
                        format!("{:.1}", *n as f64 / k.seconds)
                    } else {
                        "-".into()
                    },
                ]));
            }
        };
        add("csd_queue_cpu func", &k.remote_calls);
        add("csd_function_entry (remote) func", &k.remote_runs);
        add("ipi_send callback", &k.ipis_by_callback);
        add("ipi_send callsite", &k.ipis_by_callsite);
        add("tlb_flush reason", &k.tlb_flush_by_reason);
        out.push(rc);
        let mut fc = Section {
            title: format!("Phase {i}: the kernel's remote flush calls by cause, and fan-out at teardown"),
            note: "cause: the sending task's next lifecycle event (exit: exit_mmap; exec: the old mm; fork: dup_mmap); fan-out: remote CPUs one teardown flush was queued to (mm_cpumask minus the sender), teardowns with none are not listed.".into(),
            head: ["function or fan-out", "cause or CPUs", "count"].iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        };
        for (f, m) in &k.flush_calls {
            for (cause, n) in m {
                fc.rows
                    .push(row(vec![f.clone(), cause.label().into(), n.to_string()]));
            }
        }
        for (n, count) in &k.teardown_fanout {
            fc.rows.push(row(vec![
                "teardown flush fan-out".into(),
                format!("{n} remote CPUs"),
                count.to_string(),
            ]));
        }
        fc.rows.push(row(vec![
            "events".into(),
            "forks / exits / last-thread exits / execs".into(),
            format!(
                "{} / {} / {} / {}",
                k.forks, k.exits, k.last_thread_exits, k.execs
            ),
        ]));
        fc.rows.push(row(vec![
            "ring buffer".into(),
            "events dropped (entries written - in buffer)".into(),
            k.ring_lost.map_or("?".into(), |n| n.to_string()),
        ]));
        out.push(fc);
        let (note, rule_a, rule_b, rule_c) = if run.arch == "x86" {
            ("Both rules replayed on the trace's own switches: x86 6.12 clears a CPU's bit when it switches to another mm (and when a flush IPI takes a lazy CPU off the mm); 6.14+ (209954cbc7d0, the model's x86) keeps every CPU the mm ran on until a trim. The kernel's count is its csd_queue_cpu at teardown.",
             "x86 6.12 rule on the schedule (bit cleared at switch)", "6.14+ rule on the schedule (bit kept)", "6.14+ less trims seen")
        } else {
            ("powerpc never clears a CPU's bit at a switch: the mask keeps every CPU the mm ran on (the model's powerpc) until exit_flush_lazy_tlbs clears it, at exit_mmap or in a trim by flush_type_needed on an ordinary flush (review V1: the model has no trim). The first rule column is x86's, shown for contrast.",
             "x86 6.12 rule on the schedule (for contrast)", "every CPU the mm ran on (no trim)", "less the CPUs trimmed before (flush_type_needed)")
        };
        let vc = Section {
            title: format!("Phase {i}: which mm_cpumask rule the kernel follows (remote CPUs at the teardowns' flushes)"),
            note: note.into(),
            head: ["kernel (measured)", rule_a, rule_b, rule_c, &format!("model {scheme}@{}", run.arch)].iter().map(|s| s.to_string()).collect(),
            rows: vec![row(vec![
                ph.comparison.iter().find(|r| r.headline_tolerance_pct.is_none() && r.quantity.contains("at mm teardown") && r.kind == Kind::Count).and_then(|r| r.kernel).map_or("-".into(), |v| format!("{v:.0}")),
                k.rule_cleared_at_switch.to_string(),
                k.rule_ran_on.to_string(),
                k.rule_kept_until_trim.to_string(),
                ph.model.iter().find(|m| m.scheme == scheme).map_or("-".into(), |m| m.ipis_sent.to_string()),
            ])],
        };
        out.push(vc);
        let mut ms = Section {
            title: format!("Phase {i}: every scheme on {} replaying this schedule (the model)", run.arch),
            note: format!("{} tasks' process guessed; parser skipped (not needed by replay): {}; malformed lines skipped: {}.",
                ph.guessed_tasks,
                ph.skipped_by_parser.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
                ph.malformed.0),
            head: ["scheme", "IPIs sent", "IPIs handled", "teardowns", "IPIs/teardown", "lazy switches", "resync switches", "full fences", "shared RMWs", "violations"].iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        };
        for m in &ph.model {
            ms.rows.push(SectionRow {
                cells: vec![
                    format!(
                        "{}{}",
                        m.scheme,
                        if m.scheme == scheme {
                            " (the kernel's)"
                        } else {
                            ""
                        }
                    ),
                    m.ipis_sent.to_string(),
                    m.ipis_received.to_string(),
                    m.teardowns.to_string(),
                    if m.teardowns > 0 {
                        format!("{:.3}", m.ipis_sent as f64 / m.teardowns as f64)
                    } else {
                        "-".into()
                    },
                    m.lazy_switches.to_string(),
                    m.resync_switches.to_string(),
                    m.full_fences.to_string(),
                    m.shared_rmw.to_string(),
                    m.violations.to_string(),
                ],
                class: if m.violations > 0 { "bad" } else { "" },
            });
        }
        out.push(ms);
    }
    out
}

/// Draws sections as aligned text.
pub fn draw(sections: &[Section]) -> String {
    let mut s = String::new();
    for sec in sections {
        let _ = writeln!(s, "\n{}", sec.title);
        let mut w: Vec<usize> = sec.head.iter().map(|h| h.chars().count()).collect();
        for r in &sec.rows {
            for (i, c) in r.cells.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut l = String::from(" ");
            for (i, c) in cells.iter().enumerate() {
                let pad = w.get(i).copied().unwrap_or(0);
                if i == 0 || i + 1 == cells.len() {
                    let _ = write!(l, " {c:<pad$}");
                } else {
                    let _ = write!(l, " {c:>pad$}");
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(s, "{}", line(&sec.head));
        for r in &sec.rows {
            let _ = writeln!(s, "{}", line(&r.cells));
        }
    }
    s
}

/// The lines above the tables.
pub fn header(run: &LabRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "lazymm lab: {} {} vCPUs ({}), workload {}, {} guest s per phase",
        run.arch, run.cpus, run.topology, run.workload, run.seconds
    );
    let _ = writeln!(
        s,
        "  kernel: {} ({}; uname: {})",
        run.kernel.release,
        run.kernel.origin,
        run.kernel.uname.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "  scheme the config implies: {} ({})",
        run.kernel.implied.scheme,
        run.kernel.implied.evidence.join(", ")
    );
    let _ = writeln!(
        s,
        "  kernel profile of the model side: {}",
        run.kernel.implied.profile
    );
    for n in &run.kernel.implied.notes {
        let _ = writeln!(s, "  version note: {n}");
    }
    let _ = writeln!(
        s,
        "  qemu: {} ({}); booted after {} s; qemu ran {:.1} s; whole run {:.1} s; kill limit {} s",
        run.accel.name,
        run.accel.why,
        run.boot_seconds.map_or("?".into(), |b| format!("{b:.1}")),
        run.qemu_wall_seconds,
        run.wall_seconds,
        run.timeout_seconds
    );
    if !run.events_missing.is_empty() {
        let _ = writeln!(
            s,
            "  events this kernel lacks: {}",
            run.events_missing.join(", ")
        );
    }
    let _ = writeln!(s, "  TIME: {}", run.time_note);
    s
}

/// The terminal table.
pub fn table(run: &LabRun) -> String {
    format!("{}{}", header(run), draw(&sections(run)))
}

/// Which table of the report a [`LabRow`] belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum LabTable {
    /// The kernel beside the implied scheme's model row, quantity by quantity.
    #[serde(rename = "compare")]
    Compare,
    /// Where the kernel placed wakeups and tasks (kernel only).
    #[serde(rename = "placement")]
    Placement,
    /// The kernel's remote calls by callback (kernel only).
    #[serde(rename = "kernel remote calls")]
    KernelRemoteCalls,
    /// The kernel's `tlb_flush` events by reason (kernel only).
    #[serde(rename = "kernel tlb_flush")]
    KernelTlbFlush,
    /// Every scheme's IPIs on the same schedule (model only).
    #[serde(rename = "model ipis_sent")]
    ModelIpisSent,
}

/// One row of `results.csv` and of `lab --json`: a quantity of one phase, the kernel's
/// value beside the model's where both have one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabRow {
    /// The guest's arch (`x86`, `powerpc`).
    pub arch: String,
    /// vCPUs.
    pub cpus: usize,
    /// The workload the guest ran.
    pub workload: String,
    /// The phase, from 0.
    pub phase: usize,
    /// The phase's pair count (threads, processes; 0 for the other workloads).
    pub pairs: usize,
    /// Whether the phase pinned each pair to one CPU.
    pub pin: bool,
    /// The table the row belongs to.
    pub table: LabTable,
    /// What is counted.
    pub quantity: String,
    /// A count, a ratio, or a rate per guest second.
    pub kind: Kind,
    /// The kernel's value, from its trace.
    pub kernel: Option<f64>,
    /// The model's value, from replaying the same trace.
    pub model: Option<f64>,
    /// (model - kernel) / kernel, in percent.
    pub diff_pct: Option<f64>,
    /// Whether a headline quantity agrees within its tolerance (other rows: none).
    pub agrees: Option<bool>,
    /// Whether the value measures anything (`yes`, or why not: a rate under TCG).
    pub valid: String,
}

/// Every comparison row and every placement and count figure of `run`, phase by phase.
pub fn rows(run: &LabRun) -> Vec<LabRow> {
    rows_of(
        run.arch,
        run.cpus,
        &run.workload,
        run.accel.name,
        &run.phases,
    )
}

/// The rows of `phases`, run by a guest of `arch` with `cpus` vCPUs running `workload`
/// under accelerator `accel` (`kvm` or `tcg`).
pub fn rows_of(
    arch: &str,
    cpus: usize,
    workload: &str,
    accel: &str,
    phases: &[crate::PhaseResult],
) -> Vec<LabRow> {
    let mut out = Vec::new();
    for (i, ph) in phases.iter().enumerate() {
        let base = |table: LabTable,
                    quantity: String,
                    kind: Kind,
                    kernel: Option<f64>,
                    model: Option<f64>| LabRow {
            arch: arch.to_string(),
            cpus,
            workload: workload.to_string(),
            phase: i,
            pairs: ph.phase.pairs,
            pin: ph.phase.pin,
            table,
            quantity,
            kind,
            kernel,
            model,
            diff_pct: crate::compare::diff_pct(kernel, model),
            agrees: None,
            valid: if kind == Kind::Rate && accel == "tcg" {
                "no: guest time under TCG".to_string()
            } else {
                "yes".to_string()
            },
        };
        for r in &ph.comparison {
            let mut c = base(
                LabTable::Compare,
                r.quantity.clone(),
                r.kind,
                r.kernel,
                r.model,
            );
            c.agrees = r.agrees();
            out.push(c);
        }
        let p = &ph.kernel.placement;
        let pl = [
            ("switches through idle", ph.kernel.through_idle_frac()),
            ("wakeups on the waker's CPU", p.on_waker_frac()),
            ("wakeups on the previous CPU", p.on_prev_frac()),
            (
                "wakeups on an idle CPU in the same LLC",
                p.idle_same_llc_frac(),
            ),
            ("wakeups elsewhere", p.elsewhere_frac()),
            ("pair co-location", p.colocated_frac()),
        ];
        for (q, v) in pl {
            out.push(base(LabTable::Placement, q.into(), Kind::Ratio, v, None));
        }
        let mig = (ph.kernel.seconds > 0.0).then(|| p.migrations as f64 / ph.kernel.seconds);
        out.push(base(
            LabTable::Placement,
            "migrations per guest second".into(),
            Kind::Rate,
            mig,
            None,
        ));
        for (f, n) in &ph.kernel.remote_calls {
            out.push(base(
                LabTable::KernelRemoteCalls,
                f.clone(),
                Kind::Count,
                Some(*n as f64),
                None,
            ));
        }
        for (r, n) in &ph.kernel.tlb_flush_by_reason {
            out.push(base(
                LabTable::KernelTlbFlush,
                r.clone(),
                Kind::Count,
                Some(*n as f64),
                None,
            ));
        }
        for m in &ph.model {
            out.push(base(
                LabTable::ModelIpisSent,
                m.scheme.into(),
                Kind::Count,
                None,
                Some(m.ipis_sent as f64),
            ));
        }
    }
    out
}

/// `results.csv`: [`rows`], one per line.
pub fn to_csv(run: &LabRun) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows(run) {
        w.serialize(row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The page: extends the report layer's base template (one look with bench, predict and
/// replay).
const LAB_HTML: &str = include_str!("report/lab.html");

/// The page's sections, for the base template's navigation.
const NAV: &[(&str, &str)] = &[
    ("summary", "Summary"),
    ("charts", "Charts"),
    ("table", "Tables"),
    ("qemu", "QEMU command"),
];

/// One bar chart per phase: each ratio the comparison has on both sides (per teardown,
/// per switch, ...), the kernel's bar beside the model's.
pub fn charts(run: &LabRun) -> Vec<lazymm_engine::report::svg::Chart> {
    run.phases
        .iter()
        .enumerate()
        .filter_map(|(i, ph)| {
            let bars: Vec<(String, Option<f64>)> = ph
                .comparison
                .iter()
                .filter(|c| c.kind == crate::compare::Kind::Ratio)
                .filter(|c| c.kernel.is_some() && c.model.is_some())
                .flat_map(|c| {
                    [
                        (format!("{} (kernel)", c.quantity), c.kernel),
                        (format!("{} (model)", c.quantity), c.model),
                    ]
                })
                .collect();
            (!bars.is_empty()).then(|| {
                lazymm_engine::report::svg::bar_chart(
                    &format!("phase{i}-kernel-vs-model.svg"),
                    &format!(
                        "Phase {i} ({}): the kernel beside the model's {}@{}",
                        phase_label(run, &ph.phase),
                        run.kernel.implied.scheme,
                        run.arch
                    ),
                    "per teardown / per switch (counts, valid under TCG)",
                    &bars,
                    i,
                )
            })
        })
        .collect()
}

/// `index.html`, rendered with HTML autoescape.
pub fn html(
    run: &LabRun,
    charts: &[lazymm_engine::report::svg::Chart],
) -> Result<String, minijinja::Error> {
    use lazymm_engine::report::page::{self, Kind, Page};
    use minijinja::context;
    let traces: Vec<&str> = run.phases.iter().map(|p| p.trace_file.as_str()).collect();
    let lab = Page {
        name: "lab.html",
        source: LAB_HTML,
        subcommand: "lab",
        kind: Kind::Lab,
        nav: NAV,
    };
    page::render(
        &lab,
        context! {
            charts => page::charts(charts.iter().map(|c| (c, c.title.as_str()))),
            arch => run.arch,
            cpus => run.cpus,
            topology => run.topology,
            workload => run.workload,
            time_note => run.time_note,
            kernel => format!("{} ({}; uname: {})", run.kernel.release, run.kernel.origin, run.kernel.uname.as_deref().unwrap_or("?")),
            scheme => run.kernel.implied.scheme,
            evidence => run.kernel.implied.evidence.join(", "),
            profile => run.kernel.implied.profile,
            notes => run.kernel.implied.notes,
            accel => run.accel.name,
            accel_why => run.accel.why,
            boot => run.boot_seconds.map_or("?".into(), |b| format!("{b:.1}")),
            qemu_wall => format!("{:.1}", run.qemu_wall_seconds),
            wall => format!("{:.1}", run.wall_seconds),
            timeout => run.timeout_seconds,
            enabled => run.events_enabled.join(", "),
            missing => if run.events_missing.is_empty() { "none".to_string() } else { run.events_missing.join(", ") },
            command => run.command,
            traces => traces,
            sections => sections(run),
            qemu => run.qemu_command,
        },
    )
}

/// Writes the whole report into `out`. Returns the files written.
pub fn write(run: &LabRun, out: &Path) -> Result<Vec<String>, ReportError> {
    let render = |file: &'static str| {
        move |e: &dyn std::fmt::Display| ReportError::Render {
            file,
            err: e.to_string(),
        }
    };
    let json = serde_json::to_string_pretty(run).map_err(|e| render("results.json")(&e))?;
    let csv = to_csv(run).map_err(|e| render("results.csv")(&e))?;
    let charts = charts(run);
    let page = html(run, &charts).map_err(|e| render("index.html")(&e))?;
    let mut files: Vec<(String, String)> = vec![
        ("table.txt".into(), table(run)),
        ("results.json".into(), json + "\n"),
        ("results.csv".into(), csv),
        ("index.html".into(), page),
        ("console.log".into(), run.console.clone()),
        ("kernel.config".into(), run.config_text.clone()),
    ];
    for p in &run.phases {
        files.push((p.trace_file.clone(), p.trace_text.clone()));
    }
    for c in charts {
        files.push((c.file, c.svg));
    }
    write_dir(out, &files)
}
