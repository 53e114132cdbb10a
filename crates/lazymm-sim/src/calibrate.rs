//! `lazymm predict --calibrate`: measures this host and writes the `host` machine file.
//!
//! Measured here: the uncontended atomic RMW, one line transfer between two host cores
//! (a CAS ping-pong, round trip over two, as nviennot/core-to-core-latency measures), the
//! full fence (`hostcost::host_fence_ns`) and the real context switch
//! (`hostcost::host_switch_ns`). What user space cannot measure (IPIs, the CR3 write) is
//! taken from published measurements (Yury Norov's ipi_benchmark, Nadav Amit's CR3
//! figure), and the file cites them.

use lazymm::sync::raw::AtomicU64;
use lazymm::sync::Ordering;
use lazymm_engine::hostcost;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// What `--calibrate` measured, in ns.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Host CPUs.
    pub cpus: usize,
    /// One uncontended `fetch_add`.
    pub rmw_ns: f64,
    /// One line transfer between host cores 0 and 1 (`None` with one CPU).
    pub transfer_ns: Option<f64>,
    /// One full fence between a store and a load.
    pub fence_ns: f64,
    /// One real context switch (pipe ping-pong on one core).
    pub switch_ns: f64,
    /// Whether the switch measurement was pinned to one core.
    pub switch_pinned: bool,
    /// The CPU model, if known.
    pub cpu_model: Option<String>,
    /// The host's cpuidle setup, read from sysfs (`None` where it is not readable).
    pub idle: Option<HostIdle>,
}

/// The host's cpuidle driver and governor, as sysfs shows them.
#[derive(Debug, Clone)]
pub struct HostIdle {
    /// `/sys/devices/system/cpu/cpuidle/current_governor`.
    pub governor: String,
    /// CPU 0's states: name, desc, latency (us), residency (us).
    pub states: Vec<(String, String, u64, u64)>,
    /// `/sys/module/haltpoll/parameters/guest_halt_poll_ns`, under haltpoll.
    pub guest_halt_poll_ns: Option<u64>,
}

impl HostIdle {
    /// Reads CPU 0's cpuidle states and the governor.
    pub fn read() -> Option<HostIdle> {
        let rd = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let governor = rd("/sys/devices/system/cpu/cpuidle/current_governor")
            .or_else(|| rd("/sys/devices/system/cpu/cpuidle/current_governor_ro"))?;
        let mut states = Vec::new();
        for i in 0.. {
            let d = format!("/sys/devices/system/cpu/cpu0/cpuidle/state{i}");
            let Some(name) = rd(&format!("{d}/name")) else {
                break;
            };
            let num = |f: &str| rd(&format!("{d}/{f}")).and_then(|v| v.parse::<u64>().ok());
            states.push((
                name,
                rd(&format!("{d}/desc")).unwrap_or_default(),
                num("latency")?,
                num("residency")?,
            ));
        }
        if states.is_empty() {
            return None;
        }
        let guest_halt_poll_ns =
            rd("/sys/module/haltpoll/parameters/guest_halt_poll_ns").and_then(|v| v.parse().ok());
        Some(HostIdle {
            governor,
            states,
            guest_halt_poll_ns,
        })
    }

    /// The `[idle]` section for this host.
    fn to_toml(&self) -> String {
        let haltpoll = self.governor == "haltpoll";
        let (governor, gov_src) = if haltpoll || self.governor == "menu" {
            (
                self.governor.as_str(),
                "measured: /sys/devices/system/cpu/cpuidle/current_governor",
            )
        } else {
            (
                "menu",
                "assumed: the host's governor is not one the simulator follows; menu's rule instead",
            )
        };
        // A polling state: the cpuidle core's POLL, or an MWAIT state (x86's
        // mwait_idle_with_hints keeps TIF_POLLING_NRFLAG set).
        let polls = |name: &str, desc: &str| name == "POLL" || desc.contains("MWAIT");
        let (poll_limit, poll_src) = match (haltpoll, self.guest_halt_poll_ns) {
            (true, Some(ns)) => (
                ns as f64,
                "measured: /sys/module/haltpoll/parameters/guest_halt_poll_ns",
            ),
            _ => (
                self.states.get(1).map_or(0, |s| s.3) as f64 * 1000.0,
                "[poll]: cpuidle_poll_time, state 1's target residency (sysfs)",
            ),
        };
        let mut out = format!(
            r#"
[idle]
governor = "{governor}"{pad}# {gov_src}
entry_ns = 500.0              # assumed: do_idle, the governor's select and the driver's enter path; no measurement found
exit_ns = 300.0               # assumed: the governor's reflect and tick_nohz_idle_exit bookkeeping; no measurement found
poll_limit_ns = {poll_limit:.1}{pad2}# {poll_src}
tick_ns = 1000000.0           # assumed: CONFIG_HZ=1000; the kernel config is not read
tick_stop_ns = 1000.0         # assumed: hrtimer and clockevent reprogramming; no measurement found
tick_restart_ns = 1000.0      # assumed: hrtimer and clockevent reprogramming; no measurement found
"#,
            pad = " ".repeat(19usize.saturating_sub(governor.len())),
            pad2 = " ".repeat(14usize.saturating_sub(format!("{poll_limit:.1}").len())),
        );
        for (i, (name, desc, lat, res)) in self.states.iter().enumerate() {
            let name = name.replace('"', "'");
            let polling = polls(&name, desc);
            out += &format!(
                r#"
[[idle.state]]
name = "{name}"   # measured: sysfs cpu0/cpuidle/state{i}/name ({desc})
exit_latency_ns = {lat}000.0   # measured: sysfs state{i}/latency
target_residency_ns = {res}000.0   # measured: sysfs state{i}/residency
polling = {polling}   # {why}
"#,
                desc = desc.replace('"', "'"),
                why = if polling {
                    "[poll]: POLL, or MWAIT monitoring the flags word, keeps TIF_POLLING_NRFLAG set"
                } else {
                    "[poll]: neither POLL nor MWAIT: a wakeup needs an IPI"
                },
            );
        }
        out
    }

    /// What a host without readable cpuidle gets: HLT only, assumed.
    fn fallback_toml() -> &'static str {
        r#"
[idle]
governor = "menu"             # assumed: the host's cpuidle setup was not readable
entry_ns = 500.0              # assumed: no measurement found
exit_ns = 300.0               # assumed: no measurement found
poll_limit_ns = 0.0           # assumed: no polling
tick_ns = 1000000.0           # assumed: CONFIG_HZ=1000
tick_stop_ns = 1000.0         # assumed: no measurement found
tick_restart_ns = 1000.0      # assumed: no measurement found

[[idle.state]]
name = "halt"                 # assumed: default_idle (HLT)
exit_latency_ns = 1000.0      # assumed: no measurement found
target_residency_ns = 0.0     # assumed: always entered
polling = false               # assumed: HLT, a wakeup needs an IPI
"#
    }
}

/// One uncontended atomic RMW: the fastest of a few timed loops.
pub fn rmw_ns() -> f64 {
    let x = AtomicU64::new(0);
    let x = black_box(&x);
    const N: u64 = 1 << 20;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t0 = Instant::now();
        for _ in 0..N {
            // ORDERING: Relaxed; the RMW itself is what is timed, nothing pairs with it.
            black_box(x.fetch_add(1, Ordering::Relaxed));
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / N as f64);
    }
    best
}

/// One line transfer between host cores 0 and 1: two pinned threads pass a value back
/// and forth by CAS; the round trip over two is one transfer plus one CAS.
pub fn transfer_ns(round_trips: u64) -> Option<f64> {
    let cores = core_ids()?;
    if cores.len() < 2 {
        return None;
    }
    let flag = Arc::new(lazymm::sync::CachePadded(AtomicU64::new(0)));
    let f2 = flag.clone();
    let c1 = cores[1];
    let pong = std::thread::spawn(move || {
        pin(c1);
        for i in 0..round_trips {
            // ORDERING: AcqRel / Acquire: the ping-pong's hand-off; pairs with the other
            // thread's CAS of the same line.
            while f2
                .compare_exchange(2 * i + 1, 2 * i + 2, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                std::hint::spin_loop();
            }
        }
    });
    pin(cores[0]);
    let t0 = Instant::now();
    for i in 0..round_trips {
        // ORDERING: as above.
        while flag
            .compare_exchange(2 * i, 2 * i + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }
    // ORDERING: Acquire: wait until the partner's last CAS.
    while flag.load(Ordering::Acquire) != 2 * round_trips {
        std::hint::spin_loop();
    }
    let ns = t0.elapsed().as_nanos() as f64;
    pong.join().ok()?;
    Some(ns / round_trips as f64 / 2.0)
}

fn core_ids() -> Option<Vec<core_affinity::CoreId>> {
    core_affinity::get_core_ids()
}

fn pin(core: core_affinity::CoreId) {
    // Unpinned, the figure includes the scheduler's moves: still measured, but worse.
    let _ = core_affinity::set_for_current(core);
}

/// Measures this host.
pub fn measure() -> Result<Calibration, std::io::Error> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rmw = rmw_ns();
    let transfer = (0..5)
        .filter_map(|_| transfer_ns(20_000))
        .fold(None, |b: Option<f64>, x| Some(b.map_or(x, |b| b.min(x))));
    let fence = hostcost::host_fence_ns(1_000_000, 5);
    let sw = hostcost::host_switch_ns(20_000, 5)?;
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    Ok(Calibration {
        cpus,
        rmw_ns: rmw,
        transfer_ns: transfer,
        fence_ns: fence,
        switch_ns: sw.ns_per_switch,
        switch_pinned: sw.pinned,
        cpu_model,
        idle: HostIdle::read(),
    })
}

impl Calibration {
    /// The `host` machine file, every value with where it came from.
    pub fn to_toml(&self, date: &str) -> String {
        let model = self
            .cpu_model
            .clone()
            .unwrap_or_else(|| "unknown CPU".into());
        let model = model.replace('"', "'");
        let transfer = self.transfer_ns.unwrap_or(0.0);
        let transfer_src = match self.transfer_ns {
            Some(_) => "measured: CAS ping-pong between host cores 0 and 1, round trip / 2 (fastest of 5 x 20000)",
            None => "one host CPU: no transfer to measure",
        };
        format!(
            r#"# This host, measured by `lazymm predict --calibrate` on {date}.
# Measured: the uncontended RMW, the line transfer between two host cores, the full fence,
# the real context switch. Not measurable from user space, taken from
# the published measurements below: IPI costs and the CR3 write.
# The topology is flat: every host CPU one core, all sharing one cache level.
# Sources (the original measurements; [name] below refers to them):
#   [cr3] Nadav Amit, linux-arch 2022-01-09, "Re: [PATCH 16/23] sched: Use lightweight hazard pointers to grab lazy mms" (Message-ID 0B23F7F5-96F1-4E2C-8C17-0ECC21CA14C6@gmail.com): MOV-CR3 without flush 250-300 cycles on Skylake
#   [ipi] Yury Norov, "IPI performance benchmark" (LKML, 2017-12-19, Message-ID 20171219085010.4081-1-ynorov@caviumnetworks.com), native: unicast smp_call_function_single round trip 1.79 us, 1.24 us until the handler runs, self-IPI 0.17 us, broadcast 25.7 us
#   [counters] perfbook CodeSamples/count/data/*count_atomic:u* (hps.2019.10.23a: 8x Xeon 8176, 207 M/s at 1 thread, 31 at 2, 45 at 32, 28 M/s at 420; perfsqh.2010.02.11a: POWER5+ p595, 24 M/s at 1 thread down to 2.9 at 64), aggregate rate = threads / ns per update
#   [poll] drivers/cpuidle/poll_state.c poll_idle and arch/x86/include/asm/mwait.h mwait_idle_with_hints keep TIF_POLLING_NRFLAG set while idle, so a wakeup sends no IPI (set_nr_if_polling); drivers/cpuidle/cpuidle.c cpuidle_poll_time: the polling state gives up after state 1's target residency
name = "host"   # preset name
description = "this host: {cpus} CPUs, {model}"   # /proc/cpuinfo
cpu_order = "threads-first"   # host CPU numbering as the kernel gives it

[[level]]
name = "core"        # one hardware thread per core assumed (flat topology)
size = 1             # one thread per core
transfer_ns = 0.0    # never used: a CPU does not transfer to itself

[[level]]
name = "machine"     # every host CPU
size = {cpus}             # available_parallelism
transfer_ns = {transfer:.1}   # {transfer_src}

[cost]
load_hit_ns = 1.0           # assumed: an L1 hit; not measured
store_hit_ns = 1.0          # assumed: a store into the store buffer; not measured
rmw_ns = {rmw:.2}               # measured: uncontended fetch_add, fastest of 7 x 2^20
memory_ns = 110.0           # assumed: DRAM latency; only cold misses pay it
fence_ns = {fence:.2}              # measured: hostcost::host_fence_ns, a store-fence-load turn less a store-load turn
cr3_write_ns = 92.0         # [cr3]: 250-300 cycles without flush; 275 cycles at an assumed 3.0 GHz
context_switch_ns = {switch:.1}  # measured: hostcost::host_switch_ns, pipe-style ping-pong on one core{pinned}

[ipi]
send_ns = 170.0       # [ipi]: self-IPI 0.17 us, the sender's fixed path
per_target_ns = 20.0  # assumed: the ICR / doorbell write per target; the queue write itself is recorded as RMWs on the target's mailbox and priced by the coherence model (an unsourced rule of thumb puts ~200 ns per receiver in all; [ipi]'s 25.7 us broadcast against its 1.8 us unicast bounds it)
delivery_ns = 1240.0  # [ipi]: 1.24 us until the handler runs
handler_ns = 550.0    # [ipi]: 1.79 us round trip minus 1.24 us

[handoff]
prefer_level = "none"         # a flat machine has no nearer group
max_local_handoffs = 8        # as every preset (unused without a preferred level)
tenure_rmws = 2               # inferred from [counters]: owners retire several RMWs per tenure; 2 reproduces the 8176 plateau (curves.rs), as every preset
snoop_hold_ns = {rmw:.2}          # assumed: one locked RMW (rmw_ns above)
llsc_retry_per_waiter = 0.0   # x86 locked instructions do not retry
"#,
            cpus = self.cpus,
            rmw = self.rmw_ns,
            fence = self.fence_ns,
            switch = self.switch_ns,
            pinned = if self.switch_pinned {
                ""
            } else {
                " (not pinned: an upper bound)"
            },
        ) + &self
            .idle
            .as_ref()
            .map_or_else(|| HostIdle::fallback_toml().to_string(), HostIdle::to_toml)
    }
}
