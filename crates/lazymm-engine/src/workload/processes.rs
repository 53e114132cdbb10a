//! `processes`: will-it-scale's `context_switch1_processes`, the pairs of
//! [`threads`](super::threads) with one process (one mm) per pair, so each mm's
//! reference counts are touched by two CPUs only.

use super::Pairs;

/// `processes`: `pairs` pairs, each pair a process of its own.
pub fn processes(pairs: usize) -> Pairs {
    Pairs {
        pairs,
        one_process: false,
    }
}
