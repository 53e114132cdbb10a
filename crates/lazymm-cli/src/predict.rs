//! `lazymm predict`: what each scheme would cost on a machine this host is not, from a
//! coherence cost model (crate `lazymm-sim`); `--validate` runs the native engine beside
//! it, `--calibrate` writes the `host` machine file, `--vs` and `--what-if` compare the
//! sweep under two kernel profiles (`lazymm_sim::whatif`).

use crate::bench::{command_line, dedup};
use crate::cli::PredictArgs;
use crate::json::print_row;
use crate::Failure;
use lazymm_cost::machine::Machine;
use lazymm_sim::predict::{predict, validate, PredictSpec, VALIDATE_ROUNDS};
use lazymm_sim::report;
use lazymm_sim::whatif::what_if_sweep;
use std::path::PathBuf;

pub fn main(a: PredictArgs) -> Result<u8, Failure> {
    let command = command_line();
    let after = a
        .what_if_profile()
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let PredictArgs {
        machine,
        schemes,
        archs,
        workloads,
        cpus,
        pairs,
        pin,
        seed,
        out,
        json,
        quick,
        vary,
        validate: do_validate,
        calibrate,
        profile,
        vs: _,
        what_if: _,
    } = a;
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
    spec.profile = profile.profile();
    spec.pin = pin;
    if !schemes.is_empty() {
        spec.schemes = schemes;
    }
    if !archs.is_empty() {
        spec.archs = archs;
    }
    if !workloads.is_empty() {
        spec.workloads = workloads;
    }
    if !cpus.is_empty() {
        spec.cpus = cpus;
    }
    if !pairs.is_empty() {
        spec.pairs = pairs;
    }
    if let Some(b) = &after {
        if b.items().eq(spec.profile.items()) {
            let items: Vec<&str> = b.items().map(|i| i.name()).collect();
            return Err(Failure::Usage(format!(
                "--vs/--what-if: kernel profile '{}' switches the same items as '{}' ({}): nothing to compare (valid: a profile that differs in an item; docs/profiles.md lists them)",
                b.name(),
                spec.profile.name(),
                items.join(", ")
            )));
        }
    }
    dedup(&mut spec.cpus);
    dedup(&mut spec.pairs);
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
        let mut p = match after {
            None => {
                let bar = crate::progress::bar(total as u64, "rows");
                let result = predict(&m, &spec, |done, _| bar.set_position(done as u64));
                bar.finish_and_clear();
                result.map_err(|e| Failure::Usage(e.to_string()))?
            }
            // Every row under both profiles, on the machine and on each machine with one
            // assumed value halved or doubled.
            Some(b) => {
                let bar = crate::progress::bar(0, "simulations");
                let result = what_if_sweep(&machine, &spec, b, true, |done, all| {
                    bar.set_length(all as u64);
                    bar.set_position(done as u64);
                });
                bar.finish_and_clear();
                result.map_err(|e| Failure::Usage(e.to_string()))?
            }
        };
        p.command = command.clone();
        p.varied = varied;
        if json {
            for r in &p.rows {
                print_row(&report::row(&p, r))?;
            }
        } else {
            out!("{}", report::table(&p));
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
            let bar = crate::progress::bar(0, "rounds");
            let v = validate(&p, rounds, &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
            bar.finish_and_clear();
            if v.is_empty() {
                eprintln!(
                    "--validate: no row fits this host ({} CPUs) with 'none' beside it",
                    lazymm_engine::bench::host_cpus()
                );
            }
            outln!(
                "validation against the native engine on this host (realistic mode, {} ns of work per switch; native: {rounds} paired rounds of {sample_s} s samples, schemes taking turns, slowdown = median over rounds of none/scheme, with its 95 % bootstrap interval; this binary's build profile)",
                p.machine.file.cost.context_switch_ns,
            );
            outln!(
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
                outln!(
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
    outln!(
        "rmw {:.2} ns, transfer {} ns, fence {:.2} ns, context switch {:.0} ns{}",
        c.rmw_ns,
        c.transfer_ns.map_or("-".into(), |t| format!("{t:.1}")),
        c.fence_ns,
        c.switch_ns,
        if c.switch_pinned { "" } else { " (not pinned)" }
    );
    outln!(
        "wrote {} (rebuild to embed it as --machine host, or pass it as --machine FILE)",
        path.display()
    );
    Ok(0)
}
