//! `lazymm predict`: what each scheme would cost on a machine this host is not, from a
//! coherence cost model (crate `lazymm-sim`); `--validate` runs the native engine beside
//! it, `--calibrate` writes the `host` machine file.

use crate::args::{unexpected, Args};
use crate::progress::Progress;
use crate::Failure;
use lazymm_cost::machine::Machine;
use lazymm_engine::registry;
use lazymm_sim::predict::{predict, validate, PredictSpec, VALIDATE_ROUNDS};
use lazymm_sim::report;
use lexopt::Arg;
use std::ffi::OsString;
use std::path::PathBuf;

const OPTIONS: &str = "--machine, --schemes, --archs, --workloads, --cpus, --pairs, --seed, --out, --json, --quick, --vary, --validate, --calibrate";

/// The machine `predict` uses without `--machine`: the preset that reaches 1024 CPUs.
const DEFAULT_MACHINE: &str = "big-1024";

/// Splits a comma-separated value and checks each element.
fn list<T>(
    a: &mut Args,
    opt: &str,
    mut check: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, Failure> {
    let s = a.string(opt)?;
    s.split(',')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return Err(Failure::Usage(format!(
                    "empty element in '{s}' for {opt} (give a comma-separated list)"
                )));
            }
            check(part).map_err(|e| Failure::Usage(format!("{opt}: {e}")))
        })
        .collect()
}

fn count(s: &str, what: &str, max: usize) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "bad {what} '{s}' (valid: whole numbers from 1 to {max})"
        )),
    }
}

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let command = std::iter::once("lazymm predict".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut a = Args::new(args);
    let mut machine = DEFAULT_MACHINE.to_string();
    let (mut schemes, mut archs, mut workloads, mut cpus, mut pairs) =
        (None, None, None, None, None);
    let (mut seed, mut out, mut json, mut quick, mut vary, mut do_validate, mut calibrate) = (
        1u64,
        None::<PathBuf>,
        false,
        false,
        None::<(String, Vec<f64>)>,
        false,
        false,
    );
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("machine") => machine = a.string("--machine")?,
            Arg::Long("schemes") => {
                schemes = Some(list(&mut a, "--schemes", |s| {
                    registry::scheme(s).map_err(|e| e.to_string())
                })?)
            }
            Arg::Long("archs") => {
                archs = Some(list(&mut a, "--archs", |s| {
                    registry::arch(s).map_err(|e| e.to_string())
                })?)
            }
            Arg::Long("workloads") => {
                workloads = Some(list(&mut a, "--workloads", |s| {
                    registry::workload(s).map_err(|e| e.to_string())
                })?)
            }
            Arg::Long("cpus") => {
                cpus = Some(list(&mut a, "--cpus", |s| {
                    count(s, "cpu count", lazymm::MAX_CPUS)
                })?)
            }
            Arg::Long("pairs") => {
                pairs = Some(list(&mut a, "--pairs", |s| {
                    count(s, "pair count", 1 << 16)
                })?)
            }
            Arg::Long("seed") => seed = a.number("--seed", 0u64, u64::MAX, "a whole number")?,
            Arg::Long("out") => {
                let s = a.string("--out")?;
                if s.is_empty() {
                    return Err(Failure::Usage("--out needs a path".into()));
                }
                out = Some(PathBuf::from(s));
            }
            Arg::Long("json") => json = true,
            Arg::Long("quick") => quick = true,
            Arg::Long("validate") => do_validate = true,
            Arg::Long("calibrate") => calibrate = true,
            Arg::Long("vary") => {
                let s = a.string("--vary")?;
                let Some((key, values)) = s.split_once('=') else {
                    return Err(Failure::Usage(format!(
                        "bad --vary '{s}' (valid: KEY=V1,V2,.. such as cost.fence_ns=7,30)"
                    )));
                };
                let values = values
                    .split(',')
                    .map(|v| {
                        v.trim().parse::<f64>().map_err(|_| {
                            Failure::Usage(format!("bad --vary value '{v}' (valid: numbers)"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                vary = Some((key.trim().to_string(), values));
            }
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    if calibrate {
        return write_calibration(out);
    }
    let load = |v: &[(String, f64)]| {
        Machine::load_varied(&machine, v).map_err(|e| Failure::Usage(e.to_string()))
    };
    let base = load(&[])?;
    let mut spec = PredictSpec::new(&base);
    spec.seed = seed;
    spec.quick = quick;
    if let Some(v) = schemes {
        spec.schemes = v;
    }
    if let Some(v) = archs {
        spec.archs = v;
    }
    if let Some(v) = workloads {
        spec.workloads = v;
    }
    if let Some(v) = cpus {
        spec.cpus = v;
    }
    if let Some(v) = pairs {
        spec.pairs = v;
    }
    for list in [&mut spec.cpus, &mut spec.pairs] {
        let mut seen = Vec::new();
        list.retain(|x| {
            !seen.contains(x) && {
                seen.push(*x);
                true
            }
        });
    }
    let max = base.nr_cpus.min(lazymm::MAX_CPUS);
    if let Some(&c) = spec.cpus.iter().find(|&&c| c > max) {
        return Err(Failure::Usage(format!(
            "--cpus: bad cpu count '{c}' (valid: 1 to {max} on machine '{}')",
            base.file.name
        )));
    }
    let out = out.unwrap_or_else(|| PathBuf::from("lazymm-predict"));
    let runs: Vec<(Option<(String, f64)>, Machine)> = match &vary {
        None => vec![(None, base)],
        Some((key, values)) => values
            .iter()
            .map(|&v| Ok((Some((key.clone(), v)), load(&[(key.clone(), v)])?)))
            .collect::<Result<_, Failure>>()?,
    };
    let mut status = 0;
    for (varied, m) in runs {
        let dir = match &varied {
            None => out.clone(),
            Some((k, v)) => PathBuf::from(format!("{}-{k}={v}", out.display())),
        };
        let total = spec.archs.len()
            * spec.workloads.len()
            * spec.cpus.len()
            * spec.schemes.len()
            * spec.pairs.len().max(1);
        let bar = Progress::new(total as u64, "rows");
        let result = predict(&m, &spec, |done, _| bar.set(done as u64));
        bar.clear();
        let mut p = result.map_err(|e| Failure::Usage(e.to_string()))?;
        p.command = command.clone();
        p.varied = varied;
        if json {
            let text = serde_json::to_string_pretty(&report::to_json(&p))
                .map_err(|e| Failure::Io(format!("cannot serialise the prediction: {e}")))?;
            println!("{text}");
        } else {
            print!("{}", report::table(&p));
        }
        let files = report::write(&p, &dir).map_err(crate::bench::report_failure)?;
        eprintln!(
            "simulator: {:.1} s host time, {} simulated accesses ({}/s), {} events ({}/s)",
            p.host_seconds,
            report::si(p.accesses as f64),
            report::si(p.accesses as f64 / p.host_seconds.max(1e-9)),
            report::si(p.events as f64),
            report::si(p.events as f64 / p.host_seconds.max(1e-9)),
        );
        eprintln!(
            "report: {} ({})",
            dir.join("index.html").display(),
            files.join(", ")
        );
        if do_validate {
            let rounds = if quick {
                VALIDATE_ROUNDS.1
            } else {
                VALIDATE_ROUNDS.0
            };
            let (sample_s, _) = lazymm_sim::predict::VALIDATE_SAMPLE_S;
            let bar = Progress::new(0, "samples");
            let v = validate(&p, rounds, &mut |done, total| {
                bar.total(total as u64);
                bar.set(done as u64);
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
            bar.clear();
            if v.is_empty() {
                eprintln!(
                    "--validate: no row fits this host ({} CPUs) with 'none' beside it",
                    lazymm_engine::bench::host_cpus()
                );
            }
            println!(
                "validation against the native engine on this host (realistic mode, {} ns of work per switch; native: {rounds} paired rounds of {sample_s} s samples, schemes taking turns, slowdown = median over rounds of none/scheme, with its 95 % bootstrap interval; this binary's build profile)",
                p.machine.file.cost.context_switch_ns,
            );
            println!(
                "{:<20} {:<10} {:>4} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10} {:>17} {:>8}",
                "scheme",
                "workload",
                "cpus",
                "predicted/s",
                "native/s",
                "pred/none",
                "nat/none",
                "none/pred",
                "none/nat",
                "none/nat 95%",
                "error"
            );
            for x in &v {
                let ns = x.native_slowdown;
                println!(
                    "{:<20} {:<10} {:>4} {:>11} {:>11} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>17} {:>+7.1}%",
                    x.scheme,
                    x.workload.name(),
                    x.cpus,
                    report::si(x.predicted),
                    report::si(x.native),
                    1.0 / x.predicted_slowdown,
                    1.0 / ns.estimate,
                    x.predicted_slowdown,
                    ns.estimate,
                    format!("{:.3}..{:.3}", ns.lo, ns.hi),
                    x.error() * 100.0
                );
            }
        }
        if p.rows.iter().any(|r| !r.r.violations.is_empty()) {
            status = 3;
        }
    }
    Ok(status)
}

/// `--calibrate`: measures this host and writes the `host` machine file.
fn write_calibration(out: Option<PathBuf>) -> Result<u8, Failure> {
    let path = out.unwrap_or_else(|| {
        let tree = PathBuf::from("crates/lazymm-cost/machines");
        if tree.is_dir() {
            tree.join("host.toml")
        } else {
            PathBuf::from("host.toml")
        }
    });
    eprintln!(
        "calibrating: uncontended RMW, core-to-core transfer, full fence, context switch ..."
    );
    let c = lazymm_sim::calibrate::measure()
        .map_err(|e| Failure::Io(format!("cannot measure the context switch: {e}")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = c.to_toml(&format!("unix time {now}"));
    // The file must parse as a machine before it replaces anything.
    Machine::from_toml(&text, "calibration", &[]).map_err(|e| Failure::Io(e.to_string()))?;
    lazymm_engine::report::write_file(&path, text.as_bytes())
        .map_err(|e| Failure::Io(format!("cannot write '{}': {e}", path.display())))?;
    println!(
        "rmw {:.2} ns, transfer {} ns, fence {:.2} ns, context switch {:.0} ns{}",
        c.rmw_ns,
        c.transfer_ns.map_or("-".into(), |t| format!("{t:.1}")),
        c.fence_ns,
        c.switch_ns,
        if c.switch_pinned { "" } else { " (not pinned)" }
    );
    println!(
        "wrote {} (rebuild to embed it as --machine host, or pass it as --machine FILE)",
        path.display()
    );
    Ok(0)
}
