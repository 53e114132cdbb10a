//! The kernel's counts beside the model's, for the same schedule.

use crate::evidence::{Evidence, FlushCause};
use crate::model::ModelRow;
use crate::spec::GuestArch;

/// What kind of figure a row is: counts and decisions are valid under TCG; rates per
/// guest second are not a measurement of any machine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A count of events or operations.
    Count,
    /// A ratio of two counts.
    Ratio,
    /// Per guest second.
    Rate,
}

/// One quantity, kernel beside model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareRow {
    /// What is counted.
    pub quantity: String,
    /// Count, ratio or rate.
    pub kind: Kind,
    /// The kernel's figure, from its trace (`None`: the kernel's events do not show it).
    pub kernel: Option<f64>,
    /// The model's figure, from its recorded operations (`None`: the model does not
    /// count it).
    pub model: Option<f64>,
    /// `(model - kernel) / kernel`, in percent, when both are there and kernel > 0.
    pub diff_pct: Option<f64>,
    /// Whether this is the headline check, and its tolerance in percent.
    pub headline_tolerance_pct: Option<f64>,
    /// Where each side's figure comes from.
    pub source: String,
}

impl CompareRow {
    fn new(
        quantity: &str,
        kind: Kind,
        kernel: Option<f64>,
        model: Option<f64>,
        source: &str,
    ) -> CompareRow {
        CompareRow {
            quantity: quantity.into(),
            kind,
            kernel,
            model,
            diff_pct: diff_pct(kernel, model),
            headline_tolerance_pct: None,
            source: source.into(),
        }
    }

    /// Whether a headline row agrees within its tolerance (`None` for other rows).
    pub fn agrees(&self) -> Option<bool> {
        let tol = self.headline_tolerance_pct?;
        Some(match (self.kernel, self.model) {
            (Some(0.0), Some(m)) => m == 0.0,
            (Some(_), Some(_)) => self.diff_pct.is_some_and(|d| d.abs() <= tol),
            _ => false,
        })
    }
}

/// `(model - kernel) / kernel` in percent.
pub fn diff_pct(kernel: Option<f64>, model: Option<f64>) -> Option<f64> {
    match (kernel, model) {
        (Some(k), Some(m)) if k > 0.0 => Some((m - k) / k * 100.0),
        _ => None,
    }
}

fn per(x: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| x as f64 / n as f64)
}

fn rate(x: u64, s: f64) -> Option<f64> {
    (s > 0.0).then(|| x as f64 / s)
}

/// The remote calls that end lazy use of a dying mm on powerpc: the radix exit flush,
/// `cleanup_lazy_tlbs`' shootdown, and its DEBUG_VM check.
pub const PPC_TEARDOWN_FUNCS: &[&str] = &[
    "do_exit_flush_lazy_tlb",
    "do_shoot_lazy_tlb",
    "do_check_lazy_tlb",
];

/// The comparison for one phase: the kernel's evidence beside the model row of the
/// scheme the kernel's config implies.
pub fn compare(arch: GuestArch, k: &Evidence, m: &ModelRow, tolerance_pct: f64) -> Vec<CompareRow> {
    let f = |x: u64| Some(x as f64);
    let s = k.seconds;
    let mut rows = vec![
        CompareRow::new("context switches", Kind::Count, f(k.switches), f(m.context_switches),
            "kernel: sched_switch events; model: context_switch calls for them"),
        CompareRow::new("lazy TLB entries (user -> idle or kernel thread)", Kind::Count, f(k.lazy_entries), f(m.lazy_switches),
            "kernel: sched_switch from a user task to a non-user one; model: its lazy_switches counter"),
        CompareRow::new("lazy round trips", Kind::Count, None, f(m.lazy_round_trips),
            "model: user -> kernel ... -> user on one CPU, from the trace's switches (a property of the schedule; the kernel has no event for it)"),
        CompareRow::new("kernel -> kernel hand-overs of a lazy mm", Kind::Count, None, f(m.kernel_handovers),
            "model: from the trace's switches"),
        CompareRow::new("switches into a user task from idle (fraction)", Kind::Ratio, k.through_idle_frac(), None,
            "kernel: sched_switch prev=idle, next=user over all switches into user tasks (the model replays the same switches)"),
        CompareRow::new("mm teardowns (last-thread exit, exec)", Kind::Count, f(k.teardowns()), f(m.teardowns),
            "kernel: sched_process_exit of a process's last thread + sched_process_exec; model: __mmput teardowns"),
    ];
    let funcs: &[&str] = match arch {
        GuestArch::X86 => &["flush_tlb_func"],
        GuestArch::Powerpc => PPC_TEARDOWN_FUNCS,
    };
    let label = match arch {
        GuestArch::X86 => "TLB-flush IPIs at mm teardown (flush_tlb_func)",
        GuestArch::Powerpc => {
            "lazy-mm IPIs at mm teardown (do_exit_flush_lazy_tlb + do_shoot_lazy_tlb + do_check_lazy_tlb)"
        }
    };
    let kernel_teardown: u64 = funcs.iter().map(|f| k.teardown_flushes(f)).sum();
    let kernel_all: u64 = funcs.iter().map(|f| k.flushes(f)).sum();
    let kernel_runs: u64 = funcs
        .iter()
        .map(|f| k.remote_runs.get(*f).copied().unwrap_or(0))
        .sum();
    rows.push(CompareRow::new(label, Kind::Count, f(kernel_teardown), f(m.ipis_sent),
        "kernel: csd_queue_cpu (one per remote CPU) of a teardown: the sender's next lifecycle event is its exit or exec, or the callsite is exit_mmap's radix__tlb_flush, or __mmdrop's cleanup_lazy_tlbs; model: every IPI it sent"));
    let mut head = CompareRow::new(
        &format!("{label} per teardown"),
        Kind::Ratio,
        per(kernel_teardown, k.teardowns()),
        per(m.ipis_sent, m.teardowns),
        "the row above over each side's own teardown count",
    );
    head.headline_tolerance_pct = Some(tolerance_pct);
    rows.push(head);
    rows.push(CompareRow::new(
        &format!("{label} per second"),
        Kind::Rate,
        rate(kernel_teardown, s),
        rate(m.ipis_sent, s),
        "per guest second of trace: not a measurement of any machine under TCG",
    ));
    rows.push(CompareRow::new("all remote flush calls of those functions (any cause)", Kind::Count, f(kernel_all), f(m.ipis_sent),
        "kernel: every csd_queue_cpu of them (fork's dup_mmap, munmap and COW flushes too); model: every IPI it sent"));
    if arch == GuestArch::Powerpc {
        let trims: u64 = funcs
            .iter()
            .map(|f| {
                k.flush_calls
                    .get(*f)
                    .and_then(|m| m.get(&FlushCause::Trim))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        rows.push(CompareRow::new("of which trims (flush_type_needed's exit_flush_lazy_tlbs)", Kind::Count,
            f(trims), None,
            "kernel: callsite flush_type_needed (a single-threaded mm's ordinary flush trims its lazy CPUs); the model's powerpc trims the same way (review V1), but the replayed trace has no flush events to trim on"));
    }
    rows.push(CompareRow::new(
        "flush IPIs handled on the target CPU",
        Kind::Count,
        f(kernel_runs),
        f(m.ipis_received),
        "kernel: csd_function_entry with a non-zero csd (a remote call); model: IPIs handled",
    ));
    rows.push(CompareRow::new(
        "safety violations found by the model",
        Kind::Count,
        None,
        f(m.violations),
        "model: the oracle on the real schedule (must be 0)",
    ));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(ipis: u64, teardowns: u64) -> ModelRow {
        ModelRow {
            scheme: "refcount",
            arch: "x86",
            ipis_sent: ipis,
            ipis_received: ipis,
            teardowns,
            mm_created: 0,
            mm_freed: 0,
            context_switches: 10,
            lazy_switches: 3,
            lazy_round_trips: 2,
            kernel_handovers: 1,
            full_fences: 0,
            shared_rmw: 0,
            violations: 0,
            resync_switches: 0,
        }
    }

    fn kernel(flushes_exit: u64, teardowns: u64) -> Evidence {
        let mut k = Evidence {
            seconds: 2.0,
            switches: 10,
            lazy_entries: 3,
            last_thread_exits: teardowns,
            ..Default::default()
        };
        let m = k.flush_calls.entry("flush_tlb_func".into()).or_default();
        m.insert(crate::evidence::FlushCause::Exit, flushes_exit);
        m.insert(crate::evidence::FlushCause::Fork, 7);
        k
    }

    #[test]
    fn arithmetic_of_the_headline() {
        let rows = compare(GuestArch::X86, &kernel(100, 50), &model(105, 50), 10.0);
        let h = rows
            .iter()
            .find(|r| r.headline_tolerance_pct.is_some())
            .unwrap();
        assert_eq!(h.kernel, Some(2.0));
        assert_eq!(h.model, Some(2.1));
        assert!((h.diff_pct.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(h.agrees(), Some(true));
        let rows = compare(GuestArch::X86, &kernel(100, 50), &model(120, 50), 10.0);
        let h = rows
            .iter()
            .find(|r| r.headline_tolerance_pct.is_some())
            .unwrap();
        assert_eq!(h.agrees(), Some(false));
        // Fork flushes are not teardown flushes, but count in the "any cause" row.
        let all = rows
            .iter()
            .find(|r| r.quantity.starts_with("all remote"))
            .unwrap();
        assert_eq!(all.kernel, Some(107.0));
        let per_sec = rows.iter().find(|r| r.kind == Kind::Rate).unwrap();
        assert_eq!(per_sec.kernel, Some(50.0));
        // No teardown on the kernel side: no ratio, and no agreement claimed.
        let rows = compare(GuestArch::X86, &kernel(0, 0), &model(0, 3), 10.0);
        let h = rows
            .iter()
            .find(|r| r.headline_tolerance_pct.is_some())
            .unwrap();
        assert_eq!(h.kernel, None);
        assert_eq!(h.agrees(), Some(false));
    }

    #[test]
    fn diff_needs_a_kernel_figure() {
        assert_eq!(diff_pct(Some(0.0), Some(1.0)), None);
        assert_eq!(diff_pct(None, Some(1.0)), None);
        assert_eq!(diff_pct(Some(4.0), Some(3.0)), Some(-25.0));
    }
}
