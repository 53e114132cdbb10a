//! Pricing recorded accesses without running the event engine: what a host that keeps its
//! own time (the trace replayer, whose times are the trace's) asks of a machine.
//!
//! A [`Pricer`] keeps the coherence model's directory of one machine and charges each
//! CPU's recorded protocol accesses, in the order the host hands them over, what they
//! cost on that machine: a load, store or RMW its hit or the transfer from wherever the
//! line is (the MESI-style directory of [`crate::coherence`], distances from the machine
//! file), a fence its drain, a page-table-root write its cost, and an IPI its send (fixed
//! once per batch, plus per target) and the sender's wait for delivery and a handler's
//! entry; the handler's own accesses are charged to the target that made them.
//!
//! # Simplification
//! Accesses are priced one at a time, never queued behind each other: a replayed trace's
//! operations are spread over real time, not issued back to back, so the contention the
//! event engine models (CPUs waiting on one line) is left out, and the figure is the
//! bookkeeping's own time, a lower bound where a line is fought over.

use crate::coherence::{Directory, Kind, LineMap};
use crate::machine::{Machine, Ps};
use lazymm::sync::{Access, AccessKind};

/// The bookkeeping time of a stream of recorded accesses on one machine.
pub struct Pricer<'m> {
    m: &'m Machine,
    dir: Directory<'m>,
    lines: LineMap<u64>,
    per_cpu: Vec<Ps>,
}

/// A host has more CPUs than the machine it is priced on.
#[derive(Debug, thiserror::Error)]
#[error("{cpus} CPUs do not fit machine '{machine}' ({max} hardware threads; valid: a machine at least that large)")]
pub struct TooSmall {
    /// CPUs asked for.
    pub cpus: usize,
    /// The machine.
    pub machine: String,
    /// Its hardware threads.
    pub max: usize,
}

impl<'m> Pricer<'m> {
    /// A pricer for `cpus` CPUs (the machine's CPUs `0..cpus`) of machine `m`.
    pub fn new(m: &'m Machine, cpus: usize) -> Result<Pricer<'m>, TooSmall> {
        if cpus > m.nr_cpus {
            return Err(TooSmall {
                cpus,
                machine: m.file.name.clone(),
                max: m.nr_cpus,
            });
        }
        Ok(Pricer {
            m,
            dir: Directory::new(m),
            lines: LineMap::default(),
            per_cpu: vec![0; cpus],
        })
    }

    /// The machine.
    pub fn machine(&self) -> &'m Machine {
        self.m
    }

    /// Charges CPU `cpu` for `log`, its accesses in the order it made them; returns
    /// their cost.
    pub fn charge(&mut self, cpu: usize, log: &[Access]) -> Ps {
        let m = self.m;
        let mut cost = 0;
        let mut in_batch = false;
        for a in log {
            let kind = match a.kind {
                AccessKind::Load => Kind::Load,
                AccessKind::Store => Kind::Store,
                AccessKind::Rmw => Kind::Rmw,
                AccessKind::Fence => {
                    cost += m.fence;
                    continue;
                }
                AccessKind::RootWrite => {
                    cost += m.cr3_write;
                    continue;
                }
                AccessKind::IpiSend => {
                    if !in_batch {
                        cost += m.ipi_send;
                        in_batch = true;
                    }
                    cost += m.ipi_per_target;
                    continue;
                }
                // The batch ends where the model waits for it: delivery and a
                // handler's entry.
                AccessKind::IpiWait => {
                    if in_batch {
                        cost += m.ipi_delivery + m.ipi_handler;
                        in_batch = false;
                    }
                    continue;
                }
            };
            let n = self.lines.len() as u64;
            let line = *self.lines.entry(a.line()).or_insert(n);
            cost += self.dir.access_direct(cpu, line, kind);
        }
        self.per_cpu[cpu] += cost;
        cost
    }

    /// What every CPU was charged so far, summed.
    pub fn total(&self) -> Ps {
        self.per_cpu.iter().sum()
    }

    /// What each CPU was charged so far.
    pub fn per_cpu(&self) -> &[Ps] {
        &self.per_cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazymm::sync::{Field, Tag};

    /// An access to word `obj` of `mm_count` (or, for an IPI, to CPU `obj`).
    fn acc(obj: u32, kind: AccessKind) -> Access {
        let field = match kind {
            AccessKind::Load | AccessKind::Store | AccessKind::Rmw => Field::MmCount,
            _ => Field::None,
        };
        let mut tag = Tag::new(field, obj);
        tag.group = field;
        Access { tag, kind }
    }

    #[test]
    fn a_line_that_moves_costs_a_transfer_and_one_that_stays_a_hit() {
        let m = Machine::load("epyc-zen4-2s").unwrap();
        let mut p = Pricer::new(&m, 192).unwrap();
        let rmw = [acc(4096, AccessKind::Rmw)];
        let first = p.charge(0, &rmw);
        let again = p.charge(0, &rmw);
        assert_eq!(again, m.rmw, "the owner's second RMW hits");
        assert!(first >= m.memory, "a cold line comes from memory");
        // CPU 96 is on the other socket: the line crosses it.
        let far = p.charge(96, &rmw);
        assert_eq!(far, m.transfer(0, 96) + m.rmw);
        assert!(far > again * 10);
        assert_eq!(p.total(), first + again + far);
        assert_eq!(p.per_cpu()[96], far);
    }

    #[test]
    fn fences_root_writes_and_ipis_cost_what_the_machine_says() {
        let m = Machine::load("spr-2s").unwrap();
        let mut p = Pricer::new(&m, 4).unwrap();
        let log = [
            acc(0, AccessKind::Fence),
            acc(0, AccessKind::RootWrite),
            acc(1, AccessKind::IpiSend),
            acc(2, AccessKind::IpiSend),
            acc(0, AccessKind::IpiWait),
        ];
        let c = p.charge(0, &log);
        let want = m.fence
            + m.cr3_write
            + m.ipi_send
            + 2 * m.ipi_per_target
            + m.ipi_delivery
            + m.ipi_handler;
        assert_eq!(c, want);
        assert!(matches!(
            Pricer::new(&m, m.nr_cpus + 1),
            Err(TooSmall { .. })
        ));
    }
}
