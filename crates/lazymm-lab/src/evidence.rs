//! The kernel's own evidence, read from the guest's trace text: IPIs by callback, remote
//! function calls, TLB flushes by reason, the flush IPIs of each mm teardown, and where
//! the scheduler put things (the placement table). Nothing here comes from the model.
//!
//! Which events say what, on the 6.12 kernels (seen in their traces):
//! - `csd:csd_queue_cpu cpu=C callsite=S func=F`: F queued to run on remote CPU C (an
//!   IPI unless C's queue was already non-empty). One per target CPU: this is what the
//!   model counts as an IPI sent.
//! - `csd:csd_function_entry func=F, csd=P`: F runs; on a remote CPU P is non-zero (the
//!   sender's own local call shows `csd=0000000000000000`).
//! - `ipi:ipi_send_cpu` / `ipi:ipi_send_cpumask`: the IPIs themselves, with callsite and
//!   callback; a function-call IPI's callback is `generic_smp_call_function_*`, a
//!   reschedule IPI's is `0x0`.
//! - `tlb:tlb_flush pages:P reason:R (N)`: x86's flushes by reason.
//! - `sched:sched_waking` is logged on the waker's CPU; `sched:sched_wakeup`'s
//!   `target_cpu` is where the task was put.

use std::collections::BTreeMap;

/// One parsed line of trace text.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The pid the header names (the task running on the CPU).
    pub pid: u32,
    /// Its thread group, when the TGID column is there (`options/record-tgid`).
    pub tgid: Option<u32>,
    /// The CPU.
    pub cpu: u32,
    /// Timestamp, ns.
    pub ts_ns: u64,
    /// The event's name.
    pub event: &'a str,
    /// The event's body.
    pub body: &'a str,
}

/// Parses `COMM-PID [(TGID)] [CPU] FLAGS TS: EVENT: BODY`; `None` for comments and any
/// line that is not an event line.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    if line.trim_start().starts_with('#') {
        return None;
    }
    // The CPU bracket: "[" digits "]" followed by a space.
    let b = line.as_bytes();
    let mut i = 0;
    let (open, cpu, after) = loop {
        let o = i + line.get(i..)?.find('[')?;
        let mut j = o + 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > o + 1 && b.get(j) == Some(&b']') && b.get(j + 1) == Some(&b' ') {
            break (o, line[o + 1..j].parse::<u32>().ok()?, j + 1);
        }
        i = o + 1;
    };
    let mut head = line[..open].trim_end();
    let mut tgid = None;
    // The TGID column "(  123)" or "(-------)".
    if head.ends_with(')') {
        let o = head.rfind('(')?;
        tgid = head[o + 1..head.len() - 1].trim().parse::<u32>().ok();
        head = head[..o].trim_end();
    }
    let pid = head.rsplit_once('-')?.1.trim().parse::<u32>().ok()?;
    let mut rest = line[after..].trim_start();
    let mut tok = rest.split_whitespace().next()?;
    if !tok.ends_with(':') {
        rest = rest[tok.len()..].trim_start();
        tok = rest.split_whitespace().next()?;
    }
    let ts = crate::evidence::ts_ns(tok.strip_suffix(':')?)?;
    rest = rest[tok.len()..].trim_start();
    let (event, body) = rest
        .split_once(": ")
        .unwrap_or((rest.trim_end_matches(':'), ""));
    if event.is_empty() || event.contains(' ') {
        return None;
    }
    Some(Line {
        pid,
        tgid,
        cpu,
        ts_ns: ts,
        event,
        body: body.trim(),
    })
}

/// `SECONDS.FRACTION` in ns.
pub fn ts_ns(s: &str) -> Option<u64> {
    let (a, f) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = a.parse().ok()?;
    let mut ns: u64 = 0;
    for k in 0..9 {
        let d = f
            .as_bytes()
            .get(k)
            .map_or(Some(0), |c| c.is_ascii_digit().then(|| (c - b'0') as u64))?;
        ns = ns * 10 + d;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Whether a `prev_state` says the task blocked (not runnable, not dead).
pub fn prev_state_blocked(s: &str) -> Option<bool> {
    lazymm_trace::PrevState::parse(s).map(|p| p == lazymm_trace::PrevState::Blocked)
}

/// The value of `key=` in an event body (up to the next space or comma).
pub fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(off) = body[from..].find(key) {
        let at = from + off;
        let before_ok = at == 0 || matches!(body.as_bytes()[at - 1], b' ' | b',');
        let v = &body[at + key.len()..];
        if before_ok {
            if let Some(v) = v.strip_prefix('=').or_else(|| v.strip_prefix(':')) {
                let end = v.find([' ', ',']).unwrap_or(v.len());
                return Some(&v[..end]);
            }
        }
        from = at + key.len();
    }
    None
}

/// A function name without its `+0x../0x..` offset.
pub fn symbol(s: &str) -> &str {
    s.split('+').next().unwrap_or(s)
}

/// The number of CPUs in a cpulist (`0-3,8`).
pub fn cpulist_len(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// The CPUs of a cpulist.
pub fn cpulist(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b);
                }
            }
            None => v.extend(part.parse::<u32>().ok()),
        }
    }
    v
}

/// Why a remote flush was sent: what its sender did next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushCause {
    /// The sender's next lifecycle event is its exit: `exit_mmap`'s flush.
    Exit,
    /// Its next lifecycle event is an exec: the old mm's teardown in `exec_mmap`.
    Exec,
    /// Its next lifecycle event is a fork: `dup_mmap` write-protecting the parent.
    Fork,
    /// `__mmdrop`'s `cleanup_lazy_tlbs` (`do_shoot_lazy_tlb`, `do_check_lazy_tlb`), from
    /// whichever task drops the last reference.
    Mmdrop,
    /// powerpc's `flush_type_needed` trimming a single-threaded mm's `mm_cpumask` with
    /// `exit_flush_lazy_tlbs` on an ordinary flush.
    Trim,
    /// Anything else: munmap, madvise, a COW fault, mprotect, and flushes before the exit
    /// of a thread that is not its process's last.
    Other,
}

impl FlushCause {
    /// Whether the flush belongs to an mm's teardown.
    pub fn is_teardown(self) -> bool {
        matches!(
            self,
            FlushCause::Exit | FlushCause::Exec | FlushCause::Mmdrop
        )
    }

    /// The label in the report.
    pub fn label(self) -> &'static str {
        match self {
            FlushCause::Exit => "exit (exit_mmap)",
            FlushCause::Exec => "exec (old mm torn down)",
            FlushCause::Fork => "fork (dup_mmap)",
            FlushCause::Mmdrop => "mmdrop (cleanup_lazy_tlbs)",
            FlushCause::Trim => "trim (flush_type_needed)",
            FlushCause::Other => "other (munmap, madvise, COW)",
        }
    }
}

/// The remote functions that flush TLBs or end lazy use of an mm, by arch.
pub const FLUSH_FUNCS: &[&str] = &[
    "flush_tlb_func",
    "do_exit_flush_lazy_tlb",
    "do_shoot_lazy_tlb",
    "do_check_lazy_tlb",
    "do_flush_tlb_mm",
    "tlbiel_all_lpid",
    "do_tlbiel_pid",
    "do_tlbiel_va",
    "do_tlbiel_va_range",
];

/// What the kernel's trace says (one phase).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Evidence {
    /// Guest seconds from the first event to the last.
    pub seconds: f64,
    /// Event lines, by event name.
    pub events: BTreeMap<String, u64>,
    /// `entries-in-buffer/entries-written` from the trace's header: events the ring
    /// buffer dropped are `written - in_buffer`.
    pub ring_lost: Option<u64>,
    /// `sched_switch` events.
    pub switches: u64,
    /// Switches into a user task.
    pub user_switch_ins: u64,
    /// Of those, the ones whose previous task was the idle task.
    pub user_from_idle: u64,
    /// user → idle or kernel thread: entries into lazy TLB mode.
    pub lazy_entries: u64,
    /// `sched_process_fork` of user tasks.
    pub forks: u64,
    /// `sched_process_exit` of user tasks.
    pub exits: u64,
    /// Of those, the last live thread of its process (the mm is torn down).
    pub last_thread_exits: u64,
    /// `sched_process_exec`.
    pub execs: u64,
    /// Remote function calls queued (`csd_queue_cpu`), by function.
    pub remote_calls: BTreeMap<String, u64>,
    /// Remote function calls run (`csd_function_entry` with a non-zero csd), by function.
    pub remote_runs: BTreeMap<String, u64>,
    /// IPIs sent (`ipi_send_cpu`, each CPU of `ipi_send_cpumask`), by callback.
    pub ipis_by_callback: BTreeMap<String, u64>,
    /// IPIs sent, by callsite.
    pub ipis_by_callsite: BTreeMap<String, u64>,
    /// TLB flushes (`tlb_flush`), by reason.
    pub tlb_flush_by_reason: BTreeMap<String, u64>,
    /// Remote flush calls (of [`FLUSH_FUNCS`]), by function and cause.
    pub flush_calls: BTreeMap<String, BTreeMap<FlushCause, u64>>,
    /// Remote CPUs each teardown flush (exit or exec) went to, as a histogram
    /// (targets → flushes), from the batches of `csd_queue_cpu` one sender queued.
    pub teardown_fanout: BTreeMap<u64, u64>,
    /// The placement of wakeups and pairs.
    pub placement: Placement,
    /// Remote CPUs the teardowns' flushes would reach under 6.12's rule, replayed on the
    /// trace's own switches: a CPU leaves an mm's `mm_cpumask` when it switches to
    /// another mm (or a flush IPI moves it off it while lazy); it stays while it runs
    /// idle or kernel threads lazily on it.
    pub rule_cleared_at_switch: u64,
    /// The same when every CPU the mm ran on stays in the mask: x86 6.14+'s rule
    /// (209954cbc7d0, "Update mm_cpumask lazily"), which the model's x86 follows, and
    /// the model's powerpc (which has no trim); summed over the teardowns.
    pub rule_ran_on: u64,
    /// The same less the CPUs a trim IPI the trace shows took out of the mask (powerpc's
    /// `flush_type_needed`) and that did not run the mm again.
    pub rule_kept_until_trim: u64,
}

/// Where the scheduler put things, from its own events.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Placement {
    /// User-task wakeups (`sched_wakeup`, not `_new`) matched to their `sched_waking`.
    pub wakeups: u64,
    /// Placed on the waker's CPU.
    pub on_waker: u64,
    /// On the CPU the task last ran on (not the waker's).
    pub on_prev: u64,
    /// On another CPU that was idle, sharing the last-level cache with the waker or the
    /// previous CPU.
    pub idle_same_llc: u64,
    /// Anywhere else (a busy CPU, another LLC).
    pub elsewhere: u64,
    /// `sched_migrate_task` of user tasks.
    pub migrations: u64,
    /// Switch-ins of a pair's end.
    pub pair_switch_ins: u64,
    /// Of those, with its partner's last CPU the same CPU.
    pub pair_colocated: u64,
}

impl Placement {
    fn frac(&self, x: u64) -> Option<f64> {
        (self.wakeups > 0).then(|| x as f64 / self.wakeups as f64)
    }
    /// Fraction on the waker's CPU.
    pub fn on_waker_frac(&self) -> Option<f64> {
        self.frac(self.on_waker)
    }
    /// Fraction on the previous CPU.
    pub fn on_prev_frac(&self) -> Option<f64> {
        self.frac(self.on_prev)
    }
    /// Fraction on an idle CPU in the same LLC.
    pub fn idle_same_llc_frac(&self) -> Option<f64> {
        self.frac(self.idle_same_llc)
    }
    /// Fraction elsewhere.
    pub fn elsewhere_frac(&self) -> Option<f64> {
        self.frac(self.elsewhere)
    }
    /// Fraction of pair switch-ins co-located with the partner.
    pub fn colocated_frac(&self) -> Option<f64> {
        (self.pair_switch_ins > 0).then(|| self.pair_colocated as f64 / self.pair_switch_ins as f64)
    }
}

impl Evidence {
    /// Fraction of switches into a user task that came from idle.
    pub fn through_idle_frac(&self) -> Option<f64> {
        (self.user_switch_ins > 0).then(|| self.user_from_idle as f64 / self.user_switch_ins as f64)
    }
    /// Mm teardowns: last-thread exits plus execs.
    pub fn teardowns(&self) -> u64 {
        self.last_thread_exits + self.execs
    }
    /// Remote flush calls of `func` whose cause is a teardown (exit or exec).
    pub fn teardown_flushes(&self, func: &str) -> u64 {
        self.flush_calls.get(func).map_or(0, |m| {
            m.get(&FlushCause::Exit).copied().unwrap_or(0)
                + m.get(&FlushCause::Exec).copied().unwrap_or(0)
        })
    }
    /// Remote flush calls of `func`, any cause.
    pub fn flushes(&self, func: &str) -> u64 {
        self.flush_calls.get(func).map_or(0, |m| m.values().sum())
    }
}

/// The guest's view of its machine: each CPU's last-level cache group.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GuestTopology {
    /// CPU → an id of its LLC (the first CPU of its shared list, or its package).
    pub llc: BTreeMap<u32, u32>,
}

impl GuestTopology {
    /// From the console's `lab: cpu N llc LIST package P` lines.
    pub fn from_console(console: &str) -> GuestTopology {
        let mut llc = BTreeMap::new();
        for l in console.lines() {
            let Some(rest) = l.strip_prefix("lab: cpu ") else {
                continue;
            };
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() >= 5 && w[1] == "llc" && w[3] == "package" {
                let Ok(cpu) = w[0].parse::<u32>() else {
                    continue;
                };
                let id = match cpulist(w[2]).first() {
                    Some(first) => *first,
                    None => 100_000 + w[4].parse::<u32>().unwrap_or(0),
                };
                llc.insert(cpu, id);
            }
        }
        GuestTopology { llc }
    }

    fn same(&self, a: u32, b: u32) -> bool {
        match (self.llc.get(&a), self.llc.get(&b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }
}

/// Reads the evidence from one phase's trace text. `is_user(pid)` says whether a pid is
/// a user task (from the replay's census, so kernel and model agree on who is who);
/// `pairs` are the ping-pong pairs' tids.
pub fn read(
    text: &str,
    is_user: &dyn Fn(u32) -> bool,
    topo: &GuestTopology,
    pairs: &[(u32, u32)],
) -> Evidence {
    let mut ev = Evidence::default();
    let lines: Vec<Line<'_>> = text.lines().filter_map(parse_line).collect();
    for l in text.lines().take(20) {
        if let Some(r) = l.split("entries-in-buffer/entries-written:").nth(1) {
            let nums: Vec<u64> = r
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            if nums.len() >= 2 {
                ev.ring_lost = Some(nums[1].saturating_sub(nums[0]));
            }
        }
    }
    if let (Some(a), Some(b)) = (
        lines.iter().map(|l| l.ts_ns).min(),
        lines.iter().map(|l| l.ts_ns).max(),
    ) {
        ev.seconds = (b - a) as f64 / 1e9;
    }
    // Each pid's lifecycle events (ts, cause), for the causes of flushes: a flush's cause
    // is the sender's next fork, exec or exit, unless it blocked first (then Other).
    // Only the exit of a process's last thread runs exit_mmap; another thread's exit
    // tears nothing down (a flush before it is its own: glibc's madvise of a finished
    // thread's stack, say).
    let teardown_exits = teardown_exit_pids(&lines, is_user);
    let mut life: BTreeMap<u32, Vec<(u64, FlushCause)>> = BTreeMap::new();
    for l in &lines {
        let (pid, cause) = match l.event {
            "sched_process_exit" => {
                let pid: Option<u32> = field(l.body, "pid").and_then(|p| p.parse().ok());
                let last = pid.is_some_and(|p| teardown_exits.contains(&(p, l.ts_ns)));
                (
                    pid,
                    if last {
                        FlushCause::Exit
                    } else {
                        FlushCause::Other
                    },
                )
            }
            "sched_process_exec" => (
                field(l.body, "old_pid").and_then(|p| p.parse().ok()),
                FlushCause::Exec,
            ),
            "sched_process_fork" => (
                field(l.body, "pid").and_then(|p| p.parse().ok()),
                FlushCause::Fork,
            ),
            // A task that blocks (sleeps, waits) is not inside exit_mmap or dup_mmap:
            // a flush it sent before that belongs to what it was doing then.
            "sched_switch"
                if field(l.body, "prev_state")
                    .and_then(crate::evidence::prev_state_blocked)
                    .unwrap_or(false) =>
            {
                (
                    field(l.body, "prev_pid").and_then(|p| p.parse().ok()),
                    FlushCause::Other,
                )
            }
            _ => continue,
        };
        if let Some(pid) = pid {
            life.entry(pid).or_default().push((l.ts_ns, cause));
        }
    }
    let cause_of = |pid: u32, ts: u64| -> FlushCause {
        life.get(&pid)
            .and_then(|v| v.iter().find(|(t, _)| *t >= ts))
            .map_or(FlushCause::Other, |(_, c)| *c)
    };
    let mut cur: BTreeMap<u32, u32> = BTreeMap::new();
    let mut last_cpu: BTreeMap<u32, u32> = BTreeMap::new();
    let mut waking: BTreeMap<u32, (u32, Option<u32>)> = BTreeMap::new();
    let partner: BTreeMap<u32, u32> = pairs.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
    // Each pid's process, from the TGID column of its own lines.
    let mut tgid_of: BTreeMap<u32, u32> = BTreeMap::new();
    for l in &lines {
        if let Some(t) = l.tgid.filter(|t| *t != 0) {
            tgid_of.entry(l.pid).or_insert(t);
        }
    }
    let tgid = |p: u32| tgid_of.get(&p).copied().unwrap_or(p);
    // mm = (process, execs so far); the mm each CPU has loaded (lazily or not); the CPUs
    // each mm ran on.
    let mut gen: BTreeMap<u32, u32> = BTreeMap::new();
    let mut loaded = Loaded::default();
    // The first full remote flush of its own mm (`tlb_flush pages:-1 reason:remote ipi
    // send`) each task logged since its last exec: the moment of its teardown flush,
    // which the rules are read at (its exit or exec event comes after exit_mmap's work,
    // and the task may be preempted in between). A teardown that sent no IPI logs none;
    // it is read at its exit or exec event, which can only count fewer CPUs.
    let mut last_full_flush: BTreeMap<u32, u64> = BTreeMap::new();
    let mut ever: BTreeMap<(u32, u32), std::collections::BTreeSet<u32>> = BTreeMap::new();
    type Cpus = BTreeMap<(u32, u32), std::collections::BTreeSet<u32>>;
    let mut trimmed: Cpus = BTreeMap::new();
    // (6.12's rule, every CPU it ran on, that less the trimmed ones) at a teardown.
    let predict =
        |mm: (u32, u32), cpu: u32, at: u64, loaded: &Loaded, ever: &Cpus, trimmed: &Cpus| {
            let cleared = loaded
                .hist
                .keys()
                .filter(|c| **c != cpu && loaded.at(**c, at) == Some(mm))
                .count() as u64;
            let others = |m: &Cpus| {
                m.get(&mm)
                    .map_or(0, |s| s.iter().filter(|c| **c != cpu).count()) as u64
            };
            let ran = others(ever);
            (cleared, ran, ran - others(trimmed).min(ran))
        };
    // The cause of the flush queued to each CPU, until it runs there.
    let mut pending: BTreeMap<u32, FlushCause> = BTreeMap::new();
    // The open batch of remote calls per sending CPU: (func, cause, targets).
    let mut batch: BTreeMap<u32, (String, FlushCause, u64)> = BTreeMap::new();
    let close =
        |batch: &mut BTreeMap<u32, (String, FlushCause, u64)>, cpu: u32, ev: &mut Evidence| {
            if let Some((_, cause, n)) = batch.remove(&cpu) {
                if matches!(cause, FlushCause::Exit | FlushCause::Exec) {
                    *ev.teardown_fanout.entry(n).or_default() += 1;
                }
            }
        };
    for l in &lines {
        *ev.events.entry(l.event.to_string()).or_default() += 1;
        if l.event != "csd_queue_cpu" {
            close(&mut batch, l.cpu, &mut ev);
        }
        match l.event {
            "sched_switch" => {
                ev.switches += 1;
                let prev = field(l.body, "prev_pid").and_then(|p| p.parse::<u32>().ok());
                let next = field(l.body, "next_pid").and_then(|p| p.parse::<u32>().ok());
                if let (Some(prev), Some(next)) = (prev, next) {
                    if is_user(next) {
                        ev.user_switch_ins += 1;
                        if prev == 0 {
                            ev.user_from_idle += 1;
                        }
                    }
                    // A dead task has left its mm (exit_mm): switching away from it hands
                    // the lazy mm over like a kernel thread does, it does not enter lazy
                    // mode.
                    let dead =
                        field(l.body, "prev_state").is_some_and(|st| st.contains(['X', 'Z', 'x']));
                    if is_user(prev) && !is_user(next) && !dead {
                        ev.lazy_entries += 1;
                    }
                    if is_user(next) {
                        let t = tgid(next);
                        let mm = (t, *gen.get(&t).unwrap_or(&0));
                        loaded.set(l.cpu, l.ts_ns, Some(mm));
                        ever.entry(mm).or_default().insert(l.cpu);
                        if let Some(t) = trimmed.get_mut(&mm) {
                            t.remove(&l.cpu);
                        }
                    }
                    if let Some(&p) = partner.get(&next) {
                        ev.placement.pair_switch_ins += 1;
                        if last_cpu.get(&p) == Some(&l.cpu) {
                            ev.placement.pair_colocated += 1;
                        }
                    }
                    cur.insert(l.cpu, next);
                    if next != 0 {
                        last_cpu.insert(next, l.cpu);
                    }
                }
            }
            "sched_waking" => {
                if let Some(pid) = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok()) {
                    waking.insert(pid, (l.cpu, last_cpu.get(&pid).copied()));
                }
            }
            "sched_wakeup" => {
                let pid = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok());
                let target = field(l.body, "target_cpu").and_then(|p| p.parse::<u32>().ok());
                if let (Some(pid), Some(t)) = (pid, target) {
                    if let Some((w, prev)) = waking.remove(&pid) {
                        if is_user(pid) {
                            let p = &mut ev.placement;
                            p.wakeups += 1;
                            let idle = cur.get(&t).is_none_or(|&c| c == 0);
                            if t == w {
                                p.on_waker += 1;
                            } else if Some(t) == prev {
                                p.on_prev += 1;
                            } else if idle
                                && (topo.same(t, w) || prev.is_some_and(|pc| topo.same(t, pc)))
                            {
                                p.idle_same_llc += 1;
                            } else {
                                p.elsewhere += 1;
                            }
                        }
                    }
                }
            }
            "sched_migrate_task"
                if field(l.body, "pid")
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(is_user) =>
            {
                ev.placement.migrations += 1;
            }
            "sched_process_fork" => {
                let parent = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok());
                let child = field(l.body, "child_pid").and_then(|p| p.parse::<u32>().ok());
                if let (Some(parent), Some(child)) = (parent, child) {
                    if is_user(parent) || is_user(child) {
                        ev.forks += 1;
                    }
                }
            }
            "sched_process_exec" if is_user(l.pid) => {
                ev.execs += 1;
                let t = tgid(l.pid);
                let g = gen.entry(t).or_insert(0);
                let old = (t, *g);
                *g += 1;
                let at = last_full_flush.remove(&l.pid).unwrap_or(l.ts_ns);
                let (a, b, c) = predict(old, l.cpu, at, &loaded, &ever, &trimmed);
                ev.rule_cleared_at_switch += a;
                ev.rule_ran_on += b;
                ev.rule_kept_until_trim += c;
                loaded.drop_mm(old, l.ts_ns);
                let new = (t, *g);
                loaded.set(l.cpu, l.ts_ns, Some(new));
                ever.entry(new).or_default().insert(l.cpu);
            }
            "sched_process_exit" => {
                if let Some(pid) = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok()) {
                    if teardown_exits.contains(&(pid, l.ts_ns)) {
                        let t = tgid(pid);
                        let mm = (t, *gen.get(&t).unwrap_or(&0));
                        let at = last_full_flush.remove(&pid).unwrap_or(l.ts_ns);
                        let (a, b, c) = predict(mm, l.cpu, at, &loaded, &ever, &trimmed);
                        ev.rule_cleared_at_switch += a;
                        ev.rule_ran_on += b;
                        ev.rule_kept_until_trim += c;
                        // The mm is gone: no CPU keeps it.
                        loaded.drop_mm(mm, l.ts_ns);
                    }
                    if is_user(pid) {
                        ev.exits += 1;
                    }
                }
            }
            "csd_queue_cpu" => {
                let func = field(l.body, "func").map(symbol).unwrap_or("?").to_string();
                *ev.remote_calls.entry(func.clone()).or_default() += 1;
                if FLUSH_FUNCS.contains(&func.as_str()) {
                    let site = field(l.body, "callsite").map(symbol).unwrap_or("");
                    let mut cause = cause_of(l.pid, l.ts_ns);
                    if func == "do_shoot_lazy_tlb" || func == "do_check_lazy_tlb" {
                        cause = FlushCause::Mmdrop;
                    } else if site == "flush_type_needed" {
                        cause = FlushCause::Trim;
                        let t = tgid(l.pid);
                        let mm = (t, *gen.get(&t).unwrap_or(&0));
                        if let Some(target) =
                            field(l.body, "cpu").and_then(|c| c.parse::<u32>().ok())
                        {
                            trimmed.entry(mm).or_default().insert(target);
                        }
                    } else if site == "radix__tlb_flush" && !cause.is_teardown() {
                        // exit_mmap's fullmm flush, whatever the task did next.
                        cause = FlushCause::Exit;
                    }
                    if let Some(target) = field(l.body, "cpu").and_then(|c| c.parse::<u32>().ok()) {
                        pending.insert(target, cause);
                    }
                    *ev.flush_calls
                        .entry(func.clone())
                        .or_default()
                        .entry(cause)
                        .or_default() += 1;
                    match batch.get_mut(&l.cpu) {
                        Some(b) if b.0 == func => b.2 += 1,
                        _ => {
                            close(&mut batch, l.cpu, &mut ev);
                            batch.insert(l.cpu, (func, cause, 1));
                        }
                    }
                }
            }
            "csd_function_entry" => {
                let func = field(l.body, "func").map(symbol).unwrap_or("?");
                let csd = field(l.body, "csd").unwrap_or("0");
                if csd.bytes().any(|c| c != b'0' && c != b'x') {
                    *ev.remote_runs.entry(func.to_string()).or_default() += 1;
                    // x86's flush_tlb_func on a lazy CPU switches it to init_mm, which
                    // takes it out of the mm's mask.
                    // A teardown's own flush is left out: that mm dies anyway, and its
                    // teardown event (which the rules are read at) comes after the IPIs.
                    let cause = pending.remove(&l.cpu);
                    if func == "flush_tlb_func"
                        && !cause.is_some_and(|c| c.is_teardown())
                        && !cur.get(&l.cpu).is_some_and(|c| is_user(*c))
                    {
                        loaded.set(l.cpu, l.ts_ns, None);
                    }
                }
            }
            "ipi_send_cpu" | "ipi_send_cpumask" => {
                let n = if l.event == "ipi_send_cpu" {
                    1
                } else {
                    field(l.body, "cpumask").and_then(cpulist_len).unwrap_or(1) as u64
                };
                let cb = field(l.body, "callback").map(symbol).unwrap_or("?");
                let cb = if cb == "0x0" {
                    "(none: reschedule)"
                } else {
                    cb
                };
                *ev.ipis_by_callback.entry(cb.to_string()).or_default() += n;
                let site = field(l.body, "callsite").map(symbol).unwrap_or("?");
                *ev.ipis_by_callsite.entry(site.to_string()).or_default() += n;
            }
            "tlb_flush" => {
                // The sender's side of a full flush of its mm (not the "flush on task
                // switch" a lazy CPU logs when it leaves the mm).
                if field(l.body, "pages") == Some("-1")
                    && l.pid != 0
                    && l.body.contains("remote ipi send")
                {
                    last_full_flush.entry(l.pid).or_insert(l.ts_ns);
                }
                let reason = l
                    .body
                    .split_once("reason:")
                    .map(|(_, r)| r.trim().to_string())
                    .unwrap_or_else(|| "?".into());
                *ev.tlb_flush_by_reason.entry(reason).or_default() += 1;
            }
            _ => {}
        }
    }
    let cpus: Vec<u32> = batch.keys().copied().collect();
    for c in cpus {
        close(&mut batch, c, &mut ev);
    }
    ev.last_thread_exits = last_thread_exits(&lines, is_user);
    ev
}

/// The mm each CPU has loaded (running it or lazily), with its history.
#[derive(Default)]
struct Loaded {
    /// Per CPU: (from when, the mm loaded), in time order.
    hist: BTreeMap<u32, Vec<(u64, Option<MmId>)>>,
}

/// An mm: (process, execs it made before).
type MmId = (u32, u32);

impl Loaded {
    fn set(&mut self, cpu: u32, ts: u64, mm: Option<(u32, u32)>) {
        let h = self.hist.entry(cpu).or_default();
        if h.last().map(|x| x.1) != Some(mm) {
            h.push((ts, mm));
        }
    }

    /// What `cpu` had loaded at `ts`.
    fn at(&self, cpu: u32, ts: u64) -> Option<(u32, u32)> {
        let h = self.hist.get(&cpu)?;
        let i = h.partition_point(|x| x.0 <= ts);
        if i == 0 {
            None
        } else {
            h[i - 1].1
        }
    }

    /// The mm is freed: no CPU has it loaded from `ts` on.
    fn drop_mm(&mut self, mm: (u32, u32), ts: u64) {
        let cpus: Vec<u32> = self
            .hist
            .iter()
            .filter(|(_, h)| h.last().and_then(|x| x.1) == Some(mm))
            .map(|(c, _)| *c)
            .collect();
        for c in cpus {
            self.set(c, ts, None);
        }
    }
}

/// The exits (pid, timestamp) that tear an mm down: see [`last_thread_exits`].
fn teardown_exit_pids(
    lines: &[Line<'_>],
    is_user: &dyn Fn(u32) -> bool,
) -> std::collections::BTreeSet<(u32, u64)> {
    let mut members: BTreeMap<u32, std::collections::BTreeSet<u32>> = BTreeMap::new();
    let mut exit_at: BTreeMap<u32, u64> = BTreeMap::new();
    for l in lines {
        if l.pid != 0 && is_user(l.pid) {
            members
                .entry(l.tgid.unwrap_or(l.pid))
                .or_default()
                .insert(l.pid);
        }
        if l.event == "sched_process_exit" {
            if let Some(pid) = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok()) {
                exit_at.insert(pid, l.ts_ns);
            }
        }
    }
    members
        .values()
        .filter(|m| m.iter().all(|p| exit_at.contains_key(p)))
        .filter_map(|m| m.iter().map(|p| (*p, exit_at[p])).max_by_key(|x| x.1))
        .collect()
}

/// Exits that tear down an mm: per process (the TGID column of its members' own lines;
/// a line without it counts the pid as its own process), the exit of its last member,
/// when every member the trace shows has exited (a process still alive when tracing
/// stopped tore nothing down).
fn last_thread_exits(lines: &[Line<'_>], is_user: &dyn Fn(u32) -> bool) -> u64 {
    let mut members: BTreeMap<u32, std::collections::BTreeSet<u32>> = BTreeMap::new();
    let mut exited: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
    for l in lines {
        if l.pid != 0 && is_user(l.pid) {
            members
                .entry(l.tgid.unwrap_or(l.pid))
                .or_default()
                .insert(l.pid);
        }
        if l.event == "sched_process_exit" {
            if let Some(pid) = field(l.body, "pid").and_then(|p| p.parse::<u32>().ok()) {
                exited.insert(pid);
            }
        }
    }
    members
        .values()
        .filter(|m| m.iter().all(|p| exited.contains(p)))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_tgid_and_flags() {
        let l = parse_line("          <idle>-0       [001] dNs4.     3.818138: sched_wakeup: comm=rcu_preempt pid=18 prio=120 target_cpu=001").unwrap();
        assert_eq!(
            (l.pid, l.cpu, l.ts_ns, l.event),
            (0, 1, 3_818_138_000, "sched_wakeup")
        );
        assert_eq!(field(l.body, "target_cpu"), Some("001"));
        let l = parse_line("            init-152     (    152) [002] d..2.     4.000001: csd_queue_cpu: cpu=2 callsite=on_each_cpu_cond_mask+0x24/0x40 func=flush_tlb_func csd=0000000081fbb2b2").unwrap();
        assert_eq!((l.pid, l.cpu), (152, 2));
        assert_eq!(field(l.body, "func").map(symbol), Some("flush_tlb_func"));
        assert_eq!(
            field(l.body, "callsite").map(symbol),
            Some("on_each_cpu_cond_mask")
        );
        let l = parse_line(
            "   kworker/u8:1-54 [000] 12.5: tlb_flush: pages:-1 reason:remote shootdown (1)",
        )
        .unwrap();
        assert_eq!(field(l.body, "pages"), Some("-1"));
        assert!(parse_line("# tracer: nop").is_none());
        assert!(parse_line("").is_none());
        assert!(parse_line("CPU 3 is empty").is_none());
    }

    /// A two-CPU trace: task 10 runs on CPU 1, goes lazy there, runs on CPU 0 and exits
    /// there, its exit_mmap flush IPI reaching CPU 1; then a wakeup lands on an idle
    /// CPU of the same LLC.
    /// (The file is also the row test's input: `lazymm-cli/tests/json_schema.rs`.)
    const TRACE: &str = include_str!("../tests/fixtures/two-cpus.trace.txt");

    #[test]
    fn evidence_of_a_small_trace() {
        let topo = GuestTopology::from_console(
            "lab: cpu 0 llc 0-1 package 0\nlab: cpu 1 llc 0-1 package 0\n",
        );
        let is_user = |p: u32| p == 10 || p == 30;
        let e = read(TRACE, &is_user, &topo, &[]);
        assert_eq!(e.ring_lost, Some(2));
        assert_eq!(e.switches, 4);
        assert_eq!((e.user_switch_ins, e.user_from_idle), (2, 2));
        assert_eq!(e.through_idle_frac(), Some(1.0));
        // The dead task's last switch hands the mm over; it does not enter lazy mode.
        assert_eq!(e.lazy_entries, 1);
        assert_eq!(
            (e.exits, e.last_thread_exits, e.execs, e.teardowns()),
            (1, 1, 0, 1)
        );
        assert_eq!(e.teardown_flushes("flush_tlb_func"), 1);
        assert_eq!(e.remote_runs.get("flush_tlb_func"), Some(&1));
        assert_eq!(
            e.ipis_by_callback
                .get("generic_smp_call_function_single_interrupt"),
            Some(&1)
        );
        assert_eq!(e.tlb_flush_by_reason.get("remote ipi send (4)"), Some(&1));
        assert_eq!(e.teardown_fanout.get(&1), Some(&1));
        // CPU 1 was lazy on the mm when the flush went out: both rules count it.
        assert_eq!(
            (
                e.rule_cleared_at_switch,
                e.rule_ran_on,
                e.rule_kept_until_trim
            ),
            (1, 1, 1)
        );
        let p = &e.placement;
        assert_eq!(
            (
                p.wakeups,
                p.on_waker,
                p.on_prev,
                p.idle_same_llc,
                p.elsewhere
            ),
            (1, 0, 0, 1, 0)
        );
        // Without the exit, the flush is not a teardown's.
        let no_exit: String = TRACE
            .lines()
            .filter(|l| !l.contains("sched_process_exit"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = read(&no_exit, &is_user, &topo, &[]);
        assert_eq!(e.teardown_flushes("flush_tlb_func"), 0);
        assert_eq!(e.flushes("flush_tlb_func"), 1);
    }

    #[test]
    fn cpulists() {
        assert_eq!(cpulist_len("0-3,8"), Some(5));
        assert_eq!(cpulist("0-1,4"), vec![0, 1, 4]);
        assert_eq!(cpulist_len("3-1"), None);
    }
}
