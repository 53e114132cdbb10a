//! `lazymm check`: try to break every scheme, prove every mutant is caught, and replay
//! a counterexample.

use crate::cli::CheckArgs;
use crate::json::{print_row, CheckKind, CheckRow};
use crate::Failure;
use lazymm::Mutant;
use lazymm_engine::check::{self, replay, Finding, Report, Shard, Summary, Target};
use lazymm_engine::registry::{self, ARCHS};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many reruns shrinking a failing run may take before it is written: a count, not
/// a time, so the counterexample written is the same on every machine.
const SHRINK_RERUNS: u32 = 500;

struct Opts {
    schemes: Vec<&'static str>,
    archs: Vec<&'static str>,
    /// Findings' fixes and schemes under configurations to check (each on its own
    /// arch): they must stay clean.
    fixes: Vec<Mutant>,
    mutants: Vec<Mutant>,
    iterations: u64,
    budget: u64,
    seed: u64,
    json: bool,
    replay_dir: PathBuf,
    shard: Shard,
    profile: lazymm::Profile,
}

pub fn main(a: CheckArgs) -> Result<u8, Failure> {
    let CheckArgs {
        scheme,
        mut all,
        mutant,
        mutants: mut all_mutants,
        arch,
        iterations,
        budget,
        seed,
        json: json_out,
        replay: replay_file,
        replay_dir,
        timeline,
        shard,
        merge,
        profile,
    } = a;
    let profile = profile.profile();
    if !merge.is_empty() {
        return merge_main(&merge, json_out);
    }
    // --shard, or the shard a batch scheduler's array names (docs/design.md §4).
    let shard = match shard {
        Some(s) => s,
        None => match Shard::from_env(|k| std::env::var(k).ok()).map_err(Failure::Usage)? {
            Some(s) => {
                eprintln!("lazymm: shard {s}, from the batch scheduler's environment");
                s
            }
            None => Shard::WHOLE,
        },
    };
    if let Some(file) = replay_file {
        if scheme.is_some() || all || mutant.is_some() || all_mutants {
            return Err(Failure::Usage(
                "--replay runs the file's own scheme and mutant (give --replay alone)".into(),
            ));
        }
        return replay_main(&file, timeline.as_deref());
    }
    if timeline.is_some() {
        return Err(Failure::Usage(
            "--timeline writes the timeline of a replay (give it with --replay FILE)".into(),
        ));
    }
    // Nothing chosen: check everything.
    if scheme.is_none() && !all && mutant.is_none() && !all_mutants {
        all = true;
        all_mutants = true;
    }
    let schemes: Vec<&'static str> = match (scheme, all) {
        (Some(s), _) => {
            if !check::promises_safety(s).map_err(|e| Failure::Usage(e.to_string()))? {
                eprintln!(
                    "lazymm: note: scheme '{s}' promises no safety property, so its checks are vacuous"
                );
            }
            vec![s]
        }
        (None, true) => {
            let mut v = Vec::new();
            for (s, _) in registry::schemes() {
                if check::promises_safety(s).map_err(|e| Failure::Usage(e.to_string()))? {
                    v.push(s);
                }
            }
            v
        }
        (None, false) => Vec::new(),
    };
    let archs: Vec<&'static str> = match arch {
        Some(a) => vec![a],
        None => ARCHS.iter().map(|(a, _)| *a).collect(),
    };
    let mutants: Vec<Mutant> = match (mutant, all_mutants) {
        (Some(m), _) => vec![m],
        (None, true) => lazymm_engine::registry::mutants(),
        (None, false) => Vec::new(),
    };
    // A finding's fix, or a scheme under a configuration, is not hunted: it is checked
    // like a scheme and must stay clean.
    let (mut fixes, mutants): (Vec<Mutant>, Vec<Mutant>) = mutants
        .into_iter()
        .partition(|m| matches!(m.kind(), lazymm::Kind::Fixed | lazymm::Kind::Config));
    // Every scheme checked is also checked under each configuration its arch declares
    // off by default (x86 INVLPGB, a KVM guest's paravirt flush), and with each finding's
    // fix that applies to it: both must stay clean.
    let fixed = registry::findings()
        .into_iter()
        .filter(|m| m.kind() == lazymm::Kind::Fixed);
    for c in registry::configs().into_iter().chain(fixed) {
        let arch = c.arch().unwrap_or("generic");
        if schemes.contains(&c.scheme()) && archs.contains(&arch) && !fixes.contains(&c) {
            fixes.push(c);
        }
    }
    let opts = Opts {
        schemes,
        archs,
        fixes,
        mutants,
        iterations,
        budget,
        seed,
        json: json_out,
        replay_dir,
        shard,
        profile,
    };
    run_checks(&opts)
}

fn run_checks(o: &Opts) -> Result<u8, Failure> {
    let mut targets: Vec<Target> = Vec::new();
    for &scheme in &o.schemes {
        for &arch in &o.archs {
            targets.push(Target {
                scheme,
                arch,
                mutant: None,
                profile: o.profile,
            });
        }
    }
    for &m in &o.fixes {
        targets.push(Target {
            scheme: m.scheme(),
            arch: m.arch().unwrap_or("generic"),
            mutant: Some(m),
            profile: o.profile,
        });
    }
    let per_shard = |n: u64| o.shard.iterations(n).count() as u64;
    let scheme_runs = targets.len() as u64 * per_shard(o.iterations);
    let bar = crate::progress::bar(
        scheme_runs + o.mutants.len() as u64 * per_shard(o.budget),
        "schedules",
    );
    let mut schemes: Vec<Summary> = Vec::new();
    let mut mutants: Vec<Summary> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut decisions = 0u64;
    let mut runs = 0u64;
    let mut busy = Duration::ZERO;
    let shard = if o.shard == Shard::WHOLE {
        String::new()
    } else {
        format!(", shard {}", o.shard)
    };

    if !targets.is_empty() {
        lines.push(format!(
            "schemes ({} iterations each, seed {}{shard}; every operation mix in turn):",
            o.iterations, o.seed
        ));
    }
    for &t in &targets {
        let name = t.mutant.map_or(t.scheme, |m| m.name());
        bar.set_message(t.name());
        let r = check::check_shard(t, o.seed, o.iterations, false, o.shard, &mut || bar.inc(1))
            .map_err(|e| Failure::Usage(e.to_string()))?;
        decisions += r.decisions;
        runs += r.iterations;
        busy += r.elapsed;
        let mut line = format!(
            "  {:<28} {:>6} iterations {:>5} violating {:>8.0} schedules/s",
            t.name(),
            r.iterations,
            r.violating,
            r.iterations as f64 / r.elapsed.as_secs_f64().max(1e-9)
        );
        if r.stalled > 0 {
            line += &format!("  ({} stalled: livelock under the scheduler)", r.stalled);
        }
        lines.push(line);
        // The summary knows whether the target is a listed finding (Summary::of looks
        // it up once); its replay is filled in below.
        let mut summary = Summary::of(name, &r, None);
        let listed = summary.listed_finding();
        if let Some(f) = &r.first {
            let (path, small) = bar.suspend(|| save(o, &t.name(), f))?;
            lines.push(format!(
                "    first violation (iteration {}): {}",
                f.iteration + 1,
                first_line(&small)
            ));
            lines.push(format!("    replay: {}", path.display()));
            match listed {
                // A listed finding's interleaving is in its report: one line, not the
                // timeline.
                Some(_) => lines.extend(listed_lines(&summary)),
                None => {
                    for l in check::timeline(&small.outcome) {
                        lines.push(format!("      {l}"));
                    }
                }
            }
            summary.replay = Some(path.display().to_string());
        }
        schemes.push(summary);
    }
    lines.extend(scheme_totals(&schemes));

    if !o.mutants.is_empty() {
        lines.push(format!(
            "mutants (until caught, at most {} iterations each, seed {}{shard}):",
            o.budget, o.seed
        ));
    }
    for &m in &o.mutants {
        bar.set_message(m.name());
        let r: Report = check::hunt_with(
            m,
            o.profile,
            o.seed,
            o.budget,
            check::Mixes::Hint,
            o.shard,
            &mut || bar.inc(1),
        )
        .map_err(|e| Failure::Usage(e.to_string()))?;
        bar.inc(per_shard(o.budget) - r.iterations);
        decisions += r.decisions;
        runs += r.iterations;
        busy += r.elapsed;
        let mut replay = None;
        match &r.first {
            Some(f) => {
                let (path, small) = save(o, &r.target.name(), f)?;
                lines.push(format!(
                    "  {:<28} caught after {:>5} iteration(s) on {}: {}",
                    m.name(),
                    f.iteration + 1,
                    r.target.arch,
                    first_line(&small)
                ));
                lines.push(format!("    replay: {}", path.display()));
                replay = Some(path.display().to_string());
            }
            None => {
                lines.push(format!(
                    "  {:<28} NOT caught in {} iterations",
                    m.name(),
                    r.iterations
                ));
            }
        }
        mutants.push(Summary::of(m.name(), &r, replay));
    }
    bar.finish_and_clear();
    lines.push(format!(
        "{runs} schedules explored in {:.2} s ({:.0} schedules/s, {:.0} scheduling decisions/s)",
        busy.as_secs_f64(),
        runs as f64 / busy.as_secs_f64().max(1e-9),
        decisions as f64 / busy.as_secs_f64().max(1e-9)
    ));
    let ok = verdict(&schemes, &mutants);
    if o.json {
        for l in &lines {
            eprintln!("{l}");
        }
        let head = Head {
            shard: o.shard.to_string(),
            seed: o.seed,
            iterations: o.iterations,
            budget: o.budget,
        };
        print_rows(&head, &schemes, &mutants)?;
    } else {
        outln!("lazymm check");
        for l in &lines {
            outln!("{l}");
        }
    }
    Ok(if ok { 0 } else { 3 })
}

/// What a `check --json` file says it covers, besides its results.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    shard: String,
    seed: u64,
    iterations: u64,
    budget: u64,
}

/// What the console says under a listed finding's target that violated: the finding,
/// and whether something it does not declare broke too.
fn listed_lines(summary: &Summary) -> Vec<String> {
    let Some(m) = summary.listed_finding() else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "    a listed finding, {} (`lazymm schemes`; findings/ in the repository): {}",
        m.name(),
        m.description()
    )];
    if !summary.clean() {
        lines.push(
            "    NOT only the listed finding: a property it does not declare broke, or a run stalled"
                .to_string(),
        );
    }
    lines
}

/// Clean: no scheme violated or stalled (a listed finding only as it declares), every
/// mutant caught.
fn verdict(schemes: &[Summary], mutants: &[Summary]) -> bool {
    schemes.iter().all(Summary::clean) && mutants.iter().all(|m| m.first_iteration.is_some())
}

/// `check --json`: one row a line, each scheme's then each mutant's, every row naming
/// the shard, seed and planned iterations it covers.
fn print_rows(h: &Head, schemes: &[Summary], mutants: &[Summary]) -> Result<(), Failure> {
    let row = |kind: CheckKind, planned: u64, s: &Summary| CheckRow {
        kind,
        shard: h.shard.clone(),
        seed: h.seed,
        planned,
        summary: s.clone(),
        caught: (kind == CheckKind::Mutant).then_some(s.first_iteration.is_some()),
        iterations_to_catch: s.first_iteration.filter(|_| kind == CheckKind::Mutant),
    };
    for s in schemes {
        print_row(&row(CheckKind::Scheme, h.iterations, s))?;
    }
    for m in mutants {
        print_row(&row(CheckKind::Mutant, h.budget, m))?;
    }
    Ok(())
}

/// The schedules per mix over every scheme checked, and what they reached.
fn scheme_totals(schemes: &[Summary]) -> Vec<String> {
    let Some(mut all) = schemes.first().cloned() else {
        return Vec::new();
    };
    for s in &schemes[1..] {
        all.add_counts(s);
    }
    let mut lines = vec![format!(
        "  schedules per mix: {}",
        all.mixes
            .iter()
            .map(|(m, c)| format!("{m} {} ({} violating)", c.iterations, c.violations))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let list = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let c = &all.coverage;
    lines.push("  reached (counted from the model's tracepoints):".to_string());
    lines.push(format!("    IPI handlers: {}", list(&c.ipi_handlers)));
    lines.push(format!("    paths: {}", list(&c.paths)));
    lines.push(format!(
        "    irqs-on windows: {}",
        if c.irq_windows.is_empty() {
            "none".to_string()
        } else {
            c.irq_windows
                .iter()
                .map(|(w, n)| {
                    let ipis = c.ipis_in_windows.get(w).copied().unwrap_or(0);
                    format!("{w} {n} ({ipis} with an IPI inside)")
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    lines
}

/// `check --merge A.json B.json ...`: adds up the shards of one check (each written by
/// `check --shard K/N --json`). The files must be every shard of one run, each once.
fn merge_main(files: &[PathBuf], json_out: bool) -> Result<u8, Failure> {
    if files.is_empty() {
        return Err(Failure::Usage(
            "--merge needs the shards' JSON files (check --shard K/N --json > FILE)".into(),
        ));
    }
    // (seed, N), and the planned iterations of the scheme rows and the mutant rows.
    let mut head: Option<(u64, u64)> = None;
    let (mut iterations, mut budget) = (None::<u64>, None::<u64>);
    let mut seen: Vec<u64> = Vec::new();
    let mut schemes: Vec<Summary> = Vec::new();
    let mut mutants: Vec<Summary> = Vec::new();
    for f in files {
        let bad = |what: String| Failure::Usage(format!("{}: {what}", f.display()));
        let text =
            std::fs::read_to_string(f).map_err(|e| Failure::Io(format!("{}: {e}", f.display())))?;
        let rows: Vec<CheckRow> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not check --json rows: {e}")))?;
        let first = rows
            .first()
            .cloned()
            .ok_or_else(|| bad("no check --json rows".into()))?;
        let shard = Shard::parse(&first.shard).map_err(bad)?;
        if *head.get_or_insert((first.seed, shard.n())) != (first.seed, shard.n()) {
            return Err(bad(
                "not a shard of the same check (seed or N differ)".into()
            ));
        }
        if seen.contains(&shard.k()) {
            return Err(bad(format!("shard {shard} given twice")));
        }
        seen.push(shard.k());
        let (mut mine_s, mut mine_m) = (Vec::new(), Vec::new());
        for r in rows {
            if r.shard != first.shard || r.seed != first.seed {
                return Err(bad("rows of more than one shard in one file".into()));
            }
            let planned = match r.kind {
                CheckKind::Scheme => &mut iterations,
                CheckKind::Mutant => &mut budget,
            };
            if *planned.get_or_insert(r.planned) != r.planned {
                return Err(bad(
                    "not a shard of the same check (iterations or budget differ)".into(),
                ));
            }
            match r.kind {
                CheckKind::Scheme => mine_s.push(r.summary),
                CheckKind::Mutant => mine_m.push(r.summary),
            }
        }
        for (key, into, list) in [
            ("schemes", &mut schemes, mine_s),
            ("mutants", &mut mutants, mine_m),
        ] {
            if seen.len() == 1 {
                *into = list;
                continue;
            }
            if list.len() != into.len() {
                return Err(bad(format!("its {key} differ from the first file's")));
            }
            for (a, b) in into.iter_mut().zip(&list) {
                if a.name != b.name {
                    return Err(bad(format!("its {key} differ from the first file's")));
                }
                a.merge(b).map_err(bad)?;
            }
        }
    }
    let (seed, n) = head.unwrap_or_default();
    let (iterations, budget) = (iterations.unwrap_or(0), budget.unwrap_or(0));
    if seen.len() as u64 != n {
        return Err(Failure::Usage(format!(
            "{} of {n} shards given: the merge would not be the whole check",
            seen.len()
        )));
    }
    let ok = verdict(&schemes, &mutants);
    if json_out {
        let h = Head {
            shard: Shard::WHOLE.to_string(),
            seed,
            iterations,
            budget,
        };
        print_rows(&h, &schemes, &mutants)?;
        return Ok(if ok { 0 } else { 3 });
    }
    outln!("lazymm check --merge: {n} shards, seed {seed}");
    if !schemes.is_empty() {
        outln!("schemes ({iterations} iterations each):");
    }
    for s in &schemes {
        outln!(
            "  {:<28} {:>6} iterations {:>5} violating",
            format!("{}@{}", s.name, s.arch),
            s.iterations,
            s.violations
        );
        if let Some(r) = &s.replay {
            outln!("    replay: {r}");
        }
        if s.violations > 0 {
            for l in listed_lines(s) {
                outln!("{l}");
            }
        }
    }
    for l in scheme_totals(&schemes) {
        outln!("{l}");
    }
    if !mutants.is_empty() {
        outln!("mutants (until caught, at most {budget} iterations each):");
    }
    for m in &mutants {
        match m.first_iteration {
            Some(i) => outln!(
                "  {:<28} caught after {:>5} iteration(s) on {}",
                m.name,
                i,
                m.arch
            ),
            None => outln!("  {:<28} NOT caught", m.name),
        }
    }
    let runs: u64 = schemes.iter().chain(&mutants).map(|s| s.iterations).sum();
    outln!("{runs} schedules explored");
    Ok(if ok { 0 } else { 3 })
}

fn first_line(f: &Finding) -> String {
    f.outcome
        .first()
        .map_or_else(|| "no violation".to_string(), |v| v.to_string())
}

/// Shrinks a finding and writes its replay file.
fn save(o: &Opts, name: &str, f: &Finding) -> Result<(PathBuf, Finding), Failure> {
    let small = check::shrink(f, SHRINK_RERUNS).map_err(|e| Failure::Usage(e.to_string()))?;
    let path = replay::write(&o.replay_dir, name, &small).map_err(|e| {
        Failure::Io(format!(
            "cannot write a replay file into {}: {e}",
            o.replay_dir.display()
        ))
    })?;
    Ok((path, small))
}

fn replay_main(file: &Path, timeline: Option<&Path>) -> Result<u8, Failure> {
    let r = replay::read(file).map_err(|e| Failure::Usage(e.to_string()))?;
    let c = &r.case;
    let out = check::rerun(c, &r.schedule).map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(t) = timeline {
        let title = format!("lazymm check --replay {}", file.display());
        lazymm_engine::report::timeline::from_check(&out.events, c.cpus, &title)
            .write(t)
            .map_err(|e| Failure::Io(format!("cannot write {}: {e}", t.display())))?;
        outln!(
            "timeline: {} (open it in {})",
            t.display(),
            lazymm_engine::report::timeline::svg::opener(t)
        );
    }
    outln!(
        "lazymm check --replay {}: {} on {}, {} cpus, {} operations, {} scheduling decisions",
        file.display(),
        c.mutant.map_or(c.scheme, |m| m.name()),
        c.arch,
        c.cpus,
        c.ops(),
        r.schedule.len()
    );
    let Some(v) = out.first() else {
        outln!("no violation: the replay does not reproduce");
        if !r.violation.is_empty() {
            outln!("the file records: {}", r.violation);
        }
        return Ok(0);
    };
    outln!("timeline (the events that matter, in order):");
    for l in check::timeline(&out) {
        outln!("  {l}");
    }
    if v.to_string() == r.violation {
        outln!("reproduced exactly: {v}");
    } else {
        outln!("found: {v}");
        outln!("the file records a different one: {}", r.violation);
    }
    Ok(3)
}
