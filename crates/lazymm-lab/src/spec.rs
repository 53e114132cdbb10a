//! What a lab run is asked to do: the guest's arch and shape, the workload and its
//! phases, the kernel, the limits. Every bad value is a [`LabError::Usage`] naming it and
//! the valid choices.

use crate::LabError;
use std::path::PathBuf;

/// The guest's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestArch {
    /// x86-64 (`qemu-system-x86_64 -M q35`).
    X86,
    /// 64-bit little-endian POWER (`qemu-system-ppc64 -M pseries`, POWER9, radix MMU).
    Powerpc,
}

impl GuestArch {
    /// The name on the command line, which is also the model's arch name.
    pub fn name(self) -> &'static str {
        match self {
            GuestArch::X86 => "x86",
            GuestArch::Powerpc => "powerpc",
        }
    }

    /// Looks an arch up by name.
    pub fn from_name(s: &str) -> Result<GuestArch, LabError> {
        match s {
            "x86" | "x86_64" | "amd64" => Ok(GuestArch::X86),
            "powerpc" | "ppc64le" | "ppc64el" => Ok(GuestArch::Powerpc),
            _ => Err(LabError::Usage(format!(
                "bad value '{s}' for --arch (valid: x86, powerpc)"
            ))),
        }
    }

    /// The QEMU system emulator.
    pub fn qemu(self) -> &'static str {
        match self {
            GuestArch::X86 => "qemu-system-x86_64",
            GuestArch::Powerpc => "qemu-system-ppc64",
        }
    }

    /// The Debian package that has [`GuestArch::qemu`].
    pub fn qemu_package(self) -> &'static str {
        match self {
            GuestArch::X86 => "qemu-system-x86",
            GuestArch::Powerpc => "qemu-system-ppc",
        }
    }

    /// Debian's name for the arch.
    pub fn debian_arch(self) -> &'static str {
        match self {
            GuestArch::X86 => "amd64",
            GuestArch::Powerpc => "ppc64el",
        }
    }

    /// The flavour suffix of Debian's kernel image package
    /// (`linux-image-6.12.N+deb13-FLAVOUR`): the unsigned amd64 image, the 4K-page
    /// ppc64el one.
    pub fn debian_flavour(self) -> &'static str {
        match self {
            GuestArch::X86 => "amd64-unsigned",
            GuestArch::Powerpc => "powerpc64le",
        }
    }

    /// The C compiler that builds the static guest program, and its Debian packages.
    pub fn compiler(self) -> (&'static str, &'static str) {
        match self {
            GuestArch::X86 => ("gcc", "gcc libc6-dev"),
            GuestArch::Powerpc => (
                "powerpc64le-linux-gnu-gcc",
                "gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross",
            ),
        }
    }

    /// Whether the host can run this guest with KVM at all (same architecture).
    pub fn kvm_possible(self) -> bool {
        match self {
            GuestArch::X86 => cfg!(target_arch = "x86_64"),
            GuestArch::Powerpc => cfg!(target_arch = "powerpc64"),
        }
    }
}

/// The guest's CPU topology, `-smp N,sockets=S,cores=C,threads=T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Topology {
    /// Sockets.
    pub sockets: usize,
    /// Cores per socket.
    pub cores: usize,
    /// Threads per core.
    pub threads: usize,
}

impl Topology {
    /// `SxCxT`.
    pub fn parse(s: &str) -> Result<Topology, LabError> {
        let bad = || {
            LabError::Usage(format!(
                "bad value '{s}' for --topology (valid: SOCKETSxCORESxTHREADS, e.g. 2x16x2)"
            ))
        };
        let v: Vec<usize> = s
            .split('x')
            .map(|p| p.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match v[..] {
            [sockets, cores, threads] if sockets > 0 && cores > 0 && threads > 0 => Ok(Topology {
                sockets,
                cores,
                threads,
            }),
            _ => Err(bad()),
        }
    }

    /// The shape of a `predict` machine file, from its levels (innermost first, as
    /// `(name, size)`): level 0 is the hardware threads of one core; the levels up to and
    /// including the one named `socket` are the cores of one socket; the levels above it
    /// are sockets. A file with no `socket` level is one socket. QEMU's `-smp` has no
    /// level between the core and the socket, so a CCX or tile level is folded into the
    /// socket (the guest sees one LLC per socket).
    pub fn from_levels(machine: &str, levels: &[(&str, usize)]) -> Result<Topology, LabError> {
        let (threads, rest) = levels.split_first().ok_or_else(|| {
            LabError::Usage(format!("machine '{machine}' has no topology levels"))
        })?;
        let socket = rest.iter().position(|(n, _)| *n == "socket");
        let (inside, above) = match socket {
            Some(i) => rest.split_at(i + 1),
            None => (rest, &[][..]),
        };
        let product = |ls: &[(&str, usize)]| ls.iter().map(|(_, s)| *s).product::<usize>();
        Ok(Topology {
            sockets: product(above).max(1),
            cores: product(inside).max(1),
            threads: threads.1.max(1),
        })
    }

    /// One socket of `cpus` single-threaded cores.
    pub fn flat(cpus: usize) -> Topology {
        Topology {
            sockets: 1,
            cores: cpus,
            threads: 1,
        }
    }

    /// CPUs in all.
    pub fn cpus(&self) -> usize {
        self.sockets * self.cores * self.threads
    }

    /// `SxCxT`.
    pub fn label(&self) -> String {
        format!("{}x{}x{}", self.sockets, self.cores, self.threads)
    }
}

/// A workload the guest program can run.
pub const WORKLOADS: &[(&str, &str)] = &[
    ("threads", "pairs of threads of one process ping-pong through pipes (will-it-scale context_switch1_threads)"),
    ("processes", "the same with one process per pair (context_switch1_processes)"),
    ("idle-storm", "threads of one process sleep 200 us and wake, one per worker"),
    ("exit-storm", "spawners fork children that touch memory, move to the next CPU, exec one time in four, and exit"),
    ("migrate-storm", "processes walked across every CPU with sched_setaffinity, then exiting"),
    ("munmap-storm", "threads of one process map, touch and unmap 64 KiB: flush IPIs to the mm's CPUs"),
    ("hotplug", "CPUs 1..N-1 go offline and come back (sysfs) while exit-storm spawners and threads pairs run"),
];

/// Whether `--pairs` counts ping-pong pairs (or else workers).
pub fn has_pairs(workload: &str) -> bool {
    matches!(workload, "threads" | "processes")
}

/// One run of the workload inside the boot: its trace is a file of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Phase {
    /// Pairs (threads, processes) or workers (the others); 0 = one per CPU.
    pub pairs: usize,
    /// will-it-scale's pinned mode.
    pub pin: bool,
}

/// How to run QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM where `/dev/kvm` opens and the guest boots with it, TCG otherwise.
    Auto,
    /// KVM or fail.
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Accel {
    /// Looks a value up by name.
    pub fn from_name(s: &str) -> Result<Accel, LabError> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            _ => Err(LabError::Usage(format!(
                "bad value '{s}' for --accel (valid: auto, kvm, tcg)"
            ))),
        }
    }
}

/// Which kernel to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelChoice {
    /// Debian 13's 6.12 kernel for the arch, fetched with apt and cached.
    Debian,
    /// The user's image, and its `.config` (given, or `config-*` beside the image).
    Image {
        /// The image QEMU boots (`bzImage`/`vmlinuz` for x86, `vmlinux` for powerpc).
        image: PathBuf,
        /// Its configuration.
        config: Option<PathBuf>,
    },
}

/// A whole lab run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The guest's arch.
    pub arch: GuestArch,
    /// Its topology (its CPU count is the run's).
    pub topology: Topology,
    /// The workload's name (one of [`WORKLOADS`]).
    pub workload: String,
    /// Guest seconds each phase runs.
    pub seconds: u32,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// The kernel.
    pub kernel: KernelChoice,
    /// KVM or TCG.
    pub accel: Accel,
    /// Host seconds after which a guest is killed (`None`: [`Spec::default_timeout`]).
    pub timeout: Option<u64>,
    /// Per-CPU trace buffer, KiB (`None`: by CPU count).
    pub buffer_kb: Option<usize>,
    /// Where the kernel cache lives (`None`: `$XDG_CACHE_HOME/lazymm` or
    /// `~/.cache/lazymm`).
    pub cache: Option<PathBuf>,
}

impl Spec {
    /// Checks the combination: workload known, topology matches the CPU count, limits.
    pub fn validate(&self) -> Result<(), LabError> {
        if !WORKLOADS.iter().any(|(w, _)| *w == self.workload) {
            let valid: Vec<&str> = WORKLOADS.iter().map(|w| w.0).collect();
            return Err(LabError::Usage(format!(
                "bad value '{}' for --workload (valid: {})",
                self.workload,
                valid.join(", ")
            )));
        }
        let cpus = self.topology.cpus();
        if !(1..=lazymm_trace_max_cpus()).contains(&cpus) {
            return Err(LabError::Usage(format!(
                "bad CPU count {cpus} (valid: 1 to {}, the most the model replays)",
                lazymm_trace_max_cpus()
            )));
        }
        if self.arch == GuestArch::Powerpc && self.topology.threads != 1 {
            return Err(LabError::Usage(format!(
                "bad value '{}' for --topology on powerpc (valid: threads = 1: QEMU's pseries machine under TCG runs one thread per core)",
                self.topology.label()
            )));
        }
        if self.seconds == 0 || self.seconds > 600 {
            return Err(LabError::Usage(format!(
                "bad value '{}' for --seconds (valid: 1 to 600)",
                self.seconds
            )));
        }
        if self.phases.is_empty() {
            return Err(LabError::Usage("no phase to run (give --pairs)".into()));
        }
        for p in &self.phases {
            if p.pairs > 4 * cpus.max(16) {
                return Err(LabError::Usage(format!(
                    "bad value '{}' for --pairs (valid: 0 to {})",
                    p.pairs,
                    4 * cpus.max(16)
                )));
            }
        }
        Ok(())
    }

    /// CPUs of the guest.
    pub fn cpus(&self) -> usize {
        self.topology.cpus()
    }

    /// The per-CPU trace buffer: 8 MiB up to 8 CPUs, 4 MiB up to 32, 2 MiB above.
    pub fn buffer_kb(&self) -> usize {
        self.buffer_kb.unwrap_or(match self.cpus() {
            0..=8 => 8192,
            9..=32 => 4096,
            _ => 2048,
        })
    }

    /// Guest memory, MiB: 512 plus twice the trace buffers, rounded up to 256 MiB
    /// (pseries wants that alignment).
    pub fn memory_mb(&self) -> usize {
        (512 + 2 * self.cpus() * self.buffer_kb() / 1024).div_ceil(256) * 256
    }

    /// The stated limit: 120 s, plus 3 s a CPU for booting under TCG (85 s measured for
    /// 64 vCPUs), plus per phase its seconds four times over (64 vCPUs share the host's
    /// cores) and 60 s for writing its trace out.
    pub fn default_timeout(&self) -> u64 {
        120 + 3 * self.cpus() as u64 + self.phases.len() as u64 * (4 * u64::from(self.seconds) + 60)
    }

    /// The limit in force.
    pub fn timeout(&self) -> u64 {
        self.timeout.unwrap_or_else(|| self.default_timeout())
    }

    /// The phases as the guest's `lab.phases=` value.
    pub fn phases_arg(&self) -> String {
        self.phases
            .iter()
            .map(|p| format!("{}:{}", p.pairs, u8::from(p.pin)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn lazymm_trace_max_cpus() -> usize {
    crate::model::MAX_CPUS
}

/// Parses `--pairs 8,16,32` (or one number).
pub fn parse_pairs(s: &str) -> Result<Vec<usize>, LabError> {
    s.split(',')
        .map(|p| {
            p.trim().parse::<usize>().map_err(|_| {
                LabError::Usage(format!(
                    "bad value '{s}' for --pairs (valid: a number or a comma-separated list of numbers)"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            arch: GuestArch::X86,
            topology: Topology::flat(4),
            workload: "exit-storm".into(),
            seconds: 5,
            phases: vec![Phase {
                pairs: 0,
                pin: false,
            }],
            kernel: KernelChoice::Debian,
            accel: Accel::Auto,
            timeout: None,
            buffer_kb: None,
            cache: None,
        }
    }

    #[test]
    fn bad_values_name_the_value_and_the_choices() {
        let e = GuestArch::from_name("sparc").unwrap_err().to_string();
        assert!(e.contains("'sparc'") && e.contains("x86, powerpc"), "{e}");
        // The presets' shapes: SPR x2 is 2x56x2; Zen 4 x2 folds its CCX into the socket.
        let spr = [("core", 2), ("socket", 56), ("machine", 2)];
        let t = Topology::from_levels("spr-2s", &spr).unwrap();
        assert_eq!((t.sockets, t.cores, t.threads), (2, 56, 2));
        let zen = [("core", 2), ("ccx", 8), ("socket", 12), ("machine", 2)];
        let t = Topology::from_levels("epyc-zen4-2s", &zen).unwrap();
        assert_eq!((t.sockets, t.cores, t.threads), (2, 96, 2));
        let p8 = [("core", 8), ("socket", 12), ("node", 4), ("machine", 4)];
        let t = Topology::from_levels("power8-192", &p8).unwrap();
        assert_eq!((t.sockets, t.cores, t.threads, t.cpus()), (16, 12, 8, 1536));
        let host = [("core", 1), ("machine", 2)];
        let t = Topology::from_levels("host", &host).unwrap();
        assert_eq!((t.sockets, t.cores, t.threads), (1, 2, 1));
        let e = Topology::parse("2x16").unwrap_err().to_string();
        assert!(e.contains("'2x16'") && e.contains("2x16x2"), "{e}");
        assert!(Topology::parse("0x1x1").is_err());
        let e = Accel::from_name("hvf").unwrap_err().to_string();
        assert!(e.contains("auto, kvm, tcg"), "{e}");
        let e = parse_pairs("8,x").unwrap_err().to_string();
        assert!(e.contains("'8,x'"), "{e}");
        let mut s = spec();
        s.workload = "nope".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("exit-storm"), "{e}");
        let mut s = spec();
        s.arch = GuestArch::Powerpc;
        s.topology = Topology::parse("1x2x2").unwrap();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("threads = 1"));
        let mut s = spec();
        s.seconds = 0;
        assert!(s.validate().is_err());
        assert!(spec().validate().is_ok());
    }

    #[test]
    fn topology_and_sizes() {
        let t = Topology::parse("2x16x2").unwrap();
        assert_eq!(t.cpus(), 64);
        assert_eq!(t.label(), "2x16x2");
        let mut s = spec();
        assert_eq!(s.buffer_kb(), 8192);
        assert_eq!(s.memory_mb(), 768);
        s.topology = t;
        assert_eq!(s.buffer_kb(), 2048);
        assert_eq!(s.memory_mb(), 768);
        s.phases = vec![
            Phase {
                pairs: 8,
                pin: false,
            },
            Phase {
                pairs: 16,
                pin: true,
            },
        ];
        assert_eq!(s.phases_arg(), "8:0,16:1");
        assert_eq!(s.default_timeout(), 120 + 192 + 2 * (20 + 60));
    }
}
