//! The command line, declared once (clap derive): parsing, `--help`, the completions and
//! the man page all come from these types.
//!
//! The valid values an option lists (schemes, archs, workloads, mutants, machine presets,
//! trace formats) are read from the tables the code uses when the command is built, after
//! [`crate::main_with`] has registered a program's own schemes, so the help of
//! `crates/lazymm-cli/examples/shootdown_all.rs` lists the scheme it adds.

use clap::builder::{
    NonEmptyStringValueParser, PossibleValue, PossibleValuesParser, TypedValueParser,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use lazymm::Mutant;
use lazymm_engine::registry;
use lazymm_engine::Workload;
use lazymm_replay::Variant;
use lazymm_trace::Format;
use std::ffi::OsString;
use std::path::PathBuf;

/// The exit statuses, shown below `lazymm --help`.
const EXIT_STATUS: &str = "\
Exit status: 0 success; 2 bad usage or input (one line naming the bad value and the valid \
choices); 3 a run, bench or check found a violation of a safety property, or a check left a \
mutant uncaught. A closed standard output (lazymm schemes | head -1) ends the command \
quietly with status 0.";

/// Run, compare and try to break the schemes that keep lazily used address spaces alive.
#[derive(Parser, Debug)]
#[command(name = "lazymm", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List schemes, archs, workloads, mutants, arch configurations and findings.
    Schemes,
    /// One run on this host: a table, or one JSON row with --json.
    Run(RunArgs),
    /// Every scheme side by side: a table, and a report (JSON, CSV, SVG charts, index.html) in
    /// --out.
    Bench(BenchArgs),
    /// Try to break schemes and catch mutants (failures are shrunk and written as replay
    /// files), or rerun a replay file exactly.
    Check(CheckArgs),
    /// Predictions of a coherence cost model for machines this host is not.
    Predict(PredictArgs),
    /// Every scheme on a real machine's schedule (a scheduler trace).
    Replay(ReplayArgs),
    /// Record the scheduler events replay needs while CMD runs (perf, or trace-cmd), as text.
    Record(RecordArgs),
    /// Boot the real Linux kernel under QEMU, run a workload in it, and put its own counts
    /// (IPIs by callback, TLB flushes, placement) beside the model's on the same schedule.
    Lab(LabArgs),
    /// Print a shell completion script for SHELL (see README: "Shell completions").
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page lazymm(1), or write one page per command into --out.
    Man {
        /// A directory for lazymm.1 and lazymm-COMMAND.1 (it is created if missing).
        #[arg(long, value_name = "DIR", value_parser = non_empty_path())]
        out: Option<PathBuf>,
    },
}

/// `lazymm run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scheme; a mutant's name is accepted too (its scheme is implied).
    #[arg(long, value_name = "SCHEME", value_parser = variant())]
    pub scheme: Option<Variant>,
    /// A mutant (or a finding) to run instead of its scheme as written.
    #[arg(long, value_name = "MUTANT", value_parser = mutant())]
    pub mutant: Option<Mutant>,
    /// The arch [default: generic, or the mutant's own].
    #[arg(long, value_name = "ARCH", value_parser = arch())]
    pub arch: Option<&'static str>,
    /// The workload.
    #[arg(long, value_name = "WORKLOAD", value_parser = workload())]
    pub workload: Option<Workload>,
    /// CPUs (one pinned thread each).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = whole(1, lazymm::MAX_CPUS))]
    pub cpus: usize,
    /// Pairs of tasks for threads and processes [default: one per two CPUs].
    #[arg(long, value_name = "N", value_parser = whole(1, usize::MAX / 2))]
    pub pairs: Option<usize>,
    /// Bind both tasks of pair i to CPU i (will-it-scale's pinned mode) instead of
    /// placing each wakeup as the kernel does.
    #[arg(long)]
    pub pin: bool,
    /// Run for T seconds [default: 2].
    #[arg(long, value_name = "T", conflicts_with = "switches", allow_negative_numbers = true,
          value_parser = seconds(0.001, 86_400.0))]
    pub seconds: Option<f64>,
    /// Run until K context switches.
    #[arg(long, value_name = "K", value_parser = whole(1, u64::MAX / 2))]
    pub switches: Option<u64>,
    /// The seed.
    #[arg(long, value_name = "X", default_value_t = 1, allow_negative_numbers = true,
          value_parser = whole(0, u64::MAX))]
    pub seed: u64,
    /// Nanoseconds of work per switch.
    #[arg(long = "switch-work", value_name = "NS", default_value_t = 0,
          allow_negative_numbers = true,
          value_parser = whole(0u64, 1_000_000))]
    pub switch_work: u64,
    /// Whether the processes registered for membarrier.
    #[arg(long, value_enum, value_name = "STATE", default_value_t = Membarrier::Registered)]
    pub membarrier: Membarrier,
    /// One JSON row on stdout instead of the table (docs/schema/run.json).
    #[arg(long)]
    pub json: bool,
    /// Each CPU's switches as Chrome trace JSON for Perfetto, or drawn as SVG for FILE.svg.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path())]
    pub timeline: Option<PathBuf>,
    /// The kernel profile.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `--kernel` and `--profile-item`: the kernel profile the model runs (docs/profiles.md).
#[derive(Args, Debug, Clone, Default)]
pub struct ProfileArgs {
    /// The kernel profile: the scheme-independent shared accesses of a kernel version
    /// (docs/profiles.md) [default: bare].
    #[arg(long = "kernel", value_name = "NAME", value_parser = kernel())]
    pub kernel: Option<&'static str>,
    /// Switch one item of the profile on or off (repeatable).
    #[arg(long = "profile-item", value_name = "ITEM=on|off", value_parser = profile_item())]
    pub profile_items: Vec<String>,
}

impl ProfileArgs {
    /// The profile these arguments name (each switch was checked when it was parsed).
    pub fn profile(&self) -> lazymm::Profile {
        let name = self.kernel.unwrap_or(lazymm::Profile::BARE.preset_name());
        lazymm::Profile::build(name, &self.profile_items)
            .expect("--kernel and --profile-item were checked by their parsers")
    }
}

/// A kernel profile preset, listed with what it stands for.
fn kernel() -> impl TypedValueParser<Value = &'static str> {
    let values = lazymm::Profile::PRESETS
        .iter()
        .map(|(p, d)| PossibleValue::new(p.preset_name()).help(*d));
    PossibleValuesParser::new(values).try_map(|s| {
        lazymm::Profile::by_name(&s)
            .map(|p| p.preset_name())
            .ok_or_else(|| format!("unknown kernel profile '{s}'"))
    })
}

/// One `ITEM=on|off` switch (its error lists the valid items).
fn profile_item() -> impl TypedValueParser<Value = String> {
    |s: &str| {
        let mut p = lazymm::Profile::BARE;
        p.apply(s)
            .map(|()| s.to_string())
            .map_err(|e| e.to_string())
    }
}

/// `run --membarrier`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membarrier {
    /// The processes registered (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED).
    Registered,
    /// They did not.
    Unregistered,
}

/// `lazymm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Shorter warm-up and fewer, shorter samples; the same rows.
    #[arg(long)]
    pub quick: bool,
    /// The report's directory.
    #[arg(long, value_name = "DIR", default_value = "lazymm-report", value_parser = non_empty_path())]
    pub out: PathBuf,
    /// Schemes [default: every one].
    #[arg(long, value_name = "S,..", value_delimiter = ',', value_parser = scheme())]
    pub schemes: Vec<&'static str>,
    /// Workloads [default: threads, processes, idle-storm, exit-storm].
    #[arg(long, value_name = "W,..", value_delimiter = ',', value_parser = workload())]
    pub workloads: Vec<Workload>,
    /// CPU counts [default: 1 up to this host's CPUs].
    #[arg(long, value_name = "N,..", value_delimiter = ',', value_parser = whole(1, lazymm::MAX_CPUS))]
    pub cpus: Vec<usize>,
    /// Pair counts for threads and processes, each on every CPU count [default: one per two CPUs].
    #[arg(long, value_name = "N,..", value_delimiter = ',', value_parser = whole(1, MAX_BENCH_PAIRS))]
    pub pairs: Vec<usize>,
    /// Archs [default: generic].
    #[arg(long, value_name = "A,..", value_delimiter = ',', value_parser = arch())]
    pub archs: Vec<&'static str>,
    /// Work per switch in realistic mode, in ns (0: bookkeeping mode only) [default: this
    /// host's measured switch cost].
    #[arg(long = "switch-work", value_name = "NS", allow_negative_numbers = true,
          value_parser = whole(0u64, 1_000_000))]
    pub switch_work: Option<u64>,
    /// The seed of the first round (round i uses seed + i).
    #[arg(long, value_name = "X", default_value_t = 1, allow_negative_numbers = true,
          value_parser = whole(0, u64::MAX))]
    pub seed: u64,
    /// The kernel profile.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// The most pairs `bench --pairs` takes.
pub const MAX_BENCH_PAIRS: usize = 4096;

/// `lazymm check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Check one scheme [default: every scheme that promises safety, and every mutant].
    #[arg(long, value_name = "SCHEME", conflicts_with = "all", value_parser = scheme())]
    pub scheme: Option<&'static str>,
    /// Check every scheme that promises safety.
    #[arg(long)]
    pub all: bool,
    /// Hunt one mutant until it is caught.
    #[arg(long, value_name = "MUTANT", conflicts_with = "mutants", value_parser = mutant())]
    pub mutant: Option<Mutant>,
    /// Hunt every mutant.
    #[arg(long)]
    pub mutants: bool,
    /// Check on one arch [default: every arch].
    #[arg(long, value_name = "ARCH", value_parser = arch())]
    pub arch: Option<&'static str>,
    /// Seeded runs per scheme and arch.
    #[arg(long, value_name = "K", default_value_t = 300, value_parser = whole(1u64, 1 << 32))]
    pub iterations: u64,
    /// The most runs a mutant hunt may take.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = whole(1u64, 1 << 32))]
    pub budget: u64,
    /// The seed.
    #[arg(long, value_name = "X", default_value_t = 1, allow_negative_numbers = true,
          value_parser = whole(0, u64::MAX))]
    pub seed: u64,
    /// JSON rows on stdout, one a line (docs/schema/check.json); the table goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Rerun a replay file exactly and print its timeline.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path())]
    pub replay: Option<PathBuf>,
    /// Where replay files are written.
    #[arg(long = "replay-dir", value_name = "DIR", default_value = "lazymm-replays",
          value_parser = non_empty_path())]
    pub replay_dir: PathBuf,
    /// With --replay: the timeline also as Chrome trace JSON for Perfetto, or as SVG for
    /// FILE.svg.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path())]
    pub timeline: Option<PathBuf>,
    /// Run shard K of N: the iterations i with i % N == K - 1, each exactly as the whole
    /// run makes it [default: from SLURM_ARRAY_TASK_* or JOB_COMPLETION_INDEX with
    /// LAZYMM_SHARD_COUNT when set; else the whole run].
    #[arg(long, value_name = "K/N", value_parser = shard())]
    pub shard: Option<lazymm_engine::check::Shard>,
    /// Add up the --json outputs of every shard of one check (and nothing else).
    #[arg(long, value_name = "FILE", num_args = 1.., value_parser = non_empty_path(),
          conflicts_with_all = ["scheme", "all", "mutant", "mutants", "replay", "shard"])]
    pub merge: Vec<PathBuf>,
    /// The kernel profile.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `check --shard K/N`.
fn shard() -> impl TypedValueParser<Value = lazymm_engine::check::Shard> {
    |s: &str| lazymm_engine::check::Shard::parse(s)
}

/// `lazymm predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A machine preset, or a machine file (TOML).
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_MACHINE, help = machine_help())]
    pub machine: String,
    /// Schemes [default: every one].
    #[arg(long, value_name = "S,..", value_delimiter = ',', value_parser = scheme())]
    pub schemes: Vec<&'static str>,
    /// Archs [default: generic].
    #[arg(long, value_name = "A,..", value_delimiter = ',', value_parser = arch())]
    pub archs: Vec<&'static str>,
    /// Workloads [default: those of the bench].
    #[arg(long, value_name = "W,..", value_delimiter = ',', value_parser = workload())]
    pub workloads: Vec<Workload>,
    /// CPU counts (at most the machine's) [default: from 1 up to the machine's].
    #[arg(long, value_name = "N,..", value_delimiter = ',', value_parser = whole(1, lazymm::MAX_CPUS))]
    pub cpus: Vec<usize>,
    /// Pair counts for threads and processes.
    #[arg(long, value_name = "N,..", value_delimiter = ',', value_parser = whole(1usize, 1 << 16))]
    pub pairs: Vec<usize>,
    /// Bind both tasks of pair i to CPU i (will-it-scale's pinned mode) instead of
    /// placing each wakeup as the kernel does.
    #[arg(long)]
    pub pin: bool,
    /// The seed.
    #[arg(long, value_name = "X", default_value_t = 1, allow_negative_numbers = true,
          value_parser = whole(0, u64::MAX))]
    pub seed: u64,
    /// The report's directory [default: lazymm-predict]; with --calibrate, the machine file
    /// to write.
    #[arg(long, value_name = "DIR", value_parser = non_empty_path())]
    pub out: Option<PathBuf>,
    /// JSON rows on stdout, one a line (docs/schema/predict.json), instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A shorter simulated window; the same rows.
    #[arg(long)]
    pub quick: bool,
    /// One prediction per value of a machine-file key (such as cost.fence_ns=7,30), each in
    /// DIR-KEY=V.
    #[arg(long, value_name = "KEY=V1,V2,..", value_parser = vary)]
    pub vary: Option<(String, Vec<f64>)>,
    /// Run the native engine beside the prediction, on this host, and compare.
    #[arg(long)]
    pub validate: bool,
    /// Measure this host and write the `host` machine file.
    #[arg(long)]
    pub calibrate: bool,
    /// The kernel profile.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// What-if: run the sweep under --kernel and under the preset NAME, and report each
    /// row's change with its interval over the machine's assumed values (docs/profiles.md,
    /// "What-if").
    #[arg(long, value_name = "NAME", value_parser = kernel(),
          conflicts_with_all = ["vary", "validate", "calibrate"])]
    pub vs: Option<&'static str>,
    /// What-if: compare --kernel with itself (or with --vs) with ITEM switched on or off
    /// (repeatable).
    #[arg(long = "what-if", value_name = "ITEM=on|off", value_parser = profile_item(),
          conflicts_with_all = ["vary", "validate", "calibrate"])]
    pub what_if: Vec<String>,
}

impl PredictArgs {
    /// The profile a what-if compares with (`--vs`, then `--profile-item` and
    /// `--what-if` switched), or `None` without either flag.
    pub fn what_if_profile(&self) -> Option<Result<lazymm::Profile, lazymm::ProfileError>> {
        if self.vs.is_none() && self.what_if.is_empty() {
            return None;
        }
        let name = self
            .vs
            .or(self.profile.kernel)
            .unwrap_or(lazymm::Profile::BARE.preset_name());
        let switches: Vec<String> = self
            .profile
            .profile_items
            .iter()
            .chain(&self.what_if)
            .cloned()
            .collect();
        Some(lazymm::Profile::build(name, &switches))
    }
}

/// The machine `predict` uses without `--machine`: the preset that reaches 1024 CPUs.
pub const DEFAULT_MACHINE: &str = "big-1024";

/// `lazymm replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Trace files.
    #[arg(value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// The traces' format [default: detected from each file].
    #[arg(long, value_name = "FORMAT", value_parser = format())]
    pub format: Option<Format>,
    /// Schemes (or mutants) [default: every scheme].
    #[arg(long, value_name = "S,..", value_delimiter = ',', value_parser = variant())]
    pub schemes: Vec<Variant>,
    /// Archs [default: generic].
    #[arg(long, value_name = "A,..", value_delimiter = ',', value_parser = arch())]
    pub archs: Vec<&'static str>,
    /// JSON rows on stdout, one a line (docs/schema/replay.json), instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a report (JSON, CSV, index.html) into DIR.
    #[arg(long, value_name = "DIR", value_parser = non_empty_path())]
    pub out: Option<PathBuf>,
    /// Skip lines that do not parse instead of failing on them.
    #[arg(long)]
    pub lenient: bool,
    /// A file of rules naming the kernel threads (see docs/replay.md).
    #[arg(long, value_name = "FILE", value_parser = non_empty_path())]
    pub kthreads: Option<PathBuf>,
    /// Each replay's timeline, as Chrome trace JSON for Perfetto, or as SVG for FILE.svg.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path())]
    pub timeline: Option<PathBuf>,
    /// Price the bookkeeping on a machine preset or machine file (TOML).
    #[arg(long, value_name = "NAME|FILE", help = machine_help())]
    pub machine: Option<String>,
    /// The kernel profile.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `lazymm record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// The text file to write.
    #[arg(long, value_name = "FILE", default_value = "lazymm-trace.txt", value_parser = non_empty_path())]
    pub out: PathBuf,
    /// Record N seconds (without CMD), or stop the recorder after N seconds [default: 5
    /// without CMD].
    #[arg(long, value_name = "N", value_parser = seconds(0.01, 86_400.0))]
    pub seconds: Option<f64>,
    /// The recorder [default: the first installed].
    #[arg(long, value_name = "TOOL", value_parser = PossibleValuesParser::new(TOOLS.iter().copied())
          .map(|s| TOOLS.iter().copied().find(|t| *t == s).unwrap_or(TOOLS[0])))]
    pub tool: Option<&'static str>,
    /// The command to run while recording, and its arguments (after --).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<OsString>,
}

/// `lazymm lab`.
#[derive(Args, Debug)]
pub struct LabArgs {
    /// The guest's arch.
    #[arg(long, value_name = "ARCH", default_value = "x86",
          value_parser = lab_parser(lazymm_lab::spec::GuestArch::from_name))]
    pub arch: lazymm_lab::spec::GuestArch,
    /// vCPUs [default: 4, or the --topology's].
    #[arg(long, value_name = "N", value_parser = whole(1usize, lazymm_lab::model::MAX_CPUS))]
    pub cpus: Option<usize>,
    /// sockets x cores x threads, e.g. 2x16x2.
    #[arg(long, value_name = "SxCxT", conflicts_with = "machine",
          value_parser = lab_parser(lazymm_lab::spec::Topology::parse))]
    pub topology: Option<lazymm_lab::spec::Topology>,
    /// The shape of a `predict` machine (a preset or a file): its sockets x cores x threads
    /// (a level between core and socket, such as a CCX, folds into the socket).
    #[arg(long, value_name = "NAME|FILE", help = machine_help())]
    pub machine: Option<String>,
    /// The workload the guest runs.
    #[arg(long, value_name = "WORKLOAD", default_value = "exit-storm",
          value_parser = PossibleValuesParser::new(lazymm_lab::spec::WORKLOADS.iter().map(|(n, _)| *n)))]
    pub workload: String,
    /// Guest seconds per phase.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = whole(1u32, 600))]
    pub seconds: u32,
    /// Pair counts for threads and processes, comma-separated (one phase each).
    #[arg(long, value_name = "N,N,..", value_parser = lab_parser(lazymm_lab::spec::parse_pairs))]
    pub pairs: Option<Vec<usize>>,
    /// Pin each pair's two tasks to one CPU (will-it-scale's pinned mode).
    #[arg(long, conflicts_with = "pin_both")]
    pub pin: bool,
    /// Run every phase unpinned, then pinned.
    #[arg(long)]
    pub pin_both: bool,
    /// A kernel image to boot instead of Debian's 6.12.
    #[arg(long, value_name = "IMAGE", value_parser = non_empty_path())]
    pub kernel: Option<PathBuf>,
    /// The image's .config (the scheme and version behaviour are read from it).
    #[arg(long, value_name = "FILE", requires = "kernel", value_parser = non_empty_path())]
    pub config: Option<PathBuf>,
    /// kvm, tcg, or auto (KVM where it works).
    #[arg(long, value_name = "ACCEL", default_value = "auto",
          value_parser = lab_parser(lazymm_lab::spec::Accel::from_name))]
    pub accel: lazymm_lab::spec::Accel,
    /// Kill a guest that has not finished after this many host seconds.
    #[arg(long, value_name = "S", value_parser = whole(10u64, 86_400))]
    pub timeout: Option<u64>,
    /// The trace buffer per CPU, in KiB.
    #[arg(long, value_name = "KIB", value_parser = whole(64usize, 1 << 20))]
    pub buffer_kb: Option<usize>,
    /// Where fetched kernels are kept [default: ~/.cache/lazymm].
    #[arg(long, value_name = "DIR", value_parser = non_empty_path())]
    pub cache: Option<PathBuf>,
    /// The report directory.
    #[arg(long, value_name = "DIR", default_value = "lazymm-lab", value_parser = non_empty_path())]
    pub out: PathBuf,
    /// Print the rows of results.csv as JSON Lines instead of the table (schema:
    /// docs/schema/lab.json).
    #[arg(long)]
    pub json: bool,
    /// Analyse a saved report's trace again, without booting.
    #[arg(long, value_name = "DIR", value_parser = non_empty_path())]
    pub from: Option<PathBuf>,
}

/// A value parser from one of the lab's own parsers (its error names the valid choices).
fn lab_parser<T, E: std::fmt::Display + 'static>(
    f: fn(&str) -> Result<T, E>,
) -> impl TypedValueParser<Value = T>
where
    T: Clone + Send + Sync + 'static,
{
    move |s: &str| f(s).map_err(|e| e.to_string())
}

/// The recorders `record` knows, in the order it tries them.
pub const TOOLS: &[&str] = &["perf", "trace-cmd"];

/// The help of `--machine`: the presets, from `lazymm_cost::machine::PRESETS`.
fn machine_help() -> String {
    let presets: Vec<&str> = lazymm_cost::machine::PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    format!(
        "A machine preset or a machine file (TOML) [presets: {}]",
        presets.join(", ")
    )
}

/// A scheme (built-in or registered), listed with its description.
fn scheme() -> impl TypedValueParser<Value = &'static str> {
    PossibleValuesParser::new(scheme_values(false)).try_map(|s| registry::scheme(&s))
}

/// A scheme, or a mutant (accepted wherever a scheme is; not listed, `lazymm schemes`
/// lists them).
fn variant() -> impl TypedValueParser<Value = Variant> {
    PossibleValuesParser::new(scheme_values(true)).try_map(|s| Variant::by_name(&s))
}

fn scheme_values(with_mutants: bool) -> Vec<PossibleValue> {
    let mut v: Vec<PossibleValue> = registry::schemes()
        .into_iter()
        .map(|(n, d)| PossibleValue::new(n).help(d))
        .collect();
    if with_mutants {
        v.extend(mutants().map(|m| PossibleValue::new(m.name()).hide(true)));
    }
    v
}

/// Every mutant, finding and configuration `registry::mutant` accepts.
fn mutants() -> impl Iterator<Item = Mutant> {
    registry::mutants()
        .into_iter()
        .chain(registry::findings())
        .chain(registry::configs())
}

/// A mutant or a finding, listed with its scheme and description.
fn mutant() -> impl TypedValueParser<Value = Mutant> {
    let values: Vec<PossibleValue> = mutants()
        .map(|m| PossibleValue::new(m.name()).help(format!("[{}] {}", m.scheme(), m.description())))
        .collect();
    PossibleValuesParser::new(values).try_map(|s| registry::mutant(&s))
}

/// An arch, listed with its description.
fn arch() -> impl TypedValueParser<Value = &'static str> {
    let values = registry::ARCHS
        .iter()
        .map(|(n, d)| PossibleValue::new(*n).help(*d));
    PossibleValuesParser::new(values).try_map(|s| registry::arch(&s))
}

/// A workload, listed with its description.
fn workload() -> impl TypedValueParser<Value = Workload> {
    let values = Workload::ALL
        .iter()
        .map(|w| PossibleValue::new(w.name()).help(w.description()));
    PossibleValuesParser::new(values).try_map(|s| registry::workload(&s))
}

/// A trace format.
fn format() -> impl TypedValueParser<Value = Format> {
    let values = Format::ALL.iter().map(|f| PossibleValue::new(f.name()));
    PossibleValuesParser::new(values)
        .try_map(|s| Format::from_name(&s).ok_or_else(|| format!("valid: {}", Format::names())))
}

/// A path that is not empty.
fn non_empty_path() -> impl TypedValueParser<Value = PathBuf> {
    NonEmptyStringValueParser::new().map(PathBuf::from)
}

/// A whole number in `lo..=hi`.
fn whole<T>(lo: T, hi: T) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display + Send + Sync + 'static,
{
    move |s: &str| match s.trim().parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!("valid: whole numbers from {lo} to {hi}")),
    }
}

/// A number of seconds in `lo..=hi`.
fn seconds(lo: f64, hi: f64) -> impl TypedValueParser<Value = f64> {
    move |s: &str| match s.trim().parse::<f64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("valid: a number of seconds from {lo} to {hi}")),
    }
}

/// `predict --vary KEY=V1,V2,..`.
fn vary(s: &str) -> Result<(String, Vec<f64>), String> {
    let bad = || "valid: KEY=V1,V2,.. such as cost.fence_ns=7,30".to_string();
    let (key, values) = s.split_once('=').ok_or_else(bad)?;
    if key.trim().is_empty() {
        return Err(bad());
    }
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{v}' is not a number; {}", bad()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((key.trim().to_string(), values))
}
