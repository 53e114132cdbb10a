//! Runs the guest under QEMU: KVM where it works, TCG otherwise; the console on the
//! first serial port (x86 `ttyS0`, pseries `hvc0`), the trace on a virtio serial port
//! (`virtserialport`, the guest's `/dev/vport*`: built into both Debian kernels, fast,
//! and no tty line discipline to mangle the text). No network device.

use crate::spec::{Accel, GuestArch, Spec};
use crate::LabError;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The events the guest enables (those a kernel lacks are reported missing on the
/// console and in the report, not fatal).
pub const EVENTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_waking",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "sched:sched_migrate_task",
    "sched:sched_process_fork",
    "sched:sched_process_exit",
    "sched:sched_process_exec",
    "ipi:*",
    "csd:*",
    "tlb:*",
    "cpuhp:*",
];

/// Which accelerator ran the guest, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccelUsed {
    /// `kvm` or `tcg`.
    pub name: &'static str,
    /// Why (what KVM said, when it was tried and failed).
    pub why: String,
}

/// What a boot left.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The console log.
    pub console: String,
    /// The trace port's bytes.
    pub trace: Vec<u8>,
    /// The accelerator.
    pub accel: AccelUsed,
    /// Host seconds from QEMU's start to its exit.
    pub wall_seconds: f64,
    /// Host seconds until the guest's `/init` said it booted.
    pub boot_seconds: Option<f64>,
    /// The QEMU command line.
    pub command: String,
}

/// Whether `/dev/kvm` can be opened read-write.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.is_file())
    })
}

/// Checks that QEMU for `arch` is installed.
pub fn check_installed(arch: GuestArch) -> Result<(), LabError> {
    match which(arch.qemu()) {
        Some(_) => Ok(()),
        None => Err(LabError::Missing(format!(
            "{} not found (install the Debian package {})",
            arch.qemu(),
            arch.qemu_package()
        ))),
    }
}

/// The kernel command line.
pub fn cmdline(spec: &Spec) -> String {
    let console = match spec.arch {
        GuestArch::X86 => "console=ttyS0",
        GuestArch::Powerpc => "console=hvc0",
    };
    format!(
        "{console} panic=-1 quiet loglevel=4 lab.workload={} lab.seconds={} lab.phases={} lab.bufkb={} lab.events={}",
        spec.workload,
        spec.seconds,
        spec.phases_arg(),
        spec.buffer_kb(),
        EVENTS.join(",")
    )
}

fn args(
    spec: &Spec,
    kvm: bool,
    image: &Path,
    initrd: &Path,
    console: &Path,
    trace: &Path,
) -> Vec<String> {
    let t = spec.topology;
    let mut a: Vec<String> = Vec::new();
    match spec.arch {
        GuestArch::X86 => {
            a.extend(["-M".into(), "q35".into()]);
            if kvm {
                a.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]);
            } else {
                a.extend(["-accel".into(), "tcg".into(), "-cpu".into(), "max".into()]);
            }
        }
        GuestArch::Powerpc => {
            // TCG cannot emulate the Spectre-mitigation capabilities: say they are
            // absent instead of warning about each.
            a.extend([
                "-M".into(),
                "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off".into(),
                "-cpu".into(),
                "power9".into(),
                "-accel".into(),
                if kvm { "kvm" } else { "tcg" }.into(),
            ]);
        }
    }
    a.extend([
        "-smp".into(),
        format!(
            "{},sockets={},cores={},threads={}",
            t.cpus(),
            t.sockets,
            t.cores,
            t.threads
        ),
        "-m".into(),
        format!("{}", spec.memory_mb()),
        "-nic".into(),
        "none".into(),
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-no-reboot".into(),
        "-serial".into(),
        format!("file:{}", console.display()),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-chardev".into(),
        format!("file,id=trace,path={}", trace.display()),
        "-device".into(),
        "virtserialport,chardev=trace,name=lazymm.trace".into(),
        "-kernel".into(),
        image.display().to_string(),
        "-initrd".into(),
        initrd.display().to_string(),
        "-append".into(),
        cmdline(spec),
    ]);
    a
}

/// What the progress line is told.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Boots the guest and waits for it to power off, within the spec's limit.
pub fn boot(
    spec: &Spec,
    image: &Path,
    initrd: &Path,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Boot, LabError> {
    check_installed(spec.arch)?;
    let try_kvm = match spec.accel {
        Accel::Tcg => false,
        Accel::Kvm => {
            if !spec.arch.kvm_possible() || !kvm_usable() {
                return Err(LabError::Missing(
                    "--accel kvm: /dev/kvm cannot be opened for this guest's arch".into(),
                ));
            }
            true
        }
        Accel::Auto => spec.arch.kvm_possible() && kvm_usable(),
    };
    let mut kvm_failure = None;
    if try_kvm {
        match run_once(spec, true, image, initrd, dir, progress) {
            Ok(b) => return Ok(b),
            Err(RunError::NoBoot(why)) | Err(RunError::EarlyOops(why))
                if spec.accel == Accel::Auto =>
            {
                kvm_failure = Some(why.lines().next().unwrap_or("").to_string())
            }
            Err(RunError::NoBoot(why)) | Err(RunError::EarlyOops(why)) => {
                return Err(LabError::Guest(why))
            }
            Err(RunError::Lab(e)) => return Err(e),
        }
    }
    let why = match (&kvm_failure, spec.arch.kvm_possible(), spec.accel) {
        (Some(w), _, _) => format!("KVM was tried and failed ({w}); TCG (software emulation)"),
        (None, _, Accel::Tcg) => "--accel tcg".into(),
        (None, false, _) => format!(
            "a {} guest on a {} host: TCG (software emulation)",
            spec.arch.name(),
            std::env::consts::ARCH
        ),
        (None, true, _) => "/dev/kvm cannot be opened: TCG (software emulation)".into(),
    };
    // An x86 kernel patches its own text with int3 breakpoints while booting and when a
    // trace event is enabled (text_poke_bp); under multi-threaded TCG another vCPU can
    // execute the breakpoint before the patch lands and the kernel dies with "Oops:
    // int3". That is an artefact of the emulator, not of the kernel: a boot that dies so
    // before its first phase's trace is out is retried, at most twice, and the report
    // says so.
    let mut retries: Vec<String> = Vec::new();
    loop {
        match run_once(spec, false, image, initrd, dir, progress) {
            Ok(mut b) => {
                b.accel.why = if retries.is_empty() {
                    why
                } else {
                    format!(
                        "{why}; {} boot(s) before this one died before the first phase's trace was out and were retried: {}",
                        retries.len(),
                        retries.join("; ")
                    )
                };
                return Ok(b);
            }
            Err(RunError::EarlyOops(w)) if retries.len() < 2 => {
                retries.push(w.lines().next().unwrap_or("").to_string())
            }
            Err(RunError::NoBoot(w)) | Err(RunError::EarlyOops(w)) => {
                return Err(LabError::Guest(w))
            }
            Err(RunError::Lab(e)) => return Err(e),
        }
    }
}

enum RunError {
    /// The guest did not reach its init or did not finish; the message has the console.
    NoBoot(String),
    /// The kernel oopsed or panicked before the guest's /init ran.
    EarlyOops(String),
    Lab(LabError),
}

fn run_once(
    spec: &Spec,
    kvm: bool,
    image: &Path,
    initrd: &Path,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Boot, RunError> {
    let console = dir.join(if kvm {
        "console-kvm.log"
    } else {
        "console.log"
    });
    let trace = dir.join(if kvm { "trace-kvm.raw" } else { "trace.raw" });
    let errfile = dir.join(if kvm { "qemu-kvm.err" } else { "qemu.err" });
    let err_out = std::fs::File::create(&errfile).map_err(|e| {
        RunError::Lab(LabError::Io(format!(
            "cannot create {}: {e}",
            errfile.display()
        )))
    })?;
    let a = args(spec, kvm, image, initrd, &console, &trace);
    let command = format!("{} {}", spec.arch.qemu(), a.join(" "));
    let start = Instant::now();
    let mut child = Command::new(spec.arch.qemu())
        .args(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_out))
        .spawn()
        .map_err(|e| {
            RunError::Lab(LabError::Missing(format!(
                "cannot start {} ({e}; Debian package {})",
                spec.arch.qemu(),
                spec.arch.qemu_package()
            )))
        })?;
    let limit = Duration::from_secs(spec.timeout());
    // With KVM a guest reaches its init in seconds; one that has not after this long is
    // a KVM that does not work here (in a nested VM it stops with an internal error).
    let kvm_boot_limit = Duration::from_secs(30 + spec.cpus() as u64 / 2);
    let mut booted = None;
    let mut last_line = String::new();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => {
                return Err(RunError::Lab(LabError::Io(format!(
                    "waiting for QEMU: {e}"
                ))))
            }
        }
        let log = std::fs::read(&console).unwrap_or_default();
        let text = String::from_utf8_lossy(&log);
        if booted.is_none() && text.contains("lab: booted") {
            booted = Some(start.elapsed().as_secs_f64());
        }
        if let Some(l) = text.lines().rev().find(|l| l.starts_with("lab: ")) {
            last_line = l[5..].to_string();
        }
        let what = if booted.is_some() {
            last_line.as_str()
        } else {
            "booting"
        };
        progress(&format!(
            "{} {} vCPUs ({}): {what} [{:.0} s of at most {} s]",
            spec.arch.name(),
            spec.cpus(),
            if kvm { "KVM" } else { "TCG" },
            start.elapsed().as_secs_f64(),
            limit.as_secs()
        ));
        let kvm_error = kvm
            && std::fs::read_to_string(&errfile)
                .is_ok_and(|e| e.contains("KVM internal error") || e.contains("kvm run failed"));
        if kvm && booted.is_none() && (kvm_error || start.elapsed() > kvm_boot_limit) {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&errfile).unwrap_or_default();
            let reason = err
                .lines()
                .find(|l| l.contains("KVM internal error") || l.contains("kvm run failed"))
                .or_else(|| err.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("no output from QEMU")
                .to_string();
            return Err(RunError::NoBoot(format!(
                "with KVM the guest did not reach its init ({reason}; after {:.0} s)",
                start.elapsed().as_secs_f64()
            )));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::NoBoot(format!(
                "the guest did not power off within the limit of {} s (--timeout); killed. Console log:\n{}",
                limit.as_secs(),
                tail(&console)
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let wall = start.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&errfile).unwrap_or_default();
    let console_text =
        String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
    let trace_bytes = std::fs::read(&trace).unwrap_or_default();
    let failed_line = console_text.lines().find(|l| l.starts_with("lab: FAILED"));
    if !status.success()
        || booted.is_none()
        || failed_line.is_some()
        || !console_text.contains("lab: power off")
    {
        let why = failed_line
            .map(|l| l.to_string())
            .or_else(|| {
                stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.to_string())
            })
            .unwrap_or_else(|| format!("QEMU exited with {status} before the guest finished"));
        // Before the first phase's trace is out: while booting, or while the guest
        // enables its events (which patches kernel text the same way).
        let oops = !console_text.contains("lab: trace of phase 0 written")
            && (console_text.contains("Oops") || console_text.contains("Kernel panic"));
        let first_oops = console_text
            .lines()
            .find(|l| l.contains("Oops") || l.contains("Kernel panic"))
            .unwrap_or("")
            .trim()
            .to_string();
        if oops {
            return Err(RunError::EarlyOops(format!(
                "the kernel died before the first phase's trace was out ({first_oops}). Console log:\n{}",
                tail(&console)
            )));
        }
        return Err(RunError::NoBoot(format!(
            "{why} (qemu {}). Console log:\n{}",
            if kvm { "with KVM" } else { "with TCG" },
            tail(&console)
        )));
    }
    Ok(Boot {
        console: console_text,
        trace: trace_bytes,
        accel: AccelUsed {
            name: if kvm { "kvm" } else { "tcg" },
            why: if kvm {
                "/dev/kvm works and the guest booted with it".into()
            } else {
                String::new()
            },
        },
        wall_seconds: wall,
        boot_seconds: booted,
        command,
    })
}

/// The last 40 lines of a console log, and where the whole log was kept (the work
/// directory goes away with the failed run).
fn tail(path: &Path) -> String {
    let kept = std::env::temp_dir().join(format!(
        "lazymm-lab-failed-{}-{}",
        std::process::id(),
        path.file_name()
            .map_or("console.log".into(), |n| n.to_string_lossy().into_owned())
    ));
    let note = match std::fs::copy(path, &kept) {
        Ok(_) => format!("[the whole console log: {}]\n", kept.display()),
        Err(_) => String::new(),
    };
    format!("{note}{}", tail_lines(path))
}

fn tail_lines(path: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..].join("\n")
}
