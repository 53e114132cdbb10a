//! Machine descriptions: topology, line-transfer latencies by distance, and the costs of
//! fences, IPIs, CR3 writes and context switches, loaded from TOML.
//!
//! A machine file names its levels from the innermost out: level 0 groups hardware
//! threads into a core (`size` = SMT threads per core), level 1 groups cores (an L3 or a
//! CCX), and so on up to the whole machine. Two CPUs are at distance `i` when the
//! smallest group that holds both is at level `i`; a line moving between them costs
//! that level's `transfer_ns`. Every value in a preset carries a comment naming the
//! published measurement it comes from (each file lists its sources: papers, mailing-list
//! posts by Message-ID, benchmark data sets), or what was assumed where no measurement
//! was found.
//!
//! The presets are compiled into the binary ([`PRESETS`]), so `--machine NAME` works
//! without the source tree; `--machine FILE` reads a user's own file.

use serde::Deserialize;
use std::path::Path;

/// Picoseconds: the simulator's unit of time (integers, so sums are exact and runs
/// repeat byte for byte).
pub type Ps = u64;

/// Converts nanoseconds from a machine file to picoseconds.
pub fn ps(ns: f64) -> Ps {
    (ns * 1000.0).round().max(0.0) as Ps
}

/// The presets shipped in the binary: name and TOML text.
pub const PRESETS: &[(&str, &str)] = &[
    ("host", include_str!("../machines/host.toml")),
    ("power8-192", include_str!("../machines/power8-192.toml")),
    (
        "epyc-zen4-2s",
        include_str!("../machines/epyc-zen4-2s.toml"),
    ),
    ("spr-2s", include_str!("../machines/spr-2s.toml")),
    ("skl-2s", include_str!("../machines/skl-2s.toml")),
    ("big-1024", include_str!("../machines/big-1024.toml")),
];

/// A machine file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// `--machine` names neither a preset nor a readable file.
    #[error("unknown machine '{0}' (valid: a file, or one of {valid})", valid = preset_names())]
    Unknown(String),
    /// The file could not be read.
    #[error("cannot read machine file '{path}': {err}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// The file is not valid TOML or misses a field.
    #[error("machine '{name}': {msg}")]
    Parse {
        /// The machine (file or preset name).
        name: String,
        /// What is wrong, from the TOML parser.
        msg: String,
    },
    /// A value is out of range.
    #[error("machine '{name}': {msg}")]
    Invalid {
        /// The machine.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A `--vary` key that the machine file does not have.
    #[error("bad --vary key '{key}' (valid: a numeric field such as cost.fence_ns, ipi.delivery_ns, handoff.tenure_rmws, idle.entry_ns, level.NAME.transfer_ns, idle.state.NAME.exit_latency_ns; {msg})")]
    VaryKey {
        /// The key.
        key: String,
        /// Why.
        msg: String,
    },
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How simulated CPU numbers map onto hardware threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuOrder {
    /// CPU `i` is hardware thread `i`: the SMT threads of core 0 first (Linux's
    /// numbering on POWER).
    ThreadsFirst,
    /// One thread of every core first, then the second thread of every core (Linux's
    /// numbering on x86: SMT siblings at `+ cores`).
    CoresFirst,
}

/// One level of the topology, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Its name (`core`, `ccx`, `socket`, `node`, `machine`).
    pub name: String,
    /// How many units of the level below one unit of this level holds (hardware threads
    /// for level 0).
    pub size: usize,
    /// One line transfer between two CPUs whose smallest common group is this level, in
    /// ns (one-way: a core-to-core CAS round trip over two).
    pub transfer_ns: f64,
}

/// CPU-local costs, as written in the file (ns).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Costs {
    /// A load that hits a line this CPU holds.
    pub load_hit_ns: f64,
    /// A store to a line this CPU holds exclusively.
    pub store_hit_ns: f64,
    /// An uncontended atomic RMW on a line this CPU holds exclusively.
    pub rmw_ns: f64,
    /// A miss on a line no CPU holds: a fetch from memory.
    pub memory_ns: f64,
    /// A full fence (`smp_mb`): the drain of the CPU's store buffer.
    pub fence_ns: f64,
    /// A page-table-root write (CR3 on x86, the PID/LPID switch on POWER) without a flush.
    pub cr3_write_ns: f64,
    /// The CPU-local work a real kernel spends on one context switch (registers, the
    /// scheduler's pick, the syscalls around a pipe hand-off), charged on every switch.
    pub context_switch_ns: f64,
}

/// IPI costs, as written in the file (ns).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpiCosts {
    /// The sender's fixed cost of one `on_each_cpu_mask` call.
    pub send_ns: f64,
    /// The sender's cost per target (writing each target's queue, one doorbell each).
    pub per_target_ns: f64,
    /// From the send until the target's handler starts; also the signal of a remote
    /// wakeup of a CPU idle in a state that does not poll (the function-call IPI of
    /// `send_call_function_single_ipi`), before the state's exit latency.
    pub delivery_ns: f64,
    /// The target's handler entry and exit, beyond the handler's own accesses.
    pub handler_ns: f64,
}

/// The cpuidle governor whose choice the simulator follows (`[idle] governor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Governor {
    /// `drivers/cpuidle/governors/menu.c`: the deepest state whose target residency fits
    /// the predicted idle time; the tick is kept when the prediction is shorter than a
    /// tick. Simplified: the prediction is the CPU's previous idle time (menu's
    /// `get_typical_interval` over regular ping-pong intervals), no timer, no latency
    /// request.
    Menu,
    /// `drivers/cpuidle/governors/haltpoll.c` (KVM guests): the polling state first,
    /// with the tick kept, while `poll_limit_ns` allows it; else the halt state with the
    /// tick stopped.
    Haltpoll,
}

/// One idle state of the cpuidle driver, as written in the file (`[[idle.state]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleStateFile {
    /// The driver's name for it (`POLL`, `C1`, `C6`, `snooze`, `nap`).
    pub name: String,
    /// `exit_latency`: from the wakeup event until the CPU runs again.
    pub exit_latency_ns: f64,
    /// `target_residency`: the shortest idle time worth entering it for.
    pub target_residency_ns: f64,
    /// Whether the CPU keeps `TIF_POLLING_NRFLAG` set in it (`poll_idle`, `snooze_loop`,
    /// x86's `mwait_idle_with_hints` monitoring the flags word): a remote wakeup then
    /// sets `TIF_NEED_RESCHED` on the idle task's line and sends no IPI
    /// (`set_nr_if_polling`).
    pub polling: bool,
}

/// How a CPU goes idle and is woken, as written in the file (the `[idle]` section, ns).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleFile {
    /// The governor that picks the state.
    pub governor: Governor,
    /// CPU-local work from `do_idle` to the state's entry: the governor's selection and
    /// the driver's enter path, charged each time a CPU goes idle.
    pub entry_ns: f64,
    /// CPU-local work after the state's exit latency until `schedule_idle`: the
    /// governor's reflect and `tick_nohz_idle_exit` without a tick restart.
    pub exit_ns: f64,
    /// How long a polling state 0 polls before the governor picks a deeper state
    /// (`cpuidle_poll_time`, or the haltpoll governor's `guest_halt_poll_ns`).
    pub poll_limit_ns: f64,
    /// The tick period, 1e9 / `CONFIG_HZ`.
    pub tick_ns: f64,
    /// `tick_nohz_idle_stop_tick`: stopping the tick on entry (the clockevent
    /// reprogrammed).
    pub tick_stop_ns: f64,
    /// `tick_nohz_idle_restart_tick` on exit.
    pub tick_restart_ns: f64,
    /// The driver's states, shallowest first.
    pub state: Vec<IdleStateFile>,
}

/// How a contended line passes between CPUs, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The arbiter hands a contended line to a waiter inside the same group of this
    /// level as the current owner while there is one (oldest first), at most
    /// `max_local_handoffs` times in a row; then to the oldest waiter anywhere.
    /// `"none"`: first come, first served.
    pub prefer_level: String,
    /// Consecutive preferred hand-offs before the oldest waiter anywhere gets the line.
    pub max_local_handoffs: u32,
    /// Accesses an owner retires per tenure of a contended line: accesses it issues
    /// within `snoop_hold_ns` of its previous one hit before the line moves on.
    pub tenure_rmws: u32,
    /// How long an owner holds a contended line after its access completes before it
    /// answers the waiting snoop.
    pub snoop_hold_ns: f64,
    /// LL/SC architectures (POWER's larx/stcx.): each contended RMW hand-off occupies
    /// the line for one extra transfer per this many waiters (failed stcx. attempts
    /// that steal the line); 0: an atomic RMW never retries (x86's locked
    /// instructions).
    pub llsc_retry_per_waiter: f64,
}

/// A machine file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineFile {
    /// Short name (the preset name).
    pub name: String,
    /// One line on what machine this is.
    pub description: String,
    /// How CPU numbers map to hardware threads.
    pub cpu_order: CpuOrder,
    /// The topology, innermost level first.
    pub level: Vec<Level>,
    /// CPU-local costs.
    pub cost: Costs,
    /// IPI costs.
    pub ipi: IpiCosts,
    /// Contended hand-off behaviour.
    pub handoff: Handoff,
    /// The idle path.
    pub idle: IdleFile,
}

/// One idle state, in picoseconds.
#[derive(Debug, Clone)]
pub struct IdleState {
    /// Its name.
    pub name: String,
    /// Exit latency.
    pub exit_latency: Ps,
    /// Target residency.
    pub target_residency: Ps,
    /// Whether a wakeup needs no IPI.
    pub polling: bool,
}

/// The idle path of a machine, in picoseconds, and the governor's choice.
#[derive(Debug, Clone)]
pub struct Idle {
    /// The governor.
    pub governor: Governor,
    /// Entry work.
    pub entry: Ps,
    /// Exit work.
    pub exit: Ps,
    /// The polling state's limit.
    pub poll_limit: Ps,
    /// The tick period.
    pub tick: Ps,
    /// Stopping the tick.
    pub tick_stop: Ps,
    /// Restarting it.
    pub tick_restart: Ps,
    /// The states, shallowest first (at least one).
    pub states: Vec<IdleState>,
}

/// What the governor chose for one idle period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleChoice {
    /// The state entered (an index into [`Idle::states`]).
    pub state: usize,
    /// Whether the tick was stopped.
    pub tick_stopped: bool,
}

impl Idle {
    /// The governor's choice on entry, for a predicted idle time of `predicted`.
    pub fn select(&self, predicted: Ps) -> IdleChoice {
        match self.governor {
            Governor::Menu => {
                // menu_select: the deepest state whose target residency fits.
                let state = self
                    .states
                    .iter()
                    .rposition(|s| s.target_residency <= predicted)
                    .unwrap_or(0);
                IdleChoice {
                    state,
                    tick_stopped: predicted >= self.tick,
                }
            }
            Governor::Haltpoll => {
                // haltpoll_select: poll (tick kept) while the poll limit allows it;
                // else the halt state, the tick stopped.
                if self.states[0].polling && self.poll_limit > 0 || self.states.len() == 1 {
                    IdleChoice {
                        state: 0,
                        tick_stopped: false,
                    }
                } else {
                    IdleChoice {
                        state: 1,
                        tick_stopped: true,
                    }
                }
            }
        }
    }

    /// The state a CPU is in `idle` after entering with `choice`: a polling state 0
    /// gives up after the poll limit and the governor picks again (`poll_idle`'s
    /// `poll_time_limit`), now the next state, the tick stopped as the governor then
    /// decides (haltpoll stops it; menu keeps its entry decision).
    pub fn after(&self, choice: IdleChoice, idle: Ps) -> IdleChoice {
        if choice.state == 0
            && self.states[0].polling
            && idle > self.poll_limit
            && self.states.len() > 1
        {
            IdleChoice {
                state: 1,
                tick_stopped: choice.tick_stopped || self.governor == Governor::Haltpoll,
            }
        } else {
            choice
        }
    }
}

/// A machine ready to simulate: the file's values in picoseconds, and each CPU's
/// group at every level.
///
/// # Invariants
/// `groups[l][cpu]` is the index of `cpu`'s group at level `l`; the last level has one
/// group (the whole machine), so any two CPUs have a common level.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The file it came from.
    pub file: MachineFile,
    /// Where it came from (a preset name or a path).
    pub source: String,
    /// Hardware threads.
    pub nr_cpus: usize,
    /// `transfer[l]`: one line transfer at distance `l`.
    pub transfer: Vec<Ps>,
    groups: Vec<Vec<u32>>,
    /// The preferred hand-off level (`levels.len()` for none).
    pub prefer_level: usize,
    /// Costs in ps.
    pub load_hit: Ps,
    /// Store hit.
    pub store_hit: Ps,
    /// Uncontended RMW.
    pub rmw: Ps,
    /// Fetch from memory.
    pub memory: Ps,
    /// Full fence.
    pub fence: Ps,
    /// Page-table-root write.
    pub cr3_write: Ps,
    /// Context switch work.
    pub context_switch: Ps,
    /// IPI send.
    pub ipi_send: Ps,
    /// IPI per target.
    pub ipi_per_target: Ps,
    /// IPI delivery.
    pub ipi_delivery: Ps,
    /// IPI handler.
    pub ipi_handler: Ps,
    /// The idle path.
    pub idle: Idle,
    /// The `--vary` keys and values of the numeric values whose source comment says
    /// `assumed` (see [`assumed_values`]), in file order.
    pub assumed: Vec<(String, f64)>,
    /// Snoop hold.
    pub snoop_hold: Ps,
}

impl Machine {
    /// Loads `--machine`: a preset name, or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Machine, MachineError> {
        Machine::load_varied(name_or_path, &[])
    }

    /// Loads a machine with some numeric fields replaced (`--vary`): each `(key, value)`
    /// is a dotted path (`cost.fence_ns`, `level.socket.transfer_ns`).
    pub fn load_varied(
        name_or_path: &str,
        vary: &[(String, f64)],
    ) -> Result<Machine, MachineError> {
        let (text, source) = if let Some((_, t)) = PRESETS.iter().find(|(n, _)| *n == name_or_path)
        {
            (t.to_string(), format!("preset '{name_or_path}'"))
        } else if Path::new(name_or_path).is_file() {
            let t = std::fs::read_to_string(name_or_path).map_err(|err| MachineError::Io {
                path: name_or_path.to_string(),
                err,
            })?;
            (t, format!("file '{name_or_path}'"))
        } else {
            return Err(MachineError::Unknown(name_or_path.to_string()));
        };
        Machine::from_toml(&text, &source, vary)
    }

    /// Parses machine TOML, applies `vary`, and checks every value.
    pub fn from_toml(
        text: &str,
        source: &str,
        vary: &[(String, f64)],
    ) -> Result<Machine, MachineError> {
        let parse = |msg: String| MachineError::Parse {
            name: source.to_string(),
            msg,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse(e.message().to_string()))?;
        for (key, v) in vary {
            set_key(&mut table, key, *v)?;
        }
        let file: MachineFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.message().to_string()))?;
        let mut m = Machine::compile(file, source)?;
        // The values as varied: a varied key keeps its mark and takes its new value.
        m.assumed = assumed_values(text)
            .into_iter()
            .map(|(k, v)| {
                let v = vary
                    .iter()
                    .rev()
                    .find(|(vk, _)| *vk == k)
                    .map_or(v, |x| x.1);
                (k, v)
            })
            .collect();
        Ok(m)
    }

    fn compile(file: MachineFile, source: &str) -> Result<Machine, MachineError> {
        let bad = |msg: String| MachineError::Invalid {
            name: source.to_string(),
            msg,
        };
        if file.level.is_empty() {
            return Err(bad("no [[level]]: give at least the core level".into()));
        }
        let mut nr_cpus = 1usize;
        for (i, l) in file.level.iter().enumerate() {
            if l.size == 0 || l.size > 4096 {
                return Err(bad(format!(
                    "level {i} '{}': size {} (valid: 1 to 4096)",
                    l.name, l.size
                )));
            }
            nr_cpus = nr_cpus.saturating_mul(l.size);
        }
        if nr_cpus > 65536 {
            return Err(bad(format!(
                "{nr_cpus} hardware threads (valid: at most 65536)"
            )));
        }
        let nonneg = |what: &str, v: f64| -> Result<(), MachineError> {
            if (0.0..1e9).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!(
                    "{what} = {v} (valid: a number of ns from 0 to 1e9)"
                )))
            }
        };
        for l in &file.level {
            nonneg(&format!("level '{}' transfer_ns", l.name), l.transfer_ns)?;
        }
        let c = &file.cost;
        for (n, v) in [
            ("cost.load_hit_ns", c.load_hit_ns),
            ("cost.store_hit_ns", c.store_hit_ns),
            ("cost.rmw_ns", c.rmw_ns),
            ("cost.memory_ns", c.memory_ns),
            ("cost.fence_ns", c.fence_ns),
            ("cost.cr3_write_ns", c.cr3_write_ns),
            ("cost.context_switch_ns", c.context_switch_ns),
            ("ipi.send_ns", file.ipi.send_ns),
            ("ipi.per_target_ns", file.ipi.per_target_ns),
            ("ipi.delivery_ns", file.ipi.delivery_ns),
            ("ipi.handler_ns", file.ipi.handler_ns),
            ("handoff.snoop_hold_ns", file.handoff.snoop_hold_ns),
            ("idle.entry_ns", file.idle.entry_ns),
            ("idle.exit_ns", file.idle.exit_ns),
            ("idle.poll_limit_ns", file.idle.poll_limit_ns),
            ("idle.tick_ns", file.idle.tick_ns),
            ("idle.tick_stop_ns", file.idle.tick_stop_ns),
            ("idle.tick_restart_ns", file.idle.tick_restart_ns),
        ] {
            nonneg(n, v)?;
        }
        if file.idle.state.is_empty() {
            return Err(bad("no [[idle.state]]: give at least one idle state".into()));
        }
        for (i, st) in file.idle.state.iter().enumerate() {
            nonneg(
                &format!("idle.state '{}' exit_latency_ns", st.name),
                st.exit_latency_ns,
            )?;
            nonneg(
                &format!("idle.state '{}' target_residency_ns", st.name),
                st.target_residency_ns,
            )?;
            if i > 0 && st.target_residency_ns < file.idle.state[i - 1].target_residency_ns {
                return Err(bad(format!(
                    "idle.state '{}': target_residency_ns below the previous state's (valid: shallowest state first)",
                    st.name
                )));
            }
        }
        if file.idle.tick_ns <= 0.0 {
            return Err(bad(format!(
                "idle.tick_ns = {} (valid: 1e9 / CONFIG_HZ, above 0)",
                file.idle.tick_ns
            )));
        }
        let r = file.handoff.llsc_retry_per_waiter;
        if !(r.is_finite() && (0.0..=100.0).contains(&r)) {
            return Err(bad(format!(
                "handoff.llsc_retry_per_waiter = {r} (valid: 0 to 100)"
            )));
        }
        if file.handoff.tenure_rmws == 0 {
            return Err(bad("handoff.tenure_rmws = 0 (valid: 1 or more)".into()));
        }
        let prefer_level = if file.handoff.prefer_level == "none" {
            file.level.len()
        } else {
            file.level
                .iter()
                .position(|l| l.name == file.handoff.prefer_level)
                .ok_or_else(|| {
                    let names: Vec<&str> = file.level.iter().map(|l| l.name.as_str()).collect();
                    bad(format!(
                        "handoff.prefer_level '{}' (valid: none, {})",
                        file.handoff.prefer_level,
                        names.join(", ")
                    ))
                })?
        };
        // Each CPU's hardware thread, then its group at every level.
        let smt = file.level[0].size;
        let cores = nr_cpus / smt;
        let hw: Vec<usize> = (0..nr_cpus)
            .map(|i| match file.cpu_order {
                CpuOrder::ThreadsFirst => i,
                CpuOrder::CoresFirst => (i % cores) * smt + i / cores,
            })
            .collect();
        let mut groups = Vec::with_capacity(file.level.len());
        let mut span = 1usize;
        for (i, l) in file.level.iter().enumerate() {
            span *= l.size;
            // INVARIANT: the last level spans every thread, so it has one group.
            let span = if i + 1 == file.level.len() {
                nr_cpus
            } else {
                span
            };
            groups.push(hw.iter().map(|&h| (h / span) as u32).collect());
        }
        Ok(Machine {
            nr_cpus,
            transfer: file.level.iter().map(|l| ps(l.transfer_ns)).collect(),
            groups,
            prefer_level,
            load_hit: ps(c.load_hit_ns),
            store_hit: ps(c.store_hit_ns),
            rmw: ps(c.rmw_ns),
            memory: ps(c.memory_ns),
            fence: ps(c.fence_ns),
            cr3_write: ps(c.cr3_write_ns),
            context_switch: ps(c.context_switch_ns),
            ipi_send: ps(file.ipi.send_ns),
            ipi_per_target: ps(file.ipi.per_target_ns),
            ipi_delivery: ps(file.ipi.delivery_ns),
            ipi_handler: ps(file.ipi.handler_ns),
            idle: Idle {
                governor: file.idle.governor,
                entry: ps(file.idle.entry_ns),
                exit: ps(file.idle.exit_ns),
                poll_limit: ps(file.idle.poll_limit_ns),
                tick: ps(file.idle.tick_ns),
                tick_stop: ps(file.idle.tick_stop_ns),
                tick_restart: ps(file.idle.tick_restart_ns),
                states: file
                    .idle
                    .state
                    .iter()
                    .map(|s| IdleState {
                        name: s.name.clone(),
                        exit_latency: ps(s.exit_latency_ns),
                        target_residency: ps(s.target_residency_ns),
                        polling: s.polling,
                    })
                    .collect(),
            },
            snoop_hold: ps(file.handoff.snoop_hold_ns),
            source: source.to_string(),
            assumed: Vec::new(),
            file,
        })
    }

    /// The index of `cpu`'s group at level `level` (level 0: its core; level 1: the
    /// group of cores above it, the last-level cache in every preset).
    pub fn group(&self, level: usize, cpu: usize) -> u32 {
        self.groups[level][cpu]
    }

    /// Levels of the topology.
    pub fn levels(&self) -> usize {
        self.transfer.len()
    }

    /// The distance level of two CPUs: the smallest level whose group holds both.
    #[inline]
    pub fn distance(&self, a: usize, b: usize) -> usize {
        for (l, g) in self.groups.iter().enumerate() {
            if g[a] == g[b] {
                return l;
            }
        }
        // Unreachable by the invariant: the last level has one group.
        self.groups.len() - 1
    }

    /// One line transfer between two CPUs (0 for the same CPU).
    #[inline]
    pub fn transfer(&self, a: usize, b: usize) -> Ps {
        if a == b {
            0
        } else {
            self.transfer[self.distance(a, b)]
        }
    }

    /// Whether two CPUs share a group at the preferred hand-off level.
    #[inline]
    pub fn near(&self, a: usize, b: usize) -> bool {
        self.prefer_level < self.groups.len()
            && self.groups[self.prefer_level][a] == self.groups[self.prefer_level][b]
    }
}

/// The `--vary` keys (`cost.memory_ns`, `level.NAME.transfer_ns`,
/// `idle.state.NAME.exit_latency_ns`) of the numeric values of a machine file whose
/// source comment begins with `assumed` (the file format's mark for a value no
/// measurement backs; `assumed from X` included), with their values.
pub fn assumed_values(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    // The table a key is in, and the name of the array entry it is in, if any.
    let (mut table, mut entry) = (String::new(), None::<String>);
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').to_string();
            entry = None;
            continue;
        }
        let Some((kv, comment)) = l.split_once('#') else {
            continue;
        };
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "name" {
            entry = Some(v.trim_matches('"').to_string());
            continue;
        }
        let Ok(v) = v.parse::<f64>() else {
            continue;
        };
        if !comment.trim_start().starts_with("assumed") {
            continue;
        }
        let key = match (table.as_str(), &entry) {
            ("level", Some(n)) => format!("level.{n}.{k}"),
            ("idle.state", Some(n)) => format!("idle.state.{n}.{k}"),
            ("", _) => continue,
            (t, _) => format!("{t}.{k}"),
        };
        out.push((key, v));
    }
    out
}

/// Sets a numeric field of the TOML tree: `section.field`, or `level.NAME.field` for the
/// level named NAME.
fn set_key(table: &mut toml::Table, key: &str, v: f64) -> Result<(), MachineError> {
    let err = |msg: &str| MachineError::VaryKey {
        key: key.to_string(),
        msg: msg.to_string(),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let slot: &mut toml::Value = match parts.as_slice() {
        ["idle", "state", name, field] => {
            let states = table
                .get_mut("idle")
                .and_then(|i| i.get_mut("state"))
                .and_then(|l| l.as_array_mut())
                .ok_or_else(|| err("the machine has no idle states"))?;
            let state = states
                .iter_mut()
                .find(|l| l.get("name").and_then(|n| n.as_str()) == Some(name))
                .ok_or_else(|| err("no idle state of that name"))?;
            state
                .get_mut(*field)
                .ok_or_else(|| err("no such field in the idle state"))?
        }
        ["level", name, field] => {
            let levels = table
                .get_mut("level")
                .and_then(|l| l.as_array_mut())
                .ok_or_else(|| err("the machine has no levels"))?;
            let level = levels
                .iter_mut()
                .find(|l| l.get("name").and_then(|n| n.as_str()) == Some(name))
                .ok_or_else(|| err("no level of that name"))?;
            level
                .get_mut(*field)
                .ok_or_else(|| err("no such field in the level"))?
        }
        [section, field] => table
            .get_mut(*section)
            .and_then(|s| s.get_mut(*field))
            .ok_or_else(|| err("no such field"))?,
        _ => {
            return Err(err(
                "a key has two or three dotted parts, four for an idle state",
            ))
        }
    };
    *slot = match slot {
        toml::Value::Integer(_) if v.fract() == 0.0 => toml::Value::Integer(v as i64),
        toml::Value::Integer(_) => return Err(err("this field takes a whole number")),
        toml::Value::Float(_) => toml::Value::Float(v),
        _ => return Err(err("not a numeric field")),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_cites_its_values() {
        for (name, text) in PRESETS {
            let m = Machine::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&m.file.name, name);
            // Every value line carries a comment saying where it comes from.
            for line in text.lines() {
                let l = line.trim();
                if l.contains('=') && !l.starts_with('#') {
                    assert!(
                        l.contains('#'),
                        "{name}: value without a source comment: {l}"
                    );
                }
            }
        }
    }

    #[test]
    fn distances_follow_the_levels_and_the_cpu_order() {
        let text = PRESETS
            .iter()
            .find(|(n, _)| *n == "epyc-zen4-2s")
            .unwrap()
            .1;
        let m = Machine::from_toml(text, "t", &[]).unwrap();
        assert_eq!(m.nr_cpus, 384);
        // Cores first: CPUs 0..192 are one thread of each core, 192.. their siblings.
        assert_eq!(m.distance(0, 192), 0, "SMT siblings");
        assert_eq!(m.distance(0, 1), 1, "same CCX");
        assert_eq!(m.distance(0, 8), 2, "next CCX, same socket");
        assert_eq!(m.distance(0, 96), 3, "other socket");
        assert_eq!(m.transfer(5, 5), 0);
        assert!(m.transfer(0, 1) < m.transfer(0, 8) && m.transfer(0, 8) < m.transfer(0, 96));
    }

    #[test]
    fn vary_replaces_one_value_and_refuses_unknown_keys() {
        let text = PRESETS.iter().find(|(n, _)| *n == "spr-2s").unwrap().1;
        let m = Machine::from_toml(text, "t", &[("cost.fence_ns".into(), 123.0)]).unwrap();
        assert_eq!(m.fence, 123_000);
        let m =
            Machine::from_toml(text, "t", &[("level.socket.transfer_ns".into(), 77.0)]).unwrap();
        let s = m
            .file
            .level
            .iter()
            .position(|l| l.name == "socket")
            .unwrap();
        assert_eq!(m.transfer[s], 77_000);
        for bad in ["cost.nope", "level.nope.transfer_ns", "a.b.c.d", "name"] {
            assert!(
                matches!(
                    Machine::from_toml(text, "t", &[(bad.into(), 1.0)]),
                    Err(MachineError::VaryKey { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_value_named() {
        let text = PRESETS.iter().find(|(n, _)| *n == "spr-2s").unwrap().1;
        let e = Machine::from_toml(text, "t", &[("cost.fence_ns".into(), -1.0)]).unwrap_err();
        assert!(e.to_string().contains("cost.fence_ns"), "{e}");
        let e = Machine::from_toml("name = 1", "t", &[]).unwrap_err();
        assert!(matches!(e, MachineError::Parse { .. }), "{e}");
        assert!(matches!(
            Machine::load("no-such-machine"),
            Err(MachineError::Unknown(_))
        ));
    }

    #[test]
    fn the_governor_picks_the_deepest_state_that_fits_and_polling_gives_up() {
        let m = Machine::load("skl-2s").unwrap();
        let idle = &m.idle;
        let names = |c: IdleChoice| idle.states[c.state].name.as_str();
        // menu: the deepest state whose target residency fits the prediction.
        assert_eq!(names(idle.select(0)), "POLL");
        assert_eq!(names(idle.select(ps(5_000.0))), "C1");
        assert_eq!(names(idle.select(ps(50_000.0))), "C1E");
        assert_eq!(names(idle.select(ps(5e6))), "C6");
        assert!(!idle.select(ps(50_000.0)).tick_stopped);
        assert!(idle.select(ps(5e6)).tick_stopped, "longer than a tick");
        // POLL gives up after the poll limit (C1's target residency, 2 us).
        let poll = idle.select(0);
        assert_eq!(names(idle.after(poll, ps(1_000.0))), "POLL");
        assert_eq!(names(idle.after(poll, ps(3_000.0))), "C1");
        // haltpoll with a zero limit halts at once and stops the tick.
        let h = Machine::load("host").unwrap();
        let c = h.idle.select(ps(50_000.0));
        assert_eq!((c.state, c.tick_stopped), (1, true));
        assert!(!h.idle.states[1].polling);
        let h = Machine::load_varied("host", &[("idle.poll_limit_ns".into(), 200_000.0)]).unwrap();
        let c = h.idle.select(ps(50_000.0));
        assert_eq!((c.state, c.tick_stopped), (0, false));
        assert_eq!(h.idle.after(c, ps(300_000.0)).state, 1);
    }

    #[test]
    fn idle_states_must_come_shallowest_first() {
        let text = PRESETS.iter().find(|(n, _)| *n == "skl-2s").unwrap().1;
        let e = Machine::from_toml(
            text,
            "t",
            &[("idle.state.C6.target_residency_ns".into(), 1.0)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("idle.state 'C6'"), "{e}");
        assert!(matches!(
            Machine::from_toml(text, "t", &[("idle.state.C9.exit_latency_ns".into(), 1.0)]),
            Err(MachineError::VaryKey { .. })
        ));
    }

    #[test]
    fn assumed_values_are_machine_readable_and_every_key_varies() {
        for (name, text) in PRESETS {
            let m = Machine::load(name).unwrap();
            assert!(!m.assumed.is_empty(), "{name}");
            for (k, _) in &m.assumed {
                // Every listed key is one --vary accepts.
                Machine::from_toml(text, name, &[(k.clone(), 1.0)])
                    .unwrap_or_else(|e| panic!("{name}: {k}: {e}"));
            }
        }
        let m = Machine::load("skl-2s").unwrap();
        for k in ["cost.memory_ns", "idle.entry_ns", "ipi.per_target_ns"] {
            assert!(m.assumed.iter().any(|a| a.0 == k), "{k}: {:?}", m.assumed);
        }
        // Sourced values are not listed.
        for k in [
            "cost.rmw_ns",
            "level.socket.transfer_ns",
            "idle.state.C1.exit_latency_ns",
        ] {
            assert!(!m.assumed.iter().any(|a| a.0 == k), "{k}");
        }
        let p8 = Machine::load("power8-192").unwrap();
        assert!(p8
            .assumed
            .contains(&("level.machine.transfer_ns".to_string(), 1000.0)));
    }
}
