//! Access accounting of a replay: which recorded access hit which mm's `mm_count`
//! line (and so the hottest line), which were hazard-pointer scans of other CPUs'
//! per-CPU scheme state, and the price of all of them on a machine (`--machine`,
//! `lazymm_cost::price::Pricer`). Each access names its field and object (its
//! [`lazymm::sync::Tag`], set where the word was made), so nothing here reads addresses.
//!
//! The host drains each CPU's access log after every operation and hands it to
//! `Accounting::charge`; it tells the accounting which mm each arena slot holds with
//! `Accounting::made`.

use crate::row::{HotLine, Predicted};
use lazymm::sync::{Access, AccessKind, Field};
use lazymm::MmId;
use lazymm_cost::machine::Machine;
use lazymm_cost::price::Pricer;
use std::collections::{BTreeSet, HashMap};

/// The per-CPU scheme state other CPUs read only when they scan (`rq->lazy_mm`,
/// `rq->drop_mm`, hazard slots).
const SCHEME_STATE: [Field; 3] = [Field::RqLazyMm, Field::RqDropMm, Field::HazardSlot];

/// The RMWs on one mm's `mm_count` line and the CPUs that made them.
#[derive(Default)]
struct LineStat {
    rmw: u64,
    cpus: BTreeSet<usize>,
}

/// What a replay's recorded accesses add up to.
pub(crate) struct Accounting<'a> {
    /// Arena slot → the mm made in it last.
    slot_mm: HashMap<u32, MmId>,
    /// mm → its process, for the report.
    mm_label: HashMap<MmId, String>,
    lines: HashMap<MmId, LineStat>,
    pricer: Option<Pricer<'a>>,
    /// Operations in which a CPU read other CPUs' per-CPU scheme state.
    pub(crate) hazptr_scans: u64,
    /// CPUs those scans read (distinct CPUs per scan, summed).
    pub(crate) hazptr_cpus_scanned: u64,
}

impl<'a> Accounting<'a> {
    /// The accounting of a machine of `n` CPUs, priced on `machine` when one is given
    /// (and has room for `n` CPUs).
    pub(crate) fn new(n: usize, machine: Option<&'a Machine>) -> Self {
        Accounting {
            slot_mm: HashMap::new(),
            mm_label: HashMap::new(),
            lines: HashMap::new(),
            pricer: machine.and_then(|m| Pricer::new(m, n).ok()),
            hazptr_scans: 0,
            hazptr_cpus_scanned: 0,
        }
    }

    /// The mm `id` was made (in its arena slot), for the process `label`.
    pub(crate) fn made(&mut self, id: MmId, label: String) {
        self.mm_label.insert(id, label);
        self.slot_mm.insert(id.slot(), id);
    }

    /// Charges what CPU `cpu` recorded during one operation: each RMW on an `mm_count`
    /// line to its mm and CPU, each read of another CPU's scheme state to a scan, and
    /// everything to the pricer; `ipi(target)` for each IPI sent.
    pub(crate) fn charge(&mut self, cpu: usize, log: &[Access], mut ipi: impl FnMut(usize)) {
        if let Some(p) = &mut self.pricer {
            p.charge(cpu, log);
        }
        let mut scanned: BTreeSet<usize> = BTreeSet::new();
        for a in log {
            match a.kind {
                AccessKind::Load => {
                    // A read of another CPU's per-CPU scheme state: a scan.
                    let owner = a.tag.obj as usize;
                    if SCHEME_STATE.contains(&a.tag.field) && owner != cpu {
                        scanned.insert(owner);
                    }
                }
                AccessKind::Rmw => {
                    if a.tag.field != Field::MmCount {
                        continue;
                    }
                    let slot = a.tag.obj;
                    // The mm made last in that slot (this very operation may have
                    // freed it: that RMW was its last drop).
                    if let Some(&id) = self.slot_mm.get(&slot) {
                        let l = self.lines.entry(id).or_default();
                        l.rmw += 1;
                        l.cpus.insert(cpu);
                    }
                }
                AccessKind::IpiSend => ipi(a.ipi_target()),
                _ => {}
            }
        }
        if !scanned.is_empty() {
            self.hazptr_scans += 1;
            self.hazptr_cpus_scanned += scanned.len() as u64;
        }
    }

    /// The `mm_count` line that received the most RMWs.
    pub(crate) fn hottest(&self) -> Option<HotLine> {
        let (id, l) = self
            .lines
            .iter()
            .max_by_key(|(id, l)| (l.rmw, std::cmp::Reverse((id.slot(), id.gen()))))?;
        Some(HotLine {
            mm: id.to_string(),
            process: self.mm_label.get(id).cloned().unwrap_or_default(),
            rmw: l.rmw,
            cpus: l.cpus.len(),
        })
    }

    /// The bookkeeping priced so far, when a machine was given.
    pub(crate) fn predicted(&self) -> Option<Predicted> {
        self.pricer.as_ref().map(|p| Predicted {
            machine: p.machine().file.name.clone(),
            bookkeeping_ps: p.total(),
        })
    }
}
