//! `lazymm lab`: the real Linux kernel under QEMU beside the model (crate lazymm-lab).

use crate::bench::report_failure;
use crate::cli::LabArgs;
use crate::Failure;
use lazymm_engine::report::check_out;
use lazymm_lab::spec::{KernelChoice, Phase, Spec, Topology};
use lazymm_lab::LabError;

fn lab_failure(e: LabError) -> Failure {
    match e.exit_code() {
        2 => Failure::Usage(e.to_string()),
        _ => Failure::Io(e.to_string()),
    }
}

pub fn main(a: LabArgs) -> Result<u8, Failure> {
    let command = std::iter::once("lazymm".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let LabArgs {
        arch,
        cpus,
        topology,
        machine,
        workload,
        seconds,
        pairs,
        pin,
        pin_both,
        kernel: image,
        config,
        accel,
        timeout,
        buffer_kb,
        cache,
        out,
        json: as_json,
        from,
    } = a;
    let pairs = pairs.unwrap_or_else(|| vec![0]);
    let pins = if pin_both {
        vec![false, true]
    } else {
        vec![pin]
    };
    let topology = match machine {
        Some(name) => {
            let m = lazymm_cost::machine::Machine::load(&name)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let levels: Vec<(&str, usize)> = m
                .file
                .level
                .iter()
                .map(|l| (l.name.as_str(), l.size))
                .collect();
            Some(Topology::from_levels(&name, &levels).map_err(lab_failure)?)
        }
        None => topology,
    };
    let topology = match (cpus, topology) {
        (None, None) => Topology::flat(4),
        (Some(n), None) => Topology::flat(n),
        (None, Some(t)) => t,
        (Some(n), Some(t)) if t.cpus() == n => t,
        (Some(n), Some(t)) => {
            return Err(Failure::Usage(format!(
                "--topology {} has {} CPUs, --cpus says {n} (valid: a topology whose sockets x cores x threads is --cpus)",
                t.label(),
                t.cpus()
            )))
        }
    };
    let kernel = match image {
        Some(image) => KernelChoice::Image { image, config },
        None => KernelChoice::Debian,
    };
    let phases: Vec<Phase> = pins
        .iter()
        .flat_map(|&pin| pairs.iter().map(move |&p| Phase { pairs: p, pin }))
        .collect();
    let spec = Spec {
        arch,
        topology,
        workload,
        seconds,
        phases,
        kernel,
        accel,
        timeout,
        buffer_kb,
        cache,
    };
    spec.validate().map_err(lab_failure)?;
    check_out(&out).map_err(report_failure)?;
    let bar = crate::progress::bar(0, "steps");
    let mut progress = |msg: &str| {
        bar.set_message(msg.to_string());
        bar.tick();
    };
    let result = match &from {
        Some(dir) => lazymm_lab::reanalyse(dir, &command, &mut progress),
        None => lazymm_lab::run(&spec, &command, &mut progress),
    };
    bar.finish_and_clear();
    let run = result.map_err(lab_failure)?;
    let files = lazymm_lab::report::write(&run, &out).map_err(report_failure)?;
    if as_json {
        for row in lazymm_lab::report::rows(&run) {
            crate::json::print_row(&row)?;
        }
    } else {
        out!("{}", lazymm_lab::report::table(&run));
        outln!(
            "\nreport: {} ({})",
            out.join("index.html").display(),
            files.join(", ")
        );
    }
    let violated = run
        .phases
        .iter()
        .any(|p| p.model.iter().any(|m| m.violations > 0));
    Ok(if violated { 3 } else { 0 })
}
