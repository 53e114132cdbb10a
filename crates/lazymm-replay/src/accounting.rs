//! Access accounting of a replay: which recorded access hit which mm's `mm_count`
//! line (and so the hottest line), which were hazard-pointer scans of other CPUs'
//! per-CPU scheme state, and the price of all of them on a machine (`--machine`,
//! `lazymm_cost::price::Pricer`).
//!
//! The host drains each CPU's access log after every operation and hands it to
//! `Accounting::charge`; it tells the accounting which mm each arena slot holds with
//! `Accounting::made`.

use crate::row::{HotLine, Predicted};
use lazymm::mm::Mm;
use lazymm::sync::{Access, AccessKind};
use lazymm::{Arch, Config, Kernel, MmId, Scheme};
use lazymm_cost::machine::Machine;
use lazymm_cost::price::Pricer;
use std::collections::{BTreeSet, HashMap};

/// Where the `mm_count` lines of an arena are.
struct CountLines {
    /// Address of slot 0.
    base: u64,
    /// Bytes per slot.
    stride: u64,
    /// The line of `mm_count` within a slot (offset / line size).
    line: u64,
    /// Slots.
    slots: u64,
}

/// The model pads every shared word to its own 128-byte line.
const LINE: u64 = 128;

impl CountLines {
    /// Learns where `mm_count` sits in a slot of `S`/`A`'s arena from one `mmgrab` on a
    /// scratch machine, and where `k`'s arena (of `slots` slots) is.
    fn learn<S: Scheme, A: Arch>(k: &Kernel<S, A>, slots: usize) -> Option<CountLines> {
        let mut cfg = Config::new(1);
        cfg.speculative_walk_period = 0;
        let (scratch, mut cpus) = Kernel::<S, A>::boot(cfg);
        let cpu = &mut cpus[0];
        let u = scratch.mm_alloc(cpu)?;
        let base = addr(scratch.arena.get(u.id()).ok()?);
        cpu.set_recording(true);
        let c = scratch.mmgrab(cpu, u.id());
        let mut log = Vec::new();
        cpu.acct.drain_into(&mut log);
        let rmw: Vec<&Access> = log.iter().filter(|a| a.kind == AccessKind::Rmw).collect();
        let [one] = rmw.as_slice() else { return None };
        let off = one.addr.checked_sub(base)?;
        let stride = core::mem::size_of::<Mm>() as u64;
        if off >= stride {
            return None;
        }
        scratch.mmdrop(cpu, c);
        scratch.mmput(cpu, u);
        Some(CountLines {
            base: addr(k.arena.get(MmId::INIT).ok()?),
            stride,
            line: off / LINE,
            slots: slots as u64,
        })
    }

    /// The arena slot whose `mm_count` line holds `a`, if any.
    fn slot(&self, a: u64) -> Option<u32> {
        let off = a.checked_sub(self.base)?;
        let slot = off / self.stride;
        (slot < self.slots && (off % self.stride) / LINE == self.line).then_some(slot as u32)
    }
}

/// The address of a slot, to tell which slot a recorded access touched (identity only:
/// nothing is ordered by it).
fn addr(m: &Mm) -> u64 {
    m as *const Mm as usize as u64
}

/// The RMWs on one mm's `mm_count` line and the CPUs that made them.
#[derive(Default)]
struct LineStat {
    rmw: u64,
    cpus: BTreeSet<usize>,
}

/// What a replay's recorded accesses add up to.
pub(crate) struct Accounting<'a> {
    /// Where the arena's `mm_count` lines are (`None` if it could not be learnt).
    count_lines: Option<CountLines>,
    /// Each CPU's per-CPU scheme state (other CPUs read it only when they scan), as
    /// (start address, end address, cpu), sorted; empty when the scheme keeps none.
    scheme_state: Vec<(u64, u64, usize)>,
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
    /// The accounting of `k`, a machine of `n` CPUs whose arena has `slots` slots,
    /// priced on `machine` when one is given (and has room for `n` CPUs).
    pub(crate) fn new<S: Scheme, A: Arch>(
        k: &Kernel<S, A>,
        n: usize,
        slots: usize,
        machine: Option<&'a Machine>,
    ) -> Self {
        let size = core::mem::size_of::<S::CpuShared>() as u64;
        let mut scheme_state: Vec<(u64, u64, usize)> = if size == 0 {
            Vec::new()
        } else {
            (0..n)
                .map(|i| {
                    let a = &k.cpus[i].scheme as *const S::CpuShared as usize as u64;
                    (a, a + size, i)
                })
                .collect()
        };
        scheme_state.sort_unstable();
        Accounting {
            count_lines: CountLines::learn(k, slots),
            scheme_state,
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
                    if let Some(owner) = self.scheme_state_owner(a.addr) {
                        if owner != cpu {
                            scanned.insert(owner);
                        }
                    }
                }
                AccessKind::Rmw => {
                    let Some(slot) = self.count_lines.as_ref().and_then(|l| l.slot(a.addr)) else {
                        continue;
                    };
                    // The mm made last in that slot (this very operation may have
                    // freed it: that RMW was its last drop).
                    if let Some(&id) = self.slot_mm.get(&slot) {
                        let l = self.lines.entry(id).or_default();
                        l.rmw += 1;
                        l.cpus.insert(cpu);
                    }
                }
                AccessKind::IpiSend => ipi(a.addr as usize),
                _ => {}
            }
        }
        if !scanned.is_empty() {
            self.hazptr_scans += 1;
            self.hazptr_cpus_scanned += scanned.len() as u64;
        }
    }

    /// The CPU whose per-CPU scheme state holds address `a`.
    fn scheme_state_owner(&self, a: u64) -> Option<usize> {
        let i = self
            .scheme_state
            .partition_point(|&(start, _, _)| start <= a);
        let &(start, end, cpu) = self.scheme_state.get(i.checked_sub(1)?)?;
        (start <= a && a < end).then_some(cpu)
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
