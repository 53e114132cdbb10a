//! `lazymm check`: try to break every scheme, prove every mutant is caught, and replay
//! a counterexample.

use crate::cli::CheckArgs;
use crate::json::{print_row, CheckRow};
use crate::Failure;
use lazymm::Mutant;
use lazymm_engine::check::{self, replay, Finding, Report, Target};
use lazymm_engine::registry::{self, ARCHS};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    } = a;
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
    let scheme_runs = targets.len() as u64 * o.iterations;
    let bar = crate::progress::bar(scheme_runs + o.mutants.len() as u64 * o.budget, "schedules");
    let mut ok = true;
    let mut rows: Vec<CheckRow> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut decisions = 0u64;
    let mut runs = 0u64;
    let mut busy = Duration::ZERO;

    if !targets.is_empty() {
        lines.push(format!(
            "schemes ({} iterations each, seed {}):",
            o.iterations, o.seed
        ));
    }
    for &t in &targets {
        {
            let (scheme, arch) = (t.mutant.map_or(t.scheme, |m| m.name()), t.arch);
            bar.set_message(t.name());
            let r = check::check(t, o.seed, o.iterations, false, &mut || bar.inc(1))
                .map_err(|e| Failure::Usage(e.to_string()))?;
            decisions += r.decisions;
            runs += r.iterations;
            busy += r.elapsed;
            let failed = r.violating + r.stalled;
            ok &= failed == 0;
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
                let (path, small) = save(o, &t.name(), f)?;
                replay = Some(path.display().to_string());
                lines.push(format!(
                    "    first violation (iteration {}): {}",
                    f.iteration + 1,
                    first_line(&small)
                ));
                lines.push(format!("    replay: {}", path.display()));
                for l in check::timeline(&small.outcome) {
                    lines.push(format!("      {l}"));
                }
            }
            rows.push(CheckRow::Scheme {
                name: scheme.to_string(),
                arch: arch.to_string(),
                iterations: r.iterations,
                violations: r.violating,
                replay,
            });
        }
    }

    if !o.mutants.is_empty() {
        lines.push(format!(
            "mutants (until caught, at most {} iterations each, seed {}):",
            o.budget, o.seed
        ));
    }
    for &m in &o.mutants {
        bar.set_message(m.name());
        let r: Report = check::hunt(m, o.seed, o.budget, &mut || bar.inc(1))
            .map_err(|e| Failure::Usage(e.to_string()))?;
        bar.inc(o.budget - r.iterations);
        decisions += r.decisions;
        runs += r.iterations;
        busy += r.elapsed;
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
                rows.push(CheckRow::Mutant {
                    name: m.name().to_string(),
                    arch: r.target.arch.to_string(),
                    caught: true,
                    iterations_to_catch: Some(f.iteration + 1),
                    replay: Some(path.display().to_string()),
                });
            }
            None => {
                ok = false;
                lines.push(format!(
                    "  {:<28} NOT caught in {} iterations",
                    m.name(),
                    r.iterations
                ));
                rows.push(CheckRow::Mutant {
                    name: m.name().to_string(),
                    arch: r.target.arch.to_string(),
                    caught: false,
                    iterations_to_catch: None,
                    replay: None,
                });
            }
        }
    }
    bar.finish_and_clear();
    lines.push(format!(
        "{runs} schedules explored in {:.2} s ({:.0} schedules/s, {:.0} scheduling decisions/s)",
        busy.as_secs_f64(),
        runs as f64 / busy.as_secs_f64().max(1e-9),
        decisions as f64 / busy.as_secs_f64().max(1e-9)
    ));
    if o.json {
        for l in &lines {
            eprintln!("{l}");
        }
        for row in &rows {
            print_row(row)?;
        }
    } else {
        outln!("lazymm check");
        for l in &lines {
            outln!("{l}");
        }
    }
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
