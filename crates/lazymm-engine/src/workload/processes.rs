//! `processes`: will-it-scale's `context_switch1_processes`, the pairs of
//! [`threads`](super::threads) with one process (one mm) per pair, so each mm's
//! reference counts are touched by two CPUs only.

use super::Pairs;
use crate::host::Topology;

/// `processes`: `pairs` pairs, each pair a process of its own, on a machine of `topo`'s
/// shape (pinned with `pin`).
pub fn processes(pairs: usize, topo: &Topology, pin: bool) -> Pairs {
    Pairs::new(pairs, false, topo, pin)
}
