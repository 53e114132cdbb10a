//! `lazymm check`: try to break every scheme, prove every mutant is caught, and replay
//! a counterexample.

use crate::args::{unexpected, Args};
use crate::Failure;
use lazymm::Mutant;
use lazymm_engine::check::{self, replay, Finding, Report, Shard, Summary, Target};
use lazymm_engine::registry::{self, ARCHS};
use lexopt::Arg;
use serde_json::json;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const OPTIONS: &str = "--scheme, --all, --mutant, --mutants, --arch, --iterations, --budget, \
--seed, --json, --replay, --replay-dir, --timeline, --shard, --merge";

/// How many reruns shrinking a failing run may take before it is written: a count, not
/// a time, so the counterexample written is the same on every machine.
const SHRINK_RERUNS: u32 = 500;

struct Opts {
    schemes: Vec<&'static str>,
    archs: Vec<&'static str>,
    /// Findings' fixes to check (each on its own arch): they must stay clean.
    fixes: Vec<Mutant>,
    mutants: Vec<Mutant>,
    iterations: u64,
    budget: u64,
    seed: u64,
    json: bool,
    replay_dir: PathBuf,
    shard: Shard,
}

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let mut a = Args::new(args);
    let mut scheme: Option<&'static str> = None;
    let mut all = false;
    let mut mutant: Option<Mutant> = None;
    let mut all_mutants = false;
    let mut arch: Option<&'static str> = None;
    let mut iterations = 300u64;
    let mut budget = 2000u64;
    let mut seed = 1u64;
    let mut json_out = false;
    let mut replay_file: Option<PathBuf> = None;
    let mut replay_dir = PathBuf::from("lazymm-replays");
    let mut timeline: Option<PathBuf> = None;
    let mut shard: Option<Shard> = None;
    let mut merge: Option<Vec<PathBuf>> = None;
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("shard") => {
                shard = Some(Shard::parse(&a.string("--shard")?).map_err(Failure::Usage)?)
            }
            Arg::Long("merge") => merge = Some(Vec::new()),
            Arg::Value(v) if merge.is_some() => {
                merge.get_or_insert_with(Vec::new).push(PathBuf::from(v));
            }
            Arg::Long("scheme") => {
                let s = a.string("--scheme")?;
                scheme = Some(registry::scheme(&s).map_err(|e| Failure::Usage(e.to_string()))?);
            }
            Arg::Long("all") => all = true,
            Arg::Long("mutant") => {
                let s = a.string("--mutant")?;
                mutant = Some(registry::mutant(&s).map_err(|e| Failure::Usage(e.to_string()))?);
            }
            Arg::Long("mutants") => all_mutants = true,
            Arg::Long("arch") => {
                let s = a.string("--arch")?;
                arch = Some(registry::arch(&s).map_err(|e| Failure::Usage(e.to_string()))?);
            }
            Arg::Long("iterations") => {
                iterations = a.number("--iterations", 1u64, 1 << 32, "a whole number")?;
            }
            Arg::Long("budget") => {
                budget = a.number("--budget", 1u64, 1 << 32, "a whole number")?;
            }
            Arg::Long("seed") => seed = a.number("--seed", 0u64, u64::MAX, "a whole number")?,
            Arg::Long("json") => json_out = true,
            Arg::Long("replay") => replay_file = Some(PathBuf::from(a.string("--replay")?)),
            Arg::Long("replay-dir") => replay_dir = PathBuf::from(a.string("--replay-dir")?),
            Arg::Long("timeline") => timeline = Some(PathBuf::from(a.string("--timeline")?)),
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    if let Some(files) = merge {
        return merge_main(&files, json_out);
    }
    // --shard, or the shard a batch scheduler's array names (docs/checker.md).
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
    if scheme.is_some() && all {
        return Err(Failure::Usage("give --scheme S or --all, not both".into()));
    }
    if mutant.is_some() && all_mutants {
        return Err(Failure::Usage(
            "give --mutant M or --mutants, not both".into(),
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
    // A finding's fix is not hunted: it is checked like a scheme and must stay clean.
    let (fixes, mutants): (Vec<Mutant>, Vec<Mutant>) = mutants
        .into_iter()
        .partition(|m| m.kind() == lazymm::Kind::Fixed);
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
    };
    run_checks(&opts)
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    on: bool,
    total: u64,
    done: u64,
    label: String,
    drawn: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            total: total.max(1),
            done: 0,
            label: String::new(),
            drawn: Instant::now(),
        }
    }

    fn label(&mut self, l: String) {
        self.label = l;
        self.draw();
    }

    fn tick(&mut self) {
        self.done += 1;
        if self.drawn.elapsed() > Duration::from_millis(80) {
            self.draw();
        }
    }

    /// Counts iterations a mutant hunt did not need (it stopped early).
    fn skip(&mut self, n: u64) {
        self.done += n;
        self.draw();
    }

    fn draw(&mut self) {
        if !self.on {
            return;
        }
        self.drawn = Instant::now();
        let width = 30;
        let filled = (self.done.min(self.total) * width / self.total) as usize;
        eprint!(
            "\r\x1b[2K[{}{}] {:>3}% {}",
            "#".repeat(filled),
            ".".repeat(width as usize - filled),
            self.done.min(self.total) * 100 / self.total,
            self.label
        );
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

fn run_checks(o: &Opts) -> Result<u8, Failure> {
    let mut targets: Vec<Target> = Vec::new();
    for &scheme in &o.schemes {
        for &arch in &o.archs {
            targets.push(Target {
                scheme,
                arch,
                mutant: None,
            });
        }
    }
    for &m in &o.fixes {
        targets.push(Target {
            scheme: m.scheme(),
            arch: m.arch().unwrap_or("generic"),
            mutant: Some(m),
        });
    }
    let per_shard = |n: u64| o.shard.iterations(n).count() as u64;
    let scheme_runs = targets.len() as u64 * per_shard(o.iterations);
    let mut bar = Progress::new(scheme_runs + o.mutants.len() as u64 * per_shard(o.budget));
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
        bar.label(t.name());
        let r = check::check_shard(t, o.seed, o.iterations, false, o.shard, &mut || bar.tick())
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
        let mut replay = None;
        if let Some(f) = &r.first {
            bar.clear();
            let (path, small) = save(o, &t.name(), f)?;
            lines.push(format!(
                "    first violation (iteration {}): {}",
                f.iteration + 1,
                first_line(&small)
            ));
            lines.push(format!("    replay: {}", path.display()));
            for l in check::timeline(&small.outcome) {
                lines.push(format!("      {l}"));
            }
            replay = Some(path.display().to_string());
        }
        schemes.push(Summary::of(name, &r, replay));
    }
    lines.extend(scheme_totals(&schemes));

    if !o.mutants.is_empty() {
        lines.push(format!(
            "mutants (until caught, at most {} iterations each, seed {}{shard}):",
            o.budget, o.seed
        ));
    }
    for &m in &o.mutants {
        bar.label(m.name().to_string());
        let r: Report = check::hunt_with(
            m,
            o.seed,
            o.budget,
            check::Mixes::Hint,
            o.shard,
            &mut || bar.tick(),
        )
        .map_err(|e| Failure::Usage(e.to_string()))?;
        bar.skip(per_shard(o.budget) - r.iterations);
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
    bar.clear();
    lines.push(format!(
        "{runs} schedules explored in {:.2} s ({:.0} schedules/s, {:.0} scheduling decisions/s)",
        busy.as_secs_f64(),
        runs as f64 / busy.as_secs_f64().max(1e-9),
        decisions as f64 / busy.as_secs_f64().max(1e-9)
    ));
    let ok = verdict(&schemes, &mutants);
    if o.json {
        let head = Head {
            shard: o.shard.to_string(),
            seed: o.seed,
            iterations: o.iterations,
            budget: o.budget,
        };
        println!("{}", to_json(&head, &schemes, &mutants));
        for l in &lines {
            eprintln!("{l}");
        }
    } else {
        println!("lazymm check");
        for l in &lines {
            println!("{l}");
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

/// Clean: no scheme violated or stalled, every mutant caught.
fn verdict(schemes: &[Summary], mutants: &[Summary]) -> bool {
    schemes.iter().all(|s| s.violations + s.stalled == 0)
        && mutants.iter().all(|m| m.first_iteration.is_some())
}

/// `check --json`: the head, then one object per scheme and per mutant (a mutant's
/// also says `caught` and `iterations_to_catch`).
fn to_json(h: &Head, schemes: &[Summary], mutants: &[Summary]) -> serde_json::Value {
    let mutants: Vec<serde_json::Value> = mutants
        .iter()
        .map(|m| {
            let mut v = json!({
                "name": m.name,
                "caught": m.first_iteration.is_some(),
                "iterations_to_catch": m.first_iteration,
            });
            if let (Some(o), serde_json::Value::Object(rest)) = (
                v.as_object_mut(),
                serde_json::to_value(m).unwrap_or_default(),
            ) {
                o.extend(rest.into_iter().filter(|(k, _)| k != "name"));
            }
            v
        })
        .collect();
    json!({
        "shard": h.shard,
        "seed": h.seed,
        "iterations": h.iterations,
        "budget": h.budget,
        "schemes": schemes,
        "mutants": mutants,
    })
}

/// The schedules per mix over every scheme checked, and what they reached.
fn scheme_totals(schemes: &[Summary]) -> Vec<String> {
    let Some(mut all) = schemes.first().cloned() else {
        return Vec::new();
    };
    for s in &schemes[1..] {
        all.name = s.name.clone();
        let _ = all.merge(s);
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
    let mut head: Option<(u64, u64, u64, u64)> = None;
    let mut seen: Vec<u64> = Vec::new();
    let mut schemes: Vec<Summary> = Vec::new();
    let mut mutants: Vec<Summary> = Vec::new();
    for f in files {
        let bad = |what: String| Failure::Usage(format!("{}: {what}", f.display()));
        let text =
            std::fs::read_to_string(f).map_err(|e| Failure::Io(format!("{}: {e}", f.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not check --json: {e}")))?;
        let shard = Shard::parse(v["shard"].as_str().unwrap_or("")).map_err(bad)?;
        let num = |k: &str| v[k].as_u64().ok_or_else(|| bad(format!("no {k}")));
        let h = (num("seed")?, num("iterations")?, num("budget")?, shard.n());
        if *head.get_or_insert(h) != h {
            return Err(bad(
                "not a shard of the same check (seed, iterations, budget or N differ)".into(),
            ));
        }
        if seen.contains(&shard.k()) {
            return Err(bad(format!("shard {shard} given twice")));
        }
        seen.push(shard.k());
        for (key, into) in [("schemes", &mut schemes), ("mutants", &mut mutants)] {
            let list: Vec<Summary> =
                serde_json::from_value(v[key].clone()).map_err(|e| bad(format!("{key}: {e}")))?;
            if into.is_empty() && seen.len() == 1 {
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
    let (seed, iterations, budget, n) = head.unwrap_or_default();
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
        println!("{}", to_json(&h, &schemes, &mutants));
        return Ok(if ok { 0 } else { 3 });
    }
    println!("lazymm check --merge: {n} shards, seed {seed}");
    if !schemes.is_empty() {
        println!("schemes ({iterations} iterations each):");
    }
    for s in &schemes {
        println!(
            "  {:<28} {:>6} iterations {:>5} violating",
            format!("{}@{}", s.name, s.arch),
            s.iterations,
            s.violations
        );
        if let Some(r) = &s.replay {
            println!("    replay: {r}");
        }
    }
    for l in scheme_totals(&schemes) {
        println!("{l}");
    }
    if !mutants.is_empty() {
        println!("mutants (until caught, at most {budget} iterations each):");
    }
    for m in &mutants {
        match m.first_iteration {
            Some(i) => println!(
                "  {:<28} caught after {:>5} iteration(s) on {}",
                m.name, i, m.arch
            ),
            None => println!("  {:<28} NOT caught", m.name),
        }
    }
    let runs: u64 = schemes.iter().chain(&mutants).map(|s| s.iterations).sum();
    println!("{runs} schedules explored");
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
        lazymm_trace::timeline::from_check(&out.events, c.cpus, &title)
            .write(t)
            .map_err(|e| Failure::Io(format!("cannot write {}: {e}", t.display())))?;
        println!(
            "timeline: {} (open it in {})",
            t.display(),
            lazymm_trace::svg::opener(t)
        );
    }
    println!(
        "lazymm check --replay {}: {} on {}, {} cpus, {} operations, {} scheduling decisions",
        file.display(),
        c.mutant.map_or(c.scheme, |m| m.name()),
        c.arch,
        c.cpus,
        c.ops(),
        r.schedule.len()
    );
    let Some(v) = out.first() else {
        println!("no violation: the replay does not reproduce");
        if !r.violation.is_empty() {
            println!("the file records: {}", r.violation);
        }
        return Ok(0);
    };
    println!("timeline (the events that matter, in order):");
    for l in check::timeline(&out) {
        println!("  {l}");
    }
    if v.to_string() == r.violation {
        println!("reproduced exactly: {v}");
    } else {
        println!("found: {v}");
        println!("the file records a different one: {}", r.violation);
    }
    Ok(3)
}
