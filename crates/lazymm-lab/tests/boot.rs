//! The real thing: boots Debian's 6.12 x86-64 kernel under QEMU and checks that the
//! kernel's and the model's counts of the same schedule line up (as `.ci/lab.sh` does
//! for both archs). Ignored by default: it needs qemu-system-x86, gcc with a static libc
//! and the network for the first kernel fetch, and takes about half a minute.
//! `cargo test --profile ci -p lazymm-lab -- --ignored` runs it.

use lazymm_lab::spec::{Accel, GuestArch, KernelChoice, Phase, Spec, Topology};

#[test]
#[ignore]
fn x86_exit_storm_kernel_beside_model() {
    let spec = Spec {
        arch: GuestArch::X86,
        topology: Topology::flat(4),
        workload: "exit-storm".into(),
        seconds: 3,
        phases: vec![Phase {
            pairs: 0,
            pin: false,
        }],
        kernel: KernelChoice::Debian,
        accel: Accel::Tcg,
        timeout: None,
        buffer_kb: None,
        cache: None,
    };
    let run = lazymm_lab::run(&spec, "test", &mut |_| {}).expect("the lab runs");
    assert_eq!(run.kernel.implied.scheme, "refcount");
    let p = &run.phases[0];
    let m = p.model.iter().find(|m| m.scheme == "refcount").unwrap();
    assert_eq!(p.kernel.switches, m.context_switches);
    assert_eq!(p.kernel.teardowns(), m.teardowns);
    assert!(p.kernel.teardowns() > 20);
    assert!(p.model.iter().all(|m| m.violations == 0));
    // The model follows 6.14+'s mm_cpumask rule exactly on this schedule.
    let d = m.ipis_sent.abs_diff(p.kernel.rule_kept_until_trim) as f64;
    assert!(d <= 0.02 * p.kernel.rule_kept_until_trim as f64 + 1.0);
}
